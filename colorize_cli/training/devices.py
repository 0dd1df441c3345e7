"""Which devices train: `--gpu` / `--cpu` parsed, and the tf.distribute strategy that spans them.

One device: OneDeviceStrategy. Several GPUs: MirroredStrategy. `TF_CONFIG` set (several machines):
MultiWorkerMirroredStrategy, whose worker 0 is the chief that writes the run directory.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from colorize_cli.errors import UsageError
from colorize_cli.tf_setup import import_tf

if TYPE_CHECKING:
    import tensorflow as tf

CPU = "/cpu:0"


def parse_devices(gpu: str | None, cpu: bool) -> list[str] | None:
    """`--gpu 0,1` / `--cpu` -> device names; None (neither) means all visible GPUs, else the CPU.

    UsageError for both at once, a malformed list, or a GPU this machine does not have (the
    message lists the devices it does have).
    """
    if gpu is not None and cpu:
        raise UsageError("--gpu and --cpu exclude each other")
    if cpu:
        return [CPU]
    if gpu is None:
        return None
    try:
        indices = [int(part) for part in gpu.split(",")]
    except ValueError:
        raise UsageError(f"--gpu takes GPU numbers like 0 or 0,1, not {gpu!r}") from None
    if len(set(indices)) != len(indices) or min(indices) < 0:
        raise UsageError(f"--gpu takes distinct GPU numbers like 0 or 0,1, not {gpu!r}")
    gpus = import_tf().config.list_physical_devices("GPU")
    missing = [i for i in indices if i >= len(gpus)]
    if missing:
        have = [f"GPU {i}" for i in range(len(gpus))] + ["CPU (--cpu)"]
        raise UsageError(
            f"no GPU {', '.join(map(str, missing))} here; available: {', '.join(have)}"
        )
    return [f"/gpu:{i}" for i in indices]


def has_gpu(devices: list[str] | None) -> bool:
    """Whether training on `devices` (None = the default choice) runs on at least one GPU."""
    if devices is None:
        return bool(import_tf().config.list_physical_devices("GPU"))
    return any(device.startswith("/gpu:") for device in devices)


def make_strategy(devices: list[str] | None) -> tf.distribute.Strategy:
    """The strategy for `devices` (see `parse_devices`); create it before any other TF op."""
    tf = import_tf()
    if "TF_CONFIG" in os.environ:
        _limit_visible_gpus(tf, devices)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices is None:
        devices = [device.name for device in tf.config.list_logical_devices("GPU")] or [CPU]
    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(devices)


def _limit_visible_gpus(tf, devices: list[str] | None) -> None:
    """Each worker of a cluster uses all its visible GPUs: narrow them to the ones asked for."""
    if devices is None:
        return
    gpus = tf.config.list_physical_devices("GPU")
    wanted = {int(device.rsplit(":", 1)[1]) for device in devices if device.startswith("/gpu:")}
    tf.config.set_visible_devices([gpu for i, gpu in enumerate(gpus) if i in wanted], "GPU")


def worker_index() -> int:
    """This process's place in the `TF_CONFIG` cluster: 0 is the chief (also with no cluster)."""
    config = os.environ.get("TF_CONFIG")
    if not config:
        return 0
    try:
        task = json.loads(config)["task"]
        cluster = json.loads(config)["cluster"]
    except (ValueError, KeyError, TypeError):
        raise UsageError("TF_CONFIG is not valid JSON with 'cluster' and 'task'") from None
    if task.get("type") == "chief":
        return 0
    # With an explicit chief, workers come after it; without one, worker 0 is the chief.
    return int(task.get("index", 0)) + (1 if "chief" in cluster else 0)
