"""Hints sampled from the truth for training, as Zhang et al. 2017 did (add_color_patches_rand_gt),
in the same form as a user's (imaging/hints.py), so training and inference feed the network alike.

Per photo, stateless (a pure function of the photo's random key, so a resumed run sees the same):
- with probability FREE_SHARE no points at all (twice Zhang's 12.5%), so automatic colour keeps
  learning where the base learns; otherwise
  1 + a geometric number of points (stop with p = 1/8 after each), at most MAX_POINTS;
- each point a square of side 1-9 px, placed by a Gaussian around the centre (sd a quarter of the
  free range), carrying the mean of the truth's a*b* over that square, spread beyond it as a
  user's hint is (imaging.hints.spread);
- with probability PALETTE_SHARE the global hint: the a*b* histogram of another crop of the photo
  (so the network learns a palette, not a pixel map), else none.
"""

from __future__ import annotations

from colorize_cli.imaging.hints import (
    AB_RANGE,
    PALETTE_BINS,
    PALETTE_STEP,
    SPREAD_DISTANCE,
    SPREAD_LIGHTNESS,
)
from colorize_cli.tf_setup import import_tf

tf = import_tf()

FREE_SHARE = 0.25
STOP_PROBABILITY = 1 / 8
MAX_POINTS = 32
MAX_PATCH = 9
PALETTE_SHARE = 0.3
# The other crop the palette is taken from, as a share of the photo's side.
PALETTE_CROP = 0.7


def _keys(key: tf.Tensor, count: int) -> list[tf.Tensor]:
    return list(tf.unstack(tf.random.experimental.stateless_split(key, count)))


def point_count(key: tf.Tensor) -> tf.Tensor:
    """How many points one photo gets: 0 with FREE_SHARE, else 1 + geometric, capped."""
    free_key, count_key = _keys(key, 2)
    u = tf.random.stateless_uniform([], free_key, minval=1e-7, maxval=1.0)
    geometric = tf.floor(tf.math.log(u) / tf.math.log(1.0 - STOP_PROBABILITY))
    count = tf.minimum(1 + tf.cast(geometric, tf.int32), MAX_POINTS)
    free = tf.random.stateless_uniform([], count_key) < FREE_SHARE
    return tf.where(free, 0, count)


def sample_hints(ab: tf.Tensor, lightness: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """The `hints` input (h, w, 3) for one photo's true a*b* (h, w, 2) in Lab units and its L*
    (h, w): points sampled as above, spread as `imaging.hints.spread` spreads a user's."""
    height, width = tf.shape(ab)[0], tf.shape(ab)[1]
    count_key, size_key, y_key, x_key = _keys(key, 4)
    count = point_count(count_key)
    sizes = tf.random.stateless_uniform([MAX_POINTS], size_key, 1, MAX_PATCH + 1, tf.int32)
    sizes = tf.minimum(sizes, tf.minimum(height, width))

    def place(side: tf.Tensor, length: tf.Tensor, place_key: tf.Tensor) -> tf.Tensor:
        free = tf.cast(length - side + 1, tf.float32)
        where = tf.random.stateless_normal([MAX_POINTS], place_key) * free / 4 + free / 2
        return tf.clip_by_value(tf.cast(tf.round(where), tf.int32), 0, length - side)

    top, left = place(sizes, height, y_key), place(sizes, width, x_key)
    return spread_boxes(ab, lightness, top, left, sizes, count)


def spread_boxes(
    ab: tf.Tensor,
    lightness: tf.Tensor,
    top: tf.Tensor,
    left: tf.Tensor,
    sizes: tf.Tensor,
    count: tf.Tensor,
) -> tf.Tensor:
    """The hint map of the first `count` square patches (top, left, side: (K,) int32) carrying
    the truth's mean a*b* over each, spread as `imaging.hints.spread` does."""
    height, width = tf.shape(ab)[0], tf.shape(ab)[1]
    points = tf.shape(top)[0]
    rows = tf.cast(tf.range(height), tf.float32)[None]
    cols = tf.cast(tf.range(width), tf.float32)[None]
    first_row, first_col = tf.cast(top, tf.float32)[:, None], tf.cast(left, tf.float32)[:, None]
    side = tf.cast(sizes, tf.float32)[:, None]
    dy = tf.maximum(tf.maximum(first_row - rows, rows - (first_row + side - 1)), 0.0)  # (K, h)
    dx = tf.maximum(tf.maximum(first_col - cols, cols - (first_col + side - 1)), 0.0)  # (K, w)
    inside = tf.cast(dy[:, :, None] == 0, tf.float32) * tf.cast(dx[:, None, :] == 0, tf.float32)
    area = tf.reduce_sum(inside, axis=[1, 2])
    means = tf.einsum("khw,hwc->kc", inside, ab) / tf.maximum(area, 1.0)[:, None]
    levels = tf.einsum("khw,hw->k", inside, lightness) / tf.maximum(area, 1.0)
    sigma = SPREAD_DISTANCE * tf.cast(tf.minimum(height, width), tf.float32)
    distance = (dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / (2 * sigma**2)
    difference = (lightness[None] - levels[:, None, None]) ** 2 / (2 * SPREAD_LIGHTNESS**2)
    weight = tf.maximum(tf.exp(-(distance + difference)), inside)  # 1 on the patch
    weight *= tf.cast(tf.range(points) < count, tf.float32)[:, None, None]
    total = tf.reduce_sum(weight, axis=0)
    hinted = tf.einsum("khw,kc->hwc", weight, means) / tf.maximum(total, 1e-12)[..., None]
    given = 1.0 - tf.reduce_prod(1.0 - weight, axis=0)
    return tf.concat([hinted * (given[..., None] / AB_RANGE), given[..., None]], axis=-1)


def sample_palette(ab: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """The `palette` input for one photo: the histogram of another crop's a*b* (h, w, 2) with the
    flag set, given with PALETTE_SHARE; else zeros."""
    given_key, crop_key = _keys(key, 2)
    side = tf.cast(
        tf.cast(tf.minimum(tf.shape(ab)[0], tf.shape(ab)[1]), tf.float32) * PALETTE_CROP, tf.int32
    )
    crop = tf.image.stateless_random_crop(ab, tf.stack([side, side, 2]), seed=crop_key)
    cells = tf.cast((tf.reshape(crop, [-1, 2]) + AB_RANGE) / PALETTE_STEP, tf.int32)
    cells = tf.clip_by_value(cells, 0, PALETTE_BINS - 1)
    counts = tf.math.bincount(
        cells[:, 0] * PALETTE_BINS + cells[:, 1],
        minlength=PALETTE_BINS**2,
        maxlength=PALETTE_BINS**2,
        dtype=tf.float32,
    )
    given = tf.cast(tf.random.stateless_uniform([], given_key) < PALETTE_SHARE, tf.float32)
    histogram = counts / tf.reduce_sum(counts) * given
    return tf.concat([histogram, given[None]], axis=0)
