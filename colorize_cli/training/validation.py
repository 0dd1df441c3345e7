"""Per-epoch validation: the generator on held-out photos -> L1 on ab, PSNR, CIEDE2000,
colourfulness, the checkpoint-selection score, samples.

The scores are `metrics.py`'s, on the uint8 sRGB photos `apply` would write (at the training crop,
centred), so the training log and `colorize eval` speak the same units.

The selection rule (lower is better; `best.keras` is the epoch with the lowest) weighs accuracy
and colour together, because L1 or CIEDE2000 alone prefer a desaturated model:

    val_selection = CIEDE2000 / CIEDE2000 of the gray baseline - 0.25 x min(colourfulness ratio, 1)

so 0.2 more of the truth's colourfulness is worth 5% of the gray baseline's colour error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from colorize_cli.imaging import color, metrics
from colorize_cli.imaging.color import grayscale, srgb_to_lab, tf_lab_to_srgb, tf_srgb_to_lab
from colorize_cli.tf_setup import import_tf
from colorize_cli.training.dataset import ImageSet, make_dataset
from colorize_cli.training.gan import generator_input

tf = import_tf()

SELECTION = "val_selection"
COLOR_WEIGHT = 0.25


def selection_score(ciede2000: float, gray_ciede2000: float, colorfulness_ratio: float) -> float:
    """The checkpoint rule above: CIEDE2000 relative to gray, minus the capped colour bonus."""
    return ciede2000 / max(gray_ciede2000, 1e-9) - COLOR_WEIGHT * min(colorfulness_ratio, 1.0)


@dataclass(frozen=True)
class Validation:
    """Mean scores over the validation photos and the sample rows (uint8) for the grid."""

    scores: dict[str, float]
    gray: np.ndarray
    generated: np.ndarray
    truth: np.ndarray


class Validator:
    """Scores a generator on fixed photos; build once per run, call once per epoch."""

    def __init__(
        self,
        generator: Any,
        images: ImageSet,
        output: str,
        batch_size: int,
        crop: int,
        samples: int,
    ) -> None:
        from colorize_cli.nets.models import takes_hints

        self.output = output
        self.samples = samples
        # A hint model is scored with hints drawn by the training sampler (fixed per photo, about
        # a quarter of the photos without points), and also without any (`val_auto_*`).
        self.hints = takes_hints(generator)
        self.batches = make_dataset(
            images, batch_size, crop, shuffle=False, repeat=False, augment=False, hints=self.hints
        )
        self.predict = tf.function(
            lambda batch: generator(generator_input(generator, batch), training=False)
        )
        # The truth's Lab and the gray baseline's CIEDE2000 do not change between epochs.
        self._truth_lab: list[np.ndarray] = []
        self._gray_ciede2000: float | None = None

    def __call__(self) -> Validation:
        l1, psnr, colorfulness, truth_colorfulness = [], [], [], []
        ciede, photo = [], 0
        automatic_ciede, automatic_colorfulness = [], []
        generated_rows, truth_rows = [], []
        for batch in self.batches:
            ab, rgb = self._color(batch)
            if self.hints:
                _, automatic = self._color({"lightness": batch["lightness"]})
                for out, real in zip(_to_uint8(automatic), _to_uint8(batch["rgb"]), strict=True):
                    automatic_ciede.append(
                        metrics.mean_ciede2000(srgb_to_lab(real), srgb_to_lab(out))
                    )
                    automatic_colorfulness.append(color.colorfulness(out))
            l1.extend(tf.reduce_mean(tf.abs(ab - batch["ab"]), axis=[1, 2, 3]).numpy())
            generated = _to_uint8(rgb)
            truth = _to_uint8(batch["rgb"])
            for out, real in zip(generated, truth, strict=True):
                if photo == len(self._truth_lab):
                    self._truth_lab.append(srgb_to_lab(real))
                ciede.append(metrics.mean_ciede2000(self._truth_lab[photo], srgb_to_lab(out)))
                photo += 1
                psnr.append(metrics.psnr(real, out))
                colorfulness.append(color.colorfulness(out))
                truth_colorfulness.append(color.colorfulness(real))
            missing = max(self.samples - sum(map(len, generated_rows)), 0)
            generated_rows.append(generated[:missing])
            truth_rows.append(truth[:missing])
        truth_samples = np.concatenate(truth_rows)
        if self._gray_ciede2000 is None:
            self._gray_ciede2000 = self._gray_baseline()
        scores = {
            "val_l1_ab": float(np.mean(l1)),
            "val_psnr": float(np.mean(psnr)),
            "val_ciede2000": float(np.mean(ciede)),
            "val_ciede2000_gray": self._gray_ciede2000,
            "val_colourfulness": float(np.mean(colorfulness)),
            "val_colourfulness_ratio": metrics.colorfulness_ratio(colorfulness, truth_colorfulness),
        }
        if self.hints:
            scores["val_auto_ciede2000"] = float(np.mean(automatic_ciede))
            scores["val_auto_colourfulness_ratio"] = metrics.colorfulness_ratio(
                automatic_colorfulness, truth_colorfulness
            )
        scores[SELECTION] = selection_score(
            scores["val_ciede2000"], scores["val_ciede2000_gray"], scores["val_colourfulness_ratio"]
        )
        return Validation(
            scores=scores,
            gray=grayscale(truth_samples),
            generated=np.concatenate(generated_rows),
            truth=truth_samples,
        )

    def _gray_baseline(self) -> float:
        """Mean CIEDE2000 of the baseline `colorize eval` reports: each photo's gray as RGB."""
        scores, photo = [], 0
        for batch in self.batches:
            for real in _to_uint8(batch["rgb"]):
                gray_rgb = np.repeat(grayscale(real)[..., np.newaxis], 3, axis=-1)
                scores.append(metrics.mean_ciede2000(self._truth_lab[photo], srgb_to_lab(gray_rgb)))
                photo += 1
        return float(np.mean(scores))

    def _color(self, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """(a*b* in Lab units, sRGB in [0, 1]) of the generator's output, whatever space it uses."""
        inputs = {k: v for k, v in batch.items() if k in ("lightness", "hints", "palette")}
        lightness = batch["lightness"]
        output = tf.cast(self.predict(inputs), tf.float32)
        if self.output == "ab":
            return output, tf_lab_to_srgb(tf.concat([lightness, output], axis=-1))
        rgb = tf.clip_by_value(output, 0.0, 1.0)
        return tf_srgb_to_lab(rgb)[..., 1:], rgb


def _to_uint8(rgb: tf.Tensor) -> np.ndarray:
    return np.round(np.clip(rgb.numpy(), 0.0, 1.0) * 255.0).astype(np.uint8)
