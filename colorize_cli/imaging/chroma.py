"""A photo's colour at full resolution from its own gray and the network's render-size a*b*.

The colour is worked out once, at the a*b*'s own size (`chroma_grid`: the L* of each cell's mean
gray, turned into Cb, Cr), and only then brought to the output, in the output's own colour model:

- `recombine` / `recombine_image`: sRGB, each pixel its gray plus the resampled chroma, scaled
  down only where its own level leaves no room (`color.recolor`), so `grayscale(output) == gray`
  exactly: what PNG, TIFF and BMP keep bit for bit (lossy WebP and JPEG to their rounding).
- `recombine_jpeg`: a JPEG's own Y'CbCr (the matrix of `grayscale`), Y the gray itself and Cb, Cr
  made at half resolution, the 4:2:0 planes the encoder keeps: no full-resolution RGB is built,
  and the encoder converts nothing.

`output_image` chooses between them for a format. The full-size work runs in tiles (`tiles`) on
band threads, so the memory beyond the output is a few tiles, whatever the photo's size or shape.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from colorize_cli.constants import PHOTO_QUALITY
from colorize_cli.imaging import color, writing

# The full-resolution work runs over bands of about this many pixels, one band per core at a time
# (numpy and Pillow release the GIL in their loops, so threads share the bands' work).
_BAND_PIXELS = 2**18
# The tiles of the chroma samples (`chroma_samples`), a quarter of a band.
SAMPLE_TILE_PIXELS = _BAND_PIXELS // 4
_THREADS = max(1, min(os.cpu_count() or 1, 8))
_BOX_GAP = 16.0
_NEAREST = Image.Resampling.NEAREST
# `output_image` takes the JPEG form for photos this many times their a*b* on each side.
JPEG_FORM_FACTOR = 4


def chroma_grid(gray: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A photo's colour on the grid of its a*b* (the render size): the Cb, Cr
    (`color.lab_chroma`) of each cell's mean gray level (`cell_levels`) with the cell's a*b*."""
    return color.lab_chroma(cell_levels(gray, ab.shape[:2]), ab)


