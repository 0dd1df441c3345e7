"""`colorize export`: a generator -> ONNX, TFLite or SavedModel, verified (inference/export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from colorize_cli.commands import common
from colorize_cli.config import EXPORT_FORMATS, QUANTIZATIONS, RENDER_SIZE, ExportOptions

ExportFormat = common.choices("ExportFormat", EXPORT_FORMATS)
Quantization = common.choices("Quantization", QUANTIZATIONS)


def export(
    model: Annotated[
        str,
        typer.Argument(
            help="A generator .keras file, or **default** for the bundled model.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Argument(
            help="The file to write: **.onnx** or **.tflite**, or a folder with "
            "**--format savedmodel**.",
            show_default=False,
        ),
    ],
    format: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="The format to write (default: from OUT's suffix)."),
    ] = None,
    quantize: Annotated[
        Quantization | None,
        typer.Option(
            help="TFLite only: **float16** (half the size) or **int8** (a quarter; calibrated "
            "on --photos). Check what it costs with **colorize eval**."
        ),
    ] = None,
    photos: Annotated[
        list[str] | None,
        typer.Option(
            help="Photos or folders to verify the export on (and to calibrate int8); "
            "default: generated gray images. Repeatable."
        ),
    ] = None,
    render_size: common.RenderSizeOption = RENDER_SIZE,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    r"""Export a generator to ONNX, TFLite or a SavedModel, with free height and width.

    The export is run next to the Keras model on photos before it is kept: the max and mean
    |difference| in a\*b\* are printed, and an export beyond the tolerance is refused and removed.
    The model card's facts and the input/output contract go into the file's metadata
    (docs/export.md). Prints the written path on stdout.
    """
    from colorize_cli.inference import export as export_lib
    from colorize_cli.progress import RichProgress, console

    with common.errors():
        options = ExportOptions(
            model=None if model == "default" else model,
            out=out,
            format=None if format is None else str(format),
            quantize=None if quantize is None else str(quantize),
            photos=tuple(photos or ()),
            render_size=render_size,
            overwrite=overwrite,
        )
        report = export_lib.export(options, progress=RichProgress())
    checked = "generated gray images" if report.synthetic else "photos"
    limit_max, limit_mean = report.tolerance
    console.print(
        f"{report.format} ({report.precision}), {report.file_bytes / 2**20:.1f} MiB: a*b* differ "
        f"from Keras by max {report.max_diff:.3g}, mean {report.mean_diff:.3g} on "
        f"{report.photos} {checked} (tolerance {limit_max:g} / {limit_mean:g}); "
        f"{report.seconds:.1f} s",
        markup=False,
        soft_wrap=True,
    )
    typer.echo(str(report.path))
