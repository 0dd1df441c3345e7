"""Tests for data/prepare.py on real dev photos plus broken files the tests make: contents,
splits, duplicates, shards and globs, determinism across jobs, --part, resume after a real kill."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image

from colorize_cli import fsutil
from colorize_cli.data import shards
from colorize_cli.data.decoding import fit_image
from colorize_cli.data.prepare import PrepareOptions, prepare, write_errors_tsv
from colorize_cli.errors import UsageError
from colorize_cli.imaging import color, images

SIZE = 32


def copy_photos(folder: Path, count: int, stride: int = 97) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, folder / p.name)) for p in dev_photos(count, stride)]


def run(sources: list[Path | str], out: Path, **kwargs):
    options = {"size": SIZE, "jobs": 1, "val_fraction": 0.0, **kwargs}
    return prepare(PrepareOptions([str(s) for s in sources], out, **options))


def contents(paths: list[Path]) -> dict[str, np.ndarray | list[str]]:
    """Every dataset of these shards, concatenated in order."""
    out: dict[str, list] = {"gray": [], "rgb": [], "source": [], "sha256": []}
    for path in paths:
        with h5py.File(path, "r") as f:
            out["gray"].append(f["gray"][:])
            out["rgb"].append(f["rgb"][:])
            out["source"] += list(f["source"].asstr()[:])
            out["sha256"] += list(f["sha256"].asstr()[:])
    return {
        "gray": np.concatenate(out["gray"]),
        "rgb": np.concatenate(out["rgb"]),
        "source": out["source"],
        "sha256": out["sha256"],
    }


def assert_same_datasets(a: list[Path], b: list[Path]) -> None:
    assert [p.name for p in a] == [p.name for p in b]
    for x, y in zip(a, b, strict=True):
        with h5py.File(x, "r") as fx, h5py.File(y, "r") as fy:
            for name in ("gray", "rgb"):
                assert fx[name].shape == fy[name].shape
                for i in range(fx[name].shape[0]):
                    offset = (i,) + (0,) * (fx[name].ndim - 1)
                    assert fx[name].id.read_direct_chunk(offset) == fy[name].id.read_direct_chunk(
                        offset
                    )
            for name in ("source", "sha256"):
                assert list(fx[name].asstr()[:]) == list(fy[name].asstr()[:])


def test_writes_what_the_format_promises(tmp_path: Path) -> None:
    photos = sorted(copy_photos(tmp_path / "photos", 6))
    report = run([tmp_path / "photos"], tmp_path / "o.h5")
    assert report.outputs == [tmp_path / "o.h5"] and report.written == {"train": 6, "val": 0}
    assert report.skipped == [] and report.inputs == 6
    data = contents(report.outputs)
    assert data["gray"].shape == (6, SIZE, SIZE) and data["gray"].dtype == np.uint8
    assert data["rgb"].shape == (6, SIZE, SIZE, 3) and data["rgb"].dtype == np.uint8
    assert data["source"] == [str(p) for p in photos]
    assert data["sha256"] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in photos]
    for i, photo in enumerate(photos):
        expected = fit_image(images.read_image(photo), SIZE, "crop")
        np.testing.assert_array_equal(data["rgb"][i], expected)
        np.testing.assert_array_equal(data["gray"][i], color.grayscale(expected))
        pil_gray = np.asarray(Image.fromarray(data["rgb"][i]).convert("L"))
        np.testing.assert_array_equal(data["gray"][i], pil_gray)
    with shards.open_shard(report.outputs[0]) as shard:
        assert shard.split == "train" and shard.image_size == SIZE
        assert shard.attrs["fit"] == "crop" and shard.attrs["part"] == ""


def test_fits(tmp_path: Path) -> None:
    wide = np.zeros((40, 100, 3), np.uint8)
    wide[:, :50] = (255, 0, 0)
    wide[:, 50:] = (0, 0, 255)
    crop, pad, squash = (fit_image(wide, 20, fit) for fit in ("crop", "pad", "resize"))
    assert crop.shape == pad.shape == squash.shape == (20, 20, 3)
    # crop keeps the centre 40x40, half red and half blue; pad letterboxes in black.
    assert crop[10, 2].tolist() == [255, 0, 0] and crop[10, 17].tolist() == [0, 0, 255]
    assert pad[0].max() == 0 and pad[-1].max() == 0 and pad[10, 2, 0] > 200
    assert squash[0, 2, 0] > 200 and squash[0, 17, 2] > 200
    photo = copy_photos(tmp_path, 1)[0]
    for fit in ("pad", "resize"):
        report = run([photo], tmp_path / f"{fit}.h5", fit=fit)
        with shards.open_shard(report.outputs[0]) as shard:
            expected = fit_image(images.read_image(photo), SIZE, fit)
            np.testing.assert_array_equal(shard.read(0)[1], expected)


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    good = copy_photos(folder, 3)
    (folder / "truncated.jpg").write_bytes(good[0].read_bytes()[:2000])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("a text file, not a photo")
    report = run([folder, tmp_path / "missing.jpg"], tmp_path / "o.h5")
    assert report.written["train"] == 3
    reasons = dict(report.skipped)
    assert set(reasons) == {
        str(folder / n) for n in ("truncated.jpg", "empty.jpg", "notes.jpg")
    } | {str(tmp_path / "missing.jpg")}
    assert all(reason and "\n" not in reason for reason in reasons.values())
    assert "empty" in reasons[str(folder / "empty.jpg")]
    tsv = write_errors_tsv(report, tmp_path / "errors.tsv")
    lines = tsv.read_text().splitlines()
    assert lines[0] == "path\treason" and len(lines) == 5
    assert f"{folder / 'empty.jpg'}\t{reasons[str(folder / 'empty.jpg')]}" in lines


def test_duplicates_are_kept_once(tmp_path: Path) -> None:
    photos = copy_photos(tmp_path / "photos", 3)
    shutil.copy(photos[1], tmp_path / "photos" / "zz-copy.jpg")
    report = run([tmp_path / "photos"], tmp_path / "o.h5")
    assert report.written["train"] == 3 and report.duplicates == 1
    assert len(set(contents(report.outputs)["sha256"])) == 3


def test_near_grayscale_photos_are_skipped_on_request(tmp_path: Path) -> None:
    photo = copy_photos(tmp_path, 2)
    gray = tmp_path / "gray.jpg"
    Image.open(photo[0]).convert("L").convert("RGB").save(gray)
    report = run([*photo, gray], tmp_path / "o.h5", min_colorfulness=5.0)
    assert report.written["train"] == 2
    assert len(report.skipped) == 1 and report.skipped[0][0] == str(gray)
    assert "near-grayscale" in report.skipped[0][1]


def split_by_hash(report) -> dict[str, str]:
    return {
        digest: name
        for name in ("train", "val")
        for path in report.outputs
        if (path.name.endswith(".val.h5")) == (name == "val")
        for digest in contents([path])["sha256"]
    }


def test_val_split_is_stable_when_photos_are_added(tmp_path: Path) -> None:
    copy_photos(tmp_path / "photos", 10)
    first = run([tmp_path / "photos"], tmp_path / "a.h5", val_fraction=0.4)
    assert first.outputs == [tmp_path / "a.h5", tmp_path / "a.val.h5"]
    assert first.written["train"] > 0 and first.written["val"] > 0
    copy_photos(tmp_path / "photos", 16, stride=31)
    second = run([tmp_path / "photos"], tmp_path / "b.h5", val_fraction=0.4)
    assert sum(second.written.values()) > sum(first.written.values())
    before, after = split_by_hash(first), split_by_hash(second)
    assert {digest: after[digest] for digest in before} == before
    with shards.open_shard(tmp_path / "b.val.h5") as shard:
        assert shard.split == "val"


def test_shard_size_splits_files_that_globs_take_together(tmp_path: Path) -> None:
    copy_photos(tmp_path / "photos", 10)
    report = run([tmp_path / "photos"], tmp_path / "o.h5", shard_size=4, val_fraction=0.3)
    train = shards.expand_shard_paths([str(tmp_path / "o-*[0-9].h5")])
    val = shards.expand_shard_paths([str(tmp_path / "o-*.val.h5")])
    assert report.outputs == train + val
    assert train[0].name == "o-00000.h5" and val[0].name == "o-00000.val.h5"
    sizes = [len(contents([p])["sha256"]) for p in train]
    assert all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4
    assert sum(sizes) == report.written["train"] and report.written["val"] > 0
    run([tmp_path / "photos"], tmp_path / "w.h5", val_fraction=0.3)
    for split_files, whole_file in ((train, "w.h5"), (val, "w.val.h5")):
        joined, single = contents(split_files), contents([tmp_path / whole_file])
        assert joined["sha256"] == single["sha256"]
        np.testing.assert_array_equal(joined["rgb"], single["rgb"])


def test_same_output_whatever_the_number_of_jobs(tmp_path: Path) -> None:
    copy_photos(tmp_path / "photos", 12)
    one = run([tmp_path / "photos"], tmp_path / "one" / "o.h5", jobs=1, val_fraction=0.3)
    two = run([tmp_path / "photos"], tmp_path / "two" / "o.h5", jobs=2, val_fraction=0.3)
    assert one.written == two.written
    assert_same_datasets(one.outputs, two.outputs)


def test_parts_partition_the_inputs(tmp_path: Path) -> None:
    copy_photos(tmp_path / "photos", 12)
    whole = set(contents(run([tmp_path / "photos"], tmp_path / "all.h5").outputs)["sha256"])
    parts = []
    for k in (1, 2, 3):
        report = run([tmp_path / "photos"], tmp_path / f"part{k}.h5", part=(k, 3))
        assert report.other_part == 12 - report.written["train"]
        parts.append(set(contents(report.outputs)["sha256"]) if report.outputs else set())
    assert set().union(*parts) == whole and sum(len(p) for p in parts) == len(whole)


def test_refuses_to_mix_with_earlier_outputs(tmp_path: Path) -> None:
    photos = copy_photos(tmp_path / "photos", 2)
    run(photos, tmp_path / "o.h5")
    with pytest.raises(UsageError, match="--overwrite"):
        run(photos[:1], tmp_path / "o.h5", shard_size=5)
    report = run(photos[:1], tmp_path / "o.h5", shard_size=5, overwrite=True)
    assert sorted(tmp_path.glob("o*.h5")) == report.outputs == [tmp_path / "o-00000.h5"]
    again = run(photos[:1], tmp_path / "o.h5", shard_size=5, resume=True)
    assert again.resumed == 1 and again.written["train"] == 1
    with pytest.raises(UsageError, match="complete"):
        run(photos, tmp_path / "o.h5", shard_size=5, resume=True)
    with pytest.raises(UsageError, match="fit"):
        run(photos[:1], tmp_path / "o.h5", shard_size=5, resume=True, fit="pad")


@pytest.mark.parametrize(
    ("field", "value"),
    [("size", 4), ("fit", "zoom"), ("val_fraction", 1.5), ("part", (3, 2)), ("jobs", -1)],
)
def test_bad_options_are_usage_errors(tmp_path: Path, field: str, value: object) -> None:
    with pytest.raises(UsageError):
        run([tmp_path], tmp_path / "o.h5", **{field: value})
    with pytest.raises(UsageError, match=".h5"):
        run([tmp_path], tmp_path / "o.txt")


KILLABLE = """
import sys, time
from pathlib import Path
from colorize_cli.data import prepare

