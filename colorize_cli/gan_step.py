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
) -> TrainStep:
    """A `tf.function(iterator, step) -> {"g", "d", *loss parts}` averaged over the replicas.

    `iterator` yields the batches `dataset.make_dataset` makes (distributed by `strategy`); `step`
    is the global step, passed to the recipe. The gradient computation is XLA-compiled when `xla`;
    the updates stay outside it because summing gradients across replicas is a cross-replica call.
    """
    conditional = recipe.conditional_discriminator
    # Optimizers sum the replicas' gradients, so each replica's mean loss counts 1/replicas.
    replica_share = 1.0 / strategy.num_replicas_in_sync

    def gradients(batch: dict[str, tf.Tensor], step: tf.Tensor) -> tuple[Any, Any, dict]:
        lightness = batch["lightness"]
        real = recipe.target(batch)
        with tf.GradientTape(persistent=True) as tape:
            fake = tf.cast(generator(lightness, training=True), tf.float32)
            real_logits = discriminator(
                discriminator_input(lightness, real, conditional), training=True
            )
            fake_logits = discriminator(
                discriminator_input(lightness, fake, conditional), training=True
            )
            real_logits = tf.cast(real_logits, tf.float32)
            fake_logits = tf.cast(fake_logits, tf.float32)
            g_loss, parts = recipe.generator_loss(real, fake, fake_logits, step)
            d_loss = recipe.discriminator_loss(real_logits, fake_logits)
            g_scaled = g_opt.scale_loss(g_loss * replica_share)
            d_scaled = d_opt.scale_loss(d_loss * replica_share)
        g_grads = tape.gradient(g_scaled, generator.trainable_variables)
        d_grads = tape.gradient(d_scaled, discriminator.trainable_variables)
        del tape
        return g_grads, d_grads, {"g": g_loss, "d": d_loss, **parts}

    compiled = tf.function(gradients, jit_compile=xla)

    def replica_step(batch: dict[str, tf.Tensor], step: tf.Tensor) -> dict[str, tf.Tensor]:
        g_grads, d_grads, losses = compiled(batch, step)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables, strict=True))
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables, strict=True))
        return losses

    @tf.function
    def train_step(iterator: Any, step: tf.Tensor) -> dict[str, tf.Tensor]:
        losses = strategy.run(replica_step, args=(next(iterator), step))
        return {
            name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for name, value in losses.items()
        }

    return train_step
