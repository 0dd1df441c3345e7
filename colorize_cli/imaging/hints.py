"""User colour hints: the hints file (points with a colour and a patch size), a reference photo's
palette, and the two extra network inputs both become (the same for training and inference).

    {"points": [{"x": 312, "y": 140, "color": "#d23c2a"}, {"x": 40, "y": 400, "color": "#3a5f2b",
                "size": 9}]}

The network's hint inputs, at the render size the network sees:
- `hints` (h, w, 3): a*/AB_SCALE and b*/AB_SCALE where a point's patch lies, else 0, and the mask
  (1 on a patch, else 0). Only the hint's chroma is used: the photo keeps its own lightness.
- `palette` (PALETTE_SIZE,): the reference's a*b* histogram over PALETTE_BINS**2 cells of
  PALETTE_STEP Lab units (Zhang et al. 2017's global hint), summing to 1, then a "given" flag.
docs/hints.md is the user's page. numpy only: no TensorFlow here (training's sampler is in
training/hint_sampling.py and uses these constants).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The a*b* range the generator covers (nets.models.AB_SCALE is the same number).
AB_RANGE = 110.0
HINT_CHANNELS = 3
PALETTE_STEP = 10.0
PALETTE_BINS = int(2 * AB_RANGE / PALETTE_STEP)  # 22 cells a side
PALETTE_SIZE = PALETTE_BINS**2 + 1  # the histogram, then the "given" flag
# A point's default patch side in photo pixels, at a photo's render size at least 3 px (the
# training patches were 1-9 px at the render size).
DEFAULT_POINT_SIZE_FRACTION = 0.02
MIN_RENDER_PATCH = 3
MAX_POINTS = 256
MAX_HINT_FILE_BYTES = 1 << 20
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


class HintError(ValueError):
    """A hints file that cannot be used; the message is one line without the file's name."""


@dataclass(frozen=True)
class Point:
    """One hint: the patch centred on (x, y) in displayed-photo pixels, of side `size` (None: the
    default for the photo), coloured `color` (sRGB 0-255)."""

    x: int
    y: int
    color: tuple[int, int, int]
    size: int | None = None

    def to_json(self) -> dict:
        out = {"x": self.x, "y": self.y, "color": "#{:02x}{:02x}{:02x}".format(*self.color)}
        if self.size is not None:
            out["size"] = self.size
        return out


@dataclass(frozen=True)
class Guide:
    """What the user says about one photo's colours: hint `points` (in that photo's pixels) and
    a reference's a*b* (`reference_ab`, Lab units, any shape (..., 2)), either or both."""

    points: tuple[Point, ...] = ()
    reference_ab: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return not self.points and self.reference_ab is None


