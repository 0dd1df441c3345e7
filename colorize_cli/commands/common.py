"""What every command shares: typed errors to one-line messages and exit codes, printing paths.

Exit codes: 0 all done, 1 some inputs failed (the rest done), 2 bad usage or nothing usable,
130 interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

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
BackendOption = Annotated[
    str,
    typer.Option(
        help="**auto** (the runtime the model's format needs; the bundled model on LiteRT, without "
        "TensorFlow), or **tf** (TensorFlow, the reference), **onnx** or **lite**."
    ),
]
