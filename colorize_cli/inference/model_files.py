"""What a generator file is and what it promises, before any runtime runs it: its format and the
runtime that format needs (imported only when a model of its kind is opened; a missing one is a
UsageError naming the extra that installs it), the contract its JSON metadata states (`colorize
export` writes it, docs/export.md), and the inputs and output its tensors must keep: checked when
a file is opened and on every output (backends.py runs the models)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from colorize_cli.errors import ModelError, UsageError
from colorize_cli.fsutil import NOT_REGULAR, os_reason, read_regular_file
from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
from colorize_cli.inference import tflite_file

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
_MAX_METADATA_BYTES = 2**20
# The light runtimes: the module that is imported, and the extra of colorize-cli that installs it.
_EXTRAS = {"onnx": ("onnxruntime", "onnx"), "lite": ("ai_edge_litert", "lite")}


def savedmodel_metadata_path(folder: Path) -> Path:
    """Where a SavedModel folder keeps the contract (written by the exporter, read here)."""
    return folder / "assets.extra" / f"{METADATA_KEY}.json"


def savedmodel_metadata(folder: Path) -> bytes:
    """The contract entry of a SavedModel folder (b"" if none or unreadable), read bounded."""
    try:
        return read_regular_file(savedmodel_metadata_path(folder), _MAX_METADATA_BYTES)
    except OSError:
        return b""


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
        import_runtime(runtime)


def import_runtime(runtime: str) -> ModuleType:
    """The light runtime's module (LiteRT's interpreter, onnxruntime); UsageError naming the extra
    that installs it when it is missing."""
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


def tflite_metadata(file: tflite_file.TfliteFile, path: Path) -> bytes:
    """The contract entry of a .tflite flatbuffer (b"" if none), read without an interpreter."""
    return tflite_file.tflite_metadata(file, path, METADATA_KEY)


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


def _hint_order(facts: dict[str, Any], names: list[str], path: Path) -> list[str] | None:
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


def contract_inputs(
    facts: dict[str, Any],
    names: list[str],
    keys: list[Any],
    input_shapes: list[Any],
    output_shapes: list[Any],
    path: Path,
) -> dict[str, Any]:
    """A model's inputs by the contract's names (lightness; a hint model's hints and palette too)
    -> the runtime's `keys` for them (its names or indices, in the order of its `names`), once
    its tensors' shapes keep the contract its metadata `facts` state (ModelError otherwise)."""
    order = _hint_order(facts, names, path)
    _check_shapes(input_shapes, output_shapes, OUTPUTS[facts["output"]], path, order)
    return dict(zip(order or ["lightness"], keys, strict=True))


def checked_output(y: Any, x: np.ndarray, channels: int, path: Path) -> np.ndarray:
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
