"""The PyTorch side of bench/torch_peer.py: colorize's networks and pix2pix step, timed on request.

    echo "eager 5" | bench/.venv-torch/bin/python bench/torch_step.py --preset tiny --size 128
    bench/.venv-torch/bin/python bench/torch_step.py --preset small --memory-format contiguous
    echo "eager 1" | bench/.venv-torch/bin/python bench/torch_step.py --preset lite0 --modes eager

Runs in its own venv (`make bench-env`: torch 2.13 CPU, efficientnet-lite-pytorch 0.1.0). The
networks copy nets/models.py layer for layer (same parameter counts, paddings, GroupNorm
groups and epsilon, bilinear resize). lite0's encoder is that package's EfficientNet-Lite0 (the
network nets/pretrained.py ports to Keras: TF "same" padding, computed per input here as
Keras does; ReLU6; no squeeze-excite; BatchNorm epsilon 1e-3), randomly initialised, since the
weights do not change the speed; its decoder and head copy models._build_pretrained_generator.
The step copies training/gan.py with the "pix2pix" recipe: one forward pass (BatchNorm in training
mode), the discriminator on the real and the fake pair, each network's gradients of its own loss
only, Adam(2e-4, 0.5) updates of the trainable weights.
It warms every mode up once, prints one JSON line (parameter counts, modes ready or why not), then
answers each stdin line "MODE STEPS" with one JSON line holding images/s; EOF ends it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# The facts of nets/models.py and recipes.py this copy must keep (imported there from TF
# code, so repeated here rather than shared).
PRESETS = {
    "tiny": {"depth": 3, "base_filters": 8, "max_filters": 32},
    "small": {"depth": 6, "base_filters": 32, "max_filters": 256},
    "base": {"depth": 7, "base_filters": 64, "max_filters": 512},
    # The EfficientNet-Lite0 U-Net; these widths are its discriminator's (small's, at depth 5).
    "lite0": {"depth": 5, "base_filters": 32, "max_filters": 256},
}
ENCODERS = {"lite0": "efficientnet-lite0"}  # preset -> efficientnet_lite_pytorch model name
DECODER_FILTERS = (256, 128, 64, 48)  # ModelConfig.decoder_filters, from stride 16 up to 2
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # pretrained.py's, on sRGB in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
AB_SCALE = 110.0
L_MAX = 100.0
DISCRIMINATOR_DOWNSAMPLINGS = 3
LEAK = 0.2
MAX_GROUPS = 32
KERAS_NORM_EPSILON = 1e-3
KERAS_ADAM_EPSILON = 1e-7
RECONSTRUCTION_WEIGHT = 100.0
LEARNING_RATE = 2e-4
BETA_1 = 0.5
MODES = ("eager", "compile")
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def groups(channels: int) -> int:
    """Most groups (<= 32) that divide `channels` and keep at least 4 channels per group."""
    return max(g for g in range(1, min(MAX_GROUPS, max(channels // 4, 1)) + 1) if channels % g == 0)


def same_conv(c_in: int, c_out: int, kernel: int, stride: int = 1, bias: bool = True) -> nn.Module:
    """A conv padded like Keras' "same" on even input sides: an odd pad's extra pixel goes after.

    PyTorch's own padding="same" pads the same way, but only at stride 1 and with a warning
    about the padded copy it makes; this makes that copy in the open.
    """
    total = max(kernel - stride, 0)
    conv = nn.Conv2d(c_in, c_out, kernel, stride, bias=bias)
    if total % 2 == 0:
        conv.padding = (total // 2, total // 2)
        return conv
    return nn.Sequential(nn.ZeroPad2d((total // 2, total - total // 2) * 2), conv)


def conv_block(
    c_in: int, c_out: int, kernel: int, stride: int, normalize: bool, leaky: bool
) -> nn.Sequential:
    """Conv -> GroupNorm (optional) -> LeakyReLU(0.2) or ReLU; no conv bias before a norm."""
    layers = [same_conv(c_in, c_out, kernel, stride, bias=not normalize)]
    if normalize:
        layers.append(nn.GroupNorm(groups(c_out), c_out, eps=KERAS_NORM_EPSILON))
    layers.append(nn.LeakyReLU(LEAK) if leaky else nn.ReLU())
    return nn.Sequential(*layers)


def upsample(x: torch.Tensor) -> torch.Tensor:
    # align_corners=False is Keras' bilinear UpSampling2D (half-pixel centres).
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Generator(nn.Module):
    """The U-Net: L* (B, 1, H, W) in [0, 100] -> a*b* (B, 2, H, W) in Lab units."""

    def __init__(self, depth: int, base_filters: int, max_filters: int) -> None:
        super().__init__()
        filters = [min(base_filters * 2**level, max_filters) for level in range(depth)]
        self.down = nn.ModuleList()
        c_in = 1
        for level, c_out in enumerate(filters):
            normalize = 0 < level < depth - 1
            self.down.append(conv_block(c_in, c_out, 4, 2, normalize, leaky=True))
            c_in = c_out
        self.up = nn.ModuleList()
        for level in reversed(range(depth - 1)):
            self.up.append(conv_block(c_in, filters[level], 3, 1, normalize=True, leaky=False))
            c_in = 2 * filters[level]  # then concatenated with the skip of the same size
        # + 1: the last conv also sees the scaled lightness.
        self.out = same_conv(c_in + 1, 2, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        scaled = lightness * (2.0 / L_MAX) - 1.0
        x = scaled
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = torch.cat([block(upsample(x)), skip], dim=1)
        x = self.out(torch.cat([upsample(x), scaled], dim=1))
        return torch.tanh(x) * AB_SCALE


def bn_block(c_in: int, c_out: int) -> nn.Sequential:
    """A decoder conv of the lite0 U-Net: 3x3 conv (no bias) -> Keras-default BatchNorm -> ReLU."""
    # Keras' BatchNormalization defaults: epsilon 1e-3, moving averages kept at 0.99 (torch 0.01).
    return nn.Sequential(
        same_conv(c_in, c_out, 3, bias=False),
        nn.BatchNorm2d(c_out, eps=KERAS_NORM_EPSILON, momentum=0.01),
        nn.ReLU(),
    )


def block_stride(block: nn.Module) -> int:
    """An MBConv block's stride; efficientnet_lite_pytorch keeps a stage's first as a list."""
    stride = block._block_args.stride
    return stride[0] if isinstance(stride, list | tuple) else stride


class PretrainedGenerator(nn.Module):
    """The lite0 U-Net: L* (B, 1, H, W) -> gray as ImageNet RGB -> Lite0 -> decoder -> a*b*.

    The encoder is efficientnet_lite_pytorch's stem and MBConv blocks (its 1280-channel head and
    classifier are dropped, as models.py never builds them); the blocks are called one by one, so
    the package's drop connect (not in the Keras port) never runs. Skips are the last block at
    strides 2, 4, 8 and 16 (the block before each stride-2 block), the bottom the last block.
    Each decoder level: bilinear 2x, concatenated with the skip, two bn_blocks.
    """

    def __init__(self, model_name: str, decoder_filters: tuple[int, ...]) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise SystemExit(
                "efficientnet_lite_pytorch is missing from this venv: "
                "rm -r bench/.venv-torch && make bench-env"
            ) from None
        # image_size=None: "same" padding computed from each input, as Keras' padding="same".
        encoder = EfficientNet.from_name(model_name, image_size=None)
        self.stem = nn.Sequential(encoder._conv_stem, encoder._bn0, nn.ReLU6())
        self.blocks = encoder._blocks
        strides = [block_stride(block) for block in self.blocks]
        ends = [index - 1 for index, stride in enumerate(strides) if stride == 2]
        self.feature_blocks = frozenset([*ends, len(self.blocks) - 1])
        channels = [self.blocks[index]._block_args.output_filters for index in sorted(ends)]
        c_in = self.blocks[-1]._block_args.output_filters
        self.decoder = nn.ModuleList()
        for filters, skip in zip(decoder_filters, reversed(channels), strict=True):
            self.decoder.append(
                nn.Sequential(bn_block(c_in + skip, filters), bn_block(filters, filters))
            )
            c_in = filters
        self.out = same_conv(c_in + 1, 2, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # (gray - mean) / std per RGB channel as gray * scale - offset. Constants, not buffers:
        # Keras' Normalization with a given mean and variance holds no weights.
        self.scale = [1.0 / s for s in IMAGENET_STD]
        self.offset = [m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        scaled = lightness * (2.0 / L_MAX) - 1.0
        gray = lightness / L_MAX
        rgb = torch.cat([gray * s - o for s, o in zip(self.scale, self.offset, strict=True)], 1)
        x = self.stem(rgb)
        features = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.feature_blocks:
                features.append(x)
        for level, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            x = level(torch.cat([upsample(x), skip], dim=1))
        x = self.out(torch.cat([upsample(x), scaled], dim=1))
        return torch.tanh(x) * AB_SCALE


def build_generator(preset: str) -> nn.Module:
    if preset in ENCODERS:
        return PretrainedGenerator(ENCODERS[preset], DECODER_FILTERS)
    return Generator(**PRESETS[preset])


def keras_count(module: nn.Module) -> int:
    """Weights as Keras' count_params counts them: BatchNorm's moving mean and variance too."""
    stats = sum(
        layer.running_mean.numel() + layer.running_var.numel()
        for layer in module.modules()
        if isinstance(layer, nn.BatchNorm2d)
    )
    return sum(p.numel() for p in module.parameters()) + stats


class Discriminator(nn.Module):
    """The conditional PatchGAN: (L*, a*b*) -> patch logits (B, 1, H/8, W/8)."""

    def __init__(self, depth: int, base_filters: int, max_filters: int) -> None:
        super().__init__()
        downsamplings = min(depth, DISCRIMINATOR_DOWNSAMPLINGS)
        filters = [min(base_filters * 2**level, max_filters) for level in range(downsamplings + 1)]
        layers = []
        c_in = 3  # L* and a*b*
        for level, c_out in enumerate(filters[:-1]):
            layers.append(conv_block(c_in, c_out, 4, 2, normalize=level > 0, leaky=True))
            c_in = c_out
        layers.append(conv_block(c_in, filters[-1], 4, 1, normalize=True, leaky=True))
        layers.append(same_conv(filters[-1], 1, 4))
        self.body = nn.Sequential(*layers)

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        pair = torch.cat([lightness * (2.0 / L_MAX) - 1.0, ab / AB_SCALE], dim=1)
        return self.body(pair)


def losses(
    generator: nn.Module, discriminator: nn.Module, lightness: torch.Tensor, ab: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(G loss, D loss) of the pix2pix recipe, from one generator and one fake-pair forward."""
    fake = generator(lightness)
    real_logits = discriminator(lightness, ab)
    fake_logits = discriminator(lightness, fake)
    reconstruction = torch.mean(torch.abs(fake - ab)) / AB_SCALE
    bce = F.binary_cross_entropy_with_logits
    adversarial = bce(fake_logits, torch.ones_like(fake_logits))
    g_loss = RECONSTRUCTION_WEIGHT * reconstruction + adversarial
    d_loss = 0.5 * (
        bce(real_logits, torch.ones_like(real_logits))
        + bce(fake_logits, torch.zeros_like(fake_logits))
    )
    return g_loss, d_loss


