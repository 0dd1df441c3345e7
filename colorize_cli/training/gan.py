"""The GAN: `build_gan` makes the generator-discriminator pair and their optimizers (train, bench
and scripts all build it here), `make_train_step` the compiled step: one forward pass, both
networks' gradients and updates, on any strategy.

    gan = build_gan(model_config("tiny"), get_recipe("pix2pix"))
    step = gan.compile_step(xla=False)
    losses = step(iter(gan.strategy.experimental_distribute_dataset(batches)), tf.constant(0))

The recipe supplies the losses and the target; this file only wires them to the tapes, the
optimizers and the replicas, so every recipe (and every device layout) shares one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorize_cli.errors import ModelError
from colorize_cli.nets.models import ModelConfig, build_discriminator, build_generator
from colorize_cli.tf_setup import import_tf

if TYPE_CHECKING:
    import keras

    from colorize_cli.nets.recipes import Recipe, Stage

tf = import_tf()

TrainStep = Callable[[Any, tf.Tensor], dict[str, tf.Tensor]]


@dataclass
class Gan:
    """A generator-discriminator pair, their optimizers and the strategy they were built under."""

    generator: keras.Model
    discriminator: keras.Model
    g_opt: keras.optimizers.Optimizer  # a LossScaleOptimizer under mixed precision
    d_opt: keras.optimizers.Optimizer
    strategy: tf.distribute.Strategy
    model_config: ModelConfig
    recipe: Recipe

    def compile_step(
        self,
        *,
        xla: bool = False,
        stage: Stage | None = None,
        color_weights: tuple[float, ...] | None = None,
    ) -> TrainStep:
        """Build the compiled step of `stage` (see make_train_step) for these networks; each
        call traces a new `tf.function`, so call it once per stage."""
        return make_train_step(
            self.strategy,
            self.generator,
            self.discriminator,
            self.recipe,
            self.g_opt,
            self.d_opt,
            xla=xla,
            stage=stage,
            color_weights=color_weights,
        )


def build_gan(
    model_config: ModelConfig,
    recipe: Any,
    *,
    strategy: Any = None,
    lr: float | None = None,
    precision: str = "float32",
    seed: int = 0,
    init: str | Path | None = None,
) -> Gan:
    """Both networks and their optimizers, built (seeded by `seed`) inside `strategy`'s scope.

    `strategy` None: the default (one device). `lr` None: the recipe's. `precision` "mixed":
    float16 compute with loss-scaling optimizers. `init`: start the generator from a trained
    generator .keras of the same preset and recipe (ModelError otherwise).
    """
    import keras

    strategy = strategy or tf.distribute.get_strategy()
    mixed = precision == "mixed"
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        keras.utils.set_random_seed(seed)
        with strategy.scope():
            generator = build_generator(model_config)
            discriminator = build_discriminator(model_config, recipe.conditional_discriminator)
            # Keras 3 optimizers must be built inside the strategy scope.
            g_opt, d_opt = recipe.make_optimizers(lr)
            if mixed:
                g_opt = keras.optimizers.LossScaleOptimizer(g_opt)
                d_opt = keras.optimizers.LossScaleOptimizer(d_opt)
            g_opt.build(generator.trainable_variables)
            d_opt.build(discriminator.trainable_variables)
            if init is not None:
                _load_init(generator, Path(init), model_config, recipe)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return Gan(generator, discriminator, g_opt, d_opt, strategy, model_config, recipe)


def _load_init(generator: Any, path: Path, model_config: ModelConfig, recipe: Any) -> None:
    """Start from the weights of a trained generator of the same preset and recipe, or from an
    automatic generator into its hint twin (the hint branches keep their zero start)."""
    from colorize_cli.nets.models import takes_hints, transfer_weights
    from colorize_cli.nets.saved import load_generator

    trained = load_generator(path)
    try:
        if takes_hints(generator) and not takes_hints(trained):
            transfer_weights(trained, generator)
        else:
            generator.set_weights(trained.get_weights())
    except ValueError:
        raise ModelError(
            f"does not match --model {model_config.preset} with --recipe {recipe.name}", path
        ) from None


def generator_input(generator: Any, batch: dict[str, tf.Tensor]) -> Any:
    """What `generator` is called with for a batch: L* alone, or a hint model's three inputs
    (zero hints and no palette when the batch carries none: automatic colour)."""
    from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
    from colorize_cli.nets.models import takes_hints

    lightness = batch["lightness"]
    if not takes_hints(generator):
        return lightness
    shape = tf.shape(lightness)
    hints = batch.get("hints")
    if hints is None:
        hints = tf.zeros(tf.concat([shape[:3], [HINT_CHANNELS]], 0), lightness.dtype)
    palette = batch.get("palette")
    if palette is None:
        palette = tf.zeros(tf.stack([shape[0], PALETTE_SIZE]), lightness.dtype)
    return {"lightness": lightness, "hints": hints, "palette": palette}


def discriminator_input(lightness: tf.Tensor, color: tf.Tensor, conditional: bool) -> Any:
    """What the PatchGAN judges: the (L*, colour) pair, or the colour alone."""
    return [lightness, color] if conditional else color


def make_train_step(
    strategy: tf.distribute.Strategy,
    generator: Any,
    discriminator: Any,
    recipe: Any,
    g_opt: Any,
    d_opt: Any,
    *,
    xla: bool,
    stage: Any = None,
    color_weights: tuple[float, ...] | None = None,
) -> TrainStep:
    """A `tf.function(iterator, step) -> {"g", *loss parts, "d"}` averaged over the replicas.

    `iterator` yields the batches `dataset.make_dataset` makes (distributed by `strategy`); `step`
    is the global step, passed to the recipe. `stage` (a `recipes.Stage`, None: both networks
    learn) says which networks learn; a generator-only stage without an adversarial term skips
    the discriminator (no "d" or "adv" then). `color_weights`: a rebalancing recipe's, measured on
    the run's photos (`Recipe.color_weights`). The generator learns its `trainable_variables` at
    the time of this call. The gradient computation is XLA-compiled when `xla`; the updates stay
    outside it because summing gradients across replicas is a cross-replica call.
    """
    conditional = recipe.conditional_discriminator
    # Optimizers sum the replicas' gradients, so each replica's mean loss counts 1/replicas.
    replica_share = 1.0 / strategy.num_replicas_in_sync
    train_g = stage is None or stage.generator
    train_d = stage is None or stage.discriminator
    judge = train_d or stage.adversarial_weight != 0.0
    g_variables = list(generator.trainable_variables) if train_g else []
    d_variables = list(discriminator.trainable_variables) if train_d else []

    def gradients(batch: dict[str, tf.Tensor], step: tf.Tensor) -> tuple[Any, Any, dict]:
        lightness = batch["lightness"]
        real = recipe.target(batch)
        with tf.GradientTape(persistent=True) as tape:
            fake = tf.cast(
                generator(generator_input(generator, batch), training=train_g), tf.float32
            )
            if judge:
                real_logits = discriminator(
                    discriminator_input(lightness, real, conditional), training=train_d
                )
                fake_logits = discriminator(
                    discriminator_input(lightness, fake, conditional), training=train_d
                )
                real_logits = tf.cast(real_logits, tf.float32)
                fake_logits = tf.cast(fake_logits, tf.float32)
                g_loss, parts = recipe.generator_loss(
                    real, fake, fake_logits, step, stage, color_weights
                )
                d_loss = recipe.discriminator_loss(real_logits, fake_logits)
                parts = {**parts, "d": d_loss}
            else:
                g_loss, parts = recipe.generator_loss(real, fake, None, step, stage, color_weights)
            g_scaled = g_opt.scale_loss(g_loss * replica_share)
            d_scaled = d_opt.scale_loss(parts["d"] * replica_share) if train_d else None
        g_grads = tape.gradient(g_scaled, g_variables) if train_g else []
        d_grads = tape.gradient(d_scaled, d_variables) if train_d else []
        del tape
        return g_grads, d_grads, {"g": g_loss, **parts}

    compiled = tf.function(gradients, jit_compile=xla)

    def replica_step(batch: dict[str, tf.Tensor], step: tf.Tensor) -> dict[str, tf.Tensor]:
        g_grads, d_grads, losses = compiled(batch, step)
        if train_g:
            g_opt.apply_gradients(zip(g_grads, g_variables, strict=True))
        if train_d:
            d_opt.apply_gradients(zip(d_grads, d_variables, strict=True))
        return losses

    @tf.function
    def train_step(iterator: Any, step: tf.Tensor) -> dict[str, tf.Tensor]:
        losses = strategy.run(replica_step, args=(next(iterator), step))
        return {
            name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for name, value in losses.items()
        }

    return train_step
