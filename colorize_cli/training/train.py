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
from colorize_cli.errors import ModelError, TrainingError, TrainingInterrupted, UsageError
from colorize_cli.nets.models import build_discriminator, build_generator, model_config
from colorize_cli.nets.recipes import get_recipe
from colorize_cli.progress import NullProgress, ProgressSink
from colorize_cli.tf_setup import import_tf
from colorize_cli.training import run_dir as files
from colorize_cli.training.checkpointing import EpochSums, RunCheckpoint, StopRequest
from colorize_cli.training.dataset import TrainingData, load_training_data, make_dataset
from colorize_cli.training.devices import has_gpu, make_strategy, worker_index
from colorize_cli.training.gan_step import make_train_step
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
    return _Run(config, None, progress or NullProgress()).fit()


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
    """One `train` or `resume` call: builds everything, then runs the remaining epochs."""

    def __init__(self, config: TrainConfig, record: dict | None, progress: ProgressSink) -> None:
        self.config = config
        self.progress = progress
        self.run_dir = Path(config.out)
        self.recipe = get_recipe(config.recipe)
        if config.rebalance is not None:
            self.recipe = dataclasses.replace(self.recipe, rebalance=config.rebalance)
        self.model_config = model_config(config.model, self.recipe.output)
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
        self.recipe = self.recipe.for_run(self.total_steps).for_data(self.data.train.rgb)
        self.stage_index: int | None = None
        self.train_step: Any = None
        if config.batch_size % self.strategy.num_replicas_in_sync:
            raise UsageError(
                f"--batch-size {config.batch_size} must divide evenly among the "
                f"{self.strategy.num_replicas_in_sync} replicas"
            )
        self._build_models()
        self.checkpoint = RunCheckpoint(
            self.run_dir,
            self.worker,
            config.keep_checkpoints,
            [self.generator, self.discriminator],
            [self.g_opt, self.d_opt],
        )
        self.step, self.epoch_sums = 0, EpochSums()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if record is None:
            self._write_config()
        else:
            self._restore(record)

    @property
    def chief(self) -> bool:
        return self.worker == 0

    def _build_models(self) -> None:
        import keras

        mixed = self.config.precision == "mixed"
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
        try:
            keras.utils.set_random_seed(self.config.seed)
            with self.strategy.scope():
                self.generator = build_generator(self.model_config)
                self.discriminator = build_discriminator(
                    self.model_config, self.recipe.conditional_discriminator
                )
                # Keras 3 optimizers must be built inside the strategy scope.
                g_opt, d_opt = self.recipe.make_optimizers(self.config.lr)
                if mixed:
                    g_opt = keras.optimizers.LossScaleOptimizer(g_opt)
                    d_opt = keras.optimizers.LossScaleOptimizer(d_opt)
                g_opt.build(self.generator.trainable_variables)
                d_opt.build(self.discriminator.trainable_variables)
                self.g_opt, self.d_opt = g_opt, d_opt
                if self.config.init:
                    _load_init(self.generator, Path(self.config.init), self.config)
        finally:
            keras.mixed_precision.set_global_policy(previous)

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
        )

    def fit(self) -> RunResult:
        config = self.config
        batches = iter(self.strategy.distribute_datasets_from_function(self._dataset))
        validator = Validator(
            self.generator,
            self.data.val,
            self.recipe.output,
            config.batch_size,
            self.crop,
            config.samples,
        )
        writer = None
        if config.tensorboard and self.chief:
            writer = tf.summary.create_file_writer(str(self.run_dir / files.TENSORBOARD))
        last = (files.read_metrics(self.run_dir) or [{}])[-1] if self.chief else {}
        with StopRequest() as stop:
            for epoch in range(self.step // self.steps_per_epoch, config.epochs):
                self._train_epoch(epoch, batches, stop, writer)
                last = self._end_epoch(epoch, validator, writer)
                self.epoch_sums = EpochSums()
                self.checkpoint.save(self.step, self.epoch_sums)
                if stop.signal is not None and epoch + 1 < config.epochs:
                    self._interrupted(stop.signal)
        return RunResult(
            run_dir=self.run_dir,
            model_path=self.run_dir / files.MODEL,
            epoch=self.step // self.steps_per_epoch,
            step=self.step,
            metrics=last,
            generator=self.generator,
        )

    def _step_for(self, step: int) -> Any:
        """The compiled step of the stage `step` belongs to, entering that stage if it is new."""
        index = self.recipe.stage_at(step, self.total_steps)
        if index != self.stage_index:
            stage = self.recipe.stages[index]
            self._enter_stage(stage)
            self.train_step = make_train_step(
                self.strategy,
                self.generator,
                self.discriminator,
                self.recipe,
                self.g_opt,
                self.d_opt,
                xla=self.config.xla,
                stage=stage,
            )
            self.stage_index = index
        return self.train_step

    def _enter_stage(self, stage: Any) -> None:
        """Freeze or free the pretrained encoder and set both learning rates for `stage`."""
        import keras

        from colorize_cli.nets.pretrained import encoder_layers

        if self.model_config.encoder and self.model_config.pretrained:
            learns = stage.encoder
            for layer in encoder_layers(self.generator):
                frozen_bn = isinstance(layer, keras.layers.BatchNormalization) and (
                    self.config.encoder_bn == "frozen"
                )
                layer.trainable = learns and not frozen_bn
        rate = self.config.lr or self.recipe.learning_rate
        self.g_opt.learning_rate = rate * stage.generator_lr_scale
        self.d_opt.learning_rate = rate * stage.discriminator_lr_scale
        if len(self.recipe.stages) > 1:
            self.progress.log(f"step {self.step}: stage {stage.name!r}")

    def _train_epoch(self, epoch: int, batches: Any, stop: StopRequest, writer: Any) -> None:
        """Run the epoch's remaining steps; save and raise TrainingInterrupted on a signal."""
        config, sums = self.config, self.epoch_sums
        end = (epoch + 1) * self.steps_per_epoch
        self._step_for(self.step)
        self.progress.start(self._label(epoch), (end - self.step) * config.batch_size, unit="img")
        started, seconds = time.monotonic(), sums.seconds
        while self.step < end:
            if stop.signal is not None:
                sums.seconds = seconds + time.monotonic() - started
                self.checkpoint.save(self.step, sums)
                self._interrupted(stop.signal)
            index = self.stage_index
            train_step = self._step_for(self.step)
            if index != self.stage_index:
                self.progress.start(
                    self._label(epoch), (end - self.step) * config.batch_size, unit="img"
                )
            losses = train_step(batches, tf.constant(self.step, tf.int64))
            losses = {name: float(value) for name, value in losses.items()}
            self._check_finite(losses)
            self.step += 1
            sums.add(losses)
            shown = {"g": sums.mean("g"), "d": sums.mean("d")}
            self.progress.advance(
                config.batch_size,
                step=self.step,
                **{name: value for name, value in shown.items() if value is not None},
            )
            if writer is not None:
                with writer.as_default(step=self.step):
                    for name, value in losses.items():
                        tf.summary.scalar(f"train/{name}", value)
            # The epoch's last step is checkpointed after validation, with the metrics written.
            if (
                config.checkpoint_every
                and self.step % config.checkpoint_every == 0 < end - self.step
            ):
                sums.seconds = seconds + time.monotonic() - started
                self.checkpoint.save(self.step, sums)
        sums.seconds = seconds + time.monotonic() - started
        self.progress.finish()

    def _label(self, epoch: int) -> str:
        label = f"epoch {epoch + 1}/{self.config.epochs}"
        if len(self.recipe.stages) > 1:
            return f"{label} · {self.recipe.stages[self.stage_index].name}"
        return label

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

    def _interrupted(self, signum: int) -> None:
        command = f"colorize train --resume {shlex.quote(str(self.run_dir))}"
        self.progress.log(f"stopped at step {self.step}; resume with: {command}")
        raise TrainingInterrupted(
            f"{signal.Signals(signum).name} at step {self.step}: checkpoint saved; resume with: "
            f"{command}",
            self.run_dir,
        )

    def _end_epoch(self, epoch: int, validator: Validator, writer: Any) -> dict[str, Any]:
        """Validate, then write the metrics line, the sample grid and model.keras (chief only)."""
        sums = self.epoch_sums
        record: dict[str, Any] = {"epoch": epoch + 1, "step": self.step}
        record.update({f"loss_{name}": sums.mean(name) for name in sums.sums})
        record["seconds"] = round(sums.seconds, 2)
        images = sums.steps * self.config.batch_size
        record["images_per_s"] = round(images / max(sums.seconds, 1e-9), 2)
        if not self.chief:
            return record
        validation = validator()
        record.update(validation.scores)
        if len(validation.generated):
            samples_path = self.run_dir / files.SAMPLES / f"epoch-{epoch + 1:03d}.png"
            files.write_samples(
                samples_path, validation.gray, validation.generated, validation.truth
            )
        earlier = [r[SELECTION] for r in files.read_metrics(self.run_dir) if SELECTION in r]
        files.append_metrics(self.run_dir, record)
        self._export_generator(files.MODEL)
        # Derived from metrics.jsonl, so a resumed run keeps comparing with the epochs before it.
        if not earlier or record[SELECTION] < min(earlier):
            self._export_generator(files.BEST)
        if writer is not None:
            with writer.as_default(step=self.step):
                for name, value in record.items():
                    if name.startswith("val_"):
                        tf.summary.scalar(f"val/{name[4:]}", value)
                if len(validation.generated):
                    tf.summary.image("samples", validation.generated, max_outputs=8)
            writer.flush()
        self.progress.log(
            f"epoch {epoch + 1}/{self.config.epochs}  step {self.step}  "
            f"G {record['loss_g']:.4g}  D {_shown(record.get('loss_d'))}  "
            f"val L1(ab) {record['val_l1_ab']:.3f}  PSNR {record['val_psnr']:.2f} dB  "
            f"CIEDE2000 {record['val_ciede2000']:.2f} (gray {record['val_ciede2000_gray']:.2f})  "
            f"colourfulness x{record['val_colourfulness_ratio']:.2f}  "
            f"selection {record[SELECTION]:.3f}  "
            f"{record['images_per_s']:.1f} img/s"
        )
        return record

    def _export_generator(self, name: str) -> None:
        """RUN/name in float32 whatever the training precision, so the CPU can run it."""
        generator = self.generator
        if self.config.precision != "float32":
            generator = build_generator(self.model_config)
            generator.set_weights(self.generator.get_weights())
        files.save_model(generator, self.run_dir / name)


def _shown(loss: float | None) -> str:
    """A loss for the epoch line; "-" in a stage that did not compute it."""
    return "-" if loss is None else f"{loss:.4g}"


def _load_init(generator: Any, path: Path, config: TrainConfig) -> None:
    """Start from the weights of a trained generator of the same preset and recipe."""
    import keras

    if not path.is_file():
        raise ModelError("no such model file", path)
    try:
        trained = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a foreign or damaged file
        raise ModelError(f"cannot load: {str(exc).splitlines()[0]}", path) from exc
    try:
        generator.set_weights(trained.get_weights())
    except ValueError:
        raise ModelError(
            f"does not match --model {config.model} with --recipe {config.recipe}", path
        ) from None
