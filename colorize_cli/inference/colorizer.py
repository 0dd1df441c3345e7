"""Model -> any-size photo: the network runs at a render size, its colour is brought to full
resolution and recombined with the photo's own gray (imaging/chroma.py), so
`grayscale(output) == grayscale(input)`.

`Colorizer` is the one code path `colorize apply` and `colorize eval` share; the network itself runs
on a backend (backends.py: Keras, ONNX Runtime, LiteRT, SavedModel) chosen by the model file.
TensorFlow is imported when a Keras model is loaded, never at import time, and never for `.onnx` or
`.tflite` models.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from colorize_cli.config import APPLY_BATCH_SIZE, RENDER_SIZE
from colorize_cli.errors import ModelError, UsageError
from colorize_cli.imaging import color
from colorize_cli.imaging import hints as hinting
from colorize_cli.imaging.chroma import recombine
from colorize_cli.imaging.hints import Guide
from colorize_cli.inference import backends, model_files
from colorize_cli.inference.backends import Backend
from colorize_cli.nets.saved import DEFAULT_MODEL_PATH, load_generator, model_stride

# The bundled model exported for LiteRT (`colorize export default ...`, docs/export.md): apply and
# eval run it when ai-edge-litert is installed, so they start without importing TensorFlow.
BUNDLED_LITE_SUFFIX = ".tflite"
# A very long, thin photo is squeezed along its long side rather than rendered this many times
# wider than `render_size`: the network's cost stays bounded whatever the aspect ratio.
MAX_ASPECT = 4
# Photos in one batch hold at most this many pixels together (a bigger photo goes alone), so a
# batch of large photos cannot exhaust memory.
BATCH_PIXEL_BUDGET = 16 * 2**20
_REDUCING_GAP = 2.0

T = TypeVar("T")


def render_shape(height: int, width: int, render_size: int) -> tuple[int, int]:
    """The (height, width) the network sees for a photo: short side `render_size`, never larger
    than the photo, long side at most MAX_ASPECT x `render_size`."""
    scale = min(
        1.0, render_size / min(height, width), MAX_ASPECT * render_size / max(height, width)
    )
    return max(1, round(height * scale)), max(1, round(width * scale))


def open_model(path: str | Path | None = None, backend: str = "auto") -> Backend:
    """The generator at `path` (None: the bundled one) on the runtime `backend` (BACKENDS).

    "auto" runs a file on the runtime its format needs, and the bundled model on LiteRT when that
    is installed (TensorFlow is then never imported), else on TensorFlow, the reference. "tf",
    "onnx" or "lite" with no path pick the bundled model's .keras, .onnx or .tflite export.
    """
    if backend not in backends.BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(backends.BACKENDS)}, not {backend}")
    if path is None and backend != "tf":
        suffix = ".onnx" if backend == "onnx" else BUNDLED_LITE_SUFFIX
        bundled = DEFAULT_MODEL_PATH.with_suffix(suffix)
        if backend != "auto" and not bundled.is_file():
            raise ModelError(
                f"no bundled {suffix} model: make one with `colorize export default "
                f"default{suffix}` and pass it with --model",
                bundled,
            )
        if backend != "auto" or (bundled.is_file() and model_files.runtime_available("lite")):
            return backends.open_exported(bundled, "lite" if backend == "auto" else backend)
    model_path = DEFAULT_MODEL_PATH if path is None else Path(path)
    if model_files.model_format(model_path) != "keras":
        return backends.open_exported(model_path, backend)
    if backend not in ("auto", "tf"):
        raise UsageError(f"a .keras model runs on --backend tf, not {backend}", model_path)
    model = load_generator(path)
    return backends.KerasBackend(model, model_path, model_stride(model))


@dataclass
class _Rendered:
    """A photo's gray at full size, its padded L* at render size, and (a hint model) its padded
    hint map and palette."""

    gray: np.ndarray
    shape: tuple[int, int]
    lightness: np.ndarray
    hints: np.ndarray | None = None
    palette: np.ndarray | None = None
    blend: list[hinting.Point] | None = None  # hint_mode "blend": points blended after the run
    reference: tuple[np.ndarray, np.ndarray] | None = None  # the reference's a*b* mean and sd


class Colorizer:
    """A loaded generator that colorizes photos of any size (load once, call many times)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        render_size: int = RENDER_SIZE,
        batch_size: int = APPLY_BATCH_SIZE,
        backend: str | Backend = "auto",
        hint_mode: str = "network",
    ) -> None:
        """`backend` is a --backend name (open_model) or an already opened Backend. `hint_mode`
        "blend" blends hint points into the automatic colour instead of giving them to the
        network (the baseline of docs/hints.md; any model)."""
        if render_size < 1 or batch_size < 1:
            raise ValueError(
                f"render_size and batch_size must be >= 1, got {render_size}, {batch_size}"
            )
        self.backend = open_model(model_path, backend) if isinstance(backend, str) else backend
        self.model_path = self.backend.path
        self.render_size = render_size
        self.batch_size = batch_size
        self.stride = self.backend.stride
        self.predicts_rgb = self.backend.channels == 3
        self.hint_mode = hint_mode
        self.takes_hints = self.backend.takes_hints
        self.network_seconds = 0.0  # time spent in the network, for benchmarks

    def colorize(self, image: np.ndarray, guide: Guide | None = None) -> np.ndarray:
        """uint8 (H, W, 3) colour or (H, W) gray -> uint8 (H, W, 3) colorized from its gray,
        following `guide`'s hints and reference palette (a hint model only)."""
        return recombine(*self.chroma(image, guide))

    def chroma(
        self, image: np.ndarray, guide: Guide | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A photo's full-size uint8 gray and the network's render-size a*b* for it:
        `chroma.recombine(gray, ab)` (or `chroma.output_image`) finishes it."""
        ((_, gray, ab),) = self.chroma_many([(None, image, guide)])
        return gray, ab

    def colorize_many(
        self, items: Iterable[tuple[T, np.ndarray] | tuple[T, np.ndarray, Guide | None]]
    ) -> Iterator[tuple[T, np.ndarray]]:
        """Colorize (tag, photo) or (tag, photo, guide) items in batches, yielding (tag,
        colorized) in the input order.

        Photos are read from `items` lazily, `batch_size` (or BATCH_PIXEL_BUDGET) at a time; each
        result equals what `colorize` gives for that photo alone.
        """
        for tag, gray, ab in self.chroma_many(items):
            yield tag, recombine(gray, ab)

    def chroma_many(
        self,
        items: Iterable[tuple[T, np.ndarray] | tuple[T, np.ndarray, Guide | None]],
        held: Callable[[T], int] | None = None,
    ) -> Iterator[tuple[T, np.ndarray, np.ndarray]]:
        """(tag, photo[, guide]) items -> (tag, gray, ab): the photo's full-size uint8 gray and the
        network's float32 a*b* at the render shape, in input order. `recombine(gray, ab)`
        finishes a photo; between the two, a caller may change the colour (video smooths it over
        time). A guide's hints must lie inside its photo (hints.HintError otherwise). `held(tag)`:
        the pixels a tag holds besides its photo (a video's frames that wait for its colour),
        counted in the batch's BATCH_PIXEL_BUDGET with the photos'."""
        batch: list[tuple[T, _Rendered]] = []
        pixels = 0
        for item in items:
            rendered = self._render(item[1], item[2] if len(item) > 2 else None)
            batch.append((item[0], rendered))
            pixels += rendered.gray.size + (held(item[0]) if held is not None else 0)
            del item, rendered  # a photo is held by the batch alone (not while the next is read)
            if len(batch) >= self.batch_size or pixels >= BATCH_PIXEL_BUDGET:
                yield from self._run(batch)
                batch, pixels = [], 0
        if batch:
            yield from self._run(batch)

    def network_input(self, image: np.ndarray) -> np.ndarray:
        """The padded (h, w) float32 L* the network sees for a photo (int8 calibration uses it)."""
        return self._render(image).lightness

    def _render(self, image: np.ndarray, guide: Guide | None = None) -> _Rendered:
        image = np.asarray(image)
        if image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)
        ):
            raise ValueError(f"expected uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
        if 0 in image.shape:
            raise ValueError(f"empty image of shape {image.shape}")
        gray = image if image.ndim == 2 else color.grayscale(image)
        height, width = render_shape(*gray.shape, self.render_size)
        small = gray
        if (height, width) != gray.shape:
            # reducing_gap: a box reduction by a whole factor first, then bicubic over the rest
            # (a factor of 2 to 4); about 4x faster than bicubic over a 2 MP photo.
            small = np.asarray(
                Image.fromarray(gray).resize(
                    (width, height), Image.Resampling.BICUBIC, reducing_gap=_REDUCING_GAP
                )
            )
        padding = ((0, -height % self.stride), (0, -width % self.stride))
        lightness = color.gray_to_lightness(small)
        padded = np.pad(lightness, padding, mode="symmetric")
        rendered = _Rendered(gray, (height, width), padded)
        if guide is not None and guide.reference_ab is not None:
            rendered.reference = hinting.palette_statistics(guide.reference_ab)
        if self.hint_mode == "blend" and guide is not None:
            rendered.blend = list(guide.points)
            guide = hinting.Guide(reference_ab=guide.reference_ab)
        if guide is not None and not guide.empty and not self.takes_hints:
            raise UsageError(
                "this model takes no hints or reference (automatic colour only); use the "
                "bundled default or a model trained with --model lite0-hints",
                self.model_path,
            )
        if self.takes_hints:
            guide = guide or Guide()
            hint_map = hinting.hint_map(list(guide.points), gray.shape, lightness)
            # Zeros, not a mirror, in the padding: a hint near the edge must not be copied.
            rendered.hints = np.pad(hint_map, (*padding, (0, 0)))
            rendered.palette = hinting.palette(guide.reference_ab)
        return rendered

    def _run(self, batch: list[tuple[T, _Rendered]]) -> Iterator[tuple[T, np.ndarray, np.ndarray]]:
        """Predict each group of same-shape renders together; yield (tag, gray, ab) in order."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (_, rendered) in enumerate(batch):
            groups.setdefault(rendered.lightness.shape, []).append(i)
        chroma: list[np.ndarray | None] = [None] * len(batch)
        for indices in groups.values():
            x = np.stack([batch[i][1].lightness for i in indices])[..., np.newaxis]
            hints = palette = None
            if self.takes_hints:
                hints = np.stack([batch[i][1].hints for i in indices])
                palette = np.stack([batch[i][1].palette for i in indices])
            started = time.perf_counter()
            y = self.backend.run(x, hints, palette) if self.takes_hints else self.backend.run(x)
            self.network_seconds += time.perf_counter() - started
            for i, prediction in zip(indices, y, strict=True):
                height, width = batch[i][1].shape
                chroma[i] = self._ab(prediction[:height, :width])
                rendered = batch[i][1]
                if rendered.reference is not None:
                    on_hints = (
                        None if rendered.hints is None else rendered.hints[:height, :width, 2]
                    )
                    chroma[i] = hinting.transfer_palette(chroma[i], rendered.reference, on_hints)
                if rendered.blend:
                    chroma[i] = hinting.blend_points(
                        chroma[i],
                        rendered.lightness[:height, :width],
                        rendered.blend,
                        rendered.gray.shape,
                    )
        for (tag, rendered), ab in zip(batch, chroma, strict=True):
            yield tag, rendered.gray, ab

    def _ab(self, prediction: np.ndarray) -> np.ndarray:
        if self.predicts_rgb:
            return color.srgb_to_lab(np.clip(prediction, 0.0, 1.0))[..., 1:]
        return prediction.astype(np.float32)
