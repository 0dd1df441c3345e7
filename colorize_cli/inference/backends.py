"""The runtimes a generator runs on, behind one interface: `Backend.run(lightness) -> prediction`.

Keras on TensorFlow (`.keras`, the reference), ONNX Runtime (`.onnx`), LiteRT (`.tflite`) and
TensorFlow SavedModel folders. A runtime is imported only when a model of its kind is opened, and a
missing one is a UsageError naming the extra that installs it. Exported files carry the generator
contract as JSON metadata (`colorize export` writes it, docs/export.md); a file without it, or whose
tensors break the contract, is a ModelError. Files are data: model_checks.py reads each one's ops
and sizes before its runtime sees it, and no format here runs Python code. What a model's tensors
hold at once while it runs is bounded on ONNX Runtime and LiteRT (model_sizes.MAX_TENSOR_BYTES).
"""

from __future__ import annotations

import functools
import json
import math
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
    os_reason,
    read_regular_file,
)
from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
from colorize_cli.inference import model_checks
from colorize_cli.inference.model_sizes import MAX_TENSOR_BYTES, memory_problem, peak_bytes
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
# A SavedModel's metadata (assets.extra/colorize.json) is a small JSON record.
MAX_METADATA_BYTES = 2**20


def savedmodel_metadata_path(folder: Path) -> Path:
    """Where a SavedModel folder keeps the contract (written by the exporter, read here)."""
    return folder / "assets.extra" / f"{METADATA_KEY}.json"


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


def tflite_metadata(data: bytes, path: Path) -> bytes:
    """The contract entry of a .tflite flatbuffer (b"" if none), read without an interpreter."""
    return model_checks.tflite_metadata(data, path, METADATA_KEY)


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


def _arena_problem(x: np.ndarray, exc: BaseException) -> str | None:
    """ONNX Runtime's refusal to pass the arena's cap (`_capped_arena`), in words; None for any
    other failure."""
    found = re.search(
        r"Available memory of (\d+) is smaller than requested bytes of (\d+)", str(exc)
    )
    if found is None:
        return None
    held, asked = MAX_TENSOR_BYTES - int(found[1]), int(found[2])
    op = re.search(r"running (\w+) node", str(exc))
    return memory_problem(held + asked, x.shape, op[1] if op else "an op", asked)


@functools.cache
def _capped_arena(ort: ModuleType) -> None:
    """Registers, once a process, the CPU arena every ONNX session here allocates its tensors from
    (the weights stay out of it), capped at MAX_TENSOR_BYTES: the allocation that would pass it
    fails that run, where the default arena grows until the system refuses or the kernel kills
    the process. It grows by what is asked (strategy 1), not in powers of two, so the cap counts
    what the tensors need; the cap alone costs nothing measurable."""
    memory = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    # max_mem, arena_extend_strategy, initial_chunk_size_bytes, max_dead_bytes_per_chunk
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(MAX_TENSOR_BYTES, 1, -1, -1))


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
        data = model_checks.read_model(path)
        model_checks.check_onnx(data, path)
        # ONNX Runtime logs a failed run in colour on stderr; the failure is reported once, ours.
        ort.set_default_logger_severity(4)
        _capped_arena(ort)
        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.add_session_config_entry("session.use_env_allocators", "1")
        self._run_options, self._releasing = ort.RunOptions(), ort.RunOptions()
        for run_options in (self._run_options, self._releasing):
            run_options.log_severity_level = 4
        # The arena keeps what a run took for the next; after a failed run (up to the cap), the
        # next run gives its unused memory back when it ends. Doing so after every run costs 45 ms
        # a batch of 8 at 160 x 224 (12%).
        self._releasing.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._failed = False
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
                self._releasing if self._failed else self._run_options,
            )
        except Exception as exc:
            self._failed = True
            problem = _arena_problem(lightness, exc)
            if problem:
                raise ModelError(problem, self.path) from None
            raise _run_failed(self.path, lightness, exc) from None
        self._failed = False
        return _checked_output(y, lightness, self.channels, self.path)


