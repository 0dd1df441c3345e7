"""Measure start-up: wall time of `colorize --help` and of `colorize apply` on one small photo.

    .venv/bin/python bench/startup.py [--model MODEL.keras] [--repeats 5]

Without --model an untrained `small` generator is saved to a temporary folder and used, so the
figure is the cost of starting Python, TensorFlow and the model, not of a particular model.
Prints a Markdown table (best and median of the repeats).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
COLORIZE = [sys.executable, "-m", "colorize_cli"]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from colorize_cli.nets.models import build_generator, model_config

            model = Path(tmp) / "small.keras"
            build_generator(model_config("small")).save(model)
        photo = sorted(DEV.glob("set5_*.jpg"))[0]
        cases = {
            "colorize --help": [*COLORIZE, "--help"],
            f"colorize apply {photo.name} ({photo.stat().st_size // 1024} KiB)": [
                *COLORIZE,
                "apply",
                str(photo),
                "--model",
                str(model),
                "--out-dir",
                tmp,
                "--overwrite",
            ],  # fmt: skip
        }
        print("| command | best s | median s |\n|---|---|---|")
        for label, command in cases.items():
            times = [timed(command) for _ in range(args.repeats)]
            print(f"| `{label}` | {min(times):.2f} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
