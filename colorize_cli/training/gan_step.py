"""The compiled GAN step: one forward pass, both networks' gradients and updates, on any strategy.

The recipe supplies the losses and the target; this file only wires them to the tapes, the
optimizers and the replicas, so both recipes (and every device layout) share one step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from colorize_cli.tf_setup import import_tf

tf = import_tf()

TrainStep = Callable[[Any, tf.Tensor], dict[str, tf.Tensor]]


def discriminator_input(lightness: tf.Tensor, colour: tf.Tensor, conditional: bool) -> Any:
    """What the PatchGAN judges: the (L*, colour) pair, or the colour alone."""
    return [lightness, colour] if conditional else colour


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
) -> TrainStep:
    """A `tf.function(iterator, step) -> {"g", *loss parts, "d"}` averaged over the replicas.

    `iterator` yields the batches `dataset.make_dataset` makes (distributed by `strategy`); `step`
    is the global step, passed to the recipe. `stage` (a `recipes.Stage`, None: both networks
    learn) says which networks learn; a generator-only stage without an adversarial term skips
    the discriminator (no "d" or "adv" then). The generator learns its `trainable_variables` at
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
            fake = tf.cast(generator(lightness, training=train_g), tf.float32)
            if judge:
                real_logits = discriminator(
                    discriminator_input(lightness, real, conditional), training=train_d
                )
                fake_logits = discriminator(
                    discriminator_input(lightness, fake, conditional), training=train_d
                )
                real_logits = tf.cast(real_logits, tf.float32)
                fake_logits = tf.cast(fake_logits, tf.float32)
                g_loss, parts = recipe.generator_loss(real, fake, fake_logits, step, stage)
                d_loss = recipe.discriminator_loss(real_logits, fake_logits)
                parts = {**parts, "d": d_loss}
            else:
                g_loss, parts = recipe.generator_loss(real, fake, None, step, stage)
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
