"""imaging/chroma.py: a photo's colour at full resolution from its gray and the render-size
a*b*, as sRGB (exact gray) or as a JPEG's own Y'CbCr, on real dev photos and the bundled model's
colour."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import DEV_DIR, dev_photos, recombine_per_pixel
from PIL import Image

from colorize_cli.imaging import chroma, color, metrics, writing
from colorize_cli.inference.colorizer import Colorizer


def _photo(name: str = "bsds500-test_100007.jpg") -> np.ndarray:
    return np.asarray(Image.open(DEV_DIR / name).convert("RGB"))


@pytest.fixture(scope="module")
def bundled() -> Colorizer:
    return Colorizer(None, backend="auto")


def _predicted(bundled: Colorizer, scale: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """(gray, a*b*) of four dev photos (enlarged `scale` times) and an odd-sided crop (partial
    cells at the edge)."""
    photos = [Image.open(p).convert("RGB") for p in dev_photos(4)]
    photos = [
        p.resize((p.width * scale, p.height * scale), Image.Resampling.BICUBIC) for p in photos
    ]
    arrays = [np.asarray(p) for p in photos]
    arrays.append(arrays[0][: 121 * scale, : 77 * scale])
    return [(gray, ab) for _, gray, ab in bundled.chroma_many(enumerate(arrays))]


def test_recombine_in_bands_on_threads_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    gray = color.grayscale(_photo())
    ab = np.random.default_rng(1).normal(0, 40, (40, 60, 2)).astype(np.float32)
    monkeypatch.setattr(chroma, "_BAND_PIXELS", gray.size)
    whole = chroma.recombine(gray, ab)
    monkeypatch.setattr(chroma, "_BAND_PIXELS", 5000)
    for threads in (1, 3):
        monkeypatch.setattr(chroma, "_THREADS", threads)
        banded = chroma.recombine(gray, ab)
        np.testing.assert_array_equal(color.grayscale(banded), gray)
        # A band's resampling weights differ from the whole's in the last float digit only.
        diff = np.abs(banded.astype(int) - whole)
        assert diff.max() <= 1 and (diff == 0).all(-1).mean() > 0.999


def test_tiles_cover_any_shape_once_and_stay_bounded() -> None:
    for height, width, pixels in [(7, 5, 12), (1, 50, 8), (3, 30, 8), (100, 1, 8), (1, 1, 8)]:
        covered = np.zeros((height, width), int)
        for rows, cols in chroma.tiles(height, width, pixels):
            covered[rows, cols] += 1
            assert (rows.stop - rows.start) * (cols.stop - cols.start) <= max(pixels, width)
            assert (cols.stop - cols.start) <= pixels
        assert (covered == 1).all()


def test_a_strip_wider_than_a_band_is_recombined_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """One row longer than a band (the 50,000,000 x 1 strip, scaled down) is cut into columns:
    the result equals the one-pass recombination, and the image form equals the array form."""
    gray = (np.arange(2 * 6000) % 251).astype(np.uint8).reshape(2, 6000)
    ab = np.random.default_rng(2).normal(0, 40, (1, 640, 2)).astype(np.float32)
    monkeypatch.setattr(chroma, "_BAND_PIXELS", gray.size)
    whole = chroma.recombine(gray, ab)
    monkeypatch.setattr(chroma, "_BAND_PIXELS", 1000)
    assert len(chroma.tiles(*gray.shape, 1000)) == 12
    pieces = chroma.recombine(gray, ab)
    np.testing.assert_array_equal(color.grayscale(pieces), gray)
    # A piece's weights differ in the last digit: on this strip 0.9989 of the pixels come out
    # equal (measured), so the bar is 0.998 here; the row bands above keep 0.999.
    diff = np.abs(pieces.astype(int) - whole)
    assert diff.max() <= 1 and (diff == 0).all(-1).mean() > 0.998
    np.testing.assert_array_equal(np.asarray(chroma.recombine_image(gray, ab)), pieces)


def test_recombine_agrees_with_the_per_pixel_path_on_real_photos(bundled: Colorizer) -> None:
    distances = []
    for gray, ab in _predicted(bundled):
        out = chroma.recombine(gray, ab)
        np.testing.assert_array_equal(color.grayscale(out), gray)
        reference = color.srgb_to_lab(recombine_per_pixel(gray, ab))
        distances.append(metrics.mean_ciede2000(color.srgb_to_lab(out), reference))
    # docs/benchmarks.md: 0.35 on average over the 71 validation photos, 0.67 at most.
    assert np.mean(distances) < 0.5 and max(distances) < 0.8, distances


def _decoded(image: Image.Image) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(writing.encode_image(image, "jpg"))).convert("RGB"))


def test_the_jpeg_form_agrees_with_the_srgb_form_on_real_photos(bundled: Colorizer) -> None:
    """Both written as JPEG q95 and decoded, on dev photos enlarged to 1.4 MP (the size where
    `output_image` takes the JPEG form): the Y'CbCr form's luma is as close to the gray as the
    sRGB form's (the encoder's error alone), its colour within the figure docs/benchmarks.md
    gives, and it is stored 4:2:0."""
    from PIL import JpegImagePlugin

    distances = []
    for gray, ab in _predicted(bundled, scale=3):
        image = chroma.recombine_jpeg(gray, ab)
        assert image.mode == "YCbCr" and image.size == gray.shape[::-1]
        np.testing.assert_array_equal(np.asarray(image)[..., 0], gray)  # Y is the gray itself
        new, old = _decoded(image), _decoded(chroma.recombine_image(gray, ab))
        new_error = np.abs(color.grayscale(new).astype(int) - gray).mean()
        old_error = np.abs(color.grayscale(old).astype(int) - gray).mean()
        assert new_error <= old_error + 0.05, (new_error, old_error)
        distances.append(metrics.mean_ciede2000(color.srgb_to_lab(new), color.srgb_to_lab(old)))
        stored = Image.open(io.BytesIO(writing.encode_image(image, "jpg")))
        assert JpegImagePlugin.get_sampling(stored) == 2  # 4:2:0
    # docs/benchmarks.md: 0.47 on average over the 71 validation photos so enlarged, 0.78 at most.
    assert np.mean(distances) < 0.6 and max(distances) < 0.9, distances


def test_every_pixel_of_the_jpeg_form_lies_inside_srgb_with_its_own_gray() -> None:
    """Strong chroma on a photo with black and white next to mid grays: each pixel, decoded by
    JPEG's own equations before any rounding of the encoder, is inside [0, 255] (to the half
    step of Cb, Cr's rounding), so its luma is its gray."""
    gray = color.grayscale(_photo())
    gray[::7, ::5] = 0
    gray[3::7, 2::5] = 255
    ab = np.random.default_rng(3).normal(0, 60, (40, 60, 2)).astype(np.float32)
    ycbcr = np.asarray(chroma.recombine_jpeg(gray, ab)).astype(np.float64)
    y, cb, cr = ycbcr[..., 0], ycbcr[..., 1] - 128, ycbcr[..., 2] - 128
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    assert rgb.min() > -1.2 and rgb.max() < 256.2, (rgb.min(), rgb.max())
    assert np.abs(cb).max() > 40  # the chroma was strong: the fit had work to do


