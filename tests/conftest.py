"""Shared fixtures: the shipped data (loaded once) and writers for tiny datasets."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from mnist_lab.config import load_config
from mnist_lab.data import IDX_FILES, load_builtin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist():
    return load_builtin()


@pytest.fixture
def tiny_arrays(mnist):
    """A small, real slice of MNIST in the Keras layout."""
    return {"x_train": mnist.x_train[:50], "y_train": mnist.y_train[:50].astype(np.uint8),
            "x_test": mnist.x_test[:20], "y_test": mnist.y_test[:20].astype(np.uint8)}


def write_idx(path: Path, array: np.ndarray, compress=False):
    """Write an unsigned-byte IDX file, as the MNIST distribution does."""
    payload = struct.pack(f">HBB{array.ndim}I", 0, 0x08, array.ndim, *array.shape)
    payload += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def write_idx_folder(folder: Path, arrays: dict, compress=False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        write_idx(folder / name, arrays[key], compress)
    return folder


def write_config(folder: Path, text: str, name="exp.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def small_config(tmp_path):
    """A quick MLP config: a slice of the shipped data, two short epochs."""
    def make(model="mlp", *overrides):
        path = write_config(tmp_path, f"model:\n  type: {model}\n", name=f"{model}.yaml")
        return load_config(path, ["data.train_limit=600", "data.test_limit=300",
                                  "training.epochs=2", "training.batch_size=100", *overrides])
    return make
