"""What a generator `.keras` file is, read without TensorFlow (for `colorize info`).

A `.keras` file is a zip of `metadata.json`, `config.json` and `model.weights.h5`. Beside it, a
run directory's `config.json` / `metrics.jsonl` (from `colorize train`) or a `NAME.json` card (the
bundled model's) tell how it was trained; both are added when present.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import h5py

from colorize_cli import fsutil
from colorize_cli.errors import ModelError, TrainingError, one_line
from colorize_cli.fsutil import os_reason
from colorize_cli.training import run_dir

WEIGHTS = "model.weights.h5"
# What a member may inflate to: far above the bundled model's (a 45 KB config, 21 MB weights).
MAX_JSON_BYTES = 64 * 2**20
MAX_WEIGHTS_BYTES = 2**30
_MALFORMED = "not a colorize generator (a malformed Keras config)"
# What h5py raises on a file that is not HDF5, or a damaged one.
_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def describe_model(path: str | Path) -> dict[str, Any]:
    """Architecture, size and provenance of a generator file; ModelError if it is not one.

    The file is untrusted: only a regular file is opened, each member's declared size is checked
    before it is inflated (zip bombs), and the weights are inflated to a temporary file, not into
    memory; only the HDF5 structure is read from them, never the values.
    """
    path = Path(path)
    try:
        with fsutil.open_regular(path) as file, zipfile.ZipFile(file) as archive:
            metadata = _json_member(archive, "metadata.json", path)
            config = _json_member(archive, "config.json", path)
            parameters = _weights_parameters(archive, path)
            file_bytes = os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        raise ModelError("model file not found", path) from None
    except OSError as exc:
        raise ModelError(f"cannot read: {os_reason(exc)}", path) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise ModelError(f"not a Keras .keras model file ({one_line(exc)})", path) from None
    model = config.get("config", {})
    if not isinstance(model, dict):
        raise ModelError(f"{_MALFORMED}: its config is not an object", path)
    try:
        description = _describe(path, file_bytes, metadata, model, parameters)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        raise ModelError(f"{_MALFORMED} ({one_line(exc)})", path) from None
    description.update(_provenance(path))
    return description


def _json_member(archive: zipfile.ZipFile, name: str, path: Path) -> dict[str, Any]:
    """A JSON object member of the archive, at most MAX_JSON_BYTES."""
    data = _member(archive, name, MAX_JSON_BYTES, path).read()
    try:
        value = json.loads(data)
    except RecursionError:
        raise ModelError(f"{name} is nested too deeply to be a model's", path) from None
    except ValueError as exc:  # bad JSON, or bytes that are not UTF-8
        raise ModelError(f"{name} is not valid JSON ({one_line(exc)})", path) from None
    if not isinstance(value, dict):
        raise ModelError(f"{_MALFORMED}: {name} is not a JSON object", path)
    return value


def _member(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> IO[bytes]:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelError(f"not a Keras .keras model file (no {name} in it)", path) from None
    if info.file_size > limit:
        raise ModelError(
            f"{name} would inflate to {info.file_size} bytes, over the limit of {limit} "
            "(a zip bomb?)",
            path,
        )
    return archive.open(info)


def _weights_parameters(archive: zipfile.ZipFile, path: Path) -> int:
    with (
        _member(archive, WEIGHTS, MAX_WEIGHTS_BYTES, path) as member,
        tempfile.TemporaryFile() as copy,
    ):
        # Read to the end: zipfile stops at the declared size and checks the CRC there.
        shutil.copyfileobj(member, copy, 1 << 20)
        copy.seek(0)
        try:
            with h5py.File(copy, "r") as h5:
                return _count_parameters(h5)
        except _H5_ERRORS as exc:
            raise ModelError(
                f"{WEIGHTS} is not a readable HDF5 file ({one_line(exc)})", path
            ) from None


def _describe(
    path: Path, file_bytes: int, metadata: dict, model: dict, parameters: int
) -> dict[str, Any]:
    description: dict[str, Any] = {
        "path": str(path),
        "file_bytes": file_bytes,
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
            return {"card": json.loads(fsutil.read_regular_file(card, MAX_JSON_BYTES))}
        except OSError as exc:
            return {"card": f"unreadable: {os_reason(exc)}"}
        except (ValueError, RecursionError) as exc:
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
