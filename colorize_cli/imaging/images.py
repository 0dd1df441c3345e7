"""Reading photos safely: any file becomes an 8-bit sRGB array (or its gray) or a clear ImageError
(writing is writing.py's).

Decoding policy (one path, `_decode`, serves `read_image`, `read_image_bytes`,
`read_image_with_info` and `read_gray_with_info`, which keeps the gray only: Pillow's "L" of a
plain 8-bit photo up to 16 MP, each tile's gray for any other):

- The header is parsed first and the pixel count checked against `max_pixels` before any pixel is
  decoded; PIL's own process-wide bomb limit is switched off because ours replaces it. A caller's
  `check_header` (can the output be written?) runs then too, on the `Header` (headers.py's, with
  the other checks made before decoding).
- Truncated or corrupt data is an error, never a half-decoded photo (PNG chunk CRCs are verified,
  which PIL skips for pixel data).
- Multi-frame files (animated GIF/PNG/WebP, multi-page TIFF, MPO) give their first frame.
- EXIF orientation is applied. Alpha is composited over white.
- 16-bit integer greys are scaled by value * 255 / 65535, rounded (mode `I` is clipped to
  0..65535 first); 32-bit float greys (mode `F`) are taken as 0.0 = black .. 1.0 = white and
  clipped, NaN -> black. 16-bit RGB PNGs are reduced to 8 bits by PIL itself.
- An embedded ICC profile is converted to sRGB (perceptual intent) when it describes the pixels'
  colour space; an unreadable or mismatched profile is ignored (the pixels are taken as sRGB, as
  browsers do) and the reason is reported in `ImageInfo.icc_error`. CMYK without a profile uses
  PIL's naive conversion.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from colorize_cli import fsutil
from colorize_cli.constants import MAX_PIXELS
from colorize_cli.errors import ImageError
from colorize_cli.imaging import headers

# Our per-call `max_pixels` replaces PIL's global limit, which warns at 89 MP and refuses at 179 MP,
# below our 200 MP default.
Image.MAX_IMAGE_PIXELS = None

# Formats that are plain raster photos; others (EPS runs Ghostscript, ...) are refused.
_READ_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM", "AVIF")

# Exceptions PIL (and its codecs) raise on malformed input.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)
_DECODE_ERRORS += (TypeError, ZeroDivisionError, zlib.error)

# EXIF orientation -> the array operation ImageOps.exif_transpose's transposition does.
_ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
# Decoded pixels become sRGB in tiles of this many pixels at most.
_TILE_PIXELS = 1 << 20
# Below this, a plain 8-bit photo's gray is converted whole (a 2 MP JPEG reads in 13 ms, not 20);
# above it, tile by tile, so the memory beyond the decoded photo stays the gray and one tile.
_WHOLE_GRAY_PIXELS = 1 << 24
_NO_MEMORY = "not enough memory to decode this photo"
_ICC_SPACE_FOR_MODE = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}


# Applied to a decoded photo (a PIL image) before it becomes an array: see read_image_bytes.
Transform = Callable[[Image.Image], Any]


@dataclass(frozen=True)
class ImageInfo:
    """What `apply` needs to know about a photo besides its pixels."""

    format: str  # PIL's format name, e.g. "JPEG"
    mode: str  # PIL's mode as stored, e.g. "CMYK", "I;16", "P"
    size: tuple[int, int]  # (width, height) as stored, before EXIF rotation
    exif: bytes | None  # "Exif\0\0..." with orientation reset to 1; None if absent or unreadable
    icc_converted: bool
    icc_error: str | None = None  # why an embedded profile was ignored, if it was


def read_image(path: str | os.PathLike[str], max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read a photo as (H, W, 3) uint8 sRGB; `max_pixels=None` disables the size limit."""
    return read_image_with_info(path, max_pixels)[0]


def read_image_bytes(
    data: bytes,
    name: str = "-",
    max_pixels: int | None = MAX_PIXELS,
    transform: Transform | None = None,
) -> np.ndarray:
    """Decode an encoded photo held in memory (stdin); `name` is used in error messages.

    `transform` (e.g. a resize) gets the decoded sRGB 'RGB' PIL image and returns what becomes
    the array, so a large photo is never copied whole into numpy.
    """
    return read_image_with_info(data, max_pixels, name=name, transform=transform)[0]


def read_image_with_info(
    source: str | os.PathLike[str] | bytes | bytearray,
    max_pixels: int | None = MAX_PIXELS,
    name: str = "-",
    transform: Transform | None = None,
) -> tuple[np.ndarray, ImageInfo]:
    """Read a photo from a path or from encoded bytes (named `name` in errors) with its metadata."""
    return _read(source, max_pixels, name, transform, gray=False)


def read_gray_with_info(
    source: str | os.PathLike[str] | bytes | bytearray,
    max_pixels: int | None = MAX_PIXELS,
    name: str = "-",
    check_header: headers.HeaderCheck | None = None,
) -> tuple[np.ndarray, ImageInfo]:
    """A photo's (H, W) uint8 gray, equal to `color.grayscale(read_image(...))`, with its
    metadata; the photo is never held as a whole RGB array beside the decoded one (what `apply`
    needs: the output keeps the gray alone). `check_header` may refuse the photo from its header,
    before the work and memory of decoding it."""
    return _read(source, max_pixels, name, None, gray=True, check_header=check_header)


