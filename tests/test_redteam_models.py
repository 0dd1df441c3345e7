"""Hostile model files and videos from the red team (issue 19, items 07, 10, 11 and 12, models
asking for huge tensors, and models whose allowed ops grow a tensor together), each through the
real CLI: the exit code, a one-line reason naming the file, no traceback, and the good inputs of
the call done. Models are forged small
here (the scripts in ../shared/redteam/ show the originals); docs/robustness.md has the table,
docs/export.md the op allow-lists and size bounds.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_redteam import colorize, gradient, outputs

from colorize_cli.errors import ModelError
from colorize_cli.inference import backends, model_checks, model_files, tensor_memory, tflite_file

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

REFUSED = "refused: the model uses ops that `colorize export` never writes"
CONTRACT = {"contract": 1, "stride": 1, "output": "ab"}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """good.jpg and good2.jpg (64x48) and w40.jpg (40x30) in an empty working folder."""
    Image.fromarray(gradient()).save(tmp_path / "good.jpg")
    Image.fromarray(gradient(48, 40)).save(tmp_path / "good2.jpg")
    Image.fromarray(gradient(40, 30)).save(tmp_path / "w40.jpg")
    return tmp_path


def save_onnx(
    path: Path, nodes: list, initializers: list, output_shape: tuple = ("N", "H", "W", 2)
):
    """A graph from (N, H, W, 1) `x` to `y` with colorize metadata, as the red team forged them."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "H", "W", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(output_shape))],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"colorize": json.dumps(CONTRACT)})
    path.write_bytes(model.SerializeToString())
    return path


def constant(name: str, value: object, dtype: type = np.float32):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array(value, dtype), name)


def zeros_node():
    from onnx import helper

    return helper.make_node("Mul", ["x", "zero"], ["z"])


# 12 ----------------------------------------------------------------------------------------------


def export_savedmodel(folder: Path, body) -> Path:  # noqa: ANN001
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
        def serve(self, x):  # noqa: ANN001, ANN202
            return {"ab": body(tf, x)}

    module = Module()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    (folder / "assets.extra").mkdir()
    (folder / "assets.extra" / "colorize.json").write_text(json.dumps(CONTRACT))
    return folder


@pytest.mark.slow
def test_savedmodels_that_touch_files_are_refused_by_the_allow_list(photos: Path) -> None:
    pwned = photos / "PWNED.txt"

    def printer(tf, x):  # noqa: ANN001, ANN202
        tf.print("code from a model file", output_stream=f"file://{pwned}")
        return tf.concat([x * 0, x * 0], -1)

    def reader(tf, x):  # noqa: ANN001, ANN202
        lines = tf.data.TextLineDataset("/etc/passwd").reduce(
            tf.constant(0, tf.int64), lambda a, _: a + 1
        )
        return tf.concat([x * 0 + tf.cast(lines, tf.float32), x * 0], -1)

    export_savedmodel(photos / "sm_print", printer)
    export_savedmodel(photos / "sm_read", reader)
    for model, op in (("sm_print", "PrintV2"), ("sm_read", "TextLineDataset")):
        run = colorize("apply", "good.jpg", "--model", model, "--out-dir", "out", cwd=photos)
        assert run.returncode == 2 and len(run.errors) == 1, run.stderr
        assert run.errors[0].startswith(f"error: {model}: {REFUSED} (") and op in run.errors[0]
    assert not pwned.exists() and not (photos / "out").exists()


def test_savedmodel_checkpoint_ops_are_allowed_only_in_the_savers_functions(tmp_path: Path) -> None:
    """SaveV2 sits in every SavedModel's `_traced_save`, which loading never runs; the same op
    reached from the serving function is refused."""

    def saver(tf, x):  # noqa: ANN001, ANN202
        tf.raw_ops.SaveV2(
            prefix=str(tmp_path / "written"),
            tensor_names=["x"],
            shape_and_slices=[""],
            tensors=[tf.constant(1.0)],
        )
        return tf.concat([x, x], -1)

    def plain(tf, x):  # noqa: ANN001, ANN202
        return tf.concat([x, x], -1)

    for body, refused in ((saver, {"SaveV2"}), (plain, set())):
        folder = export_savedmodel(tmp_path / body.__name__, body)
        data = (folder / "saved_model.pb").read_bytes()
        assert model_checks.savedmodel_refused_ops(data, folder) == refused


