"""`colorize train`: shards -> a trained generator (library: training/train.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from colorize_cli.commands import common
from colorize_cli.config import DEFAULT_CROP, ENCODER_BN, PRECISIONS, TrainConfig
from colorize_cli.errors import UsageError
from colorize_cli.nets.models import PRESETS
from colorize_cli.nets.recipes import DEFAULT_RECIPE, RECIPES

ModelPreset = common.choices("ModelPreset", PRESETS)
RecipeName = common.choices("RecipeName", RECIPES)
EncoderBN = common.choices("EncoderBN", ENCODER_BN)
Precision = common.choices("Precision", PRECISIONS)


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
            help=f"Passes over the training photos [default: {TrainConfig.epochs}; with --resume: "
            "raises the run's total]."
        ),
    ] = None,
    steps_per_epoch: Annotated[
        int | None, typer.Option(help="Steps per epoch (default: one pass over the photos).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Photos per step (over all devices).")
    ] = TrainConfig.batch_size,
    crop: Annotated[
        int | None,
        typer.Option(
            help="Random square crop, in pixels, a multiple of the model's stride [default: "
            f"{DEFAULT_CROP}, or the largest such crop the shards' photos allow].",
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
    seed: Annotated[
        int, typer.Option(help="Seed of weights, data order and crops.")
    ] = TrainConfig.seed,
    model: Annotated[
        ModelPreset,
        typer.Option(
            help="Network (docs/models.md); lite0 has the ImageNet-pretrained encoder, "
            "lite0-scratch the same network from random weights."
        ),
    ] = TrainConfig.model,
    recipe: Annotated[
        RecipeName, typer.Option(help="Losses and optimizers (docs/recipes.md).")
    ] = DEFAULT_RECIPE,
    xla: Annotated[
        bool, typer.Option(help="Compile the step with XLA (slower on CPUs; try it on GPUs).")
    ] = TrainConfig.xla,
    checkpoint_every: Annotated[
        int, typer.Option(help="Also checkpoint every N steps (0: at each epoch's end only).")
    ] = TrainConfig.checkpoint_every,
    keep_checkpoints: Annotated[
        int, typer.Option(help="Checkpoints kept.")
    ] = TrainConfig.keep_checkpoints,
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
    ] = TrainConfig.precision,
    val: Annotated[
        list[str] | None, typer.Option(help="Validation shards (default: *.val.h5 beside).")
    ] = None,
    samples: Annotated[
        int, typer.Option(help="Validation photos in each epoch's sample grid.")
    ] = TrainConfig.samples,
    encoder_bn: Annotated[
        EncoderBN,
        typer.Option(
            help="A pretrained encoder's BatchNorm while it learns: train (batch statistics) or "
            "frozen (its ImageNet statistics and scales kept)."
        ),
    ] = TrainConfig.encoder_bn,
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
    with common.errors():
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
            config = TrainConfig(
                shards=list(shards),
                out=str(out or _default_run_dir(shards[0])),
                epochs=TrainConfig.epochs if epochs is None else epochs,
                steps_per_epoch=steps_per_epoch,
                batch_size=batch_size,
                crop=crop,
                lr=lr,
                rebalance=rebalance,
                seed=seed,
                model=str(model),
                recipe=str(recipe),
                xla=xla,
                checkpoint_every=checkpoint_every,
                keep_checkpoints=keep_checkpoints,
                init=None if init is None else str(init),
                tensorboard=tensorboard,
                devices=devices,
                precision=str(precision),
                val=val,
                samples=samples,
                encoder_bn=str(encoder_bn),
            )
            result = train_lib.train(config, RichProgress())
    typer.echo(str(result.model_path))


def _default_run_dir(first_shard: str) -> Path:
    import time

    stem = Path(first_shard).name.split(".")[0].split("*")[0] or "run"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
