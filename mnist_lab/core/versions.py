"""The versions that made a result, read from package metadata (no TensorFlow import), and the
oneDNN kernels TensorFlow runs (backends.onednn_kernels).

A result reused under other versions is kept, not invalidated: the experiment
(config, data content, seed) is the same, and a library upgrade rarely changes
more than the last digits. The differences are shown whenever such a result is
reused, and ``--force`` retrains under the running versions.
"""

from __future__ import annotations

import platform
from importlib import metadata

from mnist_lab.core.backends import onednn_kernels

# Keras backends and the distribution that provides each.
_BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}


def installed(backend: str) -> dict:
    """Python, Keras, the backend and its version, NumPy and mnist-lab, as installed."""
    found = {"python": platform.python_version(), "keras": _version("keras"), "backend": backend,
             "backend_version": _version(_BACKEND_PACKAGES.get(backend, backend)),
             "numpy": _version("numpy"), "mnist_lab": _version("mnist-lab")}
    if backend == "tensorflow":  # oneDNN kernels or not: the last digits of a result may differ
        found["onednn_opts"] = onednn_kernels()
    return found


def differences(recorded: dict, backend: str) -> list[str]:
    """``name recorded → installed`` for each version that differs from those running on ``backend``."""
    return compared(recorded, installed(backend))


def compared(recorded: dict, running: dict) -> list[str]:
    """``name recorded → running`` for each version that differs."""
    # A field a result did not record (an older result) is not a difference it can show.
    return [f"{name} {recorded[name]} → {value}" for name, value in running.items()
            if name in recorded and recorded[name] != value]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