def cell_levels(gray: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The mean gray level (uint8) of each cell of an (h, w) grid over a uint8 plane."""
    # The mean level rounded to a whole step: its L* then comes from the exact table. A
    # reduction over 16 first reduces by whole blocks, which bounds Pillow's filter tables
    # (they grow with the reduction: 1.76 GB to reduce a 199,000,000 x 1 strip in one pass);
    # below it (a reduction under 32: short sides up to about 5,000 px at render 160) the box is
    # exact, above it the mean of block means, to a level.
    return resized(gray, shape, Image.Resampling.BOX, reducing_gap=_BOX_GAP)


def resized(
    plane: np.ndarray,
    shape: tuple[int, int],
    method: Image.Resampling = Image.Resampling.BILINEAR,
    rows: slice | None = None,
    cols: slice | None = None,
    reducing_gap: float | None = None,
) -> np.ndarray:
    """A uint8 or float32 plane resized to `shape` (h, w) by PIL's `method` (half-pixel centres);
    with `rows` and `cols`, only that tile of the result (equal to the whole's, to float
    rounding); `reducing_gap` as Pillow's (the whole only)."""
    rows, cols = rows or slice(0, shape[0]), cols or slice(0, shape[1])
    y_scale, x_scale = plane.shape[0] / shape[0], plane.shape[1] / shape[1]
    box = (cols.start * x_scale, rows.start * y_scale, cols.stop * x_scale, rows.stop * y_scale)
    image = Image.fromarray(np.ascontiguousarray(plane))
    size = (cols.stop - cols.start, rows.stop - rows.start)
    return np.asarray(image.resize(size, method, box=box, reducing_gap=reducing_gap))


def tiles(height: int, width: int, pixels: int | None = None) -> list[tuple[slice, slice]]:
    """(rows, cols) tiles of about `pixels` pixels covering a (height, width) photo: bands of
    whole rows, and a row longer than `pixels` cut into pieces too, so a tile's size is bounded
    whatever the photo's shape (a 50,000,000 x 1 strip); `pixels` None: the recombination's."""
    pixels = pixels or _BAND_PIXELS
    if width <= pixels:
        band = max(1, pixels // width)
        return [
            (slice(top, min(top + band, height)), slice(0, width)) for top in range(0, height, band)
        ]
    return [
        (slice(row, row + 1), slice(left, min(left + pixels, width)))
        for row in range(height)
        for left in range(0, width, pixels)
    ]


def recombine(gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Full-resolution uint8 sRGB (H, W, 3) from a photo's uint8 gray (H, W) and a low-resolution
    a*b* (h, w, 2): `chroma_grid`'s Cb, Cr resampled bilinearly to full size and put on the
    photo's own gray (`color.recolor`), so `grayscale(output) == gray` exactly."""
    out = np.empty((*gray.shape, 3), np.uint8)

    def put(rows: slice, cols: slice, rgb: np.ndarray) -> None:
        out[rows, cols] = rgb

    _recombine_tiles(gray, ab, put)
    return out


def recombine_image(gray: np.ndarray, ab: np.ndarray) -> Image.Image:
    """`recombine` made straight into a PIL 'RGB' image, the form the photo encoders take: a
    large photo is never held twice (as an array and as Pillow's copy of it) while it is written."""
    image = Image.new("RGB", (gray.shape[1], gray.shape[0]))

    def put(rows: slice, cols: slice, rgb: np.ndarray) -> None:
        image.paste(Image.fromarray(rgb), (cols.start, rows.start))

    _recombine_tiles(gray, ab, put)
    return image


def recombine_jpeg(gray: np.ndarray, ab: np.ndarray) -> Image.Image:
    """`recombine` in a JPEG's own colour model: a PIL 'YCbCr' image whose Y is `gray` itself and
    whose Cb, Cr are made at half resolution (the 4:2:0 planes the encoder keeps; each value
    repeated over its 2x2 block, which the encoder's averaging gives back exactly).

    Each chroma sample is fitted (`color.fit_chroma`) to the darkest and the brightest pixel of
    its block, so every pixel of the block decodes inside sRGB with its own gray as its luma, to
    the encoder's rounding; `writing` encodes it 4:2:0 with no colour conversion. The colour agrees
    with `recombine`'s to the 4:2:0 averaging of each pixel's own share of the colour
    (`output_image` says when it is chosen).
    """
    height, width = gray.shape
    half = ((height + 1) // 2, (width + 1) // 2)
    image = Image.new("YCbCr", (width, height))
    cb, cr = chroma_grid(gray, ab)

    def fill(tile: tuple[slice, slice]) -> None:
        rows, cols = tile  # in the half-resolution planes
        top, left = 2 * rows.start, 2 * cols.start
        block = gray[top : min(2 * rows.stop, height), left : min(2 * cols.stop, width)]
        planes = [Image.fromarray(block)]
        for values in chroma_samples(cb, cr, half, tile, *_block_range(block)):
            box = (0, 0, block.shape[1] / 2, block.shape[0] / 2)
            planes.append(Image.fromarray(values).resize(planes[0].size, _NEAREST, box=box))
        image.paste(Image.merge("YCbCr", planes), (left, top))

    _run(tiles(*half, SAMPLE_TILE_PIXELS), fill)
    return image


def chroma_samples(
    cb: np.ndarray,
    cr: np.ndarray,
    shape: tuple[int, int],
    tile: tuple[slice, slice],
    darkest: np.ndarray,
    brightest: np.ndarray | None = None,
    matrix: np.ndarray | None = None,
) -> list[np.ndarray]:
    """One tile (rows, cols) of (h, w) = `shape` chroma planes as uint8 samples around 128: the
    render-size Cb, Cr (`chroma_grid`'s) resampled bilinearly to it, each sample fitted
    (`color.fit_chroma`) to the gray levels it covers, from `darkest` to `brightest` (the tile's
    shape; one mean level without `brightest`), then, with a 2x2 `matrix`, turned into another
    Y'CbCr's (a video's matrix and range: `color.ycbcr_matrix_chroma`). A tile of
    SAMPLE_TILE_PIXELS keeps the passes over it in the cache: a 1080p frame's planes in tiles
    took 11.2-11.9 ms against 18.1 in one piece (docs/video.md)."""
    rows, cols = tile
    chroma = (resized(x, shape, rows=rows, cols=cols) for x in (cb, cr))
    planes = color.fit_chroma(darkest, *chroma, brightest)
    if matrix is not None:  # float32, as the planes: a float64 product is twice the bytes
        matrix = np.asarray(matrix, np.float32)
        planes = tuple(planes[0] * from_cb + planes[1] * from_cr for from_cb, from_cr in matrix)
    samples = []
    for plane in planes:
        plane += 128
        samples.append(np.clip(np.rint(plane, out=plane), 0, 255).astype(np.uint8))
    return samples


def output_image(
    gray: np.ndarray, ab: np.ndarray, pil_format: str, quality: int = PHOTO_QUALITY
) -> Image.Image:
    """The finished photo in the form `writing` encodes best for `pil_format` (PIL's name) at
    `quality`: a JPEG's own Y'CbCr (`recombine_jpeg`) when the JPEG is 4:2:0 anyway (below
    `writing.FULL_CHROMA_QUALITY`) or the photo is at least `JPEG_FORM_FACTOR` times its a*b* on
    each side, else sRGB (`recombine_image`, written 4:4:4).

    The network's colour is no finer than the a*b*, but `recolor` gives each pixel its own share
    of it (less chroma where its level leaves no room), which 4:2:0 averages over 2x2 blocks. On
    the validation photos enlarged to 1.4 MP that moves the colour by 0.47 CIEDE2000 on average
    against 4:4:4 (docs/benchmarks.md); on photos barely larger than their render (the 481x321 dev
    photos at render 160), by more. Large photos are where the time goes, and it is not seen."""
    height, width = ab.shape[:2]
    large = gray.shape[0] >= JPEG_FORM_FACTOR * height and gray.shape[1] >= JPEG_FORM_FACTOR * width
    if pil_format == "JPEG" and (large or quality < writing.FULL_CHROMA_QUALITY):
        return recombine_jpeg(gray, ab)
    return recombine_image(gray, ab)


def _recombine_tiles(
    gray: np.ndarray, ab: np.ndarray, put: Callable[[slice, slice, np.ndarray], None]
) -> None:
    """`recombine`'s tiles, each handed to `put(rows, cols, rgb)` from the band threads: the
    grid's chroma resampled to the tile, on the tile's gray."""
    cb, cr = chroma_grid(gray, ab)

    def fill(tile: tuple[slice, slice]) -> None:
        rows, cols = tile
        chroma = (resized(x, gray.shape, rows=rows, cols=cols) for x in (cb, cr))
        put(rows, cols, color.recolor(gray[rows, cols], *chroma))

    _run(tiles(*gray.shape), fill)


def _block_range(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The darkest and the brightest level of each 2x2 block of a uint8 plane (the last row or
    column alone where a side is odd, as the encoder repeats it)."""
    height, width = block.shape
    even = block
    if height % 2 or width % 2:
        even = np.pad(block, ((0, height % 2), (0, width % 2)), mode="edge")
    corners = (even[0::2, 0::2], even[0::2, 1::2], even[1::2, 0::2], even[1::2, 1::2])
    darkest = np.minimum(np.minimum(corners[0], corners[1]), np.minimum(corners[2], corners[3]))
    brightest = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    return darkest, brightest


def _run(parts: list[tuple[slice, slice]], fill: Callable[[tuple[slice, slice]], None]) -> None:
    if len(parts) == 1 or _THREADS == 1:
        for tile in parts:
            fill(tile)
    else:
        with ThreadPoolExecutor(_THREADS) as pool:
            list(pool.map(fill, parts))  # list() re-raises a tile's exception here
