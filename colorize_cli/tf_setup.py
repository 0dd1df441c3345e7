"""The one way colorize imports TensorFlow: oneDNN on and C++ logs quiet, set before first import.

oneDNN roughly doubles convolution speed on the x86 CPUs we train on (docs/training.md), and TF's
start-up chatter (CUDA probes, oneDNN notices) would drown the progress lines on stderr.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType


def import_tf() -> ModuleType:
    """Import and return `tensorflow`, with the environment set the way colorize runs it."""
    # Recipes call this inside traced functions: once TF is loaded, touch nothing AutoGraph sees.
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf
