"""Write the grayscale version of each photo (colorize's one grayscale definition) into a folder.

python scripts/to_gray.py OUT_DIR PHOTO...   # OUT_DIR/NAME.png for each PHOTO
"""

import sys
from pathlib import Path

import numpy as np

from colorize_cli.imaging import color, images, writing


def main(out_dir: str, *photos: str) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for photo in photos:
        gray = color.grayscale(images.read_image(photo))
        target = Path(out_dir) / (Path(photo).stem + ".png")
        writing.write_image(target, np.repeat(gray[..., np.newaxis], 3, axis=-1))
        print(target)


if __name__ == "__main__":
    main(*sys.argv[1:])
