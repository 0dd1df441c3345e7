"""Bad shards and hostile models (issue 7): `info`, `eval` and `train` refuse a truncated,
foreign, wrongly typed or damaged shard with one line before any work starts, and a model that
carries code, or has the wrong shape, is refused without running anything."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_robust_corpus import encode, small_photo

from colorize_cli.data import shard_writer, shards
from colorize_cli.errors import ModelError, ShardError
from colorize_cli.imaging import color
from colorize_cli.inference import evaluate
from colorize_cli.nets import saved

keras = pytest.importorskip("keras")

SIZE = 16


def colorize(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "colorize_cli", *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def write_good(path: Path, count: int = 8, split: str = "train") -> Path:
    with shard_writer.ShardWriter(path, SIZE, split) as writer:
        for i in range(count):
            rgb = np.asarray(small_photo(20 + i + 10 * (split == "val"), SIZE, SIZE))
            writer.append(color.grayscale(rgb), rgb, f"photo{i}.jpg", f"{i:064x}")
    return path


def _rewrite(change: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        write_good(path)
        with h5py.File(path, "r+") as f:
            change(f)

    return make


def _replace(name: str, value: np.ndarray) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        del f[name]
        f[name] = value

    return change


def _truncated(path: Path) -> None:
    data = write_good(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged(path: Path) -> None:
    """One byte of image 5's rgb chunk flipped: the file opens, the Fletcher-32 check fails."""
    write_good(path)
    with h5py.File(path, "r") as f:
        offset = f["rgb"].id.get_chunk_info_by_coord((5, 0, 0, 0)).byte_offset
    with open(path, "r+b") as fp:
        fp.seek(offset + 10)
        byte = fp.read(1)[0]
        fp.seek(offset + 10)
        fp.write(bytes([byte ^ 0xFF]))


def _foreign(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, SIZE, SIZE), np.uint8)


# name -> (maker, words of the one-line refusal); every one is refused when opened.
BAD_SHARDS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated.h5": (_truncated, "damaged or truncated HDF5 file"),
    "newer.h5": (_rewrite(lambda f: f.attrs.modify("format_version", 2)), "newer"),
    "older.h5": (_rewrite(lambda f: f.attrs.modify("format_version", 0)), "too old"),
    "float-gray.h5": (
        _rewrite(_replace("gray", np.zeros((8, SIZE, SIZE), np.float32))),
        "'gray' is float32, expected uint8",
    ),
    "flat-rgb.h5": (
        _rewrite(_replace("rgb", np.zeros((8, SIZE, SIZE), np.uint8))),
        "'rgb' has shape (8, 16, 16), expected (N, 16, 16, 3)",
    ),
    "short-source.h5": (_rewrite(lambda f: f["source"].resize(3, axis=0)), "disagree"),
    "notes.h5": (lambda p: p.write_text("not a shard\n"), "not an HDF5 file"),
    "photo.h5": (lambda p: p.write_bytes(encode(small_photo(1), "JPEG")), "not an HDF5 file"),
    "foreign.h5": (_foreign, "a foreign HDF5 file"),
}


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    write_good(folder / "good.h5")
    write_good(folder / "good.val.h5", 2, "val")
    _damaged(folder / "damaged.h5")
    for name, (make, _) in BAD_SHARDS.items():
        make(folder / name)
    return folder


@pytest.mark.parametrize("name", BAD_SHARDS)
def test_each_bad_shard_is_refused_in_one_line(name: str, shard_dir: Path) -> None:
    path = shard_dir / name
    with pytest.raises(ShardError) as caught:
        shards.open_shard(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert BAD_SHARDS[name][1] in message


def test_info_describes_the_good_and_names_each_bad_shard(shard_dir: Path) -> None:
    names = ["good.h5", *BAD_SHARDS]
    run = colorize("info", "--json", *(shard_dir / name for name in names))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    described = [json.loads(line) for line in run.stdout.splitlines()]
    assert [d["path"] for d in described] == [str(shard_dir / "good.h5")]
    lines = run.stderr.splitlines()
    assert len(lines) == len(BAD_SHARDS)
    for name, (_, words) in BAD_SHARDS.items():
        assert any(
            line.startswith(f"error: {shard_dir / name}: ") and words in line for line in lines
        )


def test_info_verify_finds_the_damaged_image(shard_dir: Path) -> None:
    damaged = shard_dir / "damaged.h5"
    assert colorize("info", damaged).returncode == 0  # the file itself is sound
    run = colorize("info", "--verify", damaged)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"error: {damaged}: image 5 is damaged: ")


@pytest.mark.parametrize("name", BAD_SHARDS)
def test_eval_checks_the_data_before_loading_any_model(name: str, shard_dir: Path) -> None:
    # A missing model would be a ModelError: the shard is refused first.
    with pytest.raises(
        ShardError, match=BAD_SHARDS[name][1].replace("(", r"\(").replace(")", r"\)")
    ):
        evaluate.evaluate(shard_dir / "no-model.keras", [str(shard_dir / name)])


def test_eval_scores_around_a_damaged_image(shard_dir: Path, tiny_model: Path) -> None:
    result = evaluate.evaluate(tiny_model, [str(shard_dir / "damaged.h5")], render_size=16)
    assert len(result.images) == 7
    assert [name for name, _ in result.failures] == [f"{shard_dir / 'damaged.h5'}:5"]
    assert "image 5 is damaged" in result.failures[0][1]


