"""The commands' settings and defaults, in one TF-free place: the CLI builds its options from them.

`TrainConfig` is every setting of a training run; it validates itself, config.json stores it and
`colorize train --resume` reads it back. The apply/eval defaults live here too, so the CLI shows
them without loading numpy, PIL or TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from colorize_cli.errors import UsageError
from colorize_cli.nets.models import PRESETS, model_config
from colorize_cli.nets.recipes import DEFAULT_RECIPE, RECIPES, get_recipe

# Photos larger than this many pixels are refused (decompression bombs); --max-pixels changes it.
MAX_PIXELS = 200_000_000
# The short side at which apply and eval let the network see a photo; measured on the dev
# validation split with the bundled model (docs/model-card.md, "Render size").
RENDER_SIZE = 160
# Small photos colorized together.
APPLY_BATCH_SIZE = 8
# JPEG/WebP quality of written photos, and the H.264 constant rate factor of written videos.
PHOTO_QUALITY = 95
VIDEO_CRF = 18

MODELS = tuple(PRESETS)
RECIPE_NAMES = tuple(RECIPES)
PRECISIONS = ("float32", "mixed")
ENCODER_BN = ("train", "frozen")
FITS = ("crop", "pad", "resize")
COMPRESSIONS = ("none", "lzf", *(f"gzip-{level}" for level in range(1, 10)))  # docs/format.md
DEFAULT_COMPRESSION = "none"  # measured: docs/format.md "Compression"
# The training crop when --crop is not given (shards of smaller photos get the largest that fits).
DEFAULT_CROP = 128


@dataclass
class TrainConfig:
    """Every setting of a training run; the CLI's `colorize train` options are these fields."""

    shards: list[str]
    out: str
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the training photos
    batch_size: int = 16
    crop: int | None = None  # None: DEFAULT_CROP, or the largest the shards and stride allow
    lr: float | None = None  # None: the recipe's
    rebalance: float | None = None  # None: the recipe's (recipes.Recipe.rebalance)
    seed: int = 0
    model: str = "lite0"
    recipe: str = DEFAULT_RECIPE
    xla: bool = False  # slower on this project's CPUs: docs/training.md ("XLA")
    checkpoint_every: int = 0  # steps; 0: at the end of each epoch only
    keep_checkpoints: int = 3
    init: str | None = None  # a model.keras to fine-tune
    tensorboard: bool = False
    devices: list[str] | None = None  # training.devices.parse_devices; None: all GPUs, else CPU
    precision: str = "float32"
    val: list[str] | None = None  # None: *.val*.h5 beside the shards, else a held-out slice
    samples: int = 8
    encoder_bn: str = "train"  # a pretrained encoder's BatchNorm while it learns: or "frozen"

    def __post_init__(self) -> None:
        stride = model_config(self.model, get_recipe(self.recipe).output).stride
        problems = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (
                self.crop is None or (self.crop >= stride and self.crop % stride == 0),
                f"--crop must be a multiple of the model's stride {stride}, got {self.crop}",
            ),
            (self.encoder_bn in ENCODER_BN, f"--encoder-bn must be one of {', '.join(ENCODER_BN)}"),
            (
                self.steps_per_epoch is None or self.steps_per_epoch >= 1,
                f"--steps-per-epoch must be at least 1, got {self.steps_per_epoch}",
            ),
            (self.lr is None or self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (
                self.rebalance is None or 0.0 <= self.rebalance <= 1.0,
                f"--rebalance must be between 0 and 1, got {self.rebalance}",
            ),
            (self.checkpoint_every >= 0, "--checkpoint-every must be 0 (epoch ends) or more"),
            (self.keep_checkpoints >= 1, "--keep-checkpoints must be at least 1"),
            (self.samples >= 0, "--samples must be 0 or more"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
        ]
        for ok, message in problems:
            if not ok:
                raise UsageError(message)


@dataclass
class PrepareOptions:
    """What `prepare` does; the fields are `colorize prepare`'s options. Validates itself."""

    sources: list[str]
    out: Path
    size: int = 256
    fit: Literal["crop", "pad", "resize"] = "crop"
    val_fraction: float = 0.05
    jobs: int = 0  # 0 = all cores
    shard_size: int = 0  # 0 = one file per split
    min_colorfulness: float = 0.0
    resume: bool = False
    part: tuple[int, int] | None = None  # (K, N), K 1-based; parse_part reads "K/N"
    max_pixels: int = MAX_PIXELS
    compression: str | None = DEFAULT_COMPRESSION
    overwrite: bool = False  # replace earlier outputs (and leftovers) of the same OUT

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        checks = [
            (self.size >= 8, f"--size must be at least 8, got {self.size}"),
            (self.fit in FITS, f"--fit must be one of {', '.join(FITS)}, got {self.fit!r}"),
            (0 <= self.val_fraction <= 1, "--val-fraction must be between 0 and 1"),
            (self.jobs >= 0, "--jobs must be 0 (all cores) or more"),
            (self.shard_size >= 0, "--shard-size must be 0 (one file) or more"),
            (self.min_colorfulness >= 0, "--min-colorfulness must be 0 or more"),
            (self.max_pixels > 0, "--max-pixels must be positive"),
            (self.out.suffix in (".h5", ".hdf5"), f"OUT must end in .h5, got {self.out}"),
            (not (self.resume and self.overwrite), "choose --resume or --overwrite, not both"),
            (self.compression in (None, *COMPRESSIONS), "unknown compression"),
        ]
        if self.part is not None:
            k, n = self.part
            checks.append((1 <= k <= n, f"--part K/N needs 1 <= K <= N, got {k}/{n}"))
        for ok, message in checks:
            if not ok:
                raise UsageError(message)


def parse_part(part: str | None) -> tuple[int, int] | None:
    """`--part K/N` as (K, N); PrepareOptions checks that 1 <= K <= N."""
    if part is None:
        return None
    try:
        k, n = (int(x) for x in part.split("/"))
    except ValueError:
        raise UsageError(f"--part must look like K/N (e.g. 2/8), got {part!r}") from None
    return k, n