# 11c ---------------------------------------------------------------------------------------------


def test_an_onnx_loop_is_refused_before_it_runs(photos: Path) -> None:
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c2"]), helper.make_node("Identity", ["a"], ["a2"])],
        "b",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
            helper.make_tensor_value_info("a2", TensorProto.FLOAT, [1]),
        ],
    )
    save_onnx(
        photos / "loop.onnx",
        [
            helper.make_node("Loop", ["M", "C", "A"], ["af"], body=body),
            helper.make_node("Mul", ["x", "af"], ["z"]),
            helper.make_node("Concat", ["z", "z"], ["y"], axis=3),
        ],
        [constant("M", 2**62, np.int64), constant("C", True, np.bool_), constant("A", [0.0])],
    )
    run = colorize(
        "apply", "good.jpg", "--model", "loop.onnx", "--out-dir", "out", cwd=photos, timeout=60
    )
    assert run.returncode == 2
    assert run.errors == [
        f"error: loop.onnx: {REFUSED} (Loop); file access, control flow and custom ops are not "
        "run (docs/export.md)"
    ]


def test_a_refused_op_is_named_on_one_line(tmp_path: Path) -> None:
    from onnx import helper

    path = save_onnx(
        tmp_path / "m.onnx", [helper.make_node("Evil\nOp" + "x" * 99, ["x"], ["y"])], []
    )
    with pytest.raises(ModelError) as caught:
        model_checks.check_onnx(path.read_bytes(), path)
    assert f"{REFUSED} (Evil\\nOp{'x' * 29}...);" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_tflite_while_is_refused_before_it_runs(photos: Path) -> None:
    from colorize_cli.inference import converters
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
    def endless(x):  # noqa: ANN001, ANN202
        n = tf.while_loop(lambda i: tf.reduce_sum(x) >= -1.0, lambda i: i + 1.0, [tf.constant(0.0)])
        return tf.concat([x * 0 + n[0], x * 0], -1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([endless.get_concrete_function()])
    flat = converter.convert()
    model = photos / "while.tflite"
    model.write_bytes(converters._with_tflite_metadata(flat, json.dumps(CONTRACT).encode()))
    run = colorize(
        "apply", "good.jpg", "--model", "while.tflite", "--out-dir", "out", cwd=photos, timeout=60
    )
    assert run.returncode == 2 and len(run.errors) == 1, run.stderr
    assert (
        run.errors[0].startswith(f"error: while.tflite: {REFUSED} (") and "WHILE" in run.errors[0]
    )


def test_tflite_op_codes_are_the_schemas() -> None:
    from ai_edge_litert import schema_py_generated as schema

    for name, code in tflite_file.TFLITE_OPS.items():
        assert getattr(schema.BuiltinOperator, name) == code, name
    for code, name in model_checks._TFLITE_NAMES.items():
        assert getattr(schema.BuiltinOperator, name) == code, name


def test_the_bundled_tflite_uses_only_allowed_ops_and_bounded_sizes() -> None:
    from colorize_cli.inference.colorizer import DEFAULT_MODEL_PATH

    path = DEFAULT_MODEL_PATH.with_suffix(".tflite")
    file = tflite_file.read_tflite(path.read_bytes(), path)
    codes = tflite_file.tflite_op_codes(file, path)
    assert codes and codes <= set(tflite_file.TFLITE_OPS.values())
    model_checks.check_tflite(file, path)


def test_opening_a_tflite_reads_its_flatbuffer_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteBackend's checks (metadata, ops, sizes, tensor lives, quantisation) share one read of
    the file's flatbuffer: one TfliteFile, each of its table vectors read once."""
    from colorize_cli.inference.colorizer import DEFAULT_MODEL_PATH

    files, reads = [], []
    init, tables = tflite_file.TfliteFile.__init__, tflite_file.TfliteFile.tables

    def counted_init(self: tflite_file.TfliteFile, data: bytes) -> None:
        files.append(self)
        init(self, data)

    def counted_tables(self: tflite_file.TfliteFile, tab: Any, index: int) -> list[Any]:
        reads.append((tab.Pos, index))
        return tables(self, tab, index)

    monkeypatch.setattr(tflite_file.TfliteFile, "__init__", counted_init)
    monkeypatch.setattr(tflite_file.TfliteFile, "tables", counted_tables)
    backends.LiteBackend(DEFAULT_MODEL_PATH.with_suffix(".tflite"))
    assert len(files) == 1
    assert reads and len(reads) == len(set(reads)), reads


# sizes -------------------------------------------------------------------------------------------

SIZES = "(a model's sizes are bounded: docs/export.md)"


def reduced(nodes: list) -> list:
    """`nodes` making `big`, then y = x * mean(big), twice: big is made, then forgotten."""
    from onnx import helper

    return [
        *nodes,
        helper.make_node("ReduceMean", ["big"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["x", "mean"], ["z"]),
        helper.make_node("Concat", ["z", "z"], ["y"], axis=3),
    ]


def resize_to_own_shape(factors: list[int], axes: tuple = (0, 1, 2, 3)) -> tuple[list, list]:
    """A Resize of x to Shape(x)[axes] * factors: tied to the input as the exporter's are."""
    from onnx import helper

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "axes"], ["sides"]),
        helper.make_node("Mul", ["sides", "factors"], ["sizes"]),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["big"], mode="nearest"),
    ]
    return nodes, [constant("axes", list(axes), np.int64), constant("factors", factors, np.int64)]


