"""`colorize eval`: score a model against the gray baseline (library: inference/evaluate.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from colorize_cli.commands import common
from colorize_cli.config import APPLY_BATCH_SIZE, RENDER_SIZE, SHEET_COUNT, EvalOptions
from colorize_cli.errors import UsageError

if TYPE_CHECKING:
    from colorize_cli.inference.evaluate import EvalResult


def evaluate(
    model: Annotated[
        str,
        typer.Argument(
            help="A generator .keras, an exported .onnx or .tflite, a SavedModel folder, or "
            "**default** for the bundled model.",
            show_default=False,
        ),
    ],
    data: Annotated[
        list[str],
        typer.Argument(
            help="Shard files (e.g. the OUT.val.h5 from prepare) or photo folders.",
            show_default=False,
        ),
    ],
    render_size: common.RenderSizeOption = RENDER_SIZE,
    batch_size: common.BatchSizeOption = APPLY_BATCH_SIZE,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as one JSON object on stdout.")
    ] = False,
    per_image: Annotated[
        Path | None, typer.Option(help="Write every photo's scores to this CSV file.")
    ] = None,
    sheet: Annotated[
        Path | None,
        typer.Option(help="Write a contact sheet PNG (gray | colorized | truth) here."),
    ] = None,
    sheet_count: Annotated[int, typer.Option(help="Photos on the contact sheet.")] = SHEET_COUNT,
    backend: common.BackendOption = "auto",
    oracle_hints: Annotated[
        int,
        typer.Option(
            help="Give each photo this many hint points sampled from its own truth (a hint "
            "model; docs/hints.md): how well the model follows hints.",
        ),
    ] = 0,
    reference: Annotated[
        str | None,
        typer.Option(
            help="Take a palette: **truth** (each photo's own) or a reference photo's path.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --oracle-hints points.")] = 0,
    blend_hints: Annotated[
        bool,
        typer.Option(
            help="Blend the --oracle-hints points into the automatic colour by hand instead of "
            "giving them to the network (the baseline a hint model must beat; any model).",
        ),
    ] = False,
) -> None:
    """Score a model against the gray baseline (no colour added) on shards or photos.

    Runs the same code as **apply** and scores at full resolution: PSNR, SSIM, CIEDE2000,
    AuC of the ab error, and colourfulness against the truth's. With **--oracle-hints N**
    each photo gets N hints from its own colours, the same ones for the same **--seed**.
    """
    from colorize_cli.imaging.images import display_path
    from colorize_cli.inference import evaluate as evaluate_lib
    from colorize_cli.progress import RichProgress, console

    with common.errors():
        options = EvalOptions(
            model=None if model == "default" else model,
            data=data,
            render_size=render_size,
            batch_size=batch_size,
            backend=str(backend),
            sheet_count=sheet_count,
            per_image=per_image,
            sheet=sheet,
            oracle_hints=oracle_hints,
            reference=reference,
            seed=seed,
            blend_hints=blend_hints,
        )
        result = evaluate_lib.evaluate(
            options.model,
            options.data,
            render_size=options.render_size,
            batch_size=options.batch_size,
            sheet_count=options.sheet_count,
            progress=RichProgress(),
            backend=options.backend,
            oracle_hints=options.oracle_hints,
            reference=options.reference,
            seed=options.seed,
            hint_mode="blend" if options.blend_hints else "network",
        )
        if not result.images:
            raise UsageError("no photo could be scored")
        if options.per_image is not None:
            result.write_per_image_csv(options.per_image)
        if options.sheet is not None:
            result.write_sheet(options.sheet)
    for name, reason in result.failures:
        console.print(f"failed: {display_path(name)}: {reason}", markup=False, soft_wrap=True)
    _print_eval_table(result)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    if result.failures:
        raise typer.Exit(1)


def _print_eval_table(result: EvalResult) -> None:
    from rich.table import Table

    from colorize_cli.inference.evaluate import METRICS
    from colorize_cli.progress import console

    summary = result.summary()
    table = Table(title=f"{result.model_path}: {len(result.images)} photos", title_justify="left")
    for column in ("metric", "model", "gray baseline", "better"):
        table.add_column(column, justify="left" if column in ("metric", "better") else "right")
    for key, label, better in METRICS:
        table.add_row(label, f"{summary['model'][key]:.4g}", f"{summary['gray'][key]:.4g}", better)
    console.print(table)
