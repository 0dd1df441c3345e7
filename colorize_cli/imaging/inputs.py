"""Which photos the user meant: files, directories (searched), globs and `-` path lists.

Also owns which file names count as photos when a directory is searched (`IMAGE_EXTENSIONS`);
a file named explicitly is always tried, since the reader (`images.py`) decides what it is.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from colorize_cli.fsutil import os_reason

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm"}
    | {".pbm", ".pnm", ".avif"}
)


def expand_inputs(
    sources: Sequence[str], stdin: TextIO | None = None, null_separated: bool = False
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, directories, globs and `-` into de-duplicated photo paths plus problems.

    Named files are kept whatever their extension (the reader decides); directories are walked
    recursively for `IMAGE_EXTENSIONS`, sorted, skipping hidden entries and never entering a
    directory twice (symlink loops). `-` reads one path per line from `stdin` (default
    `sys.stdin`), or NUL-separated paths with `null_separated` (`find -print0`); those are paths,
    never globs. Order follows `sources`; a file reached twice
    (even through a symlink) is listed once, at its first place.
    """
    paths: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for source in sources:
        if source == "-":
            text = (stdin or sys.stdin).read()
            lines = text.split("\0") if null_separated else text.splitlines()
            found = [
                path for line in lines if line.strip() for path in _expand(line, False, problems)
            ]
        else:
            found = _expand(source, True, problems)
        for path in found:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths, problems


def _expand(source: str, allow_glob: bool, problems: list[tuple[str, str]]) -> list[Path]:
    path = Path(source)
    if path.is_dir():
        found = _walk(path, problems)
        if not found:
            problems.append((source, "no images in directory"))
        return found
    if path.exists():
        return [path]
    if allow_glob and any(char in source for char in "*?["):
        matches = _glob(source)
        if not matches:
            problems.append((source, "glob matched nothing"))
        found = []
        for match in matches:
            if match.is_dir():
                found += _walk(match, problems)
            elif _is_regular_file(match, problems):
                found.append(match)
        return found
    problems.append((source, "no such file or directory"))
    return []


def _walk(root: Path, problems: list[tuple[str, str]]) -> list[Path]:
    found: list[Path] = []
    visited: set[tuple[int, int]] = set()

    def report(exc: OSError) -> None:
        problems.append((str(exc.filename), os_reason(exc)))

    for directory, subdirectories, files in os.walk(root, onerror=report, followlinks=True):
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in visited:
            subdirectories.clear()
            continue
        visited.add((info.st_dev, info.st_ino))
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found += [
            path
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
            if _is_regular_file(path := Path(directory, name), problems)
        ]
    return sorted(found)


def _is_regular_file(path: Path, problems: list[tuple[str, str]]) -> bool:
    """Whether a file met in a walk or a glob is worth reading; if not, a problem says why.

    Opening a named pipe would wait for a writer forever; a path named on the command line is
    read whatever it is (`<(command)` is a pipe), but one found by searching is not.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        missing = "broken symbolic link (its target does not exist)"
        problems.append((str(path), os_reason(exc, missing=missing)))
        return False
    if not stat.S_ISREG(mode):
        problems.append((str(path), "not a regular file (a named pipe, socket or device)"))
        return False
    return True


def _glob(pattern: str) -> list[Path]:
    """Sorted matches of a glob, absolute or relative; `**` does not follow symlinks (3.11)."""
    parts = Path(pattern).parts
    first_magic = next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))
    base = Path(*parts[:first_magic]) if first_magic else Path()
    return sorted(base.glob("/".join(parts[first_magic:])))