def test_the_jpeg_form_in_tiles_on_threads_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Odd sides, bands of a few rows and a strip cut into pieces give the one-pass planes (to the
    last float digit of a tile's resampling weights)."""
    photo = color.grayscale(_photo())[:201, :333]
    strip = (np.arange(3 * 6001) % 251).astype(np.uint8).reshape(3, 6001)
    for gray, grid in ((photo, (40, 60)), (strip, (1, 640))):
        ab = np.random.default_rng(4).normal(0, 40, (*grid, 2)).astype(np.float32)
        monkeypatch.setattr(chroma, "_BAND_PIXELS", 4 * gray.size)
        whole = np.asarray(chroma.recombine_jpeg(gray, ab)).astype(int)
        monkeypatch.setattr(chroma, "_BAND_PIXELS", 4000)
        assert len(chroma.tiles((gray.shape[0] + 1) // 2, (gray.shape[1] + 1) // 2, 1000)) > 3
        for threads in (1, 3):
            monkeypatch.setattr(chroma, "_THREADS", threads)
            tiled = np.asarray(chroma.recombine_jpeg(gray, ab)).astype(int)
            np.testing.assert_array_equal(tiled[..., 0], gray)
            diff = np.abs(tiled - whole)
            assert diff.max() <= 1 and (diff == 0).mean() > 0.999


@pytest.mark.parametrize("shape", [(241, 321), (1, 300_001), (5, 140_001)])
def test_chroma_samples_in_tiles_equal_one_whole_plane(shape: tuple[int, int]) -> None:
    """Tiles of any shape (odd sides, a row cut into pieces) give the samples of one pass over
    the whole plane, with and without a video's matrix, to the resampling's float rounding."""
    rng = np.random.default_rng(0)
    level = rng.integers(0, 256, shape).astype(np.uint8)
    cb, cr = (rng.normal(0, 0.15, (7, 9)).astype(np.float32) for _ in range(2))
    whole_tile = (slice(0, shape[0]), slice(0, shape[1]))
    for matrix in (None, color.ycbcr_matrix_chroma(0.2126, 0.0722) * (224 / 255)):
        whole = chroma.chroma_samples(cb, cr, shape, whole_tile, level, matrix=matrix)
        tiled = [np.zeros(shape, np.uint8) for _ in range(2)]
        for rows, cols in chroma.tiles(*shape, chroma.SAMPLE_TILE_PIXELS):
            samples = chroma.chroma_samples(
                cb, cr, shape, (rows, cols), level[rows, cols], matrix=matrix
            )
            for plane, values in zip(tiled, samples, strict=True):
                plane[rows, cols] = values
        for got, expected in zip(tiled, whole, strict=True):
            difference = np.abs(got.astype(int) - expected)
            assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_output_image_takes_the_jpeg_form_for_large_photos_only() -> None:
    """The JPEG form for a JPEG at least four times its a*b* on each side, or one written 4:2:0
    anyway (quality under 90); sRGB otherwise (the 481x321 dev photos at render 160 keep 4:4:4)
    and for every other format."""
    gray = np.zeros((640, 960), np.uint8)
    coarse = np.zeros((160, 240, 2), np.float32)
    assert chroma.output_image(gray, coarse, "JPEG").mode == "YCbCr"
    assert chroma.output_image(gray[:639], coarse, "JPEG").mode == "RGB"
    assert chroma.output_image(gray[:639], coarse, "JPEG", quality=85).mode == "YCbCr"  # 4:2:0
    assert chroma.output_image(gray[:, :959], coarse, "JPEG").mode == "RGB"
    for other in ("PNG", "WEBP", "TIFF", "BMP"):
        assert chroma.output_image(gray, coarse, other).mode == "RGB"
    with pytest.raises(ValueError, match="YCbCr"):
        writing.encode_image(chroma.recombine_jpeg(gray, coarse), "png")
