"""The bad-input corpus (issue 7), made by code rather than checked in, and what the photo reader
says about each case. `test_robust_inputs.py` runs the commands over the same corpus.

Every case is a file (or a path) under one folder, with the outcome every command must give it:
`PROCESSED`, or skipped with a reason containing the given words.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorize_cli.errors import ImageError
from colorize_cli.imaging import images
from colorize_cli.imaging.inputs import expand_inputs

DEV = Path(__file__).resolve().parents[2] / "shared/data/dev"
PROCESSED = "processed"
NOT_AN_IMAGE = "not an image file"
CORRUPT = "truncated or corrupt image data"
# Names with spaces, a newline and a byte that is not UTF-8 (kept by Python as a surrogate).
ODD_NAME = os.fsdecode(b"odd name\n\xff photo.jpg")
ODD_BAD_NAME = os.fsdecode(b"odd\tbroken\n\xfe photo.png")


@dataclass(frozen=True)
class Case:
    """One corpus entry: its file name, how to make it, and the expected outcome."""

    name: str
    make: Callable[[Path], None] | None  # None: the path is given but never created
    outcome: str  # PROCESSED, or words the one-line skip reason contains
    what: str  # for docs/robustness.md
    found: bool = False  # the outcome is decided while finding the inputs, before any reading


def dev_photo(index: int) -> Path:
    photos = sorted(DEV.glob("*.jpg"))
    if len(photos) <= index:
        pytest.skip(f"needs the dev photos in {DEV}")
    return photos[index]


def small_photo(index: int, width: int = 64, height: int = 48) -> Image.Image:
    """A real dev photo shrunk (a few photos per test keep the commands fast)."""
    with Image.open(dev_photo(index)) as im:
        return im.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)


def encode(im: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def _bytes(data: Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data())


def _jpeg() -> bytes:
    return encode(small_photo(1), "JPEG", quality=90)


def _png() -> bytes:
    return encode(small_photo(2), "PNG")


def _half(data: Callable[[], bytes]) -> Callable[[], bytes]:
    return lambda: data()[: len(data()) // 2]


def bad_huffman_jpeg() -> bytes:
    """A JPEG whose first Huffman table claims more codes than 16 bit lengths can hold."""
    data = bytearray(_jpeg())
    table = data.index(b"\xff\xc4")
    data[table + 5 : table + 21] = b"\xff" * 16  # the 16 code-length counts
    return bytes(data)


def bad_crc_png() -> bytes:
    data = bytearray(_png())
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    data[start + 4 + length] ^= 0xFF
    return bytes(data)


def bomb_png(side: int = 100_000) -> bytes:
    """A PNG that declares side x side RGB pixels in a few hundred bytes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + png_chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [small_photo(3), small_photo(4), small_photo(5)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def multipage_tiff() -> bytes:
    pages = [small_photo(6), small_photo(7).convert("L")]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def grey16_tiff() -> bytes:
    grey = np.asarray(small_photo(8).convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "TIFF")


def float_tiff() -> bytes:
    grey = np.asarray(small_photo(9).convert("L"), dtype=np.float32) / 255
    return encode(Image.fromarray(grey), "TIFF")


def cmyk_jpeg() -> bytes:
    return encode(small_photo(10).convert("CMYK"), "JPEG", quality=95)


def ycck_jpeg(cmyk: Image.Image | None = None) -> bytes:
    """A 4-channel JPEG with Adobe transform 2 (YCCK), as Photoshop writes for CMYK.

    Pillow writes CMYK only, so the planes are turned into YCCK by hand (libjpeg's formulas on
    Adobe's inverted CMYK) and the APP14 transform flag is set; decoders give `cmyk` back.
    """
    cmyk = cmyk or small_photo(11).convert("CMYK")
    c, m, y, k = np.moveaxis(np.asarray(cmyk, dtype=np.float64), -1, 0)
    luma = 0.299 * c + 0.587 * m + 0.114 * y
    blue = 128 - 0.168736 * c - 0.331264 * m + 0.5 * y
    red = 128 + 0.5 * c - 0.418688 * m - 0.081312 * y
    planes = np.stack([255 - luma, 255 - blue, 255 - red, k], axis=-1)
    stored = Image.fromarray(np.clip(np.rint(planes), 0, 255).astype(np.uint8), "CMYK")
    data = bytearray(encode(stored, "JPEG", quality=100, subsampling=0))
    adobe = data.index(b"Adobe")
    data[adobe + 11] = 2  # the transform byte, after "Adobe", version and two flag words
    return bytes(data)


def grey_alpha_png() -> bytes:
    grey = small_photo(12).convert("L")
    alpha = Image.linear_gradient("L").resize(grey.size)
    return encode(Image.merge("LA", (grey, alpha)), "PNG")


def palette_alpha_png() -> bytes:
    palette = small_photo(13).quantize(64)
    return encode(palette, "PNG", transparency=0)


def one_pixel_png() -> bytes:
    return encode(small_photo(14, 1, 1), "PNG")


def thin_png() -> bytes:
    column = np.asarray(small_photo(15, 1, 300))
    return encode(Image.fromarray(np.repeat(column, 100, axis=0)), "PNG")  # 1 x 30000


def _copy(index: int) -> Callable[[Path], None]:
    return lambda path: shutil.copy(dev_photo(index), path)


def _symlink_loop(path: Path) -> None:
    path.mkdir()
    (path / "again").symlink_to("..", target_is_directory=True)
    (path / "inner.png").write_bytes(encode(small_photo(17), "PNG"))


def _locked(path: Path) -> None:
    path.write_bytes(_jpeg())
    path.chmod(0)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dangling(path: Path) -> None:
    path.symlink_to(path.with_name("nowhere.jpg"))


def _self_link(path: Path) -> None:
    path.symlink_to(path.name)


CASES = (
    Case("empty.jpg", _bytes(lambda: b""), "file is empty", "empty file"),
    Case("notes.jpg", _bytes(lambda: b"shopping list\nmilk\n"), NOT_AN_IMAGE, "text bytes"),
    Case(
        "report.png",
        _bytes(lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"),
        NOT_AN_IMAGE,
        "PDF bytes",
    ),
    Case(
        "page.jpeg",
        _bytes(lambda: b"<!DOCTYPE html><html><body><img src=x.jpg></body></html>\n"),
        NOT_AN_IMAGE,
        "HTML bytes",
    ),
    Case("truncated.jpg", _bytes(_half(_jpeg)), CORRUPT, "JPEG cut in half"),
    Case("half.png", _bytes(_half(_png)), CORRUPT, "PNG cut in half"),
    Case("bad-huffman.jpg", _bytes(bad_huffman_jpeg), CORRUPT, "JPEG with a corrupt Huffman table"),
    Case("bad-crc.png", _bytes(bad_crc_png), "bad CRC in PNG chunk IDAT", "PNG with a bad CRC"),
    Case(
        "bomb.png",
        _bytes(bomb_png),
        "100000x100000 = 10000 megapixels, over the 200 megapixel limit",
        "PNG declaring 100000 x 100000 pixels",
    ),
    Case("animation.gif", _bytes(animated_gif), PROCESSED, "GIF animation (first frame)"),
    Case("pages.tif", _bytes(multipage_tiff), PROCESSED, "multi-page TIFF (first page)"),
    Case("grey16.tif", _bytes(grey16_tiff), PROCESSED, "16-bit grey TIFF"),
    Case("float.tif", _bytes(float_tiff), PROCESSED, "32-bit float grey TIFF"),
    Case("cmyk.jpg", _bytes(cmyk_jpeg), PROCESSED, "CMYK JPEG"),
    Case("ycck.jpg", _bytes(ycck_jpeg), PROCESSED, "YCCK JPEG (Adobe transform 2)"),
    Case("grey-alpha.png", _bytes(grey_alpha_png), PROCESSED, "LA PNG (over white)"),
    Case("palette-alpha.png", _bytes(palette_alpha_png), PROCESSED, "P PNG with transparency"),
    Case("colour.jpg", _copy(16), PROCESSED, "an already-colour photo (full size)"),
    Case("one-pixel.png", _bytes(one_pixel_png), PROCESSED, "1 x 1 image"),
    Case("thin.png", _bytes(thin_png), PROCESSED, "1 x 30000 image"),
    Case(ODD_NAME, _copy(18), PROCESSED, "name with spaces, a newline and a non-UTF-8 byte"),
    Case(ODD_BAD_NAME, _bytes(lambda: b"not a photo"), NOT_AN_IMAGE, "text under an odd name"),
    Case("loop", _symlink_loop, PROCESSED, "directory symlink loop (photo inside read once)"),
    Case("locked.jpg", _locked, "permission denied", "unreadable file (mode 000)"),
    Case("pipe.jpg", _fifo, "not a regular file", "named pipe (FIFO) among photos", True),
    Case("dangling.jpg", _dangling, "broken symbolic link", "symlink to nowhere", True),
    Case("self-link.jpg", _self_link, "symbolic links", "symlink to itself", True),
    Case("missing.jpg", None, "no such file or directory", "a path that does not exist", True),
)

# Where each case's photo lies once made (the symlink loop is a folder holding one photo).
PHOTO_OF = {"loop": "loop/inner.png"}


def make_corpus(folder: Path) -> Path:
    """Create every case under `folder` (created); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        if case.make is not None:
            case.make(folder / case.name)
    return folder


def permissions_enforced(path: Path) -> bool:
    """False when this process reads a mode-000 file anyway (root, some containers)."""
    try:
        path.read_bytes()
    except PermissionError:
        return True
    return False


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def skip_unless_meaningful(case: Case, corpus: Path) -> None:
    if case.name == "locked.jpg" and not permissions_enforced(corpus / case.name):
        pytest.skip("runs as a user (root) who reads mode-000 files: nothing to refuse")


@pytest.mark.parametrize("case", [c for c in CASES if not c.found], ids=lambda case: case.what)
def test_the_reader_gives_each_case_its_outcome(case: Case, corpus: Path) -> None:
    skip_unless_meaningful(case, corpus)
    path = corpus / PHOTO_OF.get(case.name, case.name)
    if case.outcome == PROCESSED:
        rgb = images.read_image(path)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        return
    with pytest.raises(ImageError) as caught:
        images.read_image(path)
    assert case.outcome in caught.value.reason
    assert caught.value.path == str(path) and "\n" not in caught.value.reason


def test_ycck_decodes_to_the_cmyk_it_was_made_from() -> None:
    cmyk = small_photo(11).convert("CMYK")
    ycck, info = images.read_image_with_info(ycck_jpeg(cmyk))
    reference = images.read_image_bytes(encode(cmyk, "JPEG", quality=100, subsampling=0))
    assert info.mode == "CMYK"
    assert np.abs(ycck.astype(int) - reference).max() <= 6


def test_sixteen_bit_and_float_tiffs_keep_the_grey_of_the_photo(corpus: Path) -> None:
    grey = np.asarray(small_photo(8).convert("L"))
    np.testing.assert_array_equal(images.read_image(corpus / "grey16.tif")[..., 0], grey)
    grey = np.asarray(small_photo(9).convert("L"))
    np.testing.assert_array_equal(images.read_image(corpus / "float.tif")[..., 0], grey)


def test_finding_photos_terminates_lists_each_once_and_reads_no_pipe(corpus: Path) -> None:
    missing = str(corpus / "missing.jpg")
    paths, problems = expand_inputs([str(corpus), missing])
    names = [str(p.relative_to(corpus)) for p in paths]
    assert names.count("loop/inner.png") == 1 and not any("again" in n for n in names)
    assert ODD_NAME in names
    reasons = dict(problems)
    for case in CASES:
        if case.found:
            assert case.name not in names
            assert case.outcome in reasons[str(corpus / case.name)]
    assert len(problems) == sum(case.found for case in CASES)
    # A glob takes the same care as a folder walk.
    paths, problems = expand_inputs([str(corpus / "*.jpg")])
    assert {p.name for p in paths} >= {"colour.jpg", "notes.jpg"}
    assert {Path(source).name for source, _ in problems} == {
        "pipe.jpg",
        "dangling.jpg",
        "self-link.jpg",
    }
