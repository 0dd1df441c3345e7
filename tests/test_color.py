"""Tests for imaging/color.py: PIL-exact grayscale, Lab against published values and its TF twin,
luminance-keeping recombination and colourfulness, on generated colours and real dev photos."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image

from colorize_cli.imaging import color

# sRGB (0..255) -> CIELab (D65, 2 degrees) as tabulated by EasyRGB and Bruce Lindbloom's calculator
PUBLISHED_LAB = [
    ((255, 0, 0), (53.241, 80.092, 67.203)),
    ((0, 255, 0), (87.735, -86.183, 83.179)),
    ((0, 0, 255), (32.297, 79.188, -107.860)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 255, 0), (97.139, -21.554, 94.478)),
    ((0, 255, 255), (91.113, -48.088, -14.131)),
    ((255, 0, 255), (60.324, 98.234, -60.825)),
    ((128, 128, 128), (53.585, 0.0, 0.0)),
]


def _photos(count: int) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in dev_photos(count, stride=131)]


def _random_u8(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _saturated(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Fully saturated colours of random hue: one channel 255, one 0, one anywhere between."""
    rng = np.random.default_rng(seed)
    channels = np.stack(
        [np.full(shape[:-1], 255), np.zeros(shape[:-1]), rng.integers(0, 256, shape[:-1])], -1
    )
    return rng.permuted(channels, axis=-1).astype(np.uint8)


# --- grayscale ----------------------------------------------------------------------------------


def test_grayscale_matches_pil_on_every_colour() -> None:
    codes = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(color.grayscale(rgb), expected)


def test_grayscale_matches_pil_on_real_photos() -> None:
    for rgb in _photos(6):
        gray = color.grayscale(rgb)
        assert gray.shape == rgb.shape[:2] and gray.dtype == np.uint8
        np.testing.assert_array_equal(gray, np.asarray(Image.fromarray(rgb).convert("L")))


def test_grayscale_rejects_floats_and_wrong_channels() -> None:
    with pytest.raises(TypeError):
        color.grayscale(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError):
        color.grayscale(np.zeros((2, 2, 4), np.uint8))


def test_definitions_name_the_conventions() -> None:
    assert "19595" in color.GRAYSCALE_DEFINITION and "convert('L')" in color.GRAYSCALE_DEFINITION
    assert "D65" in color.COLOR_SPACE and "sRGB" in color.COLOR_SPACE


def test_module_imports_without_tensorflow() -> None:
    code = "import sys, colorize_cli.imaging.color; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- Lab ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rgb", "lab"), PUBLISHED_LAB)
def test_srgb_to_lab_matches_published_values(rgb: tuple, lab: tuple) -> None:
    got = color.srgb_to_lab(np.array(rgb, np.uint8))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, lab, atol=0.01)
    np.testing.assert_allclose(color.srgb_to_lab(np.array(rgb) / 255.0), lab, atol=0.01)


def test_round_trip_of_a_million_colours_stays_within_half_a_level() -> None:
    rgb = _random_u8((1000, 1000, 3), seed=1)
    lab = color.srgb_to_lab(rgb)
    assert lab.shape == rgb.shape and lab.dtype == np.float32
    assert lab[..., 0].min() >= 0 and lab[..., 0].max() <= 100
    back = color.lab_to_srgb(lab)
    assert back.dtype == np.float32
    assert np.abs(back * 255 - rgb).max() < 0.5
    np.testing.assert_allclose(color.srgb_to_lab(rgb / np.float32(255)), lab, atol=1e-4)


def test_lab_to_srgb_clips_only_when_asked() -> None:
    out_of_gamut = np.array([[50.0, 120.0, -120.0], [95.0, -100.0, 100.0]], np.float32)
    raw = color.lab_to_srgb(out_of_gamut, clip=False)
    assert raw.min() < 0 or raw.max() > 1
    np.testing.assert_array_equal(color.lab_to_srgb(out_of_gamut), np.clip(raw, 0, 1))