def hostile_onnx(case: str) -> tuple[list, list]:
    """(nodes making `big`, initializers) of a model that asks for a huge tensor."""
    from onnx import helper

    def node(*args: object, **kwargs: object) -> object:
        return helper.make_node(*args, **kwargs)

    if case == "constant size":
        return [node("Resize", ["x", "", "", "sizes"], ["big"], mode="nearest")], [
            constant("sizes", [1, 100_000, 100_000, 1], np.int64)
        ]
    if case == "own size x 100000":
        return resize_to_own_shape([1, 100_000, 100_000, 1])
    if case == "pad":
        return [node("Pad", ["x", "pads"], ["big"])], [
            constant("pads", [0, 0, 0, 0, 0, 10**9, 0, 0], np.int64)
        ]
    if case == "scales":
        return [node("Resize", ["x", "", "scales"], ["big"], mode="nearest")], [
            constant("scales", [1, 10_000, 10_000, 1])
        ]
    if case == "width for height":  # side 1 asked as side 2: a 1 x 10^6 strip becomes 10^12
        return resize_to_own_shape([1, 1, 1, 1], axes=(0, 2, 2, 3))
    if case == "side times side":
        nodes, initializers = resize_to_own_shape([1, 1, 1, 1])
        nodes[2] = node("Mul", ["sides", "sides"], ["sizes"])
        return nodes, initializers
    if case == "computed scales":
        return [
            node("Shape", ["x"], ["shape"]),
            node("Cast", ["shape"], ["scales"], to=1),
            node("Resize", ["x", "", "scales"], ["big"], mode="nearest"),
        ], []
    if case == "computed pads":
        return [
            node("Shape", ["x"], ["shape"]),
            node("Concat", ["shape", "shape"], ["pads"], axis=0),
            node("Pad", ["x", "pads"], ["big"]),
        ], []
    if case == "ConstantOfShape":
        return [node("ConstantOfShape", ["sizes"], ["big"])], [
            constant("sizes", [1, 100_000, 100_000, 1], np.int64)
        ]
    if case == "Expand":
        return [node("Expand", ["x", "sizes"], ["big"])], [
            constant("sizes", [1, 100_000, 100_000, 1], np.int64)
        ]
    assert case == "Tile", case
    return [node("Tile", ["x", "repeats"], ["big"])], [
        constant("repeats", [1, 10_000, 10_000, 1], np.int64)
    ]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("constant size", "Resize to a constant size (1x100000x100000x1): a resize may only "
         "scale its own input, by at most 8 a side"),
        ("own size x 100000", "Resize by 100000 on a side (1e+10 in all), over the bound of 8 a "
         "side and 64 in all"),
        ("pad", "Pad of 1000000000 on a side, over the bound of 32"),
    ],
)  # fmt: skip
def test_an_onnx_model_asking_for_a_huge_tensor_is_refused_when_opened(
    photos: Path, case: str, reason: str
) -> None:
    save_onnx(photos / "big.onnx", reduced(hostile_onnx(case)[0]), hostile_onnx(case)[1])
    run = colorize(
        "apply", "good.jpg", "good2.jpg", "--model", "big.onnx", "--out-dir", "out",
        cwd=photos, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.errors == [f"error: big.onnx: refused: {reason} {SIZES}"]
    assert not (photos / "out").exists()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("scales", "Resize by 10000 on a side (1e+08 in all)"),
        ("width for height", "Resize to a size computed from something other than its input's"),
        ("side times side", "Resize to a size computed from something other than its input's"),
        ("computed scales", "Resize by scales that are not constants in the file"),
        ("computed pads", "Pad by pads that are not constant integers in the file"),
        ("ConstantOfShape", REFUSED),
        ("Expand", REFUSED),
        ("Tile", REFUSED),
    ],
)
def test_every_way_to_a_huge_onnx_tensor_is_refused(tmp_path: Path, case: str, reason: str) -> None:
    nodes, initializers = hostile_onnx(case)
    path = save_onnx(tmp_path / "big.onnx", reduced(nodes), initializers)
    with pytest.raises(ModelError) as caught:
        model_checks.check_onnx(path.read_bytes(), path)
    if reason == REFUSED:  # the allow-list keeps out the ops that make tensors of any size
        assert caught.value.reason.startswith(f"{REFUSED} ({case})"), caught.value.reason
    else:
        assert caught.value.reason.startswith(f"refused: {reason}"), caught.value.reason


