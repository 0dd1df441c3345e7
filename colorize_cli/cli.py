"""The `colorize` command line: the typer app and its subcommands, one module each in commands/.

Library modules do the work; a command only turns options into calls, results into stdout lines
(data) and stderr messages (progress, errors), and errors into exit codes (commands/common.py).
TensorFlow is never imported at load: `--help`, `--version`, `prepare` and `info` stay fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from colorize_cli import __version__, fsutil, progress
from colorize_cli.commands import apply, common, evaluate, export, info, prepare, serve, train

app = typer.Typer(
    name="colorize",
    help="Train, evaluate and apply GAN models that colorize grayscale photographs.\n\n"
    "Photos -> **prepare** -> shards -> **train** -> model -> "
    "**apply** / **eval**. Data goes to stdout, progress and errors to stderr.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"colorize {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    context: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    """Colorize grayscale photographs with GANs, from the shell."""
    common.debug = debug
    progress.pass_file_names_through()
    context.call_on_close(fsutil.terminate_as_interrupt())


app.command(no_args_is_help=True)(prepare.prepare)
app.command(no_args_is_help=True)(info.info)
app.command()(train.train)
app.command(no_args_is_help=True)(apply.apply)
app.command(name="eval", no_args_is_help=True)(evaluate.evaluate)
app.command(no_args_is_help=True)(export.export)
app.command()(serve.serve)
