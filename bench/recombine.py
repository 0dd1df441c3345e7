"""Micro-timings of `apply`'s per-pixel steps on one 2 MP photo (a dev photo resized to 1732x1155):
the gray, the resize to the render size (plain bicubic and with Pillow's reducing gap, as
`Colorizer` does), the colour grid, the two chroma upsamplings, `color.recolor`, the whole
`recombine` (its band threads) and its JPEG encoding, then the JPEG form (`recombine_jpeg`, on the
same threads) and its encoding. Mean of 5 calls after one warm-up.

    .venv/bin/python bench/recombine.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from colorize_cli.imaging import chroma, color, writing

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"


def timed(name: str, work: Callable[[], object], repeats: int = 5) -> None:
    work()
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    print(f"| {name} | {(time.perf_counter() - started) / repeats * 1000:.1f} ms |")


def main() -> None:
    source = sorted(DEV.glob("*.jpg"))[5]
    rgb = np.asarray(Image.open(source).convert("RGB").resize((1732, 1155)))
    gray = color.grayscale(rgb)
    ab = np.random.default_rng(0).normal(0, 20, (160, 240, 2)).astype(np.float32)
    small = Image.fromarray(gray)
    bicubic = Image.Resampling.BICUBIC
    cb, cr = chroma.chroma_grid(gray, ab)
    cb_full, cr_full = (chroma.resized(x, gray.shape) for x in (cb, cr))
    print("| step (1732x1155) | time |\n|---|---|")
    timed("grayscale", lambda: color.grayscale(rgb))
    timed("render resize, bicubic", lambda: small.resize((240, 160), bicubic))
    timed("render resize, reducing gap 2", lambda: small.resize((240, 160), bicubic, None, 2.0))
    timed("chroma_grid", lambda: chroma.chroma_grid(gray, ab))
    timed("Cb, Cr upsampled (2 planes)", lambda: [chroma.resized(x, gray.shape) for x in (cb, cr)])
    timed("recolor (one thread)", lambda: color.recolor(gray, cb_full, cr_full))
    timed("recombine (band threads)", lambda: chroma.recombine(gray, ab))
    out = chroma.recombine(gray, ab)
    timed("JPEG encode of it, q95 4:4:4", lambda: writing.encode_image(out, "jpg"))
    timed("recombine_image (band threads)", lambda: chroma.recombine_image(gray, ab))
    timed("recombine_jpeg (band threads)", lambda: chroma.recombine_jpeg(gray, ab))
    jpeg = chroma.recombine_jpeg(gray, ab)
    timed("JPEG encode of it, q95 4:2:0", lambda: writing.encode_image(jpeg, "jpg"))


if __name__ == "__main__":
    main()
