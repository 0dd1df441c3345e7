"""Every command's options, in one TF-free place that checks them: the CLI builds one object per
command and hands it to the library, which trusts it.

`TrainConfig` is every setting of a training run; config.json stores it and `colorize train
--resume` reads it back. `PrepareOptions`, `ApplyOptions`, `EvalOptions` and `ExportOptions` are
the other commands'. Each checks its own values in `__post_init__` and raises `UsageError` (exit 2)
before any work starts. This module imports only `constants` and `errors` at load, so every layer
may take its options from here; the training checks reach `nets/` when a TrainConfig is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from colorize_cli.constants import (
    APPLY_BATCH_SIZE,
    BACKENDS,
    COMPRESSIONS,
    DEFAULT_COMPRESSION,
    EXPORT_FORMATS,
    FITS,
    MAX_NETWORK_EVERY,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    PHOTO_FORMATS,
    PHOTO_QUALITY,
    PREVIEW_SIDE,
    QUANTIZATIONS,
    RENDER_SIZE,
    SERVE_HOST,
    SERVE_MEMORY_BYTES,
    SERVE_PORT,
    SHEET_COUNT,
    VIDEO_CRF,
    VIDEO_NETWORK_EVERY,
    VIDEO_PRESET,
    VIDEO_PRESETS,
)
from colorize_cli.errors import UsageError

PRECISIONS = ("float32", "mixed")
ENCODER_BN = ("train", "frozen")
# The training crop when --crop is not given (shards of smaller photos get the largest that fits).
DEFAULT_CROP = 128


def _check(problems: list[tuple[bool, str]]) -> None:
    """UsageError with the first message whose condition is false."""
    for ok, message in problems:
        if not ok:
            raise UsageError(message)


def _default_recipe() -> str:
    from colorize_cli.nets.recipes import DEFAULT_RECIPE

    return DEFAULT_RECIPE


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
    recipe: str = field(default_factory=_default_recipe)  # nets/recipes.py DEFAULT_RECIPE
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
        from colorize_cli.nets.models import model_config
        from colorize_cli.nets.recipes import get_recipe

        stride = model_config(self.model, get_recipe(self.recipe).output).stride
        _check(
            [
                (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
                (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
                (
                    self.crop is None or (self.crop >= stride and self.crop % stride == 0),
                    f"--crop must be a multiple of the model's stride {stride}, got {self.crop}",
                ),
                (
                    self.encoder_bn in ENCODER_BN,
                    f"--encoder-bn must be one of {', '.join(ENCODER_BN)}",
                ),
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
                (
                    self.precision in PRECISIONS,
                    f"--precision must be one of {', '.join(PRECISIONS)}",
                ),
            ]
        )


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
        _check(checks)


def _model_checks(render_size: int, batch_size: int, backend: str) -> list[tuple[bool, str]]:
    """What apply and eval check alike: how the model runs."""
    return [
        (render_size >= 1, f"--render-size must be at least 1, got {render_size}"),
        (batch_size >= 1, f"--batch-size must be at least 1, got {batch_size}"),
        (backend in BACKENDS, f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}"),
    ]


@dataclass(frozen=True)
class ApplyOptions:
    """Everything `colorize apply` takes; `output="-"` streams one photo from stdin to stdout
    (`applying.colorize_bytes`). Checks itself."""

    sources: Sequence[str]
    output: str | Path | None = None
    out_dir: str | Path | None = None
    overwrite: bool = False
    format: str | None = None  # None: from the output name, else the input's own
    quality: int = PHOTO_QUALITY
    model_path: str | Path | None = None  # None: the bundled model
    render_size: int = RENDER_SIZE
    batch_size: int = APPLY_BATCH_SIZE
    max_pixels: int | None = MAX_PIXELS
    null_separated: bool = False  # `-` gives NUL-separated paths (find -print0)
    crf: int = VIDEO_CRF  # videos: H.264 quality, 0 (lossless) to 51
    stabilize: bool = True  # videos: smooth the colour over time within shots
    network_every: int = VIDEO_NETWORK_EVERY  # videos: the network on every N-th frame of a shot
    video_preset: str = VIDEO_PRESET  # videos: x264's speed/size preset (VIDEO_PRESETS)
    backend: str = "auto"  # constants.BACKENDS
    hints: str | Path | None = None  # a hints JSON file (one photo) or a folder of <stem>.json
    reference: str | Path | None = None  # a photo whose palette every input takes

    def __post_init__(self) -> None:
        streams = self.output is not None and str(self.output) == "-"
        _check(
            [
                (
                    not streams or list(self.sources) == ["-"],
                    "-o - streams one photo from stdin: use `colorize apply - -o -`",
                ),
                (
                    self.output is None or self.out_dir is None,
                    "give either -o or --out-dir, not both",
                ),
                (
                    self.format is None or self.format.lower() in PHOTO_FORMATS,
                    f"--format must be one of {', '.join(PHOTO_FORMATS)}, got {self.format!r}",
                ),
                (
                    1 <= self.quality <= 100,
                    f"--quality must be between 1 and 100, got {self.quality}",
                ),
                (0 <= self.crf <= 51, f"--crf must be between 0 and 51, got {self.crf}"),
                (
                    1 <= self.network_every <= MAX_NETWORK_EVERY,
                    f"--network-every must be between 1 and {MAX_NETWORK_EVERY}, "
                    f"got {self.network_every}",
                ),
                (
                    self.video_preset in VIDEO_PRESETS,
                    f"--video-preset must be one of {', '.join(VIDEO_PRESETS)}, "
                    f"got {self.video_preset!r}",
                ),
                (self.max_pixels is None or self.max_pixels > 0, "--max-pixels must be positive"),
                *_model_checks(self.render_size, self.batch_size, self.backend),
            ]
        )


MAX_ORACLE_HINTS = 256  # imaging.hints.MAX_POINTS


@dataclass(frozen=True)
class EvalOptions:
    """Everything `colorize eval` takes; `model` None is the bundled model. Checks itself."""

    model: str | Path | None
    data: Sequence[str]  # shard files or photo folders
    render_size: int = RENDER_SIZE
    batch_size: int = APPLY_BATCH_SIZE
    backend: str = "auto"  # constants.BACKENDS
    sheet_count: int = SHEET_COUNT
    per_image: Path | None = None  # a CSV of every photo's scores
    sheet: Path | None = None  # a contact sheet PNG
    oracle_hints: int = 0  # hint points sampled from each photo's truth
    reference: str | None = None  # "truth" (each photo's own palette) or a photo
    seed: int = 0  # of the oracle points
    blend_hints: bool = False  # blend the points into the automatic colour (the baseline)

    def __post_init__(self) -> None:
        _check(
            [
                (len(self.data) > 0, "give the shards or photos to score"),
                (
                    0 <= self.oracle_hints <= MAX_ORACLE_HINTS,
                    f"--oracle-hints must be between 0 and {MAX_ORACLE_HINTS}, "
                    f"got {self.oracle_hints}",
                ),
                (
                    not self.blend_hints or self.oracle_hints > 0,
                    "--blend-hints blends --oracle-hints points: give --oracle-hints N",
                ),
                (
                    self.sheet_count >= 1,
                    f"--sheet-count must be at least 1, got {self.sheet_count}",
                ),
                *_model_checks(self.render_size, self.batch_size, self.backend),
            ]
        )


@dataclass(frozen=True)
class ExportOptions:
    """Everything `colorize export` takes; `model` None is the bundled model, `format` None
    comes from OUT's suffix (inference/export.py). Checks itself."""

    model: str | Path | None
    out: str | Path
    format: str | None = None
    quantize: str | None = None  # TFLite only
    photos: Sequence[str] = field(default_factory=tuple)  # check/calibration photos or folders
    render_size: int = RENDER_SIZE
    overwrite: bool = False

    def __post_init__(self) -> None:
        _check(
            [
                (
                    self.format is None or self.format in EXPORT_FORMATS,
                    f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {self.format!r}",
                ),
                (
                    self.quantize is None or self.quantize in QUANTIZATIONS,
                    f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {self.quantize!r}",
                ),
                (
                    self.quantize is None or self.format in (None, "tflite"),
                    "--quantize applies to TFLite exports only",
                ),
                (
                    self.quantize != "int8" or len(self.photos) > 0,
                    "--quantize int8 needs --photos: photos to calibrate it on",
                ),
                (
                    self.render_size >= 1,
                    f"--render-size must be at least 1, got {self.render_size}",
                ),
            ]
        )


