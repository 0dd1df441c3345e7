"""Hints: the hints file, the hint map and palette, the training sampler, the zero-start hint twin,
and what the shipped default does with a hint or a reference."""

from __future__ import annotations

import io
import json
from pathlib import Path

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
        hints.hint_map(
            [Point(1, 1, (0, 0, 0)), Point(50, 10, (0, 0, 0))], (40, 50), np.zeros((32, 40))
        )


def test_the_hint_map_is_the_colour_spread_by_distance_and_lightness() -> None:
    red = (220, 30, 30)
    lightness = np.full((80, 160), 50.0, np.float32)
    lightness[:, 100:] = 90.0  # a much lighter region on the right
    out = hints.hint_map([Point(100, 50, red, 20)], (200, 400), lightness)
    weight = out[..., 2]
    # Weight 1 on the patch (20 px -> 8 px at the render), falling off with distance...
    assert np.all(weight[16:24, 36:44] == 1.0)
    assert weight[20, 60] < weight[20, 50] < 1.0
    # ... and far less across a lightness edge than at the same distance on the same level.
    assert weight[20, 40 + 64] < 0.2 * weight[20, 40 - 30]
    lab = color.srgb_to_lab(np.array([[red]], np.uint8))[0, 0]
    np.testing.assert_allclose(out[20, 40, :2], lab[1:] / hints.AB_RANGE, atol=1e-5)
    # Premultiplied: the colour channels over the weight give the hint's chroma everywhere.
    far = weight > 1e-3
    np.testing.assert_allclose(
        out[far][:, :2] / weight[far][:, None],
        np.broadcast_to(lab[1:] / 110, (far.sum(), 2)),
        atol=1e-4,
    )
    assert np.all(hints.hint_map([], (200, 400), lightness) == 0)


def test_the_training_sampler_spreads_like_the_user_hints() -> None:
    from colorize_cli.tf_setup import import_tf
    from colorize_cli.training import hint_sampling

    tf = import_tf()
    rng = np.random.default_rng(2)
    lightness = rng.uniform(20, 80, (48, 64)).astype(np.float32)
    ab = np.zeros((48, 64, 2), np.float32)
    ab[10:14, 20:24] = (40.0, -20.0)
    # One known patch through the sampler's spreading, against imaging.hints.spread.
    boxes = np.array([[10, 20, 4, 4]])
    expected_ab, expected_weight = hints.spread(boxes, np.array([[40.0, -20.0]]), lightness)
    with tf.device("/cpu:0"):
        got = hint_sampling.spread_boxes(
            tf.constant(ab),
            tf.constant(lightness),
            tf.constant([10]),
            tf.constant([20]),
            tf.constant([4]),
            tf.constant(1),
        ).numpy()
    np.testing.assert_allclose(got[..., 2], expected_weight, atol=1e-5)
    np.testing.assert_allclose(
        got[..., :2], expected_ab * expected_weight[..., None] / hints.AB_RANGE, atol=1e-5
    )


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
    lightness = tf.constant(color.srgb_to_lab(_photo()[:128, :128])[..., 0])
    sample = hint_sampling.sample_hints(ab, lightness, key).numpy()
    assert np.array_equal(sample, hint_sampling.sample_hints(ab, lightness, key).numpy())
    weight = sample[..., 2]
    assert weight.min() >= 0.0 and weight.max() <= 1.0
    # The spread colour is a mean of patch means of the truth: inside the truth's range.
    chroma = sample[weight > 0.5][:, :2] / weight[weight > 0.5][:, None] * hints.AB_RANGE
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
    """The bundled default's automatic base (a lite0 of its own layers' weights) and a freshly
    built lite0-hints generator started from it."""
    from colorize_cli.nets.models import build_generator, model_config, transfer_weights
    from colorize_cli.nets.saved import DEFAULT_MODEL_PATH, load_generator

    source = {layer.name: layer for layer in load_generator(DEFAULT_MODEL_PATH).layers}
    automatic = build_generator(model_config("lite0"))
    for layer in automatic.layers:  # the default's own layers: its automatic base
        if layer.get_weights():
            layer.set_weights(source[layer.name].get_weights())
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
    nothing = {"lightness": lightness, "hints": np.zeros_like(hint_map), "palette": palette}
    assert np.array_equal(expected, twin(nothing, training=False).numpy())  # bit for bit
    # With hints, a fresh one is the hand-made blend: (1 - w) x automatic + w x the hint colour.
    got = twin({"lightness": lightness, "hints": hint_map, "palette": palette}, training=False)
    weight = hint_map[..., 2:]
    blend = (1 - weight) * expected + hint_map[..., :2] * hints.AB_RANGE
    np.testing.assert_allclose(got.numpy(), blend, atol=1e-4)


