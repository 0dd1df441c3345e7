"""Writing the HDF5 shard format (docs/format.md; shards.py reads it): `ShardWriter` writes
`NAME.tmp-<pid>` and renames on commit, checkpointing on the way, so a killed writer leaves only a
temporary file that `ShardWriter(..., resume=True)` can pick up again.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from colorize_cli import __version__, fsutil
from colorize_cli.constants import COMPRESSIONS, DEFAULT_COMPRESSION
from colorize_cli.data.shards import (
    FORMAT_NAME,
    FORMAT_VERSION,
    READ_ERRORS,
    RESERVED_ATTRS,
    SHA256_PATTERN,
    plain,
)
from colorize_cli.errors import ShardError, one_line
from colorize_cli.imaging import color

CHECKPOINT_EVERY = 32  # images between checkpoints: what a kill can cost a resumed writer


# h5py raises RuntimeError, not OSError, from some failed flushes and closes.
_WRITE_ERRORS = (OSError, RuntimeError)


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
        if not SHA256_PATTERN.fullmatch(sha256):
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
                theirs = plain(old.attrs.get(key))
                if theirs != plain(value):
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
    except READ_ERRORS:
        return 0


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