def _read(
    source: str | os.PathLike[str] | bytes | bytearray,
    max_pixels: int | None,
    name: str,
    transform: Transform | None,
    gray: bool,
    check_header: headers.HeaderCheck | None = None,
) -> tuple[np.ndarray, ImageInfo]:
    if isinstance(source, bytes | bytearray):
        stream = io.BytesIO(source)
        return _decode(stream, name, len(source), max_pixels, transform, gray, check_header)
    path = os.fspath(source)
    try:
        # Only a regular file: a named pipe would block forever, /dev/zero never ends.
        fp = fsutil.open_regular(path)
    except OSError as exc:
        raise ImageError(fsutil.os_reason(exc), path) from exc
    with fp:
        size = os.fstat(fp.fileno()).st_size
        return _decode(fp, path, size, max_pixels, transform, gray, check_header)


def _decode(
    fp: BinaryIO,
    name: str,
    size: int,
    max_pixels: int | None,
    transform: Transform | None,
    gray: bool,
    check_header: headers.HeaderCheck | None,
) -> tuple[np.ndarray, ImageInfo]:
    # Pillow warns, on stderr, about damaged metadata it skips (seen when fuzzing); the
    # outcome, a photo or an ImageError, is what the caller reports.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _decode_quietly(fp, name, size, max_pixels, transform, gray, check_header)


def _decode_quietly(
    fp: BinaryIO,
    name: str,
    size: int,
    max_pixels: int | None,
    transform: Transform | None,
    gray: bool,
    check_header: headers.HeaderCheck | None,
) -> tuple[np.ndarray, ImageInfo]:
    if size == 0:
        raise ImageError("file is empty", name)
    canvas = headers.webp_canvas(fp.read(30))
    fp.seek(0)
    if canvas is not None and max_pixels is not None:
        # Pillow's WebP decoder allocates its canvases when the file is opened.
        headers.check_pixels(*canvas, max_pixels // headers.WEBP_COPIES, name, headers.WEBP_LIMIT)
    try:
        im = Image.open(fp, formats=_readable_formats())
    except UnidentifiedImageError:
        raise ImageError(_unidentified_reason(fp), name) from None
    except _DECODE_ERRORS as exc:
        raise ImageError(_corrupt_reason(exc), name) from exc
    with im:
        width, height = im.size
        if max_pixels is not None:
            headers.check_pixels(width, height, max_pixels, name)
        fmt, mode = im.format or "?", im.mode
        try:
            late_metadata = False
            if fmt == "PNG":
                late_metadata = headers.check_png_chunks(fp)
            elif fmt == "JPEG":
                headers.check_jpeg_scans(fp, name)
            turned = headers.turned(im, late_metadata) if check_header is not None else None
        except _DECODE_ERRORS as exc:
            raise ImageError(_corrupt_reason(exc), name) from exc
        except MemoryError:
            raise ImageError(_NO_MEMORY, name) from None
        if check_header is not None:  # outside: the caller's errors are not the photo's damage
            try:
                check_header(headers.Header(fmt, (width, height), turned))
            except ImageError as exc:
                raise ImageError(exc.reason, exc.path or name) from None
        try:
            im.load()
            exif = _exif_bytes(im)
            orientation = im.getexif().get(headers.ORIENTATION, 1)
            pixels, icc_converted, icc_error = _srgb_pixels(im, im.info.get("icc_profile"), gray)
        except _DECODE_ERRORS as exc:
            raise ImageError(_corrupt_reason(exc), name) from exc
        except MemoryError:
            raise ImageError(_NO_MEMORY, name) from None
    # The decoded photo is freed (closed) by now: turning and resizing hold the array alone.
    try:
        pixels = _orient(pixels, orientation)
        if transform is not None:
            pixels = np.asarray(transform(Image.fromarray(pixels)), dtype=np.uint8)
    except _DECODE_ERRORS as exc:
        raise ImageError(_corrupt_reason(exc), name) from exc
    except MemoryError:
        raise ImageError(_NO_MEMORY, name) from None
    return pixels, ImageInfo(fmt, mode, (width, height), exif, icc_converted, icc_error)


def _srgb_pixels(
    im: Image.Image, icc: bytes | None, gray: bool = False
) -> tuple[np.ndarray, bool, str | None]:
    """The decoded photo as an (H, W, 3) uint8 sRGB array (`gray`: its (H, W) grayscale), whether
    a profile was applied, and why not. A plain 8-bit photo's gray up to `_WHOLE_GRAY_PIXELS` is
    Pillow's "L" of the whole (two gray-sized copies on the way); anything else is converted tile by
    tile, so what it takes beyond the decoded photo and the array is a tile's worth, whatever the
    mode (16-bit, float, alpha) or the shape (a 1-pixel-high strip)."""
    width, height = im.size
    plain = im.mode in ("L", "RGB") and "transparency" not in im.info and not icc
    if gray and plain and width * height <= _WHOLE_GRAY_PIXELS:
        # Pillow's "L" of the whole photo at once: what the tiles give, without cropping each.
        return np.array(im.convert("L") if im.mode == "RGB" else im), False, None
    pixels = np.empty((height, width) if gray else (height, width, 3), np.uint8)
    tile_width = min(width, _TILE_PIXELS)
    tile_height = max(1, _TILE_PIXELS // tile_width)
    converted, error = False, None
    for top in range(0, height, tile_height):
        bottom = min(top + tile_height, height)
        for left in range(0, width, tile_width):
            right = min(left + tile_width, width)
            tile = _flatten_alpha(_to_8bit(im.crop((left, top, right, bottom))))
            rgb, converted, tile_error = _to_srgb(tile, icc)
            if tile_error:
                icc, error = None, tile_error  # the same for every tile: tried once
            # Pillow's "L" is `color.grayscale` bit for bit (tests/test_color.py), 4x as fast.
            pixels[top:bottom, left:right] = np.asarray(rgb.convert("L") if gray else rgb)
    return pixels, converted, error


def _orient(pixels: np.ndarray, orientation: object) -> np.ndarray:
    """Apply an EXIF orientation (1-8, as ImageOps.exif_transpose does) to an (H, W[, 3]) array."""
    turn = _ORIENTATIONS.get(orientation) if isinstance(orientation, int) else None
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))


