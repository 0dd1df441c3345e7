"""Profile `colorize apply`'s work on one 2 MP photo: where the time goes besides the network.

    .venv/bin/python bench/profile_apply.py            # bundled model, a dev photo at 1732x1155

Reads, colorizes (bundled model, its render size of 160) and writes one 2 MP JPEG three times under
cProfile after a warm-up, then prints the total and network time per photo and the top entries by
own time.
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from colorize_cli.imaging.images import read_image
from colorize_cli.inference.colorizer import Colorizer

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
REPEATS = 3


def main() -> None:
    source = sorted(DEV.glob("*.jpg"))[5]
    with tempfile.TemporaryDirectory() as folder:
        photo, out = Path(folder, "photo.jpg"), Path(folder, "out.jpg")
        big = Image.open(source).convert("RGB").resize((1732, 1155), Image.Resampling.BICUBIC)
        big.save(photo, quality=95)
        colorizer = Colorizer()
        for _ in range(REPEATS):  # traces the render shape
            colorizer.colorize(np.asarray(big))
        colorizer.network_seconds = 0.0
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for _ in range(REPEATS):
            Image.fromarray(colorizer.colorize(read_image(photo))).save(out, quality=95)
        profile.disable()
        total = (time.perf_counter() - started) / REPEATS
    print(f"per photo: {total:.3f} s, network {colorizer.network_seconds / REPEATS:.3f} s")
    pstats.Stats(profile).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
