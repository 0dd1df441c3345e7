"""`prepare`'s work on each input, done by worker processes: hashed, sorted to its part, decoded,
fitted to a square and turned gray; the outcomes come back in input order."""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import signal
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from PIL import Image

from colorize_cli import fsutil
from colorize_cli.constants import FITS
from colorize_cli.errors import ColorizeError
from colorize_cli.imaging import color, images

PAD_FILL = (0, 0, 0)  # black: achromatic, so letterbox bars teach "no colour here"
# Decoded photos in flight per worker: enough to hide latency, few enough to bound memory.
WINDOW_PER_JOB = 4
# A photo file is read whole (to hash it) only up to this size: 200 megapixels of 16-bit RGBA.
MAX_PHOTO_BYTES = 2**31


class Plan(NamedTuple):
    """What a worker needs to turn a path into an outcome (sent once per worker)."""

    size: int
    fit: str
    max_pixels: int
    part: tuple[int, int] | None
    min_colorfulness: float
    done: frozenset[str]  # sha256 of photos already in the outputs (--resume)


class Outcome(NamedTuple):
    kind: Literal["photo", "skip", "other_part", "done"]
    sha256: str = ""
    gray: np.ndarray | None = None
    rgb: np.ndarray | None = None
    reason: str = ""


def fit_image(rgb: np.ndarray | Image.Image, size: int, fit: str = "crop") -> np.ndarray:
    """(H, W, 3) uint8 (or an RGB PIL image) -> (size, size, 3) uint8 by centre crop, letterbox
    (`PAD_FILL`) or squash."""
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    width, height = image.size
    resample = {"resample": Image.Resampling.LANCZOS, "reducing_gap": 3.0}
    if fit == "resize":
        return np.asarray(image.resize((size, size), **resample))
    if fit == "crop":
        # One resampling straight from the centred square of the source: no second rounding.
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        box = (left, top, left + side, top + side)
        return np.asarray(image.resize((size, size), box=box, **resample))
    if fit == "pad":
        scale = size / max(width, height)
        inner = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = Image.new("RGB", (size, size), PAD_FILL)
        canvas.paste(
            image.resize(inner, **resample), ((size - inner[0]) // 2, (size - inner[1]) // 2)
        )
        return np.asarray(canvas)
    raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")


def in_part(sha256: str, part: tuple[int, int] | None) -> bool:
    """Whether a content belongs to part (K, N): bits independent of those `prepare.split_of`
    reads."""
    return part is None or int(sha256[16:32], 16) % part[1] == part[0] - 1


def _process(path: Path, plan: Plan) -> Outcome:
    """Hash, filter, decode, fit and gray one input; a bad file becomes a "skip" with a reason."""
    try:
        data = fsutil.read_regular_file(path, MAX_PHOTO_BYTES)
    except OSError as exc:
        return Outcome("skip", reason=f"cannot read: {fsutil.os_reason(exc)}")
    sha256 = hashlib.sha256(data).hexdigest()
    if not in_part(sha256, plan.part):
        return Outcome("other_part", sha256)
    if sha256 in plan.done:
        return Outcome("done", sha256)
    try:
        # Fitted while still a PIL image: the full-size photo never becomes an array.
        rgb = images.read_image_bytes(
            data, str(path), plan.max_pixels, lambda image: fit_image(image, plan.size, plan.fit)
        )
    except ColorizeError as exc:
        return Outcome("skip", sha256, reason=exc.reason)
    if plan.min_colorfulness > 0:
        score = color.colorfulness(rgb)
        if score < plan.min_colorfulness:
            reason = f"near-grayscale: colourfulness {score:.1f} < {plan.min_colorfulness:g}"
            return Outcome("skip", sha256, reason=reason)
    return Outcome("photo", sha256, color.grayscale(rgb), rgb)


_worker_plan: Plan | None = None


def _start_worker(plan: Plan) -> None:
    global _worker_plan
    _worker_plan = plan
    # Ctrl-C reaches the whole process group; the main process alone decides what to keep.
    for signum in fsutil.STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _process_in_worker(path: Path) -> Outcome:
    assert _worker_plan is not None
    return _process(path, _worker_plan)


class Decoders:
    """Outcomes in input order from `jobs` processes, at most `WINDOW_PER_JOB * jobs` pending.

    Workers are forked on entry, before the caller starts any progress thread; fork needs no
    `if __name__ == "__main__"` guard in the caller's script, which spawn would.
    """

    def __init__(self, paths: Sequence[Path], plan: Plan, jobs: int) -> None:
        self.paths, self.plan, self.jobs = paths, plan, jobs
        self.pending: deque[tuple[Path, Future[Outcome]]] = deque()
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Decoders:
        self.queue = iter(self.paths)
        if self.jobs > 1:
            method = "fork" if sys.platform == "linux" else "spawn"
            context = multiprocessing.get_context(method)
            self.pool = ProcessPoolExecutor(
                self.jobs, context, initializer=_start_worker, initargs=(self.plan,)
            )
            for path in itertools.islice(self.queue, WINDOW_PER_JOB * self.jobs):
                self.pending.append((path, self.pool.submit(_process_in_worker, path)))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self) -> Iterator[tuple[Path, Outcome]]:
        if self.pool is None:
            for path in self.queue:
                yield path, _process(path, self.plan)
            return
        while self.pending:
            path, future = self.pending.popleft()
            outcome = future.result()
            following = next(self.queue, None)
            if following is not None:
                self.pending.append((following, self.pool.submit(_process_in_worker, following)))
            yield path, outcome
