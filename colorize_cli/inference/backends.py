"""The runtimes a generator runs on, behind one interface: `Backend.run(lightness) -> prediction`.

Keras on TensorFlow (`.keras`, the reference), ONNX Runtime (`.onnx`), LiteRT (`.tflite`) and
TensorFlow SavedModel folders. A runtime is imported only when a model of its kind is opened, and a
missing one is a UsageError naming the extra that installs it. Exported files carry the generator
contract as JSON metadata (`colorize export` writes it, docs/export.md); a file without it, or whose
tensors break the contract, is a ModelError. Files are data: no format here runs Python code.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from colorize_cli.errors import ModelError, UsageError, one_line
from colorize_cli.fsutil import (
    NOT_REGULAR,
    UnsafeFileError,
    open_regular,
    os_reason,
    read_regular_file,
)
from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
from colorize_cli.tf_setup import parked_stderr

# `--backend`: which runtime runs the model ("auto": the one its file format needs).
BACKENDS = ("auto", "tf", "onnx", "lite")
# Where exported files keep the contract: ONNX metadata_props key, TFLite metadata name, and the
# SavedModel's `assets.extra/colorize.json`.
METADATA_KEY = "colorize"
# 1: L* in, colour out. 2: also the hint inputs (`hints` and `palette`, imaging/hints.py) when
# the metadata says "hints": true. Both are read.
CONTRACT_VERSION = 2
CONTRACT_VERSIONS = (1, 2)
INPUT_NAMES = ("lightness", "hints", "palette")
OUTPUTS = {"ab": 2, "rgb": 3}  # metadata "output" -> channels
# The ops a model may use, per format: those `colorize export` writes for every preset, automatic
# and hint, float32, float16 and int8 (docs/export.md; tests/test_redteam_models.py checks the
# list against fresh exports), plus a few plain arithmetic siblings. Anything else is refused
# before the runtime sees the graph: file I/O (tf.io, tf.data, tf.print to a file), Python calls,
# control flow (an ONNX Loop of 2**62 iterations, a TFLite WHILE that never ends), custom ops.
ONNX_OPS = frozenset(
    {"Add", "AveragePool", "Cast", "Clip", "Concat", "Conv", "Div", "Gather", "Identity"}
    | {"LeakyRelu", "Max", "Min", "Mul", "Neg", "Pad", "Reciprocal", "ReduceMean", "Relu"}
    | {"Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Sqrt", "Squeeze", "Sub", "Tanh"}
    | {"Transpose", "Unsqueeze"}
)
# TFLite builtin operator codes (schema.fbs BuiltinOperator) by name.
TFLITE_OPS = {
    "ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
    "DEQUANTIZE": 6, "LOGISTIC": 14, "MUL": 18, "RELU": 19, "RELU6": 21, "RESHAPE": 22,
    "RESIZE_BILINEAR": 23, "TANH": 28, "PAD": 34, "MEAN": 40, "SUB": 41, "DIV": 42,
    "STRIDED_SLICE": 45, "MAXIMUM": 55, "MINIMUM": 57, "NEG": 59, "RSQRT": 76, "SHAPE": 77,
    "PACK": 83, "SQUARE": 92, "LEAKY_RELU": 98, "QUANTIZE": 114,
}  # fmt: skip
SAVEDMODEL_OPS = frozenset(
    {"AddV2", "AvgPool", "BiasAdd", "ConcatV2", "Const", "Conv2D", "DepthwiseConv2dNative"}
    | {"Identity", "LeakyRelu", "Maximum", "Mean", "Minimum", "Mul", "Neg", "NoOp", "Pack", "Pad"}
    | {"RealDiv", "Relu", "Relu6", "Reshape", "ResizeBilinear", "Rsqrt", "Shape", "Sigmoid"}
    | {"Sqrt", "SquaredDifference", "Squeeze", "StopGradient", "StridedSlice", "Sub", "Tanh"}
    # the function calls and variables of a TF2 SavedModel
    | {"Placeholder", "PartitionedCall", "StatefulPartitionedCall", "VarHandleOp"}
    | {"ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp"}
)
# Only in the checkpoint functions the saver_def names (`_traced_save` / `_traced_restore`), which
# TensorFlow 2's loader never runs (it restores the variables with its own ops).
CHECKPOINT_OPS = frozenset(
    {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin"}
    | {"StaticRegexFullMatch", "Select", "DisableCopyOnRead"}
)
# Names for the refusal message of codes outside TFLITE_OPS that a hostile file would use.
_TFLITE_NAMES = {31: "CALL", 32: "CUSTOM", 118: "IF", 119: "WHILE", 129: "CALL_ONCE"}
# A flatbuffer or protobuf addresses at most 2 GiB: anything larger is not read into memory.
MAX_MODEL_BYTES = 2**31
# A SavedModel's metadata (assets.extra/colorize.json) is a small JSON record.
MAX_METADATA_BYTES = 2**20
_EXTRAS = {"onnx": ("onnxruntime", "onnx"), "lite": ("ai_edge_litert", "lite")}
_THREADS = os.cpu_count() or 1


class Backend(Protocol):
    """A loaded generator: (B, H, W, 1) float32 L* -> (B, H, W, channels) float32, H and W
    multiples of `stride`; `channels` is 2 (a*b*) or 3 (sRGB in [0, 1]). A model that
    `takes_hints` also reads (B, H, W, 3) `hints` and (B, PALETTE_SIZE) `palette`
    (imaging/hints.py); None for either means none given (zeros)."""

    name: str  # the runtime, as --backend spells it
    path: Path
    stride: int
    channels: int
    takes_hints: bool

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray: ...


def model_feeds(
    takes_hints: bool,
    lightness: np.ndarray,
    hints: np.ndarray | None,
    palette: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """A model's inputs by name: L* alone, or a hint model's three (`hint_inputs`)."""
    if takes_hints:
        return hint_inputs(lightness, hints, palette)
    return {"lightness": np.ascontiguousarray(lightness, np.float32)}


def hint_inputs(
    lightness: np.ndarray, hints: np.ndarray | None, palette: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The three inputs of a hint model, zeros for what is not given."""
    batch, height, width = lightness.shape[:3]
    if hints is None:
        hints = np.zeros((batch, height, width, HINT_CHANNELS), np.float32)
    if palette is None:
        palette = np.zeros((batch, PALETTE_SIZE), np.float32)
    return {
        "lightness": np.ascontiguousarray(lightness, np.float32),
        "hints": np.ascontiguousarray(hints, np.float32),
        "palette": np.ascontiguousarray(palette, np.float32),
    }