@pytest.mark.parametrize(
    ("factors", "refused"),
    [([1, 2, 2, 1], False), ([1, 8, 8, 1], False), ([1, 9, 1, 1], True), ([2, 8, 8, 1], True)],
)
def test_a_resize_of_its_own_size_is_bounded_by_side_and_in_all(
    tmp_path: Path, factors: list[int], refused: bool
) -> None:
    path = save_onnx(tmp_path / "m.onnx", reduced(resize_to_own_shape(factors)[0]),
                     resize_to_own_shape(factors)[1])  # fmt: skip
    if refused:
        with pytest.raises(ModelError, match=r"refused: Resize by \d+ on a side"):
            model_checks.check_onnx(path.read_bytes(), path)
    else:
        model_checks.check_onnx(path.read_bytes(), path)


def test_a_resize_the_way_the_exporter_writes_it_runs(photos: Path) -> None:
    """Shape(x)[1:3] * 2 through Slice, Squeeze, Mul, Unsqueeze and Concat, as tf2onnx writes
    it (on NCHW there; x is NHWC here)."""
    from onnx import helper

    save_onnx(
        photos / "twice.onnx",
        reduced([
            helper.make_node("Shape", ["x"], ["shape"]),
            *(helper.make_node("Slice", ["shape", f"s{i}", f"e{i}", "zero"], [f"side{i}"])
              for i in range(4)),
            *(helper.make_node("Squeeze", [f"side{i}", "zero"], [f"scalar{i}"]) for i in (1, 2)),
            *(helper.make_node("Mul", [f"scalar{i}", "double"], [f"twice{i}"]) for i in (1, 2)),
            *(helper.make_node("Unsqueeze", [f"twice{i}", "zero"], [f"new{i}"]) for i in (1, 2)),
            helper.make_node("Concat", ["side0", "new1", "new2", "side3"], ["sizes"], axis=0),
            helper.make_node("Resize", ["x", "", "", "sizes"], ["big"], mode="nearest"),
        ]),
        [
            constant("zero", [0], np.int64),
            *(constant(f"s{i}", [i], np.int64) for i in range(4)),
            *(constant(f"e{i}", [i + 1], np.int64) for i in range(4)),
            constant("double", 2, np.int64),
        ],
    )  # fmt: skip
    run = colorize(
        "apply", "good.jpg", "--model", "twice.onnx", "--out-dir", "out", cwd=photos, timeout=60
    )
    assert run.returncode == 0 and run.errors == [], run.stderr
    assert outputs(photos / "out") == ["good.jpg"]


