"""`colorize export`: a generator `.keras` -> ONNX, TFLite or a SavedModel folder, with dynamic
height and width and the generator contract as metadata (docs/export.md).

Each export is written beside OUT under a temporary name, run through `Colorizer` next to the Keras
model on photos, and renamed over OUT only if their a*b* agree within `TOLERANCE`; otherwise it is
removed. The formats themselves are written by converters.py; TensorFlow and tf2onnx load only then.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorize_cli import __version__, fsutil
from colorize_cli.config import EXPORT_FORMATS, MAX_PIXELS, ExportOptions
from colorize_cli.errors import ColorizeError, ImageError, ModelError, UsageError, one_line
from colorize_cli.inference import converters, model_files
from colorize_cli.progress import NullProgress, ProgressSink

FORMATS = EXPORT_FORMATS
SUFFIXES = {".onnx": "onnx", ".tflite": "tflite"}  # a SavedModel is a folder: --format savedmodel
# The most an export may differ from Keras in a*b* (Lab units) on the check photos, at render size:
# (max, mean) |difference|. float32 exports differ by float rounding only (docs/export.md has the
# measured figures); quantised ones by more, and `colorize eval` reports what that costs.
TOLERANCE = {"float32": (0.5, 0.05), "float16": (4.0, 0.5), "int8": (64.0, 6.0)}
CHECK_PHOTOS = 16  # photos used to verify an export (and to calibrate int8), at most


@dataclass(frozen=True)
class ExportReport:
    """What was written, and how closely it agrees with the Keras model."""

    path: Path
    format: str
    precision: str
    file_bytes: int
    photos: int
    synthetic: bool  # no photos given: checked on generated gray images
    max_diff: float
    mean_diff: float
    tolerance: tuple[float, float]
    seconds: float
    metadata: dict[str, Any]


def resolve_format(out: Path, format: str | None, quantize: str | None) -> str:
    """The export format from --format or OUT's suffix, checked against --quantize."""
    by_suffix = SUFFIXES.get(out.suffix.lower())
    if format is None:
        if by_suffix is None:
            raise UsageError(
                f"cannot tell the format from {out.name!r}: name it .onnx or .tflite, or pass "
                "--format savedmodel"
            )
        format = by_suffix
    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {format}")
    if by_suffix is not None and by_suffix != format:
        raise UsageError(f"--format {format} does not match the name {out.name}")
    if quantize is not None and format != "tflite":
        raise UsageError("--quantize applies to TFLite exports only")
    return format


def export(options: ExportOptions, progress: ProgressSink | None = None) -> ExportReport:
    """Export, verify and atomically write the generator; ModelError if the export disagrees."""
    from colorize_cli.inference.colorizer import Colorizer

    progress = progress or NullProgress()
    started = time.perf_counter()
    out = Path(options.out)
    format = resolve_format(out, options.format, options.quantize)
    precision = options.quantize or "float32"
    if out.exists() and not options.overwrite:
        raise UsageError("OUT exists: pass --overwrite to replace it", out)
    if out.is_dir() != (format == "savedmodel") and out.exists():
        raise UsageError(f"OUT is a {'folder' if out.is_dir() else 'file'}: not a {format}", out)
    _require_exporters(format)
    photos, synthetic = _check_photos(options.photos)
    reference = Colorizer(options.model, options.render_size, backend="tf")
    source, model = reference.model_path, reference.backend.model
    if precision == "int8" and reference.takes_hints:
        # Measured with ai-edge-litert 2.3: the int8 graph of a hint model aborts the process
        # under XNNPACK (a double free); the builtin kernels run it 3x slower than float32
        # (bench/lite_kernels.py).
        raise UsageError(
            "--quantize int8 is not available for a hint model: LiteRT's XNNPACK crashes "
            "running it and its other kernels are 3x slower than float32; use --quantize "
            "float16 (half the size)",
            source,
        )
    metadata = _metadata(source, reference, options.render_size, format, precision)
    progress.log(f"exporting {source.name} to {format} ({precision})")
    try:
        serving = converters.serving_function(model, "rgb" if reference.predicts_rgb else "ab")
        if format == "savedmodel":
            agreement = _export_folder(
                out, serving, metadata, reference, photos, precision, progress
            )
        else:
            with fsutil.atomic_path(out, keep_suffix=True) as temporary:
                if format == "onnx":
                    converters.write_onnx(serving, temporary, metadata)
                else:
                    calibration = [reference.network_input(p) for p in photos]
                    converters.write_tflite(serving, temporary, metadata, precision, calibration)
                agreement = _verify(temporary, reference, photos, precision, progress)
    except ColorizeError:
        raise
    except OSError as exc:
        raise ModelError(f"cannot write the export: {fsutil.os_reason(exc)}", out) from None
    except Exception as exc:  # the converters fail in many ways on graphs they cannot map
        raise ModelError(f"the {format} converter failed: {one_line(exc)}", source) from None
    max_diff, mean_diff = agreement
    return ExportReport(
        path=out,
        format=format,
        precision=precision,
        file_bytes=_size(out),
        photos=len(photos),
        synthetic=synthetic,
        max_diff=max_diff,
        mean_diff=mean_diff,
        tolerance=TOLERANCE[precision],
        seconds=time.perf_counter() - started,
        metadata=metadata,
    )


