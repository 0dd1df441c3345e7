"""Model x data -> metric table: `colorize eval` scores a generator through the same `Colorizer`
as `apply`, at full resolution, next to the gray baseline (no colour added) scored the same way.

DATA are shard files (the validation split `prepare` writes) or photo folders/files. Results are
plain objects: the CLI draws the table; `to_json`, `write_per_image_csv` and `write_sheet` export.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from colorize_cli import fsutil
from colorize_cli.config import APPLY_BATCH_SIZE, RENDER_SIZE
from colorize_cli.data import shards
from colorize_cli.errors import ColorizeError, UsageError
from colorize_cli.imaging import color, images, metrics, writing
from colorize_cli.imaging import hints as hinting
from colorize_cli.imaging.inputs import IMAGE_EXTENSIONS, expand_inputs
from colorize_cli.inference.colorizer import Colorizer
from colorize_cli.progress import NullProgress, ProgressSink

SYSTEMS = ("model", "gray")
# (key, label, which way is better) for every reported metric, in table order.
METRICS = (
    ("psnr", "PSNR (dB)", "higher"),
    ("ssim", "SSIM", "higher"),
    ("ciede2000", "CIEDE2000", "lower"),
    ("auc", "AuC ab", "higher"),
    ("colourfulness", "colourfulness", "closer to truth"),
    ("colourfulness_truth", "colourfulness of truth", "-"),
    ("colourfulness_ratio", "colourfulness ratio", "closer to 1"),
)
DEFAULT_SHEET_COUNT = 8
SHEET_CELL = 256  # each photo of the contact sheet fits a square of this side
_GAP = 4
_LABEL_HEIGHT = 16


@dataclass(frozen=True)
class ImageResult:
    """The scores of one photo, for the model and for the gray baseline."""

    name: str
    width: int
    height: int
    model: metrics.ImageScores
    gray: metrics.ImageScores


@dataclass
class EvalResult:
    """Per-photo scores, their means, photos that could not be read, and contact-sheet rows."""

    model_path: str
    data: list[str]
    render_size: int
    images: list[ImageResult] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    sheet_rows: list[tuple[np.ndarray, ...]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """{"model" | "gray": {metric: mean over photos}}; the colourfulness ratio is the ratio of
        the mean colourfulness of the outputs to that of the truths."""
        table: dict[str, dict[str, float]] = {}
        for system in SYSTEMS:
            scores = [getattr(row, system) for row in self.images]
            means = {
                f.name: float(np.mean([getattr(s, f.name) for s in scores])) if scores else math.nan
                for f in fields(metrics.ImageScores)
            }
            means["colourfulness_ratio"] = metrics.colorfulness_ratio(
                [s.colourfulness for s in scores], [s.colourfulness_truth for s in scores]
            )
            table[system] = means
        return table

    def to_json(self) -> dict:
        """One JSON-ready object (non-finite numbers become null)."""
        return {
            "model": self.model_path,
            "data": self.data,
            "render_size": self.render_size,
            "images": len(self.images),
            "failed": [{"image": name, "reason": reason} for name, reason in self.failures],
            "metrics": {
                system: {key: _finite(value) for key, value in means.items()}
                for system, means in self.summary().items()
            },
        }

    def write_per_image_csv(self, path: str | os.PathLike[str]) -> None:
        """One row per photo: name, size, then every score for the model and `gray_` baseline."""
        keys = [f.name for f in fields(metrics.ImageScores)]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["image", "width", "height", *keys, *(f"gray_{k}" for k in keys)])
        for row in self.images:
            writer.writerow(
                [row.name, row.width, row.height]
                + [_csv_number(getattr(row.model, k)) for k in keys]
                + [_csv_number(getattr(row.gray, k)) for k in keys]
            )
        try:
            # surrogateescape writes a file name that is not UTF-8 back as its own bytes.
            fsutil.write_bytes(path, buffer.getvalue().encode("utf-8", "surrogateescape"))
        except OSError as exc:
            raise UsageError(f"cannot write: {fsutil.os_reason(exc)}", path) from exc

    def write_sheet(self, path: str | os.PathLike[str]) -> None:
        """A PNG contact sheet: one row per kept photo, gray | colorized | truth."""
        writing.write_image(path, contact_sheet(self.sheet_rows), format="png")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _csv_number(value: float) -> str:
    return f"{value:.6g}"


def evaluate(
    model_path: str | Path | None,
    data: Sequence[str],
    render_size: int = RENDER_SIZE,
    batch_size: int = APPLY_BATCH_SIZE,
    sheet_count: int = DEFAULT_SHEET_COUNT,
    progress: ProgressSink | None = None,
    colorizer: Colorizer | None = None,
    backend: str = "auto",
    oracle_hints: int = 0,
    reference: str | None = None,
    seed: int = 0,
    hint_mode: str = "network",
) -> EvalResult:
    """Score the generator at `model_path` (None: the bundled one) on shards or photos.

    Each photo's gray goes through `Colorizer` exactly as in `apply`; the output, and the gray
    replicated into RGB (the baseline), are scored against the photo at its full resolution. The
    first `sheet_count` photos are kept, shrunk, for `write_sheet`. Unreadable photos are listed in
    `failures`; a missing or foreign shard or model raises. `backend` is Colorizer's.

    `oracle_hints` N gives each photo N hints sampled from its own truth (hints.oracle_points),
    the same for the same `seed` and photo name; `reference` "truth" gives each photo its own
    palette, a path one reference photo for all. Both need a hint model, or a `colorizer` with
    hint_mode "blend" for the points.
    """
    progress = progress or NullProgress()
    found: list[tuple[str, str]] = []
    sources = list(_samples(data, found))
    colorizer = colorizer or Colorizer(model_path, render_size, batch_size, backend, hint_mode)
    result = EvalResult(str(colorizer.model_path), list(data), colorizer.render_size)
    result.failures += found
    network_hints = reference is not None or (oracle_hints and colorizer.hint_mode != "blend")
    if network_hints and not colorizer.takes_hints:
        raise UsageError(
            "this model takes no hints or reference (automatic colour only); --blend-hints "
            "blends points into any model's colour",
            colorizer.model_path,
        )
    shared_reference = None
    if reference not in (None, "truth"):
        try:
            shared_reference = hinting.reference_ab(images.read_image(reference))
        except ColorizeError as exc:
            raise UsageError(f"--reference: {exc.reason}", reference) from None

    def guided(items: Iterator) -> Iterator:
        for (name, truth, gray), image in items:
            if not (oracle_hints or reference):
                yield (name, truth, gray), image
                continue
            rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8", "replace"))])
            points = hinting.oracle_points(truth, oracle_hints, rng)
            palette = hinting.reference_ab(truth) if reference == "truth" else shared_reference
            yield (name, truth, gray), image, hinting.Guide(points, palette)

    progress.start("evaluating", total=len(sources), unit="photos")
    items = guided(_read(sources, result, progress))
    for (name, truth, gray), output in colorizer.colorize_many(items):
        baseline = np.repeat(gray[..., np.newaxis], 3, axis=-1)
        height, width = truth.shape[:2]
        result.images.append(
            ImageResult(
                name,
                width,
                height,
                metrics.score_image(truth, output),
                metrics.score_image(truth, baseline),
            )
        )
        if len(result.sheet_rows) < sheet_count:
            result.sheet_rows.append(tuple(thumbnail(x) for x in (baseline, output, truth)))
        progress.advance(1)
    summary = result.summary()
    progress.finish(
        f"scored {len(result.images)} photos: CIEDE2000 {summary['model']['ciede2000']:.2f} "
        f"(gray {summary['gray']['ciede2000']:.2f})"
    )
    return result


@dataclass(frozen=True)
class _Sample:
    """Where one evaluation photo comes from: row `index` of a shard, or a photo file."""

    name: str
    path: Path
    index: int | None = None


def _samples(data: Sequence[str], failures: list[tuple[str, str]]) -> Iterator[_Sample]:
    """Photo folders and files (by their extension) are read as photos; the rest as shards.

    A named photo or folder that is missing or empty is a UsageError; files found inside a
    folder that cannot be read (pipes, broken links, unreadable subfolders) go to `failures`.
    """
    photo_args = [d for d in data if Path(d).is_dir() or _is_photo_name(d)]
    shard_args = [d for d in data if d not in photo_args]
    for path in shards.expand_shard_paths(shard_args) if shard_args else []:
        with shards.open_shard(path) as shard:
            count = len(shard)
        for i in range(count):
            yield _Sample(f"{path}:{i}", path, i)
    if photo_args:
        paths, problems = expand_inputs(photo_args)
        for source, reason in problems:
            if source in photo_args:
                raise UsageError(reason, source)
            failures.append((source, reason))
        yield from (_Sample(str(p), p) for p in paths)


def _is_photo_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _read(
    samples: list[_Sample], result: EvalResult, progress: ProgressSink
) -> Iterator[tuple[tuple[str, np.ndarray, np.ndarray], np.ndarray]]:
    """((name, truth, gray), gray) for `colorize_many`; unreadable ones go to `result.failures`."""
    shard: shards.Shard | None = None
    try:
        for sample in samples:
            try:
                if sample.index is None:
                    truth = images.read_image(sample.path)
                    gray = color.grayscale(truth)
                else:
                    if shard is None or shard.path != sample.path:
                        if shard is not None:
                            shard.close()
                        shard = shards.open_shard(sample.path)
                    gray, truth = shard.read(sample.index)
            except ColorizeError as exc:
                result.failures.append((sample.name, exc.reason))
                progress.advance(1)
                continue
            yield (sample.name, truth, gray), gray
    finally:
        if shard is not None:
            shard.close()


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    image = Image.fromarray(rgb)
    image.thumbnail((SHEET_CELL, SHEET_CELL), Image.Resampling.LANCZOS)
    return np.asarray(image)


def contact_sheet(
    rows: Sequence[tuple[np.ndarray, ...]],
    columns: Sequence[str] = ("gray", "colorized", "truth"),
) -> np.ndarray:
    """Rows of thumbnails (each fits SHEET_CELL) on a white sheet under a header of `columns`
    ("gray | colorized | truth"), each centred in its cell."""
    step = SHEET_CELL + _GAP
    sheet = Image.new(
        "RGB",
        (_GAP + step * len(columns), _LABEL_HEIGHT + _GAP + step * max(len(rows), 1)),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(columns):
        center = (_GAP + j * step + SHEET_CELL // 2, _LABEL_HEIGHT // 2)
        draw.text(center, label, fill="black", anchor="mm")
    for i, row in enumerate(rows):
        for j, thumb in enumerate(row):
            height, width = thumb.shape[:2]
            left = _GAP + j * step + (SHEET_CELL - width) // 2
            top = _LABEL_HEIGHT + _GAP + i * step + (SHEET_CELL - height) // 2
            sheet.paste(Image.fromarray(thumb), (left, top))
    return np.asarray(sheet)
