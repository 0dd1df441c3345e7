"""What survives a stop: a run's checkpoint (both networks, both optimizers, the step, the open
epoch's running sums) and the SIGINT/SIGTERM handling that asks the loop for one.

The data order and every random draw are functions of (seed, step) (dataset.py, recipes.py), so the
step is all the position a resumed run needs.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colorize_cli.errors import TrainingError
from colorize_cli.tf_setup import import_tf
from colorize_cli.training.run_dir import CHECKPOINTS

tf = import_tf()


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request the loop honours after the current step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _handle(self, signum: int, frame: object) -> None:
        self.signal = signum
        self._restore()  # a second Ctrl-C acts at once

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


@dataclass
class EpochSums:
    """Running sums of the open epoch's losses, for its metrics line."""

    sums: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0

    def add(self, losses: dict[str, float]) -> None:
        self.steps += 1
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value

    def mean(self, name: str) -> float | None:
        """The epoch's mean of loss `name`; None if no step of the epoch computed it."""
        if name not in self.sums:
            return None
        return self.sums[name] / self.steps


class RunCheckpoint:
    """The checkpointed state of a run, saved under RUN/checkpoints by the chief.

    Every worker of a cluster must take part in a save; the others write to a private directory
    that is deleted at once (docs/distributed.md).
    """

    def __init__(
        self, run_dir: Path, worker: int, keep: int, networks: list[Any], optimizers: list[Any]
    ) -> None:
        self.directory = run_dir / CHECKPOINTS
        self.worker = worker
        self.keep = keep
        self.networks = networks
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable("{}", dtype=tf.string, trainable=False, name="epoch_sums")
        generator, discriminator = networks
        # Lists of all variables, not the models: Keras 3 models do not track the random-seed
        # state of their layers as checkpoint dependencies.
        self.checkpoint = tf.train.Checkpoint(
            generator=generator.variables,
            discriminator=discriminator.variables,
            generator_optimizer=optimizers[0],
            discriminator_optimizer=optimizers[1],
            step=self.step,
            epoch_sums=self.epoch,
        )

    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def kept(self) -> dict[int, str]:
        """The checkpoints kept, oldest first: {step: checkpoint path prefix}."""
        state = tf.train.get_checkpoint_state(self.directory)
        paths = [] if state is None else state.all_model_checkpoint_paths
        return {int(path.rsplit("-", 1)[1]): path for path in paths}

    def restore(self, step: int | None = None) -> tuple[int, EpochSums]:
        """Load the checkpoint at `step` (None: the newest); (step, the open epoch's sums)."""
        path = self.latest()
        if step is not None:
            kept = self.kept()
            if step not in kept:
                listed = ", ".join(map(str, kept)) or "none"
                raise TrainingError(
                    f"no checkpoint at step {step} (kept: {listed})", self.directory
                )
            path = kept[step]
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return int(self.step.numpy()), EpochSums(**json.loads(self.epoch.numpy().decode()))

    def save(self, step: int, epoch: EpochSums) -> None:
        """Checkpoint at `step`, refusing weights that are no longer finite."""
        for network in self.networks:
            if not all(bool(tf.reduce_all(tf.math.is_finite(w))) for w in network.weights):
                raise TrainingError(
                    f"the weights became infinite or NaN by step {step}: training diverged; "
                    f"the last good checkpoint ({self.latest()}) is kept (try a lower --lr)",
                    self.directory,
                )
        self.step.assign(step)
        self.epoch.assign(json.dumps(vars(epoch)))
        directory = self.directory if self.worker == 0 else self._private_directory()
        manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=self.keep)
        manager.save(checkpoint_number=step)
        if self.worker != 0:
            shutil.rmtree(directory, ignore_errors=True)

    def _private_directory(self) -> Path:
        return self.directory.parent / f".worker-{self.worker}-checkpoints"
