"""Kills and faults (issue 7): `kill -9` of `prepare` and `apply` at random moments, a full disk,
and two `apply` runs writing into one folder at once. Afterwards no file that looks complete is
incomplete, and the resumed work equals an uninterrupted run's.

`train`'s kill and resume are tested in tests/test_train.py (stop mid-epoch, SIGINT, resume).
"""

from __future__ import annotations

import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_prepare import assert_same_datasets
from test_robust_corpus import DEV, encode, small_photo

from colorize_cli import fsutil
from colorize_cli.data.prepare import PrepareOptions, prepare
from colorize_cli.imaging import color, images

pytestmark = pytest.mark.slow

PREPARE_ARGS = ("--size", "32", "--val-fraction", "0.25", "--shard-size", "12", "--jobs", "1")


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "colorize_cli", *map(str, args)]


def kill_at_random(argv: list[str], seed: int, started: Callable[[], bool], window: float) -> int:
    """Start `argv`, wait until `started()` (work is under way), then SIGKILL it after a random
    part of `window` seconds; returns its exit status (-9, or 0 if it finished first)."""
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not started() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.Random(seed).uniform(0, window))
    child.send_signal(signal.SIGKILL)
    return child.wait(timeout=60)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 real dev photos at their own size (decoding them takes prepare about a second)."""
    folder = tmp_path_factory.mktemp("photos")
    for source in sorted(DEV.glob("*.jpg"))[200:240]:
        shutil.copy(source, folder / source.name)
    return folder


@pytest.fixture(scope="module")
def reference(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("reference") / "data.h5"
    options = PrepareOptions([str(photos)], out, size=32, val_fraction=0.25, shard_size=12, jobs=1)
    return prepare(options).outputs


def finished_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if fsutil.TEMP_MARK not in p.name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prepare_killed_at_random_then_resumed_equals_an_uninterrupted_run(
    seed: int, photos: Path, reference: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "data.h5"
    argv = command("prepare", photos, out, *PREPARE_ARGS)
    kill_at_random(argv, seed, lambda: any(tmp_path.iterdir()), window=0.3)
    by_name = {path.name: path for path in reference}
    for path in finished_files(tmp_path):  # a file under its final name is complete
        assert_same_datasets([path], [by_name[path.name]])

    resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_datasets(finished_files(tmp_path), sorted(reference))


def _no_bigger_than(limit: int) -> Callable[[], None]:
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        # Without this the kernel kills the writer; a full disk gives the error instead.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return limit_file_size


def test_prepare_on_a_full_disk_says_so_and_leaves_no_partial_file(
    photos: Path, reference: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "data.h5"
    argv = command("prepare", photos, out, *PREPARE_ARGS)
    full = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, preexec_fn=_no_bigger_than(20_000)
    )
    assert full.returncode == 2
    (line,) = full.stderr.splitlines()
    failed = re.fullmatch(
        r"error: (.*): cannot write: file too large \(over the file size limit\)", line
    )
    assert failed, line
    # The file that failed is gone; the other split's checkpointed work may stay for --resume.
    assert finished_files(tmp_path) == []
    assert not fsutil.temp_paths(failed.group(1))

    resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_datasets(finished_files(tmp_path), sorted(reference))


# --- apply ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    for i in range(24):
        (folder / f"photo{i:02d}.png").write_bytes(encode(small_photo(300 + i, 96, 64), "PNG"))
    return folder


@pytest.fixture(scope="module")
def expected(small_photos: Path, tiny_model: Path) -> dict[str, np.ndarray]:
    """What an uninterrupted `apply` writes for each photo (same colorizer and batch size)."""
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer(tiny_model, render_size=64)
    paths = sorted(small_photos.iterdir())
    tagged = ((path.name, images.read_image(path)) for path in paths)
    return dict(colorizer.colorize_many(tagged))


def apply_argv(small_photos: Path, tiny_model: Path, out: Path, *extra: str) -> list[str]:
    return command(
        "apply",
        small_photos,
        "--out-dir",
        out,
        "--model",
        tiny_model,
        "--render-size",
        "64",
        *extra,
    )


def assert_complete_outputs(out: Path, expected: dict[str, np.ndarray], small_photos: Path):
    """Every file under its final name decodes whole and holds what an uninterrupted run writes."""
    for path in finished_files(out):
        rgb = images.read_image(path)  # a torn PNG fails its CRC or ends early
        np.testing.assert_array_equal(
            color.grayscale(rgb), color.grayscale(images.read_image(small_photos / path.name))
        )
        # A resumed run batches photos differently, which may move a float by one level.
        assert np.abs(rgb.astype(int) - expected[path.name]).max() <= 1


def test_apply_killed_at_random_then_two_runs_at_once_finish_the_job(
    small_photos: Path, tiny_model: Path, expected: dict[str, np.ndarray], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = apply_argv(small_photos, tiny_model, out)
    status = kill_at_random(argv, 0, lambda: out.is_dir() and any(out.iterdir()), 0.5)
    assert status in (-signal.SIGKILL, 0)
    assert_complete_outputs(out, expected, small_photos)
    # Two runs into the same folder at once, both replacing every output: a reader only ever
    # sees an old or a new whole file, never a torn one.
    both = apply_argv(small_photos, tiny_model, out, "--overwrite")
    runs = [subprocess.Popen(both, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr.decode()
    assert [p.name for p in finished_files(out)] == sorted(expected)
    assert_complete_outputs(out, expected, small_photos)


def test_apply_on_a_full_disk_fails_each_photo_and_leaves_nothing(
    small_photos: Path, tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run(
        apply_argv(small_photos, tiny_model, out),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_no_bigger_than(4096),
    )
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr
    failed = [line for line in run.stderr.splitlines() if line.startswith("failed: ")]
    assert " ".join(run.stderr.split()).count("cannot write: file too large") == len(failed) == 24
    assert list(out.iterdir()) == []