def hostile_tflite(path: Path, grow) -> None:  # noqa: ANN001 - a TensorFlow function
    """A .tflite with colorize's contract whose output is the input times the mean of `grow(x)`:
    whatever `grow` asks for, the model's own output stays a well-formed (1, H, W, 2)."""
    from colorize_cli.inference import converters
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
    def hostile(x):  # noqa: ANN001, ANN202
        mean = tf.reduce_mean(grow(x), axis=[1, 2, 3], keepdims=True)
        return tf.concat([x * mean, x * mean], -1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([hostile.get_concrete_function()])
    flat = converters._with_tflite_metadata(converter.convert(), json.dumps(CONTRACT).encode())
    path.write_bytes(flat)


@pytest.mark.slow
def test_a_tflite_model_asking_for_a_huge_tensor_is_refused_when_opened(photos: Path) -> None:
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()
    cases = {
        "constant.tflite": (
            lambda x: tf.image.resize(x, [100_000, 100_000]),
            "RESIZE_BILINEAR to a constant size (100000x100000): a resize may only scale its "
            "own input, by at most 8 a side",
        ),
        "times.tflite": (
            lambda x: tf.image.resize(x, [tf.shape(x)[1] * 1000, tf.shape(x)[2] * 1000]),
            "RESIZE_BILINEAR by 1000 on a side (1e+06 in all), over the bound of 8 a side and "
            "64 in all",
        ),
        "pad.tflite": (
            lambda x: tf.pad(x, [[0, 0], [0, 10**6], [0, 0], [0, 0]]),
            "PAD of 1000000 on a side, over the bound of 32",
        ),
    }
    for name, (make_big, reason) in cases.items():
        hostile_tflite(photos / name, make_big)
        run = colorize(
            "apply", "good.jpg", "--model", name, "--out-dir", "out", cwd=photos, timeout=60
        )
        assert run.returncode == 2, run.stderr
        assert run.errors == [f"error: {name}: refused: {reason} {SIZES}"]
        assert not (photos / "out").exists()


# memory ------------------------------------------------------------------------------------------

MEMORY = (
    r"the model would need [\d.]+ [MG]iB of tensors for a 48x64 input{}, over the bound of 1 GiB "
    r"\(docs/export\.md\)"
)
# /usr/bin/time -f prints the command's peak resident memory after it ends.
TIME = ("/usr/bin/time", "-f", "peak-rss-kb %M") if os.path.exists("/usr/bin/time") else ()


def growing_onnx(case: str) -> tuple[list, list]:
    """(nodes making `big`, initializers) of a model whose allowed ops, each within its own
    bounds, grow the photo together."""
    from onnx import helper

    if case == "resizes":  # ten resizes of 8 a side in a row: 64^10 times the photo
        nodes, initializers = [], [constant("axes", [0, 1, 2, 3], np.int64),
                                   constant("factors", [1, 8, 8, 1], np.int64)]  # fmt: skip
        for i in range(10):
            into, out = f"r{i - 1}" if i else "x", "big" if i == 9 else f"r{i}"
            nodes += [
                helper.make_node("Shape", [into], [f"shape{i}"]),
                helper.make_node("Gather", [f"shape{i}", "axes"], [f"sides{i}"]),
                helper.make_node("Mul", [f"sides{i}", "factors"], [f"sizes{i}"]),
                helper.make_node("Resize", [into, "", "", f"sizes{i}"], [out], mode="nearest"),
            ]
        return nodes, initializers
    if case == "concats":  # a Concat of a tensor with itself, 30 times: 2^30 times the photo
        names = ["x", *(f"c{i}" for i in range(29)), "big"]
        return [
            helper.make_node("Concat", [a, a], [b], axis=2)
            for a, b in zip(names[:-1], names[1:], strict=True)
        ], []
    if case == "Mul":  # broadcast by a (1, 1, 1, 100000) constant
        return [helper.make_node("Mul", ["x", "k"], ["big"])], [
            constant("k", np.ones((1, 1, 1, 10**5)))
        ]
    if case == "Gather":  # 100,000 indices
        return [helper.make_node("Gather", ["x", "at"], ["big"], axis=3)], [
            constant("at", np.zeros(10**5), np.int32)
        ]
    assert case == "Conv", case  # 100,000 output channels
    return [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["big"]),
    ], [constant("w", np.ones((10**5, 1, 1, 1)))]