@functools.cache
def _readable_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in _READ_FORMATS if f in Image.OPEN)


def _unidentified_reason(fp: BinaryIO) -> str:
    fp.seek(0)
    if fp.read(len(headers.PNG_SIGNATURE)) == headers.PNG_SIGNATURE:
        try:
            headers.check_png_chunks(fp)
        except ValueError as exc:
            return _corrupt_reason(exc)
        return "corrupt PNG header"
    return "not an image file (or an unsupported format)"


def _corrupt_reason(exc: BaseException) -> str:
    # Decoders quote bytes of the file in their messages: a reason must stay one printable line.
    detail = _printable(str(exc).strip())
    return "truncated or corrupt image data" + (f" ({detail})" if detail else "")


def _printable(text: str) -> str:
    """`text` with control characters (newlines, escape sequences...) written as escapes."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _exif_bytes(im: Image.Image) -> bytes | None:
    raw = im.info.get("exif")
    if not raw:
        return None
    exif = Image.Exif()
    try:
        exif.load(raw)
    except _DECODE_ERRORS:
        return None  # unreadable EXIF is dropped, as browsers ignore it, not a reason to refuse
    if headers.ORIENTATION in exif:
        exif[headers.ORIENTATION] = 1
    return exif.tobytes()


def _to_8bit(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I"):
        values = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8))
    if im.mode == "F":
        values = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0)
        return Image.fromarray(np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8))
    return im


def _flatten_alpha(im: Image.Image) -> Image.Image:
    """Composite any alpha or transparent colour over white, keeping grey photos grey."""
    transparent = "transparency" in im.info
    if im.mode in ("LA", "La") or (im.mode == "L" and transparent):
        im = im.convert("LA")
    elif im.mode in ("RGBA", "RGBa", "PA") or (im.mode in ("P", "RGB") and transparent):
        im = im.convert("RGBA")
    else:
        return im
    values = np.asarray(im, dtype=np.uint32)
    colour, alpha = values[..., :-1], values[..., -1:]
    flat = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return Image.fromarray(
        np.squeeze(flat.astype(np.uint8), axis=-1) if im.mode == "LA" else flat.astype(np.uint8)
    )


def _to_srgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bool, str | None]:
    """Return the photo as an sRGB 'RGB' image, whether a profile was applied, and why not."""
    if im.mode == "1":
        im = im.convert("L")
    elif im.mode not in _ICC_SPACE_FOR_MODE:
        im = im.convert("RGB")
    if not icc:
        # convert() copies even an RGB photo; the caller copies the pixels out anyway.
        return (im if im.mode == "RGB" else im.convert("RGB")), False, None
    try:
        converted = ImageCms.applyTransform(im, _transform_to_srgb(icc, im.mode))
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:
        return im.convert("RGB"), False, f"ICC profile ignored: {exc}"
    return converted, True, None


@functools.lru_cache(maxsize=16)
def _transform_to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    # Cached because building a transform costs as much as applying it to a small photo, and a
    # dataset usually carries only a few distinct profiles.
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    space = profile.profile.xcolor_space.strip()
    if space != _ICC_SPACE_FOR_MODE[mode]:
        raise ValueError(f"it describes {space} pixels, not {mode}")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return ImageCms.buildTransform(
        profile, srgb, mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL
    )


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as one printable line: bytes that are not UTF-8 as \\xNN, control characters
    (a newline in a file name) escaped, everything else as it is."""
    return _printable(os.fsencode(path).decode("utf-8", "backslashreplace"))
