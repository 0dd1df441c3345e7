"""Measure `colorize prepare` against a bare decode-and-resize loop: photos/s and their ratio.

    .venv/bin/python bench/prepare.py                            # all dev photos, 256 px, 3 rounds
    .venv/bin/python bench/prepare.py --limit 400 --rounds 3
    .venv/bin/python bench/prepare.py --limit 200 --profile      # where prepare --jobs 1 spends

"prepare" calls `prepare.prepare` (default options, uncompressed shards in a temporary folder)
with `--jobs` 1 and 2. "bare" does the least the same pixels need: Pillow open, EXIF transpose,
RGB, the same centred-square LANCZOS resize, `color.grayscale`, and nothing written or sent back;
1 process, or a 2-process `multiprocessing` pool over the list. The CPU may be shared, so the
variants are timed in interleaved rounds (median reported): the ratio is the figure to trust.
Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from colorize_cli.data.decoding import fit_image
from colorize_cli.data.prepare import PrepareOptions, prepare
from colorize_cli.imaging import color, images
from colorize_cli.imaging.inputs import IMAGE_EXTENSIONS

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"


def bare_one(path: Path, size: int) -> np.ndarray:
    """One photo through the minimum `prepare --fit crop` needs; returns its gray pixels."""
    with Image.open(path) as im:
        ImageOps.exif_transpose(im, in_place=True)
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        side = min(rgb.size)
        left, top = (rgb.width - side) / 2, (rgb.height - side) / 2
        square = rgb.resize(
            (size, size),
            Image.Resampling.LANCZOS,
            box=(left, top, left + side, top + side),
            reducing_gap=3.0,
        )
    return color.grayscale(np.asarray(square))


_pool_size = 0


def _bare_in_worker(path: Path) -> None:
    bare_one(path, _pool_size)


def _set_pool_size(size: int) -> None:
    global _pool_size
    _pool_size = size


def run_bare(paths: list[Path], size: int, jobs: int) -> float:
    """Seconds the bare loop takes over `paths` in `jobs` processes."""
    started = time.perf_counter()
    if jobs == 1:
        for path in paths:
            bare_one(path, size)
    else:
        # Fork, as prepare does: the pool's start-up is part of both figures.
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs, initializer=_set_pool_size, initargs=(size,)) as pool:
            for _ in pool.imap(_bare_in_worker, paths, chunksize=4):
                pass
    return time.perf_counter() - started


def run_prepare(paths: list[Path], size: int, jobs: int) -> float:
    """Seconds `prepare` takes over `paths` with `jobs`; deleting its outputs is not counted."""
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        options = PrepareOptions([str(p) for p in paths], Path(tmp) / "bench.h5", size, jobs=jobs)
        started = time.perf_counter()
        report = prepare(options)
        seconds = time.perf_counter() - started
    if report.skipped:
        raise SystemExit(f"prepare skipped {len(report.skipped)} photos: {report.skipped[0]}")
    return seconds


def same_pixels(paths: list[Path], size: int) -> int:
    """How many photos the bare loop turns into prepare's gray pixels.

    Only an embedded profile that is not sRGB should make them differ: the bare loop skips ICC.
    """
    return sum(
        np.array_equal(
            bare_one(path, size), color.grayscale(fit_image(images.read_image(path), size))
        )
        for path in paths
    )


def photo_paths(folder: Path, limit: int | None) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    return paths[:limit]


def cpu_line() -> str:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), "?")
    cores = len(os.sched_getaffinity(0))
    return f"CPU: {model}, {cores} cores usable, load average {os.getloadavg()[0]:.2f}"


def measure(paths: list[Path], size: int, rounds: int) -> dict[str, list[float]]:
    """Photos/s per variant and round; each round runs every variant once, starting one later."""
    variants: dict[str, Callable[[], float]] = {
        f"{kind} jobs {jobs}": (lambda run=run, jobs=jobs: run(paths, size, jobs))
        for kind, run in (("prepare", run_prepare), ("bare", run_bare))
        for jobs in (1, 2)
    }
    names = list(variants)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            rates[name].append(len(paths) / variants[name]())
        print(f"round {r + 1}: " + ", ".join(f"{n} {rates[n][-1]:.1f}" for n in names), flush=True)
    return rates


def table(rates: dict[str, list[float]]) -> str:
    """Medians over rounds, and the range of the ratio within a round (a neighbour's load)."""
    lines = [
        "| jobs | prepare (photos/s) | bare loop (photos/s) | prepare / bare | range over rounds |",
        "|---|---|---|---|---|",
    ]
    for jobs in (1, 2):
        ours, bare = rates[f"prepare jobs {jobs}"], rates[f"bare jobs {jobs}"]
        ratios = [a / b for a, b in zip(ours, bare, strict=True)]
        median_ours, median_bare = statistics.median(ours), statistics.median(bare)
        lines.append(
            f"| {jobs} | {median_ours:.1f} | {median_bare:.1f} | {median_ours / median_bare:.2f} "
            f"| {min(ratios):.2f}-{max(ratios):.2f} |"
        )
    return "\n".join(lines)


def profile(paths: list[Path], size: int, top: int = 15) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(run_prepare, paths, size, 1)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)
    bare = cProfile.Profile()
    bare.runcall(run_bare, paths, size, 1)
    print("bare loop, same photos:")
    pstats.Stats(bare).sort_stats("cumulative").print_stats(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEV, help="folder of photos")
    parser.add_argument("--limit", type=int, help="the first N photos by name (default: all)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile prepare --jobs 1 instead")
    args = parser.parse_args()
    paths = photo_paths(args.photos, args.limit)
    print(cpu_line())
    print(f"{len(paths)} photos from {args.photos}, size {args.size}")
    for path in paths:
        path.read_bytes()  # warm the page cache, so the first variant does not pay for the disk
    if args.profile:
        profile(paths, args.size)
        return
    check = paths[:: max(1, len(paths) // 50)]
    same = same_pixels(check, args.size)
    print(f"bare loop gives prepare's gray pixels on {same}/{len(check)} sampled photos")
    print(table(measure(paths, args.size, args.rounds)))


if __name__ == "__main__":
    main()