@pytest.mark.parametrize(
    ("case", "op", "code"), [("resizes", "Resize", 2), ("concats", "Concat", 2), ("Mul", "Mul", 1)]
)
def test_a_model_growing_a_tensor_op_by_op_fails_within_the_memory_bound(
    photos: Path, case: str, op: str, code: int
) -> None:
    """Each op passes its own bounds; the arena ONNX Runtime allocates from stops the run at 1
    GiB. Every photo fails alone: a 4x4 one needs 6 MiB for the Mul, which it gets (exit 1),
    and over the bound for the resizes and concats (exit 2, nothing written)."""
    save_onnx(photos / "grow.onnx", reduced(growing_onnx(case)[0]), growing_onnx(case)[1])
    Image.fromarray(gradient(4, 4)).save(photos / "tiny.png")
    run = colorize(
        "apply", "good.jpg", "tiny.png", "--model", "grow.onnx", "--out-dir", "out",
        cwd=photos, timeout=60, prefix=TIME,
    )  # fmt: skip
    assert run.returncode == code, run.stderr
    assert re.fullmatch(
        "failed: good.jpg: " + MEMORY.format(rf" \({op} asked for [\d.]+ [MG]iB\)"), run.errors[0]
    ), run.errors
    assert outputs(photos / "out") == (["tiny.png"] if code == 1 else [])
    assert len(run.errors) == (1 if code == 1 else 2)
    if TIME:
        peak = int(re.findall(r"peak-rss-kb (\d+)", run.stderr)[-1]) * 1024
        assert peak < 1.5e9, peak  # 0.9 GB measured for the concats, 0.15 GB for the resizes


@pytest.mark.parametrize("case", ["Gather", "Conv"])
def test_a_hundred_thousand_channels_fail_the_run_not_the_process(
    tmp_path: Path, case: str
) -> None:
    path = save_onnx(tmp_path / "wide.onnx", reduced(growing_onnx(case)[0]), growing_onnx(case)[1])
    backend = backends.OnnxBackend(path)
    with pytest.raises(ModelError) as caught:
        backend.run(np.zeros((1, 48, 64, 1), np.float32))
    assert re.fullmatch(MEMORY.format(rf" \({case} asked for 1\.14 GiB\)"), caught.value.reason)
    assert backend.run(np.zeros((1, 4, 4, 1), np.float32)).shape == (1, 4, 4, 2)


@pytest.mark.slow
def test_a_tflite_model_growing_a_tensor_is_refused_before_it_runs(photos: Path) -> None:
    """Shapes known once the input's size is set are summed before LiteRT runs the model: a Mul
    by a (1, 1, 1, 100000) constant fails the 48x64 photo and not the 4x4 one (exit 1); 30
    self-Concats fail both (exit 2)."""
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()
    Image.fromarray(gradient(4, 4)).save(photos / "tiny.png")

    def concats(x):  # noqa: ANN001, ANN202
        for _ in range(30):
            x = tf.concat([x, x], 2)
        return x

    for name, grow, code in (
        ("mul.tflite", lambda x: x * tf.ones([1, 1, 1, 10**5]), 1),
        ("concat.tflite", concats, 2),
    ):
        hostile_tflite(photos / name, grow)
        run = colorize(
            "apply", "good.jpg", "tiny.png", "--model", name, "--out-dir", f"out-{name}",
            cwd=photos, timeout=60, prefix=TIME,
        )  # fmt: skip
        assert run.returncode == code, run.stderr
        assert re.fullmatch("failed: good.jpg: " + MEMORY.format(""), run.errors[0]), run.errors
        assert outputs(photos / f"out-{name}") == (["tiny.png"] if code == 1 else [])
        if TIME:
            assert int(re.findall(r"peak-rss-kb (\d+)", run.stderr)[-1]) < 500_000


def test_the_bundled_model_s_widest_default_batch_is_within_the_memory_bound() -> None:
    from colorize_cli.inference.colorizer import DEFAULT_MODEL_PATH

    backend = backends.LiteBackend(DEFAULT_MODEL_PATH.with_suffix(".tflite"))
    x = np.zeros((8, 160, 640, 1), np.float32)  # 8 photos of aspect 4 at render size 160
    feeds = model_files.model_feeds(backend.takes_hints, x, None, None)
    backend._check_memory({key: value.shape for key, value in feeds.items()}, x)


