"""A Keras generator -> the graph each format stores: one tf.function with free batch, height and
width, frozen and converted by tf2onnx (ONNX), the TFLite converter, or saved as a SavedModel,
with the contract's metadata written into the file. `export.py` verifies what these write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from colorize_cli import __version__
from colorize_cli.imaging.hints import HINT_CHANNELS, PALETTE_SIZE
from colorize_cli.inference import model_files
from colorize_cli.nets.models import takes_hints
from colorize_cli.tf_setup import parked_stderr

ONNX_OPSET = 17
INPUT_NAME = "lightness"


def serving_function(model: Any, output: str) -> Any:
    """The generator as a tf.function of (batch, H, W, 1) with H and W free; a hint model's also
    takes `hints` (batch, H, W, 3) and `palette` (batch, PALETTE_SIZE), named so.

    Keras's bilinear UpSampling2D cannot be traced with unknown H and W, so the graph is rebuilt
    on the same layers (same weights) with those calls replaced by tf.image.resize, which is the
    same half-pixel bilinear resize; export.py checks the result against the original.
    """
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()
    import keras

    class DynamicUpSampling(keras.layers.Layer):
        def __init__(self, size: tuple[int, int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.size = size

        def call(self, x: Any) -> Any:
            shape = tf.shape(x)
            new_size = [shape[1] * self.size[0], shape[2] * self.size[1]]
            return tf.image.resize(x, new_size, method="bilinear")

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "bilinear":
            return DynamicUpSampling(layer.size, name=f"{layer.name}_dynamic")(*args, **kwargs)
        return layer(*args, **kwargs)

    dynamic = keras.models.clone_model(
        model, clone_function=lambda layer: layer, call_function=call, recursive=True
    )
    spec = tf.TensorSpec([None, None, None, 1], tf.float32, name=INPUT_NAME)
    if takes_hints(model):
        hint_specs = [
            tf.TensorSpec([None, None, None, HINT_CHANNELS], tf.float32, name="hints"),
            tf.TensorSpec([None, PALETTE_SIZE], tf.float32, name="palette"),
        ]

        @tf.function(input_signature=[spec, *hint_specs])
        def serve(lightness: Any, hints: Any, palette: Any) -> Any:
            inputs = {"lightness": lightness, "hints": hints, "palette": palette}
            return {output: dynamic(inputs, training=False)}

    else:

        @tf.function(input_signature=[spec])
        def serve(lightness: Any) -> Any:
            return {output: dynamic(lightness, training=False)}

    serve.keras_model = dynamic  # keeps the variables tracked for SavedModel
    serve.output_name = output
    return serve


def _frozen(serving: Any) -> Any:
    """The serving function with its weights folded in as constants."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(serving.get_concrete_function())


@contextlib.contextmanager
def _quiet_converters() -> Iterator[None]:
    """tf2onnx and the TFLite converter log every pass at INFO/WARNING; progress is ours."""
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with parked_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def write_onnx(serving: Any, path: Path, metadata: dict[str, Any]) -> None:
    import tf2onnx

    with _quiet_converters():
        frozen = _frozen(serving)
        output = serving.output_name
        # The frozen function's inputs keep the signature's order: lightness[, hints, palette].
        names = [INPUT_NAME, *model_files.INPUT_NAMES[1:]][: len(frozen.inputs)]
        renames = {tensor.name: name for tensor, name in zip(frozen.inputs, names, strict=True)}
        model_proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=list(renames),
            output_names=[frozen.outputs[0].name],
            opset=ONNX_OPSET,
            tensors_to_rename={**renames, frozen.outputs[0].name: output},
        )
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = model_files.METADATA_KEY, json.dumps(metadata)
    model_proto.producer_name = f"colorize {__version__} (tf2onnx {tf2onnx.__version__})"
    model_proto.doc_string = (
        f"colorize generator: {metadata['input']} -> {metadata['output_units']}"
    )
    path.write_bytes(model_proto.SerializeToString())


def write_tflite(
    serving: Any,
    path: Path,
    metadata: dict[str, Any],
    precision: str,
    calibration: list[np.ndarray],
) -> None:
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()
    with _quiet_converters():
        converter = tf.lite.TFLiteConverter.from_concrete_functions([_frozen(serving)])
        if precision != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if precision == "int8":

            def representative() -> Iterator[list[np.ndarray]]:
                for lightness in calibration:
                    x = lightness[np.newaxis, ..., np.newaxis]
                    if metadata.get("hints"):
                        yield list(model_files.hint_inputs(x, None, None).values())
                    else:
                        yield [x]

            converter.representative_dataset = representative
        flat = converter.convert()
    path.write_bytes(_with_tflite_metadata(flat, json.dumps(metadata).encode()))


def _with_tflite_metadata(flat: bytes, text: bytes) -> bytes:
    """The .tflite flatbuffer with one more metadata entry, METADATA_KEY -> `text`."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(flat, 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = model_files.METADATA_KEY, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(flat) + len(text) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_savedmodel(serving: Any, folder: Path, metadata: dict[str, Any]) -> None:
    """A SavedModel folder with a `serving_default` signature and assets.extra/colorize.json."""
    from colorize_cli.tf_setup import import_tf

    tf = import_tf()
    module = tf.Module()
    module.generator = serving.keras_model
    with _quiet_converters():
        tf.saved_model.save(module, str(folder), signatures={"serving_default": serving})
    target = model_files.savedmodel_metadata_path(folder)
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(metadata, indent=2))
