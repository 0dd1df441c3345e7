"""Writing photos safely: any format `apply` offers, atomically (readers see the old file or the
whole new one), encoded straight into the file, with a clear ImageError for a photo its format
cannot hold or a file that cannot be written. Reading is images.py's.

An sRGB photo written as JPEG keeps full chroma resolution (4:4:4) at quality >= 90; a 'YCbCr'
image (`chroma.recombine_jpeg`: colour made at half resolution or coarser, in JPEG's own model) is
written as it is, 4:2:0, with no conversion. EXIF is carried over where the format holds it; a
photo that came with an ICC profile (converted to sRGB when read) leaves tagged sRGB.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageCms

from colorize_cli import fsutil
from colorize_cli.constants import PHOTO_QUALITY
from colorize_cli.errors import ImageError, UsageError

_WRITE_FORMATS = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "webp": "WEBP",
    "tif": "TIFF",
    "tiff": "TIFF",
    "bmp": "BMP",
}
# The largest photos Pillow 13 writes (measured): JPEG and WebP sides (libjpeg's
# JPEG_MAX_DIMENSION, WebP's 14-bit sizes), and an RGB row of any format (its encoders size a
# row's buffer in a C int).
_MAX_SIDE = {"JPEG": 65500, "WEBP": 16383}
# An sRGB photo written as JPEG at this quality or above keeps full chroma (4:4:4).
FULL_CHROMA_QUALITY = 90
_MAX_ROW_PIXELS = 89_478_478


def output_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """PIL's format name for writing `path`: from `format` if given, else from the extension."""
    try:
        return _write_format(format or Path(path).suffix)
    except ImageError as exc:
        raise ImageError(exc.reason, path) from None


def check_writable(shape: tuple[int, ...], format: str) -> None:
    """ImageError unless a photo of `shape` (height, width, ...) can be encoded as `format`:
    JPEG and WebP cap each side, and Pillow's encoders cap a row's bytes (a 100,000,000 x 1
    strip is refused before any work rather than failing, or running out of memory, at the end)."""
    pil_format = _write_format(format)
    height, width = shape[:2]
    side = _MAX_SIDE.get(pil_format)
    if side is not None and max(height, width) > side:
        raise ImageError(
            f"{width}x{height} is too large to write as {pil_format}, which allows at most "
            f"{side:,} pixels a side: choose --format png or tiff"
        )
    if width > _MAX_ROW_PIXELS:
        raise ImageError(
            f"{width}x{height} is too wide to write: Pillow's encoders take rows of at most "
            f"{_MAX_ROW_PIXELS:,} pixels"
        )


def check_any_writable(shapes: Sequence[tuple[int, ...]], format: str) -> None:
    """ImageError (the first shape's) unless a photo of one of `shapes` can be encoded as
    `format`: before decoding, a photo whose EXIF orientation is not known yet is refused only if
    neither of its shapes can be written (`headers.Header.shapes`)."""
    errors = []
    for shape in shapes:
        try:
            check_writable(shape, format)
        except ImageError as exc:
            errors.append(exc)
        else:
            return
    raise errors[0]


def _write_format(name: str) -> str:
    key = name.lower().lstrip(".")
    if key not in _WRITE_FORMATS:
        shown = repr(name) if name else "(no extension)"
        choices = ", ".join(sorted(_WRITE_FORMATS))
        raise ImageError(f"cannot write image format {shown}: use one of {choices}")
    return _WRITE_FORMATS[key]


def encode_image(
    rgb: np.ndarray | Image.Image,
    format: str,
    quality: int = PHOTO_QUALITY,
    exif: bytes | None = None,
    srgb_profile: bool = False,
) -> bytes:
    """Encode an (H, W, 3) uint8 sRGB array or an 'RGB' PIL image as `format` ("png", "jpg",
    "JPEG", ...), or a 'YCbCr' PIL image (JPEG's own colour model) as JPEG.

    An sRGB JPEG keeps full chroma resolution (4:4:4) at quality >= 90: colour edges are what we
    make. A 'YCbCr' image is written 4:2:0 at any quality: its chroma is made at that resolution.
    `srgb_profile` embeds an sRGB ICC profile: the pixels are sRGB, so a photo that came with a
    profile (converted to sRGB when read) leaves tagged with the profile that now describes it.
    """
    buffer = io.BytesIO()
    _save(rgb, buffer, _write_format(format), quality, exif, srgb_profile)
    return buffer.getvalue()


def _save(
    rgb: np.ndarray | Image.Image,
    fp: BinaryIO | _Output,
    pil_format: str,
    quality: int,
    exif: bytes | None,
    srgb_profile: bool,
) -> None:
    """Encode into `fp` (encode_image's rules); an OSError carrying an errno is the file's."""
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be between 1 and 100, not {quality}")
    if isinstance(rgb, Image.Image):
        if rgb.mode != "RGB" and (rgb.mode, pil_format) != ("YCbCr", "JPEG"):
            raise ValueError(f"expected an 'RGB' image (or 'YCbCr' for JPEG), got mode {rgb.mode}")
        check_writable((rgb.height, rgb.width), pil_format)
        image = rgb
    elif isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3:
        if rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape}")
        check_writable(rgb.shape, pil_format)
        image = Image.fromarray(np.ascontiguousarray(rgb))
    else:
        shape = getattr(rgb, "shape", type(rgb).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {shape}")
    options: dict[str, object] = {}
    if pil_format == "JPEG":
        full_chroma = quality >= FULL_CHROMA_QUALITY and image.mode == "RGB"
        options = {"quality": quality, "subsampling": 0 if full_chroma else 2}
    elif pil_format == "WEBP":
        options = {"quality": quality}
    elif pil_format == "TIFF":
        options = {"compression": "tiff_deflate"}
    if exif and pil_format != "BMP":
        options["exif"] = exif
    if srgb_profile and pil_format != "BMP":
        options["icc_profile"] = _srgb_profile_bytes()
    try:
        image.save(fp, format=pil_format, **options)
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise ImageError(f"cannot encode {pil_format}: {exc}") from exc


class _Output:
    """The file Pillow encodes into, written through Python: its encoders would otherwise write
    to the descriptor themselves, where libtiff turns a full disk into "encoder error -2" (the
    errno lost) and nothing could stop a long write."""

    def __init__(self, fp: BinaryIO, stop: threading.Event | None) -> None:
        self._fp, self._stop = fp, stop

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")

    def write(self, data: bytes) -> int:
        if self._stop is not None and self._stop.is_set():
            raise ImageError("interrupted")
        return self._fp.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


@functools.cache
def _srgb_profile_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray | Image.Image,
    format: str | None = None,
    quality: int = PHOTO_QUALITY,
    exif: bytes | None = None,
    srgb_profile: bool = False,
    stop: threading.Event | None = None,
) -> None:
    """Encode and write a photo atomically: readers see the old file or the whole new one. It is
    encoded straight into the file (a large photo's encoded bytes are not held in memory); once
    `stop` is set, the write ends with ImageError "interrupted" and leaves nothing behind."""
    pil_format = output_format(path, format)
    try:
        with fsutil.atomic_path(path) as temporary, open(temporary, "wb") as fp:
            _save(rgb, _Output(fp, stop), pil_format, quality, exif, srgb_profile)
    except ImageError as exc:
        raise ImageError(exc.reason, path) from exc
    except OSError as exc:
        raise ImageError(
            f"cannot write: {fsutil.os_reason(exc, missing='no such directory')}", path
        ) from exc