def test_the_peak_counts_the_tensors_alive_together() -> None:
    lives = [(0, 0, 1), (1, 1, 2), (2, 2, 3), (3, 3, 3)]  # (tensor, first op, last op)
    assert tensor_memory.peak_bytes(lives, {0: 10, 1: 20, 2: 30, 3: 40}.__getitem__) == 70


# 11a, 11b ----------------------------------------------------------------------------------------


def test_run_time_outputs_are_checked_against_the_input(photos: Path) -> None:
    from onnx import helper

    # a) always batch 1: the two same-size photos fail together, then each alone is fine
    save_onnx(
        photos / "batch1.onnx",
        [
            zeros_node(),
            helper.make_node("Slice", ["z", "start", "end", "axis"], ["z1"]),
            helper.make_node("Concat", ["z1", "z1"], ["y"], axis=3),
        ],
        [
            constant("zero", [0.0]),
            *(constant(n, [v], np.int64) for n, v in (("start", 0), ("end", 1), ("axis", 0))),
        ],
        ("B", "H", "W", 2),
    )
    Image.fromarray(gradient()).save(photos / "good3.jpg")
    run = colorize(
        "apply", "good.jpg", "good3.jpg", "--model", "batch1.onnx", "--out-dir", "a", cwd=photos
    )
    assert run.returncode == 0 and run.errors == [], run.stderr
    assert outputs(photos / "a") == ["good.jpg", "good3.jpg"]

    # b) seven channels, counted at run time (a slice of 7 as long as the width) where the file
    # leaves the channel count free
    save_onnx(
        photos / "seven.onnx",
        [
            zeros_node(),
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Gather", ["shape", "two"], ["width"]),
            helper.make_node("Slice", ["sevens", "start", "width", "three"], ["k"]),
            helper.make_node("Mul", ["z", "k"], ["y"]),
        ],
        [
            constant("zero", [0.0]),
            constant("sevens", np.ones((1, 1, 1, 7))),
            *(constant(n, [v], np.int64) for n, v in (("two", 2), ("start", 0), ("three", 3))),
        ],
        ("N", "H", "W", "C"),
    )
    run = colorize(
        "apply", "good.jpg", "w40.jpg", "--model", "seven.onnx", "--out-dir", "b", cwd=photos
    )
    assert run.returncode == 2 and len(run.errors) == 2, run.stderr  # nothing written
    for name, (h, w) in (("good.jpg", (48, 64)), ("w40.jpg", (30, 40))):
        assert (
            f"failed: {name}: the model broke the generator contract: it gave a (1, {h}, {w}, 7) "
            f"output for a 1x{h}x{w} input, not (1, {h}, {w}, 2)"
        ) in run.errors


def test_each_backend_checks_its_output_shape() -> None:
    x = np.zeros((2, 8, 16, 1), np.float32)
    assert model_files.checked_output(np.zeros((2, 8, 16, 2)), x, 2, Path("m")).dtype == np.float32
    for shape in ((1, 8, 16, 2), (2, 8, 16, 7), (2, 16, 8, 2), (2, 8, 16)):
        with pytest.raises(ModelError, match="broke the generator contract") as caught:
            model_files.checked_output(np.zeros(shape), x, 2, Path("m"))
        assert "\n" not in str(caught.value)


