"""Where `colorize apply`'s time goes on one 2 MP JPEG, step by step, one photo at a time.

    .venv/bin/python bench/profile_apply.py                 # bundled model, render size 160
    .venv/bin/python bench/profile_apply.py --srgb          # JPEG from sRGB, as before issue 22
    .venv/bin/python bench/profile_apply.py --format png    # PNG (the exact sRGB path)
    .venv/bin/python bench/profile_apply.py --gray-input    # a one-channel JPEG, as B&W scans are

A dev photo resized to 1732x1155 and saved as JPEG q95 goes through apply's own steps in turn, with
nothing overlapped (the issue's "one photo" view; `apply *.jpg` overlaps the finishing of one photo
with the next one's network): reading its gray (`images.read_gray_with_info`), the network
(`Colorizer.chroma`: the render-size resize, padding, the model, `Colorizer.network_seconds` of
it inside the model), the full-size colour in the output's form (`chroma.output_image`) and the
encoding into the file (`writing.write_image`). The photo is timed 5 times after 2 warm-ups (the
mean); prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from colorize_cli.imaging import images, writing
from colorize_cli.imaging.chroma import output_image, recombine_image
from colorize_cli.inference.colorizer import Colorizer

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
REPEATS, WARM_UPS = 5, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="jpg", choices=["jpg", "png"])
    parser.add_argument("--render-size", type=int, default=160)
    parser.add_argument("--srgb", action="store_true", help="the sRGB form for JPEG too")
    parser.add_argument(
        "--gray-input", action="store_true", help="the photo saved as a one-channel (L) JPEG"
    )
    args = parser.parse_args()
    source = sorted(DEV.glob("*.jpg"))[5]
    colorizer = Colorizer(render_size=args.render_size)
    steps = {"read the gray": 0.0, "network step": 0.0, "colour": 0.0, "encode and write": 0.0}
    inside = 0.0
    with tempfile.TemporaryDirectory() as folder:
        photo, out = Path(folder, "photo.jpg"), Path(folder, f"out.{args.format}")
        big = Image.open(source).convert("RGB").resize((1732, 1155), Image.Resampling.BICUBIC)
        if args.gray_input:
            big = big.convert("L")
        big.save(photo, quality=95)
        pil_format = writing.output_format(out)
        for round_ in range(WARM_UPS + REPEATS):
            network_before = colorizer.network_seconds
            marks = [time.perf_counter()]
            gray, info = images.read_gray_with_info(photo)
            marks.append(time.perf_counter())
            gray, ab = colorizer.chroma(gray)
            marks.append(time.perf_counter())
            image = recombine_image(gray, ab) if args.srgb else output_image(gray, ab, pil_format)
            marks.append(time.perf_counter())
            writing.write_image(out, image, exif=info.exif)
            marks.append(time.perf_counter())
            if round_ >= WARM_UPS:
                for name, start, end in zip(steps, marks, marks[1:], strict=False):
                    steps[name] += (end - start) / REPEATS
                inside += (colorizer.network_seconds - network_before) / REPEATS
    total = sum(steps.values())
    form = "sRGB" if args.srgb or args.format != "jpg" else "Y'CbCr"
    shown = f"{args.format} out from {form}, render {args.render_size}"
    kind = "one-channel" if args.gray_input else "colour"
    print(f"| step (1732x1155 {kind} JPEG in, {shown}) | ms |")
    print("|---|---|")
    for name, seconds in steps.items():
        print(f"| {name} | {seconds * 1000:.1f} |")
    print(f"| of the network step, inside the model | {inside * 1000:.1f} |")
    print(f"| **total** | **{total * 1000:.1f}** |")
    print(f"| **outside the model** | **{1 - inside / total:.0%}** |")


if __name__ == "__main__":
    main()
