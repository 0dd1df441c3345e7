"""Measure the GAN train step: images/s and GFLOP/s per preset and size against the matmul peak.

    .venv/bin/python bench/train_step.py                              # every preset, 128 and 256
    .venv/bin/python bench/train_step.py --presets small --sizes 128 --shards 'data/dev*.h5'
    TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python bench/train_step.py      # oneDNN off, for comparison

Times the real compiled step (`gan.make_train_step`, pix2pix recipe, CPU) after `--warmup`
steps that pay for tracing and compiling. "memory" feeds the step one batch held as constant
tensors; with `--shards` the "shards" column feeds it from `dataset.make_dataset` over those
shards (crops, flips, Lab conversion included), and the last line times the input pipeline alone.

Achieved GFLOP/s = counted FLOPs per image x images/s, where a training step counts 3 x the
forward FLOPs of the generator and of the discriminator on the real and on the fake pair
(`models.count_flops`: convolutions only; the forward + two backward passes of each). The
machine's ceiling is numpy's float32 matmul (OpenBLAS, all cores, `--matmul` square matrices).
The CPU may be shared, so everything, the matmul included, is timed in interleaved rounds
(median reported) and the ratio is taken within one run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from colorize_cli.nets.models import count_flops, model_config
from colorize_cli.nets.recipes import get_recipe
from colorize_cli.tf_setup import import_tf
from colorize_cli.training.dataset import load_images, make_dataset
from colorize_cli.training.gan import Gan, build_gan

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


def matmul_gflops(size: int, repeats: int = 3) -> float:
    """float32 GFLOP/s of numpy's matmul on `size`-square matrices (best of `repeats`)."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
    a @ b  # first call pays for thread start-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def build_pix2pix(preset: str) -> Gan:
    """The pix2pix GAN of `preset` on the CPU, seeded (training/gan.py builds it, as train does)."""
    recipe = get_recipe("pix2pix")
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    return build_gan(model_config(preset, recipe.output), recipe, strategy=strategy, seed=0)


def step_flops(generator, discriminator, size: int) -> int:
    """Counted FLOPs of one training step per image (see the module docstring)."""
    return 3 * (count_flops(generator, size, size) + 2 * count_flops(discriminator, size, size))


def measure(
    preset: str, size: int, args: argparse.Namespace, images
) -> tuple[dict[tuple[bool, str], float], float, int]:
    """Median images/s per (xla, feed), median matmul GFLOP/s, and the step's FLOPs per image.

    Every combination is timed once per round, in turn, so a neighbour's load on the shared CPU
    hits all of them alike instead of whichever ran at the wrong moment.
    """
    gan = build_pix2pix(preset)
    strategy = gan.strategy
    flops = step_flops(gan.generator, gan.discriminator, size)
    feeds = {"memory": tf.data.Dataset.from_tensors(synthetic_batch(args.batch, size))}
    feeds["memory"] = feeds["memory"].repeat()
    if images is not None and size <= images.image_size:
        feeds["shards"] = make_dataset(images, args.batch, size, seed=0)
    runs = {}
    for xla in {"both": [False, True], "on": [True], "off": [False]}[args.xla]:
        step = gan.compile_step(xla=xla)
        for feed, dataset in feeds.items():
            batches = iter(strategy.experimental_distribute_dataset(dataset))
            images_per_s(step, batches, args.batch, args.warmup, 0)  # traces and compiles
            runs[xla, feed] = (step, batches)
    rates: dict[tuple[bool, str], list[float]] = {key: [] for key in runs}
    peaks = []
    for round_ in range(args.rounds):
        peaks.append(matmul_gflops(args.matmul))
        for key, (step, batches) in runs.items():
            first = args.warmup + round_ * args.steps
            rates[key].append(images_per_s(step, batches, args.batch, args.steps, first))
    medians = {key: statistics.median(values) for key, values in rates.items()}
    return medians, statistics.median(peaks), flops


def pipeline_rate(images, args: argparse.Namespace) -> float:
    batches = iter(make_dataset(images, args.batch, min(args.sizes), seed=0))
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--shards", nargs="*", help="also feed the step from these shards")
    parser.add_argument("--matmul", type=int, default=2048, help="matmul side for the peak")
    args = parser.parse_args()
    images = load_images(args.shards) if args.shards else None
    print(f"{cpu_model()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}")
    print(
        f"batch {args.batch}; images/s, median of {args.rounds} interleaved rounds of "
        f"{args.steps} steps; peak = numpy float32 matmul {args.matmul}^2 in the same rounds\n"
    )
    print(
        "| preset | size | XLA | images/s (memory) | images/s (shards) | shards / memory "
        "| GFLOP/image | GFLOP/s | matmul peak GFLOP/s | % of peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        for size in args.sizes:
            rates, peak, flops = measure(preset, size, args, images)
            for xla in sorted({xla for xla, _ in rates}):
                memory = rates[xla, "memory"]
                shards = rates.get((xla, "shards"))
                from_shards = "-" if shards is None else f"{shards:.1f}"
                share = "-" if shards is None else f"{shards / memory:.0%}"
                achieved = flops * memory / 1e9
                print(
                    f"| {preset} | {size} | {'on' if xla else 'off'} | {memory:.1f} "
                    f"| {from_shards} | {share} | {flops / 1e9:.2f} | {achieved:.1f} "
                    f"| {peak:.1f} | {achieved / peak:.0%} |",
                    flush=True,
                )
    if images is not None:
        print(f"\ninput pipeline alone: {pipeline_rate(images, args):.0f} images/s")


if __name__ == "__main__":
    main()
