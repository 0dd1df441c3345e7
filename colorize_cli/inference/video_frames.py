"""A video frame's pixels, as colorize reads and writes them: the layout the output keeps (size,
4:2:0 or 4:4:4, range, colour matrix, rotation), a frame's luma and 0..255 gray, and the output
frame made from the input's own luma and chroma planes at their own resolution (video.py runs the
frames through the network and the encoder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from colorize_cli.imaging import color
from colorize_cli.imaging.chroma import SAMPLE_TILE_PIXELS, cell_levels, chroma_samples, tiles

if TYPE_CHECKING:
    import av

# 8-bit planar layouts whose first plane is the luma, read as they are (anything else is
# converted by swscale: 10-bit, RGB, palette...).
_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p"}
    | {"yuv411p", "yuv410p", "nv12", "nv21"}
)


# Limited-range luma (16..235) -> the 0..255 gray the network was trained on (a PIL point table:
# three times numpy's lookup on a 1080p plane).
_LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


_LIMITED_TO_FULL_TABLE = _LIMITED_TO_FULL.tolist()


# Colour matrices (AVColorSpace) an output is tagged with, and their luma weights (Kr, Kb):
# BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M, BT.2020 (non-constant luminance).
_LUMA_WEIGHTS = {
    1: (0.2126, 0.0722),
    4: (0.30, 0.11),
    5: (0.299, 0.114),
    6: (0.299, 0.114),
    7: (0.212, 0.087),
    9: (0.2627, 0.0593),
}


_BT709, _SMPTE170M = 1, 6


# AVColorRange: limited (16..235) and full (0..255).
MPEG_RANGE = 1
JPEG_RANGE = 2


@dataclass(frozen=True)
class Layout:
    """How the output frames are made, fixed by the first frame."""

    width: int
    height: int
    pix_fmt: str
    full_range: bool
    colorspace: int
    quarter_turns: int  # the display rotation, counter-clockwise, in multiples of 90 degrees


def layout_of(first: Any) -> Layout:
    width, height = first.width, first.height
    even = width % 2 == 0 and height % 2 == 0
    colorspace = first.colorspace
    if colorspace not in _LUMA_WEIGHTS:  # unspecified: what players assume for the size
        colorspace = _BT709 if min(width, height) >= 720 else _SMPTE170M
    rotation = first.rotation or 0
    return Layout(
        width=width,
        height=height,
        pix_fmt="yuv420p" if even else "yuv444p",  # x264 takes 4:2:0 at even sizes only
        full_range=first.color_range == JPEG_RANGE or first.format.name.startswith("yuvj"),
        colorspace=colorspace,
        quarter_turns=(rotation // 90) % 4 if rotation % 90 == 0 else 0,
    )


@dataclass(frozen=True)
class Planes:
    """A decoded frame's planes, as stored: its 8-bit luma, its 0..255 gray, and the mean gray
    each sample of the output's chroma planes covers (the gray itself in 4:4:4)."""

    luma: np.ndarray
    gray: np.ndarray
    level: np.ndarray

    @property
    def nbytes(self) -> int:
        """The bytes the planes hold, each array once (the gray is the luma itself in full range,
        the level the gray itself in 4:4:4)."""
        arrays = {id(plane): plane for plane in (self.luma, self.gray, self.level)}
        return sum(plane.nbytes for plane in arrays.values())


def planes(frame: Any, layout: Layout) -> Planes:
    """A frame's `Planes` (`video.py` makes them on its decoding thread)."""
    luma, gray = _luma_and_gray(frame, layout)
    # 4:2:0 sits on even sides, so a 2x2 reduction (4x as fast as a box resize; the two round
    # a level apart at most).
    level = gray if layout.pix_fmt != "yuv420p" else np.asarray(Image.fromarray(gray).reduce(2))
    return Planes(luma, gray, level)


def render_grid(level: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The mean gray of each cell of the network's (h, w) grid, from a frame's `Planes.level`:
    what the stabiliser compares frames by, and the L* the chroma is made at (as
    `chroma.chroma_grid` does from a photo's gray)."""
    return cell_levels(level, shape)


def _luma_and_gray(frame: Any, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """A frame's 8-bit luma plane as stored, and its 0..255 gray (as stored too)."""
    if (frame.width, frame.height) != (layout.width, layout.height):  # the size changed mid-way
        frame = frame.reformat(width=layout.width, height=layout.height)
    source = frame
    if frame.format.name not in _LUMA_FIRST:
        source = frame.reformat(
            format="yuv444p",
            src_color_range=frame.color_range,
            dst_color_range=JPEG_RANGE if layout.full_range else MPEG_RANGE,
        )
    luma = _plane(source, 0, frame.width, frame.height).copy()
    if layout.full_range:
        return luma, luma
    return luma, np.asarray(Image.fromarray(luma).point(_LIMITED_TO_FULL_TABLE))


def _plane(frame: Any, index: int, width: int, height: int) -> np.ndarray:
    plane = frame.planes[index]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width]


def stored(upright: np.ndarray, layout: Layout) -> np.ndarray:
    """An upright plane (the network's a*b*) turned back the way the frames are stored."""
    return np.ascontiguousarray(np.rot90(upright, -layout.quarter_turns))


def output_frame(planes: Planes, grid: np.ndarray, ab: np.ndarray, layout: Layout) -> av.VideoFrame:
    """The colorized frame in the output's YUV layout: the input's own luma plane, and chroma
    planes made at their own resolution (half of each side in 4:2:0): the render-size a*b* turned
    into Cb, Cr once at the L* of `grid` (`render_grid`), resampled to the planes and fitted
    around the mean gray each sample covers, in the output's own matrix; no full-resolution
    RGB."""
    import av

    frame = av.VideoFrame(layout.width, layout.height, layout.pix_fmt)
    frame.colorspace = layout.colorspace
    frame.color_range = JPEG_RANGE if layout.full_range else MPEG_RANGE
    _plane(frame, 0, layout.width, layout.height)[:] = planes.luma
    height, width = _chroma_shape(layout)
    cb, cr = color.lab_chroma(grid, ab)
    steps = 255 if layout.full_range else 224  # the chroma's excursion in code values
    matrix = color.ycbcr_matrix_chroma(*_LUMA_WEIGHTS[layout.colorspace]) * (steps / 255)
    u, v = (_plane(frame, index, width, height) for index in (1, 2))
    for rows, cols in tiles(height, width, SAMPLE_TILE_PIXELS):
        level = planes.level[rows, cols]
        samples = chroma_samples(cb, cr, (height, width), (rows, cols), level, matrix=matrix)
        u[rows, cols], v[rows, cols] = samples
    return frame


def _chroma_shape(layout: Layout) -> tuple[int, int]:
    if layout.pix_fmt == "yuv420p":
        return layout.height // 2, layout.width // 2
    return layout.height, layout.width
