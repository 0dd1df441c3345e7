"""The `colorize` command line: one thin typer function per subcommand (parse, call, print).

Library modules do the work; this file only turns options into calls, results into stdout lines
(data) and stderr messages (progress, errors), and errors into exit codes:
0 all done, 1 some inputs failed (the rest done), 2 bad usage or nothing usable, 130 interrupted.
TensorFlow is never imported here: `--help`, `--version`, `prepare` and `info` stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from colorize_cli import __version__
from colorize_cli.errors import ColorizeError, UsageError

app = typer.Typer(
    name="colorize",
    help="Train, evaluate and apply GAN models that colorize grayscale photographs.\n\n"
    "Photos -> [bold]prepare[/] -> shards -> [bold]train[/] -> model -> "
    "[bold]apply[/] / [bold]eval[/]. Data goes to stdout, progress and errors to stderr.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False

# The same figure as images.DEFAULT_MAX_PIXELS (a test keeps them equal); importing images here
# would load PIL and numpy for `--help`.
MAX_PIXELS = 200_000_000


def _version(value: bool) -> None:
    if value:
        typer.echo(f"colorize {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
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
    global _debug
    _debug = debug


@contextmanager
def _errors() -> Iterator[None]:
    """Turn colorize's typed errors into a one-line message on stderr and an exit code."""
    from colorize_cli.progress import error

    try:
        yield
    except ColorizeError as exc:
        if _debug:
            raise
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error("interrupted")
        raise typer.Exit(130) from None


def _print_paths(paths: list[Path]) -> None:
    for path in paths:
        typer.echo(str(path))


def _parse_part(part: str | None) -> tuple[int, int] | None:
    if part is None:
        return None
    try:
        k, n = (int(x) for x in part.split("/"))
    except ValueError:
        raise UsageError(f"--part must look like K/N (e.g. 2/8), got {part!r}") from None
    if not 1 <= k <= n:
        raise UsageError(f"--part K/N needs 1 <= K <= N, got {part!r}")
    return k, n


class Fit(StrEnum):
    crop = "crop"
    pad = "pad"
    resize = "resize"


@app.command(no_args_is_help=True)
def prepare(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Photos, directories (searched recursively), globs, or [bold]-[/] to read "
            "paths from stdin, one per line.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Argument(help="Output shard, e.g. [bold]data.h5[/].", show_default=False)
    ],
    size: Annotated[int, typer.Option(help="Side of the square images stored, in pixels.")] = 256,
    fit: Annotated[
        Fit,
        typer.Option(
            help="crop: resize the short side then centre-crop; pad: letterbox; "
            "resize: squash to a square."
        ),
    ] = Fit.crop,
    val_fraction: Annotated[
        float,
        typer.Option(
            help="Share of photos for the validation split (OUT.val.h5), chosen by a hash of "
            "each file's content so adding photos never moves an old one."
        ),
    ] = 0.05,
    jobs: Annotated[int, typer.Option(help="Parallel decoders; 0 = all cores.")] = 0,
    shard_size: Annotated[
        int, typer.Option(help="Photos per file: writes OUT-00000.h5, OUT-00001.h5, ...; 0 = one.")
    ] = 0,
    min_colorfulness: Annotated[
        float,
        typer.Option(help="Skip near-grayscale photos below this Hasler-Suesstrunk colourfulness."),
    ] = 0.0,
    errors: Annotated[
        Path | None, typer.Option(help="Write skipped files and reasons to this TSV file.")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue a killed run without redoing finished photos.")
    ] = False,
    part: Annotated[
        str | None,
        typer.Option(
            help="K/N: keep only a deterministic 1/N of the inputs (by content hash), to split "
            "the work across N machines that each write their own shards."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace earlier outputs of the same OUT instead of refusing.")
    ] = False,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse photos larger than this many pixels (decompression bombs).")
    ] = MAX_PIXELS,
) -> None:
    """Turn photos into HDF5 shards of grayscale/RGB pairs (train + validation split)."""
    from colorize_cli import prepare as prepare_lib
    from colorize_cli.progress import RichProgress

    with _errors():
        options = prepare_lib.PrepareOptions(
            sources=sources,
            out=out,
            size=size,
            fit=fit.value,
            val_fraction=val_fraction,
            jobs=jobs,
            shard_size=shard_size,
            min_colorfulness=min_colorfulness,
            resume=resume,
            part=_parse_part(part),
            max_pixels=max_pixels,
            overwrite=overwrite,
        )
        report = prepare_lib.prepare(options, progress=RichProgress(), stdin=sys.stdin)
        if errors is not None:
            prepare_lib.write_errors_tsv(report, errors)
    _print_paths(report.outputs)
    if not any(report.written.values()):
        raise typer.Exit(2)
    if report.skipped:
        raise typer.Exit(1)


@app.command(no_args_is_help=True)
def info(
    files: Annotated[
        list[Path], typer.Argument(help="Shard files (or globs).", show_default=False)
    ],
    verify: Annotated[
        bool, typer.Option(help="Re-read every image and check the schema and shapes.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per file on stdout.")
    ] = False,
) -> None:
    """Describe shard files: counts, image size, split, attributes, file size."""
    from colorize_cli import shards

    failed = 0
    with _errors():
        paths = shards.expand_shard_paths([str(f) for f in files])
    for path in paths:
        try:
            with _errors():
                description = shards.describe_shard(path, verify=verify)
        except typer.Exit:
            failed += 1
            continue
        if as_json:
            typer.echo(json.dumps(description, default=str))
        else:
            _print_description(description)
    if failed:
        raise typer.Exit(1 if failed < len(paths) else 2)


def _print_description(description: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(description.get("path", "")), show_header=False, title_justify="left")
    for key, value in description.items():
        if key == "path":
            continue
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                table.add_row(f"{key}.{sub_key}", str(sub_value))
        else:
            table.add_row(key, str(value))
    Console(highlight=False).print(table)


def _not_built(command: str, issue: int) -> None:
    from colorize_cli.progress import error

    error(f"`colorize {command}` is not built yet (issue {issue})")
    raise typer.Exit(2)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train() -> None:
    """Train a colorization GAN on shards (not built yet)."""
    _not_built("train", 3)


@app.command(
    name="eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def evaluate() -> None:
    """Score a model against the gray baseline on shards or photos (not built yet)."""
    _not_built("eval", 4)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def apply() -> None:
    """Colorize photos at full resolution, in shell pipelines (not built yet)."""
    _not_built("apply", 4)
