"""Atomic writes, safe reads of untrusted files, and OS-error messages: the one place colorize
writes a file that must not be torn, and opens a file that must not hang or flood it.

Every writer writes `NAME.tmp-<pid>` (`-<k>` when this process already has one) beside the target
and renames it over the target once it is complete and on disk, so readers see the old file or the
whole new one, and a killed writer leaves only a `.tmp-` file that no reader takes for an output.
Only a regular file is ever replaced: never a device, a pipe, a symbolic link or a directory
(a finished folder is swapped in for an old one by `replace_folder`, the old one moved aside first).

Untrusted files (photos, models, metadata) are opened with `open_regular` / `read_regular_file`:
only a regular file is read (a named pipe would block forever, `/dev/zero` never ends), and
`read_regular_file` refuses more bytes than its limit before reading any.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_MARK = ".tmp-"
NOT_REGULAR = "not a regular file (a named pipe, socket or device)"

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "is a directory",
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (over the file size limit)",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "file name too long",
}


class UnsafeFileError(OSError):
    """A file colorize refuses to read or replace (not a regular file, or too large); its
    message is the user-facing reason, which `os_reason` returns as it is."""


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


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open an untrusted file for reading, only if it is a regular file (through symbolic links).

    The type is checked before the open, which would block on a named pipe and can have side
    effects on a device, and again on the open descriptor, in case the path changed in between.
    OSError (an `UnsafeFileError` for anything but a regular file) otherwise.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        _refuse_irregular(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            _refuse_irregular(path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _refuse_irregular(path: str | os.PathLike[str]) -> None:
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    raise UnsafeFileError(NOT_REGULAR)


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of an untrusted regular file of at most `limit` bytes (`open_regular`); a larger
    one is refused before anything is read (an `UnsafeFileError`)."""
    with open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        data = file.read(limit + 1) if size <= limit else b""
        if size > limit or len(data) > limit:
            raise UnsafeFileError(
                f"file too large ({max(size, len(data))} bytes, over the limit of {limit})"
            )
    return data


def check_replaceable(target: str | os.PathLike[str]) -> None:
    """UnsafeFileError unless `target` is missing or a regular file: an output may replace a
    regular file, never a device node, a named pipe, a symbolic link or a directory (renaming
    over /dev/null, as root, would replace the system's)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise UnsafeFileError("is a symbolic link, not a regular file: refusing to replace it")
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(target))
    if not stat.S_ISREG(mode):
        raise UnsafeFileError(f"{NOT_REGULAR}: refusing to replace it")


def terminate_as_interrupt() -> Callable[[], None]:
    """Make SIGTERM (`timeout`, `kill`, `docker stop`, systemd) end the process as Ctrl-C does:
    a KeyboardInterrupt, so every `atomic_path` removes its temporary file and the command exits
    130. Returns what puts the previous handling back. Only the main thread can set a handler;
    elsewhere the default stays."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# What stops a run: Ctrl-C and `kill`.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_caught() -> Iterator[list[int]]:
    """STOP_SIGNALS that arrive inside the block are recorded in the list it gives (the caller
    stops where it chooses), not raised in the middle of whatever runs: a KeyboardInterrupt
    raised inside a C callback (HDF5, Pillow) can be swallowed. Only the main thread can catch
    them; elsewhere the list stays empty and the default handling stays."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {
        signum: signal.signal(signum, lambda signum, frame: caught.append(signum))
        for signum in STOP_SIGNALS
    }
    try:
        yield caught
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM that arrive inside the block take effect (a KeyboardInterrupt) when it
    ends, not in the middle: for a step that must be whole, like printing the path of a file just
    written. Only the main thread can hold them; elsewhere the block runs as it is."""
    with signals_caught() as caught:
        yield
    if caught:
        raise KeyboardInterrupt


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
    """fsync `temporary`, rename it over `target` (a regular file or nothing: `check_replaceable`),
    and make the rename durable."""
    fsync_path(temporary)
    check_replaceable(target)
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


def replace_folder(finished: Path, target: str | os.PathLike[str]) -> None:
    """Swap a finished folder in for `target` (a folder or nothing): the old one is moved aside
    under a temporary name first and removed only once the new one is in place; if the new one
    cannot be moved in, the old one is put back (and the OSError raised)."""
    target = Path(target)
    old = temp_path(target) if target.exists() else None
    if old is not None:
        os.replace(target, old)
    try:
        os.replace(finished, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    fsync_directory(target.parent)
    if old is not None and old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    elif old is not None:
        old.unlink(missing_ok=True)  # a file or a link where the folder was


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `target` atomically (OSError on failure, nothing left behind)."""
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically (OSError on failure, nothing left behind)."""
    write_bytes(target, text.encode("utf-8"))
