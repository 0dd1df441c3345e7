"""torch_weights.py: PyTorch state dicts read without torch, and hostile pickles refused unrun.

The test files are written by `write_pth` below in both of torch's layouts, with stand-ins for
torch's globals registered under torch's module names (torch itself is not installed).
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from colorize_cli.errors import ModelError
from colorize_cli.nets import pretrained
from colorize_cli.nets.torch_weights import LEGACY_MAGIC, LEGACY_PROTOCOL, load_state_dict

DTYPE_STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Modules named torch and torch._utils holding pickle-able stand-ins of torch's globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only pickled, never called
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storages = {}
    for name in DTYPE_STORAGE.values():
        storages[name] = type(name, (), {"__module__": "torch", "__qualname__": name})
        setattr(torch, name, storages[name])
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(rebuild=_rebuild_tensor_v2, storages=storages)


class _Tensor:
    """What pickle writes for a tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, fake, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())
        self.fake = fake

    def __reduce__(self):
        return self.fake.rebuild, self.args


class _StorageRef:
    def __init__(self, key: str, storage_type: type, numel: int) -> None:
        self.key, self.type, self.numel = key, storage_type, numel


def write_pth(path: Path, tensors: dict, fake, layout: str = "legacy", views=None) -> None:
    """A state dict file; `views` maps a name to (base name, offset, size, stride) views of it."""
    refs, blobs = {}, {}
    state = OrderedDict()
    for index, (name, array) in enumerate(tensors.items()):
        key = str(index)
        storage = _StorageRef(key, fake.storages[DTYPE_STORAGE[array.dtype]], array.size)
        refs[name], blobs[key] = storage, array.astype(array.dtype.newbyteorder("<")).tobytes()
        strides = [s // array.itemsize for s in array.strides]
        state[name] = _Tensor(fake, storage, 0, array.shape, strides)
    for name, (base, offset, size, stride) in (views or {}).items():
        state[name] = _Tensor(fake, refs[base], offset, size, stride)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _StorageRef):
                pid = ("storage", obj.type, obj.key, "cpu", obj.numel)
                return pid + (None,) if layout == "legacy" else pid
            return None

    body = io.BytesIO()
    Pickler(body, protocol=2).dump(state)
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", body.getvalue())
            for key, blob in blobs.items():
                archive.writestr(f"archive/data/{key}", blob)
        return
    with path.open("wb") as file:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, file, protocol=2)
        file.write(body.getvalue())
        pickle.dump(list(blobs), file, protocol=2)
        for key, blob in blobs.items():
            numel = refs[list(tensors)[int(key)]].numel
            file.write(numel.to_bytes(8, "little") + blob)


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_both_layouts_round_trip_values_dtypes_and_strided_views(
    tmp_path: Path, fake_torch, layout: str
) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "bn.num_batches_tracked": np.array(12345, np.int64),
        "fc.weight": rng.standard_normal((5, 6)).astype(np.float32),
    }
    path = tmp_path / f"w-{layout}.pth"
    # A transposed view with an offset into fc.weight's storage: (3, 5) from element 1.
    write_pth(path, tensors, fake_torch, layout, views={"fc.t": ("fc.weight", 1, (3, 5), (1, 6))})
    loaded = load_state_dict(path)
    assert list(loaded) == [*tensors, "fc.t"]
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
    assert np.array_equal(
        loaded["fc.t"],
        tensors["fc.weight"]
        .reshape(-1)[1:]
        .reshape(-1)[np.arange(3)[:, None] + 6 * np.arange(5)[None, :]],
    )


def test_the_shipped_imagenet_weights_read_completely() -> None:
    state = load_state_dict(pretrained.weights_path())
    assert len(state) == 296
    assert sum(v.size for v in state.values()) == 4_694_073
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    # Trained weights, not zeros or garbage: BatchNorm variances are finite, >= 0, mostly > 0.
    variances = np.concatenate([v for k, v in state.items() if k.endswith("running_var")])
    assert np.all(np.isfinite(variances)) and np.all(variances >= 0)
    assert np.mean(variances > 0) > 0.95


class _Exploit:
    """A pickle that runs a shell command when loaded by a plain unpickler."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


@pytest.mark.parametrize("layout", ["legacy", "zip", "bare"])
def test_a_crafted_pickle_runs_nothing_and_is_refused(tmp_path: Path, layout: str) -> None:
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps(OrderedDict(weight=_Exploit(sentinel)), protocol=2)
    path = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", payload)
    elif layout == "legacy":
        head = b"".join(pickle.dumps(h, protocol=2) for h in (LEGACY_MAGIC, LEGACY_PROTOCOL))
        path.write_bytes(head + pickle.dumps({"little_endian": True}) + payload)
    else:
        path.write_bytes(payload)
    with pytest.raises(ModelError, match=r"evil\.pth: .*(refused global|magic)"):
        load_state_dict(path)
    assert not sentinel.exists()
    # The same bytes do run code in a plain unpickler, so the test would catch a lax reader.
    if layout == "bare":
        pickle.loads(payload)
        assert sentinel.exists()


def test_truncated_random_and_inconsistent_files_get_one_line_errors(
    tmp_path: Path, fake_torch
) -> None:
    good = tmp_path / "good.pth"
    write_pth(good, {"w": np.arange(100, dtype=np.float32)}, fake_torch)
    data = good.read_bytes()
    cases = {
        "truncated.pth": data[:-40],
        "random.pth": np.random.default_rng(1).bytes(4096),
        "empty.pth": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    # A view that reaches past its storage's end.
    write_pth(
        tmp_path / "overreach.pth",
        {"w": np.arange(10, dtype=np.float32)},
        fake_torch,
        views={"v": ("w", 5, (10,), (1,))},
    )
    for name in [*cases, "overreach.pth"]:
        with pytest.raises(ModelError) as caught:
            load_state_dict(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(str(tmp_path / name)) and "\n" not in message, message
    with pytest.raises(ModelError, match="not found"):
        load_state_dict(tmp_path / "missing.pth")
