"""Photos -> shards (`colorize prepare`): parallel, memory-bounded, deterministic and resumable.

Each input is hashed, decoded, fitted to a square and turned gray by worker processes
(decoding.py); the main process writes the results in input order, so the output does not depend
on `jobs`. Naming, the train/val split, `--part` and `--resume` are described in docs/format.md.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from colorize_cli import fsutil
from colorize_cli.config import PrepareOptions
from colorize_cli.data import shard_writer, shards
from colorize_cli.data.decoding import Decoders, Plan
from colorize_cli.errors import ShardError, UsageError
from colorize_cli.imaging import images
from colorize_cli.imaging.inputs import expand_inputs
from colorize_cli.progress import NullProgress, ProgressSink

SPLITS = ("train", "val")
CHECKPOINT_EVERY = shard_writer.CHECKPOINT_EVERY


@dataclass
class PrepareReport:
    """What a run did. `written` counts the photos in the outputs, resumed ones included."""

    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    outputs: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    duplicates: int = 0  # inputs whose content equals an earlier input's
    resumed: int = 0  # photos an interrupted run had already written
    other_part: int = 0  # inputs left to the other --part runs
    inputs: int = 0
    seconds: float = 0.0

    @property
    def photos_per_second(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0


def split_of(sha256: str, val_fraction: float) -> str:
    """The split of a content: "val" when its first 64 hash bits fall below `val_fraction`."""
    return "val" if int(sha256[:16], 16) < val_fraction * 2**64 else "train"


def output_paths(out: Path, split: str, shard_size: int, index: int) -> Path:
    """OUT.h5 / OUT.val.h5, or OUT-00000.h5 / OUT-00000.val.h5 with `shard_size`.

    Only validation files end in `.val.h5`, so a glob ending in a digit and `.h5` takes no val file.
    """
    stem = out.name[: -len(out.suffix)]
    number = f"-{index:05d}" if shard_size else ""
    marker = ".val" if split == "val" else ""
    return out.with_name(f"{stem}{number}{marker}{out.suffix}")


class _Split:
    """The shard sequence of one split: completed files, then at most one open writer."""

    def __init__(self, name: str, options: PrepareOptions, attrs: dict[str, Any]) -> None:
        self.name, self.options, self.attrs = name, options, attrs
        self.index = 0  # of the next shard to open
        self.count = 0  # photos in completed shards
        self.done: set[str] = set()
        self.complete: Path | None = None  # a finished run's last file: nothing may follow it
        self.outputs: list[Path] = []
        self.writer: shard_writer.ShardWriter | None = None

    def path(self, index: int) -> Path:
        return output_paths(self.options.out, self.name, self.options.shard_size, index)

    def pick_up(self) -> None:
        """--resume: adopt the completed files in order, then salvage the interrupted one."""
        shard_size = self.options.shard_size
        while self.path(self.index).exists():
            with shards.open_shard(self.path(self.index)) as shard:
                _check_resumable(shard, {**self.attrs, "image_size": self.options.size})
                self.done.update(shard.sha256)
                self.count += len(shard)
                full = shard_size and len(shard) == shard_size
            self.outputs.append(self.path(self.index))
            self.index += 1
            if not full:
                self.complete = self.outputs[-1]
                break
        if self.complete is None and fsutil.temp_paths(self.path(self.index)):
            self._open(resume=True)
            self.done.update(self.writer.sha256)
            if len(self.writer) == shard_size:  # killed while committing a full shard
                self.close()
                self.index += 1

    def add(self, gray: np.ndarray, rgb: np.ndarray, source: str, sha256: str) -> None:
        if self.complete is not None:
            raise UsageError(
                f"{source} is new, but {self.complete} is complete: --resume only continues an "
                "interrupted run over the same photos",
                self.options.out,
            )
        if self.writer is None:
            self._open(resume=False)
        self.writer.append(gray, rgb, source, sha256)
        if len(self.writer) == self.options.shard_size:
            self.close()
            self.index += 1

    def _open(self, resume: bool) -> None:
        attrs = {**self.attrs, "shard_index": self.index}
        self.writer = shard_writer.ShardWriter(
            self.path(self.index),
            self.options.size,
            self.name,
            self.options.compression,
            attrs,
            checkpoint_every=CHECKPOINT_EVERY,
            resume=resume,
        )

    def close(self) -> None:
        if self.writer is not None:
            self.count += len(self.writer)
            self.outputs.append(self.writer.close())
            self.writer = None

    def stop(self, commit: bool) -> None:
        """Close the open writer: committed, or kept as a temporary file for --resume."""
        if commit:
            self.close()
        elif self.writer is not None:
            # Best effort on the way out: never hide the error that stopped the run.
            with contextlib.suppress(ShardError):
                self.writer.suspend()
            self.writer = None


def _check_resumable(shard: shards.Shard, attrs: dict[str, Any]) -> None:
    for key in attrs.keys() - {"shard_index"}:
        if shard.attrs.get(key) != attrs[key]:
            raise UsageError(
                f"was prepared with {key}={shard.attrs.get(key)!r}, not {attrs[key]!r}: "
                "resume with the same options",
                shard.path,
            )


def _family(out: Path) -> list[Path]:
    """Files this OUT names: outputs of any shard size and writers' temporary files."""
    stem, suffix = re.escape(out.name[: -len(out.suffix)]), re.escape(out.suffix)
    temp = re.escape(fsutil.TEMP_MARK)
    pattern = re.compile(rf"{stem}(-\d{{5,}})?(\.val)?{suffix}({temp}[\d-]+)?")
    if not out.parent.is_dir():
        return []
    return sorted(p for p in out.parent.iterdir() if pattern.fullmatch(p.name))


