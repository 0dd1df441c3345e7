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
from typing import TYPE_CHECKING, Annotated

import typer

from colorize_cli import __version__
from colorize_cli.errors import ColorizeError, UsageError

if TYPE_CHECKING:
    from colorize_cli.inference.evaluate import EvalResult

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
            help="Photos, directories (searched recursively), globs, or **-** to read "
            "paths from stdin, one per line.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Argument(help="Output shard, e.g. **data.h5**.", show_default=False)
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
    from colorize_cli.data import prepare as prepare_lib
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
        list[str],
        typer.Argument(
            help="Shard files or globs, generator **.keras** files, or **default** for the "
            "bundled model.",
            show_default=False,
        ),
    ],
    verify: Annotated[
        bool, typer.Option(help="Re-read every image of a shard and check schema and shapes.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per file on stdout.")
    ] = False,
) -> None:
    """Describe shards (counts, image size, split, attributes) or models (size, training)."""
    from colorize_cli.data import shards
    from colorize_cli.inference.model_info import describe_model

    targets: list[tuple[Path, bool]] = []  # (path, is a model)
    with _errors():
        for name in files:
            if name == "default" or name.endswith(".keras"):
                from colorize_cli.inference.colorizer import DEFAULT_MODEL_PATH

                targets.append((DEFAULT_MODEL_PATH if name == "default" else Path(name), True))
            else:
                targets.extend((path, False) for path in shards.expand_shard_paths([name]))
    failed = 0
    for path, is_model in targets:
        try:
            with _errors():
                if is_model:
                    description = describe_model(path)
                else:
                    description = shards.describe_shard(path, verify=verify)
        except typer.Exit:
            failed += 1
            continue
        if as_json:
            typer.echo(json.dumps(description, default=str))
        else:
            _print_description(description)
    if failed:
        raise typer.Exit(1 if failed < len(targets) else 2)


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


class ModelPreset(StrEnum):
    tiny = "tiny"
    small = "small"
    base = "base"
    lite0 = "lite0"
    lite0_scratch = "lite0-scratch"


class EncoderBN(StrEnum):
    train = "train"
    frozen = "frozen"


class Precision(StrEnum):
    float32 = "float32"
    mixed = "mixed"


# Listed here rather than imported from recipes.py, which would load TF for --help; a test keeps
# this list equal to recipes.RECIPES.
RECIPE_NAMES = ("pix2pix", "l1-warmup", "rebalanced", "nogan", "paper")  # in recipes.RECIPES order
DEFAULT_RECIPE = "nogan"
DEFAULT_EPOCHS = 10


@app.command()
def train(
    shards: Annotated[
        list[str] | None,
        typer.Argument(
            help="Training shards or globs (e.g. **data-*[0-9].h5**); validation comes from the "
            "*.val.h5 files beside them.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory to create (default: runs/NAME-TIME).")
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Passes over the training photos [default: 10; with --resume: raises "
            "the run's total]."
        ),
    ] = None,
    steps_per_epoch: Annotated[
        int | None, typer.Option(help="Steps per epoch (default: one pass over the photos).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Photos per step (over all devices).")] = 16,
    crop: Annotated[
        int | None,
        typer.Option(
            help="Random square crop, in pixels, a multiple of the model's stride [default: 128, "
            "or the largest such crop the shards' photos allow].",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the recipe's).")] = None,
    rebalance: Annotated[
        float | None,
        typer.Option(
            help="Favour rare colours: weight each pixel's L1 by its colour's rarity, mixed with "
            "uniform weights in this share (0: full inverse frequency, 1: none; default: the "
            "recipe's, 0.9 for `rebalanced`, none for the others). a*b* recipes only.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of weights, data order and crops.")] = 0,
    model: Annotated[
        ModelPreset,
        typer.Option(
            help="Network: lite0 (ImageNet-pretrained encoder), tiny, small, base, or "
            "lite0-scratch (docs/models.md)."
        ),
    ] = ModelPreset.lite0,
    recipe: Annotated[
        str,
        typer.Option(help=f"Losses and optimizers: {', '.join(RECIPE_NAMES)} (docs/recipes.md)."),
    ] = DEFAULT_RECIPE,
    xla: Annotated[
        bool, typer.Option(help="Compile the step with XLA (slower on CPUs; try it on GPUs).")
    ] = False,
    checkpoint_every: Annotated[
        int, typer.Option(help="Also checkpoint every N steps (0: at each epoch's end only).")
    ] = 0,
    keep_checkpoints: Annotated[int, typer.Option(help="Checkpoints kept.")] = 3,
    init: Annotated[
        Path | None, typer.Option(help="Fine-tune from this generator .keras file.")
    ] = None,
    tensorboard: Annotated[bool, typer.Option(help="Write TensorBoard logs in the run.")] = False,
    gpu: Annotated[
        str | None, typer.Option(help="GPU numbers to train on, e.g. 0 or 0,1 (default: all).")
    ] = None,
    cpu: Annotated[
        bool, typer.Option("--cpu", help="Train on the CPU even if GPUs exist.")
    ] = False,
    precision: Annotated[
        Precision, typer.Option(help="mixed: float16 compute on GPUs.")
    ] = Precision.float32,
    val: Annotated[
        list[str] | None, typer.Option(help="Validation shards (default: *.val.h5 beside).")
    ] = None,
    samples: Annotated[
        int, typer.Option(help="Validation photos in each epoch's sample grid.")
    ] = 8,
    encoder_bn: Annotated[
        EncoderBN,
        typer.Option(
            help="A pretrained encoder's BatchNorm while it learns: train (batch statistics) or "
            "frozen (its ImageNet statistics and scales kept)."
        ),
    ] = EncoderBN.train,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the run in this directory exactly where it stopped."),
    ] = None,
) -> None:
    """Train a colorization GAN on shards; print the trained model's path on stdout.

    The run directory holds config.json, metrics.jsonl, samples/, checkpoints/, model.keras (last
    epoch) and best.keras (best validation score: CIEDE2000 and colourfulness weighed together,
    docs/recipes.md). Ctrl-C saves a checkpoint and exits 130; **colorize train --resume RUN**
    continues it.
    """
    with _errors():
        if recipe not in RECIPE_NAMES:
            raise UsageError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPE_NAMES)}")
        if resume is None and not shards:
            raise UsageError("give the training shards, or --resume RUN")
        from colorize_cli.progress import RichProgress
        from colorize_cli.training import train as train_lib
        from colorize_cli.training.devices import parse_devices

        devices = parse_devices(gpu, cpu)
        if resume is not None:
            if shards:
                raise UsageError("--resume continues a run with its own settings: give no shards")
            result = train_lib.resume(resume, RichProgress(), epochs=epochs, devices=devices)
        else:
            config = train_lib.TrainConfig(
                shards=list(shards),
                out=str(out or _default_run_dir(shards[0])),
                epochs=DEFAULT_EPOCHS if epochs is None else epochs,
                steps_per_epoch=steps_per_epoch,
                batch_size=batch_size,
                crop=crop,
                lr=lr,
                rebalance=rebalance,
                seed=seed,
                model=model.value,
                recipe=recipe,
                xla=xla,
                checkpoint_every=checkpoint_every,
                keep_checkpoints=keep_checkpoints,
                init=None if init is None else str(init),
                tensorboard=tensorboard,
                devices=devices,
                precision=precision.value,
                val=val,
                samples=samples,
                encoder_bn=encoder_bn.value,
            )
            result = train_lib.train(config, RichProgress())
    typer.echo(str(result.model_path))


