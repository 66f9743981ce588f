import os

import pytest

from mnist_lab import backends
from mnist_lab.errors import UsageError


def test_workers_share_the_cores_unless_told():
    cores = backends.available_cores()
    assert backends.threads_per_worker(1) == cores
    assert backends.threads_per_worker(cores * 4) == 1  # never zero threads
    assert backends.threads_per_worker(2, override=3) == 3


def test_thread_environment_names_every_library_and_keeps_xla_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    environment = backends.thread_environment(1)
    assert {environment[name] for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "MKL_NUM_THREADS")} == {"1"}
    assert environment["XLA_FLAGS"].startswith("--xla_dump_to=/tmp/x ")
    assert "intra_op_parallelism_threads=1" in environment["XLA_FLAGS"]


def test_use_backend_refuses_unknown_or_other_backends(monkeypatch):
    with pytest.raises(UsageError, match="backend 'theano': expected one of tensorflow, jax, torch"):
        backends.use_backend("theano")
    import keras  # this test process runs Keras on TensorFlow (make test's JAX pass does not run this module)

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    with pytest.raises(UsageError, match=f"backend {other}: this process already runs Keras on "):
        backends.use_backend(other)
    assert backends.use_backend(keras.backend.backend()) == keras.backend.backend()


def test_selected_backend_follows_the_environment(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backends.selected_backend() == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backends.selected_backend() == "jax"
    assert os.environ["KERAS_BACKEND"] == "jax"
