"""How large a tensor an untrusted model may ask for: the sizes of its resizes and pads, bounded so
that a file of a few hundred bytes cannot ask for 40 GB (a Resize to 100000 x 100000), read from
the graph before any runtime sees it (model_checks.py calls it once the ops are allowed). What its
tensors may hold at once while it runs is tensor_memory.py's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from colorize_cli.inference.tflite_file import TfliteOp

# A resize scales each side of its own input by at most MAX_RESIZE, and the whole input by at
# most MAX_RESIZE_GROWTH (8 x 8 on a photo's two sides); `colorize export` writes 2 a side, as
# the input's own shape times constants (`tf.shape(x)[1:3] * 2`). Constant scales are bounded
# the same way; a constant output size is refused, since it cannot be held against the input:
# 100000 x 100000 is 10^10 times a 1 x 1 input. A pad adds at most MAX_PAD on a side (the
# exporter writes none; a 31 x 31 kernel's "same" border is 15).
MAX_RESIZE = 8
MAX_RESIZE_GROWTH = 64
MAX_PAD = 32
_MAX_RANK = 8  # the longest shape vector followed
_MAX_DEPTH = 32  # how many ops back a size is followed


class _Side(NamedTuple):
    """An entry of a shape vector that a graph computes: `factor` times side `axis` of tensor
    `tensor` (a name in ONNX, an index in TFLite), or the constant `factor` if `tensor` is None."""

    tensor: str | int | None
    axis: int
    factor: float


class _Ints(NamedTuple):
    """A small integer tensor a graph computes, entry by entry: a scalar or a vector."""

    sides: tuple[_Side, ...]
    scalar: bool


class _ShapeOf(NamedTuple):
    """The shape of `tensor` from axis `start` (to `end`): its length is known only at run time."""

    tensor: str | int
    start: int = 0
    end: int | None = None


_Value = _Ints | _ShapeOf | None


def _constant(values: np.ndarray | None) -> _Value:
    """A constant scalar or short vector; None for anything else."""
    if values is None or values.ndim > 1 or values.size > _MAX_RANK:
        return None
    if values.dtype.kind not in "iuf":
        return None
    return _Ints(tuple(_Side(None, 0, float(v)) for v in values.reshape(-1)), values.ndim == 0)


def _fixed(value: _Value) -> list[int] | None:
    """The integers of a constant (indices, slice bounds); None if any entry is computed."""
    if not isinstance(value, _Ints) or any(side.tensor is not None for side in value.sides):
        return None
    factors = [side.factor for side in value.sides]
    return [int(f) for f in factors] if all(math.isfinite(f) for f in factors) else None


def _pick(value: _Value, indices: list[int], scalar: bool) -> _Value:
    """Entries `indices` of a vector (Gather, a strided slice)."""
    if isinstance(value, _ShapeOf):
        axes = [value.start + i for i in indices]
        end = _MAX_RANK if value.end is None else min(value.end, _MAX_RANK)
        if min(indices, default=0) < 0 or max(axes, default=0) >= end:
            return None  # counted from an end known only at run time
        return _Ints(tuple(_Side(value.tensor, axis, 1.0) for axis in axes), scalar)
    if value is None or value.scalar:
        return None
    if not all(-len(value.sides) <= i < len(value.sides) for i in indices):
        return None
    return _Ints(tuple(value.sides[i] for i in indices), scalar)


def _range(value: _Value, start: int, end: int) -> _Value:
    """value[start:end], as ONNX Slice and TFLite STRIDED_SLICE count (negative from the end)."""
    if isinstance(value, _ShapeOf):
        if not 0 <= start <= end <= _MAX_RANK:
            return None
        return _pick(value, list(range(start, end)), False)
    if value is None or value.scalar:
        return None
    return _Ints(value.sides[start:end], False)


def _times(a: _Value, b: _Value) -> _Value:
    """a * b where one of them is constant (a side times a side has no bound)."""
    if not isinstance(a, _Ints) or not isinstance(b, _Ints):
        return None
    if any(side.tensor is not None for side in b.sides):
        a, b = b, a
    if any(side.tensor is not None for side in b.sides):
        return None
    sides, factors = a.sides, b.sides
    if len(factors) == 1:
        factors = factors * len(sides)
    elif len(sides) == 1 and a.scalar:
        sides = sides * len(factors)
    if len(sides) != len(factors):
        return None
    product = (s._replace(factor=s.factor * f.factor) for s, f in zip(sides, factors, strict=True))
    return _Ints(tuple(product), a.scalar and b.scalar)


def _joined(values: list[_Value], scalars: bool) -> _Value:
    """Vectors one after the other (ONNX Concat on axis 0), or scalars stacked (TFLite PACK)."""
    parts = [v for v in values if isinstance(v, _Ints) and v.scalar == scalars]
    sides = tuple(side for part in parts for side in part.sides)
    if not parts or len(parts) != len(values) or len(sides) > _MAX_RANK:
        return None
    return _Ints(sides, False)


def _growth_problem(op: str, factors: list[float]) -> str | None:
    for factor in factors:
        if not (math.isfinite(factor) and factor > 0):
            return f"{op} by a scale of {factor:g}"
    worst, growth = max(factors, default=1.0), math.prod(max(f, 1.0) for f in factors)
    if worst > MAX_RESIZE or growth > MAX_RESIZE_GROWTH:
        return (
            f"{op} by {worst:g} on a side ({growth:g} in all), over the bound of {MAX_RESIZE} a "
            f"side and {MAX_RESIZE_GROWTH} in all"
        )
    return None


def _size_problem(op: str, size: _Value, own: list[tuple[str | int, int]]) -> str | None:
    """What is wrong with a resize to `size`: it must be its input's own sides `own` (as the
    size's entries name them) times bounded factors."""
    if isinstance(size, _Ints) and size.sides and all(s.tensor is None for s in size.sides):
        shape = "x".join(f"{side.factor:g}" for side in size.sides)
        return (
            f"{op} to a constant size ({shape}): a resize may only scale its own input, by at "
            f"most {MAX_RESIZE} a side"
        )
    if (
        not isinstance(size, _Ints)
        or size.scalar
        or [(side.tensor, side.axis) for side in size.sides] != own
    ):
        return f"{op} to a size computed from something other than its input's own size"
    return _growth_problem(op, [side.factor for side in size.sides])


