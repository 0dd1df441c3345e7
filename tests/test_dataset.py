"""dataset.py on tiny shards made from real dev photos: values, order, resume, parts, validation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import dev_photos

from colorize_cli.data.decoding import fit_image
from colorize_cli.data.shard_writer import ShardWriter
from colorize_cli.errors import ShardError, TrainingError, UsageError
from colorize_cli.imaging import color, images
from colorize_cli.training import dataset

SIZE = 40
CROP = 32


def write_shard(path: Path, photos: list[Path], size: int = SIZE, split: str = "train") -> Path:
    with ShardWriter(path, size, split=split) as writer:
        for photo in photos:
            rgb = fit_image(images.read_image(photo), size)
            sha256 = hashlib.sha256(photo.read_bytes()).hexdigest()
            writer.append(color.grayscale(rgb), rgb, str(photo), sha256)
    return path


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shard(tmp_path_factory.mktemp("shards") / "photos.h5", dev_photos(8))


def stream(source, count: int, **options) -> list[dict[str, np.ndarray]]:
    batches = iter(dataset.make_dataset(source, 4, CROP, **options))
    return [{k: v.numpy() for k, v in next(batches).items()} for _ in range(count)]


def test_batches_hold_lightness_ab_and_rgb_of_the_same_photos(shard: Path) -> None:
    photos = dataset.load_images([shard])
    (batch,) = stream([shard], 1, shuffle=False, augment=False)
    offset = (SIZE - CROP) // 2
    window = np.s_[:4, offset : offset + CROP, offset : offset + CROP]
    gray, rgb = photos.gray[window], photos.rgb[window]
    assert batch["lightness"].shape == (4, CROP, CROP, 1)
    np.testing.assert_allclose(batch["lightness"][..., 0], color.gray_to_lightness(gray), atol=1e-3)
    np.testing.assert_allclose(batch["rgb"], rgb / 255.0, atol=1e-6)
    np.testing.assert_allclose(batch["ab"], color.srgb_to_lab(rgb)[..., 1:], atol=0.05)
    assert np.abs(batch["ab"]).max() > 10  # real colour photos, not gray


def test_augmented_crops_are_windows_of_the_photos_and_some_are_flipped(shard: Path) -> None:
    photos = dataset.load_images([shard])
    found = {"offsets": set(), "flipped": 0}
    for batch in stream(photos, 6, seed=3):
        for rgb in np.round(batch["rgb"] * 255).astype(np.uint8):
            match = _locate(rgb, photos.rgb)
            assert match is not None, "an augmented crop is not a window of any photo"
            found["offsets"].add(match[:2])
            found["flipped"] += match[2]
    assert len(found["offsets"]) > 5
    assert 0 < found["flipped"] < 24


def _locate(crop: np.ndarray, photos: np.ndarray) -> tuple[int, int, bool] | None:
    for photo in photos:
        for flipped in (False, True):
            source = photo[:, ::-1] if flipped else photo
            for y in range(SIZE - CROP + 1):
                for x in range(SIZE - CROP + 1):
                    if np.array_equal(source[y : y + CROP, x : x + CROP], crop):
                        return y, x, flipped
    return None


def test_each_pass_shows_every_photo_once_in_a_new_order(shard: Path) -> None:
    batches = stream([shard], 4, seed=1, augment=False)
    order = [photo.tobytes() for batch in batches for photo in batch["rgb"]]
    assert len(set(order[:8])) == 8
    assert set(order[:8]) == set(order[8:])
    assert order[:8] != order[8:]


def test_the_stream_is_a_function_of_the_seed_and_position(shard: Path) -> None:
    photos = dataset.load_images([shard])
    reference = stream(photos, 5, seed=7)
    again = stream(photos, 5, seed=7)
    resumed = stream(photos, 2, seed=7, skip_batches=3)
    other = stream(photos, 5, seed=8)
    for a, b in zip(reference, again, strict=True):
        np.testing.assert_array_equal(a["rgb"], b["rgb"])
    for a, b in zip(reference[3:], resumed, strict=True):
        np.testing.assert_array_equal(a["rgb"], b["rgb"])
    assert not all(
        np.array_equal(a["rgb"], b["rgb"]) for a, b in zip(reference, other, strict=True)
    )


def test_pipelines_share_each_batch_without_overlap(shard: Path) -> None:
    photos = dataset.load_images([shard])
    whole = stream(photos, 2, seed=2)
    # Two pipelines of two one-photo replica batches each: 4 replica batches per global batch.
    parts = [stream(photos, 4, seed=2, pipeline=(k, 2), replica_batch=1) for k in range(2)]
    for step in range(2):
        rows = [b["rgb"] for k in range(2) for b in parts[k][2 * step : 2 * step + 2]]
        np.testing.assert_array_equal(np.concatenate(rows), whole[step]["rgb"])


def test_one_pass_without_repeat_keeps_the_short_last_batch(shard: Path) -> None:
    batches = dataset.make_dataset([shard], 3, CROP, repeat=False, shuffle=False, augment=False)
    assert [len(b["rgb"]) for b in batches] == [3, 3, 2]


def test_bad_arguments_are_usage_errors(shard: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="crop"):
        dataset.make_dataset([shard], 4, SIZE + 8)
    with pytest.raises(UsageError, match="larger than"):
        dataset.make_dataset([shard], 16, CROP)
    with pytest.raises(UsageError, match="split"):
        dataset.make_dataset([shard], 4, CROP, pipeline=(0, 3))
    other = write_shard(tmp_path / "big.h5", dev_photos(2), size=48)
    with pytest.raises(ShardError, match="size"):
        dataset.load_images([shard, other])


def test_validation_comes_from_val_shards_beside_the_training_shards(tmp_path: Path) -> None:
    photos = dev_photos(12)
    write_shard(tmp_path / "set-00000.h5", photos[:5])
    write_shard(tmp_path / "set-00001.h5", photos[5:10])
    write_shard(tmp_path / "set.val.h5", photos[10:], split="val")
    data = dataset.load_training_data([str(tmp_path / "set-*.h5")], None)
    assert (len(data.train), len(data.val), data.holdout) == (10, 2, 0)
    assert [Path(d["path"]).name for d in data.val_shards] == ["set.val.h5"]
    # A glob that catches the val shard too still keeps it out of training.
    data = dataset.load_training_data([str(tmp_path / "set*.h5")], None)
    assert (len(data.train), len(data.val)) == (10, 2)


def test_without_val_shards_a_slice_is_held_out(shard: Path) -> None:
    data = dataset.load_training_data([str(shard)], None)
    assert (len(data.train), len(data.val), data.holdout) == (7, 1, 1)
    held = {tuple(v.ravel()[:64]) for v in data.val.rgb}
    assert not held & {tuple(t.ravel()[:64]) for t in data.train.rgb}


def test_resume_refuses_shards_whose_photos_changed(tmp_path: Path) -> None:
    path = write_shard(tmp_path / "a.h5", dev_photos(4))
    recorded = dataset.load_training_data([str(path)], None).provenance()
    assert len(dataset.load_training_data([], None, recorded).train) == 3
    write_shard(path, dev_photos(5))
    with pytest.raises(TrainingError, match="changed"):
        dataset.load_training_data([], None, recorded)
