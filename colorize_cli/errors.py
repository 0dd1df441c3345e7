"""The typed errors of colorize; the CLI (commands/common.py) turns them into one-line messages
and exit codes."""

from __future__ import annotations

from os import PathLike


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of a foreign library's error message, at most `limit` characters (its
    type's name when it says nothing): what a one-line error quotes."""
    text = str(exc).strip()
    line = " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


class ColorizeError(Exception):
    """Base of every error colorize raises on purpose. `exit_code` is what the CLI returns."""

    exit_code = 2

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UsageError(ColorizeError):
    """Bad arguments or options: nothing was done."""


class ImageError(ColorizeError):
    """A photo or video that cannot be read or written (missing, not an image or video, corrupt,
    too large...): that input fails, the others of the call go on."""

    exit_code = 1


class ShardError(ColorizeError):
    """A shard file that is missing, foreign, of an incompatible version or damaged."""


class ModelError(ColorizeError):
    """A model file that is missing, unsafe, or of the wrong shape."""


class TrainingError(ColorizeError):
    """Training cannot go on (NaN loss, unusable run directory, missing devices...)."""


class TrainingInterrupted(ColorizeError):
    """SIGINT/SIGTERM stopped the run after saving a checkpoint; `resume` continues it."""

    exit_code = 130
