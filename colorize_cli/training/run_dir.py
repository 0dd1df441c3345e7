"""The files of a training run directory, each written so a kill never leaves a half-written one.

RUN/config.json      every setting and the shards' provenance (what `--resume` reads back)
RUN/metrics.jsonl    one JSON line per finished epoch
RUN/samples/         epoch-NNN.png: gray | generated | truth, one row per validation photo
RUN/checkpoints/     tf.train.CheckpointManager's files (both networks, optimizers, position)
RUN/model.keras      the generator alone after the last epoch, what `colorize apply` and `eval` load
RUN/best.keras       the generator after the epoch with the lowest `val_selection` so far
RUN/tensorboard/     event files, with --tensorboard
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from colorize_cli import fsutil
from colorize_cli.errors import TrainingError
from colorize_cli.imaging.writing import write_image

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
MODEL = "model.keras"
BEST = "best.keras"
TENSORBOARD = "tensorboard"
# config.json and metrics.jsonl are read whole up to this size (a run writes a few KB).
MAX_RECORD_BYTES = 64 * 2**20


def entries(run_dir: Path) -> set[str] | None:
    """The names in `run_dir` before a run starts there; None when it does not exist yet."""
    try:
        return set(os.listdir(run_dir))
    except FileNotFoundError:
        return None


def discard_new_entries(run_dir: Path, before: set[str] | None) -> None:
    """Remove what a run added to `run_dir` since `entries` gave `before`: the whole directory
    if the run made it, else the names it added."""
    if before is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        for name in set(os.listdir(run_dir)) - before:
            path = run_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def write_config(run_dir: Path, record: dict[str, Any]) -> None:
    """Write config.json atomically."""
    fsutil.write_text(run_dir / CONFIG, json.dumps(record, indent=2) + "\n")


def read_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run; TrainingError when `run_dir` is not a run directory."""
    path = run_dir / CONFIG
    try:
        return json.loads(fsutil.read_regular_file(path, MAX_RECORD_BYTES))
    except FileNotFoundError:
        raise TrainingError("not a training run directory (no config.json)", run_dir) from None
    except OSError as exc:
        raise TrainingError(f"unreadable run configuration: {fsutil.os_reason(exc)}", path) from exc
    except (ValueError, RecursionError) as exc:
        raise TrainingError(f"unreadable run configuration: {exc}", path) from exc


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Add one epoch's line to metrics.jsonl (flushed to disk before returning)."""
    with open(run_dir / METRICS, "a") as out:
        out.write(json.dumps(record) + "\n")
        out.flush()
        os.fsync(out.fileno())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every line of metrics.jsonl; a torn last line (a kill mid-write) is left out."""
    try:
        data = fsutil.read_regular_file(run_dir / METRICS, MAX_RECORD_BYTES)
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    records = []
    for line in lines:
        with contextlib.suppress(ValueError, RecursionError):
            records.append(json.loads(line))
    return records


def keep_metrics_until(run_dir: Path, step: int) -> None:
    """Drop the lines written after the checkpoint at `step`: a resumed run writes them again."""
    kept = [record for record in read_metrics(run_dir) if record["step"] <= step]
    fsutil.write_text(run_dir / METRICS, "".join(json.dumps(record) + "\n" for record in kept))


def write_samples(path: Path, gray: np.ndarray, generated: np.ndarray, truth: np.ndarray) -> None:
    """A PNG grid with one row per photo: gray | generated | truth (uint8, (N, S, S[, 3]))."""
    gray_rgb = np.repeat(gray[..., None], 3, axis=-1) if gray.ndim == 3 else gray
    rows = [np.concatenate(row, axis=1) for row in zip(gray_rgb, generated, truth, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.concatenate(rows, axis=0))


def save_model(model: Any, path: Path) -> None:
    """Save a Keras model atomically: `apply` never loads a half-written model.keras."""
    with fsutil.atomic_path(path, keep_suffix=True) as temporary:
        model.save(temporary)