def test_lab_functions_reject_integer_codes_they_cannot_read() -> None:
    with pytest.raises(TypeError):
        color.srgb_to_lab(np.zeros((1, 3), np.int64))
    with pytest.raises(TypeError):
        color.lab_to_srgb(np.zeros((1, 3), np.uint8))


def test_gray_to_lightness_is_the_lightness_of_the_neutral() -> None:
    levels = np.arange(256, dtype=np.uint8)
    lightness = color.gray_to_lightness(levels)
    assert lightness.dtype == np.float32
    neutral = color.srgb_to_lab(np.repeat(levels[:, None], 3, axis=1))
    np.testing.assert_allclose(lightness, neutral[:, 0], atol=1e-5)
    np.testing.assert_allclose(neutral[:, 1:], 0, atol=1e-4)
    assert lightness[0] == 0 and lightness[255] == pytest.approx(100, abs=1e-4)
    assert np.all(np.diff(lightness) > 0)
    photo = color.grayscale(_photos(1)[0])
    assert color.gray_to_lightness(photo).shape == photo.shape


# --- TensorFlow twins ---------------------------------------------------------------------------


def test_tf_twins_agree_with_numpy_in_graphs_and_datasets() -> None:
    tf = pytest.importorskip("tensorflow")
    rgb = np.random.default_rng(2).random((20000, 3), dtype=np.float32)
    lab = color.srgb_to_lab(rgb)
    np.testing.assert_allclose(color.tf_srgb_to_lab(rgb).numpy(), lab, atol=1e-4)
    graph_lab = tf.function(color.tf_srgb_to_lab)(tf.constant(rgb)).numpy()
    np.testing.assert_allclose(graph_lab, lab, atol=1e-4)
    u8 = _random_u8((100, 100, 3), seed=3)
    np.testing.assert_allclose(color.tf_srgb_to_lab(u8).numpy(), color.srgb_to_lab(u8), atol=1e-4)

    lab_wide = np.stack(
        [lab[:, 0], lab[:, 1] * 1.5, lab[:, 2] * 1.5], axis=-1
    )  # partly out of gamut
    for clip in (True, False):
        expected = color.lab_to_srgb(lab_wide, clip=clip)
        got = tf.function(color.tf_lab_to_srgb)(tf.constant(lab_wide), clip=clip).numpy()
        np.testing.assert_allclose(got, expected, atol=2e-5)

    batches = tf.data.Dataset.from_tensor_slices(rgb).batch(5000).map(color.tf_srgb_to_lab)
    np.testing.assert_allclose(np.concatenate(list(batches.as_numpy_iterator())), lab, atol=1e-4)


def test_tf_gray_to_lightness_agrees_for_uint8_and_float_grays() -> None:
    tf = pytest.importorskip("tensorflow")
    levels = np.arange(256, dtype=np.uint8)
    expected = color.gray_to_lightness(levels)
    for gray in (levels, levels.astype(np.float32)):
        got = tf.function(color.tf_gray_to_lightness)(tf.constant(gray))
        assert got.dtype == tf.float32
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
    # uint8 levels are looked up in the numpy twin's own table: equal, not merely close.
    np.testing.assert_array_equal(color.tf_gray_to_lightness(tf.constant(levels)).numpy(), expected)


