"""`colorize prepare`: photos -> HDF5 shards of grayscale/RGB pairs (library: data/prepare.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from colorize_cli.commands import common
from colorize_cli.config import FITS, MAX_PIXELS, PrepareOptions, parse_part

Fit = common.choices("Fit", FITS)


def prepare(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Photos, directories (searched recursively), globs, or **-** to read "
            "paths from stdin, one per line.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Argument(help="Output shard, e.g. **data.h5**.", show_default=False)
    ],
    size: Annotated[
        int, typer.Option(help="Side of the square images stored, in pixels.")
    ] = PrepareOptions.size,
    fit: Annotated[
        Fit,
        typer.Option(
            help="crop: resize the short side then centre-crop; pad: letterbox; "
            "resize: squash to a square."
        ),
    ] = PrepareOptions.fit,
    val_fraction: Annotated[
        float,
        typer.Option(
            help="Share of photos for the validation split (OUT.val.h5), chosen by a hash of "
            "each file's content so adding photos never moves an old one."
        ),
    ] = PrepareOptions.val_fraction,
    jobs: Annotated[
        int, typer.Option(help="Parallel decoders; 0 = all cores.")
    ] = PrepareOptions.jobs,
    shard_size: Annotated[
        int, typer.Option(help="Photos per file: writes OUT-00000.h5, OUT-00001.h5, ...; 0 = one.")
    ] = PrepareOptions.shard_size,
    min_colorfulness: Annotated[
        float,
        typer.Option(help="Skip near-grayscale photos below this Hasler-Suesstrunk colourfulness."),
    ] = PrepareOptions.min_colorfulness,
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
    from colorize_cli.data import prepare as prepare_lib
    from colorize_cli.progress import RichProgress

    with common.errors():
        options = PrepareOptions(
            sources=sources,
            out=out,
            size=size,
            fit=str(fit),
            val_fraction=val_fraction,
            jobs=jobs,
            shard_size=shard_size,
            min_colorfulness=min_colorfulness,
            resume=resume,
            part=parse_part(part),
            max_pixels=max_pixels,
            overwrite=overwrite,
        )
        report = prepare_lib.prepare(options, progress=RichProgress(), stdin=sys.stdin)
        if errors is not None:
            prepare_lib.write_errors_tsv(report, errors)
    common.print_paths(report.outputs)
    if not any(report.written.values()):
        raise typer.Exit(2)
    if report.skipped:
        raise typer.Exit(1)
