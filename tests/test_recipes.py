"""Tests for recipes.py: losses on hand-made tensors, the schedule, optimizers, a real GAN step."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from colorize_cli.errors import UsageError
from colorize_cli.imaging.color import gray_to_lightness, grayscale, srgb_to_lab
from colorize_cli.nets.models import AB_SCALE, build_discriminator, build_generator, model_config
from colorize_cli.nets.recipes import DEFAULT_RECIPE, RECIPES, get_recipe

DEV_DIR = Path(__file__).resolve().parents[2] / "shared/data/dev"
PIX2PIX = get_recipe("pix2pix")
PAPER = get_recipe("paper")


def _bce(label: float, logit: float) -> float:
    """Binary cross-entropy of one logit, written out from its definition."""
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(label * math.log(p) + (1.0 - label) * math.log(1.0 - p))


def _logits(value: float, shape: tuple[int, ...] = (2, 4, 4, 1)) -> tf.Tensor:
    return tf.fill(shape, value)


def test_default_recipe_is_nogan_and_unknown_names_list_the_valid_ones() -> None:
    # The measured winner on the dev split (docs/model-card.md), with the lite0 preset.
    assert DEFAULT_RECIPE == "nogan" and get_recipe(DEFAULT_RECIPE) is RECIPES["nogan"]
    with pytest.raises(UsageError, match="pix2pix, l1-warmup, rebalanced, nogan, hints, paper"):
        get_recipe("cyclegan")


def test_recipes_describe_what_they_predict() -> None:
    assert (PIX2PIX.output, PIX2PIX.conditional_discriminator) == ("ab", True)
    assert (PAPER.output, PAPER.conditional_discriminator) == ("rgb", False)
    batch = {"ab": tf.zeros((1, 8, 8, 2)), "rgb": tf.ones((1, 8, 8, 3))}
    assert PIX2PIX.target(batch).shape[-1] == 2 and PAPER.target(batch).shape[-1] == 3


def test_pix2pix_l1_is_weighted_100_on_a_unit_scale() -> None:
    real = tf.zeros((2, 8, 8, 2))
    fake = tf.fill((2, 8, 8, 2), 0.1 * AB_SCALE)  # 0.1 on pix2pix's [-1, 1] scale
    total, parts = PIX2PIX.generator_loss(real, fake, _logits(0.0), step=0)
    assert set(parts) == {"l1", "adv"}
    assert float(parts["l1"]) == pytest.approx(0.1)
    assert float(parts["adv"]) == pytest.approx(math.log(2.0))
    assert float(total) == pytest.approx(100 * 0.1 + math.log(2.0), rel=1e-5)


def test_paper_mse_compares_rgb_on_the_same_unit_scale() -> None:
    real = tf.fill((1, 4, 4, 3), 0.5)
    fake = tf.fill((1, 4, 4, 3), 0.6)  # 0.1 in sRGB is 0.2 on [-1, 1]
    total, parts = PAPER.generator_loss(real, fake, _logits(2.0), step=0)
    assert set(parts) == {"mse", "adv"}
    assert float(parts["mse"]) == pytest.approx(0.04, rel=1e-5)
    # The generator aims its fakes at "real" (label 1), never at the discriminator's soft 0.9.
    assert float(parts["adv"]) == pytest.approx(_bce(1.0, 2.0), rel=1e-5)
    assert float(total) == pytest.approx(100 * 0.04 + _bce(1.0, 2.0), rel=1e-5)


def test_discriminator_bce_uses_the_soft_labels() -> None:
    real_logits, fake_logits = _logits(2.0), _logits(-1.0)
    soft = PAPER.discriminator_loss(real_logits, fake_logits)
    assert float(soft) == pytest.approx(0.5 * (_bce(0.9, 2.0) + _bce(0.0, -1.0)), rel=1e-5)
    hard = PIX2PIX.discriminator_loss(real_logits, fake_logits)
    assert float(hard) == pytest.approx(0.5 * (_bce(1.0, 2.0) + _bce(0.0, -1.0)), rel=1e-5)
    assert float(soft) > float(hard)  # a confident "real" is penalised under label smoothing


def test_adversarial_term_starts_at_its_step_inside_a_compiled_function() -> None:
    recipe = dataclasses.replace(PIX2PIX, adversarial_start_step=10, adversarial_weight=0.5)
    real, fake = tf.zeros((1, 4, 4, 2)), tf.fill((1, 4, 4, 2), 0.2 * AB_SCALE)

    @tf.function
    def total_at(step: tf.Tensor) -> tf.Tensor:
        return recipe.generator_loss(real, fake, _logits(0.0), step)[0]

    before = total_at(tf.constant(9, tf.int64))
    after = total_at(tf.constant(10, tf.int64))
    assert float(before) == pytest.approx(100 * 0.2, rel=1e-5)
    assert float(after) == pytest.approx(100 * 0.2 + 0.5 * math.log(2.0), rel=1e-5)
    assert float(recipe.adversarial_weight_at(1_000)) == 0.5
    assert float(recipe.adversarial_weight_at(tf.Variable(3, dtype=tf.int64))) == 0.0


def test_optimizers_follow_the_recipe_unless_overridden() -> None:
    generator_opt, discriminator_opt = PIX2PIX.make_optimizers()
    assert generator_opt is not discriminator_opt
    for optimizer in (generator_opt, discriminator_opt):
        assert float(optimizer.learning_rate) == pytest.approx(2e-4)
        assert float(optimizer.beta_1) == pytest.approx(0.5)
    paper_opt, _ = PAPER.make_optimizers()
    assert float(paper_opt.learning_rate) == pytest.approx(1e-3)
    assert float(paper_opt.beta_1) == pytest.approx(0.9)
    overridden, _ = PAPER.make_optimizers(learning_rate=5e-5)
    assert float(overridden.learning_rate) == pytest.approx(5e-5)


def _photo_batch(size: int = 32, count: int = 4) -> dict[str, tf.Tensor]:
    """A batch of real dev photos fitted to size x size, with the keys the dataset provides."""
    photos = sorted(DEV_DIR.glob("*.jpg"))[::211][:count]
    if len(photos) < count:
        pytest.skip(f"needs {count} photos in {DEV_DIR}")
    rgb = np.stack(
        [np.asarray(ImageOps.fit(Image.open(p).convert("RGB"), (size, size))) for p in photos]
    )
    lab = np.stack([srgb_to_lab(image) for image in rgb]).astype(np.float32)
    lightness = np.stack([gray_to_lightness(grayscale(image)) for image in rgb])[..., None]
    return {
        "lightness": tf.constant(lightness, tf.float32),
        "ab": tf.constant(lab[..., 1:]),
        "rgb": tf.constant(rgb / 255.0, tf.float32),
    }


@pytest.mark.parametrize("name", ["pix2pix", "paper"])
def test_a_mirrored_gan_step_learns_real_colours(name: str) -> None:
    recipe = get_recipe(name)
    batch = _photo_batch()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        config = model_config("tiny", output=recipe.output)
        generator = build_generator(config)
        discriminator = build_discriminator(config, recipe.conditional_discriminator)
        generator_opt, discriminator_opt = recipe.make_optimizers(learning_rate=3e-3)

    def judge(colour: tf.Tensor) -> tf.Tensor:
        if recipe.conditional_discriminator:
            return discriminator([batch["lightness"], colour], training=True)
        return discriminator(colour, training=True)

    def replica_step(step: tf.Tensor) -> dict[str, tf.Tensor]:
        real = recipe.target(batch)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(batch["lightness"], training=True)
            fake_logits = judge(fake)
            g_loss, parts = recipe.generator_loss(real, fake, fake_logits, step)
            d_loss = recipe.discriminator_loss(judge(real), fake_logits)
        for tape, loss, net, opt in (
            (g_tape, g_loss, generator, generator_opt),
            (d_tape, d_loss, discriminator, discriminator_opt),
        ):
            grads = tape.gradient(loss, net.trainable_variables)
            opt.apply_gradients(zip(grads, net.trainable_variables, strict=True))
        return {**parts, "d": d_loss}

    @tf.function
    def train_step(step: tf.Tensor) -> dict[str, tf.Tensor]:
        return strategy.run(replica_step, args=(step,))

    reconstruction = recipe.reconstruction
    history = [train_step(tf.constant(i, tf.int64)) for i in range(40)]
    first, last = float(history[0][reconstruction]), float(history[-1][reconstruction])
    assert all(math.isfinite(float(v)) for h in history for v in h.values())
    assert last < 0.8 * first


def test_warmup_recipe_starts_the_adversarial_term_late_in_the_run() -> None:
    recipe = get_recipe("l1-warmup").for_run(1000)
    assert recipe.adversarial_start_step == 600
    assert float(recipe.adversarial_weight_at(599)) == 0.0
    assert float(recipe.adversarial_weight_at(600)) == pytest.approx(0.3)
    assert get_recipe("pix2pix").for_run(1000) is get_recipe("pix2pix")
