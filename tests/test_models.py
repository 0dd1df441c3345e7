"""Tests for models.py: shapes, output ranges, safe save/load, the PatchGAN and FLOPs counting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageOps

from colorize_cli.errors import UsageError
from colorize_cli.imaging.color import gray_to_lightness, grayscale
from colorize_cli.nets.models import (
    AB_SCALE,
    PRESETS,
    ModelConfig,
    build_discriminator,
    build_generator,
    count_flops,
    model_config,
)
from colorize_cli.tf_setup import import_tf
from colorize_cli.training.gan import generator_input

tf = import_tf()

DEV_DIR = Path(__file__).resolve().parents[2] / "shared/data/dev"
TINY = PRESETS["tiny"]
DEPTH4 = ModelConfig(preset="test", depth=4, base_filters=4, max_filters=16)


def _lightness(height: int, width: int, batch: int = 1) -> np.ndarray:
    """L* of real gray photos, fitted to height x width: (batch, H, W, 1) float32."""
    photos = sorted(DEV_DIR.glob("*.jpg"))[::97][:batch]
    if len(photos) < batch:
        pytest.skip(f"needs {batch} photos in {DEV_DIR}")
    crops = []
    for path in photos:
        rgb = np.asarray(ImageOps.fit(Image.open(path).convert("RGB"), (width, height)))
        crops.append(gray_to_lightness(grayscale(rgb)))
    return np.stack(crops)[..., None].astype(np.float32)


def _scramble_head(model, scale: float) -> None:
    """Give the zero-initialised output conv large random weights, so outputs saturate."""
    layer = model.get_layer("out_conv")
    kernel = np.random.default_rng(0).normal(0, scale, layer.kernel.shape)
    layer.kernel.assign(kernel.astype(np.float32))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_keeps_the_input_size(preset: str) -> None:
    config = PRESETS[preset]
    generator = build_generator(config)
    lightness = _lightness(config.stride, 2 * config.stride)
    inputs = generator.input
    if config.hints:  # the hint inputs beside it, by name (docs/hints.md)
        assert set(inputs) == {"lightness", "hints", "palette"}
        inputs = inputs["lightness"]
        lightness = generator_input(generator, {"lightness": tf.constant(lightness)})
    assert inputs.shape == (None, None, None, 1)
    assert inputs.name == "lightness"
    assert generator(lightness).shape == (1, config.stride, 2 * config.stride, 2)


@pytest.mark.parametrize(("config", "height", "width"), [(TINY, 40, 56), (DEPTH4, 48, 80)])
def test_odd_multiples_of_the_stride_work(config: ModelConfig, height: int, width: int) -> None:
    assert height // config.stride % 2 == 1 and width // config.stride % 2 == 1
    ab = build_generator(config)(_lightness(height, width, batch=2))
    assert ab.shape == (2, height, width, 2)


def test_untrained_generator_predicts_no_colour() -> None:
    ab = build_generator(TINY)(_lightness(32, 32)).numpy()
    np.testing.assert_array_equal(ab, 0.0)


def test_ab_output_saturates_within_the_lab_scale() -> None:
    generator = build_generator(TINY)
    _scramble_head(generator, 50.0)
    ab = generator(_lightness(32, 32)).numpy()
    assert np.abs(ab).max() <= AB_SCALE
    assert np.abs(ab).max() > 0.9 * AB_SCALE
    assert ab.min() < 0 < ab.max()


def test_rgb_output_is_srgb_in_unit_range() -> None:
    generator = build_generator(model_config("tiny", output="rgb"))
    _scramble_head(generator, 50.0)
    rgb = generator(_lightness(32, 32)).numpy()
    assert rgb.shape == (1, 32, 32, 3)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert rgb.min() < 0.05 and rgb.max() > 0.95


@pytest.mark.parametrize("output", ["ab", "rgb"])
def test_generator_round_trips_through_a_safe_keras_file(tmp_path: Path, output: str) -> None:
    generator = build_generator(model_config("tiny", output=output))
    _scramble_head(generator, 0.5)
    lightness = _lightness(32, 32)
    before = generator(lightness).numpy()
    assert np.abs(before).max() > 0  # identical zeros would prove nothing

    path = tmp_path / "model.keras"
    generator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(loaded(lightness).numpy(), before)


def test_discriminator_round_trips_through_a_safe_keras_file(tmp_path: Path) -> None:
    discriminator = build_discriminator(TINY)
    pair = [_lightness(32, 32), np.full((1, 32, 32, 2), 20.0, np.float32)]
    path = tmp_path / "discriminator.keras"
    discriminator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(loaded(pair).numpy(), discriminator(pair).numpy())


def test_conditional_discriminator_gives_one_logit_per_patch() -> None:
    discriminator = build_discriminator(DEPTH4)
    assert [tensor.name for tensor in discriminator.inputs] == ["lightness", "color"]
    lightness = _lightness(48, 80, batch=2)
    logits = discriminator([lightness, np.zeros((2, 48, 80, 2), np.float32)]).numpy()
    stride = DEPTH4.discriminator_stride
    assert stride == 8
    assert logits.shape == (2, 48 // stride, 80 // stride, 1)
    # The pair is judged: changing only the lightness changes the verdict.
    other = discriminator([100.0 - lightness, np.zeros((2, 48, 80, 2), np.float32)]).numpy()
    assert not np.allclose(logits, other)


def test_unconditional_discriminator_judges_the_colour_alone() -> None:
    config = model_config("tiny", output="rgb")
    discriminator = build_discriminator(config, conditional=False)
    assert len(discriminator.inputs) == 1
    colour = np.random.default_rng(1).random((3, 40, 56, 3), np.float32)
    logits = discriminator(colour).numpy()
    assert logits.shape == (3, 5, 7, 1)
    assert not np.allclose(logits, discriminator(1.0 - colour).numpy())


def test_count_flops_matches_a_hand_computed_conv() -> None:
    image = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(8, 3, strides=2, padding="same")(image)
    model = keras.Model(image, keras.layers.Dense(5)(features))
    # Conv: 16x16 outputs x (3x3x3) taps x 8 filters; Dense: 16x16 positions x 8 x 5; 2 per MAC.
    expected = 2 * 16 * 16 * (3 * 3 * 3) * 8 + 2 * 16 * 16 * 8 * 5
    assert count_flops(model, 32, 32) == expected


def test_generator_flops_grow_with_the_pixel_count() -> None:
    generator = build_generator(TINY)
    small, large = count_flops(generator, 64, 64), count_flops(generator, 128, 128)
    assert small > 0 and large == 4 * small
    assert generator.input.shape == (None, None, None, 1)  # the model itself is left as it was


def test_unknown_preset_and_bad_config_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="tiny, small, base"):
        model_config("huge")
    with pytest.raises(UsageError, match="ab, rgb"):
        model_config("tiny", output="lab")
    with pytest.raises(UsageError, match="depth"):
        ModelConfig(depth=0)


def test_importing_models_and_recipes_does_not_load_tensorflow() -> None:
    code = (
        "import sys, colorize_cli.nets.models, colorize_cli.nets.recipes; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
