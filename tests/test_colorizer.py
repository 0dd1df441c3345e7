"""Colorizer: model loading rules, any size in / same size out, the gray kept exactly, batching."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import DEV_DIR
from PIL import Image

from colorize_cli.errors import ModelError
from colorize_cli.imaging import color
from colorize_cli.inference import colorizer
from colorize_cli.nets import saved


def _save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def _wild_model() -> keras.Model:
    """A stride-4 net whose a*b* swing far outside the sRGB gamut (+-150), so clipping matters."""
    lightness = keras.Input((None, None, 1))
    x = keras.layers.AveragePooling2D(4)(lightness)
    ab = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[3.0, -2.0]]]]),
        bias_initializer=keras.initializers.Constant([-150.0, 100.0]),
    )(x)
    return keras.Model(lightness, keras.layers.UpSampling2D(4)(ab))


def _lightness_model() -> keras.Model:
    """a* = 0.4 (L* - 50), b* = 0: colour that follows the photo's own light and dark places."""
    lightness = keras.Input((None, None, 1))
    ab = keras.layers.Conv2D(
        2,
        1,
        kernel_initializer=keras.initializers.Constant([[[[0.4, 0.0]]]]),
        bias_initializer=keras.initializers.Constant([-20.0, 0.0]),
    )(lightness)
    return keras.Model(lightness, ab)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from colorize_cli.nets.models import build_generator, model_config

    folder = tmp_path_factory.mktemp("models")
    _save(build_generator(model_config("tiny")), folder / "tiny.keras")
    _save(_wild_model(), folder / "wild.keras")
    _save(_lightness_model(), folder / "lightness.keras")
    return folder


@pytest.fixture(scope="module")
def wild(models_dir: Path) -> colorizer.Colorizer:
    return colorizer.Colorizer(models_dir / "wild.keras", render_size=64, batch_size=3)


def _photo(name: str = "bsds500-test_100007.jpg") -> np.ndarray:
    return np.asarray(Image.open(DEV_DIR / name).convert("RGB"))


def _odd_sizes() -> list[np.ndarray]:
    """The dev photo at 481x321, its top-left pixel, and squeezed to 4000x17."""
    photo = _photo()
    assert photo.shape == (321, 481, 3)
    long_thin = np.asarray(Image.fromarray(photo).resize((4000, 17), Image.Resampling.BILINEAR))
    return [photo, photo[:1, :1], long_thin]


def test_loads_a_generator_and_reads_its_stride(models_dir: Path) -> None:
    model = saved.load_generator(models_dir / "tiny.keras")
    assert saved.model_stride(model) == 8
    assert saved.model_stride(saved.load_generator(models_dir / "wild.keras")) == 4


def test_refuses_a_model_with_a_lambda_layer(tmp_path: Path) -> None:
    lightness = keras.Input((None, None, 1))
    ab = keras.layers.Lambda(lambda x: keras.ops.concatenate([x, x], axis=-1))(lightness)
    path = _save(keras.Model(lightness, ab), tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match="Lambda") as caught:
        saved.load_generator(path)
    assert caught.value.path == str(path)


@pytest.mark.parametrize(
    ("inputs", "channels"), [((None, None, 3), 2), ((None, None, 1), 4), ((64, 64, 1), 2)]
)
def test_refuses_the_wrong_input_or_output(
    tmp_path: Path, inputs: tuple[int | None, ...], channels: int
) -> None:
    x = keras.Input(inputs)
    path = _save(keras.Model(x, keras.layers.Conv2D(channels, 1)(x)), tmp_path / "m.keras")
    with pytest.raises(ModelError, match="not a colorize generator"):
        saved.load_generator(path)


def test_missing_damaged_and_default_models_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelError, match="not found"):
        saved.load_generator(tmp_path / "nope.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a loadable Keras model"):
        saved.load_generator(junk)
    monkeypatch.setattr(saved, "DEFAULT_MODEL_PATH", tmp_path / "weights" / "default.keras")
    with pytest.raises(ModelError, match="colorize train.*--model"):
        saved.load_generator(None)


def test_render_shape_sets_the_short_side_and_bounds_the_long_one() -> None:
    assert colorizer.render_shape(321, 481, 256) == (256, 384)
    assert colorizer.render_shape(481, 321, 256) == (384, 256)
    assert colorizer.render_shape(100, 150, 256) == (100, 150)  # never enlarged
    assert colorizer.render_shape(1, 1, 256) == (1, 1)
    assert colorizer.render_shape(17, 4000, 256) == (4, 1024)
    assert colorizer.render_shape(6000, 9000, 256) == (256, 384)


