import os
import subprocess
import sys

import pytest

from mnist_lab.core import backends
from mnist_lab.core.backends import ONEDNN_VARIABLE
from mnist_lab.core.errors import UsageError


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


def test_visible_gpus_from_the_environment_or_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert backends.visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # CUDA's way of hiding every GPU
    assert backends.visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    # nvidia-smi as a machine with two GPUs answers it (there is none on the test machines).
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 0\necho 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert backends.visible_gpus() == ["0", "1"]
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert backends.visible_gpus() == []


def test_workers_take_the_gpus_in_turn():
    assert [backends.gpu_of_worker(worker, ["0", "1"]) for worker in range(5)] == ["0", "1", "0", "1", "0"]
    assert backends.gpu_of_worker(3, []) is None
    assert backends.gpu_environment("1", shared=False) == {"CUDA_VISIBLE_DEVICES": "1"}
    assert backends.gpu_environment("1", shared=True)["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_use_gpu_sets_the_environment_before_the_backend_starts():
    script = ("import os; from mnist_lab.core import backends; print(backends.use_gpu('1', True), "
              "os.environ['CUDA_VISIBLE_DEVICES'], os.environ['TF_FORCE_GPU_ALLOW_GROWTH']); import keras; "
              "print(backends.use_gpu('0', True))")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["True", "1", "true", "False"]  # too late once the backend runs


def test_deterministic_gpu_settings_are_made_for_each_backend():
    script = ("import os; from mnist_lab.core import backends; backends.use_backend('{0}'); "
              "print(os.environ.get('XLA_FLAGS', ''), '|', os.environ.get('CUBLAS_WORKSPACE_CONFIG', ''))")
    jax = subprocess.run([sys.executable, "-c", script.format("jax")], capture_output=True, text=True,
                         env={**os.environ, "XLA_FLAGS": "--xla_dump_to=/tmp/x"}, check=True).stdout
    assert jax.split("|")[0].split() == ["--xla_dump_to=/tmp/x", "--xla_gpu_deterministic_ops=true"]


def test_the_onednn_kernels_recorded_are_those_tensorflow_runs(monkeypatch):
    import keras

    assert keras.backend.backend() == "tensorflow"  # started with the variable at 1, as a command starts it
    assert backends.onednn_kernels() == "1"
    # Read once when TensorFlow started: the variable now says nothing of the kernels that run.
    for value in ("0", "false", "anything"):
        monkeypatch.setenv(ONEDNN_VARIABLE, value)
        assert backends.onednn_kernels() == "1"
    # Before it starts, what the variable will make it, spelled one way per setting.
    monkeypatch.delitem(sys.modules, "tensorflow")
    for value, kernels in (("1", "1"), ("True", "1"), (" true ", "default"), ("0", "0"), ("FALSE", "0"), ("", "default")):
        monkeypatch.setenv(ONEDNN_VARIABLE, value)
        assert backends.onednn_kernels() == kernels
    monkeypatch.delenv(ONEDNN_VARIABLE)
    assert backends.onednn_kernels() == "default"


def test_a_process_that_runs_keras_already_tells_its_backend_and_kernels_to_what_reads_them_later(monkeypatch):
    """A notebook that imported Keras first (its backend from keras.json, say): the experiments'
    identity (selected_backend) and local workers read the backend and the kernels it runs."""
    import keras

    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv(ONEDNN_VARIABLE, "anything")  # TensorFlow started otherwise: what it chose is told
    assert backends.use_backend(keras.backend.backend()) == "tensorflow"
    assert backends.selected_backend() == "tensorflow" and os.environ["KERAS_BACKEND"] == "tensorflow"
    assert os.environ[ONEDNN_VARIABLE] == "1"


@pytest.mark.parametrize("value", ["yes", " 1", ""])
def test_a_onednn_setting_tensorflow_does_not_read_is_refused(value, tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnist_lab", "train", "logreg", "--dry-run", "--results",
                             str(tmp_path)], capture_output=True, text=True, env={**os.environ, ONEDNN_VARIABLE: value})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"Error: {ONEDNN_VARIABLE}='{value}': TensorFlow reads 0, 1, true or false (in any case); "
                             f"unset it for mnist-lab's default, 1\n")
