"""The training recipes: what the generator predicts, its losses and its optimizers, by name.

A recipe is a small difference, not a trainer: the losses are pure functions of tensors that
the compiled step (training/gan.py) calls. TensorFlow and numpy are imported inside them, so
listing the recipes (the CLI's choices, `--help`) stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from colorize_cli.errors import UsageError
from colorize_cli.nets.models import AB_SCALE, OUTPUTS
from colorize_cli.tf_setup import import_tf

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf

RECONSTRUCTIONS = ("l1", "mse")


@dataclass(frozen=True)
class Stage:
    """One phase of a staged recipe: which networks learn, at what rates, with what adversarial
    weight. `fraction` is its share of the run's steps (the shares of a recipe sum to 1).

    `encoder=False` keeps a pretrained encoder fixed (BatchNorm statistics included) while the
    rest of the generator learns; it changes nothing for a generator trained from scratch.
    `base=False` keeps the whole generator fixed but for a hint model's hint branches.
    `adversarial_weight` None follows the recipe's own schedule (`Recipe.adversarial_weight_at`).
    The learning-rate scales multiply the recipe's (or --lr's) rate.
    """

    name: str
    fraction: float = 1.0
    generator: bool = True
    discriminator: bool = True
    encoder: bool = True
    base: bool = True
    adversarial_weight: float | None = None
    generator_lr_scale: float = 1.0
    discriminator_lr_scale: float = 1.0


SINGLE_STAGE = (Stage("train"),)


@dataclass(frozen=True)
class Recipe:
    """Losses and optimizer settings of one way to train the GAN.

    The reconstruction loss compares generator output and target on a [-1, 1] scale whatever the
    output space (a*b* / AB_SCALE, or 2 x sRGB), so `reconstruction_weight` 100 means what it means
    in pix2pix. The adversarial weight is 0 before `adversarial_start_step`, `adversarial_weight`
    from it on; `adversarial_start_fraction` places that step at a share of the run (`for_run`).
    The discriminator learns towards `real_label` / `fake_label` (soft labels when not 1 / 0); the
    generator always aims its fakes at label 1. With `rebalance` (the uniform mix of
    `rebalance.rebalancing_weights`, ab output only) each pixel's reconstruction error is weighted
    by the rarity of its true color in the training photos: `color_weights` measures them for a
    run, which passes them to the loss (they are the run's, not the recipe's).
    """

    name: str
    description: str
    output: Literal["ab", "rgb"]
    conditional_discriminator: bool
    learning_rate: float
    beta_1: float
    reconstruction: Literal["l1", "mse"] = "l1"
    reconstruction_weight: float = 100.0
    adversarial_weight: float = 1.0
    adversarial_start_step: int = 0
    adversarial_start_fraction: float = 0.0
    real_label: float = 1.0
    fake_label: float = 0.0
    rebalance: float | None = None
    stages: tuple[Stage, ...] = SINGLE_STAGE

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise UsageError(f"recipe {self.name!r}: output must be one of {', '.join(OUTPUTS)}")
        if self.reconstruction not in RECONSTRUCTIONS:
            choices = ", ".join(RECONSTRUCTIONS)
            raise UsageError(f"recipe {self.name!r}: reconstruction must be one of {choices}")
        if self.rebalance is not None and self.output != "ab":
            raise UsageError(f"recipe {self.name!r}: rebalancing needs the ab output")
        if not self.stages or abs(sum(stage.fraction for stage in self.stages) - 1.0) > 1e-9:
            raise UsageError(f"recipe {self.name!r}: its stages' fractions must sum to 1")

    def stage_starts(self, total_steps: int) -> list[int]:
        """The first step of each stage in a run of `total_steps` (a stage may get none)."""
        starts, share = [], 0.0
        for stage in self.stages:
            starts.append(round(share * total_steps))
            share += stage.fraction
        return starts

    def stage_at(self, step: int, total_steps: int) -> int:
        """The index of the stage that step `step` (0-based) of the run belongs to."""
        index = 0
        for i, start in enumerate(self.stage_starts(total_steps)):
            if step >= start:
                index = i
        return index

    def for_run(self, total_steps: int) -> Recipe:
        """This recipe for a run of `total_steps`: a start fraction becomes a start step."""
        if not self.adversarial_start_fraction:
            return self
        start = round(self.adversarial_start_fraction * total_steps)
        return replace(self, adversarial_start_step=max(self.adversarial_start_step, start))

    def color_weights(self, rgb: np.ndarray) -> tuple[float, ...] | None:
        """The per-bin loss weights of training photos `rgb` (N, H, W, 3) uint8; None without
        `rebalance`."""
        if self.rebalance is None:
            return None
        from colorize_cli.nets.rebalance import ab_histogram, rebalancing_weights

        return tuple(float(w) for w in rebalancing_weights(ab_histogram(rgb), self.rebalance))

    @property
    def error_scale(self) -> float:
        """Factor that maps a difference in output units onto the [-1, 1] scale pix2pix uses."""
        return 1.0 / AB_SCALE if self.output == "ab" else 2.0

    def target(self, batch: dict) -> tf.Tensor:
        """The ground truth the generator's output is compared with: `batch[self.output]`."""
        return batch[self.output]

    def adversarial_weight_at(self, step: int | tf.Tensor, stage: Stage | None = None) -> tf.Tensor:
        """The adversarial weight at training step `step` (a Python int or an integer tensor)."""
        tf = import_tf()

        if stage is not None and stage.adversarial_weight is not None:
            return tf.constant(float(stage.adversarial_weight))
        started = tf.cast(step, tf.int64) >= self.adversarial_start_step
        return tf.where(started, tf.constant(self.adversarial_weight), tf.constant(0.0))

    def generator_loss(
        self,
        real: tf.Tensor,
        fake: tf.Tensor,
        fake_logits: tf.Tensor | None,
        step: int | tf.Tensor,
        stage: Stage | None = None,
        color_weights: tuple[float, ...] | None = None,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Total generator loss and its unweighted parts `{reconstruction: ..., "adv": ...}`.

        Every term is a mean over the batch given (per replica under tf.distribute). With
        `fake_logits` None (the discriminator was not run) there is no adversarial term or part.
        A rebalancing recipe needs the run's `color_weights` (`Recipe.color_weights`).
        """
        tf = import_tf()
        from colorize_cli.nets.rebalance import tf_bin_index

        real = tf.cast(real, tf.float32)
        error = (tf.cast(fake, tf.float32) - real) * self.error_scale
        error = tf.abs(error) if self.reconstruction == "l1" else tf.square(error)
        if self.rebalance is not None:
            if color_weights is None:
                raise RuntimeError(f"recipe {self.name!r} needs the run's color_weights")
            weights = tf.gather(tf.constant(color_weights), tf_bin_index(real))
            error = error * weights[..., None]
        reconstruction = tf.reduce_mean(error)
        if fake_logits is None:  # a stage that does not run the discriminator
            return self.reconstruction_weight * reconstruction, {
                self.reconstruction: reconstruction
            }
        adversarial = _bce_from_logits(1.0, fake_logits)
        total = (
            self.reconstruction_weight * reconstruction
            + self.adversarial_weight_at(step, stage) * adversarial
        )
        return total, {self.reconstruction: reconstruction, "adv": adversarial}

    def discriminator_loss(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        """Mean of the real and fake BCE terms (halved as in pix2pix, so D learns at G's pace)."""
        real = _bce_from_logits(self.real_label, real_logits)
        fake = _bce_from_logits(self.fake_label, fake_logits)
        return 0.5 * (real + fake)

    def make_optimizers(
        self, learning_rate: float | None = None
    ) -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
        """(generator, discriminator) Adam optimizers; call inside the tf.distribute scope."""
        import_tf()
        import keras

        rate = self.learning_rate if learning_rate is None else learning_rate
        return tuple(
            keras.optimizers.Adam(learning_rate=rate, beta_1=self.beta_1, name=f"{net}_adam")
            for net in ("generator", "discriminator")
        )


def _bce_from_logits(label: float, logits: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy of every patch logit against the constant `label`."""
    tf = import_tf()

    logits = tf.cast(logits, tf.float32)
    labels = tf.fill(tf.shape(logits), label)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


_L1_WARMUP = Recipe(
    name="l1-warmup",
    description="pix2pix on Lab with an L1 warm-up: L1 x 100 alone for the first 60% of the "
    "run (the discriminator learns alongside), then a weak adversarial term (x 0.3).",
    output="ab",
    conditional_discriminator=True,
    learning_rate=2e-4,
    beta_1=0.5,
    adversarial_weight=0.3,
    adversarial_start_fraction=0.6,
)

_NOGAN = Recipe(
    name="nogan",
    description="DeOldify's NoGAN on Lab, for a pretrained encoder (--model lite0): L1 x 100 "
    "with the encoder frozen (10% of the run, Adam 1e-3), then the whole generator (65%, 2e-4); "
    "the discriminator alone on its outputs (10%); a short adversarial phase, weight 0.1 (15%, "
    "generator 5e-5). Best checkpoint by the validation rule (docs/recipes.md).",
    output="ab",
    conditional_discriminator=True,
    learning_rate=1e-3,
    beta_1=0.9,
    adversarial_weight=0.0,
    stages=(
        Stage(
            "generator, encoder frozen",
            0.10,
            discriminator=False,
            encoder=False,
            adversarial_weight=0.0,
        ),
        Stage(
            "generator", 0.65, discriminator=False, adversarial_weight=0.0, generator_lr_scale=0.2
        ),
        Stage("discriminator", 0.10, generator=False, discriminator_lr_scale=0.2),
        Stage(
            "adversarial",
            0.15,
            adversarial_weight=0.1,
            generator_lr_scale=0.05,
            discriminator_lr_scale=0.2,
        ),
    ),
)

# Teaching a trained generator's hint twin (--model lite0-hints --init MODEL) to follow hints: only
# the hint branches learn, so without hints it stays exactly the automatic model it started from.
# Measured: fine-tuning the whole decoder on the pool with L1 (even at 5e-5, even with a 0.1
# adversarial term) took the dev validation colourfulness ratio from 0.58 to 0.35 in 100 steps.
_HINTS = replace(
    _NOGAN,
    name="hints",
    description="Teach a hint model (--model lite0-hints --init AUTOMATIC.keras) to follow hints: "
    "only its hint branches learn, L1 x 100, Adam 5e-4; without hints it stays the automatic "
    "model it started from (docs/hints.md).",
    learning_rate=5e-4,
    stages=(
        Stage(
            "hint branches",
            1.0,
            discriminator=False,
            encoder=False,
            base=False,
            adversarial_weight=0.0,
        ),
    ),
)

RECIPES: dict[str, Recipe] = {
    "pix2pix": Recipe(
        name="pix2pix",
        description="pix2pix (Isola et al. 2017) on Lab: predict a*b* from L*, L1 x 100 + "
        "conditional PatchGAN, Adam 2e-4 beta1 0.5.",
        output="ab",
        conditional_discriminator=True,
        learning_rate=2e-4,
        beta_1=0.5,
    ),
    "l1-warmup": _L1_WARMUP,
    "rebalanced": replace(
        _L1_WARMUP,
        name="rebalanced",
        description="l1-warmup with class-rebalanced L1 (Zhang et al. 2016): each pixel's error "
        "weighted by the rarity of its true a*b* in the training photos (uniform mix 0.9), "
        "against desaturation.",
        # Measured on the dev validation split (docs/model-card.md): 0.5 and 0.75 buy colour with
        # accuracy worse than adding none; 0.9 keeps it.
        rebalance=0.9,
    ),
    "nogan": _NOGAN,
    "hints": _HINTS,
    "paper": Recipe(
        name="paper",
        description="The seed paper: predict sRGB from gray, MSE + an unconditional "
        "discriminator with soft labels (real 0.9), Adam 1e-3.",
        output="rgb",
        conditional_discriminator=False,
        learning_rate=1e-3,
        beta_1=0.9,
        reconstruction="mse",
        real_label=0.9,
    ),
}
DEFAULT_RECIPE = "nogan"


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; UsageError naming the valid ones otherwise."""
    if name not in RECIPES:
        raise UsageError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]
