"""The runtimes a generator runs on, behind one interface: `Backend.run(lightness) -> prediction`.

Keras on TensorFlow (`.keras`, the reference), ONNX Runtime (`.onnx`), LiteRT (`.tflite`) and
TensorFlow SavedModel folders. A runtime is imported only when a model of its kind is opened, and a
missing one is a UsageError naming the extra that installs it. Exported files carry the generator
contract as JSON metadata (`colorize export` writes it, docs/export.md; model_files.py reads and
checks it); a file without it, or whose tensors break the contract, is a ModelError, and so is a
run whose output breaks it. Files are data: model_checks.py reads each one's ops
and sizes before its runtime sees it, and no format here runs Python code. What a model's tensors
hold at once while it runs is bounded on ONNX Runtime and LiteRT (tensor_memory.MAX_TENSOR_BYTES).
"""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from colorize_cli.errors import ModelError, UsageError, one_line
from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
from colorize_cli.inference import model_checks, model_files, tflite_file
from colorize_cli.inference.tensor_memory import MAX_TENSOR_BYTES, memory_problem, peak_bytes
from colorize_cli.tf_setup import parked_stderr

# `--backend`: which runtime runs the model ("auto": the one its file format needs).
BACKENDS = ("auto", "tf", "onnx", "lite")
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
            x = model_files.hint_inputs(lightness, hints, palette)
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
        ort = model_files.import_runtime("onnx")
        data = model_checks.read_model(path)
        metadata = model_checks.check_onnx(data, path)
        facts = model_files.parse_metadata(metadata.get(model_files.METADATA_KEY, ""), path)
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
        except Exception as exc:  # the runtime's parser fails in many ways on a damaged file
            raise ModelError(f"not a loadable ONNX model: {_reason(exc)}", path) from None
        self.path, self.stride = path, facts["stride"]
        self.channels = model_files.OUTPUTS[facts["output"]]
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        names = [i.name for i in inputs]
        shapes = [i.shape for i in inputs], [o.shape for o in outputs]
        self._inputs = model_files.contract_inputs(facts, names, names, *shapes, path)
        self.takes_hints = bool(facts.get("hints"))
        for i in inputs:
            if i.type != "tensor(float)":
                raise ModelError(f"not a colorize generator: input is {i.type}", path)
        self._output = outputs[0].name

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray:
        feeds = model_files.model_feeds(self.takes_hints, lightness, hints, palette)
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
        return model_files.checked_output(y, lightness, self.channels, self.path)


