"""Measure `colorize apply` per photo size: photos/s, share of time outside the network, peak RSS.

    .venv/bin/python bench/apply.py                          # presets small and tiny, 0.3-50 MP
    .venv/bin/python bench/apply.py --presets small --sizes 0.3 2
    .venv/bin/python bench/apply.py --presets small --sizes 2 --before 04996df  # old code too
    .venv/bin/python bench/apply.py --agreement 04996df      # colour: new against old code
    .venv/bin/python bench/apply.py --agreement 04996df --format jpg   # as apply writes JPEG
    .venv/bin/python bench/apply.py --agreement 04996df --format jpg --scale 3  # 1.4 MP photos

Each (preset, size) runs in a fresh process: an untrained generator of that preset is saved and
loaded (preset `bundled`: the bundled model, on LiteRT when installed), the render shape is
traced on a warm-up photo, then the peak RSS is reset and one `applying.apply` call reads,
colorizes and writes (JPEG, q95) a 3:2 photo of that size under `repeats` names, as
`colorize apply *.jpg` does (so one photo's finishing may overlap the next one's network run).
"in network" is the share of the wall time spent inside the generator call
(`Colorizer.network_seconds`), which grows when other work shares the cores with it; "network
alone" times the same call with nothing beside it, and "beyond the network" is the share of the
wall time not explained by it: 1 - alone / (wall time per photo). Linux only (reads /proc).
Prints a Markdown table for docs/benchmarks.md.

--before REV times colorize_cli as it was at git revision REV too (unpacked by `git archive`), in
the same sitting, each (preset, size) old then new, so both see the same load.
--agreement REV colorizes the dev validation photos (the 5% split by content hash) with the
bundled model, by the code at REV and by this tree, and prints the mean CIEDE2000 between the two
outputs per photo (mean and largest), and whether the new output's gray equals the input's. Both
are written as PNG (lossless: the recombination alone), or with `--format jpg` as `colorize apply
--format jpg` writes them (`applying.colorize_bytes`, q95), decoded; then the gray column gives
the mean |luma - gray| of each side's decoded output, old -> new. `--scale N` enlarges each photo
N times first (bicubic, kept as PNG): photos large enough for apply's JPEG form (`--scale 3`:
1443x963, nine times the render size's pixels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "dev"
# A child process imports colorize_cli from here when it is set (--before, --agreement).
TREE = "COLORIZE_TREE"
SIZES = {"0.3": (672, 448), "2": (1728, 1152), "12": (4242, 2828), "50": (8660, 5774)}
REPEATS = {"0.3": 10, "2": 5, "12": 2, "50": 1}


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def tree_at(revision: str, folder: Path) -> Path:
    """colorize_cli as it was at git `revision`, unpacked under `folder`; its root directory."""
    target = folder / f"tree-{revision}"
    if not target.exists():
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "colorize_cli"],
            check=True,
            capture_output=True,
        ).stdout
        target.mkdir()
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def child_env(tree: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if tree is not None:
        env[TREE] = str(tree)
    return env


def validation_photos() -> list[Path]:
    from colorize_cli.data.prepare import split_of

    return [
        path
        for path in sorted(DEV.glob("*.jpg"))
        if split_of(hashlib.sha256(path.read_bytes()).hexdigest(), 0.05) == "val"
    ]


def write_colorized(folder: Path, photos: list[str], format: str) -> None:
    """Colorize `photos` with the bundled model into `folder`: as PNG (lossless) from
    `colorize_many`, or as apply writes `format` (`colorize_bytes`)."""
    import numpy as np

    from colorize_cli.inference.applying import colorize_bytes
    from colorize_cli.inference.colorizer import Colorizer

    colorizer = Colorizer(ROOT / "colorize_cli" / "weights" / "default.tflite")
    if format != "png":
        for photo in photos:
            data = colorize_bytes(Path(photo).read_bytes(), colorizer, format, name=photo)
            (folder / f"{Path(photo).stem}.{format}").write_bytes(data)
        return
    items = ((Path(p).stem, np.asarray(Image.open(p).convert("RGB"))) for p in photos)
    for stem, out in colorizer.colorize_many(items):
        Image.fromarray(out).save(folder / f"{stem}.png")


def agreement(revision: str, format: str, scale: int) -> dict:
    import numpy as np

    from colorize_cli.imaging import color, metrics

    photos = [str(p) for p in validation_photos()]
    with tempfile.TemporaryDirectory() as tmp:
        if scale != 1:
            enlarged = []
            for photo in photos:
                image = Image.open(photo).convert("RGB")
                size = (image.width * scale, image.height * scale)
                enlarged.append(str(Path(tmp, f"{Path(photo).stem}.png")))
                image.resize(size, Image.Resampling.BICUBIC).save(enlarged[-1])
            photos = enlarged
        folders = {"old": Path(tmp, "old"), "new": Path(tmp, "new")}
        trees = {"old": tree_at(revision, Path(tmp)), "new": None}
        for name, folder in folders.items():
            folder.mkdir()
            subprocess.run(
                [sys.executable, __file__, "--format", format, "--write", str(folder), *photos],
                check=True,
                env=child_env(trees[name]),
            )
        distances, exact, luma = [], 0, {"old": [], "new": []}
        for photo in photos:
            stem = Path(photo).stem
            old, new = (
                np.asarray(Image.open(f / f"{stem}.{format}").convert("RGB"))
                for f in folders.values()
            )
            gray = color.grayscale(np.asarray(Image.open(photo).convert("RGB")))
            exact += bool(np.array_equal(color.grayscale(new), gray))
            for side, out in (("old", old), ("new", new)):
                luma[side].append(np.abs(color.grayscale(out).astype(int) - gray).mean())
            lab_old, lab_new = color.srgb_to_lab(old), color.srgb_to_lab(new)
            distances.append(metrics.mean_ciede2000(lab_old, lab_new))
    return {
        "photos": len(photos),
        "mean": float(np.mean(distances)),
        "largest": float(np.max(distances)),
        "gray_exact": exact,
        "luma_error": {side: float(np.mean(errors)) for side, errors in luma.items()},
    }


def measure(folder: Path, size: str, preset: str, render_size: int) -> dict:
    import numpy as np

    from colorize_cli.inference import applying
    from colorize_cli.inference.colorizer import Colorizer
    from colorize_cli.nets.models import build_generator, model_config

    model = None
    if preset != "bundled":
        model = folder / f"{preset}.keras"
        build_generator(model_config(preset)).save(model)
    colorizer = Colorizer(model, render_size=render_size)
    warm = np.asarray(Image.open(folder / "0.3.jpg"))
    for _ in range(2):  # every size has the same render shape: trace it outside the timing
        colorizer.colorize(warm)
    # The photo under `repeats` names, applied in one call as `colorize apply *.jpg` would: the
    # finishing of one photo may overlap the next one's network run.
    photos = []
    for k in range(REPEATS[size]):
        photos.append(folder / f"{size}-{k}.jpg")
        if not photos[-1].exists():
            photos[-1].hardlink_to(folder / f"{size}.jpg")
    before = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
    colorizer.network_seconds = 0.0
    options = applying.ApplyOptions(
        [str(p) for p in photos], out_dir=folder / "out", overwrite=True
    )
    started = time.perf_counter()
    outcomes = list(applying.apply(options, colorizer=colorizer))
    seconds = (time.perf_counter() - started) / REPEATS[size]
    assert [o.status for o in outcomes] == ["written"] * REPEATS[size], outcomes
    network = colorizer.network_seconds / REPEATS[size]
    peak = rss_mb("VmHWM")
    # The network alone on the same batches (chroma_many's rule), with nothing beside it: what
    # the rest adds is measured against this, so time the network loses to work running beside
    # it counts as outside.
    from colorize_cli.inference.colorizer import BATCH_PIXEL_BUDGET

    gray = np.asarray(Image.open(photos[0]).convert("L"))
    per_batch = min(colorizer.batch_size, -(-BATCH_PIXEL_BUDGET // gray.size))
    x = colorizer.network_input(gray)[None, ..., None]
    batches = [min(per_batch, REPEATS[size] - k) for k in range(0, REPEATS[size], per_batch)]
    for n in set(batches):
        colorizer.backend.run(np.repeat(x, n, 0))  # warm-up at each batch shape
    alone_started = time.perf_counter()
    for n in batches:
        colorizer.backend.run(np.repeat(x, n, 0))
    alone = (time.perf_counter() - alone_started) / REPEATS[size]
    return {
        "code": str(Path(applying.__file__).parents[2]),
        "preset": preset,
        "megapixels": size,
        "photos_per_s": 1 / seconds,
        "outside_network": 1 - network / seconds,
        "network_alone_s": alone,
        "beyond_network_alone": 1 - alone / seconds,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "tiny"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--before", metavar="REV", help="time the code at git REV too")
    parser.add_argument("--agreement", metavar="REV", help="colour of REV's code against this")
    parser.add_argument("--one", nargs=3, metavar=("FOLDER", "SIZE", "PRESET"), help="internal")
    parser.add_argument("--format", default="png", choices=["png", "jpg"], help="--agreement's")
    parser.add_argument("--scale", type=int, default=1, help="--agreement's photos enlarged")
    parser.add_argument("--write", nargs="+", metavar="FOLDER PHOTO", help="internal")
    args = parser.parse_args()
    if TREE in os.environ:
        sys.path.insert(0, os.environ[TREE])
    if args.one:
        folder, size, preset = args.one
        print(json.dumps(measure(Path(folder), size, preset, args.render_size)))
        return
    if args.write:
        write_colorized(Path(args.write[0]), args.write[1:], args.format)
        return
    if args.agreement:
        row = agreement(args.agreement, args.format, args.scale)
        print(
            "| format | scale | photos | mean CIEDE2000, new vs old | largest (one photo's mean) "
            "| gray exact | mean abs luma - gray, old -> new |"
        )
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {args.format} | {args.scale} | {row['photos']} | {row['mean']:.3f} "
            f"| {row['largest']:.3f} "
            f"| {row['gray_exact']} of {row['photos']} "
            f"| {row['luma_error']['old']:.3f} -> {row['luma_error']['new']:.3f} |"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = Image.open(DEV / "bsds500-test_100007.jpg").convert("RGB")
        for name, shape in SIZES.items():
            source.resize(shape, Image.Resampling.BICUBIC).save(folder / f"{name}.jpg", quality=95)
        trees = {"after": None}
        if args.before:
            trees = {f"before ({args.before})": tree_at(args.before, folder), **trees}
        print(
            "| code | preset | megapixels | photos/s | in network | network alone "
            "| beyond the network | RSS before | peak RSS |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for preset in args.presets:
            for size in args.sizes:
                for name, tree in trees.items():
                    command = [sys.executable, __file__, "--one", tmp, size, preset]
                    command += ["--render-size", str(args.render_size)]
                    result = subprocess.run(
                        command, capture_output=True, text=True, check=True, env=child_env(tree)
                    )
                    row = json.loads(result.stdout)
                    assert row["code"] == str(tree or ROOT), row["code"]
                    print(
                        f"| {name} | {preset} | {size} | {row['photos_per_s']:.2f} | "
                        f"{1 - row['outside_network']:.0%} | "
                        f"{row['network_alone_s'] * 1000:.0f} ms | "
                        f"**{row['beyond_network_alone']:.0%}** | {row['rss_before_mb']:.0f} MB | "
                        f"{row['peak_rss_mb']:.0f} MB |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
