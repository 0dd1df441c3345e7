"""The scores `colorize eval` reports: PSNR, SSIM, CIEDE2000, colourfulness and the ab-error AuC.

Pure numpy functions of `uint8` sRGB photos (or Lab arrays); docs/metrics.md gives each definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from colorize_cli.imaging import color

# Zhang, Isola and Efros (2016) sweep the ab-error threshold over 0..150 Lab units.
AUC_MAX_THRESHOLD = 150.0
# SSIM and CIEDE2000 run in float64 over about this many values at a time, so a large photo
# needs little memory.
_CHUNK_PIXELS = 1 << 20


def psnr(truth: np.ndarray, output: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (max 255), as `tf.image.psnr`.

    Identical photos give `inf`.
    """
    _same_shape(truth, output)
    mse = np.mean(np.square(truth.astype(np.float64) - output.astype(np.float64)))
    return math.inf if mse == 0 else float(20 * math.log10(255.0) - 10 * math.log10(mse))


def _gaussian_taps(size: int, sigma: float) -> np.ndarray:
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-0.5 * np.square(coords / sigma))
    return taps / taps.sum()


def _valid_blur(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 'VALID' Gaussian blur of (H, W, C): `tf.image.ssim`'s 2-D window factorises."""
    size = len(taps)
    rows = sum(w * x[k : x.shape[0] - size + 1 + k] for k, w in enumerate(taps))
    return sum(w * rows[:, k : x.shape[1] - size + 1 + k] for k, w in enumerate(taps))


def ssim(
    truth: np.ndarray,
    output: np.ndarray,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Structural similarity as `tf.image.ssim(truth, output, max_val=255)` defines it.

    An 11x11 Gaussian window (sigma 1.5) slid without padding; SSIM averaged over positions, then
    over channels. Photos with a side shorter than the window use a window of that side instead
    (TF refuses them). Computed over row bands, so a large photo needs little memory.
    """
    _same_shape(truth, output)
    truth, output = _channels_last(truth), _channels_last(output)
    height, width, channels = truth.shape
    size = min(filter_size, height, width)
    taps = _gaussian_taps(size, filter_sigma)
    constants = ((k1 * 255.0) ** 2, (k2 * 255.0) ** 2)
    valid_rows = height - size + 1
    band = max(1, _CHUNK_PIXELS // (width * channels))
    total = np.zeros(channels)
    for top in range(0, valid_rows, band):
        # A band of valid positions reads `size - 1` rows more: the bands' sums add up exactly.
        rows = slice(top, min(top + band, valid_rows) + size - 1)
        ssim_map = _ssim_map(truth[rows], output[rows], taps, *constants)
        total += ssim_map.sum(axis=(0, 1))
    return float(np.mean(total / (valid_rows * (width - size + 1))))


def _ssim_map(
    truth: np.ndarray, output: np.ndarray, taps: np.ndarray, c1: float, c2: float
) -> np.ndarray:
    x, y = truth.astype(np.float64), output.astype(np.float64)
    mean_x, mean_y = _valid_blur(x, taps), _valid_blur(y, taps)
    mean_xy = mean_x * mean_y
    mean_sq = np.square(mean_x) + np.square(mean_y)
    luminance = (2 * mean_xy + c1) / (mean_sq + c1)
    contrast_structure = (2 * (_valid_blur(x * y, taps) - mean_xy) + c2) / (
        _valid_blur(np.square(x) + np.square(y), taps) - mean_sq + c2
    )
    return luminance * contrast_structure


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) of two (..., 3) Lab arrays, elementwise.

    Follows Sharma, Wu and Dalal (2005), including their conventions for achromatic colours and for
    the mean hue across the 0/360 degree cut.
    """
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    l1, a1, b1 = np.moveaxis(lab1, -1, 0)
    l2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    chromatic = c1p * c2p != 0

    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chromatic, dh, 0.0)
    d_hue = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))

    h_sum = h1p + h2p
    h_mean = np.where(
        np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, h_sum + 360, h_sum - 360) / 2
    )
    h_mean = np.where(chromatic, h_mean, h_sum)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    l_mean50 = np.square((l1 + l2) / 2 - 50)
    cp_mean = (c1p + c2p) / 2
    cp_mean7 = cp_mean**7
    rotation = (
        -2
        * np.sqrt(cp_mean7 / (cp_mean7 + 25.0**7))
        * np.sin(np.radians(60 * np.exp(-np.square((h_mean - 275) / 25))))
    )
    d_l = (l2 - l1) / (1 + 0.015 * l_mean50 / np.sqrt(20 + l_mean50))
    d_c = (c2p - c1p) / (1 + 0.045 * cp_mean)
    d_h = d_hue / (1 + 0.015 * cp_mean * t)
    return np.sqrt(np.square(d_l) + np.square(d_c) + np.square(d_h) + rotation * d_c * d_h)


