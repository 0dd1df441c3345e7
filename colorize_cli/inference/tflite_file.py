"""A .tflite file read by hand from its flatbuffer bytes, without an interpreter: its op codes,
operators, integer constants, metadata and tensor lifetimes, for model_checks.py and backends.py.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from colorize_cli.errors import ModelError

# TFLite builtin operator codes (schema.fbs BuiltinOperator) by name: the ops TfliteFile names, and
# the TFLite allow-list of model_checks.py.
TFLITE_OPS = {
    "ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
    "DEQUANTIZE": 6, "LOGISTIC": 14, "MUL": 18, "RELU": 19, "RELU6": 21, "RESHAPE": 22,
    "RESIZE_BILINEAR": 23, "TANH": 28, "PAD": 34, "MEAN": 40, "SUB": 41, "DIV": 42,
    "STRIDED_SLICE": 45, "MAXIMUM": 55, "MINIMUM": 57, "NEG": 59, "RSQRT": 76, "SHAPE": 77,
    "PACK": 83, "SQUARE": 92, "LEAKY_RELU": 98, "QUANTIZE": 114,
}  # fmt: skip
# The options of the TFLite ops a computed size goes through that change its value (schema.fbs
# BuiltinOptions type, then each option's field number and flatbuffers type).
_TFLITE_OPTIONS = {
    "MUL": (21, {"fused_activation_function": (0, "Int8Flags")}),
    "PACK": (59, {"axis": (1, "Int32Flags")}),
    "STRIDED_SLICE": (32, {
        "begin_mask": (0, "Int32Flags"), "end_mask": (1, "Int32Flags"),
        "ellipsis_mask": (2, "Int32Flags"), "new_axis_mask": (3, "Int32Flags"),
        "shrink_axis_mask": (4, "Int32Flags"), "offset": (5, "BoolFlags"),
    }),
}  # fmt: skip


class TfliteOp(NamedTuple):
    """An operator of a TFLite subgraph as TfliteFile reads it from the flatbuffer: its op
    name (TFLITE_OPS), tensor indices, and the options that change a size's value (MUL's
    `fused_activation_function`, PACK's `axis`, STRIDED_SLICE's masks and `offset`)."""

    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, int]


class TfliteFile:
    """A .tflite flatbuffer read by hand (the generated schema module takes longer to import
    than the rest of a one-photo apply's model loading), once per open: the op codes, the
    subgraphs, their operators and the buffer table are read on first use and kept for the
    checks that follow (read_tflite). Field numbers are schema.fbs's:
    Model.operator_codes 1, .subgraphs 2, .buffers 4, .metadata 6; OperatorCode
    .deprecated_builtin_code 0 and .builtin_code 3 (the larger is the op); SubGraph.tensors 0,
    .operators 3; Operator.opcode_index 0, .inputs 1, .outputs 2, .builtin_options_type 3,
    .builtin_options 4; Tensor.shape 0, .type 1, .buffer 2; Buffer.data 0, .offset 1, .size 2;
    Metadata.name 0, .buffer 1. Offsets from a damaged file point anywhere: a read out of the
    file raises, and the callers turn that into a ModelError."""

    def __init__(self, data: bytes) -> None:
        from flatbuffers import number_types, table

        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("no TFL3 identifier")
        self.data, self.types, self._table = data, number_types, table.Table
        self.model = table.Table(data, int.from_bytes(data[:4], "little"))

    @staticmethod
    def field(tab: Any, index: int) -> int:
        return tab.Offset(4 + 2 * index)

    def scalar(self, tab: Any, index: int, flags: str) -> int:
        """A scalar field, of the flatbuffers type `flags` ("Int32Flags")."""
        return int(tab.GetSlot(4 + 2 * index, 0, getattr(self.types, flags)))

    def tables(self, tab: Any, index: int) -> list[Any]:
        offset = self.field(tab, index)
        if not offset:
            return []
        start, length = tab.Vector(offset), tab.VectorLen(offset)
        if start + 4 * length > len(self.data):  # a forged length would loop for ever
            raise ValueError("a table vector runs past the end of the file")
        return [self._table(self.data, tab.Indirect(start + 4 * i)) for i in range(length)]

    def table(self, tab: Any, index: int) -> Any | None:
        """A table field (or a union's value: Operator.builtin_options)."""
        offset = self.field(tab, index)
        return self._table(self.data, tab.Indirect(offset + tab.Pos)) if offset else None

    def vector(self, tab: Any, index: int, dtype: str) -> np.ndarray:
        offset = self.field(tab, index)
        if not offset:
            return np.zeros(0, dtype)
        start, length = tab.Vector(offset), tab.VectorLen(offset)
        return np.frombuffer(self.data, dtype, count=length, offset=start)

    @functools.cached_property
    def op_codes(self) -> list[int]:
        return [
            max(self.scalar(code, 0, "Int8Flags"), self.scalar(code, 3, "Int32Flags"))
            for code in self.tables(self.model, 1)
        ]

    @functools.cached_property
    def subgraphs(self) -> list[Any]:
        return self.tables(self.model, 2)

    @functools.cached_property
    def _buffers(self) -> list[Any]:
        return self.tables(self.model, 4)

    def buffer(self, index: int) -> memoryview:
        """Buffer `index`'s bytes, uncopied: its data vector, or in a file over 2 GB a range
        after the flatbuffer (Buffer.offset and .size)."""
        buffer = self._buffers[index]
        offset, size = self.scalar(buffer, 1, "Uint64Flags"), self.scalar(buffer, 2, "Uint64Flags")
        if offset <= 1:
            vector = self.field(buffer, 0)
            if not vector:
                return memoryview(b"")
            offset, size = buffer.Vector(vector), buffer.VectorLen(vector)
        if offset + size > len(self.data):
            raise ValueError("a buffer runs past the end of the file")
        return memoryview(self.data)[offset : offset + size]

    def ops(self, graph: int) -> list[TfliteOp]:
        """Subgraph `graph`'s operators, named as TFLITE_OPS names them, with the options that
        change a size's value. The main subgraph's are read once (the size check and tflite_lives
        share them); another's are not kept: a hostile file may list one subgraph many times."""
        return self._main_ops if graph == 0 else self._read_ops(self.subgraphs[graph])

    @functools.cached_property
    def _main_ops(self) -> list[TfliteOp]:
        return self._read_ops(self.subgraphs[0])

    def _read_ops(self, subgraph: Any) -> list[TfliteOp]:
        codes, names = self.op_codes, {code: name for name, code in TFLITE_OPS.items()}
        found = []
        for op in self.tables(subgraph, 3):
            name = names.get(codes[self.scalar(op, 0, "Uint32Flags")], "")
            kind, fields = _TFLITE_OPTIONS.get(name, (0, {}))
            options = self.table(op, 4) if self.scalar(op, 3, "Uint8Flags") == kind else None
            values = {
                key: self.scalar(options, index, flags) if options else 0
                for key, (index, flags) in fields.items()
            }
            inputs, outputs = self.vector(op, 1, "<i4"), self.vector(op, 2, "<i4")
            found.append(TfliteOp(name, inputs.tolist(), outputs.tolist(), values))
        return found

    def constants(self, graph: int) -> Callable[[int, int], np.ndarray | None]:
        """The integer constant a tensor of subgraph `graph` holds in the file, if it has at most
        `limit` values (None otherwise)."""
        tensors = self.tables(self.subgraphs[graph], 0)

        def constant(tensor: int, limit: int) -> np.ndarray | None:
            if not 0 <= tensor < len(tensors):
                return None
            table = tensors[tensor]
            # TensorType INT32 and INT64: what sizes and pads are made of
            dtype = {2: "<i4", 4: "<i8"}.get(self.scalar(table, 1, "Int8Flags"))
            data = self.buffer(self.scalar(table, 2, "Uint32Flags"))
            shape = self.vector(table, 0, "<i4")
            if dtype is None or not len(data) or len(data) > 8 * limit:
                return None
            values = np.frombuffer(data, dtype)
            return values.reshape(shape) if values.size == math.prod(shape) else None

        return constant


def damaged(path: Path) -> ModelError:
    """The error of a .tflite whose flatbuffer does not read (offsets from a damaged file point
    anywhere)."""
    return ModelError("not a loadable TFLite model: damaged or truncated", path)


def read_tflite(data: bytes, path: Path) -> TfliteFile:
    """A .tflite file's flatbuffer, read once for every check (model_checks.py) and reading
    below; ModelError unless it has the TFL3 identifier."""
    try:
        return TfliteFile(data)
    except Exception:
        raise damaged(path) from None


def tflite_metadata(file: TfliteFile, path: Path, name: str) -> bytes:
    """The metadata entry `name` of a .tflite flatbuffer (b"" if none), read without building an
    interpreter."""
    try:
        for entry in file.tables(file.model, 6):
            offset = file.field(entry, 0)
            if offset and entry.String(offset + entry.Pos) == name.encode():
                return bytes(file.buffer(file.scalar(entry, 1, "Uint32Flags")))
    except Exception:  # offsets from a damaged file point anywhere
        raise damaged(path) from None
    return b""


def tflite_op_codes(file: TfliteFile, path: Path) -> set[int]:
    """The builtin operator codes a .tflite flatbuffer lists (a custom op is CUSTOM, 32)."""
    try:
        return set(file.op_codes)
    except Exception:
        raise damaged(path) from None


def tflite_lives(file: TfliteFile, path: Path) -> list[tuple[int, int, int]]:
    """(tensor, first op, last op) of every tensor of a .tflite's main subgraph that is not a
    constant of the file: an input from the first op, an op's output from that op to the last op
    that reads it (the subgraph's outputs to the end). Operators run in the file's order."""
    try:
        graph = file.subgraphs[0]
        ops = file.ops(0)
        first = dict.fromkeys(file.vector(graph, 1, "<i4").tolist(), 0)
        last = dict.fromkeys(file.vector(graph, 2, "<i4").tolist(), len(ops))
    except Exception:
        raise damaged(path) from None
    for index, op in enumerate(ops):
        for tensor in op.outputs:
            first.setdefault(tensor, index)
        for tensor in op.inputs:
            last[tensor] = max(last.get(tensor, index), index)
    return [(tensor, start, max(start, last.get(tensor, start))) for tensor, start in first.items()]
