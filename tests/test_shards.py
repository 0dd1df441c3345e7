"""Tests for colorize_cli.data.shards: the writer, checkpoints and salvage, the validating reader,
globs, and `describe_shard`, on real dev photos and on files made to be wrong."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import dev_photos

from colorize_cli import __version__, fsutil
from colorize_cli.data import shard_writer, shards
from colorize_cli.data.decoding import fit_image
from colorize_cli.errors import ShardError
from colorize_cli.imaging import color, images

SIZE = 32
FILTER = {"none": None, None: None, "lzf": "lzf", "gzip-4": "gzip"}


@pytest.fixture(scope="module")
def rows() -> list[tuple[np.ndarray, np.ndarray, str, str]]:
    """(gray, rgb, source, sha256) of 5 real photos fitted to SIZE."""
    out = []
    for path in dev_photos(5):
        rgb = fit_image(images.read_image(path), SIZE)
        out.append(
            (color.grayscale(rgb), rgb, str(path), hashlib.sha256(path.read_bytes()).hexdigest())
        )
    return out


def write(path: Path, rows: list, **kwargs) -> Path:
    with shard_writer.ShardWriter(path, SIZE, **kwargs) as writer:
        for row in rows:
            writer.append(*row)
        assert len(writer) == len(rows)
    return path


def assert_one_line_error(excinfo: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message


def test_round_trip_schema_and_attributes(tmp_path: Path, rows: list) -> None:
    path = write(tmp_path / "a.h5", rows, split="val", attrs={"fit": "crop"})
    assert not list(tmp_path.glob("*.tmp-*"))
    with shards.open_shard(path) as shard:
        assert len(shard) == 5 and shard.split == "val" and shard.image_size == SIZE
        assert shard.gray.shape == (5, SIZE, SIZE) and shard.gray.dtype == np.uint8
        assert shard.rgb.shape == (5, SIZE, SIZE, 3) and shard.rgb.dtype == np.uint8
        assert shard.gray.chunks == (1, SIZE, SIZE) and shard.rgb.chunks == (1, SIZE, SIZE, 3)
        assert shard.sources == [r[2] for r in rows] and shard.sha256 == [r[3] for r in rows]
        for i, (gray, rgb, _, _) in enumerate(rows):
            got_gray, got_rgb = shard.read(i)
            np.testing.assert_array_equal(got_gray, gray)
            np.testing.assert_array_equal(got_rgb, rgb)
        attrs = shard.attrs
    assert attrs["format"] == shards.FORMAT_NAME and attrs["format_version"] == 1
    assert attrs["grayscale"] == color.GRAYSCALE_DEFINITION
    assert attrs["color_space"] == color.COLOR_SPACE
    assert attrs["creator"] == f"colorize-cli {__version__}" and attrs["fit"] == "crop"
    assert "checkpoint_count" not in attrs and attrs["created"].startswith("20")


def test_plain_h5py_reads_it_as_documented(tmp_path: Path, rows: list) -> None:
    path = write(tmp_path / "a.h5", rows)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "colorize-shard"
        assert list(f["source"].asstr()[:]) == [r[2] for r in rows]
        assert f["sha256"].asstr()[0] == rows[0][3]
        np.testing.assert_array_equal(f["gray"][2], color.grayscale(f["rgb"][2]))


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip-4", None])
def test_every_compression_round_trips_and_datasets_are_byte_identical(
    tmp_path: Path, rows: list, compression: str | None
) -> None:
    a = write(tmp_path / "a.h5", rows, compression=compression)
    b = write(tmp_path / "b.h5", rows, compression=compression)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for name in ("gray", "rgb"):
            assert fa[name].compression == FILTER[compression]
            for i in range(len(rows)):
                offset = (i,) + (0,) * (fa[name].ndim - 1)
                assert fa[name].id.read_direct_chunk(offset) == fb[name].id.read_direct_chunk(
                    offset
                )
        assert list(fa["source"].asstr()[:]) == list(fb["source"].asstr()[:])


def test_writer_refuses_bad_rows_and_options(tmp_path: Path, rows: list) -> None:
    gray, rgb, source, digest = rows[0]
    with pytest.raises(ValueError, match="compression"):
        shard_writer.ShardWriter(tmp_path / "x.h5", SIZE, compression="zstd")
    with pytest.raises(ValueError, match="format_version"):
        shard_writer.ShardWriter(tmp_path / "x.h5", SIZE, attrs={"format_version": 9})
    with shard_writer.ShardWriter(tmp_path / "x.h5", SIZE) as writer:
        with pytest.raises(ValueError, match="gray"):
            writer.append(gray[:8], rgb, source, digest)
        with pytest.raises(ValueError, match="rgb"):
            writer.append(gray, rgb.astype(np.int16), source, digest)
        with pytest.raises(ValueError, match="sha256"):
            writer.append(gray, rgb, source, "abc")
        assert len(writer) == 0


def test_an_exception_aborts_and_leaves_nothing(tmp_path: Path, rows: list) -> None:
    with pytest.raises(RuntimeError), shard_writer.ShardWriter(tmp_path / "a.h5", SIZE) as writer:
        writer.append(*rows[0])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_suspended_writer_is_salvaged_by_resume(tmp_path: Path, rows: list) -> None:
    target = tmp_path / "a.h5"
    writer = shard_writer.ShardWriter(target, SIZE, attrs={"fit": "crop"}, checkpoint_every=2)
    for row in rows[:3]:
        writer.append(*row)
    leftover = writer.suspend()
    assert not target.exists() and leftover.exists() and fsutil.TEMP_MARK in leftover.name
    # The temporary file is an incomplete shard: globs must not take it for a finished one.
    with pytest.raises(ShardError, match="matches no shard"):
        shards.expand_shard_paths([str(tmp_path / "*")])
    with shard_writer.ShardWriter(target, SIZE, attrs={"fit": "crop"}, resume=True) as resumed:
        assert resumed.sha256 == [r[3] for r in rows[:3]]
        for row in rows[3:]:
            resumed.append(*row)
    assert fsutil.temp_paths(target) == []
    with shards.open_shard(target) as shard:
        np.testing.assert_array_equal(shard.rgb[:], np.stack([r[1] for r in rows]))


def test_resume_refuses_a_leftover_written_with_other_options(tmp_path: Path, rows: list) -> None:
    target = tmp_path / "a.h5"
    writer = shard_writer.ShardWriter(target, SIZE, attrs={"fit": "pad"}, checkpoint_every=1)
    writer.append(*rows[0])
    writer.suspend()
    with pytest.raises(ShardError, match="fit='pad'"):
        shard_writer.ShardWriter(target, SIZE, attrs={"fit": "crop"}, resume=True)


def test_resume_ignores_a_damaged_leftover(tmp_path: Path, rows: list) -> None:
    target = tmp_path / "a.h5"
    leftover = target.with_name(f"a.h5{fsutil.TEMP_MARK}1")
    leftover.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with shard_writer.ShardWriter(target, SIZE, resume=True) as writer:
        assert len(writer) == 0
        writer.append(*rows[0])
    assert not leftover.exists()
    with shards.open_shard(target) as shard:
        assert len(shard) == 1


def foreign(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    return path


def test_reader_refusals_are_clear_one_liners(tmp_path: Path, rows: list) -> None:
    cases: list[tuple[Path, tuple[str, ...]]] = []
    cases.append((tmp_path / "missing.h5", ("no such",)))
    text = tmp_path / "notes.h5"
    text.write_text("hello, not HDF5")
    cases.append((text, ("not an HDF5 file",)))
    cases.append((foreign(tmp_path / "foreign.h5", x=np.zeros(3)), ("foreign",)))
    good = write(tmp_path / "good.h5", rows)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases.append((truncated, ("truncated",)))
    for version, word in ((2, "newer"), (0, "too old")):
        path = write(tmp_path / f"v{version}.h5", rows[:1])
        with h5py.File(path, "r+") as f:
            f.attrs["format_version"] = version
        cases.append((path, (word, str(version))))
    wrong_dtype = write(tmp_path / "dtype.h5", rows[:2])
    with h5py.File(wrong_dtype, "r+") as f:
        del f["gray"]
        f["gray"] = np.zeros((2, SIZE, SIZE), np.int16)
    cases.append((wrong_dtype, ("'gray'", "int16", "uint8")))
    wrong_shape = write(tmp_path / "shape.h5", rows[:2])
    with h5py.File(wrong_shape, "r+") as f:
        del f["rgb"]
        f["rgb"] = np.zeros((2, SIZE, SIZE), np.uint8)
    cases.append((wrong_shape, ("'rgb'", "shape")))
    lengths = write(tmp_path / "lengths.h5", rows[:2])
    with h5py.File(lengths, "r+") as f:
        f["source"].resize(1, axis=0)
    cases.append((lengths, ("disagree", "source 1")))
    for path, words in cases:
        with pytest.raises(ShardError) as excinfo:
            shards.open_shard(path)
        assert_one_line_error(excinfo, path, *words)


def test_damaged_image_data_is_caught_on_read_and_verify(tmp_path: Path, rows: list) -> None:
    path = write(tmp_path / "a.h5", rows, compression="none")
    with h5py.File(path, "r") as f:
        offset = f["rgb"].id.get_chunk_info_by_coord((3, 0, 0, 0)).byte_offset
    with open(path, "r+b") as f:
        f.seek(offset + 100)
        byte = f.read(1)
        f.seek(offset + 100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with shards.open_shard(path) as shard:
        shard.read(2)
        with pytest.raises(ShardError, match="image 3 is damaged"):
            shard.read(3)
    with pytest.raises(ShardError, match="image 3"):
        shards.describe_shard(path, verify=True)
    assert shards.describe_shard(path)["count"] == 5


def test_verify_checks_gray_against_the_grayscale_definition(tmp_path: Path, rows: list) -> None:
    gray, rgb, source, digest = rows[0]
    path = write(tmp_path / "a.h5", [(255 - gray, rgb, source, digest)])
    with pytest.raises(ShardError, match="gray is not color.grayscale"):
        shards.describe_shard(path, verify=True)


def test_describe_shard(tmp_path: Path, rows: list) -> None:
    path = write(tmp_path / "a.h5", rows + rows[:1], split="val", attrs={"part": "1/2"})
    description = shards.describe_shard(path, verify=True)
    assert description["count"] == 6 and description["split"] == "val"
    assert description["image_size"] == SIZE and description["file_bytes"] == path.stat().st_size
    assert description["compression"] == shard_writer.DEFAULT_COMPRESSION
    assert description["attrs"] == {"part": "1/2"} and description["format"] == "colorize-shard 1"
    assert description["verified"] is True and description["duplicates"] == 1


def test_expand_shard_paths(tmp_path: Path, rows: list) -> None:
    for name in ("o-00001.h5", "o-00000.h5", "o-00000.val.h5"):
        write(tmp_path / name, rows[:1], split="val" if ".val" in name else "train")
    (tmp_path / f"o-00002.h5{fsutil.TEMP_MARK}{os.getpid()}").write_bytes(b"")
    train = [tmp_path / "o-00000.h5", tmp_path / "o-00001.h5"]
    assert shards.expand_shard_paths([str(tmp_path / "o-*[0-9].h5")]) == train
    everything = shards.expand_shard_paths([str(tmp_path / "o*"), str(train[0])])
    assert everything == sorted([*train, tmp_path / "o-00000.val.h5"])
    assert shards.expand_shard_paths([str(tmp_path / "*.h5")], split="train") == train
    with pytest.raises(ShardError, match="matches no shard"):
        shards.expand_shard_paths([str(tmp_path / "x-*.h5")])
    with pytest.raises(ShardError, match="no such shard file"):
        shards.expand_shard_paths([str(tmp_path / "x.h5")])
    with pytest.raises(ShardError, match="directory"):
        shards.expand_shard_paths([str(tmp_path)])