def parse_part(part: str | None) -> tuple[int, int] | None:
    """`--part K/N` as (K, N); PrepareOptions checks that 1 <= K <= N."""
    if part is None:
        return None
    try:
        k, n = (int(x) for x in part.split("/"))
    except ValueError:
        raise UsageError(f"--part must look like K/N (e.g. 2/8), got {part!r}") from None
    return k, n


@dataclass(frozen=True)
class ServeOptions:
    """Everything `colorize serve` takes: where it listens, the model, the photos named on the
    command line, and the limits on what it reads and holds (docs/serve.md). Checks itself."""

    photos: Sequence[str] = field(default_factory=tuple)  # photos or folders shown in the page
    host: str = SERVE_HOST
    port: int = SERVE_PORT  # 0: any free port
    model_path: str | Path | None = None  # None: the bundled model
    render_size: int = RENDER_SIZE
    backend: str = "auto"  # constants.BACKENDS
    max_pixels: int | None = MAX_PIXELS
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    memory_bytes: int = SERVE_MEMORY_BYTES  # the photos held; the least recently used go first
    preview_side: int = PREVIEW_SIDE

    def __post_init__(self) -> None:
        _check(
            [
                (bool(self.host.strip()), "--host must name an address"),
                (0 <= self.port <= 65535, f"--port must be between 0 and 65535, got {self.port}"),
                (self.max_pixels is None or self.max_pixels > 0, "--max-pixels must be positive"),
                (self.max_upload_bytes > 0, "--max-upload-mb must be positive"),
                (self.memory_bytes > 0, "the photo memory must be positive"),
                (self.preview_side >= 16, "the preview side must be at least 16 pixels"),
                *_model_checks(self.render_size, 1, self.backend),
            ]
        )

    @property
    def local(self) -> bool:
        """Whether only this machine can reach the server."""
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")
