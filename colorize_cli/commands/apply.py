"""`colorize apply`: photos and videos -> colorized at full resolution (inference/applying.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Annotated, Any

import typer

from colorize_cli.commands import common
from colorize_cli.config import (
    APPLY_BATCH_SIZE,
    MAX_NETWORK_EVERY,
    MAX_PIXELS,
    PHOTO_FORMATS,
    PHOTO_QUALITY,
    RENDER_SIZE,
    VIDEO_CRF,
    VIDEO_NETWORK_EVERY,
    VIDEO_PRESET,
    VIDEO_PRESETS,
    ApplyOptions,
)

PhotoFormat = common.choices("PhotoFormat", PHOTO_FORMATS)
VideoPreset = common.choices("VideoPreset", VIDEO_PRESETS)


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
        PhotoFormat | None,
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
    network_every: Annotated[
        int,
        typer.Option(
            help="Videos: run the network on every Nth frame of a shot (and at each cut); the "
            "frames between keep the colour before them, fitted to their own gray by the "
            f"stabiliser; 1 to {MAX_NETWORK_EVERY}. 2 (the default) measured +0.03 CIEDE2000 for "
            "1.6x the speed at 480p (1.1x at 1080p); 1 runs it on every frame (docs/video.md)."
        ),
    ] = VIDEO_NETWORK_EVERY,
    video_preset: Annotated[
        VideoPreset,
        typer.Option(
            help="Videos: x264's preset, trading fidelity per byte for encoding speed at the "
            "same --crf. faster (the default) measured as faithful as medium at 1.2x the 1080p "
            "speed; veryfast 1.4x, 0.8 dB lower PSNR-Y, 11% smaller files (docs/video.md)."
        ),
    ] = VIDEO_PRESET,
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
    hints: Annotated[
        Path | None,
        typer.Option(
            help="Colour hints: a JSON file of points for one photo, or a folder of "
            "**<stem>.json** files, one per photo (docs/hints.md). A photo whose hints are bad "
            "fails; the others are done.",
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="A reference photo: every input (videos too) takes the palette of its colours.",
        ),
    ] = None,
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
    from colorize_cli import fsutil
    from colorize_cli.imaging.images import display_path
    from colorize_cli.inference import applying, planning
    from colorize_cli.progress import RichProgress, console

    with common.errors():
        options = ApplyOptions(
            sources=inputs,
            output=output,
            out_dir=out_dir,
            overwrite=overwrite,
            format=None if format is None else str(format),
            quality=quality,
            model_path=model,
            render_size=render_size,
            batch_size=batch_size,
            max_pixels=max_pixels,
            null_separated=null,
            crf=crf,
            stabilize=stabilize,
            network_every=network_every,
            video_preset=str(video_preset),
            backend=str(backend),
            hints=hints,
            reference=reference,
        )
        if output == "-":
            _stream(options)
            return
        counts = {"written": 0, "skipped": 0, "failed": 0}

        def report(outcome: planning.Outcome) -> None:
            counts[outcome.status] += 1
            if outcome.status == "written":
                # A written photo's line is printed whole: an interrupt waits for its end.
                with fsutil.interrupts_held():
                    typer.echo(f"{outcome.output}\0" if null else str(outcome.output), nl=not null)
            else:
                source = display_path(outcome.source)
                console.print(
                    f"{outcome.status}: {source}: {outcome.reason}", markup=False, soft_wrap=True
                )

        outcomes = applying.apply(options, progress=RichProgress(), stdin=sys.stdin)
        try:
            for outcome in outcomes:
                report(outcome)
        except KeyboardInterrupt:
            if outcomes.gi_frame is not None:  # it came while an outcome was printed
                _interrupt(outcomes, report)
            raise
    if counts["failed"]:
        raise typer.Exit(1 if counts["written"] + counts["skipped"] else 2)


def _interrupt(outcomes: Generator[Any, None, None], report: Callable[[Any], None]) -> None:
    """Ctrl-C (or SIGTERM) that landed here rather than inside `apply`: raise it there, where the
    run stops as it does for an interrupt of its own and still yields the photos it had written,
    so what is on disk is what was listed."""
    try:
        outcome = outcomes.throw(KeyboardInterrupt())
        while True:
            report(outcome)
            outcome = next(outcomes)
    except (KeyboardInterrupt, StopIteration):
        pass


def _stream(options: ApplyOptions) -> None:
    """`colorize apply - -o -`: one encoded photo from stdin to stdout."""
    from colorize_cli.errors import ColorizeError, UsageError
    from colorize_cli.inference.applying import colorize_bytes
    from colorize_cli.inference.colorizer import Colorizer
    from colorize_cli.inference.guides import Guides

    guides = Guides(options.hints, options.reference, options.max_pixels)
    if guides.hints_path is not None and guides.hints_path.is_dir():
        raise UsageError("-o - streams one photo: give --hints a file", guides.hints_path)
    from colorize_cli.constants import MAX_STREAM_BYTES

    data = sys.stdin.buffer.read(MAX_STREAM_BYTES + 1)
    if len(data) > MAX_STREAM_BYTES:
        raise UsageError(f"stdin holds more than {MAX_STREAM_BYTES} bytes: not one photo", "-")
    colorizer = Colorizer(
        options.model_path, options.render_size, options.batch_size, options.backend
    )
    if guides.given and not colorizer.takes_hints:
        raise UsageError("this model takes no hints or reference", colorizer.model_path)
    guide = None
    if guides.given:
        try:
            guide = guides.for_photo(Path("-"), (1 << 30, 1 << 30))  # checked on the photo
        except ColorizeError as exc:
            raise UsageError(exc.reason) from None
    encoded = colorize_bytes(
        data, colorizer, options.format, options.quality, "-", options.max_pixels, guide
    )
    sys.stdout.buffer.write(encoded)
    sys.stdout.buffer.flush()
