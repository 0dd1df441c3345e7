"""The one way colorize imports TensorFlow: oneDNN on and C++ logs quiet, set before first import.

oneDNN roughly doubles convolution speed on the x86 CPUs we train on (docs/training.md), and TF's
start-up chatter (CUDA probes, oneDNN notices) would drown the progress lines on stderr. Set
TF_CPP_MIN_LOG_LEVEL=0 to see TF's later logs again.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType


def import_tf() -> ModuleType:
    """Import and return `tensorflow`, with the environment set the way colorize runs it."""
    # Recipes call this inside traced functions: once TF is loaded, touch nothing AutoGraph sees.
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return _import_without_stderr()


@contextlib.contextmanager
def parked_stderr(replay_on_error: bool = False) -> Iterator[None]:
    """File descriptor 2 parked in a temporary file for the block: native libraries (TF's C++
    core, LiteRT, ONNX Runtime) print banners and probes straight to it. With `replay_on_error`
    what they printed is shown if the block fails; otherwise the caller's one-line error says it.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            yield
        except BaseException:
            if replay_on_error:
                os.dup2(saved, 2)
                parked.seek(0)
                sys.stderr.write(parked.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_without_stderr() -> ModuleType:
    """Import TF with fd 2 parked: TF's C++ libraries print CUDA probes before their log level
    is read; what they printed is replayed only if the import fails."""
    with parked_stderr(replay_on_error=True):
        import tensorflow as tf
    return tf
