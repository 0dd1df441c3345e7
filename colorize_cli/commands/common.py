"""What every command shares: typed errors to one-line messages and exit codes, printing paths.

Exit codes: 0 all done, 1 some inputs failed (the rest done), 2 bad usage or nothing usable,
130 interrupted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from colorize_cli.constants import BACKENDS
from colorize_cli.errors import ColorizeError

# Set by `colorize --debug`: tracebacks instead of one-line errors.
debug = False


@contextmanager
def errors() -> Iterator[None]:
    """Turn colorize's typed errors into a one-line message on stderr and an exit code."""
    from colorize_cli.progress import error

    try:
        yield
    except ColorizeError as exc:
        if debug:
            raise
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error("interrupted")
        raise typer.Exit(130) from None


def choices(name: str, values: Iterable[str]) -> type[StrEnum]:
    """A typer choice type whose values are a library tuple's (`constants`, `nets/`), so the help
    text and the accepted values come from the one place the library checks."""
    return StrEnum(name, {value: value for value in values})


def print_paths(paths: list[Path]) -> None:
    for path in paths:
        typer.echo(str(path))


# Shared by apply and eval.
RenderSizeOption = Annotated[
    int,
    typer.Option(
        help="Short side, in pixels, at which the network sees each photo; its colour is then "
        "upsampled to the photo's full resolution."
    ),
]
BatchSizeOption = Annotated[int, typer.Option(help="Small photos colorized together per batch.")]
Backend = choices("Backend", BACKENDS)
BackendOption = Annotated[
    Backend,
    typer.Option(
        help="Which runtime runs the model: auto is the one its format needs (the bundled model "
        "on LiteRT, without TensorFlow); tf is TensorFlow, the reference."
    ),
]