# 11d ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", ["1", "8"])
def test_a_model_that_fails_on_one_size_fails_those_photos_alone(photos: Path, batch: str) -> None:
    from onnx import helper

    # works only when the rendered width is 40 (a (1, 1, 40, 1) constant is added)
    save_onnx(
        photos / "w40only.onnx",
        [
            zeros_node(),
            helper.make_node("Add", ["z", "k"], ["z3"]),
            helper.make_node("Concat", ["z3", "z3"], ["y"], axis=3),
        ],
        [constant("zero", [0.0]), constant("k", np.zeros((1, 1, 40, 1)))],
    )
    run = colorize(
        "apply", "w40.jpg", "good.jpg", "good2.jpg", "--model", "w40only.onnx",
        "--out-dir", "d", "--batch-size", batch, cwd=photos,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert outputs(photos / "d") == ["w40.jpg"]
    assert "\x1b[" not in run.stderr and "onnxruntime" not in run.stderr  # the runtime's own log
    assert sorted(run.errors) == [
        f"failed: {name}: the model failed on a {size} input: Add: Attempting to broadcast an "
        f"axis by a dimension other than 1. 40 by {size.split('x')[1]}"
        for name, size in (("good.jpg", "48x64"), ("good2.jpg", "40x48"))
    ]


# 07 ----------------------------------------------------------------------------------------------


def test_eval_and_streams_refuse_model_paths_that_are_pipes_or_devices(photos: Path) -> None:
    reason = "not a regular file (a named pipe, socket or device)"
    os.mkfifo(photos / "pipe.tflite")
    os.mkfifo(photos / "pipe.keras")
    os.symlink("/dev/zero", photos / "zero.onnx")
    photo = (photos / "good.jpg").read_bytes()
    for model in ("pipe.tflite", "pipe.keras", "zero.onnx", "/dev/zero"):
        run = colorize("eval", model, "good.jpg", cwd=photos, timeout=60)
        assert run.returncode == 2 and run.errors == [f"error: {model}: {reason}"], run.stderr
        run = colorize(
            "apply", "-", "-o", "-", "--model", model, stdin=photo, cwd=photos, timeout=60
        )
        assert run.returncode == 2 and run.errors == [f"error: {model}: {reason}"], run.stderr
        assert run.stdout == b""


def test_a_savedmodel_folder_holding_a_pipe_or_device_is_refused(photos: Path) -> None:
    folder = photos / "saved"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    os.mkfifo(folder / "variables" / "variables.index")
    run = colorize(
        "apply", "good.jpg", "--model", "saved", "--out-dir", "out", cwd=photos, timeout=60
    )
    assert run.returncode == 2
    assert run.errors == [
        "error: saved: variables/variables.index is not a regular file (a named pipe, socket or "
        "device)"
    ]
    os.unlink(folder / "variables" / "variables.index")
    os.unlink(folder / "saved_model.pb")
    os.symlink("/dev/zero", folder / "saved_model.pb")
    run = colorize(
        "apply", "good.jpg", "--model", "saved", "--out-dir", "out", cwd=photos, timeout=60
    )
    assert run.returncode == 2 and len(run.errors) == 1
    assert "saved_model.pb is not a regular file" in run.errors[0]


def test_a_model_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.onnx"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(ModelError, match="file too large"):
        model_checks.read_model(path, 1024)


# 10 ----------------------------------------------------------------------------------------------


def write_video(path: Path, container: str, codec: str, extra: str) -> None:
    """Six 64x48 frames in `container` (whatever `path`'s name says), with an Opus audio or an
    ASS subtitle stream."""
    import av

    with av.open(str(path), "w", format=container) as out:
        options = {"deadline": "realtime", "cpu-used": "8"} if codec == "libvpx-vp9" else {}
        video = out.add_stream(codec, rate=10, options=options)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        other = out.add_stream(extra, rate=48000) if extra == "libopus" else out.add_stream(extra)
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 30, np.uint8), "rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if extra == "libopus":
            for i in range(10):
                sound = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), "flt", "mono")
                sound.sample_rate, sound.pts = 48000, i * 960
                out.mux(other.encode(sound))
            out.mux(other.encode(None))
        else:
            packet = av.Packet(b"0,0,Default,,0,0,0,,hello")
            packet.stream, packet.pts, packet.dts, packet.duration = other, 0, 0, 5
            packet.time_base = other.time_base
            out.mux(packet)


def test_a_stream_the_output_container_cannot_hold_is_left_out_with_a_note(photos: Path) -> None:
    write_video(photos / "webm.avi", "webm", "libvpx-vp9", "libopus")
    write_video(photos / "subs.mp4", "matroska", "libx264", "ass")
    write_video(photos / "plain.mkv", "matroska", "libx264", "libopus")
    run = colorize("apply", "webm.avi", "subs.mp4", "plain.mkv", "--out-dir", "out", cwd=photos)
    assert run.returncode == 0 and run.errors == [], run.stderr
    assert outputs(photos / "out") == ["plain.mkv", "subs.mp4", "webm.avi"]
    assert "webm.avi: not copied: audio stream 1 (opus), which avi cannot hold" in run.stderr
    assert "subs.mp4: not copied: subtitle stream 1 (ssa), which mp4 cannot hold" in run.stderr
    assert "plain.mkv: not copied" not in run.stderr  # Matroska holds Opus: copied
