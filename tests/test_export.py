"""Export: each format's round trip on a tiny model agrees with Keras through `Colorizer` (odd sizes
padded), exports that disagree are refused and removed, and the CLI's exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorize_cli import fsutil
from colorize_cli.cli import app
from colorize_cli.errors import ModelError, UsageError
from colorize_cli.imaging import color
from colorize_cli.inference import (
    backends,
    converters,
    export,
    model_checks,
    model_files,
    tflite_file,
)
from colorize_cli.inference.colorizer import Colorizer

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

SIZES = ((64, 96), (100, 130))  # 100x130 is padded to the stride (8)
RENDER = 128


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    photos = []
    for height, width in SIZES:
        y, x = np.mgrid[0:height, 0:width]
        rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1)
        noise = rng.integers(0, 40, (height, width, 3))
        photos.append(np.clip(rgb + noise, 0, 255).astype(np.uint8))
    return photos


@pytest.fixture(scope="module")
def colored_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` generator with a random output layer, so it predicts real colour."""
    from colorize_cli.nets.models import build_generator, model_config

    model = build_generator(model_config("tiny"))
    out_conv = model.get_layer("out_conv")
    rng = np.random.default_rng(1)
    out_conv.kernel.assign(rng.normal(0, 0.3, out_conv.kernel.shape).astype(np.float32))
    path = tmp_path_factory.mktemp("model") / "colored.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for i, photo in enumerate(_photos()):
        Image.fromarray(photo).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def exported(
    colored_model: Path, photo_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, export.ExportReport]:
    folder = tmp_path_factory.mktemp("exported")
    cases = {
        "onnx": ("m.onnx", None, None),
        "tflite": ("m.tflite", None, None),
        "savedmodel": ("m_saved", "savedmodel", None),
        "int8": ("m8.tflite", None, "int8"),
    }
    reports = {}
    for name, (file, format, quantize) in cases.items():
        options = export.ExportOptions(
            colored_model,
            folder / file,
            format=format,
            quantize=quantize,
            photos=(str(photo_folder),),
            render_size=RENDER,
        )
        reports[name] = export.export(options)
    return reports


@pytest.mark.parametrize("name", ["onnx", "tflite", "savedmodel", "int8"])
def test_round_trip_agrees_with_keras(
    name: str, exported: dict[str, export.ExportReport], colored_model: Path
) -> None:
    report = exported[name]
    assert report.path.exists() and fsutil.temp_paths(report.path) == []
    assert report.photos == 2 and not report.synthetic
    assert report.max_diff <= report.tolerance[0] and report.mean_diff <= report.tolerance[1]
    keras_colorizer = Colorizer(colored_model, render_size=RENDER)
    colorizer = Colorizer(report.path, render_size=RENDER)
    assert colorizer.backend.name == {"onnx": "onnx", "savedmodel": "tf"}.get(name, "lite")
    assert colorizer.stride == keras_colorizer.stride == 8
    items = list(enumerate(_photos()))
    pairs = zip(keras_colorizer.chroma_many(items), colorizer.chroma_many(items), strict=True)
    limit = report.tolerance[0] if name == "int8" else 1e-3
    for ((_, gray, expected), (_, _, got)), (height, width) in zip(pairs, SIZES, strict=True):
        assert got.shape == expected.shape == (height, width, 2)
        assert np.abs(expected).max() > 5, "the model predicts colour"
        assert np.abs(got - expected).max() < limit
        out = colorizer.colorize(gray)
        assert out.shape == (height, width, 3)
        assert np.abs(color.grayscale(out).astype(int) - gray).max() <= 1


def test_metadata_carries_the_contract(
    exported: dict[str, export.ExportReport], colored_model: Path
) -> None:
    import onnx

    digest = hashlib.sha256(colored_model.read_bytes()).hexdigest()
    proto = onnx.load(exported["onnx"].path)
    onnx_facts = json.loads({p.key: p.value for p in proto.metadata_props}["colorize"])
    lite = exported["tflite"].path
    flat = tflite_file.read_tflite(lite.read_bytes(), lite)
    lite_facts = json.loads(model_files.tflite_metadata(flat, lite))
    saved = exported["savedmodel"].path / "assets.extra" / "colorize.json"
    saved_facts = json.loads(saved.read_text())
    for facts, format in (
        (onnx_facts, "onnx"),
        (lite_facts, "tflite"),
        (saved_facts, "savedmodel"),
    ):
        assert facts["contract"] == 1 and facts["stride"] == 8 and facts["output"] == "ab"
        assert facts["source_sha256"] == digest and facts["format"] == format
        assert facts["preset"] is None or isinstance(facts["preset"], str)
    assert onnx_facts["opset"] == converters.ONNX_OPSET
    assert [i.name for i in proto.graph.input] == ["lightness"]
    assert [o.name for o in proto.graph.output] == ["ab"]