def test_any_size_in_same_size_out_with_the_gray_kept(wild: colorizer.Colorizer) -> None:
    photos = _odd_sizes()
    for image in [*photos, color.grayscale(photos[0])]:
        gray = image if image.ndim == 2 else color.grayscale(image)
        out = wild.colorize(image)
        assert out.shape == (*gray.shape, 3) and out.dtype == np.uint8
        diff = np.abs(color.grayscale(out).astype(int) - gray)
        assert diff.max() <= 1 and (diff == 0).mean() >= 0.999
        if gray.size > 1:
            assert color.colorfulness(out) > 20, "the predicted colour was lost"


def test_the_predicted_colour_lands_where_the_network_put_it(models_dir: Path) -> None:
    photo = _photo()
    out = colorizer.Colorizer(models_dir / "lightness.keras", render_size=64).colorize(photo)
    lab = color.srgb_to_lab(out)
    expected_a = 0.4 * color.gray_to_lightness(color.grayscale(photo)) - 20
    assert np.corrcoef(lab[..., 1].ravel(), expected_a.ravel())[0, 1] > 0.95
    assert np.abs(lab[..., 2]).mean() < 3


def test_an_rgb_generator_gives_its_colour_with_the_gray_kept(tmp_path: Path) -> None:
    lightness = keras.Input((None, None, 1))
    rgb = keras.layers.Conv2D(
        3,
        1,
        activation="sigmoid",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant([2.0, 0.0, -2.0]),  # orange
    )(lightness)
    path = _save(keras.Model(lightness, rgb), tmp_path / "orange.keras")
    photo = _photo("bsds500-test_100039.jpg")
    out = colorizer.Colorizer(path, render_size=96).colorize(photo)
    assert np.array_equal(color.grayscale(out), color.grayscale(photo))
    lab = color.srgb_to_lab(out)
    assert np.median(lab[..., 1]) > 10 and np.median(lab[..., 2]) > 20


def test_colorize_many_keeps_order_and_tags_and_matches_single_calls(
    wild: colorizer.Colorizer,
) -> None:
    photo = _photo()
    photos = [photo, photo[:200], photo.transpose(1, 0, 2), photo[:, :300], photo[5:]]
    results = list(wild.colorize_many((f"tag{i}", p) for i, p in enumerate(photos)))
    assert [tag for tag, _ in results] == [f"tag{i}" for i in range(len(photos))]
    for (_, out), p in zip(results, photos, strict=True):
        assert out.shape == p.shape
        assert np.abs(out.astype(int) - wild.colorize(p)).max() <= 1


def test_a_batch_counts_what_its_tags_hold_in_its_pixel_budget(
    wild: colorizer.Colorizer,
) -> None:
    """Photos are read `batch_size` at a time, but a tag holding a budget's worth of pixels
    besides its photo (a video frame's followers) runs the network before the next is read."""
    photo = _photo()
    read: list[int] = []

    def items():
        for i in range(6):
            read.append(i)
            yield i, photo

    def first_batch(**held) -> list[int]:
        read.clear()
        results = wild.chroma_many(items(), **held)
        next(results)
        return list(read)

    assert first_batch() == [0, 1, 2]  # batch_size 3
    huge = colorizer.BATCH_PIXEL_BUDGET
    assert first_batch(held=lambda tag: huge if tag == 1 else 0) == [0, 1]
    assert first_batch(held=lambda tag: huge) == [0]
    assert first_batch(held=lambda tag: huge // 2) == [0, 1]


def test_the_project_tiny_generator_runs_on_a_photo(models_dir: Path) -> None:
    tiny = colorizer.Colorizer(models_dir / "tiny.keras", render_size=128)
    photo = _photo("bsds500-test_100039.jpg")
    out = tiny.colorize(photo)
    assert out.shape == photo.shape
    assert np.array_equal(color.grayscale(out), color.grayscale(photo))
    assert tiny.network_seconds > 0


def test_refuses_arrays_that_are_not_photos(wild: colorizer.Colorizer) -> None:
    with pytest.raises(ValueError, match="uint8"):
        wild.colorize(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        wild.colorize(np.zeros((0, 4, 3), np.uint8))
