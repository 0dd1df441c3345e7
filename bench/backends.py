"""What each backend costs with the bundled model: start-up, one photo, 20 photos, 2 MP throughput.

    .venv/bin/python bench/backends.py [--repeats 3] [--backends tf lite onnx savedmodel]

Every figure is wall time of a fresh process (`colorize apply --model X`), except the 2 MP
throughput, measured in one process after a warm-up photo. The ONNX and SavedModel files are
exported from the bundled .keras into a temporary folder first (`colorize export`, not timed).
The bare `python -c "import tensorflow"` is measured in the same run, for the issue's goal
(one-photo apply at most half of it). Prints a Markdown table: medians of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "data" / "dev"
WEIGHTS = REPO / "colorize_cli" / "weights"
COLORIZE = [sys.executable, "-m", "colorize_cli"]
OPEN = "from colorize_cli.inference.colorizer import Colorizer; Colorizer({!r})"
MEGAPIXELS = (1200, 1666)  # 2.0 MP


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def median_time(command: list[str], repeats: int) -> float:
    return statistics.median(timed(command) for _ in range(repeats))


def throughput(model: Path, photos: int = 5) -> float:
    """Seconds per 2 MP photo in one process, after one warm-up photo."""
    from colorize_cli.inference.colorizer import Colorizer

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (*MEGAPIXELS, 3), dtype=np.uint8)
    colorizer = Colorizer(model)
    colorizer.colorize(photo)
    start = time.perf_counter()
    for _ in range(photos):
        colorizer.colorize(photo)
    return (time.perf_counter() - start) / photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["tf", "lite", "onnx", "savedmodel"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = {"tf": WEIGHTS / "default.keras", "lite": WEIGHTS / "default.tflite"}
        exports = {"onnx": folder / "default.onnx", "savedmodel": folder / "default_saved"}
        for name, path in exports.items():
            if name in args.backends:
                extra = ["--format", "savedmodel"] if name == "savedmodel" else []
                subprocess.run(
                    [*COLORIZE, "export", "default", str(path), *extra],
                    check=True,
                    capture_output=True,
                )
                models[name] = path
        photos = sorted(DEV.glob("*.jpg"))[:20]
        batch = folder / "photos"
        batch.mkdir()
        for photo in photos:
            (batch / photo.name).symlink_to(photo)
        tf_import = median_time([sys.executable, "-c", "import tensorflow"], args.repeats)
        print(f'bare `python -c "import tensorflow"`: {tf_import:.2f} s (median)\n')
        print(
            "| backend | model | start-up s | 1 photo s | 20 photos s | 2 MP photo s "
            "| 1 photo / TF import |\n|---|---|---|---|---|---|---|"
        )
        for name in args.backends:
            model = models[name]
            start = median_time([sys.executable, "-c", OPEN.format(str(model))], args.repeats)
            apply = [*COLORIZE, "apply", "--model", str(model), "--overwrite"]
            one = median_time([*apply, str(photos[0]), "-o", str(folder / "one.png")], args.repeats)
            many = median_time([*apply, str(batch), "--out-dir", str(folder / "out")], 1)
            per_2mp = throughput(model)
            print(
                f"| {name} | {model.name} | {start:.2f} | {one:.2f} | {many:.2f} | "
                f"{per_2mp:.2f} | {one / tf_import:.2f} |"
            )


if __name__ == "__main__":
    main()
