"""Tests for rebalance.py and the `rebalanced` recipe: histograms, weights, the weighted loss."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image

from colorize_cli.imaging.color import srgb_to_lab
from colorize_cli.nets.rebalance import (
    BINS,
    ab_histogram,
    bin_index,
    rebalancing_weights,
    tf_bin_index,
)
from colorize_cli.nets.recipes import get_recipe
from colorize_cli.tf_setup import import_tf

tf = import_tf()


def _photos(count: int = 4, size: int = 48) -> np.ndarray:
    rgb = [
        np.asarray(Image.open(path).convert("RGB").resize((size, size)))
        for path in dev_photos(count)
    ]
    return np.stack(rgb)


def test_histogram_counts_every_sampled_pixel_in_its_colour_bin() -> None:
    photos = _photos()
    histogram = ab_histogram(photos)
    assert histogram.shape == (BINS, BINS) and histogram.sum() == photos[..., 0].size
    flat = np.bincount(bin_index(srgb_to_lab(photos)[..., 1:]).ravel(), minlength=BINS * BINS)
    np.testing.assert_array_equal(histogram.ravel(), flat)
    # A pure gray photo puts every pixel in the bin that holds a* = b* = 0.
    gray = np.full((1, 8, 8, 3), 90, np.uint8)
    assert ab_histogram(gray).ravel()[bin_index(np.zeros(2))] == 64


def test_bin_index_is_the_same_in_numpy_and_tensorflow_and_clamps() -> None:
    ab = np.random.default_rng(0).uniform(-130, 130, (1000, 2)).astype(np.float32)
    np.testing.assert_array_equal(tf_bin_index(tf.constant(ab)).numpy(), bin_index(ab))
    assert bin_index(np.array([-500.0, 500.0])) == BINS - 1
    assert bin_index(np.array([500.0, -500.0])) == (BINS - 1) * BINS


def test_rare_colours_weigh_more_and_weights_average_one() -> None:
    histogram = ab_histogram(_photos(8))
    weights = rebalancing_weights(histogram, 0.5)
    grey = weights[bin_index(np.zeros(2))]
    occurring = histogram.ravel() > 0
    assert grey < 1.0 < weights.max()
    assert weights[histogram.argmax()] < 0.6 < 3.0 < weights[occurring].max()
    # Pulled halfway to uniform, no weight exceeds 1 / (0.5 / Q) after normalisation by ~1.
    assert weights.max() < 2.0 * occurring.sum()
    assert np.all(weights[~occurring] == weights[occurring].max())
    np.testing.assert_allclose(rebalancing_weights(histogram, 1.0), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="mix"):
        rebalancing_weights(histogram, 1.5)
    with pytest.raises(ValueError, match="histogram"):
        rebalancing_weights(np.zeros((BINS, BINS)), 0.5)


def test_rebalanced_loss_weights_each_pixel_by_its_true_colour() -> None:
    recipe = dataclasses.replace(get_recipe("rebalanced"), rebalance=0.5)  # strong weights
    logits = tf.zeros((1, 2, 2, 1))
    real = tf.constant([[[[0.0, 0.0], [60.0, 50.0]]]])  # a grey pixel and a saturated red one
    fake = tf.zeros_like(real)
    with pytest.raises(RuntimeError, match="color_weights"):
        recipe.generator_loss(real, fake, logits, 0)
    color_weights = recipe.color_weights(_photos(8))
    weights = np.asarray(color_weights)

    def l1(fake: tf.Tensor) -> float:
        return float(
            recipe.generator_loss(real, fake, logits, 0, color_weights=color_weights)[1]["l1"]
        )

    expected = weights[bin_index(np.array([60.0, 50.0]))] * (60.0 + 50.0) / 110.0 / 4.0
    assert l1(fake) == pytest.approx(expected, rel=1e-5)
    # The same miss on the grey pixel costs far less than on the red one.
    grey_miss = l1(real + [[[[20.0, 0.0], [0.0, 0.0]]]])
    red_miss = l1(real + [[[[0.0, 0.0], [20.0, 0.0]]]])
    assert red_miss > 5 * grey_miss
    assert get_recipe("l1-warmup").color_weights(_photos(1)) is None
