"""`colorize apply`: photos and videos -> colorized at full resolution (inference/applying.py)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from colorize_cli.commands import common
from colorize_cli.config import APPLY_BATCH_SIZE, MAX_PIXELS, PHOTO_QUALITY, RENDER_SIZE, VIDEO_CRF
from colorize_cli.errors import UsageError


class OutputFormat(StrEnum):
    png = "png"
    jpg = "jpg"
    webp = "webp"


def apply(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Photos, videos, directories (searched recursively), globs, or **-** for paths "
            "on stdin. **colorize apply - -o - < old.jpg > new.png** streams one photo.",
            show_default=False,
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Output file for a single input; - for stdout."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Write outputs here, keeping names relative to directory arguments."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that already exist.")] = False,
    format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format", help="Output format (default: from the output name, else the input's)."
        ),
    ] = None,
    quality: Annotated[int, typer.Option(help="JPEG/WebP quality, 1-100.")] = PHOTO_QUALITY,
    crf: Annotated[
        int, typer.Option(help="Videos: H.264 constant rate factor, 0 (lossless) to 51.")
    ] = VIDEO_CRF,
    stabilize: Annotated[
        bool,
        typer.Option(
            help="Videos: smooth the colour over time within each shot (resets at cuts), "
            "against flicker."
        ),
    ] = True,
    model: Annotated[
        Path | None,
        typer.Option(
            help="A generator .keras file from `colorize train`, an exported .onnx / .tflite, or "
            "a SavedModel folder (default: bundled)."
        ),
    ] = None,
    backend: common.BackendOption = "auto",
    render_size: common.RenderSizeOption = RENDER_SIZE,
    batch_size: common.BatchSizeOption = APPLY_BATCH_SIZE,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse photos larger than this many pixels (decompression bombs).")
    ] = MAX_PIXELS,
    null: Annotated[
        bool,
        typer.Option(
            "--null",
            "-0",
            help="End each printed path with a NUL byte instead of a newline, and read the paths "
            "of **-** NUL-separated: any file name survives **find -print0** and **xargs -0**.",
        ),
    ] = False,
) -> None:
    """Colorize photos and videos at full resolution; print each written path on stdout.

    By default **NAME.jpg** becomes **NAME.color.jpg** beside it, and **clip.mp4**
    **clip.color.mp4** (H.264, same frames, timestamps and sound; docs/video.md). Inputs are
    never overwritten; existing outputs are skipped unless **--overwrite**. The output keeps the
    input's own luminance: its grayscale equals the input's.
    """
    from colorize_cli.imaging.images import display_path
    from colorize_cli.inference import applying
    from colorize_cli.progress import RichProgress, console

    fmt = None if format is None else format.value
    with common.errors():
        if output == "-":
            if inputs != ["-"]:
                raise UsageError("-o - streams one photo from stdin: use `colorize apply - -o -`")
            from colorize_cli.inference.colorizer import Colorizer

            options = applying.ApplyOptions(["-"], None, None, format=fmt, quality=quality)
            applying.check_options(options)
            data = sys.stdin.buffer.read()
            colorizer = Colorizer(model, render_size, batch_size, backend)
            encoded = applying.colorize_bytes(data, colorizer, fmt, quality, "-", max_pixels)
            sys.stdout.buffer.write(encoded)
            sys.stdout.buffer.flush()
            return
        options = applying.ApplyOptions(
            sources=inputs,
            output=output,
            out_dir=out_dir,
            overwrite=overwrite,
            format=fmt,
            quality=quality,
            model_path=model,
            render_size=render_size,
            batch_size=batch_size,
            max_pixels=max_pixels,
            null_separated=null,
            crf=crf,
            stabilize=stabilize,
            backend=backend,
        )
        counts = {"written": 0, "skipped": 0, "failed": 0}
        for outcome in applying.apply(options, progress=RichProgress(), stdin=sys.stdin):
            counts[outcome.status] += 1
            if outcome.status == "written":
                typer.echo(f"{outcome.output}\0" if null else str(outcome.output), nl=not null)
            else:
                source = display_path(outcome.source)
                console.print(
                    f"{outcome.status}: {source}: {outcome.reason}", markup=False, soft_wrap=True
                )
    if counts["failed"]:
        raise typer.Exit(1 if counts["written"] + counts["skipped"] else 2)
