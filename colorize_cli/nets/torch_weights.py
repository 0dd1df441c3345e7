"""Reading PyTorch weight files (`.pth` state dicts) into numpy, without torch and without
running anything the file says.

A `.pth` file is a pickle, and a pickle can call any Python function. This reader is an
untrusted-input boundary like `images.py`: its unpickler resolves exactly four globals
(`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the float and integer storage
types), each mapped to a harmless stand-in, and refuses every other one before it is looked up.
Both of torch's layouts are read:

- legacy (torch < 1.6): a sequence of pickles (magic number, protocol 1001, system facts, the
  state dict, the storage keys), then each storage as an 8-byte little-endian element count and
  its raw little-endian bytes;
- zip (torch >= 1.6): `*/data.pkl` plus one `*/data/<key>` entry of raw bytes per storage.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from colorize_cli.errors import ModelError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
# The storage types a state dict of float weights and integer counters uses.
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}
# A weight file far larger than any encoder we port is refused before it is read.
MAX_BYTES = 2**30


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor's place in a storage, resolved to an array once the storage's bytes are read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage")
    if not (
        isinstance(offset, int)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(n, int) and n >= 0 for n in (offset, *size, *stride))
    ):
        raise pickle.UnpicklingError("a tensor with a malformed offset, size or stride")
    return _TensorRef(storage, offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a plain state dict needs; everything else is refused."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        # legacy: ('storage', type, key, location, numel, view); zip: the same without view.
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
            and pid[4] >= 0
        ):
            raise pickle.UnpicklingError("an unknown kind of persistent object")
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        key = pid[2]
        storage = _Storage(key, pid[1].dtype, pid[4])
        known = self.storages.setdefault(key, storage)
        if known != storage:
            raise pickle.UnpicklingError(f"storage {key} is declared twice, differently")
        return known


def load_state_dict(path: str | PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state-dict file as {name: float32/int64 ... numpy array}.

    Raises ModelError, naming the file, for anything that is not a plain state dict in torch's
    legacy or zip layout: other pickled objects (their globals are never looked up), truncated
    or inconsistent data, or a file over MAX_BYTES.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ModelError(f"a weight file of {size} bytes is over the {MAX_BYTES}-byte limit")
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with path.open("rb") as file:
            return _load_legacy(file)
    except ModelError as exc:
        raise ModelError(exc.reason, path) from None
    except FileNotFoundError:
        raise ModelError("weight file not found", path) from None
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror or exc}", path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ModelError(f"not a PyTorch state dict this reader accepts: {reason}", path) from None
    except (zipfile.BadZipFile, RecursionError, MemoryError, AttributeError) as exc:
        raise ModelError(f"damaged weight file: {type(exc).__name__}", path) from None


def _load_legacy(file: BinaryIO) -> dict[str, np.ndarray]:
    if _small_pickle(file) != LEGACY_MAGIC:
        raise ModelError("not a PyTorch weight file (no torch magic number)")
    if _small_pickle(file) != LEGACY_PROTOCOL:
        raise ModelError("an unsupported PyTorch serialization protocol")
    facts = _small_pickle(file)
    if not isinstance(facts, dict) or not facts.get("little_endian", False):
        raise ModelError("a big-endian or unknown PyTorch weight file")
    unpickler = _RestrictedUnpickler(file)
    state = unpickler.load()
    keys = _RestrictedUnpickler(file).load()
    if not isinstance(keys, list) or set(keys) != set(unpickler.storages):
        raise ModelError("the storage list does not match the tensors")
    data = {}
    for key in keys:
        storage = unpickler.storages[key]
        count = int.from_bytes(_read_exactly(file, 8), "little")
        if count != storage.numel:
            raise ModelError(f"storage {key} holds {count} elements, {storage.numel} declared")
        data[key] = np.frombuffer(
            _read_exactly(file, count * storage.dtype.itemsize), storage.dtype
        )
    return _resolve(state, data)


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ModelError("a zip that is not a PyTorch weight file (no single data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])))
        state = unpickler.load()
        data = {}
        for key, storage in unpickler.storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            if len(raw) != storage.numel * storage.dtype.itemsize:
                raise ModelError(f"storage {key} has {len(raw)} bytes, not what it declares")
            data[key] = np.frombuffer(raw, storage.dtype)
    return _resolve(state, data)


def _small_pickle(file: BinaryIO) -> Any:
    """One of the legacy header's pickles: plain numbers and dicts only, no globals at all."""
    return _NoGlobalsUnpickler(file).load()


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _read_exactly(file: BinaryIO, count: int) -> bytes:
    data = file.read(count)
    if len(data) != count:
        raise ModelError("truncated: the file ends inside a storage")
    return data


def _resolve(state: Any, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise ModelError(f"holds a pickled {type(state).__name__}, not a state dict")
    tensors = {}
    for name, ref in state.items():
        if not isinstance(name, str) or not isinstance(ref, _TensorRef):
            raise ModelError(f"entry {name!r} is not a tensor")
        flat = data[ref.storage.key]
        if ref.size and min(ref.size) == 0:
            tensors[name] = np.zeros(ref.size, flat.dtype)
            continue
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
        if last >= len(flat):
            raise ModelError(f"tensor {name} reaches past the end of its storage")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset :], ref.size, tuple(s * itemsize for s in ref.stride), writeable=False
        )
        tensors[name] = np.array(view)
    return tensors
