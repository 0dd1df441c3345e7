"""Shared fixtures: real photos from ../shared/data/dev, copied into a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEV_DIR = REPO.parent / "shared" / "data" / "dev"


def dev_photos(count: int, stride: int = 97) -> list[Path]:
    """A deterministic spread of `count` dev photos (different sources, sizes and content)."""
    photos = sorted(DEV_DIR.glob("*.jpg"))
    if len(photos) < count:
        pytest.skip(f"needs {count} photos in {DEV_DIR}")
    return [photos[(i * stride) % len(photos)] for i in range(count)]


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """A folder holding 8 real dev photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in dev_photos(8):
        shutil.copy(photo, folder / photo.name)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained `tiny` generator saved as .keras (it predicts no colour: the gray)."""
    from colorize_cli.nets.models import build_generator, model_config

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    build_generator(model_config("tiny")).save(path)
    return path


def recombine_per_pixel(gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The full-resolution colour before issue 22, the reference the chroma paths are held to:
    a*b* upsampled to every pixel, Lab -> sRGB there, rounded, and the gray put back."""
    from colorize_cli.imaging import color

    height, width = gray.shape
    lab = np.empty((height, width, 3), np.float32)
    lab[..., 0] = color.gray_to_lightness(gray)
    for i in (0, 1):
        plane = Image.fromarray(np.ascontiguousarray(ab[..., i], np.float32))
        lab[..., 1 + i] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    srgb = color.lab_to_srgb(lab) * 255 + 0.5
    return color.keep_luminance(srgb.astype(np.uint8), gray)
