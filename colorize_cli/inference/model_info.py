"""What a generator `.keras` file is, read without TensorFlow (for `colorize info`).

A `.keras` file is a zip of `metadata.json`, `config.json` and `model.weights.h5`. Beside it, a
run directory's `config.json` / `metrics.jsonl` (from `colorize train`) or a `NAME.json` card (the
bundled model's) tell how it was trained; both are added when present.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import h5py

from colorize_cli.errors import ModelError, TrainingError, one_line
from colorize_cli.fsutil import os_reason
from colorize_cli.training import run_dir


def describe_model(path: str | Path) -> dict[str, Any]:
    """Architecture, size and provenance of a generator file; ModelError if it is not one."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
    except FileNotFoundError:
        raise ModelError("model file not found", path) from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ModelError(f"not a Keras .keras model file ({exc})", path) from None
    model = config.get("config", {})
    with h5py.File(io.BytesIO(weights), "r") as h5:
        parameters = _count_parameters(h5)
    description: dict[str, Any] = {
        "path": str(path),
        "file_bytes": path.stat().st_size,
        "name": model.get("name"),
        "inputs": _layer_names(model.get("input_layers", [])),
        "outputs": _layer_names(model.get("output_layers", [])),
        "layers": len(model.get("layers", [])),
        "parameters": parameters,
        "encoder": _encoder(model.get("layers", [])),
        "takes_hints": "hints" in _layer_names(model.get("input_layers", [])),
        "keras_version": metadata.get("keras_version"),
        "saved": metadata.get("date_saved"),
    }
    description.update(_provenance(path))
    return description


def _encoder(layers: list) -> str:
    """The pretrained encoder the generator is built on, with its source and licence, if any."""
    from colorize_cli.nets import pretrained

    names = [layer.get("config", {}).get("name", "") for layer in layers]
    if any(name.startswith(f"{pretrained.PREFIX}_") for name in names):
        return pretrained.SOURCE
    return "none (trained from scratch)"


def _layer_names(spec: list | dict) -> list[str]:
    """Keras writes one endpoint as [name, 0, 0], several as [[name, 0, 0], ...], and named ones
    (a hint model's inputs) as {name: [name, 0, 0], ...}."""
    if isinstance(spec, dict):
        return [str(name) for name in spec]
    if spec and isinstance(spec[0], str):
        return [spec[0]]
    return [endpoint[0] for endpoint in spec]


def _count_parameters(h5: h5py.File) -> int:
    total = 0

    def visit(_: str, node: Any) -> None:
        nonlocal total
        if isinstance(node, h5py.Dataset):
            total += int(node.size)

    h5.visititems(visit)
    return total


def _provenance(path: Path) -> dict[str, Any]:
    """The training record beside the model: a NAME.json card, else the run directory's files
    (read as `colorize train` wrote them: a torn last metrics line, the state a kill leaves, is
    skipped). A record that cannot be read is named, never fatal: the model is still described."""
    card = path.with_suffix(".json")
    if card.is_file():
        try:
            return {"card": json.loads(card.read_text(encoding="utf-8"))}
        except (OSError, ValueError) as exc:
            return {"card": f"unreadable: {one_line(exc)}"}
    found: dict[str, Any] = {}
    if (path.parent / run_dir.CONFIG).is_file():
        try:
            found["training"] = run_dir.read_config(path.parent).get("settings", {})
        except TrainingError as exc:
            found["training"] = f"unreadable: {exc.reason}"
    try:
        epochs = run_dir.read_metrics(path.parent)
    except OSError as exc:
        found["last_epoch"] = f"unreadable: {os_reason(exc)}"
        return found
    if epochs:
        found["last_epoch"] = epochs[-1]
    return found
