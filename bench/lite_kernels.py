"""LiteRT's kernels for the bundled hint model: the float32 export under XNNPACK (what `apply`
runs) and on the builtin kernels, and an int8 export (calibrated on 8 dev photos at one render
shape) on the builtin kernels, the only ones that run it: XNNPACK aborts the process on an int8
graph of several inputs (LiteRT 2.3, a double free), which is why `colorize export` refuses it.
A batch of 8 at 160x288 (a 16:9 frame at render size 160), 2 threads, mean of 3 runs after one.

    .venv/bin/python bench/lite_kernels.py     # about a minute (the int8 conversion)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from ai_edge_litert import interpreter as lite
from PIL import Image

from colorize_cli.inference import converters
from colorize_cli.inference.colorizer import Colorizer
from colorize_cli.nets.saved import DEFAULT_MODEL_PATH

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
BATCH, HEIGHT, WIDTH = 8, 160, 288


def int8_export(folder: Path) -> Path:
    reference = Colorizer(DEFAULT_MODEL_PATH, backend="tf")
    photos = [np.asarray(Image.open(p).convert("L")) for p in sorted(DEV.glob("*.jpg"))[:8]]
    calibration = [reference.network_input(p)[:160, :160] for p in photos]
    metadata = {"contract": 2, "stride": 32, "output": "ab", "hints": True}
    metadata |= {"input": "L*", "output_units": "a*b*"}
    serving = converters.serving_function(reference.backend.model, "ab")
    path = folder / "int8.tflite"
    converters.write_tflite(serving, path, metadata, "int8", calibration)
    return path


def per_frame_ms(path: Path, xnnpack: bool) -> float:
    options = (
        {}
        if xnnpack
        else {
            "experimental_op_resolver_type": lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        }
    )
    runner = lite.Interpreter(model_path=str(path), num_threads=2, **options)
    for detail in runner.get_input_details():
        shape = [BATCH, *detail["shape"][1:]]
        if len(shape) == 4:
            shape[1:3] = [HEIGHT, WIDTH]
        runner.resize_tensor_input(detail["index"], shape)
    runner.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in runner.get_input_details():
        runner.set_tensor(detail["index"], rng.random(detail["shape"], np.float32))
    runner.invoke()
    started = time.perf_counter()
    for _ in range(3):
        runner.invoke()
    return (time.perf_counter() - started) / 3 / BATCH * 1000


def main() -> None:
    bundled = DEFAULT_MODEL_PATH.with_suffix(".tflite")
    with tempfile.TemporaryDirectory() as folder:
        int8 = int8_export(Path(folder))
        print(f"| model, kernels | ms a {HEIGHT}x{WIDTH} frame (batch {BATCH}) |\n|---|---|")
        print(f"| float32 (bundled), XNNPACK | {per_frame_ms(bundled, True):.1f} |")
        print(f"| float32 (bundled), builtin | {per_frame_ms(bundled, False):.1f} |")
        print(f"| int8, builtin | {per_frame_ms(int8, False):.1f} |")


if __name__ == "__main__":
    main()
