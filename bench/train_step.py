"""Measure the GAN train step: images/s per model preset, XLA on and off, and the input pipeline.

    .venv/bin/python bench/train_step.py                              # every preset, 128x128
    .venv/bin/python bench/train_step.py --presets small --shards 'data/dev*.h5'
    TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python bench/train_step.py      # oneDNN off, for comparison

Times the real compiled step (`gan_step.make_train_step`, pix2pix recipe, CPU) after `--warmup`
steps that pay for tracing and compiling. "memory" feeds the step one batch held as constant
tensors; with `--shards` the "shards" column feeds it from `dataset.make_dataset` over those
shards (crops, flips, Lab conversion included), and the last line times the input pipeline alone.
The CPU may be shared, so the combinations are timed in interleaved rounds (median reported).
Prints a Markdown table for docs/training.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

from colorize_cli.dataset import load_images, make_dataset
from colorize_cli.gan_step import make_train_step
from colorize_cli.models import build_discriminator, build_generator, model_config
from colorize_cli.recipes import get_recipe
from colorize_cli.tf_setup import import_tf

tf = import_tf()


def synthetic_batch(batch: int, size: int) -> dict[str, tf.Tensor]:
    """A batch with the pipeline's shapes and ranges; the step's speed does not depend on values."""
    rng = tf.random.Generator.from_seed(0)
    return {
        "lightness": rng.uniform([batch, size, size, 1], 0.0, 100.0),
        "ab": rng.uniform([batch, size, size, 2], -60.0, 60.0),
        "rgb": rng.uniform([batch, size, size, 3], 0.0, 1.0),
    }


def images_per_s(step, batches, batch: int, steps: int, first: int) -> float:
    started = time.perf_counter()
    for i in range(steps):
        step(batches, tf.constant(first + i, tf.int64))["g"].numpy()
    return steps * batch / (time.perf_counter() - started)


def measure(preset: str, args: argparse.Namespace, images) -> dict[tuple[bool, str], float]:
    """Median images/s per (xla, feed) over `--rounds` interleaved rounds.

    Every combination is timed once per round, in turn, so a neighbour's load on the shared CPU
    hits all of them alike instead of whichever ran at the wrong moment.
    """
    import keras

    keras.utils.set_random_seed(0)
    recipe = get_recipe("pix2pix")
    config = model_config(preset, recipe.output)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        generator = build_generator(config)
        discriminator = build_discriminator(config, recipe.conditional_discriminator)
        g_opt, d_opt = recipe.make_optimizers()
    feeds = {"memory": tf.data.Dataset.from_tensors(synthetic_batch(args.batch, args.size))}
    feeds["memory"] = feeds["memory"].repeat()
    if images is not None:
        feeds["shards"] = make_dataset(images, args.batch, args.size, seed=0)
    runs = {}
    for xla in {"both": [False, True], "on": [True], "off": [False]}[args.xla]:
        step = make_train_step(strategy, generator, discriminator, recipe, g_opt, d_opt, xla=xla)
        for feed, dataset in feeds.items():
            batches = iter(strategy.experimental_distribute_dataset(dataset))
            images_per_s(step, batches, args.batch, args.warmup, 0)  # traces and compiles
            runs[xla, feed] = (step, batches)
    rates: dict[tuple[bool, str], list[float]] = {key: [] for key in runs}
    for round_ in range(args.rounds):
        for key, (step, batches) in runs.items():
            first = args.warmup + round_ * args.steps
            rates[key].append(images_per_s(step, batches, args.batch, args.steps, first))
    return {key: statistics.median(values) for key, values in rates.items()}


def pipeline_rate(images, args: argparse.Namespace) -> float:
    batches = iter(make_dataset(images, args.batch, args.size, seed=0))
    for _ in range(args.warmup):
        next(batches)
    count = 20 * args.steps
    started = time.perf_counter()
    for _ in range(count):
        next(batches)
    return count * args.batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    parser.add_argument("--xla", choices=["both", "on", "off"], default="both")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--shards", nargs="*", help="also feed the step from these shards")
    args = parser.parse_args()
    images = load_images(args.shards) if args.shards else None
    print(
        f"batch {args.batch}, {args.size}x{args.size}; images/s, median of {args.rounds} "
        f"interleaved rounds of {args.steps} steps"
    )
    print("| preset | XLA | step, batch in memory | step, batch from shards |")
    print("|---|---|---|---|")
    for preset in args.presets:
        rates = measure(preset, args, images)
        for xla in sorted({xla for xla, _ in rates}):
            shards = f"{rates[xla, 'shards']:.1f}" if (xla, "shards") in rates else "-"
            memory = rates[xla, "memory"]
            print(f"| {preset} | {'on' if xla else 'off'} | {memory:.1f} | {shards} |", flush=True)
    if images is not None:
        print(f"\ninput pipeline alone: {pipeline_rate(images, args):.0f} images/s")


if __name__ == "__main__":
    main()
