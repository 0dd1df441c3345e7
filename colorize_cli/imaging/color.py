"""Colour science: the project's one grayscale definition, sRGB <-> CIELab (numpy and TensorFlow
twins built from the same formulas), luminance-keeping recombination and colourfulness.

Numpy functions work in fixed-size pixel chunks so 50-megapixel photos never get whole-image
float64 copies; the `tf_*` twins import TensorFlow lazily, so importing this module never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

# --- grayscale: PIL's Image.convert("L") (src/libImaging/Convert.c, macro L24) ------------------
# The ITU-R 601-2 weights scaled to 2**16; they sum to exactly 65536, so a neutral (g, g, g) maps
# back to g and the luma of a pure chroma difference is zero.
LUMA_WEIGHTS_2_16 = (19595, 38470, 7471)
GRAYSCALE_DEFINITION = (
    "ITU-R 601-2 luma as PIL Image.convert('L'): (19595*R + 38470*G + 7471*B + 32768) >> 16"
)
COLOR_SPACE = "CIELab (D65 white, 2-degree observer) from sRGB (IEC 61966-2-1); L in [0, 100]"

# --- the Lab constants: sRGB primaries, D65 white, CIE epsilon/kappa ----------------------------
SRGB_PRIMARIES_XY = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
# D65 as tabulated for the CIE 1931 2-degree observer (ASTM E308), the white that published
# sRGB -> Lab tables (Lindbloom, EasyRGB) use; the matrix below is derived from it, so sRGB white
# lands on L = 100, a = b = 0 exactly.
D65_WHITE_XYZ = (0.95047, 1.0, 1.08883)
LAB_EPSILON = 216 / 24389  # (6/29)**3: where the cube root hands over to the linear segment
LAB_KAPPA = 24389 / 27  # slope of that segment in L* units, chosen so both pieces meet smoothly
SRGB_DECODE_KNEE = 0.04045  # IEC 61966-2-1 transfer function: encoded side of the knee
SRGB_ENCODE_KNEE = 0.0031308  # ... and its linear side
SRGB_GAMMA = 2.4


def _srgb_to_xyz_matrix() -> np.ndarray:
    xy = np.array(SRGB_PRIMARIES_XY)
    primaries = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1 - xy.sum(axis=1)) / xy[:, 1]])
    scale = np.linalg.solve(primaries, np.array(D65_WHITE_XYZ))
    return primaries * scale


_XYZ = _srgb_to_xyz_matrix()
# Linear sRGB -> XYZ / white and back, as plain floats: they then multiply float32 tensors
# without promoting them, and the 3x3 product is spelt out per channel, because a GPU matmul may
# run in TF32 and lose the 1e-4 agreement between the twins.
_RGB_TO_XYZN: list[list[float]] = (_XYZ / np.array(D65_WHITE_XYZ)[:, None]).tolist()
_XYZN_TO_RGB: list[list[float]] = (np.linalg.inv(_XYZ) * np.array(D65_WHITE_XYZ)).tolist()

_CHUNK_PIXELS = 1 << 18  # ~2 MB per float64 channel: bounded temporaries, cache-friendly


class _Ops(NamedTuple):
    """The few array functions the shared formulas need, from numpy or TensorFlow."""

    where: Callable[..., Any]
    maximum: Callable[..., Any]
    power: Callable[..., Any]


def _fast_power(x: np.ndarray, p: float) -> np.ndarray:
    # numpy vectorises float32 exp and log but not power: 2x float32 power, 4x float64 power,
    # within 6 ulp (4e-7 relative), far below what an 8-bit photo can show.
    return np.exp(np.log(x) * np.float32(p))


# float64 where the result is the accuracy reference (sRGB -> Lab, tables); float32 with the fast
# power for Lab -> sRGB, which `apply` runs on whole photos and only ever needs to ~1e-6.
_NP_OPS = _Ops(np.where, np.maximum, np.power)
_NP_FAST_OPS = _Ops(np.where, np.maximum, _fast_power)


def _tf_ops(tf: Any) -> _Ops:
    return _Ops(tf.where, tf.maximum, tf.pow)


# --- formulas shared by the numpy and TF twins (x may be an ndarray or a tensor) ----------------
# Each power is taken of a value clamped into its own branch, so the unused branch of `where`
# never makes a NaN, not even in a gradient.


def _decode(x: Any, ops: _Ops) -> Any:
    """sRGB-encoded [0, 1] -> linear light."""
    curve = ops.power((ops.maximum(x, SRGB_DECODE_KNEE) + 0.055) / 1.055, SRGB_GAMMA)
    return ops.where(x <= SRGB_DECODE_KNEE, x / 12.92, curve)


def _encode(x: Any, ops: _Ops) -> Any:
    """Linear light -> sRGB-encoded (not clipped)."""
    curve = 1.055 * ops.power(ops.maximum(x, SRGB_ENCODE_KNEE), 1 / SRGB_GAMMA) - 0.055
    return ops.where(x <= SRGB_ENCODE_KNEE, x * 12.92, curve)


def _lab_f(t: Any, ops: _Ops) -> Any:
    cube_root = ops.power(ops.maximum(t, LAB_EPSILON), 1 / 3)
    return ops.where(t > LAB_EPSILON, cube_root, (LAB_KAPPA * t + 16) / 116)


def _lab_f_inverse(f: Any, ops: _Ops) -> Any:
    cube = f * f * f
    return ops.where(cube > LAB_EPSILON, cube, (116 * f - 16) / LAB_KAPPA)


def _mix(m: list[list[float]], a: Any, b: Any, c: Any) -> tuple[Any, Any, Any]:
    x, y, z = (row[0] * a + row[1] * b + row[2] * c for row in m)
    return x, y, z


def _linear_to_lab(r: Any, g: Any, b: Any, ops: _Ops) -> tuple[Any, Any, Any]:
    fx, fy, fz = (_lab_f(t, ops) for t in _mix(_RGB_TO_XYZN, r, g, b))
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _lab_to_linear(lightness: Any, a: Any, b: Any, ops: _Ops) -> tuple[Any, Any, Any]:
    fy = (lightness + 16) / 116
    xyzn = (_lab_f_inverse(f, ops) for f in (fy + a / 500, fy, fy - b / 200))
    return _mix(_XYZN_TO_RGB, *xyzn)


# --- numpy --------------------------------------------------------------------------------------

_DECODE_LUT = _decode(np.arange(256) / 255.0, _NP_OPS)


def _chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, _CHUNK_PIXELS):
        yield slice(start, min(start + _CHUNK_PIXELS, n))


def _pixels(array: np.ndarray, name: str, dtype: type | None = np.uint8) -> np.ndarray:
    """`array` as (N, 3) pixels (a view when it is contiguous), after checking it."""
    if array.ndim == 0 or array.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 channels in its last axis, got shape {array.shape}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} must be {np.dtype(dtype).name}, got {array.dtype}")
    return array.reshape(-1, 3)


def _planes(pixels: np.ndarray, dtype: type) -> list[np.ndarray]:
    """The three channels of (N, 3) `pixels` as contiguous arrays: elementwise work on them runs
    several times faster than reductions and broadcasts over a length-3 axis."""
    return [pixels[:, i].astype(dtype) for i in range(3)]


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) sRGB -> uint8 (...) gray, bit-exactly PIL's `Image.convert("L")`."""
    rgb = np.asarray(rgb)
    pixels = _pixels(rgb, "rgb")
    out = np.empty(len(pixels), np.uint8)
    wr, wg, wb = LUMA_WEIGHTS_2_16
    for s in _chunks(len(pixels)):
        chunk = pixels[s].astype(np.uint32)
        luma = chunk[:, 0] * wr + chunk[:, 1] * wg + chunk[:, 2] * wb + (1 << 15)
        out[s] = luma >> 16
    return out.reshape(rgb.shape[:-1])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3), uint8 0..255 or float 0..1 -> float32 CIELab (L in [0, 100])."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 and not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"rgb must be uint8 (0..255) or float (0..1), got {rgb.dtype}")
    pixels = _pixels(rgb, "rgb", dtype=None)
    out = np.empty(pixels.shape, np.float32)
    for s in _chunks(len(pixels)):
        if rgb.dtype == np.uint8:
            linear = _DECODE_LUT[pixels[s]]
        else:
            linear = _decode(pixels[s].astype(np.float64), _NP_OPS)
        for i, channel in enumerate(_linear_to_lab(*_planes(linear, np.float64), _NP_OPS)):
            out[s, i] = channel
    return out.reshape(rgb.shape)