class LiteBackend:
    """An exported `.tflite` generator on LiteRT (XNNPACK on CPU)."""

    name = "lite"

    def __init__(self, path: Path) -> None:
        interpreter = model_files.import_runtime("lite")
        data = model_checks.read_model(path)
        file = tflite_file.read_tflite(data, path)
        facts = model_files.parse_metadata(model_files.tflite_metadata(file, path), path)
        model_checks.check_tflite(file, path)
        self._data, self._lives = data, tflite_file.tflite_lives(file, path)
        self.path, self.stride = path, facts["stride"]
        self.channels = model_files.OUTPUTS[facts["output"]]
        # LiteRT 2.3's XNNPACK aborts the process (a double free) on a quantised graph of several
        # inputs (an int8 hint model; the contract refuses any other with several): that one runs
        # on the builtin kernels.
        options: dict[str, Any] = {}
        quantised = tflite_file.TFLITE_OPS["QUANTIZE"] in tflite_file.tflite_op_codes(file, path)
        if quantised and facts.get("hints"):
            builtin = interpreter.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            options["experimental_op_resolver_type"] = builtin
        try:
            with parked_stderr():
                self._interpreter = interpreter.Interpreter(
                    model_content=data, num_threads=_THREADS, **options
                )
            inputs = self._interpreter.get_input_details()
            outputs = self._interpreter.get_output_details()
        except Exception as exc:
            raise ModelError(f"not a loadable TFLite model: {_reason(exc)}", path) from None
        names, indices = [d["name"] for d in inputs], [d["index"] for d in inputs]
        shapes = (
            [list(d["shape_signature"]) for d in inputs],
            [list(d["shape_signature"]) for d in outputs],
        )
        self._inputs = model_files.contract_inputs(facts, names, indices, *shapes, path)
        self.takes_hints = bool(facts.get("hints"))
        for d in inputs:
            if d["dtype"] != np.float32:
                raise ModelError(f"not a colorize generator: input is {d['dtype']}", path)
        self._output = outputs[0]["index"]
        self._shapes: dict[str, tuple[int, ...]] | None = None
        self._within_bound: set[tuple[tuple[str, tuple[int, ...]], ...]] = set()

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray:
        feeds = model_files.model_feeds(self.takes_hints, lightness, hints, palette)
        shapes = {key: value.shape for key, value in feeds.items()}
        if tuple(shapes.items()) not in self._within_bound:
            self._check_memory(shapes, lightness)  # once per set of shapes
            self._within_bound.add(tuple(shapes.items()))
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
        return model_files.checked_output(y, lightness, self.channels, self.path)

    def _check_memory(self, shapes: dict[str, tuple[int, ...]], lightness: np.ndarray) -> None:
        """ModelError when the model's tensors would hold over MAX_TENSOR_BYTES at once for these
        input shapes. XNNPACK hides the shapes of the graph it runs, so they are worked out by an
        interpreter without delegates on the same bytes (4 ms on the bundled model, once per
        input size), whose arena is dropped untouched. A shape computed as the model runs (a
        resize to a size taken from its input) is known only then: that tensor and those made
        from it count at their size in the file (docs/robustness.md)."""
        lite = model_files.import_runtime("lite")
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
        facts = model_files.parse_metadata(model_files.savedmodel_metadata(path), path)
        self.path, self.stride = path, facts["stride"]
        self.channels = model_files.OUTPUTS[facts["output"]]
        tf = import_tf()
        model_checks.check_savedmodel(data, path)
        try:
            self._loaded = tf.saved_model.load(str(path))
            self._signature = self._loaded.signatures["serving_default"]
        except Exception as exc:
            raise ModelError(f"not a loadable SavedModel: {_reason(exc)}", path) from None
        inputs = self._signature.structured_input_signature[1]
        outputs = self._signature.structured_outputs
        shapes = (
            [spec.shape.as_list() for spec in inputs.values()],
            [spec.shape.as_list() for spec in outputs.values()],
        )
        names = list(inputs)
        self._inputs = model_files.contract_inputs(facts, names, names, *shapes, path)
        self.takes_hints = bool(facts.get("hints"))
        self._output = next(iter(outputs))
        self._tf = tf

    def run(
        self,
        lightness: np.ndarray,
        hints: np.ndarray | None = None,
        palette: np.ndarray | None = None,
    ) -> np.ndarray:
        feeds = model_files.model_feeds(self.takes_hints, lightness, hints, palette)
        try:
            arguments = {self._inputs[k]: self._tf.constant(v) for k, v in feeds.items()}
            y = self._signature(**arguments)[self._output].numpy()
        except Exception as exc:
            raise _run_failed(self.path, lightness, exc) from None
        return model_files.checked_output(y, lightness, self.channels, self.path)


def open_exported(path: Path, runtime: str = "auto") -> Backend:
    """An exported model on its runtime; `runtime` other than "auto" must be the one it needs."""
    kind = model_files.model_format(path)
    needed = model_files.runtime_for(kind)
    if runtime not in ("auto", needed):
        raise UsageError(f"this {kind} model runs on --backend {needed}, not {runtime}", path)
    if kind == "onnx":
        return OnnxBackend(path)
    if kind == "tflite":
        return LiteBackend(path)
    if kind == "savedmodel":
        return SavedModelBackend(path)
    raise ValueError(f"{path}: .keras models load through colorizer.load_generator")
