"""What an untrusted model file may hold before any runtime sees it: a bounded regular file whose
ops are all ones `colorize export` writes (an allow-list per format), asking for bounded sizes
(model_sizes.py). Read from the file's bytes; a file that breaks a rule is a one-line ModelError.
"""

from __future__ import annotations

import functools
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from colorize_cli.errors import ModelError, UsageError, one_line
from colorize_cli.fsutil import NOT_REGULAR, UnsafeFileError, open_regular, os_reason
from colorize_cli.inference.model_sizes import TfliteOp, onnx_size_problem, tflite_size_problem

# The ops a model may use, per format: those `colorize export` writes for every preset, automatic
# and hint, float32, float16 and int8 (docs/export.md; tests/test_export.py checks the lists
# against fresh exports), plus a few plain arithmetic siblings. Anything else is refused before
# the runtime sees the graph: file I/O (tf.io, tf.data, tf.print to a file), Python calls,
# control flow (an ONNX Loop of 2**62 iterations, a TFLite WHILE that never ends), custom ops,
# and ops that make tensors of any size (Expand, Tile, ConstantOfShape; TILE, BROADCAST_TO).
ONNX_OPS = frozenset(
    {"Add", "AveragePool", "Cast", "Clip", "Concat", "Conv", "Div", "Gather", "Identity"}
    | {"LeakyRelu", "Max", "Min", "Mul", "Neg", "Pad", "Reciprocal", "ReduceMean", "Relu"}
    | {"Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Sqrt", "Squeeze", "Sub", "Tanh"}
    | {"Transpose", "Unsqueeze"}
)
# TFLite builtin operator codes (schema.fbs BuiltinOperator) by name.
TFLITE_OPS = {
    "ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
    "DEQUANTIZE": 6, "LOGISTIC": 14, "MUL": 18, "RELU": 19, "RELU6": 21, "RESHAPE": 22,
    "RESIZE_BILINEAR": 23, "TANH": 28, "PAD": 34, "MEAN": 40, "SUB": 41, "DIV": 42,
    "STRIDED_SLICE": 45, "MAXIMUM": 55, "MINIMUM": 57, "NEG": 59, "RSQRT": 76, "SHAPE": 77,
    "PACK": 83, "SQUARE": 92, "LEAKY_RELU": 98, "QUANTIZE": 114,
}  # fmt: skip
SAVEDMODEL_OPS = frozenset(
    {"AddV2", "AvgPool", "BiasAdd", "ConcatV2", "Const", "Conv2D", "DepthwiseConv2dNative"}
    | {"Identity", "LeakyRelu", "Maximum", "Mean", "Minimum", "Mul", "Neg", "NoOp", "Pack", "Pad"}
    | {"RealDiv", "Relu", "Relu6", "Reshape", "ResizeBilinear", "Rsqrt", "Shape", "Sigmoid"}
    | {"Sqrt", "SquaredDifference", "Squeeze", "StopGradient", "StridedSlice", "Sub", "Tanh"}
    # the function calls and variables of a TF2 SavedModel
    | {"Placeholder", "PartitionedCall", "StatefulPartitionedCall", "VarHandleOp"}
    | {"ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp"}
)
# Only in the checkpoint functions the saver_def names (`_traced_save` / `_traced_restore`), which
# TensorFlow 2's loader never runs (it restores the variables with its own ops).
CHECKPOINT_OPS = frozenset(
    {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin"}
    | {"StaticRegexFullMatch", "Select", "DisableCopyOnRead"}
)
# Names for the refusal message of codes outside TFLITE_OPS that a hostile file would use.
_TFLITE_NAMES = {31: "CALL", 32: "CUSTOM", 118: "IF", 119: "WHILE", 129: "CALL_ONCE"}
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
# A flatbuffer or protobuf addresses at most 2 GiB: anything larger is not read into memory.
MAX_MODEL_BYTES = 2**31


def read_model(path: Path, limit: int = MAX_MODEL_BYTES) -> bytes:
    """An untrusted model file's bytes: a regular file of at most `limit` bytes. Read as its
    size says, then one byte more for a file that grew: `read(limit + 1)` costs 10 ms more on a
    20 MB model (a buffer of the limit's size), a tenth of a one-photo apply's model loading."""
    try:
        with open_regular(path) as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(size) if size <= limit else b""
            if size > limit or file.read(1):
                raise UnsafeFileError(f"file too large (over the limit of {limit} bytes)")
            return data
    except FileNotFoundError:
        raise ModelError("model file not found", path) from None
    except UnsafeFileError as exc:
        raise ModelError(str(exc), path) from None
    except OSError as exc:
        raise ModelError(f"cannot read the model: {os_reason(exc)}", path) from None


def _refuse_ops(refused: set[str], path: Path) -> None:
    if refused:
        shown = sorted({_op_name(name) for name in refused})
        names = ", ".join(shown[:6]) + (", ..." if len(shown) > 6 else "")
        raise ModelError(
            f"refused: the model uses ops that `colorize export` never writes ({names}); "
            "file access, control flow and custom ops are not run (docs/export.md)",
            path,
        )


def _op_name(name: str | bytes) -> str:
    """An op's name from the file as one short printable word: protobuf gives the bytes of a
    name that is not UTF-8, and a name may hold a newline."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "backslashreplace")
    name = "".join(char if char.isprintable() else repr(char)[1:-1] for char in name)
    return name if len(name) <= 40 else name[:37] + "..."


def _refuse_size(problem: str | None, path: Path) -> None:
    if problem:
        raise ModelError(f"refused: {problem} (a model's sizes are bounded: docs/export.md)", path)


# ONNX -------------------------------------------------------------------------------------------


def check_onnx(data: bytes, path: Path) -> None:
    """ModelError unless the ONNX model parses with the `onnx` package (no session yet), uses
    only ONNX_OPS of the standard domain, defines no functions, keeps its weights in the file,
    and asks for bounded sizes (model_sizes.py)."""
    try:
        from onnx import ModelProto, TensorProto
    except ImportError:
        raise UsageError(
            "running .onnx models needs onnx: pip install 'colorize-cli[onnx]'"
        ) from None
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # a damaged protobuf fails in many ways
        raise ModelError(f"not a loadable ONNX model: {one_line(exc)}", path) from None
    if model.functions:
        _refuse_ops({f"{f.domain}:{f.name}" for f in model.functions}, path)
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            raise ModelError(
                "not a loadable ONNX model: its weights are kept in another file (external "
                "data); colorize reads only the model file",
                path,
            )
    _refuse_ops(
        {
            node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
            for node in model.graph.node
            if node.domain not in ("", "ai.onnx") or node.op_type not in ONNX_OPS
        },
        path,
    )
    try:
        problem = onnx_size_problem(model)
    except Exception as exc:  # attributes of the wrong type, tensors that do not decode
        raise ModelError(f"not a loadable ONNX model: {one_line(exc)}", path) from None
    _refuse_size(problem, path)


# TFLite -----------------------------------------------------------------------------------------


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
        self._ops: dict[int, list[TfliteOp]] = {}

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
        change a size's value (read once: the size check and tflite_lives share them)."""
        if graph not in self._ops:
            self._ops[graph] = self._read_ops(self.subgraphs[graph])
        return self._ops[graph]

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


def read_tflite(data: bytes, path: Path) -> TfliteFile:
    """A .tflite file's flatbuffer, read once for every check and reading below; ModelError
    unless it has the TFL3 identifier."""
    try:
        return TfliteFile(data)
    except Exception:
        raise ModelError("not a loadable TFLite model: damaged or truncated", path) from None


def tflite_metadata(file: TfliteFile, path: Path, name: str) -> bytes:
    """The metadata entry `name` of a .tflite flatbuffer (b"" if none), read without building an
    interpreter."""
    try:
        for entry in file.tables(file.model, 6):
            offset = file.field(entry, 0)
            if offset and entry.String(offset + entry.Pos) == name.encode():
                return bytes(file.buffer(file.scalar(entry, 1, "Uint32Flags")))
    except Exception:  # offsets from a damaged file point anywhere
        raise ModelError("not a loadable TFLite model: damaged or truncated", path) from None
    return b""


def tflite_op_codes(file: TfliteFile, path: Path) -> set[int]:
    """The builtin operator codes a .tflite flatbuffer lists (a custom op is CUSTOM, 32)."""
    try:
        return set(file.op_codes)
    except Exception:
        raise ModelError("not a loadable TFLite model: damaged or truncated", path) from None


def check_tflite(file: TfliteFile, path: Path) -> None:
    """ModelError unless the .tflite flatbuffer uses only TFLITE_OPS and asks for bounded sizes
    (model_sizes.py), read without building an interpreter."""
    refused = tflite_op_codes(file, path) - set(TFLITE_OPS.values())
    _refuse_ops({_TFLITE_NAMES.get(code, f"builtin op {code}") for code in refused}, path)
    try:
        problems = (
            tflite_size_problem(file.ops(graph), file.constants(graph))
            for graph in range(len(file.subgraphs))
        )
        problem = next(filter(None, problems), None)
    except Exception:
        raise ModelError("not a loadable TFLite model: damaged or truncated", path) from None
    _refuse_size(problem, path)


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
        raise ModelError("not a loadable TFLite model: damaged or truncated", path) from None
    for index, op in enumerate(ops):
        for tensor in op.outputs:
            first.setdefault(tensor, index)
        for tensor in op.inputs:
            last[tensor] = max(last.get(tensor, index), index)
    return [(tensor, start, max(start, last.get(tensor, start))) for tensor, start in first.items()]


# SavedModel -------------------------------------------------------------------------------------


def check_savedmodel_files(path: Path) -> None:
    """ModelError unless every file in the SavedModel folder (links followed) is a regular file:
    TensorFlow reads its variables and assets itself, and a named pipe would block it."""
    seen: set[str] = set()
    for folder, dirs, files in os.walk(path, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen or len(seen) > 10_000:
            dirs.clear()
            continue
        seen.add(real)
        for name in files:
            try:
                regular = stat.S_ISREG(os.stat(os.path.join(folder, name)).st_mode)
            except OSError as exc:
                raise ModelError(f"cannot read the model: {os_reason(exc)}", path) from None
            if not regular:
                inside = Path(folder, name).relative_to(path)
                raise ModelError(f"{inside} is {NOT_REGULAR}", path)


def check_savedmodel(data: bytes, path: Path) -> None:
    """ModelError unless the SavedModel (its saved_model.pb bytes) uses only the allowed ops
    (savedmodel_refused_ops). Imports TensorFlow's protobufs."""
    _refuse_ops(savedmodel_refused_ops(data, path), path)


def savedmodel_refused_ops(data: bytes, path: Path) -> set[str]:
    """The ops of a SavedModel (its saved_model.pb bytes) outside SAVEDMODEL_OPS, in the graph
    and in every function; the checkpoint functions that only the saver_def reaches may also use
    CHECKPOINT_OPS. ModelError unless it is a TensorFlow 2 SavedModel (one meta graph with an
    object graph): a TensorFlow 1 one is loaded by running its graph's restore and init ops."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(data)
    except Exception as exc:
        raise ModelError(f"not a loadable SavedModel: {one_line(exc)}", path) from None
    if len(saved.meta_graphs) != 1 or not saved.meta_graphs[0].HasField("object_graph_def"):
        raise ModelError(
            "not a TensorFlow 2 SavedModel (one meta graph with its object graph): export the "
            "model with `colorize export`",
            path,
        )
    meta_graph = saved.meta_graphs[0]
    graph = meta_graph.graph_def
    functions = {function.signature.name: function for function in graph.library.function}

    def called(nodes: Any) -> set[str]:
        names: set[str] = set()

        def visit(value: Any) -> None:
            if value.HasField("func"):
                names.add(value.func.name)
                for inner in value.func.attr.values():
                    visit(inner)
            for function in value.list.func:
                names.add(function.name)

        for node in nodes:
            for value in node.attr.values():
                visit(value)
        return names

    def reached(roots: set[str]) -> set[str]:
        seen, todo = set(), list(roots)
        while todo:
            name = todo.pop()
            if name in seen or name not in functions:
                continue
            seen.add(name)
            todo.extend(called(functions[name].node_def))
        return seen

    saver = meta_graph.saver_def
    saver_nodes = {saver.save_tensor_name.split(":")[0], saver.restore_op_name.split(":")[0]}
    checkpoint = reached(called(node for node in graph.node if node.name in saver_nodes))
    others = called(node for node in graph.node if node.name not in saver_nodes)
    strict = reached(others | (set(functions) - checkpoint))
    refused = {node.op for node in graph.node} - SAVEDMODEL_OPS
    for name, function in functions.items():
        allowed = SAVEDMODEL_OPS if name in strict else SAVEDMODEL_OPS | CHECKPOINT_OPS
        refused |= {node.op for node in function.node_def} - allowed
    return refused
