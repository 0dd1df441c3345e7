"""The networks: a pix2pix-style U-Net generator, a PatchGAN discriminator, their presets and FLOPs.

Built from stock Keras layers only, so a saved generator loads with `safe_mode=True` and no custom
objects. Keras (so TensorFlow, via tf_setup) is imported inside the builders: listing presets
stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from colorize_cli.errors import UsageError
from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
from colorize_cli.tf_setup import import_tf

if TYPE_CHECKING:
    import keras

# The generator's tanh is scaled to +-AB_SCALE Lab units; it covers the sRGB gamut's a*, b*
# (about -86..98 and -108..94) with a little room. Recipes divide by it to compare on [-1, 1].
AB_SCALE = 110.0
L_MAX = 100.0
# The PatchGAN halves its input this many times at most (pix2pix's 70x70 patches at 3).
DISCRIMINATOR_DOWNSAMPLINGS = 3
LEAK = 0.2
MAX_GROUPS = 32
OUTPUTS = ("ab", "rgb")
# Layers of the hint and palette branches are named with these (the stride ignores them).
HINT_LAYER_PREFIXES = ("hints", "palette")
ENCODERS = ("", "lite0")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a generator/discriminator pair; `stride` is what input sides must divide by."""

    preset: str = "small"
    depth: int = 6
    base_filters: int = 32
    max_filters: int = 256
    output: Literal["ab", "rgb"] = "ab"
    # "" builds the U-Net encoder from scratch; "lite0" is the ImageNet EfficientNet-Lite0
    # (pretrained.py), whose depth is 5 and whose decoder widths are `decoder_filters`.
    encoder: Literal["", "lite0"] = ""
    pretrained: bool = True
    decoder_filters: tuple[int, ...] = (256, 128, 64, 48)
    # Takes user hints: the `hints` map and the reference `palette` (imaging/hints.py) as inputs
    # beside `lightness`, through zero-initialised branches (a pretrained encoder only).
    hints: bool = False
    hint_filters: int = 32

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise UsageError(
                f"model output must be one of {', '.join(OUTPUTS)}, not {self.output!r}"
            )
        if self.encoder not in ENCODERS:
            raise UsageError(f"model encoder must be one of {ENCODERS}, not {self.encoder!r}")
        if self.hints and not self.encoder:
            raise UsageError("hint inputs need a pretrained encoder (the lite0 presets)")
        if self.encoder and self.depth != len(self.decoder_filters) + 1:
            raise UsageError("a pretrained encoder's depth is one more than its decoder levels")
        if self.depth < 1 or self.base_filters < 1 or self.max_filters < self.base_filters:
            raise UsageError(
                f"model needs depth >= 1 and 1 <= base_filters <= max_filters, got depth "
                f"{self.depth}, base_filters {self.base_filters}, max_filters {self.max_filters}"
            )

    @property
    def stride(self) -> int:
        """The generator's total downsampling: input height and width must be multiples of it."""
        return 2**self.depth

    @property
    def channels(self) -> int:
        """Channels of the generator's output (and of the discriminator's color input)."""
        return 2 if self.output == "ab" else 3

    @property
    def discriminator_stride(self) -> int:
        """How much smaller the discriminator's patch grid is than its input."""
        return 2 ** min(self.depth, DISCRIMINATOR_DOWNSAMPLINGS)

    def filters(self, level: int) -> int:
        """Filters at encoder level `level` (0 = full resolution / 2), doubling up to the cap."""
        return min(self.base_filters * 2**level, self.max_filters)


PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(preset="tiny", depth=3, base_filters=8, max_filters=32),
    "small": ModelConfig(preset="small", depth=6, base_filters=32, max_filters=256),
    "base": ModelConfig(preset="base", depth=7, base_filters=64, max_filters=512),
    # The ImageNet-pretrained EfficientNet-Lite0 encoder + a U-Net decoder; the discriminator
    # (PatchGAN) takes the small preset's widths.
    "lite0": ModelConfig(
        preset="lite0", depth=5, base_filters=32, max_filters=256, encoder="lite0"
    ),
    # lite0 that also takes colour hints and a reference palette (docs/hints.md): the default.
    "lite0-hints": ModelConfig(
        preset="lite0-hints",
        depth=5,
        base_filters=32,
        max_filters=256,
        encoder="lite0",
        hints=True,
    ),
    # The same network from random initialisation: the ablation of the pretrained weights.
    "lite0-scratch": ModelConfig(
        preset="lite0-scratch",
        depth=5,
        base_filters=32,
        max_filters=256,
        encoder="lite0",
        pretrained=False,
    ),
}


def model_config(preset: str, output: str = "ab") -> ModelConfig:
    """The named preset predicting `output` ("ab" Lab chroma or "rgb"); UsageError if unknown."""
    if preset not in PRESETS:
        raise UsageError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[preset], output=output)


