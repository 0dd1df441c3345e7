"""What an untrusted model file may hold before any runtime sees it: a bounded regular file whose
ops are all ones `colorize export` writes (an allow-list per format), asking for bounded sizes
(model_sizes.py). Read from the file's bytes (a .tflite by tflite_file.py); a file that breaks a
rule is a one-line ModelError.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from colorize_cli.errors import ModelError, UsageError, one_line
from colorize_cli.fsutil import NOT_REGULAR, UnsafeFileError, open_regular, os_reason
from colorize_cli.inference.model_sizes import onnx_size_problem, tflite_size_problem
from colorize_cli.inference.tflite_file import TFLITE_OPS, TfliteFile, damaged, tflite_op_codes

# The ops a model may use, per format: those `colorize export` writes for every preset, automatic
# and hint, float32, float16 and int8 (docs/export.md; tests/test_export.py checks the lists
# against fresh exports), plus a few plain arithmetic siblings. Anything else is refused before
# the runtime sees the graph: file I/O (tf.io, tf.data, tf.print to a file), Python calls,
# control flow (an ONNX Loop of 2**62 iterations, a TFLite WHILE that never ends), custom ops,
# and ops that make tensors of any size (Expand, Tile, ConstantOfShape; TILE, BROADCAST_TO).
# TFLite's list, TFLITE_OPS, lives with the reader that names ops by it (tflite_file.py).
ONNX_OPS = frozenset(
    {"Add", "AveragePool", "Cast", "Clip", "Concat", "Conv", "Div", "Gather", "Identity"}
    | {"LeakyRelu", "Max", "Min", "Mul", "Neg", "Pad", "Reciprocal", "ReduceMean", "Relu"}
    | {"Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Sqrt", "Squeeze", "Sub", "Tanh"}
    | {"Transpose", "Unsqueeze"}
)
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


def check_onnx(data: bytes, path: Path) -> dict[str, str]:
    """ModelError unless the ONNX model parses with the `onnx` package (no session yet), uses
    only ONNX_OPS of the standard domain, defines no functions, keeps its weights in the file,
    and asks for bounded sizes (model_sizes.py); its metadata (key -> value), read on the way."""
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
    return {prop.key: prop.value for prop in model.metadata_props}


# TFLite -----------------------------------------------------------------------------------------


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
        raise damaged(path) from None
    _refuse_size(problem, path)


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