def model_format(path: Path) -> str:
    """The format of the model at `path`: "keras", "onnx", "tflite" or "savedmodel" (a folder);
    ModelError for anything else."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as exc:
        raise ModelError(f"cannot read the model: {os_reason(exc)}", path) from None
    if mode is not None and stat.S_ISDIR(mode):
        return "savedmodel"
    if mode is not None and not stat.S_ISREG(mode):
        # a named pipe would block the runtime's reader forever, /dev/zero would never end
        raise ModelError(NOT_REGULAR, path)
    formats = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}
    if path.suffix.lower() in formats:
        return formats[path.suffix.lower()]
    if mode is None:
        raise ModelError("model file not found", path)
    raise ModelError(
        "unknown model format: give a .keras, .onnx or .tflite file or a SavedModel folder", path
    )


def runtime_for(model_format: str) -> str:
    """The --backend name that runs a model format."""
    return {"keras": "tf", "savedmodel": "tf", "onnx": "onnx", "tflite": "lite"}[model_format]


def runtime_available(runtime: str) -> bool:
    """Whether a light runtime ("onnx", "lite") is installed, without importing it."""
    import importlib.util

    return importlib.util.find_spec(_EXTRAS[runtime][0]) is not None


def require_runtime(runtime: str) -> None:
    """UsageError naming the extra to install when a light runtime is missing."""
    if not runtime_available(runtime):
        _import_runtime(runtime)


def _import_runtime(runtime: str) -> ModuleType:
    module, extra = _EXTRAS[runtime]
    try:
        if runtime == "lite":
            from ai_edge_litert import interpreter

            return interpreter
        import onnxruntime

        return onnxruntime
    except ImportError:
        raise UsageError(
            f"running .{'onnx' if runtime == 'onnx' else 'tflite'} models needs {module}: "
            f"pip install 'colorize-cli[{extra}]'"
        ) from None


def parse_metadata(text: str | bytes, path: Path) -> dict[str, Any]:
    """The contract an exported file carries, checked; ModelError when missing or malformed."""
    try:
        facts = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        facts = None
    if not isinstance(facts, dict) or facts.get("contract") not in CONTRACT_VERSIONS:
        raise ModelError(
            f"no colorize metadata (contract version {CONTRACT_VERSION}): export the model "
            "with `colorize export`",
            path,
        )
    if facts.get("hints", False) not in (True, False) or (
        facts.get("hints") and facts["contract"] < 2
    ):
        raise ModelError("damaged colorize metadata: bad hints flag", path)
    stride, output = facts.get("stride"), facts.get("output")
    if not (isinstance(stride, int) and 1 <= stride <= 4096) or output not in OUTPUTS:
        raise ModelError("damaged colorize metadata: bad stride or output", path)
    return facts


def _input_order(names: list[str]) -> list[str] | None:
    """Which of INPUT_NAMES each runtime input name is (runtimes decorate the names, e.g.
    "serving_default_hints:0"); None if they are not one each of a hint model's three."""
    found = []
    for name in names:
        matches = [known for known in INPUT_NAMES if re.search(rf"(^|_){known}(:\d+)?$", name)]
        if len(matches) != 1:
            return None
        found.append(matches[0])
    return found if sorted(found) == sorted(INPUT_NAMES) else None


