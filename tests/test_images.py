"""Tests for colorize_cli.imaging.images: decoding policy, errors, atomic writes."""

from __future__ import annotations

import errno
import io
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, JpegImagePlugin

from colorize_cli.errors import ImageError
from colorize_cli.imaging import images, writing
from colorize_cli.imaging.headers import Header, HeaderCheck
from colorize_cli.imaging.images import read_image, read_image_bytes, read_image_with_info
from colorize_cli.imaging.writing import encode_image, write_image

DEV = Path(__file__).resolve().parents[2] / "shared/data/dev"


def dev_photos(tmp_path: Path, count: int) -> list[Path]:
    sources = sorted(DEV.glob("*.jpg"))[:count]
    assert len(sources) == count, f"dev photos missing under {DEV}"
    return [Path(shutil.copy(source, tmp_path / source.name)) for source in sources]


def save(tmp_path: Path, name: str, im: Image.Image, **options: object) -> Path:
    path = tmp_path / name
    im.save(path, **options)
    return path


def reason(excinfo: pytest.ExceptionInfo[ImageError]) -> str:
    return excinfo.value.reason


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def icc_profile(gamma: float) -> bytes:
    """A minimal ICC v2 RGB matrix/TRC profile: sRGB primaries with a pure power-law curve."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))

    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))
    text = b"test RGB gamma %.1f\x00" % gamma
    tags = [
        (b"desc", b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(78)),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += struct.pack(">4sII", signature, start + len(body), len(data))
        body += data
    header = struct.pack(
        ">I4sI4s4s4s12s4s28s3i48s",
        *(start + len(body), b"lcms", 0x02100000, b"mntr", b"RGB ", b"XYZ ", bytes(12)),
        *(b"acsp", bytes(28), 63190, 65536, 54061, bytes(48)),  # D50 illuminant
    )
    return header + table + body


# --- reading ---------------------------------------------------------------------------------


def test_dev_photos_match_plain_pil_decode(tmp_path: Path) -> None:
    for path in dev_photos(tmp_path, 4):
        rgb, info = read_image_with_info(path)
        with Image.open(path) as im:
            expected = np.array(im.convert("RGB"))
        assert rgb.dtype == np.uint8 and rgb.flags.writeable
        assert rgb.shape == expected.shape == (info.size[1], info.size[0], 3)
        np.testing.assert_array_equal(rgb, expected)
        assert info.format == "JPEG" and info.mode == "RGB"


def test_read_image_bytes_matches_file(tmp_path: Path) -> None:
    (path,) = dev_photos(tmp_path, 1)
    np.testing.assert_array_equal(read_image_bytes(path.read_bytes()), read_image(path))
    with pytest.raises(ImageError) as excinfo:
        read_image_bytes(b"hello", name="<stdin>")
    assert excinfo.value.path == "<stdin>" and "not an image file" in reason(excinfo)


def test_truncated_jpeg_is_an_error(tmp_path: Path) -> None:
    (path,) = dev_photos(tmp_path, 1)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageError) as excinfo:
        read_image(cut)
    assert excinfo.value.path == str(cut)
    assert reason(excinfo).startswith("truncated or corrupt image data")
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "file is empty"), (b"just some notes\n", "not an image file")],
)
def test_empty_and_text_files_named_jpg(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert expected in reason(excinfo) and excinfo.value.path == str(path)


def test_filesystem_errors_are_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)
    if os.geteuid() != 0:  # root reads anything
        locked = save(tmp_path, "locked.png", Image.new("RGB", (2, 2)))
        locked.chmod(0)
        with pytest.raises(ImageError, match="permission denied"):
            read_image(locked)


def test_16_bit_greys_are_scaled_and_rounded_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 1000, 32768, 65535]], dtype=np.uint16)
    expected = np.array([0, 1, 4, 128, 255], dtype=np.uint8)
    little = save(tmp_path, "grey16.png", Image.fromarray(values))
    big = save(tmp_path, "grey16b.tif", Image.fromarray(values.astype(">u2")))
    for path, mode in [(little, "I;16"), (big, "I;16B")]:
        rgb, info = read_image_with_info(path)
        assert info.mode == mode
        for channel in range(3):
            np.testing.assert_array_equal(rgb[0, :, channel], expected)


def test_32_bit_int_and_float_greys(tmp_path: Path) -> None:
    ints = np.array([[-5, 32768, 65535, 70000]], dtype=np.int32)
    path = save(tmp_path, "int32.tif", Image.fromarray(ints))
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [0, 128, 255, 255])
    floats = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, np.nan]], dtype=np.float32)
    path = save(tmp_path, "float.tif", Image.fromarray(floats))
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [0, 128, 255, 255, 0, 0])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = save(tmp_path, "cmyk.jpg", Image.new("CMYK", (16, 16), (255, 0, 0, 0)), quality=95)
    rgb, info = read_image_with_info(path)
    assert info.mode == "CMYK" and rgb.shape == (16, 16, 3)
    assert np.abs(rgb.astype(int) - [0, 255, 255]).max() <= 3  # cyan


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255])
    palette.putdata([0, 1])
    path = save(tmp_path, "palette.png", palette, transparency=0)
    np.testing.assert_array_equal(read_image(path)[0], [[255, 255, 255], [0, 0, 255]])

    grey_alpha = Image.new("LA", (3, 1))
    grey_alpha.putdata([(0, 0), (0, 255), (0, 128)])
    path = save(tmp_path, "la.png", grey_alpha)
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [255, 0, 127])

    rgba = Image.new("RGBA", (1, 1), (255, 0, 0, 128))
    path = save(tmp_path, "rgba.png", rgba)
    np.testing.assert_array_equal(read_image(path)[0, 0], [255, 127, 127])


@pytest.mark.parametrize(("orientation", "top", "bottom"), [(6, "red", "blue"), (8, "blue", "red")])
def test_exif_orientation_is_applied(
    tmp_path: Path, orientation: int, top: str, bottom: str
) -> None:
    stored = Image.new("RGB", (40, 20), "red")
    stored.paste(Image.new("RGB", (20, 20), "blue"), (20, 0))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    path = save(tmp_path, "rotated.jpg", stored, exif=exif.tobytes(), quality=95)
    rgb, info = read_image_with_info(path)
    assert rgb.shape == (40, 20, 3) and info.size == (40, 20)
    colours = {"red": [255, 0, 0], "blue": [0, 0, 255]}
    assert np.abs(rgb[5, 10].astype(int) - colours[top]).max() <= 8
    assert np.abs(rgb[35, 10].astype(int) - colours[bottom]).max() <= 8
    kept = Image.Exif()
    kept.load(info.exif)
    assert kept[0x0112] == 1 and kept[0x010F] == "TestCam"


def test_unreadable_exif_is_dropped_not_fatal(tmp_path: Path) -> None:
    path = save(tmp_path, "badexif.jpg", Image.new("RGB", (8, 4)), exif=b"Exif\0\0garbage!")
    rgb, info = read_image_with_info(path)
    assert rgb.shape == (4, 8, 3) and info.exif is None


def test_tiny_and_extreme_aspect_images(tmp_path: Path) -> None:
    assert read_image(save(tmp_path, "one.png", Image.new("RGB", (1, 1), (1, 2, 3)))).tolist() == [
        [[1, 2, 3]]
    ]
    assert read_image(save(tmp_path, "long.png", Image.new("L", (20000, 10), 77))).shape == (
        10,
        20000,
        3,
    )


def test_first_frame_of_an_animated_gif(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "lime", "blue")]
    path = save(tmp_path, "anim.gif", frames[0], save_all=True, append_images=frames[1:])
    assert read_image(path)[0, 0].tolist() == [255, 0, 0]


def test_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.perf_counter()
    with pytest.raises(ImageError) as excinfo:
        read_image(bomb)
    assert time.perf_counter() - started < 1.0
    assert reason(excinfo) == (
        "image is 30000x30000 = 900 megapixels, over the 200 megapixel limit (--max-pixels)"
    )


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = save(tmp_path, "small.png", Image.new("RGB", (100, 100)))
    with pytest.raises(ImageError, match="over the 0.005 megapixel limit"):
        read_image(path, max_pixels=5000)
    assert read_image(path, max_pixels=10_000).shape == (100, 100, 3)
    assert read_image(path, max_pixels=None).shape == (100, 100, 3)


@pytest.mark.parametrize("chunk", [b"IHDR", b"IDAT"])
def test_png_crc_errors(tmp_path: Path, chunk: bytes) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(chunk)
    length = struct.unpack(">I", data[start - 4 : start])[0]
    data[start + 4 + length] ^= 0xFF  # first CRC byte
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as excinfo:
        read_image(path)
    assert (
        reason(excinfo)
        == f"truncated or corrupt image data (bad CRC in PNG chunk {chunk.decode()})"
    )


def test_icc_profiles(tmp_path: Path) -> None:
    grey = Image.new("RGB", (4, 4), (128, 128, 128))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb, info = read_image_with_info(save(tmp_path, "srgb.png", grey, icc_profile=srgb))
    assert info.icc_converted and (rgb == 128).all()

    # Linear light 0.502 is sRGB-encoded 0.735 -> 188.
    rgb, info = read_image_with_info(save(tmp_path, "lin.png", grey, icc_profile=icc_profile(1.0)))
    assert info.icc_converted and info.icc_error is None
    assert np.abs(rgb.astype(int) - 188).max() <= 1

    rgb, info = read_image_with_info(save(tmp_path, "broken.png", grey, icc_profile=b"junk" * 40))
    assert not info.icc_converted and "ICC profile ignored" in (info.icc_error or "")
    assert (rgb == 128).all()

    grey_l = Image.new("L", (4, 4), 128)
    rgb, info = read_image_with_info(save(tmp_path, "l.png", grey_l, icc_profile=icc_profile(1.0)))
    assert not info.icc_converted and "not L" in (info.icc_error or "") and (rgb == 128).all()


def test_no_file_handles_left_open(tmp_path: Path) -> None:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc")
    good = save(tmp_path, "good.png", Image.new("RGB", (4, 4)))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    before = len(list(fd_dir.iterdir()))
    for _ in range(5):
        read_image(good)
        with pytest.raises(ImageError):
            read_image(bad)
    assert len(list(fd_dir.iterdir())) == before


# --- writing ---------------------------------------------------------------------------------


def test_write_round_trips_and_jpeg_keeps_full_chroma(tmp_path: Path) -> None:
    (photo,) = dev_photos(tmp_path, 1)
    rgb = read_image(photo)
    for suffix in (".png", ".tif", ".bmp"):
        write_image(tmp_path / f"out{suffix}", rgb)
        np.testing.assert_array_equal(read_image(tmp_path / f"out{suffix}"), rgb)
    write_image(tmp_path / "high.jpg", rgb, quality=95)
    write_image(tmp_path / "low.jpeg", rgb, quality=75)
    with Image.open(tmp_path / "high.jpg") as high, Image.open(tmp_path / "low.jpeg") as low:
        assert JpegImagePlugin.get_sampling(high) == 0  # 4:4:4
        assert JpegImagePlugin.get_sampling(low) == 2  # 4:2:0
    assert np.abs(read_image(tmp_path / "high.jpg").astype(int) - rgb).mean() < 3
    webp = encode_image(rgb, "webp", quality=90)
    assert read_image_bytes(webp).shape == rgb.shape


def test_write_keeps_exif(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    rgb = np.zeros((4, 4, 3), np.uint8)
    for name in ("e.jpg", "e.png", "e.webp"):
        write_image(tmp_path / name, rgb, exif=exif.tobytes())
        _, info = read_image_with_info(tmp_path / name)
        assert info.exif is not None and b"TestCam" in info.exif


def test_write_refuses_unknown_formats(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ImageError, match="cannot write image format '.xyz'"):
        write_image(tmp_path / "out.xyz", rgb)
    write_image(tmp_path / "out.xyz", rgb, format="png")
    assert read_image(tmp_path / "out.xyz").shape == (2, 2, 3)
    with pytest.raises(ImageError, match="no such directory"):
        write_image(tmp_path / "missing" / "out.png", rgb)
    with pytest.raises(ValueError, match="uint8"):
        encode_image(rgb.astype(np.float32), "png")


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writing.fsutil.os, "fsync", disk_full)
    with pytest.raises(ImageError) as excinfo:
        write_image(target, np.zeros((8, 8, 3), np.uint8))
    assert excinfo.value.path == str(target) and reason(excinfo) == "cannot write: disk full"
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_read_gray_equals_the_grayscale_of_the_photo_whatever_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`read_gray_with_info` (apply reads photos this way: a plain photo whole, any other or a
    large one tile by tile) gives exactly `grayscale(read_image(...))`: real photos, gray with a
    transparent level, alpha, 16-bit, CMYK, a profile, an orientation, a strip longer than a
    tile; plain photos through the tiles too."""
    from colorize_cli.imaging import color

    stored = Image.new("RGB", (40, 20), "red")
    stored.paste(Image.new("RGB", (20, 20), "blue"), (20, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    strip = np.arange(3_000_000, dtype=np.uint32).reshape(1, -1) % 251
    paths = [*sorted(DEV.glob("*.jpg"))[:3]]
    paths += [
        save(tmp_path, "rgba.png", Image.new("RGBA", (5, 3), (255, 0, 0, 128))),
        save(tmp_path, "cmyk.jpg", Image.new("CMYK", (16, 16), (255, 0, 90, 0)), quality=95),
        save(
            tmp_path,
            "lin.png",
            Image.new("RGB", (4, 4), (200, 60, 9)),
            icc_profile=icc_profile(1.0),
        ),
        save(tmp_path, "deep.png", Image.fromarray(np.full((3, 4), 40000, np.uint16))),
        save(tmp_path, "turned.jpg", stored, exif=exif.tobytes(), quality=95),
        save(tmp_path, "strip.png", Image.fromarray(strip.astype(np.uint8))),
        save(tmp_path, "gray.png", Image.fromarray(strip.astype(np.uint8).reshape(1000, -1))),
        save(tmp_path, "clear.png", Image.new("L", (6, 4), 30), transparency=30),
    ]
    for whole in (images._WHOLE_GRAY_PIXELS, 0):
        monkeypatch.setattr(images, "_WHOLE_GRAY_PIXELS", whole)
        for path in paths:
            rgb, info = read_image_with_info(path)
            gray, gray_info = images.read_gray_with_info(path)
            np.testing.assert_array_equal(gray, color.grayscale(rgb), err_msg=path.name)
            assert gray_info == info and gray.flags.writeable
            assert images.read_gray_with_info(path.read_bytes(), name="-")[0].shape == gray.shape


def test_photos_too_large_for_their_format_are_refused_by_size(tmp_path: Path) -> None:
    writing.check_writable((65500, 10), "jpg")
    writing.check_writable((16383, 3), "webp")
    with pytest.raises(ImageError, match="at most 65,500 pixels a side: choose --format png"):
        writing.check_writable((10, 65501), "jpg")
    with pytest.raises(ImageError, match="16,383 pixels a side"):
        writing.check_writable((16384, 3, 3), "WEBP")
    with pytest.raises(ImageError, match="rows of at most 89,478,478 pixels"):
        writing.check_writable((1, 100_000_000), "png")
    with pytest.raises(ImageError, match="65,500 pixels a side"):
        encode_image(np.zeros((1, 65501, 3), np.uint8), "jpg")
    writing.check_any_writable([(1, 100_000_000), (100_000_000, 1)], "png")
    with pytest.raises(ImageError, match="^70000x1 is too large to write as JPEG"):
        writing.check_any_writable([(1, 70000), (70000, 1)], "jpg")


def exif_chunk(orientation: int) -> bytes:
    """A PNG eXIf chunk carrying `orientation`."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return png_chunk(b"eXIf", exif.tobytes()[len(b"Exif\0\0") :])


def png_file(width: int, height: int, before: bytes = b"", after: bytes = b"") -> bytes:
    """A gray PNG that says it is `width` x `height`, with chunks `before` or `after` its pixel
    data; the data is empty: it can be refused from its header, never decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + before
        + png_chunk(b"IDAT", zlib.compress(b""))
        + after
        + png_chunk(b"IEND", b"")
    )


class Decoded(Exception):
    """Raised instead of decoding pixels: the photo got past its header."""


def test_photos_too_large_to_write_are_refused_from_their_header_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A side too long for the format is refused whatever the orientation; a row too wide only
    where the orientation is known before decoding (metadata after a PNG's pixels may turn it)."""

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise Decoded

    def writable_as(pil_format: str) -> HeaderCheck:
        return lambda header: writing.check_any_writable(header.shapes(), pil_format)

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    refused = [
        (png_file(70000, 1), "jpg", "70000x1 is too large to write as JPEG"),
        (png_file(1, 70000, after=exif_chunk(6)), "jpg", "1x70000 is too large to write as JPEG"),
        (png_file(100_000_000, 1), "png", "100000000x1 is too wide to write"),
        (png_file(1, 100_000_000, exif_chunk(6)), "png", "100000000x1 is too wide to write"),
    ]
    for data, pil_format, message in refused:
        with pytest.raises(ImageError) as excinfo:
            images.read_gray_with_info(data, name="in", check_header=writable_as(pil_format))
        assert excinfo.value.path == "in" and reason(excinfo).startswith(message)
    decoded = [
        png_file(100_000_000, 1, after=exif_chunk(6)),  # only decoding tells: maybe 1 wide
        png_file(100_000_000, 1, exif_chunk(6)),  # turned: 1 wide
        png_file(1, 100_000_000),
    ]
    for data in decoded:
        with pytest.raises(Decoded):
            images.read_gray_with_info(data, check_header=writable_as("png"))


def test_a_failing_header_check_is_not_reported_as_a_damaged_photo() -> None:
    """A check's own bug propagates as itself; an ImageError it raises names the photo."""

    def broken(header: Header) -> None:
        raise ValueError("a bug in the check")

    def refusing(header: Header) -> None:
        raise ImageError("too wide")

    data = png_file(1, 1)
    with pytest.raises(ValueError, match="a bug in the check"):
        images.read_gray_with_info(data, name="in", check_header=broken)
    with pytest.raises(ImageError) as excinfo:
        images.read_gray_with_info(data, name="in", check_header=refusing)
    assert (excinfo.value.path, reason(excinfo)) == ("in", "too wide")


def test_the_header_tells_the_orientation_when_decoding_would_not_change_it(
    tmp_path: Path,
) -> None:
    """What the header check is told, and a photo read with it is the photo read without it."""
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    exif = Image.Exif()
    exif[0x0112] = 6
    plain = io.BytesIO()
    Image.fromarray(pixels).save(plain, "PNG")
    late = plain.getvalue()[:-12] + exif_chunk(6) + plain.getvalue()[-12:]
    photo = Image.fromarray(pixels)
    paths = {
        save(tmp_path, "plain.png", photo): False,
        save(tmp_path, "turned.png", photo, exif=exif.tobytes()): True,
        save(tmp_path, "turned.jpg", photo, exif=exif.tobytes()): True,
        tmp_path / "late.png": None,
        save(tmp_path, "plain.tif", photo): False,
        # Pillow turns a TIFF as it decodes it: turned or not, by the compression.
        save(tmp_path, "turned.tif", photo, exif=exif.tobytes()): None,
        save(tmp_path, "z.tif", photo, exif=exif.tobytes(), compression="tiff_deflate"): None,
    }
    (tmp_path / "late.png").write_bytes(late)
    for path, turned in paths.items():
        headers: list[Header] = []
        gray, info = images.read_gray_with_info(path, check_header=headers.append)
        (header,) = headers
        assert header == Header(info.format, info.size, turned), path.name
        assert gray.shape in header.shapes(), path.name  # the one shape, once `turned` is known
        expected, expected_info = images.read_gray_with_info(path)
        np.testing.assert_array_equal(gray, expected, err_msg=path.name)
        assert info == expected_info


def test_write_takes_a_pil_image_and_encodes_straight_into_the_file(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (9, 13, 3), np.uint8)
    for name in ("a.png", "a.tif", "a.bmp"):
        write_image(tmp_path / name, Image.fromarray(pixels))
        np.testing.assert_array_equal(read_image(tmp_path / name), pixels)
    assert encode_image(Image.fromarray(pixels), "png") == encode_image(pixels, "png")
    with pytest.raises(ValueError, match="'RGB' image"):
        encode_image(Image.fromarray(pixels[..., 0]), "png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bmp", "a.png", "a.tif"]


def test_a_full_disk_while_encoding_is_a_write_error_in_every_format(tmp_path: Path) -> None:
    """The file size limit (as a full disk) hits while Pillow encodes: each format says "cannot
    write" with the system's reason, never an encoder's number, and leaves nothing behind."""
    import subprocess
    import sys

    code = (
        "import resource, signal, sys, numpy as np\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from colorize_cli.errors import ImageError\n"
        "from colorize_cli.imaging import writing\n"
        "rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)\n"
        "for ext in ('png', 'jpg', 'webp', 'tif', 'bmp'):\n"
        "    try:\n"
        "        writing.write_image(f'{sys.argv[1]}/x.{ext}', rgb)\n"
        "        print(ext, 'written')\n"
        "    except ImageError as exc:\n"
        "        print(ext, exc.reason)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"{ext} cannot write: file too large (over the file size limit)"
        for ext in ("png", "jpg", "webp", "tif", "bmp")
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_stopped_write_leaves_nothing(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(ImageError, match="interrupted"):
        write_image(tmp_path / "x.jpg", np.zeros((64, 64, 3), np.uint8), stop=stop)
    assert list(tmp_path.iterdir()) == []
