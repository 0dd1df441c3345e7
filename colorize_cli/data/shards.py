"""The HDF5 shard format (docs/format.md): the writer, the validating reader, and `info`.

A shard holds N gray/RGB pairs of one square size plus, per image, the source path and the sha256 of
the source file. Writers write `NAME.tmp-<pid>` and rename on commit, checkpointing on the way, so a
killed writer leaves only a temporary file that `ShardWriter(..., resume=True)` can pick up again.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from colorize_cli import __version__, fsutil
from colorize_cli.constants import COMPRESSIONS, DEFAULT_COMPRESSION
from colorize_cli.errors import ShardError, one_line
from colorize_cli.imaging import color

FORMAT_NAME = "colorize-shard"
FORMAT_VERSION = 1
# Oldest version this reader understands; raise it when a change breaks old files.
OLDEST_READABLE_VERSION = 1

CHECKPOINT_EVERY = 32  # images between checkpoints: what a kill can cost a resumed writer

# The attributes every shard carries; user attrs may not shadow them.
RESERVED_ATTRS = frozenset(
    {"format", "format_version", "image_size", "split", "grayscale", "color_space", "creator"}
    | {"created", "checkpoint_count"}
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# h5py raises RuntimeError, not OSError, from some failed flushes and closes.
_WRITE_ERRORS = (OSError, RuntimeError)
# What h5py raises on reading a damaged file (found by fuzz/run.py: RuntimeError among them).
_READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)
# The filters a shard's datasets may use: what `ShardWriter` writes (docs/format.md); any other
# would make HDF5 look for a plugin.
_FILTERS = frozenset(
    {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32, 32000}
)
_DATASETS = ("gray", "rgb", "source", "sha256")
# Every image holds at least its 64-byte sha256 in the file (never compressed): a shard that
# declares more images than its size allows would make readers allocate for nothing.
_MIN_ROW_BYTES = 64
_SOURCE_DTYPE = h5py.string_dtype("utf-8")
_SHA256_DTYPE = h5py.string_dtype("ascii", 64)


def _compression_args(compression: str | None) -> dict[str, Any]:
    name = "none" if compression is None else compression
    if name not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {name!r}")
    if name == "none":
        return {}
    if name == "lzf":
        return {"compression": "lzf"}
    return {"compression": "gzip", "compression_opts": int(name.split("-")[1])}


class ShardWriter:
    """Writes one shard: a context manager that commits on clean exit and aborts on exceptions.

    Rows reach a temporary file beside `path` in blocks of `checkpoint_every` images, each block
    checkpointed once written;
    `resume=True` first copies the checkpointed rows of a temporary file an earlier writer of the
    same `path` left behind (its `sha256` tells the caller which photos are already in).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        image_size: int,
        split: str = "train",
        compression: str | None = DEFAULT_COMPRESSION,
        attrs: dict[str, Any] | None = None,
        *,
        checkpoint_every: int = CHECKPOINT_EVERY,
        resume: bool = False,
    ) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        shadowed = RESERVED_ATTRS & set(attrs or {})
        if shadowed:
            raise ValueError(f"attrs may not set {', '.join(sorted(shadowed))}")
        self.path = Path(path)
        self.image_size = image_size
        self.split = split
        self.attrs = dict(attrs or {})
        self.sha256: list[str] = []
        self._checkpoint_every = max(1, checkpoint_every)
        leftovers = fsutil.temp_paths(self.path) if resume else []
        self._temp = fsutil.temp_path(self.path)
        s = image_size
        try:
            # libver "earliest" (the default) keeps no open-for-write flag in the superblock, so
            # the checkpointed part of a killed writer's file stays readable.
            self._file = h5py.File(self._temp, "w")
            self._file.attrs.update(
                {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "image_size": s,
                    "split": split,
                    "grayscale": color.GRAYSCALE_DEFINITION,
                    "color_space": color.COLOR_SPACE,
                    "creator": f"colorize-cli {__version__}",
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    **self.attrs,
                }
            )
            images = {"fletcher32": True, "track_times": False, **_compression_args(compression)}
            self._gray = self._file.create_dataset(
                "gray", (0, s, s), "u1", maxshape=(None, s, s), chunks=(1, s, s), **images
            )
            self._rgb = self._file.create_dataset(
                "rgb", (0, s, s, 3), "u1", maxshape=(None, s, s, 3), chunks=(1, s, s, 3), **images
            )
            strings = {"maxshape": (None,), "chunks": (1024,), "track_times": False}
            self._source = self._file.create_dataset("source", (0,), _SOURCE_DTYPE, **strings)
            self._sha = self._file.create_dataset("sha256", (0,), _SHA256_DTYPE, **strings)
        except _WRITE_ERRORS as exc:
            if hasattr(self, "_file"):
                _discard(self._file)
            self._temp.unlink(missing_ok=True)
            raise ShardError(f"cannot create shard: {_write_reason(exc)}", self.path) from exc
        self._closed = False
        self._pending: list[tuple[np.ndarray, np.ndarray, str, str]] = []
        if leftovers:
            self._salvage(leftovers)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __len__(self) -> int:
        return len(self.sha256)

    def append(self, gray: np.ndarray, rgb: np.ndarray, source: str, sha256: str) -> None:
        """Add one image: `gray` (S, S) uint8 = color.grayscale(rgb), `rgb` (S, S, 3) uint8.

        `source` is stored as UTF-8: bytes of a file name that are not UTF-8 become `\\xNN`.
        """
        source = os.fsencode(source).decode("utf-8", "backslashreplace")
        s = self.image_size
        if gray.dtype != np.uint8 or gray.shape != (s, s):
            raise ValueError(f"gray must be uint8 {(s, s)}, got {gray.dtype} {gray.shape}")
        if rgb.dtype != np.uint8 or rgb.shape != (s, s, 3):
            raise ValueError(f"rgb must be uint8 {(s, s, 3)}, got {rgb.dtype} {rgb.shape}")
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        # Copies: the caller may reuse its arrays before the rows reach the file.
        self._pending.append((gray.copy(), rgb.copy(), source, sha256))
        self.sha256.append(sha256)
        if len(self.sha256) % self._checkpoint_every == 0:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Make the rows so far survive a kill: data first, then the count that vouches for it."""
        with self._writing():
            self._write_pending()
            self._file.flush()
            self._file.attrs["checkpoint_count"] = len(self.sha256)
            self._file.flush()

    def _write_pending(self) -> None:
        """Write the rows appended since the last checkpoint: one resize and write per dataset
        instead of per row, which made up most of `prepare`'s time beyond decoding."""
        if not self._pending:
            return
        start = self._gray.shape[0]
        stop = start + len(self._pending)
        datasets = (self._gray, self._rgb, self._source, self._sha)
        for dataset, values in zip(datasets, zip(*self._pending, strict=True), strict=True):
            dataset.resize(stop, axis=0)
            dataset[start:stop] = np.stack(values) if dataset.ndim > 1 else list(values)
        self._pending = []

    def close(self) -> Path:
        """Commit: flush, close, fsync, and rename the temporary file to `path`."""
        if self._closed:
            return self.path
        with self._writing():
            self._write_pending()
            if "checkpoint_count" in self._file.attrs:
                del self._file.attrs["checkpoint_count"]
            # After a close that fails HDF5 cannot touch any file again: fail in a flush instead.
            self._file.flush()
            self._file.close()
            fsutil.commit(self._temp, self.path)
        self._closed = True
        return self.path

    def suspend(self) -> Path:
        """Checkpoint and close without committing: the temporary file stays for a resume."""
        if not self._closed:
            self.checkpoint()
            with self._writing():
                self._file.close()
            self._closed = True
        return self._temp

    def abort(self) -> None:
        """Close without committing and remove the temporary file."""
        if not self._closed:
            self._closed = True
            _discard(self._file)
        self._temp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Writes that fail (disk full...) leave a file HDF5 cannot vouch for: it is removed."""
        try:
            yield
        except _WRITE_ERRORS as exc:
            self.abort()
            raise ShardError(f"cannot write: {_write_reason(exc)}", self.path) from exc

    def _salvage(self, leftovers: list[Path]) -> None:
        """Copy the checkpointed rows of the most complete leftover, then remove all leftovers."""
        best, best_count = None, 0
        for leftover in leftovers:
            count = _checkpointed_rows(leftover)
            if count > best_count:
                best, best_count = leftover, count
        if best is not None:
            self._copy_rows(best, best_count)
            self.checkpoint()
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)

    def _copy_rows(self, leftover: Path, count: int) -> None:
        with h5py.File(leftover, "r") as old:
            mine = {"image_size": self.image_size, "split": self.split, **self.attrs}
            for key, value in mine.items():
                theirs = _plain(old.attrs.get(key))
                if theirs != _plain(value):
                    raise ShardError(
                        f"the interrupted shard {leftover.name} was written with {key}={theirs!r}, "
                        f"not {value!r}: resume with the same options, or delete it",
                        self.path,
                    )
            gray, rgb = old["gray"], old["rgb"]
            sources, hashes = old["source"].asstr(), old["sha256"].asstr()
            for i in range(count):
                try:
                    row = (gray[i], rgb[i], sources[i], hashes[i])
                except (OSError, ValueError):
                    break  # damaged after the last good checkpoint: keep what precedes it
                self.append(*row)


def _checkpointed_rows(path: Path) -> int:
    """How many leading rows of a leftover temporary file are checkpointed and readable."""
    try:
        with h5py.File(path, "r") as f:
            count = int(f.attrs.get("checkpoint_count", 0))
            if f.attrs.get("format") != FORMAT_NAME or count <= 0:
                return 0
            rgb, gray = f["rgb"], f["gray"]
            count = min(count, rgb.shape[0], gray.shape[0], f["source"].shape[0])
            count = min(count, f["sha256"].shape[0])
            for i in range(count):
                # A row whose chunk a kill left unindexed would read back as zeros, silently.
                for dataset in (gray, rgb):
                    info = dataset.id.get_chunk_info_by_coord((i,) + (0,) * (dataset.ndim - 1))
                    if info.byte_offset is None:
                        return i
            return count
    except _READ_ERRORS:
        return 0


class Shard:
    """An open, validated shard (from `open_shard`); a context manager that closes the file."""

    def __init__(self, path: Path, file: h5py.File) -> None:
        self.path = path
        self._file = file
        self.attrs = {key: _plain(value) for key, value in file.attrs.items()}
        self.image_size = int(self.attrs["image_size"])
        self.split = str(self.attrs["split"])
        self.gray: h5py.Dataset = file["gray"]
        self.rgb: h5py.Dataset = file["rgb"]
        self.sources: list[str] = list(file["source"].asstr()[()])
        self.sha256: list[str] = list(file["sha256"].asstr()[()])

    def __enter__(self) -> Shard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.sources)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Image `i` as (gray (S, S) uint8, rgb (S, S, 3) uint8)."""
        if not 0 <= i < len(self):
            raise IndexError(f"{self.path}: image {i} out of range (0..{len(self) - 1})")
        try:
            return self.gray[i], self.rgb[i]
        except _READ_ERRORS as exc:
            raise ShardError(f"image {i} is damaged: {one_line(exc)}", self.path) from exc

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image at once as (gray (N, S, S), rgb (N, S, S, 3)) uint8; a damaged one is a
        ShardError naming it (found by reading image by image, only once a bulk read failed)."""
        try:
            return self.gray[...], self.rgb[...]
        except _READ_ERRORS as exc:
            for i in range(len(self)):
                self.read(i)
            raise ShardError(f"damaged image data: {one_line(exc)}", self.path) from exc

    def close(self) -> None:
        self._file.close()


def open_shard(path: str | os.PathLike[str]) -> Shard:
    """Open and validate a shard; a ShardError says in one line why a file is not one.

    A shard is untrusted: only a regular file is opened, and before any image or name is read
    its four datasets must live in the file itself (no external storage, external or soft
    links, virtual datasets), use only the filters colorize writes, and declare no more images
    than the file's size can hold.
    """
    path = Path(path)
    _check_regular(path)
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise ShardError(f"cannot read: {one_line(exc)}", path) from exc
    if not is_hdf5:
        raise ShardError("not an HDF5 file, so not a colorize shard (see docs/format.md)", path)
    try:
        file = h5py.File(path, "r")
    except _READ_ERRORS as exc:
        raise ShardError(f"damaged or truncated HDF5 file: {one_line(exc)}", path) from exc
    try:
        _validate(file, path)
        return Shard(path, file)
    except ShardError:
        file.close()
        raise
    except _READ_ERRORS as exc:
        file.close()
        raise ShardError(f"damaged shard: {one_line(exc)}", path) from exc


def _check_regular(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise ShardError("no such shard file", path) from None
    except OSError as exc:
        raise ShardError(f"cannot read: {fsutil.os_reason(exc)}", path) from None
    if stat.S_ISDIR(mode):
        raise ShardError("is a directory, not a shard file", path)
    if not stat.S_ISREG(mode):
        raise ShardError(fsutil.NOT_REGULAR, path)


def _check_storage(file: h5py.File, path: Path, names: Sequence[str]) -> None:
    """Refuse datasets whose data would come from elsewhere than this file, or through filters
    colorize never writes, before anything is read from them."""
    for name in names:
        link = file.get(name, getlink=True)
        if link is None:
            continue  # reported as missing by the caller
        if not isinstance(link, h5py.HardLink):
            kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
            raise ShardError(f"dataset {name!r} is {kind}: a shard's data stays in it", path)
        dataset = file[name]
        if not isinstance(dataset, h5py.Dataset):
            continue
        plist = dataset.id.get_create_plist()
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            raise ShardError(f"dataset {name!r} is virtual: a shard's data stays in it", path)
        if plist.get_external_count():
            raise ShardError(
                f"dataset {name!r} is stored in an external file: a shard's data stays in it",
                path,
            )
        for i in range(plist.get_nfilters()):
            code = plist.get_filter(i)[0]
            if code not in _FILTERS:
                raise ShardError(
                    f"dataset {name!r} uses HDF5 filter {code}, which colorize never writes", path
                )


def _validate(file: h5py.File, path: Path) -> None:
    if file.attrs.get("format") != FORMAT_NAME:
        raise ShardError(
            f"a foreign HDF5 file, not a colorize shard (no format={FORMAT_NAME!r})", path
        )
    version = file.attrs.get("format_version")
    if not isinstance(version, int | np.integer):
        raise ShardError(f"bad format_version attribute {_plain(version)!r}", path)
    if version > FORMAT_VERSION:
        raise ShardError(
            f"shard format version {version} is newer than this colorize reads "
            f"({FORMAT_VERSION}); upgrade colorize",
            path,
        )
    if version < OLDEST_READABLE_VERSION:
        raise ShardError(
            f"shard format version {version} is too old for this colorize "
            f"(reads {OLDEST_READABLE_VERSION}..{FORMAT_VERSION}); prepare it again",
            path,
        )
    size = file.attrs.get("image_size")
    if not isinstance(size, int | np.integer) or size < 1:
        raise ShardError(f"bad image_size attribute {_plain(size)!r}", path)
    if not isinstance(_plain(file.attrs.get("split")), str):
        raise ShardError("missing split attribute", path)
    _check_storage(file, path, _DATASETS)
    expected = {"gray": (size, size), "rgb": (size, size, 3), "source": (), "sha256": ()}
    lengths = {}
    for name, tail in expected.items():
        dataset = file.get(name)
        if not isinstance(dataset, h5py.Dataset):
            raise ShardError(f"missing dataset {name!r}", path)
        if dataset.ndim != 1 + len(tail) or dataset.shape[1:] != tail:
            want = ", ".join(("N", *map(str, tail)))
            raise ShardError(f"dataset {name!r} has shape {dataset.shape}, expected ({want})", path)
        lengths[name] = dataset.shape[0]
    for name in ("gray", "rgb"):
        if file[name].dtype != np.uint8:
            raise ShardError(f"dataset {name!r} is {file[name].dtype}, expected uint8", path)
    for name in ("source", "sha256"):
        if h5py.check_string_dtype(file[name].dtype) is None:
            raise ShardError(f"dataset {name!r} is {file[name].dtype}, expected strings", path)
    if len(set(lengths.values())) != 1:
        counts = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise ShardError(f"datasets disagree on the number of images: {counts}", path)
    count, file_bytes = lengths["sha256"], path.stat().st_size
    if count * _MIN_ROW_BYTES > file_bytes:
        raise ShardError(
            f"declares {count} images, more than its {file_bytes} bytes can hold "
            "(a damaged or forged shard)",
            path,
        )


def expand_shard_paths(patterns: Sequence[str], split: str | None = None) -> list[Path]:
    """Shard files named directly or by glob ("runs/out-*.h5"), sorted and without repeats.

    A name that exists is that file, even with glob characters in it (`data[1].h5`). Globs skip
    writers' temporary files; `split` ("train", "val") keeps only shards of that split. A pattern
    that matches nothing is a ShardError.
    """
    found: set[Path] = set()
    for pattern in patterns:
        path = Path(pattern)
        if glob.has_magic(pattern) and not os.path.lexists(path):
            matches = [Path(p) for p in glob.glob(pattern, recursive=True)]
            matches = [p for p in matches if p.is_file() and fsutil.TEMP_MARK not in p.name]
            if not matches:
                raise ShardError("matches no shard file", pattern)
        else:
            if os.path.isdir(path):
                raise ShardError(f"is a directory; name the shards, e.g. {path / '*.h5'}", path)
            _check_regular(path)
            matches = [path]
        if split is not None:
            matches = [p for p in matches if _shard_split(p) == split]
            if not matches:
                raise ShardError(f"holds no {split} shard", pattern)
        found.update(matches)
    return sorted(found)


def _shard_split(path: Path) -> str:
    with open_shard(path) as shard:
        return shard.split


def describe_shard(path: str | os.PathLike[str], verify: bool = False) -> dict[str, Any]:
    """What `colorize info` shows about one shard; `verify` re-reads and checks every image."""
    with open_shard(path) as shard:
        try:
            extra = {k: v for k, v in shard.attrs.items() if k not in RESERVED_ATTRS}
            rgb = shard.rgb
            compression = rgb.compression or "none"
            if rgb.compression_opts is not None:
                compression = f"{compression}-{rgb.compression_opts}"
            description: dict[str, Any] = {
                "path": str(shard.path),
                "count": len(shard),
                "split": shard.split,
                "image_size": shard.image_size,
                "format": f"{shard.attrs['format']} {shard.attrs['format_version']}",
                "creator": shard.attrs.get("creator"),
                "created": shard.attrs.get("created"),
                "grayscale": shard.attrs.get("grayscale"),
                "color_space": shard.attrs.get("color_space"),
                "compression": compression,
                "file_bytes": shard.path.stat().st_size,
                "attrs": extra,
            }
            if verify:
                description["duplicates"] = _verify(shard)
                description["verified"] = True
        except _READ_ERRORS as exc:
            raise ShardError(f"damaged shard: {one_line(exc)}", shard.path) from exc
    return description


def _verify(shard: Shard) -> int:
    """Read every image back (checksums included); return how many sha256 repeat an earlier one."""
    for i, (source, digest) in enumerate(zip(shard.sources, shard.sha256, strict=True)):
        if not source:
            raise ShardError(f"image {i} has an empty source", shard.path)
        if not _SHA256.fullmatch(digest):
            raise ShardError(f"image {i} has a malformed sha256 {digest!r}", shard.path)
        gray, rgb = shard.read(i)
        if not np.array_equal(gray, color.grayscale(rgb)):
            raise ShardError(f"image {i}: gray is not color.grayscale(rgb)", shard.path)
    return len(shard.sha256) - len(set(shard.sha256))


def _plain(value: Any) -> Any:
    """An HDF5 attribute value as plain Python (JSON-ready)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _discard(file: h5py.File) -> None:
    """Close a file that is being thrown away without writing to it.

    After a failed write HDF5 cannot flush the file, so it cannot close it either, and a file it
    cannot close crashes the interpreter at exit; pointing its descriptor at the null device
    lets the close succeed.
    """
    with contextlib.suppress(*_WRITE_ERRORS, ValueError):
        if file.id.valid and file.driver == "sec2":
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, file.id.get_vfd_handle())
            finally:
                os.close(null)
    with contextlib.suppress(*_WRITE_ERRORS):
        file.close()


def _write_reason(exc: BaseException) -> str:
    """A failed write in a few words; HDF5 reports the system's errno inside its message."""
    code = exc.errno if isinstance(exc, OSError) else None
    found = re.search(r"errno = (\d+)", str(exc))
    if found:
        code = int(found.group(1))
    return (code is not None and fsutil.os_reason(code)) or one_line(exc)
