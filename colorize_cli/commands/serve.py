"""`colorize serve`: the local web page that colorizes photos with hints (colorize_cli/serve/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from colorize_cli.commands import common
from colorize_cli.config import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    RENDER_SIZE,
    SERVE_HOST,
    SERVE_PORT,
    ServeOptions,
)


def serve(
    photos: Annotated[
        list[str] | None,
        typer.Argument(
            help="Photos or directories (searched recursively) to show in the page; more can be "
            "dropped on it.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Only this machine reaches the default; another address "
            "lets others use the page and its model (a warning says so)."
        ),
    ] = SERVE_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on; 0 takes a free one.")] = SERVE_PORT,
    model: Annotated[
        Path | None,
        typer.Option(help="A generator .keras, .onnx, .tflite or SavedModel (default: bundled)."),
    ] = None,
    backend: common.BackendOption = "auto",
    render_size: common.RenderSizeOption = RENDER_SIZE,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse photos larger than this many pixels (decompression bombs).")
    ] = MAX_PIXELS,
    max_upload_mb: Annotated[
        int, typer.Option(help="Refuse requests larger than this many MiB.")
    ] = MAX_UPLOAD_BYTES >> 20,
) -> None:
    """Open a local web page to colorize photos: place colour hints with the mouse, compare
    before and after, download (docs/serve.md). Prints its URL on stdout; Ctrl-C stops it.

    Downloads follow apply's rules: **colorize apply PHOTO --hints SAVED.json** with the page's
    saved hints gives the same file, bit for bit.
    """
    from colorize_cli.imaging.inputs import IMAGE_EXTENSIONS, expand_inputs
    from colorize_cli.progress import console

    with common.errors():
        options = ServeOptions(
            photos=tuple(photos or ()),
            host=host,
            port=port,
            model_path=model,
            render_size=render_size,
            backend=str(backend),
            max_pixels=max_pixels,
            max_upload_bytes=max_upload_mb << 20,
        )
        paths, problems = expand_inputs(options.photos, extensions=IMAGE_EXTENSIONS)
        for source, reason in problems:
            console.print(f"skipped: {source}: {reason}", markup=False, soft_wrap=True)
        if not options.local:
            console.print(
                f"warning: listening on {options.host}: anyone who can reach this machine can "
                "use the page, its model and the photos named here",
                markup=False,
                soft_wrap=True,
            )
        _run(options, paths)


def _run(options: ServeOptions, paths: list[Path]) -> None:
    from colorize_cli.errors import UsageError
    from colorize_cli.fsutil import os_reason
    from colorize_cli.progress import console
    from colorize_cli.serve.app import serve as run_server
    from colorize_cli.serve.photos import Studio

    studio = Studio(options)
    studio.add_paths(paths)

    def ready(url: str) -> None:
        typer.echo(url)

    try:
        run_server(options, studio, ready)
    except KeyboardInterrupt:  # uvicorn stops on Ctrl-C or SIGTERM, then raises it again
        console.print("stopped", markup=False)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {options.host} port {options.port}: {os_reason(exc)}"
        ) from None