def _check_shapes(
    inputs: list[Any],
    outputs: list[Any],
    channels: int,
    path: Path,
    input_names: list[str] | None = None,
) -> None:
    """Shapes as the runtimes report them (ints, or None/str/-1 for free axes); with
    `input_names` (a hint model, in the runtime's input order) the three inputs by name."""

    def fixed(dim: Any) -> int | None:
        return dim if isinstance(dim, int | np.integer) and dim > 0 else None

    def image(shape: Any, depth: int) -> bool:
        return (
            len(shape) == 4
            and fixed(shape[-1]) == depth
            and all(fixed(d) is None for d in shape[1:3])
        )

    if input_names is None:
        inputs_ok = len(inputs) == 1 and image(inputs[0], 1)
    else:
        by_name = dict(zip(input_names, inputs, strict=True))
        inputs_ok = (
            image(by_name["lightness"], 1)
            and image(by_name["hints"], HINT_CHANNELS)
            and len(by_name["palette"]) == 2
            and fixed(by_name["palette"][-1]) == PALETTE_SIZE
        )
    ok = (
        inputs_ok
        and len(outputs) == 1
        and len(outputs[0]) == 4
        and fixed(outputs[0][-1]) in (None, channels)
    )
    if not ok:
        takes = "one (batch, H, W, 1) L* input"
        if input_names is not None:
            takes = (
                f"(batch, H, W, 1) L*, (batch, H, W, {HINT_CHANNELS}) hints and "
                f"(batch, {PALETTE_SIZE}) palette inputs"
            )
        raise ModelError(
            f"not a colorize generator: it must take {takes} with free H and W and give one "
            f"(batch, H, W, {channels}) output; this one takes "
            f"{[tuple(s) for s in inputs]} and gives {[tuple(s) for s in outputs]}",
            path,
        )


def _names_for(facts: dict[str, Any], names: list[str], path: Path) -> list[str] | None:
    """The hint model's input order from the runtime's names; None for an automatic model."""
    if not facts.get("hints"):
        return None
    order = _input_order(names)
    if order is None:
        raise ModelError(
            f"not a colorize hint model: its inputs {names} are not {', '.join(INPUT_NAMES)}",
            path,
        )
    return order


