"""The training loop: settings, data, models, epochs of compiled GAN steps, checkpoints, resume.

    colorize train data/dev*.h5 --epochs 20 --out runs/dev            # all GPUs, else the CPU
    colorize train data/dev*.h5 --epochs 20 --out runs/dev --gpu 0,1  # MirroredStrategy
    TF_CONFIG='{"cluster": ..., "task": ...}' colorize train ...      # docs/distributed.md
    colorize train --resume runs/dev                                  # continues exactly

docs/training.md explains the run directory, resume, signals and the measured defaults.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colorize_cli import __version__
from colorize_cli.config import DEFAULT_CROP, TrainConfig
from colorize_cli.errors import TrainingError, TrainingInterrupted, UsageError
from colorize_cli.nets.models import build_generator, model_config
from colorize_cli.nets.recipes import get_recipe
from colorize_cli.progress import NullProgress, ProgressSink
from colorize_cli.tf_setup import import_tf
from colorize_cli.training import run_dir as files
from colorize_cli.training.checkpointing import EpochSums, RunCheckpoint, StopRequest
from colorize_cli.training.dataset import TrainingData, load_training_data, make_dataset
from colorize_cli.training.devices import has_gpu, make_strategy, worker_index
from colorize_cli.training.gan import build_gan
from colorize_cli.training.run_log import RunLog
from colorize_cli.training.validation import SELECTION, Validator

tf = import_tf()


def default_crop(image_size: int, stride: int) -> int:
    """The largest crop up to DEFAULT_CROP that fits `image_size` and divides by `stride`."""
    crop = min(DEFAULT_CROP, image_size) // stride * stride
    if crop < stride:
        raise UsageError(
            f"the shards' photos ({image_size} px) are smaller than the model's stride {stride}: "
            "prepare them with a larger --size or choose a smaller --model"
        )
    return crop


@dataclass
class RunResult:
    """Where a run stands after `train` or `resume` returns."""

    run_dir: Path
    model_path: Path
    epoch: int
    step: int
    metrics: dict[str, Any]
    generator: Any


def train(config: TrainConfig, progress: ProgressSink | None = None) -> RunResult:
    """Start a new run in `config.out` (a new or empty directory) and train it to the end."""
    run_dir = Path(config.out)
    # Other workers of a cluster may find the chief's config.json already written.
    if worker_index() == 0 and (run_dir / files.CONFIG).exists():
        raise TrainingError(
            f"already holds a run: continue it with `colorize train --resume {run_dir}` or "
            "choose a new --out",
            run_dir,
        )
    before = files.entries(run_dir)
    try:
        return _Run(config, None, progress or NullProgress()).fit()
    except BaseException:
        # A run refused or stopped before its first checkpoint has nothing to resume: it leaves
        # nothing behind, so the corrected command can start in the same directory.
        if worker_index() == 0 and not tf.train.latest_checkpoint(run_dir / files.CHECKPOINTS):
            files.discard_new_entries(run_dir, before)
        raise


def resume(
    run_dir: str | Path,
    progress: ProgressSink | None = None,
    epochs: int | None = None,
    devices: list[str] | None = None,
) -> RunResult:
    """Continue a stopped run exactly; `epochs` raises its total, `devices` moves it elsewhere."""
    run_dir = Path(run_dir)
    record = files.read_config(run_dir)
    config = TrainConfig(**record["settings"])
    config = dataclasses.replace(
        config,
        out=str(run_dir),
        epochs=config.epochs if epochs is None else epochs,
        devices=config.devices if devices is None else devices,
    )
    if not tf.train.latest_checkpoint(run_dir / files.CHECKPOINTS):
        raise TrainingError("has no checkpoint to resume from", run_dir / files.CHECKPOINTS)
    return _Run(config, record, progress or NullProgress()).fit()


def _check_environment(config: TrainConfig) -> None:
    """What TrainConfig cannot check by itself: installed packages and devices."""
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UsageError("--tensorboard needs the tensorboard package: pip install tensorboard")
    if config.precision == "mixed" and not has_gpu(config.devices):
        raise UsageError("--precision mixed needs a GPU; the CPU trains in float32")


class _Run:
    """One `train` or `resume` call: builds everything, then runs the remaining steps."""

    def __init__(self, config: TrainConfig, record: dict | None, progress: ProgressSink) -> None:
        self.config = config
        self.run_dir = Path(config.out)
        recipe = get_recipe(config.recipe)
        if config.rebalance is not None:
            recipe = dataclasses.replace(recipe, rebalance=config.rebalance)
        self.model_config = model_config(config.model, recipe.output)
        _check_environment(config)
        # MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
        self.strategy = make_strategy(config.devices)
        self.worker = worker_index()
        self.data: TrainingData = load_training_data(
            config.shards, config.val, None if record is None else record["data"]
        )
        self.crop = config.crop or default_crop(
            self.data.train.image_size, self.model_config.stride
        )
        self.steps_per_epoch = config.steps_per_epoch or self.data.batches_per_epoch(
            config.batch_size
        )
        self.total_steps = self.steps_per_epoch * config.epochs
        # The recipe stays the recipe; what this run measured on its photos sits beside it.
        self.recipe = recipe.for_run(self.total_steps)
        self.color_weights = self.recipe.color_weights(self.data.train.rgb)
        if config.batch_size % self.strategy.num_replicas_in_sync:
            raise UsageError(
                f"--batch-size {config.batch_size} must divide evenly among the "
                f"{self.strategy.num_replicas_in_sync} replicas"
            )
        self.gan = build_gan(
            self.model_config,
            self.recipe,
            strategy=self.strategy,
            lr=config.lr,
            precision=config.precision,
            seed=config.seed,
            init=config.init,
        )
        self.checkpoint = RunCheckpoint(
            self.run_dir,
            self.worker,
            config.keep_checkpoints,
            [self.gan.generator, self.gan.discriminator],
            [self.gan.g_opt, self.gan.d_opt],
        )
        self.step, self.epoch_sums = 0, EpochSums()
        self.stage_index: int | None = None
        self.train_step: Any = None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tensorboard = config.tensorboard and self.chief
        self.log = RunLog(progress, self.run_dir / files.TENSORBOARD if tensorboard else None)
        self._saved_step: int | None = None  # the step of the newest checkpoint
        if record is None:
            self._write_config()
        else:
            self._restore(record)

    @property
    def chief(self) -> bool:
        return self.worker == 0

    def _write_config(self) -> None:
        if self.chief:
            record = {
                "settings": dataclasses.asdict(self.config),
                "data": self.data.provenance(),
                "steps_per_epoch": self.steps_per_epoch,
                "colorize": __version__,
                "tensorflow": tf.__version__,
                "replicas": self.strategy.num_replicas_in_sync,
            }
            files.write_config(self.run_dir, record)

    def _restore(self, record: dict) -> None:
        self.step, self.epoch_sums = self.checkpoint.restore()
        self._saved_step = self.step
        if self.chief:
            files.keep_metrics_until(self.run_dir, self.step)
            record["settings"] = dataclasses.asdict(self.config)
            files.write_config(self.run_dir, record)

    def _dataset(self, input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        return make_dataset(
            self.data.train,
            self.config.batch_size,
            self.crop,
            seed=self.config.seed,
            skip_batches=self.step,
            pipeline=(input_context.input_pipeline_id, input_context.num_input_pipelines),
            replica_batch=input_context.get_per_replica_batch_size(self.config.batch_size),
            hints=self.model_config.hints,
        )

    def fit(self) -> RunResult:
        """Run the remaining steps: each epoch ends in validation, files and a checkpoint."""
        config = self.config
        batches = iter(self.strategy.distribute_datasets_from_function(self._dataset))
        validator = Validator(
            self.gan.generator,
            self.data.val,
            self.recipe.output,
            config.batch_size,
            self.crop,
            config.samples,
        )
        last = (files.read_metrics(self.run_dir) or [{}])[-1] if self.chief else {}
        self._clock = time.monotonic()
        with StopRequest() as stop:
            while self.step < self.total_steps:
                if stop.signal is not None:
                    self._stop(stop.signal)
                new_stage = self._enter_stage_at(self.step)
                if new_stage or self.step % self.steps_per_epoch == 0:
                    self._start_bar()
                self._train_one_step(batches)
                if self.step % self.steps_per_epoch == 0:
                    self.log.finish()
                    last = self._end_epoch(validator)
                    self.epoch_sums, self._clock = EpochSums(), time.monotonic()
                    self._save()
                elif config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self._save()
        return RunResult(
            run_dir=self.run_dir,
            model_path=self.run_dir / files.MODEL,
            epoch=self.step // self.steps_per_epoch,
            step=self.step,
            metrics=last,
            generator=self.gan.generator,
        )

    def _train_one_step(self, batches: Any) -> None:
        losses = self.train_step(batches, tf.constant(self.step, tf.int64))
        losses = {name: float(value) for name, value in losses.items()}
        self._check_finite(losses)
        self.step += 1
        self.epoch_sums.add(losses)
        shown = {"g": self.epoch_sums.mean("g"), "d": self.epoch_sums.mean("d")}
        self.log.step(self.step, self.config.batch_size, losses, shown)

    def _save(self) -> None:
        """Checkpoint the run at the current step, with the open epoch's sums and time so far."""
        now = time.monotonic()
        self.epoch_sums.seconds += now - self._clock
        self._clock = now
        self.checkpoint.save(self.step, self.epoch_sums)
        self._saved_step = self.step

    def _stop(self, signum: int) -> None:
        """A signal asked to stop: save where the run is and raise TrainingInterrupted."""
        if self._saved_step != self.step:
            self._save()
        command = f"colorize train --resume {shlex.quote(str(self.run_dir))}"
        self.log.finish()
        self.log.message(f"stopped at step {self.step}; resume with: {command}")
        raise TrainingInterrupted(
            f"{signal.Signals(signum).name} at step {self.step}: checkpoint saved; resume with: "
            f"{command}",
            self.run_dir,
        )

    def _enter_stage_at(self, step: int) -> bool:
        """Make the compiled step of the stage `step` belongs to; True if that stage is new."""
        index = self.recipe.stage_at(step, self.total_steps)
        if index == self.stage_index:
            return False
        stage = self.recipe.stages[index]
        self._set_stage(stage)
        self.train_step = self.gan.compile_step(
            xla=self.config.xla, stage=stage, color_weights=self.color_weights
        )
        self.stage_index = index
        return True

    def _set_stage(self, stage: Any) -> None:
        """Freeze or free the pretrained encoder and set both learning rates for `stage`."""
        import keras

        from colorize_cli.nets.pretrained import encoder_layers

        if self.model_config.hints:
            from colorize_cli.nets.models import HINT_LAYER_PREFIXES

            for layer in self.gan.generator.layers:
                layer.trainable = stage.base or layer.name.startswith(HINT_LAYER_PREFIXES)
        if self.model_config.encoder and self.model_config.pretrained and stage.base:
            learns = stage.encoder
            for layer in encoder_layers(self.gan.generator):
                frozen_bn = isinstance(layer, keras.layers.BatchNormalization) and (
                    self.config.encoder_bn == "frozen"
                )
                layer.trainable = learns and not frozen_bn
        rate = self.config.lr or self.recipe.learning_rate
        self.gan.g_opt.learning_rate = rate * stage.generator_lr_scale
        self.gan.d_opt.learning_rate = rate * stage.discriminator_lr_scale
        if len(self.recipe.stages) > 1:
            self.log.message(f"step {self.step}: stage {stage.name!r}")

    def _start_bar(self) -> None:
        """A progress bar for the rest of the epoch (a new stage starts a new one)."""
        epoch = self.step // self.steps_per_epoch
        end = (epoch + 1) * self.steps_per_epoch
        label = f"epoch {epoch + 1}/{self.config.epochs}"
        if len(self.recipe.stages) > 1:
            label = f"{label} · {self.recipe.stages[self.stage_index].name}"
        self.log.start(label, (end - self.step) * self.config.batch_size)

    def _check_finite(self, losses: dict[str, float]) -> None:
        bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
        if bad:
            latest = self.checkpoint.latest()
            kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint yet"
            raise TrainingError(
                f"loss {', '.join(f'{k}={v}' for k, v in bad.items())} at step {self.step + 1}: "
                f"training diverged; {kept} (try a lower --lr)",
                self.run_dir,
            )

    def _end_epoch(self, validator: Validator) -> dict[str, Any]:
        """Validate, then write the metrics line, the sample grid and model.keras (chief only)."""
        sums = self.epoch_sums
        sums.seconds += time.monotonic() - self._clock
        epoch = self.step // self.steps_per_epoch
        record: dict[str, Any] = {"epoch": epoch, "step": self.step}
        record.update({f"loss_{name}": sums.mean(name) for name in sums.sums})
        record["seconds"] = round(sums.seconds, 2)
        images = sums.steps * self.config.batch_size
        record["images_per_s"] = round(images / max(sums.seconds, 1e-9), 2)
        if not self.chief:
            return record
        validation = validator()
        record.update(validation.scores)
        if len(validation.generated):
            samples_path = self.run_dir / files.SAMPLES / f"epoch-{epoch:03d}.png"
            files.write_samples(
                samples_path, validation.gray, validation.generated, validation.truth
            )
        earlier = [r[SELECTION] for r in files.read_metrics(self.run_dir) if SELECTION in r]
        files.append_metrics(self.run_dir, record)
        self._export_generator(files.MODEL)
        # Derived from metrics.jsonl, so a resumed run keeps comparing with the epochs before it.
        if not earlier or record[SELECTION] < min(earlier):
            self._export_generator(files.BEST)
        self.log.epoch(record, self.config.epochs, validation.generated)
        return record

    def _export_generator(self, name: str) -> None:
        """RUN/name in float32 whatever the training precision, so the CPU can run it."""
        generator = self.gan.generator
        if self.config.precision != "float32":
            generator = build_generator(self.model_config)
            generator.set_weights(self.gan.generator.get_weights())
        files.save_model(generator, self.run_dir / name)
