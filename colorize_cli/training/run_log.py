"""What a training run reports: the progress bar and one line per epoch on stderr (through a
ProgressSink), and the same figures as TensorBoard scalars when asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from colorize_cli.progress import ProgressSink
from colorize_cli.training.validation import SELECTION


class RunLog:
    """The terminal and TensorBoard sides of one run; `tensorboard` None writes no event files."""

    def __init__(self, progress: ProgressSink, tensorboard: Path | None = None) -> None:
        self.progress = progress
        self.writer = None
        if tensorboard is not None:
            from colorize_cli.tf_setup import import_tf

            self.tf = import_tf()
            self.writer = self.tf.summary.create_file_writer(str(tensorboard))

    def start(self, label: str, images: int) -> None:
        self.progress.start(label, images, unit="img")

    def finish(self) -> None:
        self.progress.finish()

    def message(self, text: str) -> None:
        self.progress.log(text)

    def step(self, step: int, images: int, losses: dict[str, float], shown: dict[str, Any]) -> None:
        """One step done: advance the bar (showing `shown`, the epoch's running means so far)."""
        self.progress.advance(
            images, step=step, **{name: value for name, value in shown.items() if value is not None}
        )
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for name, value in losses.items():
                    self.tf.summary.scalar(f"train/{name}", value)

    def epoch(self, record: dict[str, Any], epochs: int, samples: Any = None) -> None:
        """An epoch's metrics line (see Validator for the val_ figures) and its sample images."""
        if self.writer is not None:
            with self.writer.as_default(step=record["step"]):
                for name, value in record.items():
                    if name.startswith("val_"):
                        self.tf.summary.scalar(f"val/{name[4:]}", value)
                if samples is not None and len(samples):
                    self.tf.summary.image("samples", samples, max_outputs=8)
            self.writer.flush()
        self.progress.log(
            f"epoch {record['epoch']}/{epochs}  step {record['step']}  "
            f"G {record['loss_g']:.4g}  D {_shown(record.get('loss_d'))}  "
            f"val L1(ab) {record['val_l1_ab']:.3f}  PSNR {record['val_psnr']:.2f} dB  "
            f"CIEDE2000 {record['val_ciede2000']:.2f} (gray {record['val_ciede2000_gray']:.2f})  "
            f"colourfulness x{record['val_colourfulness_ratio']:.2f}  "
            f"selection {record[SELECTION]:.3f}  "
            f"{record['images_per_s']:.1f} img/s"
        )


def _shown(loss: float | None) -> str:
    """A loss for the epoch line; "-" in a stage that did not compute it."""
    return "-" if loss is None else f"{loss:.4g}"