def _require_exporters(format: str) -> None:
    """UsageError naming the extra when a converter, or the runtime that verifies, is missing."""
    import importlib.util

    if format == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        raise UsageError("exporting to ONNX needs tf2onnx: pip install 'colorize-cli[onnx]'")
    if format in ("onnx", "tflite"):
        model_files.require_runtime("lite" if format == "tflite" else "onnx")


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _metadata(
    source: Path, reference: Any, render_size: int, format: str, precision: str
) -> dict[str, Any]:
    """The model card's facts and the contract, as every format's metadata carries them."""
    from colorize_cli.inference.model_info import describe_model

    try:
        described = describe_model(source)
    except ModelError:
        described = {}
    card = described.get("card", {})
    training = described.get("training", {})
    output = "rgb" if reference.predicts_rgb else "ab"
    facts = {
        "contract": model_files.CONTRACT_VERSION if reference.takes_hints else 1,
        "input": f"{converters.INPUT_NAME}: float32 (batch, H, W, 1), CIE L* of the gray photo "
        "in [0, 100]; H and W multiples of the stride, padded symmetrically",
        "hints": reference.takes_hints,
        "output": output,
        "output_units": "a*b* in CIELab units (D65)" if output == "ab" else "sRGB in [0, 1]",
        "stride": reference.stride,
        "render_size": card.get("render_size", render_size),
        "preset": card.get("preset", training.get("model")),
        "recipe": card.get("recipe", training.get("recipe")),
        "recombine": "turn the output into Cb, Cr at its own size (L* of each cell's mean gray), "
        "upsample them bilinearly to the photo's size and put them on each pixel's own gray, "
        "scaled into [0, 255] (docs/export.md)",
        "format": format,
        "precision": precision,
        "source": source.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "colorize_version": __version__,
    }
    if reference.takes_hints:
        facts["hint_inputs"] = (
            "hints: float32 (batch, H, W, 3), a*/110 and b*/110 on hint patches and a mask, zeros "
            "elsewhere and in the padding; palette: float32 (batch, 485), a reference's a*b* "
            "histogram over 22x22 cells of 10 Lab units from -110, summing to 1, then a given "
            "flag (docs/hints.md)"
        )
    if format == "onnx":
        facts["opset"] = converters.ONNX_OPSET
    return facts


def _check_photos(sources: Sequence[str]) -> tuple[list[np.ndarray], bool]:
    """Up to CHECK_PHOTOS photos from files/folders, else generated gray images (synthetic)."""
    from colorize_cli.imaging import images
    from colorize_cli.imaging.inputs import expand_inputs

    if not sources:
        return _synthetic_photos(), True
    paths, _ = expand_inputs(list(sources))
    photos = []
    for path in paths:
        if len(photos) == CHECK_PHOTOS:
            break
        try:
            photos.append(images.read_image(path, MAX_PIXELS))
        except ImageError:
            continue
    if not photos:
        raise UsageError(f"no readable photo in --photos {' '.join(sources)}")
    return photos, False


