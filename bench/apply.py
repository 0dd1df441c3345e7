"""Measure `colorize apply` per photo size: photos/s, share of time outside the network, peak RSS.

    .venv/bin/python bench/apply.py                          # presets small and tiny, 0.3-50 MP
    .venv/bin/python bench/apply.py --presets small --sizes 0.3 2

Each (preset, size) runs in a fresh process: an untrained generator of that preset is saved and
loaded, the render shape is traced on a warm-up photo, then the peak RSS is reset and
`applying.apply` reads, colorizes and writes (JPEG, q95) one 3:2 photo of that size `repeats`
times. "outside network" is the share of the wall time not spent in the generator call
(`Colorizer.network_seconds`). Linux only (reads /proc). Prints a Markdown table for
docs/metrics.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
SIZES = {"0.3": (672, 448), "2": (1728, 1152), "12": (4242, 2828), "50": (8660, 5774)}
REPEATS = {"0.3": 10, "2": 5, "12": 2, "50": 1}


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def measure(folder: Path, size: str, preset: str, render_size: int) -> dict:
    import numpy as np

    from colorize_cli.inference import applying
    from colorize_cli.inference.colorizer import Colorizer
    from colorize_cli.nets.models import build_generator, model_config

    model = folder / f"{preset}.keras"
    build_generator(model_config(preset)).save(model)
    colorizer = Colorizer(model, render_size=render_size)
    warm = np.asarray(Image.open(folder / "0.3.jpg"))
    for _ in range(2):  # every size has the same render shape: trace it outside the timing
        colorizer.colorize(warm)
    before = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
    colorizer.network_seconds = 0.0
    options = applying.ApplyOptions(
        [str(folder / f"{size}.jpg")], out_dir=folder / "out", overwrite=True
    )
    started = time.perf_counter()
    for _ in range(REPEATS[size]):
        (outcome,) = applying.apply(options, colorizer=colorizer)
        assert outcome.status == "written", outcome
    seconds = (time.perf_counter() - started) / REPEATS[size]
    network = colorizer.network_seconds / REPEATS[size]
    return {
        "preset": preset,
        "megapixels": size,
        "photos_per_s": 1 / seconds,
        "outside_network": 1 - network / seconds,
        "rss_before_mb": before,
        "peak_rss_mb": rss_mb("VmHWM"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "tiny"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--one", nargs=3, metavar=("FOLDER", "SIZE", "PRESET"), help="internal")
    args = parser.parse_args()
    if args.one:
        folder, size, preset = args.one
        print(json.dumps(measure(Path(folder), size, preset, args.render_size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = Image.open(DEV / "bsds500-test_100007.jpg").convert("RGB")
        for name, shape in SIZES.items():
            source.resize(shape, Image.Resampling.BICUBIC).save(folder / f"{name}.jpg", quality=95)
        print("| preset | megapixels | photos/s | outside network | RSS before | peak RSS |")
        print("|---|---|---|---|---|---|")
        for preset in args.presets:
            for size in args.sizes:
                command = [sys.executable, __file__, "--one", tmp, size, preset]
                command += ["--render-size", str(args.render_size)]
                row = json.loads(
                    subprocess.run(command, capture_output=True, text=True, check=True).stdout
                )
                print(
                    f"| {preset} | {size} | {row['photos_per_s']:.2f} | "
                    f"{row['outside_network']:.0%} | {row['rss_before_mb']:.0f} MB | "
                    f"{row['peak_rss_mb']:.0f} MB |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
