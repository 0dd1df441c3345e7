"""What hints are worth: `colorize eval` with 0-20 oracle points and the photo's own palette, for a
hint model, the same points blended by hand into its automatic colour, an automatic-only model and
gray; plus a contact sheet gray | automatic | 5 hints | truth. Prints Markdown for docs/hints.md.

    .venv/bin/python bench/hints.py VAL_PHOTOS/ --sheet docs/hints-sheet.png
    .venv/bin/python bench/hints.py VAL_PHOTOS/ --model run/model.keras --old-model old.keras
    .venv/bin/python bench/hints.py --speed PHOTO.jpg        # apply, 2 MP: 10 hints against none

VAL_PHOTOS: the dev validation split at full resolution (the 71 photos whose content hash
`data.prepare.split_of` puts in "val"). Points are seeded per photo name (`--seed`), so every row
gets the same points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from colorize_cli.imaging import hints, images, writing
from colorize_cli.inference.colorizer import Colorizer
from colorize_cli.inference.evaluate import contact_sheet, evaluate, thumbnail

POINTS = (0, 1, 2, 5, 10, 20)


def scores(result) -> tuple[float, float, float, float]:
    summary = result.summary()
    model, gray = summary["model"], summary["gray"]
    return model["ciede2000"], model["psnr"], model["colourfulness_ratio"], gray["ciede2000"]


def row(label: str, colorizer: Colorizer, photos: list[str], seed: int, reference: bool) -> str:
    cells = []
    for count in POINTS:
        started = time.perf_counter()
        result = evaluate(None, photos, colorizer=colorizer, oracle_hints=count, seed=seed)
        ciede, psnr, ratio, _ = scores(result)
        cells.append(f"{ciede:.2f} / {psnr:.2f} / {ratio:.2f}")
        print(
            f"{label}: {count} points {cells[-1]} ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )
    if reference:
        result = evaluate(None, photos, colorizer=colorizer, reference="truth", seed=seed)
        ciede, psnr, ratio, _ = scores(result)
        cells.append(f"{ciede:.2f} / {psnr:.2f} / {ratio:.2f}")
    else:
        cells.append("-")
    return f"| {label} | " + " | ".join(cells) + " |"


def sheet(colorizer: Colorizer, photos: list[str], seed: int, count: int, out: Path) -> None:
    """gray | automatic | 5 hints (marked) | truth for the first `count` photos."""
    import zlib

    rows = []
    for path in photos[:count]:
        truth = images.read_image(path)
        rng = np.random.default_rng([seed, zlib.crc32(path.encode("utf-8", "replace"))])
        points = hints.oracle_points(truth, 5, rng)
        automatic = colorizer.colorize(truth)
        hinted = colorizer.colorize(truth, hints.Guide(points))
        marked = hinted.copy()
        size = max(2, hints.default_point_size(*truth.shape[:2]))
        for p in points:  # a white-ringed square where each hint was given
            top, left = max(0, p.y - size), max(0, p.x - size)
            marked[top : p.y + size + 1, left : p.x + size + 1] = 255
            marked[top + 1 : p.y + size, left + 1 : p.x + size] = p.color
        gray = np.repeat(colorizer_gray(truth)[..., None], 3, axis=-1)
        rows.append(tuple(thumbnail(x) for x in (gray, automatic, marked, truth)))
    writing.write_image(
        out, contact_sheet(rows, ("gray", "automatic", "5 hints", "truth")), format="png"
    )


def colorizer_gray(rgb: np.ndarray) -> np.ndarray:
    from colorize_cli.imaging import color

    return color.grayscale(rgb)


def speed(photo: str, repeats: int) -> None:
    """Seconds per 2 MP photo through `colorize_bytes` (decode, colorize, encode: what apply does
    per photo) with the bundled model on its default backend, with 10 hints and with none,
    alternating in one run after a warm-up of each."""
    import io

    from PIL import Image

    from colorize_cli.inference.applying import colorize_bytes

    source = Image.open(photo).convert("RGB").resize((1728, 1152), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    source.save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    truth = np.asarray(source)
    colorizer = Colorizer()
    guide = hints.Guide(hints.oracle_points(truth, 10, np.random.default_rng(0)))
    times: dict[str, list[float]] = {"no hints": [], "10 hints": []}
    for _ in range(repeats + 1):
        for label, given in (("no hints", None), ("10 hints", guide)):
            started = time.perf_counter()
            colorize_bytes(data, colorizer, "jpg", guide=given)
            times[label].append(time.perf_counter() - started)
    print(f"| apply, 1728x1152 JPEG ({colorizer.backend.name}) | median s, {repeats} runs |")
    print("|---|---|")
    for label, values in times.items():
        print(f"| {label} | {float(np.median(values[1:])):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", help="validation photos or folders")
    parser.add_argument("--speed", action="store_true", help="time apply on the first photo")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None, help="hint model (default: the bundled one)")
    parser.add_argument("--old-model", default=None, help="an automatic-only model to compare")
    parser.add_argument("--render-size", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument("--sheet-count", type=int, default=6)
    args = parser.parse_args()
    if args.speed:
        speed(args.photos[0], args.repeats)
        return
    from colorize_cli.imaging.inputs import expand_inputs

    paths, _ = expand_inputs(args.photos)
    photos = sorted(str(p) for p in paths)
    model = Colorizer(args.model, args.render_size)
    blend = Colorizer(None, args.render_size, backend=model.backend, hint_mode="blend")
    lines = [
        f"{len(photos)} photos, render size {args.render_size}, seed {args.seed}; each cell: "
        "CIEDE2000 / PSNR dB / colourfulness ratio",
        "",
        "| system | " + " | ".join(f"{n} points" for n in POINTS) + " | own palette |",
        "|---" * (len(POINTS) + 2) + "|",
        row("hint model", model, photos, args.seed, reference=True),
        row("automatic + hand-made blend of the same points", blend, photos, args.seed, False),
    ]
    if args.old_model:
        old = Colorizer(args.old_model, args.render_size)
        result = evaluate(None, photos, colorizer=old)
        ciede, psnr, ratio, gray_ciede = scores(result)
        cells = [f"{ciede:.2f} / {psnr:.2f} / {ratio:.2f}"] + ["-"] * len(POINTS)
        lines.append(
            f"| automatic-only model ({Path(args.old_model).name}) | " + " | ".join(cells) + " |"
        )
    result = evaluate(None, photos, colorizer=model)
    gray = result.summary()["gray"]
    cells = [f"{gray['ciede2000']:.2f} / {gray['psnr']:.2f} / 0.00"] + ["-"] * len(POINTS)
    lines.append("| gray (no colour) | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.sheet:
        sheet(model, photos, args.seed, args.sheet_count, args.sheet)
        print(f"\nsheet: {args.sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
