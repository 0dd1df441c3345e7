"""Seed files the fuzz targets mutate: small valid photos in every format the reader takes, and
small valid shards. Made by code, so the fuzzer needs no data set."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from colorize_cli.data import shard_writer
from colorize_cli.imaging import color


def _picture(width: int = 16, height: int = 12) -> Image.Image:
    """A colour gradient with an edge: every channel and both axes vary."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 2 * 200], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def _encode(im: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    # A copy: Pillow's JPEG writer leaves its settings on the image, which break a later TIFF.
    im.copy().save(buffer, format=format, **options)
    return buffer.getvalue()


def photo_seeds() -> list[bytes]:
    """One small file per format and mode the reader handles specially."""
    rgb = _picture()
    grey = rgb.convert("L")
    frames = [rgb, rgb.rotate(90), rgb.rotate(180)]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the reader applies it
    grey16 = Image.fromarray(np.asarray(grey, dtype=np.uint16) * 257)
    floats = Image.fromarray(np.asarray(grey, dtype=np.float32) / 255)
    return [
        _encode(rgb, "PNG"),
        _encode(rgb.quantize(16), "PNG", transparency=0),
        _encode(rgb.convert("LA"), "PNG"),
        _encode(grey16, "PNG"),
        _encode(rgb, "JPEG", quality=90, exif=exif.tobytes()),
        _encode(rgb, "JPEG", quality=75, progressive=True),
        _encode(grey, "JPEG"),
        _encode(rgb.convert("CMYK"), "JPEG"),
        _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        _encode(rgb, "TIFF", save_all=True, append_images=[grey]),
        _encode(rgb, "TIFF", compression="tiff_deflate"),
        _encode(floats, "TIFF"),
        _encode(rgb, "BMP"),
        _encode(rgb, "WEBP", quality=80),
        _encode(rgb, "PPM"),
    ]


def shard_seeds(size: int = 8) -> list[bytes]:
    """Valid shards of two images, uncompressed and gzip-compressed, as bytes."""
    rows = [np.asarray(_picture(size, size)), np.asarray(_picture(size, size).rotate(90))]
    seeds = []
    with tempfile.TemporaryDirectory() as folder:
        for compression in ("none", "gzip-1"):
            path = Path(folder) / f"seed-{compression}.h5"
            with shard_writer.ShardWriter(path, size, "train", compression) as writer:
                for i, rgb in enumerate(rows):
                    writer.append(color.grayscale(rgb), rgb, f"photo{i}.jpg", f"{i:064x}")
            seeds.append(path.read_bytes())
    return seeds
