"""Measure shard compression choices: file size, write speed and random single-image reads.

    .venv/bin/python bench/compression.py --photos 300 --size 256 --out /tmp/compression-bench

Decodes `--photos` dev photos once (as `prepare` does), writes one shard per compression with
`ShardWriter`, then reads `--reads` random single images back through `open_shard`. Reads hit the
page cache (the files were just written), which is what a training run over a shard sees after its
first pass. Prints a Markdown table for docs/format.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from colorize_cli.data import shard_writer, shards
from colorize_cli.data.decoding import fit_image
from colorize_cli.imaging import color, images

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
CHOICES = ("none", "lzf", "gzip-1", "gzip-4", "gzip-9")


def load(count: int, size: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    photos = sorted(DEV.glob("*.jpg"))
    stride = max(1, len(photos) // count)
    rows = []
    for path in photos[::stride][:count]:
        rgb = fit_image(images.read_image(path), size)
        rows.append((color.grayscale(rgb), rgb, str(path)))
    return rows


def measure(rows: list, size: int, compression: str, out: Path, reads: int) -> dict[str, float]:
    path = out / f"{compression}.h5"
    started = time.perf_counter()
    with shard_writer.ShardWriter(path, size, compression=compression) as writer:
        for i, (gray, rgb, source) in enumerate(rows):
            writer.append(gray, rgb, source, f"{i:064x}")
    write_s = time.perf_counter() - started
    order = np.random.default_rng(0).integers(0, len(rows), reads)
    with shards.open_shard(path) as shard:
        shard.read(0)
        started = time.perf_counter()
        for i in order:
            shard.read(int(i))
        read_s = time.perf_counter() - started
    return {
        "bytes": path.stat().st_size,
        "write_per_s": len(rows) / write_s,
        "read_per_s": reads / read_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/compression-bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = load(args.photos, args.size)
    raw = sum(gray.nbytes + rgb.nbytes for gray, rgb, _ in rows)
    print(f"{len(rows)} photos at {args.size} px, {raw / 2**20:.1f} MiB of pixels\n")
    print("| compression | file MiB | vs raw | write images/s | random reads images/s |")
    print("|---|---|---|---|---|")
    for compression in CHOICES:
        result = measure(rows, args.size, compression, args.out, args.reads)
        print(
            f"| {compression} | {result['bytes'] / 2**20:.1f} | {result['bytes'] / raw:.0%} "
            f"| {result['write_per_s']:.0f} | {result['read_per_s']:.0f} |",
            flush=True,
        )
    shutil.rmtree(args.out)


if __name__ == "__main__":
    main()
