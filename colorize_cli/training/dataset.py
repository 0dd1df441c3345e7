"""Shards -> tf.data batches: the photos held in memory, a reproducible order, crops, flips, Lab.

Every batch is a pure function of (seed, position in the stream): the order of a pass is a
stateless shuffle keyed by (seed, epoch) and each crop/flip by (seed, epoch, slot), so a resumed
run that skips the batches it already trained on sees exactly what an uninterrupted run would.
"""

from __future__ import annotations

import glob
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from colorize_cli.data.shards import expand_shard_paths, open_shard
from colorize_cli.errors import ShardError, TrainingError, UsageError
from colorize_cli.fsutil import TEMP_MARK
from colorize_cli.imaging.color import tf_gray_to_lightness, tf_srgb_to_lab
from colorize_cli.tf_setup import import_tf
from colorize_cli.training import hint_sampling

tf = import_tf()

# Stateless seeds are pairs; the second half packs (epoch, slot) so no two draws share a key.
_SLOTS_PER_EPOCH = 1 << 32
# Without validation shards, this share of the training photos (at most HOLDOUT_MAX) validates.
HOLDOUT_FRACTION = 0.05
HOLDOUT_MAX = 256


@dataclass(frozen=True)
class ImageSet:
    """Photos in memory: `gray` (N, S, S) and `rgb` (N, S, S, 3), both uint8, pairwise aligned."""

    gray: np.ndarray
    rgb: np.ndarray

    def __len__(self) -> int:
        return len(self.gray)

    @property
    def image_size(self) -> int:
        return int(self.gray.shape[1])

    def take(self, indices: np.ndarray) -> ImageSet:
        """The photos at `indices`, in that order."""
        return ImageSet(self.gray[indices], self.rgb[indices])


def load_images(shard_paths: Sequence[str | PathLike[str]]) -> ImageSet:
    """Read every photo of the shards into memory (all shards must share one image size).

    In memory rather than streamed: h5py is not thread-safe, so a streamed read runs on one thread,
    and the dev set at 256 px is only ~390 MB (docs/training.md compares the two).
    """
    if not shard_paths:
        raise UsageError("no shard files given")
    grays, rgbs = [], []
    sizes: dict[int, Path] = {}
    for path in map(Path, shard_paths):
        with open_shard(path) as shard:
            if len(shard) == 0:
                continue
            sizes.setdefault(shard.image_size, path)
            if len(sizes) > 1:
                raise ShardError(
                    f"image size {shard.image_size} differs from {min(sizes)} in "
                    f"{sizes[min(sizes)]}; train on shards of one size",
                    path,
                )
            gray, rgb = shard.read_all()
            grays.append(gray)
            rgbs.append(rgb)
    if not grays:
        raise ShardError("the shards hold no images", shard_paths[0])
    if len(grays) == 1:  # spares a copy of the whole set
        return ImageSet(grays[0], rgbs[0])
    return ImageSet(np.concatenate(grays), np.concatenate(rgbs))


def holdout_split(images: ImageSet, count: int) -> tuple[ImageSet, ImageSet]:
    """(training, validation): `count` photos spread evenly over the set are held out."""
    if not 0 < count < len(images):
        raise UsageError(f"cannot hold out {count} of {len(images)} photos for validation")
    held = np.unique(np.linspace(0, len(images) - 1, count).round().astype(np.int64))
    kept = np.setdiff1d(np.arange(len(images)), held)
    return images.take(kept), images.take(held)


def batches_per_epoch(image_count: int, batch_size: int) -> int:
    """Full batches in one pass over `image_count` photos (the remainder waits for a later pass)."""
    return image_count // batch_size


