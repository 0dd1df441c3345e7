"""The one way colorize imports TensorFlow: oneDNN on and C++ logs quiet, set before first import.

oneDNN roughly doubles convolution speed on the x86 CPUs we train on (docs/training.md), and TF's
start-up chatter (CUDA probes, oneDNN notices) would drown the progress lines on stderr. Set
TF_CPP_MIN_LOG_LEVEL=0 to see TF's later logs again.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType


def import_tf() -> ModuleType:
    """Import and return `tensorflow`, with the environment set the way colorize runs it."""
    # Recipes call this inside traced functions: once TF is loaded, touch nothing AutoGraph sees.
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return _import_without_stderr()


def _import_without_stderr() -> ModuleType:
    """Import TF with file descriptor 2 parked in a temporary file.

    TF's C++ libraries print CUDA probes before their log level is read, straight to fd 2; what
    they printed is replayed only if the import fails.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            import tensorflow as tf
        except BaseException:
            os.dup2(saved, 2)
            parked.seek(0)
            sys.stderr.write(parked.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
