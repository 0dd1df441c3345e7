"""Atomic writes and OS-error messages: the one place colorize writes a file that must not be torn.

Every writer writes `NAME.tmp-<pid>` (`-<k>` when this process already has one) beside the target
and renames it over the target once it is complete and on disk, so readers see the old file or the
whole new one, and a killed writer leaves only a `.tmp-` file that no reader takes for an output.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "is a directory",
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (over the file size limit)",
    errno.EROFS: "read-only file system",
}


def os_reason(exc: OSError | int | None, missing: str = "no such file") -> str | None:
    """A short, user-facing reason for an OSError or errno ("permission denied", "disk full"...);
    None for an errno this table does not know when given a bare number."""
    code = exc.errno if isinstance(exc, OSError) else exc
    if code in (errno.ENOENT, errno.ENOTDIR):
        return missing
    if code in _REASONS:
        return _REASONS[code]
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return None


def temp_path(target: str | os.PathLike[str], keep_suffix: bool = False) -> Path:
    """A free temporary name beside `target`; `keep_suffix` repeats its suffix at the end, for
    writers that choose the format from the name (Keras needs `.keras`)."""
    target = Path(target)
    end = target.suffix if keep_suffix else ""
    temp = target.with_name(f"{target.name}{TEMP_MARK}{os.getpid()}{end}")
    k = 0
    while temp.exists():
        k += 1
        temp = target.with_name(f"{target.name}{TEMP_MARK}{os.getpid()}-{k}{end}")
    return temp


def temp_paths(target: str | os.PathLike[str]) -> list[Path]:
    """The temporary files writers of `target` left behind (killed or interrupted), oldest first."""
    target = Path(target)
    found = target.parent.glob(glob.escape(target.name) + TEMP_MARK + "*")
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a written file to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make a rename inside directory `path` durable; some filesystems cannot, which is fine."""
    with contextlib.suppress(OSError):
        fsync_path(path)


def commit(temporary: Path, target: str | os.PathLike[str]) -> None:
    """fsync `temporary`, rename it over `target`, and make the rename durable."""
    fsync_path(temporary)
    os.replace(temporary, target)
    fsync_directory(Path(target).parent)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path beside `target` that replaces it once the block succeeds; removed if the
    block (or the commit) fails. The caller writes the file at the path it is given."""
    temporary = temp_path(target, keep_suffix)
    try:
        yield temporary
        commit(temporary, target)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `target` atomically (OSError on failure, nothing left behind)."""
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically (OSError on failure, nothing left behind)."""
    write_bytes(target, text.encode("utf-8"))
