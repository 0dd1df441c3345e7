"""The HDF5 shard format (docs/format.md): what every shard carries, the validating reader, and
`info`; shard_writer.py writes it.

A shard holds N gray/RGB pairs of one square size plus, per image, the source path and the sha256 of
the source file. Nothing outside it is followed: external storage, external links and virtual
datasets are refused before anything is read.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from colorize_cli import fsutil
from colorize_cli.errors import ShardError, one_line
from colorize_cli.imaging import color

FORMAT_NAME = "colorize-shard"
FORMAT_VERSION = 1
# Oldest version this reader understands; raise it when a change breaks old files.
OLDEST_READABLE_VERSION = 1


# The attributes every shard carries; user attrs may not shadow them.
RESERVED_ATTRS = frozenset(
    {"format", "format_version", "image_size", "split", "grayscale", "color_space", "creator"}
    | {"created", "checkpoint_count"}
)
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# What h5py raises on reading a damaged file (found by fuzz/run.py: RuntimeError among them).
READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)
# The filters a shard's datasets may use: what `ShardWriter` writes (docs/format.md); any other
# would make HDF5 look for a plugin.
_FILTERS = frozenset(
    {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32, 32000}
)
_DATASETS = ("gray", "rgb", "source", "sha256")
# Every image holds at least its 64-byte sha256 in the file (never compressed): a shard that
# declares more images than its size allows would make readers allocate for nothing.
_MIN_ROW_BYTES = 64


class Shard:
    """An open, validated shard (from `open_shard`); a context manager that closes the file."""

    def __init__(self, path: Path, file: h5py.File) -> None:
        self.path = path
        self._file = file
        self.attrs = {key: plain(value) for key, value in file.attrs.items()}
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
        except READ_ERRORS as exc:
            raise ShardError(f"image {i} is damaged: {one_line(exc)}", self.path) from exc

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image at once as (gray (N, S, S), rgb (N, S, S, 3)) uint8; a damaged one is a
        ShardError naming it (found by reading image by image, only once a bulk read failed)."""
        try:
            return self.gray[...], self.rgb[...]
        except READ_ERRORS as exc:
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
    except READ_ERRORS as exc:
        raise ShardError(f"damaged or truncated HDF5 file: {one_line(exc)}", path) from exc
    try:
        _validate(file, path)
        return Shard(path, file)
    except ShardError:
        file.close()
        raise
    except READ_ERRORS as exc:
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
        raise ShardError(f"bad format_version attribute {plain(version)!r}", path)
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
        raise ShardError(f"bad image_size attribute {plain(size)!r}", path)
    if not isinstance(plain(file.attrs.get("split")), str):
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
        except READ_ERRORS as exc:
            raise ShardError(f"damaged shard: {one_line(exc)}", shard.path) from exc
    return description


def _verify(shard: Shard) -> int:
    """Read every image back (checksums included); return how many sha256 repeat an earlier one."""
    for i, (source, digest) in enumerate(zip(shard.sources, shard.sha256, strict=True)):
        if not source:
            raise ShardError(f"image {i} has an empty source", shard.path)
        if not SHA256_PATTERN.fullmatch(digest):
            raise ShardError(f"image {i} has a malformed sha256 {digest!r}", shard.path)
        gray, rgb = shard.read(i)
        if not np.array_equal(gray, color.grayscale(rgb)):
            raise ShardError(f"image {i}: gray is not color.grayscale(rgb)", shard.path)
    return len(shard.sha256) - len(set(shard.sha256))


def plain(value: Any) -> Any:
    """An HDF5 attribute value as plain Python (JSON-ready)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
