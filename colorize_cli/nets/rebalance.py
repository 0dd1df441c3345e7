"""Class rebalancing of a*b* (Zhang et al. 2016): per-pixel loss weights that favour rare colours.

An L1 loss alone learns the (conditional) median colour, which for most objects is a grey-brown:
the classic desaturation. Weighting each pixel by how rare its true colour is in the training
photos makes a saturated red cost as much to miss as the common near-greys. The weights depend on
the training photos only, so they are recomputed (identically) when a run resumes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from colorize_cli.imaging.color import srgb_to_lab
from colorize_cli.nets.models import AB_SCALE
from colorize_cli.tf_setup import import_tf

BIN_SIZE = 10.0  # a*b* units per histogram bin, as in Zhang et al.
BINS = int(2 * AB_SCALE / BIN_SIZE)  # per axis: a*, b* in [-AB_SCALE, AB_SCALE]
SMOOTHING = 5.0  # a*b* units: sigma of the Gaussian that smooths the empirical distribution
PRIOR_PIXELS = 4_000_000  # the prior is estimated on an even subsample of at most this many pixels


def ab_histogram(rgb: np.ndarray) -> np.ndarray:
    """Counts (BINS, BINS) of the a*b* of `rgb` (N, H, W, 3) uint8, on an even pixel subsample."""
    pixels = np.asarray(rgb).reshape(-1, 3)
    stride = max(1, -(-len(pixels) // PRIOR_PIXELS))
    ab = srgb_to_lab(pixels[::stride])[:, 1:]
    index = bin_index(ab)
    return np.bincount(index, minlength=BINS * BINS).reshape(BINS, BINS).astype(np.float64)


def bin_index(ab: np.ndarray) -> np.ndarray:
    """Flat histogram bin (a-row major) of each a*b* pair (..., 2); out-of-range values clamp."""
    cells = np.clip(np.floor((ab + AB_SCALE) / BIN_SIZE), 0, BINS - 1).astype(np.int64)
    return cells[..., 0] * BINS + cells[..., 1]


def tf_bin_index(ab: Any) -> Any:
    """The TensorFlow twin of `bin_index` (int32), for use inside a compiled step."""
    tf = import_tf()

    cells = tf.cast(tf.clip_by_value(tf.floor((ab + AB_SCALE) / BIN_SIZE), 0, BINS - 1), tf.int32)
    return cells[..., 0] * BINS + cells[..., 1]


def rebalancing_weights(histogram: np.ndarray, mix: float) -> np.ndarray:
    """Weight per bin, flat (BINS * BINS,) float32: 1 / ((1 - mix) p + mix / Q), mean 1 under p.

    `p` is the smoothed colour distribution, `Q` the number of colours that occur at all and `mix`
    (0..1) how far the weights are pulled towards uniform: 1 gives every pixel weight 1, 0 fully
    inverts the distribution. Bins that never occur get the weight of the rarest colour.
    """
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must be in [0, 1], got {mix}")
    counts = np.asarray(histogram, np.float64)
    if counts.shape != (BINS, BINS) or counts.sum() <= 0:
        raise ValueError("histogram must be a non-empty (BINS, BINS) array of counts")
    probability = _smooth(counts / counts.sum())
    probability /= probability.sum()
    occurring = counts > 0
    uniform = 1.0 / occurring.sum()
    weights = 1.0 / ((1.0 - mix) * probability + mix * uniform)
    weights /= (probability * weights).sum()
    weights[~occurring] = weights[occurring].max()
    return weights.reshape(-1).astype(np.float32)


def _smooth(probability: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur (sigma SMOOTHING a*b* units) with zero padding."""
    sigma = SMOOTHING / BIN_SIZE
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    rows = np.apply_along_axis(np.convolve, 0, probability, taps, mode="same")
    return np.apply_along_axis(np.convolve, 1, rows, taps, mode="same")
