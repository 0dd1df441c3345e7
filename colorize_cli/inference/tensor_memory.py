"""The bound on the bytes a model's tensors may hold at once while it runs (MAX_TENSOR_BYTES, which
backends.py enforces on ONNX Runtime and LiteRT): the peak of the tensors alive together, and why a
run past it fails."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# What a model's tensors may hold at once while it runs: allowed ops still grow a tensor together
# (ten resizes of 8 in a row, a Concat of a tensor with itself 30 times, a Mul by a (1, 1, 1,
# 100000) constant), so the bound is on the run, not on an op. ONNX Runtime allocates from an arena
# of this size; LiteRT's shapes are worked out before a new input size runs. The bundled lite0-hints
# model needs 143 MiB at batch 8 of 160 x 160, 367 MiB of 256 x 256 and 572 MiB of 160 x 640 (the
# widest a default render gets); 8 of 256 x 1024 need 1465 MiB, and such a batch is retried photo
# by photo (184 MiB each), as any batch that fails is (applying.py; docs/robustness.md measures).
MAX_TENSOR_BYTES = 2**30


def peak_bytes(lives: list[tuple[int, int, int]], size: Callable[[int], int]) -> int:
    """The most bytes the tensors alive at once hold: tensor `index` of `lives` (index, first op,
    last op) is alive from the op that makes it to the last op that reads it, and holds
    `size(index)` bytes."""
    if not lives:
        return 0
    change = np.zeros(max(last for _, _, last in lives) + 2, np.int64)
    for index, first, last in lives:
        bytes_ = min(size(index), 2**62 // len(lives))  # no overflow: past the bound all the same
        change[first] += bytes_
        change[last + 1] -= bytes_
    return int(np.cumsum(change).max())


def memory_problem(need: int, shape: tuple[int, ...], op: str = "", asked: int = 0) -> str:
    """Why a run whose tensors would hold `need` bytes for a (batch, H, W, ...) input fails; `op`
    asked for `asked` of them at once, if known."""
    batch, height, width = shape[:3]
    inputs = f"a {height}x{width} input" if batch == 1 else f"{batch} inputs of {height}x{width}"
    detail = f" ({op} asked for {_bytes(asked)})" if op else ""
    return (
        f"the model would need {_bytes(need)} of tensors for {inputs}{detail}, over the bound of "
        f"{_bytes(MAX_TENSOR_BYTES)} (docs/export.md)"
    )


def _bytes(count: int) -> str:
    return f"{count / 2**20:.0f} MiB" if count < 2**30 else f"{count / 2**30:.3g} GiB"
