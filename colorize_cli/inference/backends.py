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
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from colorize_cli.errors import ModelError, UsageError, one_line
from colorize_cli.fsutil import os_reason
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
# A SavedModel graph is refused if it holds one of these (files or Python reached from the graph).
UNSAFE_OPS = frozenset(
    {"ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc"}
)
# A flatbuffer addresses at most 2 GiB: anything larger is not read into memory.
MAX_TFLITE_BYTES = 2**31
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
    if path.is_dir():
        return "savedmodel"
    formats = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}
    if path.suffix.lower() in formats:
        return formats[path.suffix.lower()]
    if not path.exists():
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
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", one_line(exc))


def _run_failed(path: Path, x: np.ndarray, exc: BaseException) -> ModelError:
    return ModelError(
        f"the model failed on a {x.shape[1]}x{x.shape[2]} input: {_reason(exc)}", path
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
        if not path.is_file():
            raise ModelError("model file not found", path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
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
        feeds = {"lightness": lightness}
        if self.takes_hints:
            feeds = hint_inputs(lightness, hints, palette)
        try:
            (y,) = self._session.run(
                [self._output], {self._inputs[key]: value for key, value in feeds.items()}
            )
        except Exception as exc:
            raise _run_failed(self.path, lightness, exc) from None
        return np.asarray(y, np.float32)


def tflite_metadata(data: bytes, path: Path) -> bytes:
    """The METADATA_KEY entry of a .tflite flatbuffer, read without building an interpreter.

    Read by hand (the schema's Model.metadata is field 6, Model.buffers field 4, Metadata.name
    and .buffer fields 0 and 1, Buffer.data field 0): the generated schema module takes longer to
    import than the rest of a one-photo apply's model loading.
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

    try:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("no TFL3 identifier")
        model = table.Table(data, int.from_bytes(data[:4], "little"))
        for entry in vector_tables(model, 6):
            name = field(entry, 0)
            if name and entry.String(name + entry.Pos) == METADATA_KEY.encode():
                index = entry.Get(number_types.Uint32Flags, field(entry, 1) + entry.Pos)
                buffer = vector_tables(model, 4)[index]
                offset = field(buffer, 0)
                start = buffer.Vector(offset)
                return bytes(data[start : start + buffer.VectorLen(offset)])
    except Exception:  # offsets from a damaged file point anywhere
        raise ModelError("not a loadable TFLite model: damaged or truncated", path) from None
    return b""


class LiteBackend:
    """An exported `.tflite` generator on LiteRT (XNNPACK on CPU)."""

    name = "lite"

    def __init__(self, path: Path) -> None:
        interpreter = _import_runtime("lite")
        try:
            if path.stat().st_size > MAX_TFLITE_BYTES:
                raise ModelError("not a loadable TFLite model: larger than 2 GiB", path)
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError("model file not found", path) from None
        except OSError as exc:
            raise ModelError(f"cannot read the model: {os_reason(exc)}", path) from None
        facts = parse_metadata(tflite_metadata(data, path), path)
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
        feeds = {"lightness": np.ascontiguousarray(lightness, np.float32)}
        if self.takes_hints:
            feeds = hint_inputs(lightness, hints, palette)
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
            return self._interpreter.get_tensor(self._output).copy()
        except Exception as exc:
            self._shapes = None
            raise _run_failed(self.path, lightness, exc) from None


def savedmodel_ops(path: Path) -> set[str]:
    """Every op type a SavedModel's graphs and functions use (read from saved_model.pb)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString((path / "saved_model.pb").read_bytes())
    except OSError as exc:
        raise ModelError(f"not a SavedModel folder: {os_reason(exc)}", path) from None
    except Exception as exc:
        raise ModelError(f"not a loadable SavedModel: {_reason(exc)}", path) from None
    ops = set()
    for graph in saved.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


class SavedModelBackend:
    """An exported SavedModel folder on TensorFlow (its `serving_default` signature)."""

    name = "tf"

    def __init__(self, path: Path) -> None:
        from colorize_cli.tf_setup import import_tf

        if not (path / "saved_model.pb").is_file():
            raise ModelError("not a SavedModel folder: it has no saved_model.pb", path)
        tf = import_tf()
        try:
            text = (path / "assets.extra" / f"{METADATA_KEY}.json").read_bytes()
        except OSError:
            text = b""
        facts = parse_metadata(text, path)
        self.path, self.stride, self.channels = path, facts["stride"], OUTPUTS[facts["output"]]
        unsafe = savedmodel_ops(path) & UNSAFE_OPS
        if unsafe:
            raise ModelError(f"refused: the graph reads or writes files ({sorted(unsafe)})", path)
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
        feeds = {"lightness": lightness}
        if self.takes_hints:
            feeds = hint_inputs(lightness, hints, palette)
        try:
            arguments = {self._inputs[k]: self._tf.constant(v) for k, v in feeds.items()}
            y = self._signature(**arguments)[self._output]
        except Exception as exc:
            raise _run_failed(self.path, lightness, exc) from None
        return y.numpy()


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
