"""Measure the train step under process-wide settings: oneDNN, thread pools, batch size.

    .venv/bin/python bench/step_settings.py                       # small at 128, every setting
    .venv/bin/python bench/step_settings.py --preset tiny --rounds 3

Settings that TensorFlow reads once at start-up (TF_ENABLE_ONEDNN_OPTS, thread pool sizes) need
a fresh process each, so every (setting, round) runs `bench/train_step.py --presets P --sizes S
--xla off` in a subprocess, the settings interleaved round by round so a neighbour's load hits
them alike; the median images/s per setting is compared with the defaults'. Prints a Markdown
table for docs/benchmarks.md ("what moved and what did not").
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

STEP = Path(__file__).resolve().parent / "train_step.py"

# name -> (environment changes, extra train_step.py arguments)
SETTINGS: dict[str, tuple[dict[str, str], list[str]]] = {
    "defaults (oneDNN on, TF's thread pools, batch 16)": ({}, []),
    "oneDNN off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, []),
    "1 intra-op thread": ({"TF_NUM_INTRAOP_THREADS": "1"}, []),
    "1 inter-op thread": ({"TF_NUM_INTEROP_THREADS": "1"}, []),
    "1 intra-op and 1 inter-op thread": (
        {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
        [],
    ),
    "batch 8": ({}, ["--batch", "8"]),
    "batch 32": ({}, ["--batch", "32"]),
}


def images_per_s(env: dict[str, str], extra: list[str], args: argparse.Namespace) -> float:
    command = [sys.executable, str(STEP), "--presets", args.preset, "--sizes", str(args.size)]
    command += ["--xla", "off", "--rounds", "1", "--steps", str(args.steps), *extra]
    result = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    row = next(line for line in lines if line.startswith(f"| {args.preset} |"))
    return float(re.split(r"\s*\|\s*", row)[4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per process")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in args.settings}
    for _ in range(args.rounds):
        for name in args.settings:
            env, extra = SETTINGS[name]
            rates[name].append(images_per_s(env, extra, args))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    base = medians.get(args.settings[0])
    print(f"{args.preset} at {args.size}, {os.cpu_count()} cores; median of {args.rounds} rounds\n")
    print("| setting | images/s | vs the first |")
    print("|---|---|---|")
    for name, rate in medians.items():
        print(f"| {name} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