def test_tf_twins_have_finite_gradients_at_black_and_white() -> None:
    tf = pytest.importorskip("tensorflow")
    rgb = tf.constant([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.02, 0.5, 1.0]])
    lab = tf.constant([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [50.0, 90.0, -90.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([rgb, lab])
        forward = tf.reduce_sum(color.tf_srgb_to_lab(rgb))
        backward = tf.reduce_sum(color.tf_lab_to_srgb(lab, clip=False))
    assert np.isfinite(tape.gradient(forward, rgb).numpy()).all()
    assert np.isfinite(tape.gradient(backward, lab).numpy()).all()


# --- keep_luminance -----------------------------------------------------------------------------


def _chroma(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float64)
    return x - (x @ (np.array(color.LUMA_WEIGHTS_2_16) / 65536.0))[..., None]


def test_keep_luminance_keeps_the_gray_of_real_photos_under_foreign_colour() -> None:
    for i, photo in enumerate(_photos(4)):
        gray = color.grayscale(photo)
        foreign = np.roll(photo, 1, axis=-1)  # the photo's own colours, channels shifted
        saturated = _saturated(photo.shape, seed=i)
        for colours in (foreign, saturated):
            out = color.keep_luminance(colours, gray)
            assert out.dtype == np.uint8 and out.shape == photo.shape
            np.testing.assert_array_equal(color.grayscale(out), gray)


def test_keep_luminance_keeps_hue_and_as_much_chroma_as_fits() -> None:
    rgb = _saturated((300, 300, 3), seed=5)
    gray = _random_u8((300, 300), seed=6)
    out = color.keep_luminance(rgb, gray)
    np.testing.assert_array_equal(color.grayscale(out), gray)
    wanted, kept = _chroma(rgb), _chroma(out)
    size_wanted, size_kept = np.linalg.norm(wanted, axis=-1), np.linalg.norm(kept, axis=-1)
    visible = size_kept > 20
    cosine = (wanted * kept).sum(-1)[visible] / (size_wanted * size_kept)[visible]
    assert visible.mean() > 0.5 and cosine.min() > 0.99
    # Chroma is only given up where some channel hit the end of its range.
    reduced = size_kept < size_wanted - 3
    at_edge = (out <= 1).any(-1) | (out >= 254).any(-1)
    assert reduced.mean() > 0.1 and at_edge[reduced].all()


def test_keep_luminance_of_a_photo_with_its_own_gray_changes_almost_nothing() -> None:
    photo = _photos(1)[0]
    out = color.keep_luminance(photo, color.grayscale(photo))
    diff = np.abs(out.astype(int) - photo)
    assert diff.max() <= 1 and (diff == 0).all(-1).mean() > 0.99


@pytest.mark.parametrize("level", [0, 255])
def test_keep_luminance_at_black_and_white_is_neutral(level: int) -> None:
    rgb = _random_u8((64, 64, 3), seed=level)
    out = color.keep_luminance(rgb, np.full((64, 64), level, np.uint8))
    np.testing.assert_array_equal(out, level)


def test_rounding_fix_brings_any_pixel_to_its_level() -> None:
    # keep_luminance's rounding almost never misses; drive the safety net with arbitrary misses.
    levels = _random_u8((50000,), seed=7)
    out = _random_u8((50000, 3), seed=8)
    off_by_one = np.clip(levels.astype(int) + np.sign(np.arange(50000) % 3 - 1), 0, 255)
    out[:20000] = off_by_one[:20000, None]  # neutrals one level off, some stuck at 0 or 255
    out[-10] = (255, 255, 255)
    levels[-10] = 254  # only a green nudge can fix this one
    before = out.copy()
    color._fix_rounding(out, levels)
    np.testing.assert_array_equal(color.grayscale(out), levels)
    right = color.grayscale(before) == levels
    np.testing.assert_array_equal(out[right], before[right])
    assert np.abs(out[:20000].astype(int) - before[:20000]).max() <= 1
    np.testing.assert_array_equal(out[-10], (255, 254, 255))


def test_keep_luminance_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        color.keep_luminance(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8))


# --- colorfulness -------------------------------------------------------------------------------


def test_colorfulness_of_two_pixels_by_hand() -> None:
    # red and blue: rg = (255, 0), yb = (127.5, -255)
    mean_rg, std_rg = 127.5, 127.5
    mean_yb, std_yb = -63.75, 191.25
    expected = np.hypot(std_rg, std_yb) + 0.3 * np.hypot(mean_rg, mean_yb)
    image = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    assert color.colorfulness(image) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(272.618, abs=1e-3)


def test_colorfulness_is_zero_for_gray_and_positive_for_real_photos() -> None:
    for photo in _photos(3):
        gray = np.repeat(color.grayscale(photo)[..., None], 3, axis=-1)
        assert color.colorfulness(gray) == 0.0
        x = photo.astype(np.float64)
        rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
        direct = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
        assert color.colorfulness(photo) == pytest.approx(direct, rel=1e-9)
        assert direct > 1


# --- chroma: Cb, Cr with grayscale's weights ----------------------------------------------------


def _ycbcr_601(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = rgb.astype(np.float64)
    luma = x @ (np.array(color.LUMA_WEIGHTS_2_16) / 65536.0)
    return (x[..., 2] - luma) / color.CB_RANGE, (x[..., 0] - luma) / color.CR_RANGE


def test_lab_chroma_is_the_chroma_of_the_lab_colour_in_srgb() -> None:
    rng = np.random.default_rng(9)
    gray = _random_u8((200, 300), seed=10)
    ab = rng.normal(0, 40, (200, 300, 2)).astype(np.float32)
    lab = np.concatenate([color.gray_to_lightness(gray)[..., None], ab], axis=-1)
    want_cb, want_cr = _ycbcr_601(color.lab_to_srgb(lab) * 255)
    cb, cr = color.lab_chroma(gray, ab)
    assert cb.dtype == cr.dtype == np.float32 and cb.shape == gray.shape
    np.testing.assert_allclose(cb, want_cb, atol=1e-3)
    np.testing.assert_allclose(cr, want_cr, atol=1e-3)
    with pytest.raises(ValueError):
        color.lab_chroma(gray.astype(np.float32), ab)


def test_recolor_keeps_the_gray_exactly_and_the_chroma_where_it_fits() -> None:
    gray = _random_u8((300, 300), seed=11)
    rng = np.random.default_rng(12)
    cb, cr = (rng.normal(0, 30, gray.shape).astype(np.float32) for _ in range(2))
    out = color.recolor(gray, cb, cr)
    np.testing.assert_array_equal(color.grayscale(out), gray)
    # Where nothing was clipped the chroma is the one asked for, to the rounding of 8 bits.
    fitted = color.fit_chroma(gray, cb, cr)
    got_cb, got_cr = _ycbcr_601(out)
    assert np.abs(got_cb - fitted[0]).mean() < 0.3 and np.abs(got_cr - fitted[1]).mean() < 0.3
    untouched = fitted[0] == cb
    assert untouched.mean() > 0.3 and np.abs(got_cb - cb)[untouched].max() < 1.5


def test_keep_luminance_is_recolor_with_the_photo_chroma() -> None:
    photo, other = _photos(2)
    gray = color.grayscale(other[: photo.shape[0], : photo.shape[1]])
    photo = photo[: gray.shape[0], : gray.shape[1]]
    cb, cr = (x.astype(np.float32) for x in _ycbcr_601(photo))
    diff = np.abs(color.keep_luminance(photo, gray).astype(int) - color.recolor(gray, cb, cr))
    assert diff.max() <= 1


def test_ycbcr_matrix_chroma_converts_to_another_matrix() -> None:
    np.testing.assert_allclose(
        color.ycbcr_matrix_chroma(*(w / 65536 for w in color.LUMA_WEIGHTS_2_16[::2])),
        np.eye(2),
        atol=1e-9,
    )
    rgb = _random_u8((1000, 3), seed=13).astype(np.float64)
    kr, kb = 0.2126, 0.0722  # BT.709
    luma = rgb @ np.array([kr, 1 - kr - kb, kb])
    want = np.stack([(rgb[:, 2] - luma) / (2 * (1 - kb)), (rgb[:, 0] - luma) / (2 * (1 - kr))])
    got = color.ycbcr_matrix_chroma(kr, kb) @ np.stack(_ycbcr_601(rgb))
    np.testing.assert_allclose(got, want, atol=1e-9)