def _reason(exc: BaseException) -> str:
    """A runtime's error in one line, without ONNX Runtime's "[ONNXRuntimeError] : N : KIND :"."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", one_line(exc, limit=400))
    # "Non-zero status code returned while running Add node. Name:'' Status Message: FILE:LINE
    # FUNCTION CHECK was false. What went wrong" -> "Add: What went wrong"
    text = re.sub(
        r"Non-zero status code returned while running (\w+) node\. Name:'[^']*' Status "
        r"Message: (\S+:\d+ [^.]*? was false\. )?",
        r"\1: ",
        text,
    )
    return text if len(text) <= 200 else text[:197] + "..."


def _run_failed(path: Path, x: np.ndarray, exc: BaseException) -> ModelError:
    return ModelError(
        f"the model failed on a {x.shape[1]}x{x.shape[2]} input: {_reason(exc)}", path
    )


def _checked_output(y: Any, x: np.ndarray, channels: int, path: Path) -> np.ndarray:
    """The runtime's output, if it is (batch, H, W, channels) for input `x`: a file's declared
    shapes are only what it says, so a model may give another batch or channel count at run
    time (ModelError, that call's failure)."""
    y = np.asarray(y)
    expected = (*x.shape[:3], channels)
    if y.shape != expected:
        raise ModelError(
            f"the model broke the generator contract: it gave a {y.shape} output for a "
            f"{x.shape[0]}x{x.shape[1]}x{x.shape[2]} input, not {expected}",
            path,
        )
    return y.astype(np.float32, copy=False)


def _read_model(path: Path, limit: int = MAX_MODEL_BYTES) -> bytes:
    """An untrusted model file's bytes: a regular file of at most `limit` bytes. Read as its
    size says, then one byte more for a file that grew: `read(limit + 1)` costs 10 ms more on a
    20 MB model (a buffer of the limit's size), a tenth of a one-photo apply's model loading."""
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(size) if size <= limit else b""
            if size > limit or file.read(1):
                raise UnsafeFileError(f"file too large (over the limit of {limit} bytes)")
            return data
    except FileNotFoundError:
        raise ModelError("model file not found", path) from None
    except UnsafeFileError as exc:
        raise ModelError(str(exc), path) from None
    except OSError as exc:
        raise ModelError(f"cannot read the model: {os_reason(exc)}", path) from None


def _refuse_ops(refused: set[str], path: Path) -> None:
    if refused:
        names = ", ".join(sorted(refused)[:6]) + (", ..." if len(refused) > 6 else "")
        raise ModelError(
            f"refused: the model uses ops that `colorize export` never writes ({names}); "
            "file access, control flow and custom ops are not run (docs/export.md)",
            path,
        )


class KerasBackend:
    """A loaded `.keras` generator on TensorFlow (colorizer.load_generator loads and checks it)."""

    name = "tf"

    def __init__(self, model: Any, path: Path, stride: int) -> None:
        from colorize_cli.nets.models import takes_hints

        self.model = model
        self.path = path
        self.stride = stride
        self.channels = int(model.outputs[0].shape[-1])
        self.takes_hints = takes_hints(model)
        self._compiled: dict[tuple[int, int], Any] = {}
        self._shapes_seen: set[tuple[int, int]] = set()

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray:
        """Keras's bilinear UpSampling2D cannot be traced with unknown H and W, so the network is
        compiled once per shape (batch size left free). Tracing costs about a second, more than
        a few eager calls, so a shape runs eagerly until it comes back."""
        shape = lightness.shape[1:3]
        x: Any = lightness
        if self.takes_hints:
            x = hint_inputs(lightness, hints, palette)
        compiled = self._compiled.get(shape)
        if compiled is None and shape in self._shapes_seen:
            from colorize_cli.tf_setup import import_tf

            tf = import_tf()
            spec: Any = tf.TensorSpec([None, *shape, 1], tf.float32)
            if self.takes_hints:
                spec = {
                    "lightness": spec,
                    "hints": tf.TensorSpec([None, *shape, HINT_CHANNELS], tf.float32),
                    "palette": tf.TensorSpec([None, PALETTE_SIZE], tf.float32),
                }
            compiled = self._compiled[shape] = tf.function(
                lambda batch: self.model(batch, training=False), input_signature=[spec]
            )
        self._shapes_seen.add(shape)
        if compiled is None:
            return self.model(x, training=False).numpy()
        return compiled(x).numpy()


class OnnxBackend:
    """An exported `.onnx` generator on ONNX Runtime (CPU)."""

    name = "onnx"

    def __init__(self, path: Path) -> None:
        ort = _import_runtime("onnx")
        data = _read_model(path)
        _refuse_ops(onnx_refused_ops(data, path), path)
        # ONNX Runtime logs a failed run in colour on stderr; the failure is reported once, ours.
        ort.set_default_logger_severity(4)
        options = ort.SessionOptions()
        options.log_severity_level = 4
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4
        try:
            # From bytes: the session has no folder to look for external data in.
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            metadata = self._session.get_modelmeta().custom_metadata_map
        except Exception as exc:  # the runtime's parser fails in many ways on a damaged file
            raise ModelError(f"not a loadable ONNX model: {_reason(exc)}", path) from None
        facts = parse_metadata(metadata.get(METADATA_KEY, ""), path)
        self.path, self.stride, self.channels = path, facts["stride"], OUTPUTS[facts["output"]]
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        order = _names_for(facts, [i.name for i in inputs], path)
        self.takes_hints = order is not None
        _check_shapes(
            [i.shape for i in inputs], [o.shape for o in outputs], self.channels, path, order
        )
        for i in inputs:
            if i.type != "tensor(float)":
                raise ModelError(f"not a colorize generator: input is {i.type}", path)
        self._inputs = dict(zip(order or ["lightness"], [i.name for i in inputs], strict=True))
        self._output = outputs[0].name

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray:
        feeds = model_feeds(self.takes_hints, lightness, hints, palette)
        try:
            (y,) = self._session.run(
                [self._output],
                {self._inputs[key]: value for key, value in feeds.items()},
                self._run_options,
            )
        except Exception as exc:
            raise _run_failed(self.path, lightness, exc) from None
        return _checked_output(y, lightness, self.channels, self.path)


def onnx_refused_ops(data: bytes, path: Path) -> set[str]:
    """The ops of an ONNX model outside ONNX_OPS (domain-qualified when not the standard one),
    read with the `onnx` package before any session exists; ModelError for a file that does not
    parse, that defines its own functions, or keeps weights in another file."""
    try:
        from onnx import ModelProto, TensorProto
    except ImportError:
        raise UsageError(
            "running .onnx models needs onnx: pip install 'colorize-cli[onnx]'"
        ) from None
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # a damaged protobuf fails in many ways
        raise ModelError(f"not a loadable ONNX model: {_reason(exc)}", path) from None
    if model.functions:
        return {f"{f.domain}:{f.name}" for f in model.functions}
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            raise ModelError(
                "not a loadable ONNX model: its weights are kept in another file (external "
                "data); colorize reads only the model file",
                path,
            )
    return {
        node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
        for node in model.graph.node
        if node.domain not in ("", "ai.onnx") or node.op_type not in ONNX_OPS
    }


def tflite_metadata(data: bytes, path: Path) -> bytes:
    """The METADATA_KEY entry of a .tflite flatbuffer, read without building an interpreter."""
    return tflite_contents(data, path)[0]


def tflite_contents(data: bytes, path: Path) -> tuple[bytes, set[int]]:
    """The METADATA_KEY entry of a .tflite flatbuffer (b"" if none) and the builtin operator
    codes it lists (a custom op is CUSTOM, 32), read without building an interpreter.

    Read by hand (the schema's Model.operator_codes is field 1, Model.buffers field 4,
    Model.metadata field 6; OperatorCode.deprecated_builtin_code and .builtin_code fields 0 and
    3, the larger being the op; Metadata.name and .buffer fields 0 and 1, Buffer.data field 0):
    the generated schema module takes longer to import than the rest of a one-photo apply's
    model loading.
    """
    from flatbuffers import number_types, table

    def field(tab: table.Table, index: int) -> int:
        return tab.Offset(4 + 2 * index)

    def vector_tables(tab: table.Table, index: int) -> list[table.Table]:
        offset = field(tab, index)
        if not offset:
            return []
        start, length = tab.Vector(offset), tab.VectorLen(offset)
        if start + 4 * length > len(data):  # a forged length would loop for ever
            raise ValueError("a table vector runs past the end of the file")
        return [table.Table(data, tab.Indirect(start + 4 * i)) for i in range(length)]

    metadata = b""
    try:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("no TFL3 identifier")
        model = table.Table(data, int.from_bytes(data[:4], "little"))
        codes = {
            max(
                code.GetSlot(4, 0, number_types.Int8Flags),
                code.GetSlot(10, 0, number_types.Int32Flags),
            )
            for code in vector_tables(model, 1)
        }
        for entry in vector_tables(model, 6):
            name = field(entry, 0)
            if name and entry.String(name + entry.Pos) == METADATA_KEY.encode():
                index = entry.Get(number_types.Uint32Flags, field(entry, 1) + entry.Pos)
                buffer = vector_tables(model, 4)[index]
                offset = field(buffer, 0)
                start = buffer.Vector(offset)
                metadata = bytes(data[start : start + buffer.VectorLen(offset)])
                break
    except Exception:  # offsets from a damaged file point anywhere
        raise ModelError("not a loadable TFLite model: damaged or truncated", path) from None
    return metadata, codes


class LiteBackend:
    """An exported `.tflite` generator on LiteRT (XNNPACK on CPU)."""

    name = "lite"

    def __init__(self, path: Path) -> None:
        interpreter = _import_runtime("lite")
        data = _read_model(path)
        metadata, codes = tflite_contents(data, path)
        facts = parse_metadata(metadata, path)
        refused = codes - set(TFLITE_OPS.values())
        _refuse_ops({_TFLITE_NAMES.get(code, f"builtin op {code}") for code in refused}, path)
        self.path, self.stride, self.channels = path, facts["stride"], OUTPUTS[facts["output"]]
        try:
            with parked_stderr():
                self._interpreter = interpreter.Interpreter(
                    model_content=data, num_threads=_THREADS
                )
            inputs = self._interpreter.get_input_details()
            outputs = self._interpreter.get_output_details()
        except Exception as exc:
            raise ModelError(f"not a loadable TFLite model: {_reason(exc)}", path) from None
        order = _names_for(facts, [d["name"] for d in inputs], path)
        self.takes_hints = order is not None
        _check_shapes(
            [list(d["shape_signature"]) for d in inputs],
            [list(d["shape_signature"]) for d in outputs],
            self.channels,
            path,
            order,
        )
        for d in inputs:
            if d["dtype"] != np.float32:
                raise ModelError(f"not a colorize generator: input is {d['dtype']}", path)
        self._inputs = dict(zip(order or ["lightness"], [d["index"] for d in inputs], strict=True))
        self._output = outputs[0]["index"]
        self._shapes: dict[str, tuple[int, ...]] | None = None

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray:
        feeds = model_feeds(self.takes_hints, lightness, hints, palette)
        try:
            shapes = {key: value.shape for key, value in feeds.items()}
            if shapes != self._shapes:
                for key, shape in shapes.items():
                    self._interpreter.resize_tensor_input(self._inputs[key], shape, strict=True)
                self._shapes = shapes
                with parked_stderr():  # XNNPACK announces itself on the first allocation
                    self._interpreter.allocate_tensors()
            for key, value in feeds.items():
                self._interpreter.set_tensor(self._inputs[key], value)
            self._interpreter.invoke()
            y = self._interpreter.get_tensor(self._output).copy()
        except Exception as exc:
            self._shapes = None
            raise _run_failed(self.path, lightness, exc) from None
        return _checked_output(y, lightness, self.channels, self.path)


def savedmodel_refused_ops(data: bytes, path: Path) -> set[str]:
    """The ops of a SavedModel (its saved_model.pb bytes) outside SAVEDMODEL_OPS, in the graph
    and in every function; the checkpoint functions that only the saver_def reaches may also use
    CHECKPOINT_OPS. ModelError unless it is a TensorFlow 2 SavedModel (one meta graph with an
    object graph): a TensorFlow 1 one is loaded by running its graph's restore and init ops."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(data)
    except Exception as exc:
        raise ModelError(f"not a loadable SavedModel: {_reason(exc)}", path) from None
    if len(saved.meta_graphs) != 1 or not saved.meta_graphs[0].HasField("object_graph_def"):
        raise ModelError(
            "not a TensorFlow 2 SavedModel (one meta graph with its object graph): export the "
            "model with `colorize export`",
            path,
        )
    meta_graph = saved.meta_graphs[0]
    graph = meta_graph.graph_def
    functions = {function.signature.name: function for function in graph.library.function}

    def called(nodes: Any) -> set[str]:
        names: set[str] = set()

        def visit(value: Any) -> None:
            if value.HasField("func"):
                names.add(value.func.name)
                for inner in value.func.attr.values():
                    visit(inner)
            for function in value.list.func:
                names.add(function.name)

        for node in nodes:
            for value in node.attr.values():
                visit(value)
        return names

    def reached(roots: set[str]) -> set[str]:
        seen, todo = set(), list(roots)
        while todo:
            name = todo.pop()
            if name in seen or name not in functions:
                continue
            seen.add(name)
            todo.extend(called(functions[name].node_def))
        return seen

    saver = meta_graph.saver_def
    saver_nodes = {saver.save_tensor_name.split(":")[0], saver.restore_op_name.split(":")[0]}
    checkpoint = reached(called(node for node in graph.node if node.name in saver_nodes))
    others = called(node for node in graph.node if node.name not in saver_nodes)
    strict = reached(others | (set(functions) - checkpoint))
    refused = {node.op for node in graph.node} - SAVEDMODEL_OPS
    for name, function in functions.items():
        allowed = SAVEDMODEL_OPS if name in strict else SAVEDMODEL_OPS | CHECKPOINT_OPS
        refused |= {node.op for node in function.node_def} - allowed
    return refused


def _check_savedmodel_files(path: Path) -> None:
    """ModelError unless every file in the SavedModel folder (links followed) is a regular file:
    TensorFlow reads its variables and assets itself, and a named pipe would block it."""
    seen: set[str] = set()
    for folder, dirs, files in os.walk(path, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen or len(seen) > 10_000:
            dirs.clear()
            continue
        seen.add(real)
        for name in files:
            try:
                regular = stat.S_ISREG(os.stat(os.path.join(folder, name)).st_mode)
            except OSError as exc:
                raise ModelError(f"cannot read the model: {os_reason(exc)}", path) from None
            if not regular:
                inside = Path(folder, name).relative_to(path)
                raise ModelError(f"{inside} is {NOT_REGULAR}", path)


class SavedModelBackend:
    """An exported SavedModel folder on TensorFlow (its `serving_default` signature)."""

    name = "tf"

    def __init__(self, path: Path) -> None:
        from colorize_cli.tf_setup import import_tf

        if not (path / "saved_model.pb").exists():
            raise ModelError("not a SavedModel folder: it has no saved_model.pb", path)
        _check_savedmodel_files(path)
        data = _read_model(path / "saved_model.pb")
        try:
            text = read_regular_file(
                path / "assets.extra" / f"{METADATA_KEY}.json", MAX_METADATA_BYTES
            )
        except OSError:
            text = b""
        facts = parse_metadata(text, path)
        self.path, self.stride, self.channels = path, facts["stride"], OUTPUTS[facts["output"]]
        tf = import_tf()
        _refuse_ops(savedmodel_refused_ops(data, path), path)
        try:
            self._loaded = tf.saved_model.load(str(path))
            self._signature = self._loaded.signatures["serving_default"]
        except Exception as exc:
            raise ModelError(f"not a loadable SavedModel: {_reason(exc)}", path) from None
        inputs = self._signature.structured_input_signature[1]
        outputs = self._signature.structured_outputs
        order = _names_for(facts, list(inputs), path)
        self.takes_hints = order is not None
        _check_shapes(
            [spec.shape.as_list() for spec in inputs.values()],
            [spec.shape.as_list() for spec in outputs.values()],
            self.channels,
            path,
            order,
        )
        self._inputs = dict(zip(order or ["lightness"], list(inputs), strict=True))
        self._output = next(iter(outputs))
        self._tf = tf

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray:
        feeds = model_feeds(self.takes_hints, lightness, hints, palette)
        try:
            arguments = {self._inputs[k]: self._tf.constant(v) for k, v in feeds.items()}
            y = self._signature(**arguments)[self._output].numpy()
        except Exception as exc:
            raise _run_failed(self.path, lightness, exc) from None
        return _checked_output(y, lightness, self.channels, self.path)


def open_exported(path: Path, runtime: str = "auto") -> Backend:
    """An exported model on its runtime; `runtime` other than "auto" must be the one it needs."""
    kind = model_format(path)
    needed = runtime_for(kind)
    if runtime not in ("auto", needed):
        raise UsageError(f"this {kind} model runs on --backend {needed}, not {runtime}", path)
    if kind == "onnx":
        return OnnxBackend(path)
    if kind == "tflite":
        return LiteBackend(path)
    if kind == "savedmodel":
        return SavedModelBackend(path)
    raise ValueError(f"{path}: .keras models load through colorizer.load_generator")
