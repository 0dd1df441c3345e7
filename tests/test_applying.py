"""The apply file loop on real photos: output names, skips, never overwriting inputs, per-file
errors, EXIF carried over, stdin-to-stdout bytes."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image, ImageFile

from colorize_cli.errors import ColorizeError, ModelError, UsageError
from colorize_cli.imaging import color
from colorize_cli.inference import applying, planning
from colorize_cli.inference.applying import ApplyOptions
from colorize_cli.inference.colorizer import Colorizer

ARTIST = 0x013B


@pytest.fixture(scope="module")
def loaded(tiny_model: Path) -> Colorizer:
    return Colorizer(tiny_model, render_size=64, batch_size=2)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Three dev photos, one in a subfolder and one carrying EXIF."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    first, second, third = dev_photos(3)
    shutil.copy(first, folder / "a.jpg")
    shutil.copy(second, folder / "sub" / "b.jpg")
    exif = Image.Exif()
    exif[ARTIST] = "colorize test"
    Image.open(third).save(folder / "c.jpg", quality=95, exif=exif.tobytes())
    return folder


def run(options: ApplyOptions, loaded: Colorizer) -> list[planning.Outcome]:
    return list(applying.apply(options, colorizer=loaded))


def test_default_outputs_sit_beside_their_photos(photos: Path, loaded: Colorizer) -> None:
    outcomes = run(ApplyOptions([str(photos)], format="png"), loaded)
    assert sorted(o.output.name for o in outcomes if o.status == "written") == [
        "a.color.png",
        "b.color.png",
        "c.color.png",
    ]
    for source in ("a", "sub/b", "c"):
        original = np.asarray(Image.open(photos / f"{source}.jpg").convert("RGB"))
        written = np.asarray(Image.open(photos / f"{source}.color.png"))
        assert written.shape == original.shape
        assert np.array_equal(color.grayscale(written), color.grayscale(original))


def test_photos_in_formats_we_cannot_write_become_png(
    photos: Path, loaded: Colorizer, tmp_path: Path
) -> None:
    Image.open(photos / "a.jpg").convert("P").save(photos / "d.gif")
    (beside,) = run(ApplyOptions([str(photos / "d.gif")]), loaded)
    (into,) = run(ApplyOptions([str(photos / "d.gif")], out_dir=tmp_path / "out"), loaded)
    assert (beside.output, into.output) == (photos / "d.color.png", tmp_path / "out" / "d.png")
    assert Image.open(into.output).format == "PNG"


def test_exif_is_carried_over(photos: Path, loaded: Colorizer) -> None:
    run(ApplyOptions([str(photos / "c.jpg")]), loaded)
    with Image.open(photos / "c.color.jpg") as written:
        assert written.format == "JPEG"
        assert written.getexif()[ARTIST] == "colorize test"


def test_jpeg_outputs_keep_the_gray_to_the_encoders_rounding(
    photos: Path, loaded: Colorizer
) -> None:
    """A photo at least 4x its render (481x321 at render 64) is written in JPEG's own Y'CbCr,
    4:2:0, its luma the input's gray to the encoder's rounding; a smaller one as sRGB, 4:4:4."""
    from PIL import JpegImagePlugin

    small = photos / "small.jpg"
    Image.open(photos / "a.jpg").resize((200, 130)).save(small, quality=95)
    run(ApplyOptions([str(photos / "a.jpg"), str(small)]), loaded)
    for name, sampling in (("a", 2), ("small", 0)):
        gray = color.grayscale(np.asarray(Image.open(photos / f"{name}.jpg").convert("RGB")))
        with Image.open(photos / f"{name}.color.jpg") as written:
            assert JpegImagePlugin.get_sampling(written) == sampling, name
            error = np.abs(color.grayscale(np.asarray(written.convert("RGB"))) - gray.astype(int))
        assert error.mean() < 0.8 and np.percentile(error, 99) <= 3, (name, error.mean())


def test_a_second_run_skips_existing_outputs_and_never_reads_them_as_photos(
    photos: Path, loaded: Colorizer
) -> None:
    run(ApplyOptions([str(photos)]), loaded)
    before = (photos / "a.color.jpg").stat().st_mtime_ns
    outcomes = run(ApplyOptions([str(photos)]), loaded)
    assert {o.status for o in outcomes} == {"skipped"}
    assert not list(photos.rglob("*.color.color.*"))
    assert (photos / "a.color.jpg").stat().st_mtime_ns == before
    again = run(ApplyOptions([str(photos / "a.jpg")], overwrite=True), loaded)
    assert [o.status for o in again] == ["written"]
    assert (photos / "a.color.jpg").stat().st_mtime_ns != before


def test_out_dir_keeps_names_relative_to_the_directory_argument(
    photos: Path, loaded: Colorizer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    outcomes = run(ApplyOptions([str(photos)], out_dir=out, format="webp"), loaded)
    assert sorted(str(o.output.relative_to(out)) for o in outcomes) == [
        "a.webp",
        "c.webp",
        "sub/b.webp",
    ]
    assert Image.open(out / "sub" / "b.webp").format == "WEBP"


def test_one_output_file_and_inputs_are_never_overwritten(
    photos: Path, loaded: Colorizer, tmp_path: Path
) -> None:
    target = tmp_path / "one.png"
    assert [
        o.status for o in run(ApplyOptions([str(photos / "a.jpg")], output=target), loaded)
    ] == ["written"]
    assert Image.open(target).size == Image.open(photos / "a.jpg").size
    with pytest.raises(UsageError, match="one output"):
        run(ApplyOptions([str(photos / "a.jpg"), str(photos / "c.jpg")], output=target), loaded)
    before = (photos / "a.jpg").read_bytes()
    (refused,) = run(
        ApplyOptions([str(photos / "a.jpg")], output=photos / "a.jpg", overwrite=True), loaded
    )
    assert refused.status == "failed" and "input" in refused.reason
    assert (photos / "a.jpg").read_bytes() == before


def test_a_broken_photo_fails_alone(photos: Path, loaded: Colorizer) -> None:
    (photos / "broken.jpg").write_bytes((photos / "a.jpg").read_bytes()[:2000])
    outcomes = run(ApplyOptions([str(photos), str(photos / "missing.jpg")]), loaded)
    failed = {Path(o.source).name: o.reason for o in outcomes if o.status == "failed"}
    assert set(failed) == {"broken.jpg", "missing.jpg"}
    assert "corrupt" in failed["broken.jpg"]
    assert sum(o.status == "written" for o in outcomes) == 3


def test_a_photo_too_large_to_write_fails_alone_from_its_header(
    photos: Path, loaded: Colorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 70000 x 1 photo asked for as JPEG is refused before it is decoded, with the message the
    check on the decoded photo gives; the other photos are written, it leaves nothing behind."""
    Image.new("L", (70000, 1), 128).save(photos / "strip.png")
    decode = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> object:
        assert self.size != (70000, 1), "the strip was decoded"
        return decode(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    outcomes = run(ApplyOptions([str(photos)], format="jpg"), loaded)
    assert {Path(o.source).name: o.status for o in outcomes} == {
        "a.jpg": "written",
        "b.jpg": "written",
        "c.jpg": "written",
        "strip.png": "failed",
    }
    (strip,) = [o for o in outcomes if o.status == "failed"]
    assert strip.reason == (
        "70000x1 is too large to write as JPEG, which allows at most 65,500 pixels a side: "
        "choose --format png or tiff"
    )
    assert not (photos / "strip.color.jpg").exists()
    with pytest.raises(ColorizeError, match="^-: 70000x1 is too large to write as JPEG"):
        applying.colorize_bytes((photos / "strip.png").read_bytes(), loaded, format="jpg")


def test_the_model_is_loaded_only_when_a_photo_needs_it(photos: Path, tmp_path: Path) -> None:
    (photos / "a.color.jpg").write_bytes(b"")
    missing = tmp_path / "missing.keras"
    outcomes = list(applying.apply(ApplyOptions([str(photos / "a.jpg")], model_path=missing)))
    assert [o.status for o in outcomes] == ["skipped"]
    with pytest.raises(ModelError):
        list(applying.apply(ApplyOptions([str(photos / "c.jpg")], model_path=missing)))


def test_paths_can_come_from_stdin(photos: Path, loaded: Colorizer) -> None:
    stdin = io.StringIO(f"{photos / 'a.jpg'}\n\n{photos / 'c.jpg'}\n")
    outcomes = list(applying.apply(ApplyOptions(["-"]), stdin=stdin, colorizer=loaded))
    assert [o.output.name for o in outcomes] == ["a.color.jpg", "c.color.jpg"]


def test_bad_options_are_usage_errors() -> None:
    for bad in (
        {"output": "y.jpg", "out_dir": "d"},
        {"format": "gif"},
        {"quality": 0},
    ):
        with pytest.raises(UsageError):
            ApplyOptions(["x.jpg"], **bad)


def test_colorize_bytes_streams_one_photo(photos: Path, loaded: Colorizer) -> None:
    data = (photos / "c.jpg").read_bytes()
    png = applying.colorize_bytes(data, loaded, format="png")
    out = Image.open(io.BytesIO(png))
    original = Image.open(photos / "c.jpg")
    assert out.format == "PNG" and out.size == original.size
    assert np.array_equal(
        color.grayscale(np.asarray(out)), color.grayscale(np.asarray(original.convert("RGB")))
    )
    same_format = Image.open(io.BytesIO(applying.colorize_bytes(data, loaded)))
    assert same_format.format == "JPEG" and same_format.getexif()[ARTIST] == "colorize test"


def test_outputs_of_profiled_photos_are_tagged_srgb(tmp_path: Path, loaded: Colorizer) -> None:
    from conftest import DEV_DIR
    from PIL import ImageCms

    profiled = next(
        p for p in sorted(DEV_DIR.glob("*.jpg")) if Image.open(p).info.get("icc_profile")
    )
    plain = next(
        p for p in sorted(DEV_DIR.glob("*.jpg")) if not Image.open(p).info.get("icc_profile")
    )
    folder = tmp_path / "in"
    folder.mkdir()
    for photo in (profiled, plain):
        shutil.copy(photo, folder / photo.name)
    outcomes = list(
        applying.apply(ApplyOptions([str(folder)], out_dir=tmp_path / "out"), colorizer=loaded)
    )
    written = {Path(o.source).name: o.output for o in outcomes if o.status == "written"}
    with Image.open(written[profiled.name]) as tagged:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(tagged.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)
    with Image.open(written[plain.name]) as untagged:
        assert "icc_profile" not in untagged.info


class _Interrupting:
    """Wraps a real Colorizer: Ctrl-C (KeyboardInterrupt) arrives while its `stop_at`-th batch
    runs, after earlier photos were handed to the finishing thread."""

    def __init__(self, loaded: Colorizer, stop_at: int) -> None:
        self.loaded, self.stop_at, self.batches = loaded, stop_at, 0
        self.takes_hints, self.model_path = loaded.takes_hints, loaded.model_path
        self.batch_size = loaded.batch_size

    def chroma_many(self, items):  # noqa: ANN001, ANN201 - the Colorizer method's shape
        for out in self.loaded.chroma_many(items):
            yield out
            self.batches += 1
            if self.batches == self.stop_at:
                raise KeyboardInterrupt


def test_an_interrupted_run_writes_only_what_it_reports(photos: Path, loaded: Colorizer) -> None:
    """Photos handed to the finishing thread and not yet reported when Ctrl-C comes are not
    written at all, and no temporary file is left: what is on disk is what stdout listed."""
    for k in range(6):
        shutil.copy(photos / "a.jpg", photos / f"copy{k}.jpg")
    out = photos.parent / "out"
    options = ApplyOptions([str(photos)], out_dir=out)
    reported = []
    with pytest.raises(KeyboardInterrupt):
        for outcome in applying.apply(options, colorizer=_Interrupting(loaded, 3)):
            reported.append(outcome.output.name)
    on_disk = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(reported) and 1 <= len(reported) < 9


def test_outcomes_come_in_the_order_of_the_inputs(photos: Path, loaded: Colorizer) -> None:
    (photos / "b-broken.jpg").write_bytes(b"not a photo")
    (photos / "d-broken.jpg").write_bytes(b"")
    options = ApplyOptions([str(photos)], out_dir=photos.parent / "out")
    outcomes = run(options, loaded)
    names = [Path(o.source).relative_to(photos).as_posix() for o in outcomes]
    assert names == ["a.jpg", "b-broken.jpg", "c.jpg", "d-broken.jpg", "sub/b.jpg"]
    assert [o.status for o in outcomes] == ["written", "failed", "written", "failed", "written"]