def make_step(generator: nn.Module, discriminator: nn.Module, compiled: bool) -> Step:
    """step(lightness, ab) -> G loss, updating both networks, like gan.py's persistent tape.

    Each loss is differentiated only with respect to its own network, so the discriminator's
    weight gradients of the G loss (and the generator's of the D loss) are never computed.
    With `compiled`, torch.compile (inductor) takes the forward pass and both gradient calls as
    one graph; compiling only the forward pass would run its joint backward once per loss.
    """
    g_params = list(generator.parameters())
    d_params = list(discriminator.parameters())
    # fused: one C++ kernel per parameter group, the fastest CPU Adam in torch 2.13.
    adam = {"lr": LEARNING_RATE, "betas": (BETA_1, 0.999), "eps": KERAS_ADAM_EPSILON, "fused": True}
    g_opt = torch.optim.Adam(g_params, **adam)
    d_opt = torch.optim.Adam(d_params, **adam)

    def gradients(lightness: torch.Tensor, ab: torch.Tensor) -> tuple:
        g_loss, d_loss = losses(generator, discriminator, lightness, ab)
        g_grads = torch.autograd.grad(g_loss, g_params, retain_graph=True)
        d_grads = torch.autograd.grad(d_loss, d_params)
        # Detached, or dynamo breaks the graph to keep g_loss's spent grad_fn.
        return g_loss.detach(), g_grads, d_grads

    if compiled:
        # Without it dynamo leaves torch.autograd.grad to eager, splitting the graph.
        torch._dynamo.config.trace_autograd_ops = True
        gradients = torch.compile(gradients)

    def step(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        g_loss, g_grads, d_grads = gradients(lightness, ab)
        for params, grads in ((g_params, g_grads), (d_params, d_grads)):
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
        g_opt.step()
        d_opt.step()
        return g_loss

    return step


def synthetic_batch(
    batch: int, size: int, memory_format: torch.memory_format
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L*, a*b*) with bench/train_step.py's shapes and ranges, channels first in the API."""
    rng = torch.Generator().manual_seed(0)
    lightness = torch.rand(batch, 1, size, size, generator=rng) * L_MAX
    ab = torch.rand(batch, 2, size, size, generator=rng) * 120.0 - 60.0
    return (
        lightness.contiguous(memory_format=memory_format),
        ab.contiguous(memory_format=memory_format),
    )


def images_per_s(step: Step, batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step(*batch)
    return steps * batch[0].shape[0] / (time.perf_counter() - started)


def reply(message: dict) -> None:
    print(json.dumps(message), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="small")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="default: all cores")
    parser.add_argument("--memory-format", choices=MEMORY_FORMATS, default="channels_last")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--warmup", type=int, default=2, help="steps (compiling) before timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    memory_format = MEMORY_FORMATS[args.memory_format]
    generator = build_generator(args.preset).to(memory_format=memory_format)
    discriminator = Discriminator(**PRESETS[args.preset]).to(memory_format=memory_format)
    batch = synthetic_batch(args.batch, args.size, memory_format)
    steps: dict[str, Step] = {}
    modes: dict[str, dict] = {}
    for mode in args.modes:
        started = time.perf_counter()
        try:
            step = make_step(generator, discriminator, compiled=mode == "compile")
            images_per_s(step, batch, args.warmup)
        except Exception as error:  # any failure to compile is the finding
            traceback.print_exc(file=sys.stderr)
            modes[mode] = {"ready": False, "error": f"{type(error).__name__}: {error}"[:300]}
            continue
        steps[mode] = step
        modes[mode] = {"ready": True, "warmup_s": round(time.perf_counter() - started, 1)}
    reply(
        {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "params": {
                "generator": keras_count(generator),
                "discriminator": keras_count(discriminator),
            },
            "modes": modes,
        }
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        mode, count = line.split()
        reply({"mode": mode, "images_per_s": images_per_s(steps[mode], batch, int(count))})


if __name__ == "__main__":
    main()
