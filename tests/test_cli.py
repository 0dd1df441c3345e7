"""End-to-end tests of the `colorize` command line, in subprocesses, on real photos."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from colorize_cli import __version__

PY = sys.executable


def run(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "colorize_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def modules_after(*argv: str) -> set[str]:
    """The modules loaded after running the CLI in-process with these arguments. The command must
    exit 0 and the listing must be reached: a run that crashed early loaded little, and would
    otherwise pass every "TensorFlow not loaded" check."""
    code = (
        "import sys\n"
        "from colorize_cli.cli import app\n"
        "status = 0\n"
        f"try:\n    app({list(argv)!r}, prog_name='colorize')\n"
        "except SystemExit as exc:\n    status = exc.code or 0\n"
        "print(f'{MARKER} {status}')\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    ).replace("{MARKER}", MODULES_MARKER)
    result = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    _, marker, listing = result.stdout.partition(MODULES_MARKER)
    assert marker, f"the CLI never reached its end: {result.stderr}"
    status, *loaded = listing.split()
    assert status == "0", f"colorize {' '.join(argv)} exited {status}: {result.stderr}"
    assert "colorize_cli.cli" in loaded
    return set(loaded)


MODULES_MARKER = "--- modules loaded, exit status:"


def test_help_lists_every_command_and_does_not_import_tensorflow() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("prepare", "train", "eval", "apply", "info"):
        assert command in result.stdout
    loaded = modules_after("--help")
    assert "typer" in loaded
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"colorize {__version__}"
    assert "tensorflow" not in modules_after("--version")


def test_console_script_is_installed() -> None:
    script = Path(PY).parent / "colorize"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"colorize {__version__}"


def test_unknown_option_is_a_usage_error() -> None:
    result = run("prepare", "--no-such-option", "x", "y.h5")
    assert result.returncode == 2
    assert "no-such-option" in result.stderr
    assert result.stdout == ""


def test_prepare_then_info_on_real_photos(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.h5"
    result = run("prepare", str(photo_dir), str(out), "--size", "64", "--val-fraction", "0.25")
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert out in written and all(p.exists() for p in written)
    assert "Traceback" not in result.stderr

    with h5py.File(out, "r") as f:
        gray, rgb = f["gray"][:], f["rgb"][:]
    assert gray.shape[1:] == (64, 64) and rgb.shape[1:] == (64, 64, 3)
    expected = np.asarray(Image.fromarray(rgb[0]).convert("L"))
    np.testing.assert_array_equal(gray[0], expected)

    info = run("info", "--json", "--verify", *map(str, written))
    assert info.returncode == 0, info.stderr
    descriptions = [json.loads(line) for line in info.stdout.splitlines()]
    assert len(descriptions) == len(written)
    assert sum(d["count"] for d in descriptions) == 8
    assert "tensorflow" not in modules_after("info", str(out))
    again = tmp_path / "again.h5"
    loaded = modules_after("prepare", str(photo_dir), str(again), "--size", "32", "--jobs", "1")
    assert again.exists() and "colorize_cli.data.prepare" in loaded
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_prepare_reads_paths_from_stdin(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "stdin.h5"
    paths = "\n".join(str(p) for p in sorted(photo_dir.iterdir())[:3]) + "\n"
    result = run("prepare", "-", str(out), "--size", "32", "--val-fraction", "0", stdin=paths)
    assert result.returncode == 0, result.stderr
    with h5py.File(out, "r") as f:
        assert f["gray"].shape == (3, 32, 32)


def test_prepare_skips_bad_files_and_exits_1(photo_dir: Path, tmp_path: Path) -> None:
    (photo_dir / "notes.jpg").write_text("this is not a photo")
    (photo_dir / "empty.png").write_bytes(b"")
    errors = tmp_path / "errors.tsv"
    out = tmp_path / "data.h5"
    result = run(
        "prepare", str(photo_dir), str(out), "--size", "32", "--val-fraction", "0",
        "--errors", str(errors),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "notes.jpg" in result.stderr and "empty.png" in result.stderr
    assert "Traceback" not in result.stderr
    with h5py.File(out, "r") as f:
        assert f["gray"].shape[0] == 8
    rows = errors.read_text().splitlines()
    assert any("notes.jpg" in row for row in rows) and any("empty.png" in row for row in rows)


def test_prepare_with_nothing_usable_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    out = tmp_path / "out.h5"
    result = run("prepare", str(bad), str(out))
    assert result.returncode == 2
    assert "bad.jpg" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_prepare_bad_part_is_usage_error(photo_dir: Path, tmp_path: Path) -> None:
    result = run("prepare", str(photo_dir), str(tmp_path / "x.h5"), "--part", "3/2")
    assert result.returncode == 2
    assert "--part" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_info_refuses_a_non_shard_with_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "fake.h5"
    fake.write_text("not hdf5")
    result = run("info", str(fake))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fake.h5" in lines[0]


def test_debug_shows_traceback(tmp_path: Path) -> None:
    fake = tmp_path / "fake.h5"
    fake.write_text("not hdf5")
    result = run("--debug", "info", str(fake))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


@pytest.mark.parametrize("env_var", ["NO_COLOR"])
def test_plain_stderr_when_not_a_terminal(photo_dir: Path, tmp_path: Path, env_var: str) -> None:
    env = dict(os.environ, **{env_var: "1"})
    result = subprocess.run(
        [PY, "-m", "colorize_cli", "prepare", str(photo_dir), str(tmp_path / "o.h5"),
         "--size", "32"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stderr


def test_prepare_refuses_to_overwrite_without_flag(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.h5"
    args = ("prepare", str(photo_dir), str(out), "--size", "32", "--val-fraction", "0")
    assert run(*args).returncode == 0
    before = out.read_bytes()
    again = run(*args)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert out.read_bytes() == before
    assert run(*args, "--overwrite").returncode == 0


def test_apply_writes_beside_the_photo_and_keeps_its_gray(
    photo_dir: Path, tiny_model: Path
) -> None:
    photo = sorted(photo_dir.iterdir())[0]
    result = run("apply", str(photo), "--model", str(tiny_model), "--format", "png")
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip())
    assert out == photo.with_name(photo.stem + ".color.png") and out.exists()
    # TensorFlow's start-up chatter must not reach the user's stderr.
    assert "cudart" not in result.stderr and "I0000" not in result.stderr
    with Image.open(photo) as original, Image.open(out) as colour:
        assert colour.size == original.size
        gray_in = np.asarray(original.convert("L"), dtype=int)
        gray_out = np.asarray(colour.convert("L"), dtype=int)
    assert np.mean(np.abs(gray_in - gray_out) <= 1) >= 0.999
    again = run("apply", str(photo), "--model", str(tiny_model), "--format", "png")
    assert again.returncode == 0 and again.stdout == "" and "exists" in again.stderr


def test_apply_streams_stdin_to_stdout(photo_dir: Path, tiny_model: Path) -> None:
    photo = sorted(photo_dir.iterdir())[1]
    result = subprocess.run(
        [PY, "-m", "colorize_cli", "apply", "-", "-o", "-", "--format", "png",
         "--model", str(tiny_model)],
        input=photo.read_bytes(), capture_output=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"\x89PNG")


def test_apply_null_keeps_a_newline_in_a_file_name(photo_dir: Path, tiny_model: Path) -> None:
    photos = sorted(photo_dir.iterdir())[:2]
    odd = photo_dir / "two\nlines.jpg"
    photos[0].rename(odd)
    listing = f"{odd}\0{photos[1]}\0".encode()
    result = subprocess.run(
        [PY, "-m", "colorize_cli", "apply", "-", "-0", "--model", str(tiny_model)],
        input=listing, capture_output=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split(b"\0")
    assert printed[-1] == b"" and len(printed) == 3
    assert printed[0] == str(photo_dir / "two\nlines.color.jpg").encode()
    assert all(Path(os.fsdecode(path)).is_file() for path in printed[:2])


def test_apply_with_a_missing_input_does_the_rest_and_exits_1(
    photo_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    photo = sorted(photo_dir.iterdir())[2]
    out_dir = tmp_path / "colour"
    result = run(
        "apply", str(photo), str(tmp_path / "missing.jpg"), "--out-dir", str(out_dir),
        "--model", str(tiny_model),
    )  # fmt: skip
    assert result.returncode == 1
    assert "missing.jpg" in result.stderr and "Traceback" not in result.stderr
    assert [Path(p).name for p in result.stdout.split()] == [photo.name]


def test_train_then_eval_on_real_shards(photo_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.h5"
    assert run("prepare", str(photo_dir), str(data), "--size", "32", "--val-fraction", "0.3")
    run_dir = tmp_path / "run"
    result = run(
        "train", str(data), "--out", str(run_dir), "--model", "tiny", "--crop", "32",
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = Path(result.stdout.strip())
    assert model == run_dir / "model.keras" and model.exists()
    evaluation = run("eval", str(model), str(tmp_path / "data.val.h5"), "--json")
    assert evaluation.returncode == 0, evaluation.stderr
    scores = json.loads(evaluation.stdout)
    assert scores["images"] >= 1
    assert set(scores["metrics"]) == {"model", "gray"}
    assert "CIEDE2000" in evaluation.stderr


def test_train_on_a_missing_gpu_lists_the_devices(photo_dir: Path, tmp_path: Path) -> None:
    result = run("train", str(tmp_path / "x.h5"), "--gpu", "7")
    assert result.returncode == 2
    assert "GPU 7" in result.stderr and "CPU" in result.stderr


def test_info_describes_a_model_without_tensorflow(tiny_model: Path, tmp_path: Path) -> None:
    import keras

    result = run("info", "--json", str(tiny_model))
    assert result.returncode == 0, result.stderr
    description = json.loads(result.stdout)
    expected = keras.saving.load_model(tiny_model, safe_mode=True).count_params()
    assert description["parameters"] == expected
    assert description["inputs"] == ["lightness"] and description["outputs"] == ["ab"]
    assert description["encoder"].startswith("none")
    assert "tensorflow" not in modules_after("info", str(tiny_model))
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    refused = run("info", str(fake))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "fake.keras" in refused.stderr


def test_bundled_model_colorizes_a_real_photo_with_default_settings(photo_dir: Path) -> None:
    from colorize_cli.inference.colorizer import DEFAULT_MODEL_PATH

    assert DEFAULT_MODEL_PATH.is_file(), "the bundled model is missing"
    photo = sorted(photo_dir.iterdir())[3]
    result = run("apply", str(photo), "--format", "png")
    assert result.returncode == 0, result.stderr
    with Image.open(Path(result.stdout.strip())) as colour:
        rgb = np.asarray(colour.convert("RGB"), dtype=int)
    # A trained model adds colour: the channels are no longer equal everywhere.
    assert np.mean(np.abs(rgb[..., 0] - rgb[..., 2])) > 1.0


def test_info_on_a_killed_run_skips_its_torn_metrics_line(tiny_model: Path, tmp_path: Path) -> None:
    # The state a kill mid-append leaves: a whole first line and half of the second.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model = run_dir / "model.keras"
    model.write_bytes(tiny_model.read_bytes())
    (run_dir / "config.json").write_text(json.dumps({"settings": {"model": "tiny", "epochs": 4}}))
    first = {"epoch": 1, "step": 10, "val_psnr": 21.5}
    (run_dir / "metrics.jsonl").write_text(json.dumps(first) + '\n{"epoch": 2, "step": 2')
    result = run("info", "--json", str(model))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    description = json.loads(result.stdout)
    assert description["last_epoch"] == first
    assert description["training"] == {"model": "tiny", "epochs": 4}


def test_apply_backend_must_fit_the_model(
    photo_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    photo = str(sorted(photo_dir.iterdir())[0])
    wrong = run("apply", photo, "--model", str(tiny_model), "--backend", "onnx", "-o", "x.png")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.count("\n") == 1 and "--backend tf" in wrong.stderr
    out = tmp_path / "tf.png"
    right = run("apply", photo, "--model", str(tiny_model), "--backend", "tf", "-o", str(out))
    assert right.returncode == 0, right.stderr
    assert Path(right.stdout.strip()) == out and out.is_file()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["eval", "default", "{photos}", "--render-size", "0"], "--render-size"),
        (["apply", "-", "-o", "-", "--render-size", "0"], "--render-size"),
        (["apply", "-", "-o", "-", "--batch-size", "0"], "--batch-size"),
        (["apply", "{photo}", "-o", "-"], "-o -"),
        (["apply", "{photo}", "--quality", "0"], "--quality"),
        (["eval", "default", "{photos}", "--sheet-count", "0"], "--sheet-count"),
        (["export", "default", "{tmp}/x.onnx", "--quantize", "float16"], "--quantize"),
        (["export", "default", "{tmp}/x.tflite", "--quantize", "int8"], "--photos"),
    ],
    ids=lambda value: value if isinstance(value, str) else "_".join(value[:1] + value[-2:]),
)
def test_bad_options_are_one_line_usage_errors_on_every_path(
    argv: list[str], option: str, photo_dir: Path, tmp_path: Path
) -> None:
    photo = sorted(photo_dir.iterdir())[0]
    argv = [a.format(photos=photo_dir, photo=photo, tmp=tmp_path) for a in argv]
    result = subprocess.run(
        [PY, "-m", "colorize_cli", *argv],
        input=photo.read_bytes(),
        capture_output=True,
        timeout=120,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1 and option in stderr
    assert result.stdout == b""


def test_cli_choices_are_what_the_library_accepts() -> None:
    from colorize_cli import constants
    from colorize_cli.imaging import writing
    from colorize_cli.inference import backends, evaluate, export

    assert constants.BACKENDS == backends.BACKENDS
    assert constants.SHEET_COUNT == evaluate.DEFAULT_SHEET_COUNT
    assert export.FORMATS is constants.EXPORT_FORMATS  # one tuple, not a copy
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200
    for format in constants.PHOTO_FORMATS:
        written = Image.open(io.BytesIO(writing.encode_image(rgb, format)))
        assert written.format == writing.output_format(f"x.{format}")
        assert written.size == (6, 4)


@pytest.mark.parametrize("before_its_line", [False, True])
def test_ctrl_c_while_apply_prints_still_lists_every_photo_it_wrote(
    photo_dir: Path,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before_its_line: bool,
) -> None:
    """Ctrl-C (a real SIGINT) that lands while the CLI prints an outcome (outside `apply`),
    before or after that photo's line is out, waits for the line, then is raised inside the run,
    which lists the photos its finishing thread had written meanwhile: what is on disk is what
    stdout lists, each once, and the exit code is 130."""
    import os
    import signal
    import time

    import typer
    from typer.testing import CliRunner

    from colorize_cli.cli import app

    real, printed = typer.echo, []

    def echo(message: object = None, **kwargs: object) -> None:
        printed.append(message)
        if len(printed) == 1 and before_its_line:
            os.kill(os.getpid(), signal.SIGINT)
        real(message, **kwargs)
        if len(printed) == 1 and not before_its_line:
            os.kill(os.getpid(), signal.SIGINT)
        if len(printed) == 1:
            time.sleep(1.0)  # the next photo is written meanwhile

    monkeypatch.setattr(typer, "echo", echo)
    out = tmp_path / "out"
    photos = [str(p) for p in sorted(photo_dir.glob("*.jpg"))[:4]]
    arguments = ["apply", *photos, "--out-dir", str(out), "--model", str(tiny_model)]
    result = CliRunner().invoke(app, [*arguments, "--batch-size", "1", "--format", "png"])
    assert result.exit_code == 130, result.output
    listed = sorted(Path(line) for line in result.stdout.splitlines())
    assert len(listed) >= 2, [p.name for p in out.iterdir()]  # printed, and written meanwhile
    assert sorted(out.iterdir()) == listed