def test_a_trained_hint_model_without_hints_is_still_exactly_its_base(hint_twin) -> None:
    from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
    from colorize_cli.nets.models import HINT_LAYER_PREFIXES, build_generator, model_config

    automatic, twin = hint_twin
    trained = build_generator(model_config("lite0-hints"))
    trained.set_weights(twin.get_weights())
    rng = np.random.default_rng(5)
    for layer in trained.layers:
        if layer.name.startswith(HINT_LAYER_PREFIXES) and layer.get_weights():
            layer.set_weights([rng.normal(0, 0.05, w.shape) for w in layer.get_weights()])
    lightness = rng.uniform(0, 100, (1, 64, 64, 1)).astype(np.float32)
    none = {
        "lightness": lightness,
        "hints": np.zeros((1, 64, 64, HINT_CHANNELS), np.float32),
        "palette": np.zeros((1, PALETTE_SIZE), np.float32),
    }
    expected = automatic(lightness, training=False).numpy()
    assert np.array_equal(trained(none, training=False).numpy(), expected)
    given = dict(none, hints=none["hints"].copy())
    given["hints"][0, 20:30, 20:30] = (0.4, 0.2, 1.0)
    assert np.abs(trained(given, training=False).numpy() - expected).max() > 0.5


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


# The command line, in subprocesses, with the bundled default (a hint model) at a small render.
def _cli(*args: str, stdin: bytes | None = None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "colorize_cli", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def _one_line_error(result, exit_code: int) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == exit_code, stderr
    assert "Traceback" not in stderr
    return stderr


def test_apply_hints_folder_one_bad_file_fails_its_photo_only(tmp_path) -> None:
    for name in ("bsds500-test_100007.jpg", "bsds500-test_130014.jpg"):
        (tmp_path / name).write_bytes((DEV_DIR / name).read_bytes())
    folder = tmp_path / "hints"
    folder.mkdir()
    good = {"points": [{"x": 60, "y": 60, "color": "#d23c2a", "size": 40}]}
    (folder / "bsds500-test_100007.json").write_text(json.dumps(good))
    (folder / "bsds500-test_130014.json").write_text(
        '{"points": [{"x": 1, "y": 2, "color": "red"}]}'
    )
    result = _cli(
        "apply",
        str(tmp_path / "bsds500-test_100007.jpg"),
        str(tmp_path / "bsds500-test_130014.jpg"),
        "--hints",
        str(folder),
        "--out-dir",
        str(tmp_path / "out"),
        "--render-size",
        "96",
    )
    stderr = _one_line_error(result, 1)
    assert "bsds500-test_130014.json" in stderr and '"color" must be "#rrggbb"' in stderr
    written = result.stdout.decode().split()
    assert [Path(p).name for p in written] == ["bsds500-test_100007.jpg"]
    out = np.asarray(Image.open(written[0]).convert("RGB"))
    # The hint's red is there (it is given on a neutral, sandy region), and the gray is kept.
    patch = color.srgb_to_lab(out[45:76, 45:76])[..., 1].mean()
    plain = _cli(
        "apply",
        str(tmp_path / "bsds500-test_100007.jpg"),
        "-o",
        str(tmp_path / "plain.png"),
        "--render-size",
        "96",
    )
    assert plain.returncode == 0, plain.stderr.decode()
    before = color.srgb_to_lab(np.asarray(Image.open(tmp_path / "plain.png"))[45:76, 45:76])
    assert patch > before[..., 1].mean() + 10


def test_apply_hints_usage_errors_are_one_line_exit_2(tmp_path, tiny_model) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes((DEV_DIR / "bsds500-test_100007.jpg").read_bytes())
    other = tmp_path / "b.jpg"
    other.write_bytes(photo.read_bytes())
    hints_file = tmp_path / "a.json"
    hints_file.write_text('{"points": [{"x": 1, "y": 2, "color": "#ff0000"}]}')
    cases = [
        (("apply", str(photo), str(other), "--hints", str(hints_file)), "--hints FILE is for one"),
        (("apply", str(photo), "--hints", str(hints_file), "--model", str(tiny_model)), "no hints"),
        (("apply", str(photo), "--reference", str(tmp_path / "nope.jpg")), "--reference"),
        (("apply", str(photo), "--hints", str(tmp_path / "nope.json")), "--hints: not found"),
        (("eval", str(tiny_model), str(photo), "--oracle-hints", "3"), "no hints"),
        (("eval", "default", str(photo), "--oracle-hints", "-1"), "--oracle-hints must be"),
    ]
    for args, message in cases:
        stderr = _one_line_error(_cli(*args), 2)
        assert message in stderr, (args, stderr)
        assert len(stderr.strip().splitlines()) == 1, stderr
    assert not list(tmp_path.glob("*.color.*"))


def test_apply_streams_with_a_hints_file_and_refuses_a_point_outside(tmp_path) -> None:
    data = (DEV_DIR / "bsds500-test_100007.jpg").read_bytes()
    inside = tmp_path / "in.json"
    inside.write_text('{"points": [{"x": 60, "y": 60, "color": "#2050e0", "size": 30}]}')
    outside = tmp_path / "out.json"
    outside.write_text('{"points": [{"x": 6000, "y": 60, "color": "#2050e0"}]}')
    result = _cli(
        "apply", "-", "-o", "-", "--hints", str(inside), "--render-size", "96", stdin=data
    )
    assert result.returncode == 0, result.stderr.decode()
    assert (
        Image.open(io.BytesIO(result.stdout)).size
        == Image.open(DEV_DIR / "bsds500-test_100007.jpg").size
    )
    stderr = _one_line_error(_cli("apply", "-", "-o", "-", "--hints", str(outside), stdin=data), 2)
    assert "outside the photo" in stderr


def test_eval_oracle_hints_are_reproducible_and_help(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("bsds500-test_100007.jpg", "imagenet_n02090379_redbone.jpg"):
        (photos / name).write_bytes((DEV_DIR / name).read_bytes())

    def ciede(*extra: str) -> float:
        result = _cli("eval", "default", str(photos), "--json", "--render-size", "96", *extra)
        assert result.returncode == 0, result.stderr.decode()
        return json.loads(result.stdout)["metrics"]["model"]["ciede2000"]

    automatic = ciede()
    hinted = ciede("--oracle-hints", "10", "--seed", "3")
    assert hinted == ciede("--oracle-hints", "10", "--seed", "3")
    assert hinted < automatic
    assert ciede("--oracle-hints", "10", "--seed", "3", "--blend-hints") < automatic
    assert ciede("--reference", "truth") != automatic


def test_a_video_takes_the_reference_palette(tmp_path) -> None:
    from clips import pan, read_frames, write_video

    photo = _photo("sunhays80_canyon_sun_aokgdiugvxssbqyl.jpg")
    frames = [color.grayscale(f) for f in pan(photo, 128, 96, 6)]
    source = tmp_path / "film.mp4"
    write_video(source, frames)
    reference = tmp_path / "blue.png"
    Image.fromarray(np.full((32, 32, 3), (40, 90, 200), np.uint8)).save(reference)
    for name, extra in (("plain.mp4", ()), ("blue.mp4", ("--reference", str(reference)))):
        result = _cli(
            "apply", str(source), "-o", str(tmp_path / name), "--render-size", "96", *extra
        )
        assert result.returncode == 0, result.stderr.decode()
    plain, blue = read_frames(tmp_path / "plain.mp4"), read_frames(tmp_path / "blue.mp4")
    assert len(plain) == len(blue) == len(frames)
    b_plain = np.mean([color.srgb_to_lab(f)[..., 2].mean() for f in plain])
    b_blue = np.mean([color.srgb_to_lab(f)[..., 2].mean() for f in blue])
    assert b_blue < b_plain - 2, (b_plain, b_blue)
