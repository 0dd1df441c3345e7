"""evaluate: shards and photo folders through the apply code path, the gray baseline beside the
model, JSON, per-photo CSV and the contact sheet."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image

from colorize_cli.data import shard_writer, shards
from colorize_cli.errors import ShardError, UsageError
from colorize_cli.imaging import color
from colorize_cli.inference import evaluate
from colorize_cli.inference.colorizer import Colorizer

SIZE = 64


@pytest.fixture(scope="module")
def val_shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real dev photos, centre-cropped to 64x64, in a validation shard."""
    path = tmp_path_factory.mktemp("shards") / "dev.val.h5"
    with shard_writer.ShardWriter(path, SIZE, split="val") as writer:
        for photo in dev_photos(4):
            image = Image.open(photo).convert("RGB")
            side = min(image.size)
            rgb = np.asarray(image.crop((0, 0, side, side)).resize((SIZE, SIZE)))
            digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            writer.append(color.grayscale(rgb), rgb, str(photo), digest)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_model: Path) -> Colorizer:
    return Colorizer(tiny_model, render_size=SIZE, batch_size=3)


@pytest.fixture(scope="module")
def no_colour(tmp_path_factory: pytest.TempPathFactory) -> Colorizer:
    """A generator that always predicts a* = b* = 0: it must score like the gray baseline."""
    lightness = keras.Input((None, None, 1))
    ab = keras.layers.Conv2D(2, 1, kernel_initializer="zeros")(lightness)
    path = tmp_path_factory.mktemp("model") / "zero.keras"
    keras.Model(lightness, ab).save(path)
    return Colorizer(path, render_size=SIZE)


def test_scores_a_shard_next_to_the_gray_baseline(val_shard: Path, tiny: Colorizer) -> None:
    result = evaluate.evaluate(None, [str(val_shard)], sheet_count=2, colorizer=tiny)
    assert [row.name for row in result.images] == [f"{val_shard}:{i}" for i in range(4)]
    assert all((row.width, row.height) == (SIZE, SIZE) for row in result.images)
    summary = result.summary()
    gray, model = summary["gray"], summary["model"]
    assert gray["colourfulness"] == 0 and gray["colourfulness_ratio"] == 0
    assert gray["colourfulness_truth"] == model["colourfulness_truth"] > 8
    assert gray["ciede2000"] > 1 and 0 < gray["auc"] < 1
    for system in (gray, model):
        assert 5 < system["psnr"] < 60 and 0 < system["ssim"] <= 1
    assert len(result.sheet_rows) == 2


def test_a_model_adding_no_colour_scores_like_the_gray_baseline(
    val_shard: Path, no_colour: Colorizer
) -> None:
    summary = evaluate.evaluate(None, [str(val_shard)], colorizer=no_colour).summary()
    for key in ("psnr", "ssim", "ciede2000", "auc"):
        assert summary["model"][key] == pytest.approx(summary["gray"][key], rel=1e-3, abs=1e-3)


def test_photo_folders_are_scored_at_full_resolution(tmp_path: Path, tiny: Colorizer) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in dev_photos(2, stride=301):
        shutil.copy(photo, folder / photo.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    result = evaluate.evaluate(None, [str(folder)], colorizer=tiny)
    sizes = sorted((row.width, row.height) for row in result.images)
    expected = sorted(Image.open(p).size for p in folder.glob("*.jpg") if p.name != "broken.jpg")
    assert sizes == expected
    assert [Path(name).name for name, _ in result.failures] == ["broken.jpg"]


def test_json_csv_and_sheet(val_shard: Path, tiny: Colorizer, tmp_path: Path) -> None:
    result = evaluate.evaluate(None, [str(val_shard)], sheet_count=3, colorizer=tiny)
    report = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert report["images"] == 4 and report["render_size"] == SIZE
    assert set(report["metrics"]) == {"model", "gray"}
    assert {key for key, _, _ in evaluate.METRICS} == set(report["metrics"]["model"])

    result.write_per_image_csv(tmp_path / "scores.csv")
    with open(tmp_path / "scores.csv", newline="") as fp:
        rows = list(csv.DictReader(fp))
    assert [row["image"] for row in rows] == [row.name for row in result.images]
    mean_ciede = np.mean([float(row["ciede2000"]) for row in rows])
    assert mean_ciede == pytest.approx(result.summary()["model"]["ciede2000"], rel=1e-4)
    assert all(float(row["gray_colourfulness"]) == 0 for row in rows)

    result.write_sheet(tmp_path / "sheet.png")
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    step = evaluate.SHEET_CELL + evaluate._GAP
    assert sheet.shape == (evaluate._LABEL_HEIGHT + evaluate._GAP + 3 * step, 4 + 3 * step, 3)
    # The first row's truth cell shows the first photo, centred and at its own size.
    with shards.open_shard(val_shard) as shard:
        _, truth = shard.read(0)
    margin = (evaluate.SHEET_CELL - SIZE) // 2
    top = evaluate._LABEL_HEIGHT + evaluate._GAP + margin
    left = evaluate._GAP + 2 * step + margin
    assert np.array_equal(sheet[top : top + SIZE, left : left + SIZE], truth)


def test_missing_data_is_an_error_before_any_model_is_loaded(tmp_path: Path) -> None:
    with pytest.raises(ShardError):
        evaluate.evaluate(tmp_path / "no.keras", [str(tmp_path / "none.h5")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no images"):
        evaluate.evaluate(tmp_path / "no.keras", [str(empty)])
