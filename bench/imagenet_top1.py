"""Top-1 accuracy of the Keras EfficientNet-Lite0 port on the dev `imagenet_*` photos.

    .venv/bin/python bench/imagenet_top1.py            # all 864 photos, in colour and as gray

Each photo: short side resized to 256 (bilinear), 224 centre crop, sRGB in [0, 1]; the classifier
(`pretrained.build_classifier`, ImageNet mean and std inside) predicts one of 1000 classes, and
the file name's WordNet id (../shared/data/imagenet-classes.txt) says which is right. The
reference network scores 78.0% / 67.8% (../shared/data/README.md). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from colorize_cli.nets.pretrained import build_classifier, classifier_input

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=0, help="first N photos only (0: all)")
    args = parser.parse_args()
    classes = (DATA / "imagenet-classes.txt").read_text().split()
    photos = sorted((DATA / "dev").glob("imagenet_*.jpg"))
    photos = photos[: args.photos] if args.photos else photos
    classifier = build_classifier()
    print("| input | photos | top-1 | seconds |\n|---|---|---|---|")
    for gray in (False, True):
        started, correct = time.perf_counter(), 0
        for start in range(0, len(photos), 32):
            chunk = photos[start : start + 32]
            batch = np.stack([classifier_input(p, gray) for p in chunk])
            predicted = classifier.predict(batch, verbose=0).argmax(axis=1)
            correct += sum(
                classes[k] == p.name.split("_")[1] for k, p in zip(predicted, chunk, strict=True)
            )
        seconds = time.perf_counter() - started
        label = "gray as RGB" if gray else "colour"
        print(f"| {label} | {len(photos)} | {correct / len(photos):.1%} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
