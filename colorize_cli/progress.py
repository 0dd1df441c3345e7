"""Progress and log output on stderr, shared by every command (stdout is kept for data).

Library modules take a `ProgressSink` (or None) and never import rich themselves; the CLI passes a
`RichProgress`, which draws bars on a terminal and writes plain, throttled log lines otherwise.
rich is imported on first use (a `RichProgress`, `console`, `error`), so a library module that only
takes a sink does not load the terminal library.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


@functools.cache
def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def __getattr__(name: str) -> Any:
    # `progress.console`: the stderr console, made (and rich imported) on first use.
    if name == "console":
        return _stderr_console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ProgressSink(Protocol):
    """What library code reports progress to."""

    def start(self, description: str, total: int | None, unit: str = "items") -> None: ...

    def advance(self, n: int = 1, **fields: Any) -> None: ...

    def finish(self, summary: str | None = None) -> None: ...

    def log(self, message: str) -> None: ...


class NullProgress:
    """A sink that drops everything (library use, tests)."""

    def start(self, description: str, total: int | None, unit: str = "items") -> None:
        pass

    def advance(self, n: int = 1, **fields: Any) -> None:
        pass

    def finish(self, summary: str | None = None) -> None:
        pass

    def log(self, message: str) -> None:
        pass


def _format_fields(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return "  ".join(parts)


class RichProgress:
    """Bars with rate and ETA on a terminal; one plain line every `log_every` seconds otherwise."""

    def __init__(self, out: Console | None = None, log_every: float = 10.0) -> None:
        self.console = out or _stderr_console()
        self.interactive = self.console.is_terminal
        self.log_every = log_every
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._description = ""
        self._unit = "items"
        self._total: int | None = None
        self._done = 0
        self._fields: dict[str, Any] = {}
        self._started = 0.0
        self._last_log = 0.0

    def start(self, description: str, total: int | None, unit: str = "items") -> None:
        self.finish()
        self._description, self._total, self._unit = description, total, unit
        self._done, self._fields = 0, {}
        self._started = self._last_log = time.monotonic()
        if self.interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, rate="", extra="")

    def _rate(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return f"{self._done / elapsed:.1f} {self._unit}/s"

    def advance(self, n: int = 1, **fields: Any) -> None:
        self._done += n
        self._fields.update(fields)
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, advance=n, rate=self._rate(), extra=_format_fields(self._fields)
            )
            return
        now = time.monotonic()
        if now - self._last_log >= self.log_every:
            self._last_log = now
            total = f"/{self._total}" if self._total else ""
            self.console.print(
                f"{self._description}: {self._done}{total}  {self._rate()}  "
                f"{_format_fields(self._fields)}".rstrip(),
                soft_wrap=True,
            )

    def finish(self, summary: str | None = None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
        if summary:
            self.console.print(summary, soft_wrap=True, markup=False)

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message, soft_wrap=True, markup=False)
        else:
            self.console.print(message, soft_wrap=True, markup=False)


def pass_file_names_through() -> None:
    """Let stdin and stdout carry file names that are not UTF-8 as their own bytes
    (surrogateescape, as Python decodes file names): printing such a path, or reading one from
    `find`, never fails whatever the locale's encoding is."""
    for stream in (sys.stdin, sys.stdout):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="surrogateescape")


def error(message: str) -> None:
    """Print a one-line error on stderr."""
    from rich.markup import escape

    _stderr_console().print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    sys.stderr.flush()