def _pad_problem(op: str, pads: np.ndarray | None) -> str | None:
    """What is wrong with a pad by `pads` (None: not a constant of the file)."""
    if pads is None or pads.dtype.kind not in "iu":
        return f"{op} by pads that are not constant integers in the file"
    worst = int(pads.max(initial=0))
    if worst > MAX_PAD:
        return f"{op} of {worst} on a side, over the bound of {MAX_PAD}"
    return None


# ONNX -------------------------------------------------------------------------------------------


def onnx_size_problem(model: Any) -> str | None:
    """What is wrong with the sizes of an ONNX model (a ModelProto whose ops are all allowed):
    the first Resize or Pad over the bounds, in words; None if there is none."""
    return _OnnxSizes(model).problem()


class _OnnxSizes:
    """The resizes and pads of an ONNX graph. A size computed at run time is followed back
    through the ops tf2onnx writes for `tf.shape(x)[1:3] * 2` (Shape, Gather, Slice, Squeeze,
    Unsqueeze, Mul by a constant, Cast, Concat), scalars and vectors told apart so that an entry
    is never taken for a row; sides are followed through Transpose."""

    def __init__(self, model: Any) -> None:
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.nodes = list(graph.node)
        self.producers = {name: node for node in self.nodes for name in node.output}
        self.inputs = {i.name for i in graph.input}
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}
        self.memo: dict[str, _Value] = {}

    def problem(self) -> str | None:
        for node in self.nodes:
            found = None
            if node.op_type == "Resize":
                found = self._resize_problem(node)
            elif node.op_type == "Pad" and self.opset < 11:
                found = _pad_problem("Pad", np.array(_attributes(node).get("pads", [])))
            elif node.op_type == "Pad":
                found = _pad_problem("Pad", self._array(_input(node, 1), 2 * _MAX_RANK))
            if found:
                return found
        return None

    def _resize_problem(self, node: Any) -> str | None:
        attributes = _attributes(node)
        policy = attributes.get("keep_aspect_ratio_policy", b"stretch")
        if "axes" in attributes or policy != b"stretch":
            return "Resize with axes or a kept aspect ratio, which `colorize export` never writes"
        scales = _input(node, 1 if self.opset < 11 else 2)
        sizes = "" if self.opset < 11 else _input(node, 3)
        if scales:
            value = _constant(self._array(scales, _MAX_RANK))
            if not isinstance(value, _Ints):
                return "Resize by scales that are not constants in the file"
            found = _growth_problem("Resize", [side.factor for side in value.sides])
            if found:
                return found
        if not sizes:
            return None  # a Resize with neither is refused by the runtime
        size = self._value(sizes)
        if not isinstance(size, _Ints):
            return _size_problem("Resize", size, [])
        sides = tuple(
            side if side.tensor is None else side._replace(tensor=tensor, axis=axis)
            for side in size.sides
            for tensor, axis in [self._source(str(side.tensor), side.axis)]
        )
        own = [self._source(_input(node, 0), axis) for axis in range(len(sides))]
        return _size_problem("Resize", size._replace(sides=sides), own)

    def _source(self, tensor: str, axis: int) -> tuple[str, int]:
        """The tensor and axis that side `axis` of `tensor` is, followed through transposes."""
        for _ in range(_MAX_DEPTH):
            node = self.producers.get(tensor)
            if node is None or node.op_type not in ("Transpose", "Identity"):
                break
            if node.op_type == "Transpose":
                perm = list(_attributes(node).get("perm", []))
                if not 0 <= axis < len(perm):
                    break
                axis = perm[axis]
            tensor = _input(node, 0)
        return tensor, axis

    def _array(self, name: str, limit: int) -> np.ndarray | None:
        """The initializer `name` if it is one of at most `limit` values and no graph input
        (which could be fed another value)."""
        tensor = self.initializers.get(name)
        if tensor is None or name in self.producers or name in self.inputs:
            return None
        if math.prod(tensor.dims) > limit:
            return None
        from onnx import numpy_helper

        return numpy_helper.to_array(tensor)

    def _value(self, name: str, depth: int = 0) -> _Value:
        if name not in self.memo:
            self.memo[name] = None  # while it is worked out: a cycle is unknown
            node = self.producers.get(name)
            if node is None:
                self.memo[name] = _constant(self._array(name, _MAX_RANK))
            elif depth < _MAX_DEPTH:
                self.memo[name] = self._evaluate(node, depth + 1)
        return self.memo[name]

    def _evaluate(self, node: Any, depth: int) -> _Value:
        op, attributes = node.op_type, _attributes(node)

        def value(index: int) -> _Value:
            name = _input(node, index)
            return self._value(name, depth) if name else None

        if op == "Shape":
            start, end = attributes.get("start", 0), attributes.get("end")
            if start < 0 or (end is not None and end < 0):
                return None
            return _ShapeOf(_input(node, 0), start, end)
        if op in ("Identity", "Cast"):
            return value(0)
        if op in ("Squeeze", "Unsqueeze"):
            found = value(0)
            axes = list(attributes["axes"]) if "axes" in attributes else _fixed(value(1))
            if not isinstance(found, _Ints) or axes not in ([0], [-1], None):
                return None
            if axes is None and _input(node, 1):
                return None  # axes computed at run time
            if op == "Unsqueeze" and found.scalar and axes is not None:
                return found._replace(scalar=False)
            if op == "Squeeze" and not found.scalar and len(found.sides) == 1:
                return found._replace(scalar=True)
            return None
        if op == "Gather":
            indices = value(1)
            picked = _fixed(indices)
            if attributes.get("axis", 0) != 0 or not isinstance(indices, _Ints) or picked is None:
                return None
            return _pick(value(0), picked, indices.scalar)
        if op == "Slice":
            starts, ends = _fixed(value(1)), _fixed(value(2))
            if starts is None or ends is None or len(starts) != 1 or len(ends) != 1:
                return None
            if (_input(node, 3) and _fixed(value(3)) not in ([0], [-1])) or (
                _input(node, 4) and _fixed(value(4)) != [1]
            ):
                return None
            return _range(value(0), starts[0], ends[0])
        if op == "Concat" and attributes.get("axis") in (0, -1):
            return _joined([value(i) for i in range(len(node.input))], scalars=False)
        if op == "Mul":
            return _times(value(0), value(1))
        return None


