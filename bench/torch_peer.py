"""Measure colorize's train step against a PyTorch peer of it: images/s side by side on this CPU.

    make bench-env                                          # bench/.venv-torch: torch 2.13 CPU
    .venv/bin/python bench/torch_peer.py                    # small at 128, batch 16
    .venv/bin/python bench/torch_peer.py --presets tiny small --rounds 5
    .venv/bin/python bench/torch_peer.py --presets lite0    # the EfficientNet-Lite0 U-Net
    .venv/bin/python bench/torch_peer.py --memory-format contiguous --torch-modes eager
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/torch_peer.py    # when others share the CPU

The peer (bench/torch_step.py, run by the torch venv's Python) is the same generator and
discriminator (parameter counts checked here, BatchNorm's moving statistics counted as Keras
counts them) and the same pix2pix step as training/gan.py, in eager PyTorch and under torch.compile.
It lives in one subprocess per preset and size, answering over stdin/stdout, so its warm-up and
compiling are paid once. colorize's step is built as bench/train_step.py builds it (XLA off, the
batch held in memory); both sides get synthetic batches of the same shapes. The CPU may be
shared, so the sides are timed in interleaved rounds (median reported) and the ratio is the
figure to compare across machines. On a shared CPU, torch's OpenMP threads spin at every op's
barrier while a neighbour holds the other core (tiny at 128: 8 images/s instead of 53);
OMP_WAIT_POLICY=PASSIVE or --threads 1 avoids that.

For lite0 the peer's encoder is PyPI efficientnet-lite-pytorch's EfficientNet-Lite0 (the network
colorize_cli/nets/pretrained.py ports to Keras) under a copy of models.py's U-Net decoder and head;
colorize's side loads the ImageNet weights, the peer's stays randomly initialised (the speed does
not depend on them). Sizes must be multiples of lite0's stride, 32. lite0-scratch is the same
network and step, so it needs no row of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from train_step import build_pix2pix, images_per_s, synthetic_batch

from colorize_cli.tf_setup import import_tf

tf = import_tf()

BENCH = Path(__file__).resolve().parent
TORCH_PYTHON = BENCH / ".venv-torch" / "bin" / "python"
TORCH_STEP = BENCH / "torch_step.py"
TORCH_MODES = ("eager", "compile")


class TorchPeer:
    """The PyTorch step in a long-lived subprocess, warming up from the moment it starts."""

    def __init__(self, preset: str, size: int, args: argparse.Namespace) -> None:
        command = [str(TORCH_PYTHON), str(TORCH_STEP), "--preset", preset, "--size", str(size)]
        command += ["--batch", str(args.batch), "--threads", str(args.threads)]
        command += ["--memory-format", args.memory_format, "--warmup", str(args.warmup)]
        command += ["--modes", *args.torch_modes]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def wait_ready(self) -> dict:
        """The peer's first line: torch version, threads, parameter counts, modes ready or not."""
        return self._read()

    def images_per_s(self, mode: str, steps: int) -> float:
        self.process.stdin.write(f"{mode} {steps}\n")
        self.process.stdin.flush()
        return self._read()["images_per_s"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{TORCH_STEP.name} exited with status {self.process.wait()}")
        return json.loads(line)


def colorize_step(
    preset: str, size: int, args: argparse.Namespace
) -> tuple[Callable[[int, int], float], dict[str, int]]:
    """(run(steps, first) -> images/s, {"generator": n, "discriminator": n}), warmed up."""
    gan = build_pix2pix(preset)
    strategy, generator, discriminator = gan.strategy, gan.generator, gan.discriminator
    step = gan.compile_step(xla=False)
    dataset = tf.data.Dataset.from_tensors(synthetic_batch(args.batch, size)).repeat()
    batches = iter(strategy.experimental_distribute_dataset(dataset))

    def run(steps: int, first: int) -> float:
        return images_per_s(step, batches, args.batch, steps, first)

    run(args.warmup, 0)  # traces
    params = {"generator": generator.count_params(), "discriminator": discriminator.count_params()}
    return run, params


def measure(preset: str, size: int, args: argparse.Namespace) -> tuple[dict[str, float], dict]:
    """Median images/s of colorize and of each ready torch mode, and the peer's first line."""
    peer = TorchPeer(preset, size, args)  # warms up while colorize traces
    try:
        run, params = colorize_step(preset, size, args)
        ready = peer.wait_ready()
        if ready["params"] != params:
            raise SystemExit(f"{preset}: parameter counts differ: colorize {params}, torch {ready}")
        modes = [mode for mode, state in ready["modes"].items() if state["ready"]]
        rates: dict[str, list[float]] = {"colorize": [], **{mode: [] for mode in modes}}
        for round_ in range(args.rounds):
            rates["colorize"].append(run(args.steps, args.warmup + round_ * args.steps))
            for mode in modes:
                rates[mode].append(peer.images_per_s(mode, args.steps))
    finally:
        peer.close()
    return {side: statistics.median(values) for side, values in rates.items()}, ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch's; TF uses all")
    parser.add_argument(
        "--memory-format", choices=["channels_last", "contiguous"], default="channels_last"
    )
    parser.add_argument("--torch-modes", nargs="+", choices=TORCH_MODES, default=list(TORCH_MODES))
    args = parser.parse_args()
    if not TORCH_PYTHON.exists():
        print(f"no PyTorch venv at {TORCH_PYTHON}: make it with `make bench-env`", file=sys.stderr)
        raise SystemExit(2)
    print(
        f"batch {args.batch}; images/s, median of {args.rounds} interleaved rounds of "
        f"{args.steps} steps; colorize XLA off; torch {args.memory_format}, {args.threads} threads"
    )
    print("| preset | size | colorize | torch eager | torch compile | colorize / torch (best) |")
    print("|---|---|---|---|---|---|")
    notes = []
    for preset in args.presets:
        for size in args.sizes:
            rates, ready = measure(preset, size, args)
            torch_rates = [rates[mode] for mode in TORCH_MODES if mode in rates]
            cells = [f"{rates[mode]:.1f}" if mode in rates else "-" for mode in TORCH_MODES]
            ratio = f"{rates['colorize'] / max(torch_rates):.2f}" if torch_rates else "-"
            print(
                f"| {preset} | {size} | {rates['colorize']:.1f} | {' | '.join(cells)} | {ratio} |"
            )
            sys.stdout.flush()
            counts = ready["params"]
            notes.append(
                f"{preset} {size}: parameters {counts['generator']:,} + "
                f"{counts['discriminator']:,} on both sides; torch {ready['torch']} warm-up "
                + ", ".join(
                    f"{mode} {state['warmup_s']} s"
                    if state["ready"]
                    else f"{mode} failed: {state['error']}"
                    for mode, state in ready["modes"].items()
                )
            )
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
