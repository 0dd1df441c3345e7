"""Which photos the user meant: files, directories (searched), globs and `-` path lists.

Also owns which file names count as photos (`IMAGE_EXTENSIONS`) and videos (`VIDEO_EXTENSIONS`)
when a directory is searched; a file named explicitly is always tried, since the reader decides.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from colorize_cli.fsutil import NOT_REGULAR, os_reason

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm"}
    | {".pbm", ".pnm", ".avif"}
)
# What `colorize apply` treats as a video (inference/video.py), named or found in a directory.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts"}
    | {".flv", ".wmv", ".ogv", ".3gp"}
)


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether `colorize apply` reads this file as a video (by its extension)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def expand_inputs(
    sources: Sequence[str],
    stdin: TextIO | None = None,
    null_separated: bool = False,
    extensions: frozenset[str] = IMAGE_EXTENSIONS,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, directories, globs and `-` into de-duplicated photo paths plus problems.

    Named files are kept whatever their extension (the reader decides), but only regular files
    (a named pipe or a device is a problem, never opened: `fsutil.open_regular`); folders are walked
    recursively for `extensions` (photos; `apply` adds videos), sorted, skipping hidden entries
    and never entering a directory twice (symlink loops). `-` reads one path per line from
    `stdin` (default `sys.stdin`), or NUL-separated paths with `null_separated` (`find
    -print0`); those are paths, never globs. Order follows `sources`; a file reached twice (even
    through a symlink) is listed once, at its first place.
    """
    paths: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for source in sources:
        if source == "-":
            text = _read_names(stdin or sys.stdin)
            lines = text.split("\0") if null_separated else text.splitlines()
            found = [
                path
                for line in lines
                if line.strip()
                for path in _expand(line, False, extensions, problems)
            ]
        else:
            found = _expand(source, True, extensions, problems)
        for path in found:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths, problems


def _read_names(stream: TextIO) -> str:
    """All of `stream`, its bytes decoded as file names are (`os.fsdecode`): a name that is not
    UTF-8 survives as itself, whatever the locale's encoding says."""
    buffer = getattr(stream, "buffer", None)
    return os.fsdecode(buffer.read()) if buffer is not None else stream.read()


def _expand(
    source: str, allow_glob: bool, extensions: frozenset[str], problems: list[tuple[str, str]]
) -> list[Path]:
    path = Path(source)
    magic = allow_glob and any(char in source for char in "*?[")
    try:
        mode: int | None = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as exc:
        # Too long a name, a folder without search permission, a symbolic link loop.
        if not magic:
            problems.append((source, os_reason(exc)))
            return []
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        found = _walk(path, extensions, problems)
        if not found:
            videos = not extensions.isdisjoint(VIDEO_EXTENSIONS)
            problems.append(
                (source, f"no {'photos or videos' if videos else 'images'} in directory")
            )
        return found
    if mode is not None:
        if stat.S_ISREG(mode):
            return [path]
        problems.append((source, NOT_REGULAR))
        return []
    if magic:
        matches = _glob(source)
        if not matches:
            problems.append((source, "glob matched nothing"))
        found = []
        for match in matches:
            if match.is_dir():
                found += _walk(match, extensions, problems)
            elif _is_regular_file(match, problems):
                found.append(match)
        return found
    problems.append((source, "no such file or directory"))
    return []


def _walk(root: Path, extensions: frozenset[str], problems: list[tuple[str, str]]) -> list[Path]:
    found: list[Path] = []
    visited: set[tuple[int, int]] = set()

    def report(exc: OSError) -> None:
        problems.append((str(exc.filename), os_reason(exc)))

    for directory, subdirectories, files in os.walk(root, onerror=report, followlinks=True):
        try:
            info = os.stat(directory)
        except OSError as exc:
            report(exc)
            subdirectories.clear()
            continue
        if (info.st_dev, info.st_ino) in visited:
            subdirectories.clear()
            continue
        visited.add((info.st_dev, info.st_ino))
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [
            path
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in extensions
            if _is_regular_file(path := Path(directory, name), problems)
        ]
    return sorted(found)


def _is_regular_file(path: Path, problems: list[tuple[str, str]]) -> bool:
    """Whether a file met in a walk or a glob is worth reading; if not, a problem says why.

    Opening a named pipe would wait for a writer forever, and a device may never end: like a
    path named on the command line or listed on stdin, only a regular file is read.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        missing = "broken symbolic link (its target does not exist)"
        problems.append((str(path), os_reason(exc, missing=missing)))
        return False
    if not stat.S_ISREG(mode):
        problems.append((str(path), NOT_REGULAR))
        return False
    return True


def _glob(pattern: str) -> list[Path]:
    """Sorted matches of a glob, absolute or relative; `**` does not follow symlinks (3.11)."""
    parts = Path(pattern).parts
    first_magic = next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))
    base = Path(*parts[:first_magic]) if first_magic else Path()
    return sorted(base.glob("/".join(parts[first_magic:])))