def _default_run_dir(first_shard: str) -> Path:
    import time

    stem = Path(first_shard).name.split(".")[0].split("*")[0] or "run"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


class OutputFormat(StrEnum):
    png = "png"
    jpg = "jpg"
    webp = "webp"


# Shared by apply and eval; the defaults are colorizer.DEFAULT_* (a test keeps them equal).
RENDER_SIZE = 160
BATCH_SIZE = 8
RenderSizeOption = Annotated[
    int,
    typer.Option(
        help="Short side, in pixels, at which the network sees each photo; its colour is then "
        "upsampled to the photo's full resolution."
    ),
]
BatchSizeOption = Annotated[int, typer.Option(help="Small photos colorized together per batch.")]


@app.command(no_args_is_help=True)
def apply(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Photos, directories (searched recursively), globs, or **-** for paths on "
            "stdin. **colorize apply - -o - < old.jpg > new.png** streams one photo.",
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
    quality: Annotated[int, typer.Option(help="JPEG/WebP quality, 1-100.")] = 95,
    model: Annotated[
        Path | None,
        typer.Option(help="A generator .keras file from `colorize train` (default: bundled)."),
    ] = None,
    render_size: RenderSizeOption = RENDER_SIZE,
    batch_size: BatchSizeOption = BATCH_SIZE,
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
    """Colorize photos at full resolution; print each written path on stdout.

    By default **NAME.jpg** becomes **NAME.color.jpg** beside it. Inputs are never
    overwritten; existing outputs are skipped unless **--overwrite**. The output keeps the
    input's own luminance: its grayscale equals the input's.
    """
    from colorize_cli.imaging.images import display_path
    from colorize_cli.inference import applying
    from colorize_cli.progress import RichProgress, console

    fmt = None if format is None else format.value
    with _errors():
        if output == "-":
            if inputs != ["-"]:
                raise UsageError("-o - streams one photo from stdin: use `colorize apply - -o -`")
            from colorize_cli.inference.colorizer import Colorizer

            options = applying.ApplyOptions(["-"], None, None, format=fmt, quality=quality)
            applying.check_options(options)
            data = sys.stdin.buffer.read()
            colorizer = Colorizer(model, render_size, batch_size)
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


@app.command(name="eval", no_args_is_help=True)
def evaluate(
    model: Annotated[
        str,
        typer.Argument(
            help="A generator .keras file, or **default** for the bundled model.",
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
    render_size: RenderSizeOption = RENDER_SIZE,
    batch_size: BatchSizeOption = BATCH_SIZE,
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
    sheet_count: Annotated[int, typer.Option(help="Photos on the contact sheet.")] = 8,
) -> None:
    """Score a model against the gray baseline (no colour added) on shards or photos.

    Runs the same code as **apply** and scores at full resolution: PSNR, SSIM, CIEDE2000,
    AuC of the ab error, and colourfulness against the truth's.
    """
    from colorize_cli.imaging.images import display_path
    from colorize_cli.inference import evaluate as evaluate_lib
    from colorize_cli.progress import RichProgress, console

    with _errors():
        result = evaluate_lib.evaluate(
            None if model == "default" else model,
            data,
            render_size=render_size,
            batch_size=batch_size,
            sheet_count=sheet_count,
            progress=RichProgress(),
        )
        if not result.images:
            raise UsageError("no photo could be scored")
        if per_image is not None:
            result.write_per_image_csv(per_image)
        if sheet is not None:
            result.write_sheet(sheet)
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