def make_dataset(
    shards: Sequence[str | PathLike[str]] | ImageSet,
    batch_size: int,
    crop: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = True,
    augment: bool = True,
    skip_batches: int = 0,
    pipeline: tuple[int, int] = (0, 1),
    replica_batch: int | None = None,
    hints: bool = False,
) -> tf.data.Dataset:
    """Batches of {"lightness" (B,c,c,1) L*, "ab" (B,c,c,2) Lab units, "rgb" (B,c,c,3) in [0, 1]}.

    hints=True adds each photo's "hints" (B,c,c,3) and "palette" (B,PALETTE_SIZE), sampled from
    its truth (training/hint_sampling.py) with the photo's own random key.

    `shards` are shard paths or photos already loaded. repeat=True streams passes forever, each in
    full batches of a new order; repeat=False is one pass over every photo (last batch may be
    short). augment: random crops (else centred) and horizontal flips. skip_batches starts the
    stream that many batches in (resume). For data-parallel training, pipeline=(k, n) keeps only
    the k-th of n equal shares of every batch and yields it in batches of `replica_batch` (default:
    the whole share), one per replica the pipeline feeds.
    """
    images = shards if isinstance(shards, ImageSet) else load_images(shards)
    _check_arguments(images, batch_size, crop, pipeline, replica_batch)
    share = batch_size // pipeline[1]
    replica_batch = replica_batch or share
    count = len(images)
    used = batches_per_epoch(count, batch_size) * batch_size if repeat else count
    if used == 0:
        raise UsageError(f"batch size {batch_size} is larger than the {count} training photos")
    gray = tf.constant(images.gray)
    rgb = tf.constant(images.rgb)

    def one_pass(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.range(count, dtype=tf.int64)
        if shuffle:
            key = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(order, seed=key)
        slots = tf.range(used, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((tf.fill([used], epoch), slots, order[:used]))

    passes = tf.data.Dataset.range(_SLOTS_PER_EPOCH if repeat else 1)
    slots = passes.flat_map(one_pass).skip(skip_batches * batch_size)
    if pipeline[1] > 1:
        slots = slots.filter(lambda epoch, slot, index: (slot % batch_size) // share == pipeline[0])

    def load(epoch: tf.Tensor, slot: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        photo = tf.concat([gray[index][..., None], rgb[index]], axis=-1)
        key = tf.stack([tf.constant(seed, tf.int64), epoch * _SLOTS_PER_EPOCH + slot])
        if not augment:
            photo = _centre_crop(photo, crop)
        else:
            photo = tf.image.stateless_random_crop(photo, [crop, crop, 4], seed=key)
            photo = tf.image.stateless_random_flip_left_right(photo, seed=key[::-1])
        if not hints:
            return photo
        # Each photo's hints are drawn with its own key, so a batch is still a pure function of
        # (seed, position); converted to model space per photo, as the sampler needs its a*b*.
        sample = _to_model_space(photo)
        hint_key = tf.stack([key[1], key[0] + 1])
        sample["hints"] = hint_sampling.sample_hints(
            sample["ab"], sample["lightness"][..., 0], hint_key
        )
        sample["palette"] = hint_sampling.sample_palette(sample["ab"], hint_key[::-1])
        return sample

    batches = slots.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = batches.batch(replica_batch, drop_remainder=repeat)
    if not hints:
        batches = batches.map(
            _to_model_space, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    return batches.prefetch(tf.data.AUTOTUNE)


def _check_arguments(
    images: ImageSet,
    batch_size: int,
    crop: int,
    pipeline: tuple[int, int],
    replica_batch: int | None,
) -> None:
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    if not 0 < crop <= images.image_size:
        raise UsageError(
            f"crop must be between 1 and the image size {images.image_size}, got {crop}"
        )
    index, count = pipeline
    share_splits = replica_batch is None or (
        replica_batch >= 1 and count >= 1 and (batch_size // count) % replica_batch == 0
    )
    if not 0 <= index < count or batch_size % count or not share_splits:
        raise UsageError(
            f"cannot split batches of {batch_size} into {count} pipelines of replica batches of "
            f"{replica_batch}"
        )


def _centre_crop(photo: tf.Tensor, crop: int) -> tf.Tensor:
    offset = (tf.shape(photo)[0] - crop) // 2
    return photo[offset : offset + crop, offset : offset + crop]


def _to_model_space(photos: tf.Tensor) -> dict[str, tf.Tensor]:
    """uint8 (B, c, c, 4) gray+RGB -> the float tensors the GAN step reads."""
    return {
        "lightness": tf_gray_to_lightness(photos[..., :1]),
        "ab": tf_srgb_to_lab(photos[..., 1:])[..., 1:],
        "rgb": tf.cast(photos[..., 1:], tf.float32) / 255.0,
    }


@dataclass(frozen=True)
class TrainingData:
    """The photos a run trains and validates on, and where they came from (for config.json)."""

    train: ImageSet
    val: ImageSet
    train_shards: list[dict]
    val_shards: list[dict]
    holdout: int  # photos held out of the training shards for validation; 0 with val shards

    def batches_per_epoch(self, batch_size: int) -> int:
        count = batches_per_epoch(len(self.train), batch_size)
        if count == 0:
            raise UsageError(
                f"--batch-size {batch_size} is larger than the {len(self.train)} training photos"
            )
        return count

    def provenance(self) -> dict:
        return {"train": self.train_shards, "val": self.val_shards, "holdout": self.holdout}


def load_training_data(
    shards: Sequence[str], val: Sequence[str] | None, recorded: dict | None = None
) -> TrainingData:
    """Resolve and load a run's photos: `shards` train (val-split shards among them validate).

    Validation photos come from `val`, else the *.val*.h5 shards beside the training shards (as
    `colorize prepare` writes them), else a slice held out of the training photos. `recorded` (a
    run's provenance) reloads exactly those files and refuses any whose photos changed.
    """
    if recorded is not None:
        train_shards = _recheck(recorded["train"])
        val_shards = _recheck(recorded["val"])
        holdout = int(recorded["holdout"])
    else:
        described = [_describe(path) for path in expand_shard_paths(list(shards))]
        if val:
            val_shards = [_describe(path) for path in expand_shard_paths(list(val))]
        else:
            val_shards = [d for d in described if d["split"] == "val"]
            val_shards += _val_beside(described, {d["path"] for d in val_shards})
        held_paths = {d["path"] for d in val_shards}
        train_shards = [d for d in described if d["split"] != "val" and d["path"] not in held_paths]
        if not train_shards:
            raise UsageError(f"no training shards among {', '.join(shards)} (all are val)")
        total = sum(d["images"] for d in train_shards)
        holdout = 0 if val_shards else min(HOLDOUT_MAX, max(1, round(total * HOLDOUT_FRACTION)))
    images = load_images([d["path"] for d in train_shards])
    if holdout:
        images, val_images = holdout_split(images, holdout)
    else:
        val_images = load_images([d["path"] for d in val_shards])
    return TrainingData(images, val_images, train_shards, val_shards, holdout)


def _describe(path: Path) -> dict:
    """Provenance of one shard; `sha256` digests its photos' hashes in order."""
    with open_shard(path) as shard:
        digest = hashlib.sha256("\n".join(shard.sha256).encode()).hexdigest()
        return {
            "path": str(Path(path).resolve()),
            "images": len(shard),
            "image_size": shard.image_size,
            "split": shard.split,
            "sha256": digest,
        }


def _recheck(recorded: list[dict]) -> list[dict]:
    for entry in recorded:
        if _describe(Path(entry["path"]))["sha256"] != entry["sha256"]:
            raise TrainingError(
                "its photos changed since the run started, so it cannot resume exactly",
                entry["path"],
            )
    return recorded


def _val_beside(described: list[dict], known: set[str]) -> list[dict]:
    """The validation shards `colorize prepare` wrote beside the training shards."""
    found = []
    for entry in described:
        path = Path(entry["path"])
        base = re.sub(r"-\d{5,}$", "", path.stem)
        for candidate in sorted(path.parent.glob(f"{glob.escape(base)}.val*.h5")):
            resolved = str(candidate.resolve())
            if TEMP_MARK in candidate.name or resolved in known:
                continue
            described_candidate = _describe(candidate)
            if described_candidate["split"] == "val":
                known.add(resolved)
                found.append(described_candidate)
    return found