class LiteBackend:
    """An exported `.tflite` generator on LiteRT (XNNPACK on CPU)."""

    name = "lite"

    def __init__(self, path: Path) -> None:
        interpreter = _import_runtime("lite")
        data = model_checks.read_model(path)
        facts = parse_metadata(tflite_metadata(data, path), path)
        model_checks.check_tflite(data, path)
        self._data, self._lives = data, model_checks.tflite_lives(data, path)
        self.path, self.stride, self.channels = path, facts["stride"], OUTPUTS[facts["output"]]
        try:
            with parked_stderr():
                self._interpreter = interpreter.Interpreter(
                    model_content=data, num_threads=_THREADS
                )
                # LiteRT 2.3's XNNPACK aborts the process (a double free) on a quantised graph
                # of several inputs (an int8 hint model): that one runs on the builtin kernels.
                quantised = model_checks.TFLITE_OPS["QUANTIZE"] in model_checks.tflite_op_codes(
                    data, path
                )
                if quantised and len(self._interpreter.get_input_details()) > 1:
                    self._interpreter = interpreter.Interpreter(
                        model_content=data,
                        num_threads=_THREADS,
                        experimental_op_resolver_type=(
                            interpreter.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                        ),
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
        shapes = {key: value.shape for key, value in feeds.items()}
        if shapes != self._shapes:
            self._check_memory(shapes, lightness)
        try:
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

    def _check_memory(self, shapes: dict[str, tuple[int, ...]], lightness: np.ndarray) -> None:
        """ModelError when the model's tensors would hold over MAX_TENSOR_BYTES at once for these
        input shapes. XNNPACK hides the shapes of the graph it runs, so they are worked out by an
        interpreter without delegates on the same bytes (4 ms on the bundled model, once per
        input size), whose arena is dropped untouched. A shape computed as the model runs (a
        resize to a size taken from its input) is known only then: that tensor and those made
        from it count at their size in the file (docs/robustness.md)."""
        lite = _import_runtime("lite")
        failure: Exception | None = None
        try:
            oracle = lite.Interpreter(
                model_content=self._data,
                experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            for key, shape in shapes.items():
                oracle.resize_tensor_input(self._inputs[key], shape, strict=True)
            try:
                oracle.allocate_tensors()
            except Exception as exc:  # no arena that large: the shapes are set all the same
                failure = exc
            sizes = {
                d["index"]: math.prod(int(n) for n in d["shape"]) * np.dtype(d["dtype"]).itemsize
                for d in oracle.get_tensor_details()
            }
        except Exception as exc:
            raise _run_failed(self.path, lightness, exc) from None
        need = peak_bytes(self._lives, lambda index: sizes.get(index, 0))
        if need > MAX_TENSOR_BYTES:
            raise ModelError(memory_problem(need, lightness.shape), self.path)
        if failure is not None:
            raise _run_failed(self.path, lightness, failure)


class SavedModelBackend:
    """An exported SavedModel folder on TensorFlow (its `serving_default` signature)."""

    name = "tf"

    def __init__(self, path: Path) -> None:
        from colorize_cli.tf_setup import import_tf

        if not (path / "saved_model.pb").exists():
            raise ModelError("not a SavedModel folder: it has no saved_model.pb", path)
        model_checks.check_savedmodel_files(path)
        data = model_checks.read_model(path / "saved_model.pb")
        try:
            text = read_regular_file(savedmodel_metadata_path(path), MAX_METADATA_BYTES)
        except OSError:
            text = b""
        facts = parse_metadata(text, path)
        self.path, self.stride, self.channels = path, facts["stride"], OUTPUTS[facts["output"]]
        tf = import_tf()
        model_checks.check_savedmodel(data, path)
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