def reference_ab(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    """A reference photo's a*b* (Lab units) at about `side` px on its short side (the palette
    is a histogram: the resolution only needs to be enough to count colours)."""
    from PIL import Image

    from colorize_cli.imaging.color import srgb_to_lab

    height, width = rgb.shape[:2]
    scale = min(1.0, side / min(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    return srgb_to_lab(rgb)[..., 1:]


def default_point_size(height: int, width: int) -> int:
    """The patch side used when a point gives none: 2% of the photo's short side, at least 1."""
    return max(1, round(DEFAULT_POINT_SIZE_FRACTION * min(height, width)))


def parse_hints(text: str | bytes) -> list[Point]:
    """The points of a hints file's text; HintError (one line) for any fault."""
    if len(text) > MAX_HINT_FILE_BYTES:
        raise HintError(f"hints file is larger than {MAX_HINT_FILE_BYTES} bytes")
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HintError(f"not JSON: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise HintError("not JSON: nested too deeply") from None
    if not isinstance(document, dict) or not isinstance(document.get("points"), list):
        raise HintError('missing field "points": expected {"points": [{"x", "y", "color"}, ...]}')
    raw = document["points"]
    if len(raw) > MAX_POINTS:
        raise HintError(f"too many points: {len(raw)}, at most {MAX_POINTS}")
    return [_point(item, index) for index, item in enumerate(raw)]


def _point(item: object, index: int) -> Point:
    where = f"point {index + 1}"
    if not isinstance(item, dict):
        raise HintError(f"{where}: expected an object with x, y and color")
    for field in ("x", "y", "color"):
        if field not in item:
            raise HintError(f'{where}: missing field "{field}"')
    for field in ("x", "y", "size"):
        value = item.get(field)
        if field in item and (isinstance(value, bool) or not isinstance(value, int)):
            raise HintError(f'{where}: "{field}" must be an integer, got {json.dumps(value)}')
    colour = item["color"]
    if not isinstance(colour, str) or not _COLOR.fullmatch(colour):
        raise HintError(f'{where}: "color" must be "#rrggbb", got {json.dumps(colour)[:40]}')
    size = item.get("size")
    if size is not None and not 1 <= size <= 4096:
        raise HintError(f'{where}: "size" must be between 1 and 4096 pixels, got {size}')
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return Point(item["x"], item["y"], rgb, size)  # type: ignore[arg-type]


def read_hints(path: str | Path) -> list[Point]:
    """Parse a hints file; OSError for an unreadable one (a pipe, a device or a file over
    MAX_HINT_FILE_BYTES is refused unread), HintError for a bad one."""
    from colorize_cli.fsutil import read_regular_file

    return parse_hints(read_regular_file(path, MAX_HINT_FILE_BYTES))


def check_inside(points: list[Point], height: int, width: int) -> None:
    """HintError for the first point outside a (height, width) photo."""
    for index, point in enumerate(points):
        if not (0 <= point.x < width and 0 <= point.y < height):
            raise HintError(
                f"point {index + 1} ({point.x}, {point.y}) is outside the photo "
                f"({width}x{height}: x 0-{width - 1}, y 0-{height - 1})"
            )


def hint_map(
    points: list[Point],
    photo_shape: tuple[int, int],
    lightness: np.ndarray,
) -> np.ndarray:
    """The network's `hints` input (h, w, 3) for points on a `photo_shape` photo, given the
    render's L* (h, w): each point's colour spread from its patch (`spread`), premultiplied by
    its weight, and the weight itself. All zeros without points."""
    rows, cols = lightness.shape
    out = np.zeros((rows, cols, HINT_CHANNELS), np.float32)
    if not points:
        return out
    check_inside(points, *photo_shape)
    boxes, chroma = _render_patches(points, photo_shape, (rows, cols))
    hinted, weight = spread(boxes, chroma, lightness)
    out[..., :2] = hinted * (weight[..., None] / AB_RANGE)
    out[..., 2] = weight
    return out


def _render_patches(
    points: list[Point], photo_shape: tuple[int, int], render_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each point's patch at the render size as (top, left, height, width) rows, and its a*b*.

    A patch is the point's size scaled to the render, at least MIN_RENDER_PATCH render pixels
    (or its photo size, if smaller)."""
    from colorize_cli.imaging.color import srgb_to_lab

    height, width = photo_shape
    rows, cols = render_shape
    scale_y, scale_x = rows / height, cols / width
    default = default_point_size(height, width)
    boxes = []
    for point in points:
        size = point.size or default
        side_y = min(rows, max(min(size, MIN_RENDER_PATCH), round(size * scale_y), 1))
        side_x = min(cols, max(min(size, MIN_RENDER_PATCH), round(size * scale_x), 1))
        centre_y, centre_x = (point.y + 0.5) * scale_y, (point.x + 0.5) * scale_x
        top = min(max(0, math.floor(centre_y - side_y / 2)), rows - side_y)
        left = min(max(0, math.floor(centre_x - side_x / 2)), cols - side_x)
        boxes.append((top, left, side_y, side_x))
    colours = np.array([p.color for p in points], np.uint8)[None]
    return np.array(boxes, np.int64), srgb_to_lab(colours)[0, :, 1:]


# How far a hint's colour spreads, for the network's input and for the hand-made blend alike: a
# Gaussian of distance from its patch (sd SPREAD_DISTANCE of the short side) times a Gaussian of
# the L* difference from the patch's (sd SPREAD_LIGHTNESS units). Chosen on the dev validation
# split as the best hand-made blend (docs/hints.md).
SPREAD_DISTANCE = 0.32
SPREAD_LIGHTNESS = 16.0


def spread(
    boxes: np.ndarray, chroma: np.ndarray, lightness: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(a*b* (h, w, 2), weight (h, w) in [0, 1]) of hints given as patches (K, 4: top, left,
    height, width) of colours `chroma` (K, 2) on an image of L* `lightness` (h, w).

    Each hint weighs 1 on its patch and falls off outside it with distance and with L*
    difference from the patch's mean L*; the weight of all hints is 1 - prod(1 - w_k), and the
    colour their weighted mean. training/hint_sampling.py computes the same in TensorFlow.
    """
    rows, cols = lightness.shape
    sigma = SPREAD_DISTANCE * min(rows, cols)
    ys = np.arange(rows, dtype=np.float32)[:, None]
    xs = np.arange(cols, dtype=np.float32)[None, :]
    keep = np.ones((rows, cols), np.float32)
    weighted = np.zeros((rows, cols, 2), np.float32)
    total = np.zeros((rows, cols), np.float32)
    for (top, left, height, width), ab in zip(boxes, chroma, strict=True):
        dy = np.maximum(np.maximum(top - ys, ys - (top + height - 1)), 0)
        dx = np.maximum(np.maximum(left - xs, xs - (left + width - 1)), 0)
        level = lightness[top : top + height, left : left + width].mean()
        weight = np.exp(
            -(dy**2 + dx**2) / (2 * sigma**2) - (lightness - level) ** 2 / (2 * SPREAD_LIGHTNESS**2)
        )
        weight[top : top + height, left : left + width] = 1.0
        keep *= 1 - weight
        weighted += weight[..., None] * ab
        total += weight
    return weighted / np.maximum(total, 1e-12)[..., None], (1 - keep)


def palette(ab: np.ndarray | None) -> np.ndarray:
    """The network's `palette` input from a reference's a*b* (..., 2) in Lab units; None: no
    reference (all zero, flag 0)."""
    out = np.zeros(PALETTE_SIZE, np.float32)
    if ab is None:
        return out
    cells = np.clip(((ab.reshape(-1, 2) + AB_RANGE) / PALETTE_STEP).astype(np.int64), 0, None)
    cells = np.minimum(cells, PALETTE_BINS - 1)
    counts = np.bincount(cells[:, 0] * PALETTE_BINS + cells[:, 1], minlength=PALETTE_BINS**2)
    out[:-1] = counts / max(1, counts.sum())
    out[-1] = 1.0
    return out


def palette_colors(values: np.ndarray, count: int = 5) -> list[tuple[int, int, int]]:
    """The `count` most frequent cells of a palette as sRGB at L* 60 (for showing a reference)."""
    from colorize_cli.imaging.color import lab_to_srgb

    histogram = values[:-1]
    top = [int(i) for i in np.argsort(histogram)[::-1][:count] if histogram[i] > 0]
    lab = np.array(
        [
            [
                60.0,
                (i // PALETTE_BINS + 0.5) * PALETTE_STEP - AB_RANGE,
                (i % PALETTE_BINS + 0.5) * PALETTE_STEP - AB_RANGE,
            ]
            for i in top
        ],
        np.float32,
    ).reshape(1, -1, 3)
    rgb = np.round(lab_to_srgb(lab) * 255).astype(np.uint8)[0]
    return [tuple(int(c) for c in colour) for colour in rgb]


def oracle_points(truth: np.ndarray, count: int, rng: np.random.Generator) -> tuple[Point, ...]:
    """`count` hints sampled from a photo's own colours (uint8 (H, W, 3)), as the training sampler
    places them: around the centre (Gaussian, sd a quarter of each side), each the mean sRGB of
    the truth over its default-size patch. `colorize eval --oracle-hints` scores with these."""
    height, width = truth.shape[:2]
    size = default_point_size(height, width)
    points = []
    for _ in range(count):
        y = int(np.clip(round(rng.normal(height / 2, height / 4)), 0, height - 1))
        x = int(np.clip(round(rng.normal(width / 2, width / 4)), 0, width - 1))
        top, left = max(0, y - size // 2), max(0, x - size // 2)
        patch = truth[top : top + size, left : left + size].reshape(-1, 3)
        mean = np.round(patch.astype(np.float64).mean(axis=0)).astype(int)
        points.append(Point(x, y, (int(mean[0]), int(mean[1]), int(mean[2]))))
    return tuple(points)


def blend_points(
    ab: np.ndarray, lightness: np.ndarray, points: list[Point], photo_shape: tuple[int, int]
) -> np.ndarray:
    """The hand-made alternative to a hint model, for comparison (docs/hints.md): automatic a*b*
    (h, w, 2) with `points` (in a `photo_shape` photo's pixels) blended in by `spread`, given the
    render's L* (h, w); no network involved."""
    if not points:
        return ab
    boxes, chroma = _render_patches(points, photo_shape, ab.shape[:2])
    hinted, weight = spread(boxes, chroma, lightness)
    return ((1 - weight[..., None]) * ab + weight[..., None] * hinted).astype(np.float32)


def palette_statistics(reference_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation of a reference's a*b* (..., 2), per channel."""
    pixels = reference_ab.reshape(-1, 2).astype(np.float64)
    return pixels.mean(axis=0), pixels.std(axis=0)


# How far `transfer_palette` may stretch or shrink the output's spread of a*b*.
TRANSFER_SCALE = (0.5, 3.0)


def transfer_palette(
    ab: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray],
    on_hints: np.ndarray | None = None,
) -> np.ndarray:
    """a*b* (h, w, 2) moved to a reference's colour statistics (Reinhard et al. 2001, in a*b*):
    each channel's mean and spread become the reference's (the spread's ratio kept within
    TRANSFER_SCALE). Where hints weigh (`on_hints`, (h, w) in [0, 1]) the hints' colour stays."""
    mean, spread_ = ab.reshape(-1, 2).mean(axis=0), ab.reshape(-1, 2).std(axis=0)
    target_mean, target_spread = reference
    scale = np.clip(target_spread / np.maximum(spread_, 1.0), *TRANSFER_SCALE)
    moved = (ab - mean) * scale + target_mean
    if on_hints is None:
        return moved.astype(np.float32)
    keep = on_hints[..., None]
    return (keep * ab + (1 - keep) * moved).astype(np.float32)
