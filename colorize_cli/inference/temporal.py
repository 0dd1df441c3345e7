"""Colour that holds still from frame to frame: shot cuts found in the gray frames, the frames of
a shot the network runs on (`network_groups`), a stabiliser that smooths the predicted a*b* over
time within a shot, and the flicker it is measured by.

Pure functions of numpy frames (no video file, no model): `video.py` calls a `Stabilizer` on each
frame's render-size gray and a*b* between `Colorizer.chroma_many` and the chroma planes; tests and
`bench/video.py` call the same functions on synthetic shots.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from PIL import Image

T = TypeVar("T")
G = TypeVar("G")

# Weight of the new prediction where nothing moved: the colour is an exponential moving average
# over about 1 / STRENGTH frames (docs/video.md, "Stabilisation", chose it).
STRENGTH = 0.25
# A gray change (0..255, after a small blur) this large counts as motion: there the new prediction
# is taken as it is, so moving edges do not drag the previous frame's colour along.
MOTION_LEVELS = 24.0
# A cut: the frames' 32-bin histograms differ by this much (total variation, 0..1), or their
# 16x16 thumbnails by this many gray levels on average.
CUT_HISTOGRAM = 0.2
CUT_THUMBNAIL = 16.0
_THUMB = 16
_BLUR = 5


def _box_blur(x: np.ndarray, size: int = _BLUR) -> np.ndarray:
    """Mean over a size x size window (edges replicated), by cumulative sums."""
    pad = size // 2
    padded = np.pad(x, pad, mode="edge").astype(np.float32)
    total = padded.cumsum(0).cumsum(1)
    total = np.pad(total, ((1, 0), (1, 0)))
    window = (
        total[size:, size:] - total[:-size, size:] - total[size:, :-size] + total[:-size, :-size]
    )
    return window / (size * size)


def _thumbnail(gray: np.ndarray) -> np.ndarray:
    """A 16x16 area-averaged gray (float), enough to tell two shots apart."""
    image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8))
    return np.asarray(image.resize((_THUMB, _THUMB), Image.Resampling.BOX), np.float32)


def _histogram(gray: np.ndarray) -> np.ndarray:
    counts = np.bincount((gray.astype(np.uint8) >> 3).ravel(), minlength=32)
    return counts / max(1, gray.size)


def is_cut(previous: np.ndarray, gray: np.ndarray) -> bool:
    """Whether uint8 gray frame `gray` starts a new shot after `previous` (any sizes)."""
    if previous.shape != gray.shape:
        return True
    histogram = 0.5 * float(np.abs(_histogram(previous) - _histogram(gray)).sum())
    thumbnail = float(np.abs(_thumbnail(previous) - _thumbnail(gray)).mean())
    return histogram > CUT_HISTOGRAM or thumbnail > CUT_THUMBNAIL


def glance_at(upright: np.ndarray) -> np.ndarray:
    """A frame small enough to tell shots apart cheaply (`is_cut`): a box reduction to a short
    side of about 64."""
    factor = max(1, min(upright.shape) // 64)
    image = Image.fromarray(np.ascontiguousarray(upright))
    return np.asarray(image.reduce(factor)) if factor > 1 else upright


def network_groups(
    frames: Iterable[tuple[T, np.ndarray, G]], every: int
) -> Iterator[tuple[tuple[T, list[T]], np.ndarray, G]]:
    """(tag, upright gray, guide) frames -> the network's items (`Colorizer.chroma_many`'s):
    every `every`-th frame of a shot, and the first after each cut, tagged with the tags of the
    frames that follow it up to the next one (they keep its colour). Reads `every` frames ahead
    at most."""
    group: tuple[T, list[T], np.ndarray, G] | None = None
    previous: np.ndarray | None = None
    for tag, upright, guide in frames:
        glance = glance_at(upright)
        cut = previous is None or is_cut(previous, glance)
        previous = glance
        if group is not None and not cut and len(group[1]) < every - 1:
            group[1].append(tag)
            continue
        if group is not None:
            yield (group[0], group[1]), group[2], group[3]
        group = (tag, [], upright, guide)
    if group is not None:
        yield (group[0], group[1]), group[2], group[3]


def find_cuts(grays: Iterable[np.ndarray]) -> list[bool]:
    """Per frame: does it start a new shot? The first frame does."""
    cuts, previous = [], None
    for gray in grays:
        cuts.append(previous is None or is_cut(previous, gray))
        previous = gray
    return cuts


@dataclass
class Stabilizer:
    """Smooths a*b* over time within a shot, frame by frame (one per video; it keeps state).

    Each call takes a frame's uint8 gray and its predicted float32 a*b* at the same (h, w) and
    returns the a*b* to use: the previous result blended with the new prediction, with weight
    `strength` on the new one where the previous frame's blurred gray matches this one's, and all
    of it where they differ by `motion_levels` or more (linear in between), so moving things do
    not drag old colour along. A cut restarts the average. `motion_levels=inf` is a plain
    exponential moving average.
    """

    strength: float = STRENGTH
    motion_levels: float = MOTION_LEVELS
    cuts: int = 0
    _gray: np.ndarray | None = field(default=None, repr=False)
    _ab: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.strength <= 1 or not self.motion_levels > 0:
            raise ValueError("strength must be in (0, 1] and motion_levels positive")

    def __call__(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        if gray.shape != ab.shape[:2]:
            raise ValueError(f"gray {gray.shape} and a*b* {ab.shape} differ in size")
        if self._gray is None or self._ab is None or is_cut(self._gray, gray):
            self.cuts += self._gray is not None
            smoothed = ab.astype(np.float32)
        else:
            previous_ab, previous_gray = self.previous(gray)
            moved = np.abs(_box_blur(gray) - _box_blur(previous_gray)) / self.motion_levels
            weight = self.strength + (1 - self.strength) * np.minimum(moved, 1.0)
            smoothed = previous_ab + weight[..., None] * (ab - previous_ab)
        self._gray, self._ab = gray, smoothed
        return smoothed

    def previous(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The previous frame's result and gray as they line up with `gray`: where they were.
        (bench/video.py moves them along optical flow instead, and measures the difference.)"""
        assert self._ab is not None and self._gray is not None
        return self._ab, self._gray


def stabilize(
    grays: Sequence[np.ndarray], abs_: Sequence[np.ndarray], **settings: float
) -> list[np.ndarray]:
    """A whole shot list at once: the `Stabilizer` (with `settings`) run over the frames."""
    stabilizer = Stabilizer(**settings)
    return [stabilizer(gray, ab) for gray, ab in zip(grays, abs_, strict=True)]


def flicker(abs_: Sequence[np.ndarray], cuts: Sequence[bool]) -> float:
    """Mean per-pixel |delta a*b*| (Euclidean, Lab units) between consecutive frames of a shot.

    `cuts[i]` says frame i starts a shot; pairs across a cut are left out. Score a colorization
    against its truth's own flicker: motion changes a*b* legitimately.
    """
    if len(abs_) != len(cuts):
        raise ValueError("one cut flag per frame")
    changes = [
        float(np.sqrt(np.square(current - previous).sum(-1)).mean())
        for previous, current, cut in zip(abs_, abs_[1:], cuts[1:], strict=False)
        if not cut
    ]
    return float(np.mean(changes)) if changes else 0.0