class Slow:  # reports each photo on stdout, then dawdles so the test can kill mid-run
    def start(self, *args, **kwargs): pass
    def advance(self, n=1, **fields):
        print("photo", flush=True)
        time.sleep(0.15)
    def finish(self, summary=None): pass
    def log(self, message): pass

prepare.CHECKPOINT_EVERY = 3
options = prepare.PrepareOptions(
    [sys.argv[1]], Path(sys.argv[2]), size=32, jobs=int(sys.argv[4]), val_fraction=0.25,
    shard_size=int(sys.argv[3]), resume=True,
)
prepare.prepare(options, progress=Slow())
print("modules:", "tensorflow" in sys.modules, flush=True)
"""


@pytest.mark.parametrize(
    ("stop", "shard_size", "least_kept"),
    # SIGKILL loses what came after the last checkpoint (every 3 here); Ctrl-C checkpoints all 16.
    [(signal.SIGKILL, 0, 6), (signal.SIGKILL, 5, 6), (signal.SIGINT, 0, 16)],
)
def test_resume_after_a_real_kill_equals_an_uninterrupted_run(
    tmp_path: Path, stop: int, shard_size: int, least_kept: int
) -> None:
    photos = tmp_path / "photos"
    copy_photos(photos, 40, stride=37)
    out = tmp_path / "killed" / "o.h5"
    argv = [sys.executable, "-c", KILLABLE, str(photos), str(out), str(shard_size), "1"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    for _ in range(16):
        assert child.stdout.readline() == "photo\n"
    os.kill(child.pid, stop)
    assert child.wait(timeout=60) != 0
    child.stdout.close()
    leftovers = list(out.parent.glob(f"*{fsutil.TEMP_MARK}*"))
    assert leftovers, "a killed run leaves its work in progress as temporary files"
    if shard_size == 0:
        assert not out.exists(), "a killed run never leaves a file that looks complete"

    resumed = run([photos], out, val_fraction=0.25, shard_size=shard_size, resume=True)
    assert resumed.resumed >= least_kept, "checkpointed photos are not decoded again"
    assert not list(out.parent.glob(f"*{fsutil.TEMP_MARK}*"))
    fresh = run([photos], tmp_path / "fresh" / "o.h5", val_fraction=0.25, shard_size=shard_size)
    assert resumed.written == fresh.written and sum(fresh.written.values()) == 40
    assert_same_datasets(resumed.outputs, fresh.outputs)


def test_prepare_in_parallel_from_a_plain_script_without_tensorflow(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_photos(photos, 3)
    # A script file without a `__main__` guard: workers must not re-run it.
    script = tmp_path / "script.py"
    script.write_text(KILLABLE.replace("0.15", "0"))
    argv = [sys.executable, str(script), str(photos), str(tmp_path / "o.h5"), "0", "2"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["photo"] * 3 + ["modules: False"]