def test_an_export_beyond_tolerance_is_refused_and_removed(
    colored_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(export.TOLERANCE, "float32", (-1.0, -1.0))
    out = tmp_path / "m.tflite"
    with pytest.raises(ModelError, match="refused and removed"):
        export.export(export.ExportOptions(colored_model, out, render_size=64))
    assert list(tmp_path.iterdir()) == []


def test_out_of_the_wrong_kind_is_a_usage_error(colored_model: Path, tmp_path: Path) -> None:
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "file").write_bytes(b"")
    for out, format in (("folder.onnx", None), ("file", "savedmodel")):
        options = export.ExportOptions(colored_model, tmp_path / out, format=format, overwrite=True)
        with pytest.raises(UsageError, match="OUT is a"):
            export.export(options)


@pytest.mark.parametrize(
    ("out", "format", "quantize", "message"),
    [
        ("m.h5", None, None, "cannot tell the format"),
        ("m.onnx", "tflite", None, "does not match"),
        ("m.onnx", None, "float16", "TFLite exports only"),
        ("m.tflite", None, "int4", "--quantize must be"),
        ("m.tflite", None, "int8", "needs --photos"),
    ],
)
def test_bad_options_are_usage_errors(
    colored_model: Path,
    tmp_path: Path,
    out: str,
    format: str | None,
    quantize: str | None,
    message: str,
) -> None:
    with pytest.raises(UsageError, match=message):
        export.export(
            export.ExportOptions(colored_model, tmp_path / out, format=format, quantize=quantize)
        )


def _damaged(exported: dict[str, export.ExportReport], tmp_path: Path) -> list[Path]:
    """Truncated, random, empty and metadata-less copies of the exported files."""
    rng = np.random.default_rng(2)
    files = []
    for name in ("onnx", "tflite"):
        data = exported[name].path.read_bytes()
        suffix = exported[name].path.suffix
        for i, cut in enumerate((len(data) // 2, 1000, 10)):
            files.append(tmp_path / f"cut{i}{suffix}")
            files[-1].write_bytes(data[:cut])
        files.append(tmp_path / f"random{suffix}")
        files[-1].write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
        files.append(tmp_path / f"empty{suffix}")
        files[-1].write_bytes(b"")
    return files


def test_damaged_files_are_model_errors(
    exported: dict[str, export.ExportReport], tmp_path: Path
) -> None:
    for path in _damaged(exported, tmp_path):
        with pytest.raises(ModelError) as caught:
            Colorizer(path, render_size=64).colorize(_photos()[0])
        assert caught.value.path == str(path) and "\n" not in str(caught.value)


def test_foreign_onnx_without_metadata_or_with_the_wrong_input(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    def save(channels: int, with_metadata: bool) -> Path:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "h", "w", channels])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "h", "w", channels])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        if with_metadata:
            entry = model.metadata_props.add()
            entry.key, entry.value = (
                "colorize",
                json.dumps({"contract": 1, "stride": 8, "output": "ab"}),
            )
        path = tmp_path / f"c{channels}{with_metadata}.onnx"
        onnx.save(model, path)
        return path

    with pytest.raises(ModelError, match="no colorize metadata"):
        Colorizer(save(2, False))
    with pytest.raises(ModelError, match="not a colorize generator"):
        Colorizer(save(3, True))