def lab_to_srgb(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """CIELab (..., 3) -> float32 sRGB, clipped into [0, 1] unless `clip` is False."""
    lab = np.asarray(lab)
    if not np.issubdtype(lab.dtype, np.floating):
        raise TypeError(f"lab must be float, got {lab.dtype}")
    pixels = _pixels(lab, "lab", dtype=None)
    out = np.empty(pixels.shape, np.float32)
    for s in _chunks(len(pixels)):
        linear = _lab_to_linear(*_planes(pixels[s], np.float32), _NP_FAST_OPS)
        for i, channel in enumerate(linear):
            out[s, i] = _encode(channel, _NP_FAST_OPS)
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(lab.shape)


# L* of every neutral (g, g, g): a table is both exact and the fastest path on huge photos.
_LIGHTNESS_LUT = srgb_to_lab(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))[:, 0]


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """uint8 gray (any shape) -> float32 L* of the neutral colour (g, g, g), same shape."""
    gray = np.asarray(gray)
    if gray.dtype != np.uint8:
        raise TypeError(f"gray must be uint8, got {gray.dtype}")
    return _LIGHTNESS_LUT[gray]


def keep_luminance(rgb: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Recolour `gray` (H, W) uint8 with the chroma of `rgb` (H, W, 3) uint8 -> (H, W, 3) uint8.

    The result's `grayscale()` equals `gray` exactly. Each pixel keeps the chroma `rgb - luma(rgb)`
    (luma with PIL's weights), scaled down only as far as needed to stay inside [0, 255].
    """
    rgb, gray = np.asarray(rgb), np.asarray(gray)
    pixels = _pixels(rgb, "rgb")
    if gray.dtype != np.uint8 or gray.shape != rgb.shape[:-1]:
        raise ValueError(
            f"gray must be uint8 of shape {rgb.shape[:-1]}, got {gray.dtype} {gray.shape}"
        )
    levels = gray.reshape(-1)
    out = np.empty_like(pixels)
    for s in _chunks(len(pixels)):
        r, g, b = _planes(pixels[s], np.float32)
        luma = _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b
        out[s] = _recolor(levels[s], r - luma, g - luma, b - luma)
    return out.reshape(rgb.shape)


# --- chroma: Y'CbCr with the weights of `grayscale` (ITU-R 601, as JPEG stores photos) -----------
# Cb and Cr here are centred on 0, in 0..255 units: B' - Y' = CB_RANGE Cb and R' - Y' = CR_RANGE Cr.
_LUMA = [w / (1 << 16) for w in LUMA_WEIGHTS_2_16]
CB_RANGE = 2 * (1 - _LUMA[2])
CR_RANGE = 2 * (1 - _LUMA[0])


def lab_chroma(gray: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cb, Cr (float32, `gray`'s shape) of the colour with the L* of uint8 gray level `gray` (any
    shape) and a*b* `ab` (gray's shape + 2), clipped into sRGB: the colour `recolor` puts back on
    a gray."""
    gray, ab = np.asarray(gray), np.asarray(ab)
    if gray.dtype != np.uint8 or ab.shape != (*gray.shape, 2):
        raise ValueError(
            f"gray must be uint8 and ab of shape {(*gray.shape, 2)}, got {gray.dtype}, {ab.shape}"
        )
    levels, flat_ab = gray.reshape(-1), ab.reshape(-1, 2)
    cb, cr = np.empty(levels.size, np.float32), np.empty(levels.size, np.float32)
    for s in _chunks(levels.size):
        lightness = _LIGHTNESS_LUT[levels[s]]
        linear = _lab_to_linear(lightness, flat_ab[s, 0], flat_ab[s, 1], _NP_FAST_OPS)
        red, green, blue = (np.clip(_encode(x, _NP_FAST_OPS), 0, 1) for x in linear)
        luma = _LUMA[0] * red + _LUMA[1] * green + _LUMA[2] * blue
        cb[s] = (blue - luma) * np.float32(255 / CB_RANGE)
        cr[s] = (red - luma) * np.float32(255 / CR_RANGE)
    return cb.reshape(gray.shape), cr.reshape(gray.shape)


def fit_chroma(
    gray: np.ndarray, cb: np.ndarray, cr: np.ndarray, brightest: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cb, Cr scaled down only as far as gray level `gray` (0..255) + the chroma needs to stay
    inside [0, 255] in every channel: the rule of `recolor`, without rounding. With `brightest`,
    every level from `gray` (the darkest) to `brightest` must stay inside (the pixels one chroma
    sample covers): each channel is linear in the level, so its two ends are enough."""
    high = None if brightest is None else np.asarray(brightest, np.float32)
    scale = _fit_scale(np.asarray(gray, np.float32), *_offsets(cb, cr), high=high)
    return cb * scale, cr * scale


def recolor(gray: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """uint8 gray (H, W) with the chroma Cb, Cr (float, (H, W)) -> uint8 sRGB (H, W, 3) whose
    `grayscale()` equals `gray` exactly: each pixel is its gray plus the chroma, scaled down only
    as far as needed to stay inside [0, 255] (as `keep_luminance` does)."""
    gray = np.asarray(gray)
    if gray.dtype != np.uint8 or np.shape(cb) != gray.shape or np.shape(cr) != gray.shape:
        raise ValueError(
            f"gray must be uint8 and Cb, Cr of its shape, got {gray.dtype} {gray.shape}, "
            f"{np.shape(cb)}, {np.shape(cr)}"
        )
    levels = gray.reshape(-1)
    flat_cb, flat_cr = np.reshape(cb, -1), np.reshape(cr, -1)
    out = np.empty((levels.size, 3), np.uint8)
    for s in _chunks(levels.size):
        out[s] = _recolor(levels[s], *_offsets(flat_cb[s], flat_cr[s]))
    return out.reshape(*gray.shape, 3)


def ycbcr_matrix_chroma(kr: float, kb: float) -> np.ndarray:
    """The 2x2 matrix that turns this module's Cb, Cr into those of the Y'CbCr matrix with luma
    weights `kr`, `kb` (BT.709: 0.2126, 0.0722), for the same R'G'B' colour: the output's own
    colour model when a video is tagged with another matrix than `grayscale`'s."""
    # Unit Cb and Cr as R'G'B' offsets (zero luma by our weights), then into the other matrix.
    offsets = np.array(
        [_offsets(np.float64(1), np.float64(0)), _offsets(np.float64(0), np.float64(1))]
    )
    luma = offsets @ np.array([kr, 1 - kr - kb, kb])
    to_cb = (offsets[:, 2] - luma) / (2 * (1 - kb))
    to_cr = (offsets[:, 0] - luma) / (2 * (1 - kr))
    return np.stack([to_cb, to_cr])


def _offsets(cb: np.ndarray, cr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cb, Cr -> the R', G', B' offsets from the gray level (their luma is zero)."""
    r = np.float32(CR_RANGE) * cr
    b = np.float32(CB_RANGE) * cb
    g = (r * np.float32(-_LUMA[0]) - b * np.float32(_LUMA[2])) / np.float32(_LUMA[1])
    return r, g, b


def _fit_scale(
    level: np.ndarray, r: np.ndarray, g: np.ndarray, b: np.ndarray, high: np.ndarray | None = None
) -> np.ndarray:
    # The offsets have zero luma, so level + scale * offset keeps the level; scale is the largest
    # in [0, 1] that keeps every channel inside [0, 255] (from `level` up to `high`, if given).
    # Since max(offsets) >= 0 >= min(offsets), only the largest and smallest channels can leave.
    tiny = np.float32(1e-6)
    above = np.maximum(np.maximum(np.maximum(r, g), b), tiny)
    below = np.maximum(-np.minimum(np.minimum(r, g), b), tiny)
    high = level if high is None else high
    return np.minimum(np.minimum((255 - high) / above, level / below), 1)


def _recolor(levels: np.ndarray, r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 levels + R'G'B' offsets of zero luma -> (N, 3) uint8 pixels of exactly those levels."""
    level = levels.astype(np.float32)
    scale = _fit_scale(level, r, g, b)
    out = np.empty((len(levels), 3), np.uint8)
    for i, offset in enumerate((r, g, b)):
        offset *= scale
        offset += level
        out[:, i] = np.clip(np.rint(offset, out=offset), 0, 255)
    _fix_rounding(out, levels)
    return out


def _fix_rounding(out: np.ndarray, levels: np.ndarray) -> None:
    """Nudge the few pixels whose rounded channels missed their gray level, in place."""
    bad = np.flatnonzero(grayscale(out) != levels)
    # Blue first: its weight is the smallest, so that nudge changes the colour least.
    for channels in ([2], [0], [1], [0, 1, 2]):
        if bad.size == 0:
            return
        step = np.sign(levels[bad].astype(np.int16) - grayscale(out[bad]))
        trial = out[bad].astype(np.int16)
        trial[:, channels] += step[:, None]
        trial = np.clip(trial, 0, 255).astype(np.uint8)
        fixed = grayscale(trial) == levels[bad]
        out[bad[fixed]] = trial[fixed]
        bad = bad[~fixed]
    out[bad] = levels[bad, None]  # the neutral of a level always has exactly that luma


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M3 of uint8 sRGB (..., 3), on 0..255 values."""
    rgb = np.asarray(rgb)
    pixels = _pixels(rgb, "rgb")
    if len(pixels) == 0:
        raise ValueError("colorfulness of an empty image")
    sums = np.zeros(4)
    for s in _chunks(len(pixels)):
        r, g, b = _planes(pixels[s], np.float64)
        rg = r - g
        yb = 0.5 * (r + g) - b
        sums += (rg.sum(), rg @ rg, yb.sum(), yb @ yb)
    mean_rg, mean_sq_rg, mean_yb, mean_sq_yb = sums / len(pixels)
    variance = max(mean_sq_rg - mean_rg**2, 0.0) + max(mean_sq_yb - mean_yb**2, 0.0)
    return float(np.sqrt(variance) + 0.3 * np.hypot(mean_rg, mean_yb))


# --- TensorFlow twins (graph-safe: usable in tf.function and tf.data) ---------------------------


def _tf_float(tf: Any, x: Any) -> Any:
    """`x` as a float tensor: float64 stays float64, anything else is computed in float32."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype == tf.float64 else tf.cast(x, tf.float32)


def tf_srgb_to_lab(rgb: Any) -> Any:
    """Tensor twin of `srgb_to_lab`: sRGB (..., 3) float 0..1 (or uint8) -> CIELab."""
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()

    ops = _tf_ops(tf)
    rgb = tf.convert_to_tensor(rgb)
    if rgb.dtype == tf.uint8:
        # A table, as in the numpy twin: exact, and cheaper than a power per channel.
        linear = tf.gather(tf.constant(_DECODE_LUT, tf.float32), tf.cast(rgb, tf.int32))
    else:
        linear = _decode(_tf_float(tf, rgb), ops)
    return tf.stack(_linear_to_lab(*tf.unstack(linear, num=3, axis=-1), ops), axis=-1)


def tf_lab_to_srgb(lab: Any, clip: bool = True) -> Any:
    """Tensor twin of `lab_to_srgb`: CIELab (..., 3) -> sRGB, clipped into [0, 1] unless told."""
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()

    ops = _tf_ops(tf)
    linear = tf.stack(_lab_to_linear(*tf.unstack(_tf_float(tf, lab), num=3, axis=-1), ops), -1)
    rgb = _encode(linear, ops)
    return tf.clip_by_value(rgb, 0.0, 1.0) if clip else rgb


def tf_gray_to_lightness(gray: Any) -> Any:
    """Tensor twin of `gray_to_lightness`: gray uint8 or float 0..255 (any shape) -> L*, float32.

    uint8 grays are looked up in the numpy twin's table; float grays (non-integer ones too) take
    the formula.
    """
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()

    gray = tf.convert_to_tensor(gray)
    if gray.dtype == tf.uint8:
        return tf.gather(tf.constant(_LIGHTNESS_LUT, tf.float32), tf.cast(gray, tf.int32))
    ops = _tf_ops(tf)
    luminance = _decode(tf.cast(gray, tf.float32) / 255.0, ops)
    return 116 * _lab_f(luminance, ops) - 16
