"""The fuzz targets: mutated photos into the photo reader, mutated shards into the shard reader.

A target passes an input when the reader either returns what it promises or raises its own typed
error (ImageError, ShardError) with a one-line reason; any other exception is a finding.
Inputs are seed files (seeds.py) with a few byte-level mutations that hypothesis draws and shrinks.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from colorize_cli.data import shards
from colorize_cli.errors import ImageError, ShardError
from colorize_cli.imaging import images
from fuzz.seeds import photo_seeds, shard_seeds

# Small enough that a mutated header declaring a huge image is refused, not decoded.
MAX_PIXELS = 1 << 20
MUTATIONS = ("flip", "byte", "insert", "delete", "truncate", "splice")
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)
HEAD = 4096


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with 1-8 mutations: bit flips, interesting bytes, insertions, deletions, a cut,
    or a block copied from elsewhere in the file (which duplicates headers and chunks)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        kind = draw(st.sampled_from(MUTATIONS))
        # Half the mutations land in the first 4 KiB, where the headers and metadata are.
        at = draw(st.integers(0, min(len(data), HEAD) - 1) | st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.sampled_from(INTERESTING) | st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
        else:
            start = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[start : start + draw(st.integers(1, 64))]
    return bytes(data)


def check_photo(data: bytes) -> None:
    """The photo reader's promise for any bytes."""
    try:
        rgb, info = images.read_image_with_info(data, MAX_PIXELS, name="fuzz.bin")
    except ImageError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8, type(rgb)
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS
    assert rgb.shape[0] * rgb.shape[1] == info.size[0] * info.size[1]


def endless_global_heap(data: bytes) -> bool:
    """Whether a global heap collection in `data` would send HDF5 1.14 into an endless loop.

    The first finding of this fuzzer (docs/robustness.md): HDF5's collection parser advances by
    each object's size, and a free-space object (index 0) of size 0 does not advance it. Such
    inputs are skipped so that a run goes on to find something else.
    """
    start = data.find(b"GCOL")
    while start >= 0:
        if len(data) >= start + 16:
            size = int.from_bytes(data[start + 8 : start + 16], "little")
            at, end = start + 16, start + size
            while at + 16 <= min(end, len(data)):
                index = int.from_bytes(data[at : at + 2], "little")
                length = int.from_bytes(data[at + 8 : at + 16], "little")
                step = 16 + (length + 7) // 8 * 8 if index else length
                if step == 0 or at + step >= 1 << 63:
                    return True
                at += step
        start = data.find(b"GCOL", start + 1)
    return False


def check_shard(data: bytes, folder: Path) -> None:
    """The shard reader's promise for any file: a validated shard whose every image reads back
    (and verifies), or a one-line ShardError."""
    path = folder / "fuzz.h5"
    path.write_bytes(data)
    try:
        with shards.open_shard(path) as shard:
            for i in range(len(shard)):
                gray, rgb = shard.read(i)
                assert gray.shape == (shard.image_size,) * 2 and rgb.shape[:2] == gray.shape
        shards.describe_shard(path, verify=True)
    except ShardError as exc:
        assert "\n" not in str(exc), str(exc)


def photo_target(examples: int, record: Callable[[bytes], None]) -> Callable[[], None]:
    """A hypothesis test of `examples` inputs; `record` sees each input before it runs."""
    seeds = photo_seeds()

    @settings(**_settings(examples))
    @given(mutated(seeds))
    def fuzz_photo_reader(data: bytes) -> None:
        record(data)
        check_photo(data)

    return fuzz_photo_reader


def shard_target(examples: int, record: Callable[[bytes], None]) -> Callable[[], None]:
    seeds = shard_seeds()
    # tmpfs when there is one: every example writes a file.
    parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = Path(tempfile.mkdtemp(prefix="colorize-fuzz-", dir=parent))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)

    @settings(**_settings(examples))
    @given(mutated(seeds))
    def fuzz_shard_reader(data: bytes) -> None:
        assume(not endless_global_heap(data))
        record(data)
        check_shard(data, folder)

    return fuzz_shard_reader


TARGETS = {"photo": photo_target, "shard": shard_target}


def _settings(examples: int) -> dict:
    return {
        "max_examples": examples,
        "deadline": None,  # run.py's watchdog catches hangs; timing noise is not a finding
        "database": None,  # no .hypothesis folder in the working tree
        "suppress_health_check": list(HealthCheck),
        "print_blob": True,  # a finding prints the line that reproduces it
    }