def test_a_savedmodel_that_reads_files_is_refused(tmp_path: Path) -> None:
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()
    spec = tf.TensorSpec([None, None, None, 1], tf.float32, name="lightness")

    @tf.function(input_signature=[spec])
    def serve(lightness):  # noqa: ANN001, ANN202
        secret = tf.strings.length(tf.io.read_file("/etc/hostname"))
        return {"ab": tf.concat([lightness, lightness], -1) * tf.cast(secret, tf.float32)}

    folder = tmp_path / "hostile"
    tf.saved_model.save(tf.Module(), str(folder), signatures={"serving_default": serve})
    (folder / "assets.extra").mkdir()
    metadata = {"contract": 1, "stride": 1, "output": "ab"}
    (folder / "assets.extra" / "colorize.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match=r"never writes \(.*ReadFile"):
        Colorizer(folder)


def test_a_missing_runtime_names_the_extra(
    exported: dict[str, export.ExportReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UsageError, match=r"pip install 'colorize-cli\[onnx\]'"):
        Colorizer(exported["onnx"].path)


def test_backend_must_fit_the_format(exported: dict[str, export.ExportReport]) -> None:
    with pytest.raises(UsageError, match="runs on --backend onnx"):
        Colorizer(exported["onnx"].path, backend="lite")
    with pytest.raises(UsageError, match="--backend must be one of"):
        Colorizer(exported["onnx"].path, backend="torch")


runner = CliRunner()


def test_cli_export_prints_the_path_and_refuses_to_overwrite(
    colored_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cli.tflite"
    args = ["export", str(colored_model), str(out), "--render-size", "64"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert "differ from Keras by max" in result.stderr and "generated gray images" in result.stderr
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    bad = runner.invoke(app, ["export", str(colored_model), str(tmp_path / "x.zip")])
    assert bad.exit_code == 2 and "cannot tell the format" in bad.stderr


def test_cli_apply_and_eval_run_exported_models(
    exported: dict[str, export.ExportReport],
    colored_model: Path,
    photo_folder: Path,
    tmp_path: Path,
) -> None:
    scores = {}
    for name, model in (("keras", colored_model), ("onnx", exported["onnx"].path)):
        args = ["eval", str(model), str(photo_folder), "--render-size", str(RENDER), "--json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        scores[name] = json.loads(result.stdout.splitlines()[-1])["metrics"]["model"]
    for key, value in scores["keras"].items():
        assert f"{scores['onnx'][key]:.3g}" == f"{value:.3g}", key
    out = tmp_path / "out.png"
    photo = photo_folder / "p1.png"
    result = runner.invoke(
        app, ["apply", str(photo), "-o", str(out), "--model", str(exported["tflite"].path)]
    )
    assert result.exit_code == 0 and result.stdout.strip() == str(out)


def test_cli_apply_with_a_damaged_model_is_one_line_and_exit_2(
    exported: dict[str, export.ExportReport], photo_folder: Path, tmp_path: Path
) -> None:
    for path in _damaged(exported, tmp_path)[::3]:
        args = ["apply", str(photo_folder / "p0.png"), "-o", str(tmp_path / "o.png")]
        result = runner.invoke(app, [*args, "--model", str(path)])
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_the_bundled_tflite_is_the_bundled_keras_exported_and_agrees() -> None:
    from colorize_cli.inference.colorizer import DEFAULT_MODEL_PATH

    lite = DEFAULT_MODEL_PATH.with_suffix(".tflite")
    flat = tflite_file.read_tflite(lite.read_bytes(), lite)
    facts = json.loads(model_files.tflite_metadata(flat, lite))
    digest = hashlib.sha256(DEFAULT_MODEL_PATH.read_bytes()).hexdigest()
    assert facts["source_sha256"] == digest, "re-export: colorize export default " + str(lite)
    assert facts["precision"] == "float32" and facts["stride"] == 32
    light, reference = Colorizer(), Colorizer(backend="tf")
    assert (light.backend.name, reference.backend.name) == ("lite", "tf")
    items = list(enumerate(_photos()))
    pairs = zip(reference.chroma_many(items), light.chroma_many(items), strict=True)
    for (_, _, expected), (_, _, got) in pairs:
        assert np.abs(got - expected).max() < 0.01


def test_default_apply_never_imports_tensorflow(photo_folder: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out.png"
    code = (
        "import sys\n"
        "from colorize_cli.cli import app\n"
        f"sys.argv = ['colorize', 'apply', {str(photo_folder / 'p1.png')!r}, '-o', {str(out)!r}]\n"
        "try:\n    app()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["False", "False"] and out.is_file()


def test_export_help_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom colorize_cli.cli import app\n"
        "try:\n    app(['export', '--help'], prog_name='colorize')\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules, 'onnxruntime' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "--quantize" in result.stdout and result.stdout.split()[-2:] == ["False", "False"]


def test_onnx_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("lightness", TensorProto.FLOAT, ["n", "h", "w", 1])
    y = helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["n", "h", "w", 2])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [0.0, 0.0])
    weight.data_location = TensorProto.EXTERNAL
    del weight.float_data[:]
    graph = helper.make_graph(
        [helper.make_node("Add", ["lightness", "w"], ["ab"])], "g", [x], [y], [weight]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "colorize", json.dumps({"contract": 1, "stride": 1, "output": "ab"})
    for location in ("/etc/hostname", "../../../../etc/hostname"):
        for key, value in (("location", location), ("offset", "0"), ("length", "8")):
            item = model.graph.initializer[0].external_data.add()
            item.key, item.value = key, value
        path = tmp_path / "external.onnx"
        path.write_bytes(model.SerializeToString())
        with pytest.raises(ModelError, match="not a loadable ONNX model"):
            Colorizer(path)
        del model.graph.initializer[0].external_data[:]


@pytest.mark.slow
def test_every_op_the_exporter_writes_is_allowed(tmp_path: Path) -> None:
    """The op allow-lists (model_checks.ONNX_OPS, SAVEDMODEL_OPS, tflite_file.TFLITE_OPS) hold
    every op a fresh export of a hint model writes (the EfficientNet encoder, the decoder and the
    hint branch), in each format and precision, and its resizes are within the size bounds
    (model_sizes.py). The plain U-Net (`tiny`; `small` writes the same ops) is exported and run
    by the tests above, whose verification goes through the same checks."""
    from colorize_cli.nets.models import build_generator, model_config

    model = build_generator(model_config("lite0-hints"))
    metadata = {"contract": 2, "stride": 32, "output": "ab", "hints": True}
    metadata |= {"input": "L*", "output_units": "a*b*"}
    serving = converters.serving_function(model, "ab")
    # One shape: TFLite's calibrator cannot prepare a several-input model again for another
    # (`colorize export` refuses int8 for hint models anyway: docs/export.md).
    calibration = [np.random.default_rng(0).uniform(0, 100, (64, 128)).astype(np.float32)]
    converters.write_onnx(serving, tmp_path / "m.onnx", metadata)
    data = (tmp_path / "m.onnx").read_bytes()
    model_checks.check_onnx(data, tmp_path / "m.onnx")
    for precision in ("float32", "float16", "int8"):
        path = tmp_path / f"{precision}.tflite"
        converters.write_tflite(serving, path, metadata, precision, calibration)
        model_checks.check_tflite(tflite_file.read_tflite(path.read_bytes(), path), path)
    # XNNPACK aborts the process on this int8 graph (a double free in LiteRT 2.3): the backend
    # runs it on the builtin kernels, so a file made elsewhere cannot crash `apply`.
    lite = backends.LiteBackend(tmp_path / "int8.tflite")
    (ab,) = lite.run(np.zeros((1, 64, 64, 1), np.float32), None, None)
    assert ab.shape == (64, 64, 2)
    converters.write_savedmodel(serving, tmp_path / "saved", metadata)
    data = (tmp_path / "saved" / "saved_model.pb").read_bytes()
    assert model_checks.savedmodel_refused_ops(data, tmp_path / "saved") == set()


def test_int8_of_a_hint_model_is_refused_before_converting(tmp_path: Path) -> None:
    """LiteRT's XNNPACK aborts the process on a hint model's int8 graph (a double free): the
    export says so instead of writing a file that crashes whoever runs it."""
    photo = tmp_path / "photos" / "p.png"
    photo.parent.mkdir()
    Image.fromarray(_photos()[0]).save(photo)
    options = export.ExportOptions(
        None, tmp_path / "m.tflite", quantize="int8", photos=[str(photo.parent)]
    )
    with pytest.raises(UsageError, match="not available for a hint model.*float16"):
        export.export(options)
    assert list(tmp_path.iterdir()) == [photo.parent]