def _claim_outputs(options: PrepareOptions) -> None:
    """Refuse to mix with earlier outputs unless told to resume them or replace them."""
    earlier = _family(options.out)
    if not earlier or options.resume:
        return
    if not options.overwrite:
        leftover = next((p for p in earlier if fsutil.TEMP_MARK in p.name), None)
        if leftover is not None:
            hint = f"{leftover.name} is left by an interrupted run; use --resume to continue it"
        else:
            hint = f"{earlier[0].name} exists; use --overwrite to replace it"
        raise UsageError(f"{hint}, or remove it", options.out)
    for path in earlier:
        path.unlink()


def _jobs(requested: int, inputs: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(requested or cores or 1, inputs))


def prepare(
    options: PrepareOptions, progress: ProgressSink | None = None, stdin: TextIO | None = None
) -> PrepareReport:
    """Turn photos into train/val shards; bad inputs are skipped with a reason, never fatal."""
    progress = progress or NullProgress()
    started = time.monotonic()
    paths, problems = expand_inputs(options.sources, stdin)
    report = PrepareReport(skipped=list(problems), inputs=len(paths))
    for source, reason in problems:
        progress.log(f"skipped {images.display_path(source)}: {reason}")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    _claim_outputs(options)
    part = options.part
    attrs = {
        "fit": options.fit,
        "val_fraction": float(options.val_fraction),
        "part": f"{part[0]}/{part[1]}" if part else "",
        "min_colorfulness": float(options.min_colorfulness),
        "shard_size": options.shard_size,
    }
    splits = {name: _Split(name, options, attrs) for name in SPLITS}
    committed = False
    try:
        if options.resume:
            for split in splits.values():
                split.pick_up()
        done = frozenset().union(*(split.done for split in splits.values()))
        plan = Plan(
            options.size, options.fit, options.max_pixels, part, options.min_colorfulness, done
        )
        jobs = _jobs(options.jobs, len(paths))
        _run(paths, plan, jobs, options.val_fraction, splits, report, progress)
        for split in splits.values():
            split.stop(commit=True)
        committed = True
    finally:
        if not committed:
            for split in splits.values():
                split.stop(commit=False)
    for name, split in splits.items():
        report.written[name] = split.count
        report.outputs += split.outputs
    report.seconds = time.monotonic() - started
    progress.finish(_summary(report))
    return report


def _run(
    paths: Sequence[Path],
    plan: Plan,
    jobs: int,
    val_fraction: float,
    splits: dict[str, _Split],
    report: PrepareReport,
    progress: ProgressSink,
) -> None:
    seen: set[str] = set()
    kept = 0
    with (
        Decoders(paths, plan, jobs) as outcomes,
        fsutil.signals_caught() as stop,
    ):  # Ctrl-C lands between photos
        progress.start("prepare", total=len(paths), unit="photos")
        for path, outcome in outcomes:
            if stop:
                raise KeyboardInterrupt
            if outcome.kind == "skip":
                report.skipped.append((str(path), outcome.reason))
                progress.log(f"skipped {images.display_path(path)}: {outcome.reason}")
            elif outcome.kind == "other_part":
                report.other_part += 1
            elif outcome.sha256 in seen:
                report.duplicates += 1
            elif outcome.kind == "done":
                seen.add(outcome.sha256)
                report.resumed += 1
            else:
                seen.add(outcome.sha256)
                split = splits[split_of(outcome.sha256, val_fraction)]
                split.add(outcome.gray, outcome.rgb, str(path), outcome.sha256)
                kept += 1
            progress.advance(1, kept=kept, skipped=len(report.skipped))


def _summary(report: PrepareReport) -> str:
    parts = [
        f"wrote {report.written['train']} train + {report.written['val']} val photos "
        f"to {len(report.outputs)} file(s)",
        f"{report.photos_per_second:.1f} photos/s",
    ]
    for count, what in (
        (report.resumed, "already done"),
        (len(report.skipped), "skipped"),
        (report.duplicates, "duplicate(s)"),
        (report.other_part, "left to other parts"),
    ):
        if count:
            parts.append(f"{count} {what}")
    return "; ".join(parts)


def write_errors_tsv(report: PrepareReport, path: str | os.PathLike[str]) -> Path:
    """Write the skipped inputs as a TSV (header `path<TAB>reason`), atomically."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(report.skipped)
    try:
        # surrogateescape writes a file name that is not UTF-8 back as its own bytes.
        fsutil.write_bytes(path, buffer.getvalue().encode("utf-8", "surrogateescape"))
    except OSError as exc:
        raise UsageError(f"cannot write: {fsutil.os_reason(exc)}", path) from exc
    return path
