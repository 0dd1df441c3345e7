"""What a photo's header says, and the checks made on it before any pixel is decoded: the pixel
limit (a WebP's canvas first), PNG chunk CRCs, a JPEG's scan count, whether EXIF turns it."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from colorize_cli.errors import ImageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIENTATION = 0x0112  # the EXIF tag
# The orientations that swap width and height.
_TURNS = (5, 6, 7, 8)
# PNG chunks that can set the orientation (EXIF, XMP, a text "exif"); Pillow reads those that
# follow the pixel data only when it decodes them.
_PNG_METADATA = (b"eXIf", b"tEXt", b"zTXt", b"iTXt")
# A progressive JPEG has about 10 scans (libjpeg's default script); thousands are a bomb. Start of
# scan markers are counted over the whole file (embedded thumbnails included): an upper bound.
MAX_JPEG_SCANS = 100
_SOS = b"\xff\xda"
# Pillow's WebP decoder (libwebp's animation decoder, used for still files too) holds four copies
# of the canvas: a WebP may have a quarter of --max-pixels, so that it takes as much memory.
WEBP_COPIES = 4
WEBP_LIMIT = "the {} megapixel limit for WebP, a quarter of the limit for other formats"


@dataclass(frozen=True)
class Header:
    """What a photo's header says before any pixel is decoded."""

    format: str  # PIL's format name, e.g. "PNG"
    size: tuple[int, int]  # (width, height) as opened, as in ImageInfo
    # Whether the EXIF orientation swaps width and height; None when only decoding can tell (a
    # PNG with metadata after its pixels, a turned TIFF).
    turned: bool | None

    def shapes(self) -> list[tuple[int, int]]:
        """The (height, width) the decoded photo may have: one, or both while `turned` is None."""
        width, height = self.size
        turns = [False, True] if self.turned is None else [self.turned]
        return [(width, height) if turn else (height, width) for turn in turns]


# Called with a photo's Header before its pixels are decoded; an ImageError it raises is the
# photo's (see images.read_gray_with_info).
HeaderCheck = Callable[[Header], None]


def check_pixels(
    width: int, height: int, limit: int, name: str, which: str = "the {} megapixel limit"
) -> None:
    if width * height > limit:
        raise ImageError(
            f"image is {width}x{height} = {width * height / 1e6:g} megapixels, over "
            f"{which.format(f'{limit / 1e6:g}')} (--max-pixels)",
            name,
        )


def webp_canvas(head: bytes) -> tuple[int, int] | None:
    """The (width, height) a WebP file's header declares, as Pillow reads it; None if not WebP."""
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def turned(im: Image.Image, late_metadata: bool) -> bool | None:
    """Whether an opened, undecoded photo's EXIF orientation swaps its width and height; None
    when only decoding can tell: metadata that decoding reads (`late_metadata`) could still set
    it, or a TIFF is turned (Pillow turns a TIFF itself as it decodes it, and the size it gives
    before that is turned or not depending on the compression)."""
    if late_metadata:
        return None
    # Image's getexif, not PNG's, which decodes the photo to read metadata after its pixels (there
    # is none here). Every other format has read its metadata when opened; the EXIF read here is
    # the one decoding keeps (Pillow caches it).
    orientation = Image.Image.getexif(im).get(ORIENTATION, 1)
    swaps = isinstance(orientation, int) and orientation in _TURNS
    return None if swaps and im.format == "TIFF" else swaps


def check_jpeg_scans(fp: BinaryIO, name: str) -> None:
    """Refuse a JPEG of more than `MAX_JPEG_SCANS` scans before decoding it: each scan costs a
    pass over the whole photo, so a small file of thousands of scans takes minutes."""
    position = fp.tell()
    fp.seek(0)
    scans, tail = 0, b""
    for block in iter(lambda: fp.read(1 << 20), b""):
        # A marker may straddle two blocks: the last byte of one is read again with the next.
        scans += (tail + block).count(_SOS)
        tail = block[-1:]
        if scans > MAX_JPEG_SCANS:
            raise ImageError(
                f"JPEG of over {MAX_JPEG_SCANS} scans, refused before decoding (a decoding "
                "bomb: each scan costs a pass over the whole photo)",
                name,
            )
    fp.seek(position)


def check_png_chunks(fp: BinaryIO) -> bool:
    """Verify every chunk's CRC up to IEND, leaving the file position as it was; whether
    metadata that can set the orientation follows the pixel data."""
    position = fp.tell()
    fp.seek(len(PNG_SIGNATURE))
    pixels_seen = late_metadata = False
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise ValueError("PNG data ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        crc = zlib.crc32(kind)
        remaining = length
        while remaining:
            block = fp.read(min(remaining, 1 << 20))
            if not block:
                raise ValueError(f"PNG data ends inside its {kind.decode('latin-1')} chunk")
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
        stored = fp.read(4)
        if len(stored) < 4 or struct.unpack(">I", stored)[0] != crc:
            raise ValueError(f"bad CRC in PNG chunk {kind.decode('latin-1')}")
        if kind == b"IEND":
            break
        pixels_seen = pixels_seen or kind == b"IDAT"
        late_metadata = late_metadata or (pixels_seen and kind in _PNG_METADATA)
    fp.seek(position)
    return late_metadata