def _keras() -> ModuleType:
    """Keras, imported after tf_setup has set TensorFlow's environment."""
    import_tf()
    import keras

    return keras


def _groups(channels: int) -> int:
    """Most groups (<= 32) that divide `channels` and keep at least 4 channels per group."""
    return max(g for g in range(1, min(MAX_GROUPS, max(channels // 4, 1)) + 1) if channels % g == 0)


def _conv_block(x, filters: int, kernel: int, stride: int, normalize: bool, leaky: bool, name: str):
    """Conv -> GroupNorm (optional) -> LeakyReLU(0.2) or ReLU; no conv bias before a norm."""
    keras = _keras()

    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=not normalize, name=f"{name}_conv"
    )(x)
    if normalize:
        x = keras.layers.GroupNormalization(_groups(filters), name=f"{name}_norm")(x)
    if leaky:
        return keras.layers.LeakyReLU(negative_slope=LEAK, name=f"{name}_act")(x)
    return keras.layers.ReLU(name=f"{name}_act")(x)


def build_generator(config: ModelConfig) -> keras.Model:
    """The U-Net generator: L* in [0, 100] -> a*b* in Lab units, or sRGB in [0, 1].

    Encoder: `depth` strided 4x4 convs (GroupNorm except on the first and innermost, LeakyReLU 0.2).
    Decoder: bilinear 2x upsampling + 3x3 conv (no checkerboard), ReLU, concatenated with the
    encoder feature of the same size; the last conv also sees the input lightness, so color edges
    can follow luminance edges at full resolution.
    """
    keras = _keras()

    if config.encoder:
        return _build_pretrained_generator(config)
    lightness = keras.Input((None, None, 1), name="lightness")
    x = keras.layers.Rescaling(2.0 / L_MAX, offset=-1.0, name="lightness_scale")(lightness)
    scaled_lightness = x
    skips = []
    for level in range(config.depth):
        normalize = 0 < level < config.depth - 1
        x = _conv_block(x, config.filters(level), 4, 2, normalize, True, f"down{level}")
        skips.append(x)
    for level in reversed(range(config.depth - 1)):
        x = keras.layers.UpSampling2D(interpolation="bilinear", name=f"up{level}_resize")(x)
        x = _conv_block(x, config.filters(level), 3, 1, True, False, f"up{level}")
        x = keras.layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
    return _head(x, lightness, scaled_lightness, config)


def takes_hints(model: keras.Model) -> bool:
    """Whether a generator has the `hints` and `palette` inputs."""
    return isinstance(model.input, dict) and "hints" in model.input


def transfer_weights(source: keras.Model, target: keras.Model) -> int:
    """Copy every weighted layer of `source` into the layer of the same name in `target` (an
    automatic generator into its hint twin); ValueError if one is missing or differs in shape.
    Returns the layers copied; `target`'s other layers (the hint branches) keep theirs."""
    copied = 0
    names = {layer.name: layer for layer in target.layers}
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        twin = names.get(layer.name)
        if twin is None:
            raise ValueError(f"layer {layer.name} is not in {target.name}")
        twin.set_weights(weights)
        copied += 1
    return copied


def _build_pretrained_generator(config: ModelConfig) -> keras.Model:
    """The U-Net on the ImageNet encoder: L* -> gray as RGB -> Lite0 -> decoder -> the head.

    The gray enters as three equal channels, ImageNet-normalised by a standard layer, which is
    exactly a gray photo fed to the classifier (L* / 100 stands in for the gray level). Each
    decoder level is bilinear 2x, the encoder feature of that stride, and two 3x3 conv + BN + ReLU.

    With `config.hints`, the hint map joins every decoder level and the head, and the palette the
    bottleneck, each through a branch whose last conv starts at zero (as ControlNet's): a new
    hint model computes exactly what the same weights compute without hints. The branches have
    no biases, so all-zero hint inputs add exactly zero however they were trained: without hints,
    a hint model is its automatic base. The ImageNet stem is left alone.
    """
    from colorize_cli.nets import pretrained

    keras = _keras()
    lightness = keras.Input((None, None, 1), name="lightness")
    scaled_lightness = keras.layers.Rescaling(2.0 / L_MAX, offset=-1.0, name="lightness_scale")(
        lightness
    )
    gray = keras.layers.Rescaling(1.0 / L_MAX, name="gray")(lightness)
    rgb = keras.layers.Concatenate(name="gray_as_rgb")([gray, gray, gray])
    features = pretrained.encoder_features(
        pretrained.imagenet_normalization("lite0_normalize")(rgb)
    )
    x = features[2**config.depth]
    inputs = lightness
    if config.hints:
        hints = keras.Input((None, None, HINT_CHANNELS), name="hints")
        palette = keras.Input((PALETTE_SIZE,), name="palette")
        inputs = {"lightness": lightness, "hints": hints, "palette": palette}
        x = keras.layers.Add(name="palette_join")([x, _palette_branch(palette, x.shape[-1])])
    for level, filters in enumerate(config.decoder_filters):
        stride = 2 ** (config.depth - 1 - level)
        x = keras.layers.UpSampling2D(interpolation="bilinear", name=f"dec{stride}_resize")(x)
        x = keras.layers.Concatenate(name=f"dec{stride}_skip")([x, features[stride]])
        for conv in range(2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"dec{stride}_conv{conv}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"dec{stride}_bn{conv}")(x)
            x = keras.layers.ReLU(name=f"dec{stride}_relu{conv}")(x)
        if config.hints:
            branch = _hint_branch(x, hints, stride, filters, config.hint_filters)
            x = keras.layers.Add(name=f"hints{stride}_join")([x, branch])
    model = _head(x, inputs, scaled_lightness, config)
    if config.pretrained:
        pretrained.load_weights(model)
    return model


def _zero_conv(x, filters: int, kernel: int, name: str):
    keras = _keras()
    return keras.layers.Conv2D(
        filters, kernel, padding="same", use_bias=False, kernel_initializer="zeros", name=name
    )(x)


def _hint_branch(features, hints, stride: int, filters: int, width: int):
    """What the hints add to the decoder's `features` at `stride`: the hint map mean-pooled to
    that scale (a patch's a*b* and mask shrink together) beside the features, so where colour
    spreads can follow the image; a 3x3 conv + ReLU, then a zero-initialised 1x1 conv to
    `filters`. The same branch run on no hints is subtracted, so all-zero hints add exactly 0
    (the branch sees the image, so it would not be 0 by itself)."""
    keras = _keras()
    pooled = hints
    if stride > 1:
        pooled = keras.layers.AveragePooling2D(stride, name=f"hints{stride}_pool")(hints)
    nothing = keras.layers.Rescaling(0.0, name=f"hints{stride}_nothing")(pooled)
    join = keras.layers.Concatenate(name=f"hints{stride}_beside")
    conv = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"hints{stride}_conv")
    relu = keras.layers.ReLU(name=f"hints{stride}_relu")
    kernel = 1 if stride > 1 else 3
    zero = keras.layers.Conv2D(
        filters,
        kernel,
        padding="same",
        use_bias=False,
        kernel_initializer="zeros",
        name=f"hints{stride}_zero",
    )
    given, none = (zero(relu(conv(join([features, h])))) for h in (pooled, nothing))
    return keras.layers.Subtract(name=f"hints{stride}_delta")([given, none])


def _palette_branch(palette, filters: int):
    """The palette as a 1x1 map: a 1x1 conv + ReLU, then a zero-initialised 1x1 conv to the
    bottleneck's `filters`; it is added to every position of the bottleneck (broadcast)."""
    keras = _keras()
    x = keras.layers.Reshape((1, 1, PALETTE_SIZE), name="palette_map")(palette)
    x = keras.layers.Conv2D(256, 1, use_bias=False, name="palette_conv")(x)
    x = keras.layers.ReLU(name="palette_relu")(x)
    return _zero_conv(x, filters, 1, "palette_zero")


def _head(x, inputs, scaled_lightness, config: ModelConfig) -> keras.Model:
    """Full resolution, the input lightness alongside, one 3x3 conv, tanh or sigmoid; a hint
    model adds its full-resolution hint branch (beside the lightness) before the tanh."""
    keras = _keras()

    x = keras.layers.UpSampling2D(interpolation="bilinear", name="out_resize")(x)
    x = keras.layers.Concatenate(name="out_skip")([x, scaled_lightness])
    # Zero-initialised, so an untrained generator predicts no color (the gray baseline) rather
    # than saturated noise; the kernel still gets gradients from the first step.
    x = keras.layers.Conv2D(
        config.channels, 3, padding="same", kernel_initializer="zeros", name="out_conv"
    )(x)
    if config.hints:
        # Beside the lightness only: the decoder's 49 channels at full size cost 5x the images/s.
        direct = _hint_branch(
            scaled_lightness, inputs["hints"], 1, config.channels, config.hint_filters // 2
        )
        x = keras.layers.Add(name="hints1_join")([x, direct])
    # The head runs in float32 so a mixed-precision policy cannot quantise the colours.
    if config.output == "ab":
        x = keras.layers.Activation("tanh", dtype="float32", name="out_tanh")(x)
        if config.hints:
            x = keras.layers.Rescaling(AB_SCALE, dtype="float32", name="network_ab")(x)
            color = _blend_hints(x, inputs["hints"])
        else:
            color = keras.layers.Rescaling(AB_SCALE, dtype="float32", name="ab")(x)
    else:
        color = keras.layers.Activation("sigmoid", dtype="float32", name="rgb")(x)
    return keras.Model(inputs, color, name=f"generator_{config.preset}_{config.output}")


def _fixed_conv(x, kernel: list[list[float]], name: str):
    """A frozen 1x1 conv with a given kernel (in x out), for picking and scaling channels with
    standard layers only."""
    import numpy as np

    keras = _keras()
    layer = keras.layers.Conv2D(
        len(kernel[0]), 1, use_bias=False, dtype="float32", trainable=False, name=name
    )
    y = layer(x)
    layer.set_weights([np.array(kernel, np.float32)[None, None]])
    return y


def _blend_hints(network_ab, hints):
    """a*b* = (1 - w) x the network's + w x the hints' spread colour, w the hint map's weight
    (imaging.hints.spread): a fresh hint model is the hand-made blend of docs/hints.md, exact
    where w is 1 (on the hints), and its branches learn the rest; with no hints w = 0 and this
    is the network's own a*b*. The hint map is premultiplied (w a/110, w b/110, w)."""
    keras = _keras()
    weight = _fixed_conv(hints, [[0.0], [0.0], [1.0]], "blend_weight")
    spread = _fixed_conv(hints, [[AB_SCALE, 0.0], [0.0, AB_SCALE], [0.0, 0.0]], "blend_ab")
    covered = keras.layers.Multiply(dtype="float32", name="blend_covered")([network_ab, weight])
    kept = keras.layers.Subtract(dtype="float32", name="blend_kept")([network_ab, covered])
    return keras.layers.Add(dtype="float32", name="ab")([kept, spread])


def build_discriminator(config: ModelConfig, conditional: bool = True) -> keras.Model:
    """The PatchGAN: patch logits (B, H/s, W/s, 1), s = `config.discriminator_stride`.

    conditional=True takes `[lightness, color]` (L* in [0, 100] and the generator's output space)
    and judges the pair; conditional=False takes the color tensor alone. Inputs are rescaled to
    [-1, 1] inside; the logits have no sigmoid (the recipes use BCE from logits).
    """
    keras = _keras()

    color = keras.Input((None, None, config.channels), name="color")
    if config.output == "ab":
        x = keras.layers.Rescaling(1.0 / AB_SCALE, name="color_scale")(color)
    else:
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="color_scale")(color)
    inputs = color
    if conditional:
        lightness = keras.Input((None, None, 1), name="lightness")
        scaled = keras.layers.Rescaling(2.0 / L_MAX, offset=-1.0, name="lightness_scale")(lightness)
        x = keras.layers.Concatenate(name="pair")([scaled, x])
        inputs = [lightness, color]
    downsamplings = min(config.depth, DISCRIMINATOR_DOWNSAMPLINGS)
    for level in range(downsamplings):
        x = _conv_block(x, config.filters(level), 4, 2, level > 0, True, f"down{level}")
    x = _conv_block(x, config.filters(downsamplings), 4, 1, True, True, "patch")
    logits = keras.layers.Conv2D(1, 4, padding="same", dtype="float32", name="logits")(x)
    kind = "conditional" if conditional else "unconditional"
    return keras.Model(inputs, logits, name=f"discriminator_{config.preset}_{kind}")


def count_flops(model: keras.Model, height: int, width: int) -> int:
    """Forward FLOPs per image (2 x multiply-adds) of the conv and dense layers at height x width.

    Depthwise convs count their single tap per channel. Normalisation, activations, resizing and
    bias adds are left out (a few percent at most).
    The model is cloned on fixed-size inputs so every layer's spatial size is known.
    """
    keras = _keras()

    inputs = keras.tree.map_structure(
        lambda tensor: keras.Input(
            (height, width, *tensor.shape[3:]) if len(tensor.shape) == 4 else tensor.shape[1:],
            name=tensor.name,
        ),
        model.input,
    )
    sized = keras.models.clone_model(model, input_tensors=inputs)
    flops = 0
    for layer in sized.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            # Every input pixel is spread over a kernel-sized window of each output channel.
            _, h, w, c_in = layer.input.shape
            flops += 2 * h * w * math.prod(layer.kernel_size) * c_in * layer.filters
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, channels = layer.output.shape
            flops += 2 * h * w * math.prod(layer.kernel_size) * channels
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            c_in = layer.input.shape[-1] // layer.groups
            flops += 2 * h * w * math.prod(layer.kernel_size) * c_in * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            positions = math.prod(layer.output.shape[1:-1])
            flops += 2 * positions * layer.input.shape[-1] * layer.units
    return flops
