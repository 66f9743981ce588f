"""Shared fixtures: the shipped data (loaded once), writers for tiny datasets and result records."""

import dataclasses
import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mnist_lab.core import backends
from mnist_lab.core.config import Config, ModelConfig, load_config, to_dict
from mnist_lab.core.data import IDX_FILES, load_builtin
from mnist_lab.core.identity import DATA_ORDER

ROOT = Path(__file__).resolve().parents[1]
# The data-digest cache of the tests (and of the CLI processes they start) stays out of ~/.cache.
os.environ["MNIST_LAB_CACHE"] = tempfile.mkdtemp(prefix="mnist-lab-cache-")
# The test processes set their backend up as a command's process does, before Keras is imported
# (TF_ENABLE_ONEDNN_OPTS among others): what one resumes from a command's checkpoint, or reads of
# its results, was made under the same recorded settings (else it would start over, not resume).
backends.use_backend()


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


def without_timings(rows) -> list[dict]:
    """Table rows or history epochs without their timings: the numbers that must agree to the last bit."""
    return [{key: value for key, value in row.items() if key not in ("train_seconds", "seconds_per_epoch")}
            for row in rows]


def blas_kernel(environment) -> str:
    """The OpenBLAS kernel NumPy runs under ``environment`` (threadpoolctl's word for it)."""
    code = ("import numpy, threadpoolctl; print([pool.get('architecture') for pool in "
            "threadpoolctl.threadpool_info() if pool['internal_api'] == 'openblas'][0])")
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                          check=True).stdout.strip()


def other_cpu_kernels() -> dict:
    """Environment variables that make a new process compute on other kernels than this CPU's own:
    another OpenBLAS kernel (checked to take effect) and oneDNN limited to AVX2."""
    other = "Sandybridge" if blas_kernel(os.environ) == "Haswell" else "Haswell"
    variables = {"OPENBLAS_CORETYPE": other, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert blas_kernel({**os.environ, **variables}) == other  # the variable did change the kernel
    return variables


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


def in_this_process(command: list, *more):
    """``command`` (``python -m mnist_lab …``, as a test starts it in a process of its own) with
    ``more`` arguments, run in the test's process (its imports are made already), where that process
    is not what is tested: a reference run, or a resume of what a stopped process left. Its result,
    once checked to have succeeded."""
    from click.testing import CliRunner

    from mnist_lab import cli

    assert command[:3] == [sys.executable, "-m", "mnist_lab"], command[:3]
    result = CliRunner().invoke(cli.main, [*map(str, command[3:]), *map(str, more)])
    assert result.exit_code == 0, result.output
    return result


def default_sigint():
    """``preexec_fn`` of a process a test interrupts: a shell that runs the suite in the background
    makes its children ignore SIGINT; Ctrl-C must reach the tool as it does in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def descendants_alive(pids, grace=10):
    """The processes of ``pids`` still running after ``grace`` seconds: a worker whose parent has
    just left may still be closing down (its pipes already shut) on a loaded machine."""
    import psutil

    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace)
    return [process.pid for process in alive if process.is_running() and process.status() != psutil.STATUS_ZOMBIE]


def cell_record(dataset, model, batch_size, epochs, learning_rate, seed, accuracy, loss, name=None, **data):
    """A valid sweep cell record (as the sweep writes one) with the given numbers; ``data``
    sets data.train_limit / data.test_limit."""
    from mnist_lab.core.sweep_plan import Cell

    base = Config(model=ModelConfig(type=model))
    config = dataclasses.replace(base, seed=seed, data=dataclasses.replace(base.data, **data),
                                 training=dataclasses.replace(base.training, batch_size=batch_size, epochs=epochs,
                                                              learning_rate=learning_rate))
    cell = Cell(name or model, config)
    history = [{"epoch": epoch, "train_loss": loss - 0.01, "train_accuracy": accuracy + 0.01, "train_seconds": 0.5,
                "test_loss": loss, "test_accuracy": accuracy} for epoch in range(1, epochs + 1)]
    return {"key": cell.key, "name": cell.name, "model": model, "test_loss": loss, "test_accuracy": accuracy,
            "train_loss": loss - 0.01, "train_accuracy": accuracy + 0.01, "parameters": 7850, "epochs": epochs,
            "seconds_per_epoch": 0.5, "epoch_seconds": [0.5] * epochs, "seed": seed,
            "data": dataset.record(data.get("train_limit"), data.get("test_limit")),
            "versions": {"python": "3", "keras": "3", "backend": "tensorflow"}, "created": "2026-01-01T00:00:00",
            "data_order": DATA_ORDER,
            "config": to_dict(config), "history": history}


def write_cells(folder: Path, records):
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / "cells" / f"{record['key']}.json").write_text(json.dumps(record))
