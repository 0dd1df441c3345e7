"""Hints: the hints file, the hint map and palette, the training sampler, the zero-start hint twin,
and what the shipped default does with a hint or a reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DEV_DIR
from PIL import Image

from colorize_cli.imaging import color, hints
from colorize_cli.imaging.hints import Guide, HintError, Point, parse_hints


def _photo(name: str = "bsds500-test_100007.jpg") -> np.ndarray:
    return np.asarray(Image.open(DEV_DIR / name).convert("RGB"))


def test_parses_points_with_and_without_size() -> None:
    points = parse_hints(
        '{"points": [{"x": 312, "y": 140, "color": "#d23c2a"},'
        ' {"x": 40, "y": 400, "color": "#3A5F2B", "size": 9}]}'
    )
    assert points == [Point(312, 140, (210, 60, 42)), Point(40, 400, (58, 95, 43), 9)]
    assert parse_hints(json.dumps({"points": [p.to_json() for p in points]})) == points


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("{not json", "not JSON"),
        ("[]", 'missing field "points"'),
        ('{"points": {}}', 'missing field "points"'),
        ('{"points": [{"x": 1, "color": "#000000"}]}', 'point 1: missing field "y"'),
        ('{"points": [{"x": 1, "y": 2}]}', 'point 1: missing field "color"'),
        ('{"points": [{"x": 1.5, "y": 2, "color": "#000000"}]}', '"x" must be an integer'),
        ('{"points": [{"x": true, "y": 2, "color": "#000000"}]}', '"x" must be an integer'),
        ('{"points": [{"x": 1, "y": 2, "color": "red"}]}', '"color" must be "#rrggbb"'),
        ('{"points": [{"x": 1, "y": 2, "color": "#12345"}]}', '"color" must be "#rrggbb"'),
        ('{"points": [{"x": 1, "y": 2, "color": "#123456", "size": 0}]}', '"size" must be'),
        ('{"points": [7]}', "point 1: expected an object"),
        (json.dumps({"points": [{"x": 0, "y": 0, "color": "#000000"}] * 257}), "too many points"),
        ("[" * 100000, "not JSON"),
    ],
)
def test_a_bad_hints_file_is_one_line_naming_the_fault(text: str, fault: str) -> None:
    with pytest.raises(HintError) as caught:
        parse_hints(text)
    assert fault in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_point_outside_the_photo_is_refused_with_the_photo_size() -> None:
    with pytest.raises(HintError, match=r"point 2 \(50, 10\) is outside the photo \(50x40"):
        hints.hint_map([Point(1, 1, (0, 0, 0)), Point(50, 10, (0, 0, 0))], (40, 50), (32, 40))


def test_the_hint_map_puts_the_chroma_and_mask_on_the_patch_only() -> None:
    red = (220, 30, 30)
    out = hints.hint_map([Point(100, 50, red, 20)], (200, 400), (80, 160))
    mask = out[..., 2]
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 23, 36, 43)  # 20 px -> 8 px
    lab = color.srgb_to_lab(np.array([[red]], np.uint8))[0, 0]
    np.testing.assert_allclose(out[20, 40, :2], lab[1:] / hints.AB_RANGE, atol=1e-6)
    assert np.all(out[mask == 0] == 0)


def test_the_palette_is_a_normalised_histogram_with_a_given_flag() -> None:
    photo = _photo()
    values = hints.palette(hints.reference_ab(photo))
    assert values.shape == (hints.PALETTE_SIZE,)
    assert values[-1] == 1.0
    assert values[:-1].sum() == pytest.approx(1.0, abs=1e-5)
    assert np.all(hints.palette(None) == 0)
    assert len(hints.palette_colors(values, 3)) == 3


def test_oracle_points_are_reproducible_and_carry_the_truths_colour() -> None:
    photo = _photo()
    first = hints.oracle_points(photo, 10, np.random.default_rng(3))
    assert first == hints.oracle_points(photo, 10, np.random.default_rng(3))
    assert first != hints.oracle_points(photo, 10, np.random.default_rng(4))
    size = hints.default_point_size(*photo.shape[:2])
    for p in first:
        patch = photo[max(0, p.y - size // 2) :, max(0, p.x - size // 2) :][:size, :size]
        assert np.abs(patch.reshape(-1, 3).mean(axis=0) - p.color).max() <= 0.5


def test_the_training_sampler_follows_zhang_with_more_hint_free_photos() -> None:
    from colorize_cli.tf_setup import import_tf
    from colorize_cli.training import hint_sampling

    tf = import_tf()
    ab = tf.constant(color.srgb_to_lab(_photo()[:128, :128])[..., 1:])
    counts = []
    for i in range(400):
        key = tf.constant([7, i], tf.int64)
        counts.append(
            int(hint_sampling.point_count(tf.random.experimental.stateless_split(key, 4)[0]))
        )
    counts = np.array(counts)
    free = float(np.mean(counts == 0))
    assert 0.19 < free < 0.31  # FREE_SHARE 0.25, twice Zhang's 12.5%
    assert counts.max() <= hint_sampling.MAX_POINTS
    assert 5 < counts[counts > 0].mean() < 11  # 1 + geometric(1/8): mean 8
    key = tf.constant([1, 2], tf.int64)
    sample = hint_sampling.sample_hints(ab, key).numpy()
    assert np.array_equal(sample, hint_sampling.sample_hints(ab, key).numpy())
    mask = sample[..., 2]
    assert set(np.unique(mask)) <= {0.0, 1.0}
    # Each patch carries a mean of the truth: inside the truth's range.
    chroma = sample[mask == 1][:, :2] * hints.AB_RANGE
    if len(chroma):
        truth = ab.numpy().reshape(-1, 2)
        assert np.all(chroma >= truth.min(axis=0) - 1e-3)
        assert np.all(chroma <= truth.max(axis=0) + 1e-3)
    palette = hint_sampling.sample_palette(ab, key).numpy()
    assert palette.shape == (hints.PALETTE_SIZE,)
    assert palette[-1] in (0.0, 1.0)
    assert palette[:-1].sum() == pytest.approx(palette[-1], abs=1e-5)


@pytest.fixture(scope="module")
def hint_twin():
    """A freshly built lite0-hints generator with the bundled default's weights (if it is an
    automatic model) or the automatic default of the same weights, and its automatic source."""
    from colorize_cli.inference.colorizer import DEFAULT_MODEL_PATH, load_generator
    from colorize_cli.nets.models import build_generator, model_config, transfer_weights

    source = load_generator(DEFAULT_MODEL_PATH)
    automatic = build_generator(model_config("lite0"))
    transfer_weights(source, automatic)
    twin = build_generator(model_config("lite0-hints"))
    transfer_weights(automatic, twin)
    return automatic, twin


def test_a_fresh_hint_model_computes_exactly_the_automatic_model(hint_twin) -> None:
    from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE

    automatic, twin = hint_twin
    rng = np.random.default_rng(0)
    lightness = rng.uniform(0, 100, (2, 64, 96, 1)).astype(np.float32)
    hint_map = np.zeros((2, 64, 96, HINT_CHANNELS), np.float32)
    hint_map[:, 10:14, 20:24] = (0.5, -0.3, 1.0)
    palette = np.zeros((2, PALETTE_SIZE), np.float32)
    expected = automatic(lightness, training=False).numpy()
    got = twin({"lightness": lightness, "hints": hint_map, "palette": palette}, training=False)
    assert np.array_equal(expected, got.numpy())  # zero branches: bit for bit, even with hints


def test_an_automatic_model_asked_for_hints_is_a_usage_error(tiny_model) -> None:
    from colorize_cli.errors import UsageError
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer(tiny_model, 64)
    assert not colorizer.takes_hints
    with pytest.raises(UsageError, match="takes no hints"):
        colorizer.colorize(_photo(), Guide((Point(1, 1, (255, 0, 0)),)))


@pytest.fixture(scope="module")
def default_colorizer():
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer()
    if not colorizer.takes_hints:
        pytest.fail("the bundled default must take hints (issue 18)")
    return colorizer


def test_a_red_hint_turns_a_gray_region_red(default_colorizer) -> None:
    # A wall of even mid gray with a little texture: no colour the network would guess.
    rng = np.random.default_rng(1)
    gray = np.clip(128 + rng.normal(0, 3, (240, 320)), 0, 255).astype(np.uint8)
    gray[:, 200:] = 60  # a darker part on the right, left alone
    red = Point(80, 120, (210, 30, 30), 40)
    automatic = default_colorizer.colorize(gray)
    hinted = default_colorizer.colorize(gray, Guide((red,)))
    assert np.array_equal(color.grayscale(hinted), gray)  # the photo's own gray kept exactly
    patch = color.srgb_to_lab(hinted[110:131, 70:91])[..., 1:].reshape(-1, 2).mean(axis=0)
    before = color.srgb_to_lab(automatic[110:131, 70:91])[..., 1:].reshape(-1, 2).mean(axis=0)
    assert patch[0] > 20 and patch[0] > before[0] + 15, (patch, before)  # a* strongly red
    rgb = hinted[110:131, 70:91].reshape(-1, 3).mean(axis=0)
    assert rgb[0] > rgb[1] + 30 and rgb[0] > rgb[2] + 30


def test_a_reference_moves_the_colours_toward_its_palette(default_colorizer) -> None:
    photo = _photo("sunhays80_canyon_sun_aokgdiugvxssbqyl.jpg")
    blue = np.zeros((64, 64, 3), np.uint8)
    blue[...] = (40, 90, 200)
    automatic = default_colorizer.colorize(photo)
    referenced = default_colorizer.colorize(photo, Guide(reference_ab=hints.reference_ab(blue)))
    b_before = color.srgb_to_lab(automatic)[..., 2].mean()
    b_after = color.srgb_to_lab(referenced)[..., 2].mean()
    assert b_after < b_before - 2, (b_before, b_after)  # b* toward blue
    assert np.array_equal(color.grayscale(referenced), color.grayscale(photo))


def test_the_bundled_tflite_export_agrees_with_keras_with_hints(default_colorizer) -> None:
    from colorize_cli.inference.colorizer import Colorizer

    lite = Colorizer(backend="lite")
    assert lite.takes_hints and lite.backend.name == "lite"
    photo = _photo()
    guide = Guide(
        hints.oracle_points(photo, 8, np.random.default_rng(0)), hints.reference_ab(photo)
    )
    ((_, _, expected),) = default_colorizer.chroma_many([(0, photo, guide)])
    ((_, _, got),) = lite.chroma_many([(0, photo, guide)])
    difference = np.abs(expected - got)
    assert difference.max() < 0.5 and difference.mean() < 0.05