@pytest.mark.parametrize("name", ["truncated.h5", "float-gray.h5", "notes.h5"])
def test_train_refuses_bad_shards_before_creating_the_run(
    name: str, shard_dir: Path, tmp_path: Path
) -> None:
    from colorize_cli.training import train

    out = tmp_path / "run"
    config = train.TrainConfig(
        shards=[str(shard_dir / name)], out=str(out), epochs=1, batch_size=2, crop=16, model="tiny"
    )
    with pytest.raises(ShardError, match=BAD_SHARDS[name][1]):
        train.train(config)
    assert not out.exists()


def test_training_data_names_a_damaged_image(shard_dir: Path) -> None:
    from colorize_cli.training import dataset

    with pytest.raises(ShardError, match="image 5 is damaged"):
        dataset.load_images([shard_dir / "damaged.h5"])


# --- models -------------------------------------------------------------------------------------


def _with_config(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    """A copy of a .keras file whose config.json was edited by `change`."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _set_activation(function: dict | str) -> Callable[[dict], None]:
    def change(node: object) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Conv2D":
                node["config"]["activation"] = function
            for value in node.values():
                change(value)
        elif isinstance(node, list):
            for value in node:
                change(value)

    return change


@pytest.fixture(scope="module")
def hostile_models(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, str]]:
    """name -> (model file, words of the refusal)."""
    folder = tmp_path_factory.mktemp("hostile")
    lightness = keras.Input((None, None, 1))
    twice = keras.layers.Lambda(lambda x: keras.ops.concatenate([x, x], axis=-1))(lightness)
    keras.Model(lightness, twice).save(folder / "lambda.keras")
    keras.Model(lightness, twice).save(folder / "lambda.h5")
    legacy = folder / "legacy-named.keras"  # an HDF5 model under a .keras name
    legacy.write_bytes((folder / "lambda.h5").read_bytes())
    # A function from a module next to the model: loading must not import it.
    imported = {"module": "robust_marker", "class_name": "function", "config": "run"}
    models = {
        "lambda.keras": (folder / "lambda.keras", "Lambda"),
        "lambda.h5": (folder / "lambda.h5", "Lambda"),
        "legacy-named.keras": (legacy, "a .keras file is a zip archive"),
        "imports-a-module.keras": (
            _with_config(tiny_model, folder / "imports.keras", _set_activation(imported)),
            "not a loadable Keras model: Could not locate function 'run'",
        ),
        "os-system.keras": (
            _with_config(tiny_model, folder / "os.keras", _set_activation("os.system")),
            "not a loadable Keras model",
        ),
    }
    gray_in = keras.Input((None, None, 3))
    models["rgb-input.keras"] = (folder / "rgb-input.keras", "not a colorize generator")
    keras.Model(gray_in, keras.layers.Conv2D(2, 1)(gray_in)).save(models["rgb-input.keras"][0])
    fixed = keras.Input((64, 64, 1))
    models["fixed-size.keras"] = (folder / "fixed-size.keras", "not a colorize generator")
    keras.Model(fixed, keras.layers.Conv2D(2, 1)(fixed)).save(models["fixed-size.keras"][0])
    four = keras.Input((None, None, 1))
    models["four-channels.keras"] = (folder / "four.keras", "not a colorize generator")
    keras.Model(four, keras.layers.Conv2D(4, 1)(four)).save(models["four-channels.keras"][0])
    return models


@pytest.mark.parametrize(
    "name",
    [
        "lambda.keras",
        "lambda.h5",
        "legacy-named.keras",
        "imports-a-module.keras",
        "os-system.keras",
        "rgb-input.keras",
        "fixed-size.keras",
        "four-channels.keras",
    ],
)
def test_unsafe_or_misshapen_models_are_refused_in_one_line(
    name: str,
    hostile_models: dict[str, tuple[Path, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "robust_marker.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\ndef run(x):\n    return x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path, words = hostile_models[name]
    with pytest.raises(ModelError) as caught:
        saved.load_generator(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and words in message
    assert not marker.exists() and "robust_marker" not in sys.modules


def test_apply_with_an_unsafe_model_exits_2_and_writes_nothing(
    hostile_models: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    photo = tmp_path / "old.png"
    photo.write_bytes(encode(small_photo(1), "PNG"))
    path = hostile_models["lambda.keras"][0]
    run = colorize("apply", photo, "--model", path)
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr
    assert len(run.stderr.splitlines()) == 1 and str(path) in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]


def test_read_all_names_the_damaged_image(shard_dir: Path) -> None:
    with shards.open_shard(shard_dir / "good.h5") as shard:
        gray, rgb = shard.read_all()
        assert gray.shape == (8, SIZE, SIZE) and rgb.shape == (8, SIZE, SIZE, 3)
        np.testing.assert_array_equal(rgb[3], shard.read(3)[1])
    with shards.open_shard(shard_dir / "damaged.h5") as shard, pytest.raises(ShardError) as caught:
        shard.read_all()
    assert str(caught.value).startswith(f"{shard_dir / 'damaged.h5'}: image 5 is damaged: ")
