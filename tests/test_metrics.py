"""Metrics against references: tf.image (PSNR, SSIM), Sharma et al. (CIEDE2000), hand-computed
colourfulness and AuC, on real dev photos."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image, ImageFilter

from colorize_cli.imaging import color, metrics

# Sharma, Wu and Dalal (2005), Table 1: L1, a1, b1, L2, a2, b2, delta E00 (4 decimals).
SHARMA_PAIRS = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


@pytest.fixture(scope="module")
def photo_pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo and a blurred, shifted-colour version of it (a plausible 'prediction')."""
    image = Image.open(dev_photos(1)[0]).convert("RGB")
    truth = np.asarray(image)
    degraded = np.asarray(image.filter(ImageFilter.GaussianBlur(2))).astype(np.int16)
    degraded[..., 2] += 12
    return truth, np.clip(degraded, 0, 255).astype(np.uint8)


def test_ciede2000_matches_all_34_published_pairs() -> None:
    table = np.array(SHARMA_PAIRS)
    got = metrics.ciede2000(table[:, 0:3], table[:, 3:6])
    np.testing.assert_allclose(got, table[:, 6], atol=5e-5)
    np.testing.assert_allclose(metrics.ciede2000(table[:, 3:6], table[:, 0:3]), got, atol=1e-12)


def test_mean_ciede2000_is_zero_for_the_same_photo_and_chunks_consistently(
    photo_pair: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    truth, degraded = photo_pair
    lab1, lab2 = color.srgb_to_lab(truth), color.srgb_to_lab(degraded)
    assert metrics.mean_ciede2000(lab1, lab1) == 0.0
    whole = metrics.mean_ciede2000(lab1, lab2)
    assert whole == pytest.approx(metrics.ciede2000(lab1, lab2).mean(), rel=1e-9)
    monkeypatch.setattr(metrics, "_CHUNK_PIXELS", 1000)
    assert metrics.mean_ciede2000(lab1, lab2) == pytest.approx(whole, rel=1e-9)


def test_psnr_and_ssim_match_tf_image(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    tf = pytest.importorskip("tensorflow")
    truth, degraded = photo_pair
    assert metrics.psnr(truth, degraded) == pytest.approx(
        float(tf.image.psnr(truth, degraded, max_val=255)), abs=1e-3
    )
    assert metrics.ssim(truth, degraded) == pytest.approx(
        float(tf.image.ssim(truth, degraded, max_val=255)), abs=1e-4
    )
    gray_truth, gray_degraded = color.grayscale(truth), color.grayscale(degraded)
    assert metrics.ssim(gray_truth, gray_degraded) == pytest.approx(
        float(tf.image.ssim(gray_truth[..., None], gray_degraded[..., None], max_val=255)),
        abs=1e-4,
    )


def test_ssim_in_row_bands_equals_one_pass(
    photo_pair: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    truth, degraded = photo_pair
    whole = metrics.ssim(truth, degraded)
    monkeypatch.setattr(metrics, "_CHUNK_PIXELS", 5000)
    assert metrics.ssim(truth, degraded) == pytest.approx(whole, rel=1e-12)


def test_identical_photos_score_perfectly(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    truth, _ = photo_pair
    scores = metrics.score_image(truth, truth)
    assert scores.psnr == math.inf
    assert scores.ssim == pytest.approx(1.0)
    assert scores.ciede2000 == 0.0
    assert scores.auc == 1.0
    assert scores.colourfulness == scores.colourfulness_truth > 0


def test_ssim_of_photos_smaller_than_the_window_uses_their_side() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (5, 40, 3), dtype=np.uint8)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, 255 - a) < 0.5


def test_colourfulness_of_a_hand_computed_case() -> None:
    # Pixels red and blue: rg = (255, 0), yb = (127.5, -255); means 127.5, -63.75; standard
    # deviations 127.5 and 191.25.
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    expected = math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, 63.75)
    assert color.colorfulness(rgb) == pytest.approx(expected, rel=1e-12)
    assert color.colorfulness(np.full((4, 4, 3), 77, np.uint8)) == 0.0
    assert metrics.colorfulness_ratio([10.0, 20.0], [30.0, 30.0]) == pytest.approx(0.5)


def test_auc_is_the_area_under_the_ab_error_cdf() -> None:
    truth = np.zeros((1, 4, 3), np.float32)
    output = np.zeros((1, 4, 3), np.float32)
    output[0, :, 1] = [0, 45, 90, 200]  # a* errors; b* errors 0 except the second pixel
    output[0, 1, 2] = 60  # its error is hypot(45, 60) = 75
    # CDF areas over [0, 150] / 150 per pixel: 1, 0.5, 0.4, 0.
    assert metrics.ab_auc(truth, output) == pytest.approx((1 + 0.5 + 0.4 + 0) / 4)


def test_auc_agrees_with_a_sweep_over_integer_thresholds(
    photo_pair: tuple[np.ndarray, np.ndarray],
) -> None:
    truth, _ = photo_pair
    lab = color.srgb_to_lab(truth)
    gray = color.srgb_to_lab(np.repeat(color.grayscale(truth)[..., None], 3, axis=-1))
    d = np.hypot(lab[..., 1] - gray[..., 1], lab[..., 2] - gray[..., 2]).ravel()
    cdf = [(d <= t).mean() for t in range(151)]
    sweep = np.trapezoid(cdf, dx=1.0) / 150
    assert metrics.ab_auc(lab, gray) == pytest.approx(sweep, abs=1 / 150)
    assert 0.5 < metrics.ab_auc(lab, gray) < 1.0


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3, 3), np.uint8))