def mean_ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """Mean CIEDE2000 over all pixels of two same-shape Lab photos, in bounded memory."""
    flat1, flat2 = lab1.reshape(-1, 3), lab2.reshape(-1, 3)
    total = sum(
        float(ciede2000(flat1[i : i + _CHUNK_PIXELS], flat2[i : i + _CHUNK_PIXELS]).sum())
        for i in range(0, len(flat1), _CHUNK_PIXELS)
    )
    return total / len(flat1)


def colorfulness_ratio(outputs: Sequence[float], truths: Sequence[float]) -> float:
    """Mean colourfulness of the outputs over that of the truths (1 = as colourful as truth)."""
    truth_mean = float(np.mean(truths))
    return float(np.mean(outputs)) / truth_mean if truth_mean > 0 else math.nan


def ab_auc(
    lab_truth: np.ndarray, lab_output: np.ndarray, max_threshold: float = AUC_MAX_THRESHOLD
) -> float:
    """Zhang et al.'s (2016) AuC: area under the CDF of per-pixel ab error, thresholds 0..150.

    With d the Euclidean distance of (a*, b*) per pixel, the CDF at t is the share of pixels with
    d <= t; its area over [0, T], divided by T, is exactly mean(max(0, 1 - d / T)), which is what
    this computes (no discretisation of the thresholds). 1 = every pixel's colour exact.
    """
    d = np.hypot(
        lab_truth[..., 1].astype(np.float64) - lab_output[..., 1],
        lab_truth[..., 2].astype(np.float64) - lab_output[..., 2],
    )
    return float(np.mean(np.clip(1 - d / max_threshold, 0, None)))


@dataclass(frozen=True)
class ImageScores:
    """Every per-photo score of one output against its truth."""

    psnr: float
    ssim: float
    ciede2000: float
    auc: float
    # Field names are the metric names users see (CSV columns, JSON keys), so the spelling of
    # the published metric stays; code identifiers say "color".
    colourfulness: float
    colourfulness_truth: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score_image(truth: np.ndarray, output: np.ndarray) -> ImageScores:
    """Every score of uint8 sRGB `output` against uint8 sRGB `truth` (each made Lab once)."""
    _same_shape(truth, output)
    lab_truth, lab_output = color.srgb_to_lab(truth), color.srgb_to_lab(output)
    return ImageScores(
        psnr=psnr(truth, output),
        ssim=ssim(truth, output),
        ciede2000=mean_ciede2000(lab_truth, lab_output),
        auc=ab_auc(lab_truth, lab_output),
        colourfulness=color.colorfulness(output),
        colourfulness_truth=color.colorfulness(truth),
    )


def _channels_last(image: np.ndarray) -> np.ndarray:
    return image[..., np.newaxis] if image.ndim == 2 else image


def _same_shape(truth: np.ndarray, output: np.ndarray) -> None:
    if truth.shape != output.shape:
        raise ValueError(f"shapes differ: truth {truth.shape}, output {output.shape}")
