"""Loading a saved generator: a `.keras` file opened in Keras safe mode (no Python code runs) and
checked against the generator contract, and the stride its input sides must be multiples of.

Training's `--init` and inference's TensorFlow backend share this one loader. TensorFlow is
imported when a model is loaded, never at import time.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorize_cli.errors import ModelError
from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
from colorize_cli.nets.models import HINT_LAYER_PREFIXES

if TYPE_CHECKING:
    import keras

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "weights" / "default.keras"


def load_generator(path: str | Path | None = None) -> keras.Model:
    """Load a generator `.keras` file in Keras safe mode and check it obeys the generator contract.

    None means the bundled model. Raises ModelError for a missing, unreadable or unsafe file (a
    Lambda layer carries Python code, which safe mode refuses) and for the wrong input or output.
    """
    from colorize_cli.tf_setup import import_tf

    import_tf()
    import keras

    model_path = DEFAULT_MODEL_PATH if path is None else Path(path)
    if not model_path.is_file():
        if path is None:
            raise ModelError(
                "no bundled model yet: train one with `colorize train` and pass its "
                "model.keras with --model",
                model_path,
            )
        raise ModelError("model file not found", model_path)
    if model_path.suffix == ".keras" and not zipfile.is_zipfile(model_path):
        # Keras says "File not found" for these, which sends people looking in the wrong place.
        raise ModelError("not a loadable Keras model: a .keras file is a zip archive", model_path)
    try:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc):
            raise ModelError(
                "refused: the model carries Python code (a Lambda layer) that safe mode does "
                "not run; rebuild it from standard Keras layers",
                model_path,
            ) from None
        raise ModelError(f"not a loadable Keras model: {_keras_reason(exc)}", model_path) from None
    except Exception as exc:  # a damaged zip or config fails in many ways
        raise ModelError(f"not a loadable Keras model: {_keras_reason(exc)}", model_path) from None
    _check_contract(model, model_path)
    return model


def _keras_reason(exc: BaseException, limit: int = 200) -> str:
    """One line from a Keras loading error: the innermost cause, which Keras nests as
    "Exception encountered: ..." paragraphs that repeat the whole config."""
    innermost = str(exc).split("Exception encountered:")[-1].strip()
    line = innermost.splitlines()[0] if innermost else type(exc).__name__
    sentence = re.split(r"(?<=\.)\s", line, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 3] + "..."


def _check_contract(model: Any, path: Path) -> None:
    inputs, outputs = model.inputs, model.outputs
    out_shape = tuple(outputs[0].shape) if len(outputs) == 1 else None
    if isinstance(model.input, dict):
        shapes = {name: tuple(t.shape) for name, t in model.input.items()}
        expected = {
            "lightness": (None, None, None, 1),
            "hints": (None, None, None, HINT_CHANNELS),
            "palette": (None, PALETTE_SIZE),
        }
        in_ok = shapes == expected
    else:
        in_shape = tuple(inputs[0].shape) if len(inputs) == 1 else None
        in_ok = in_shape is not None and len(in_shape) == 4 and in_shape[1:] == (None, None, 1)
    if not in_ok or out_shape is None or len(out_shape) != 4 or out_shape[-1] not in (2, 3):
        raise ModelError(
            "not a colorize generator: it must take (batch, H, W, 1) L* with free H and W (and, "
            f"for hints, (batch, H, W, {HINT_CHANNELS}) hints and (batch, {PALETTE_SIZE}) "
            "palette) and give (batch, H, W, 2) a*b* or (batch, H, W, 3) RGB; this one takes "
            f"{[tuple(t.shape) for t in inputs]} and gives {[tuple(t.shape) for t in outputs]}",
            path,
        )


def model_stride(model: Any) -> int:
    """What the model's input sides must be multiples of: the product of its downsampling strides.

    A saved `.keras` file does not record the generator's depth, so it is read off the layers
    of the path from L* to the output.
    """
    import keras

    downsampling = (
        keras.layers.Conv2D,
        keras.layers.DepthwiseConv2D,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
    )
    stride = 1
    for layer in model.layers:
        if layer.name.startswith(HINT_LAYER_PREFIXES):
            continue  # the hint branches pool the hint map to each decoder scale
        if hasattr(layer, "layers"):
            stride *= model_stride(layer)
        elif isinstance(layer, downsampling):
            stride *= layer.strides[0]
    return stride