def _synthetic_photos() -> list[np.ndarray]:
    """Gray images with smooth shading, edges and texture, odd sizes among them (seeded)."""
    rng = np.random.default_rng(13)
    photos = []
    for height, width in ((160, 240), (213, 160), (97, 131), (320, 480), (64, 96), (150, 150)):
        y, x = np.mgrid[0:height, 0:width] / max(height, width)
        shade = 0.5 + 0.3 * np.sin(6 * x + rng.uniform(0, 6)) * np.cos(4 * y + rng.uniform(0, 6))
        shade += 0.25 * ((x - 0.5) ** 2 + (y - 0.3) ** 2 < rng.uniform(0.02, 0.08))
        shade += rng.normal(0, 0.04, shade.shape)
        photos.append(np.clip(shade * 255, 0, 255).astype(np.uint8))
    return photos


def _export_folder(
    out: Path,
    serving: Any,
    metadata: dict[str, Any],
    reference: Any,
    photos: list[np.ndarray],
    precision: str,
    progress: ProgressSink,
) -> tuple[float, float]:
    """A SavedModel folder, written and verified under a temporary name, then swapped in."""
    temporary = fsutil.temp_path(out)
    try:
        converters.write_savedmodel(serving, temporary, metadata)
        agreement = _verify(temporary, reference, photos, precision, progress)
        fsutil.replace_folder(temporary, out)
        return agreement
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _check_guide(photo: np.ndarray, index: int) -> Any:
    """Hints to verify a hint model's export with on every other photo: a few seeded points and
    the photo's own palette (the hint inputs are checked, not only the L* path)."""
    from colorize_cli.imaging import hints

    if index % 2:
        return None
    rng = np.random.default_rng(index)
    height, width = photo.shape[:2]
    points = tuple(
        hints.Point(
            int(rng.integers(width)),
            int(rng.integers(height)),
            tuple(int(c) for c in rng.integers(0, 256, 3)),
        )
        for _ in range(5)
    )
    rgb = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, axis=-1)
    rgb = np.roll(rgb, 1, axis=-1)  # some colour even for a gray check image
    return hints.Guide(points, hints.reference_ab(rgb))


def _verify(
    path: Path, reference: Any, photos: list[np.ndarray], precision: str, progress: ProgressSink
) -> tuple[float, float]:
    """(max, mean) |a*b* difference| of the export at `path` against the Keras `reference` on the
    photos; ModelError (and the export removed by the caller) beyond TOLERANCE."""
    from colorize_cli.inference.colorizer import Colorizer

    progress.log(f"verifying on {len(photos)} photos against Keras")
    try:
        exported = Colorizer(path, reference.render_size, reference.batch_size)
    except ColorizeError as exc:
        raise ModelError(f"the export cannot be run back: {exc.reason}") from None
    worst, total, count = 0.0, 0.0, 0
    items = [(i, photo, _check_guide(photo, i)) for i, photo in enumerate(photos)]
    if not reference.takes_hints:
        items = [(i, photo, None) for i, photo, _ in items]
    pairs = zip(reference.chroma_many(items), exported.chroma_many(items), strict=True)
    for (_, _, expected), (_, _, got) in pairs:
        difference = np.abs(expected.astype(np.float64) - got)
        worst = max(worst, float(difference.max()))
        total += float(difference.sum())
        count += difference.size
    mean = total / count
    limit_max, limit_mean = TOLERANCE[precision]
    if not (worst <= limit_max and mean <= limit_mean):  # NaN fails too
        raise ModelError(
            f"export refused and removed: it disagrees with the Keras model by max {worst:.3g} / "
            f"mean {mean:.3g} in a*b*, beyond the {precision} tolerance "
            f"{limit_max:g} / {limit_mean:g}"
        )
    return worst, mean