def _input(node: Any, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


# TFLite -----------------------------------------------------------------------------------------


def tflite_size_problem(
    ops: list[TfliteOp], constant: Callable[[int, int], np.ndarray | None]
) -> str | None:
    """What is wrong with the sizes of a TFLite subgraph: the first RESIZE_BILINEAR or PAD over
    the bounds, in words; None if there is none. `constant(tensor, limit)` is the integer
    constant a tensor holds in the file if it has at most `limit` values, else None. A computed
    size is followed back through what the converter writes for `tf.shape(x)[1] * 2`: SHAPE,
    STRIDED_SLICE, MUL by a constant, PACK."""
    producers = {output: op for op in ops for output in op.outputs}
    memo: dict[int, _Value] = {}

    def value(tensor: int, depth: int = 0) -> _Value:
        if tensor not in memo:
            memo[tensor] = None  # while it is worked out: a cycle is unknown
            if tensor not in producers:
                memo[tensor] = _constant(constant(tensor, _MAX_RANK))
            elif depth < _MAX_DEPTH:
                memo[tensor] = _tflite_value(producers[tensor], lambda t: value(t, depth + 1))
        return memo[tensor]

    for op in ops:
        found = None
        if op.name == "RESIZE_BILINEAR" and len(op.inputs) >= 2:
            own = [(op.inputs[0], 1), (op.inputs[0], 2)]
            found = _size_problem(op.name, value(op.inputs[1]), own)
        elif op.name == "PAD" and len(op.inputs) >= 2:
            pads = op.inputs[1]
            found = _pad_problem(
                op.name, None if pads in producers else constant(pads, 2 * _MAX_RANK)
            )
        if found:
            return found
    return None


def _tflite_value(op: TfliteOp, value: Callable[[int], _Value]) -> _Value:
    args, options = op.inputs, op.options
    if op.name == "SHAPE" and len(args) == 1:
        return _ShapeOf(args[0])
    if op.name == "MUL" and len(args) == 2 and not options.get("fused_activation_function"):
        return _times(value(args[0]), value(args[1]))
    if op.name == "PACK" and not options.get("axis"):
        return _joined([value(arg) for arg in args], scalars=True)
    if op.name != "STRIDED_SLICE" or len(args) != 4:
        return None
    begin, end, strides = (_fixed(value(arg)) for arg in args[1:])
    masks = [options.get(f"{name}_mask", 0) for name in ("begin", "end", "shrink_axis")]
    if (
        begin is None
        or end is None
        or len(begin) != 1
        or len(end) != 1
        or strides != [1]
        or options.get("ellipsis_mask")
        or options.get("new_axis_mask")
        or masks[1]  # to the end: a length known only at run time
        or any(mask & ~1 for mask in masks)
    ):
        return None
    start = 0 if masks[0] else begin[0]
    stop = start + 1 if masks[2] else start + end[0] if options.get("offset") else end[0]
    picked = _range(value(args[0]), start, stop)
    if not masks[2]:
        return picked
    if isinstance(picked, _Ints) and len(picked.sides) == 1:
        return picked._replace(scalar=True)
    return None
