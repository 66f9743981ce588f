"""The Keras backend and the compute threads of the process that trains, chosen before Keras
or the backend is imported, and recorded with every result.

The backend is `--backend`, else ``$KERAS_BACKEND``, else TensorFlow. N Dask
workers on C cores each get C/N threads, so they do not oversubscribe the
CPU; the count a result was trained with is written in its record, as a
different count may change the order of float sums. On a machine with GPUs,
local workers are placed on them in turn (several small trainings share one
GPU, which one alone would leave idle between tiny kernels).
"""

from __future__ import annotations

import os
import shutil
import sys

BACKENDS = ("tensorflow", "jax", "torch")
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
DEFAULT_BACKEND = "tensorflow"  # the lab's, and the one installed with mnist-lab
# The variables the backends and BLAS libraries read when they start.
_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# A GPU shared by several worker processes: each backend takes the memory it needs, not (JAX's
# default) 75 % of the GPU at start-up, or (TensorFlow's) all of it.
SHARED_GPU_ENVIRONMENT = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def selected_backend() -> str:
    """The backend this process trains on, or will: ``$KERAS_BACKEND`` (which use_backend sets),
    else TensorFlow; read without importing Keras."""
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


def use_backend(name=None) -> str:
    """Make ``name`` (default ``$KERAS_BACKEND`` or TensorFlow) the Keras backend of this process,
    before Keras is imported; UsageError if Keras already runs on another one, or the backend's
    package is not installed."""
    import importlib.util

    from mnist_lab.core.errors import UsageError, quoted

    name = name or selected_backend()
    if name not in BACKENDS:
        raise UsageError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        running = sys.modules["keras"].backend.backend()
        if running != name:
            raise UsageError(f"backend {name}: this process already runs Keras on {running}")
        # Told to what reads them later, here (selected_backend: the experiments' identity) and in
        # local workers, which then run the kernels this process's TensorFlow chose as it started.
        os.environ["KERAS_BACKEND"] = name
        if name == "tensorflow":
            os.environ[ONEDNN_VARIABLE] = onednn_kernels()
        return name
    if importlib.util.find_spec(name) is None:
        raise UsageError(f"backend {name}: the {name} package is not installed; "
                         f"pip install 'mnist-lab[{'jax' if name == 'jax' else name}]'")
    os.environ["KERAS_BACKEND"] = name
    if name == "tensorflow":
        # TensorFlow turns its oneDNN kernels on by itself only on CPUs with newer vector
        # extensions; on an AVX2 Zen 3 they halve the CNN's epoch (37.3 -> 18.8 s, same numbers
        # to 4 digits). Where they are on already (this AVX-512 machine) nothing changes. An
        # explicit setting by the user wins; the kernels that run are recorded with every result.
        value = os.environ.setdefault(ONEDNN_VARIABLE, "1")
        if value.lower() not in _ONEDNN_SETTINGS:  # TensorFlow would warn and choose by the CPU
            raise UsageError(f"{ONEDNN_VARIABLE}={quoted(value, 40)}: TensorFlow reads 0, 1, true or false "
                             f"(in any case); unset it for mnist-lab's default, 1")
    # Deterministic GPU kernels (nothing changes on a CPU): XLA's for JAX; for PyTorch, cuBLAS
    # needs a fixed workspace, or torch.use_deterministic_algorithms refuses its matrix products.
    if name == "jax" and "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_gpu_deterministic_ops=true".strip()
    if name == "torch":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return name


# TensorFlow's reading of TF_ENABLE_ONEDNN_OPTS (its ReadBoolFromEnvVar: lower case, no spaces).
_ONEDNN_SETTINGS = {"1": "1", "true": "1", "0": "0", "false": "0"}


def onednn_kernels() -> str:
    """Whether TensorFlow runs its oneDNN kernels: "1" or "0". Once TensorFlow has started, its own
    answer: it read the variable once then, and without it decides by the CPU, so the variable's
    value now can say otherwise (a notebook that imported Keras before mnist-lab). Before, what the
    variable will make it ("true" and "1" are one setting); "default" where it does not say."""
    if "tensorflow" in sys.modules:
        try:  # no public API says it; this is what TensorFlow's own tests ask
            from tensorflow.python.util import _pywrap_util_port

            return "1" if _pywrap_util_port.IsMklEnabled() else "0"
        except (ImportError, AttributeError):  # another TensorFlow: the variable says what it can
            pass
    return _ONEDNN_SETTINGS.get(os.environ.get(ONEDNN_VARIABLE, "").lower(), "default")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int, override=None) -> int:
    """``override``, else this machine's cores shared among ``workers`` (at least one each)."""
    return override or max(1, available_cores() // workers)


def thread_environment(threads: int) -> dict:
    """Environment variables that give a new process ``threads`` compute threads (XLA's CPU
    client, JAX's, reads its count from its flags)."""
    xla = (f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
           f"intra_op_parallelism_threads={threads}")
    return {**{name: str(threads) for name in _THREAD_VARIABLES},
            "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {xla}".strip()}


def limit_threads(threads: int) -> bool:
    """Give this process ``threads`` compute threads if its backend has not started yet;
    False when it has (then its count stays as it is, and compute_threads() says which)."""
    if any(name in sys.modules for name in BACKENDS):
        return os.environ.get("TF_NUM_INTRAOP_THREADS") == str(threads)
    os.environ.update(thread_environment(threads))
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # NumPy's BLAS, already loaded
    return True


def compute_threads() -> int:
    """The intra-op threads training uses here: the set count, else the backend's default (all cores)."""
    return int(os.environ.get("TF_NUM_INTRAOP_THREADS") or available_cores())


def visible_gpus() -> list[str]:
    """The NVIDIA GPUs this process may use, by CUDA id: ``$CUDA_VISIBLE_DEVICES`` when set, else
    those ``nvidia-smi`` lists, else none (read without importing a backend)."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [gpu.strip() for gpu in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if gpu.strip()
                and gpu.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    import subprocess  # here: the command line reads BACKENDS at start-up, and --help stays quick

    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.strip().isdigit()] if not listed.returncode else []


def gpu_of_worker(worker: int, gpus: list[str]) -> str | None:
    """The GPU local worker number ``worker`` trains on: the GPUs in turn, or None without GPUs."""
    return gpus[worker % len(gpus)] if gpus else None


def gpu_environment(gpu: str, shared: bool) -> dict:
    """Environment variables that put a new process on ``gpu`` alone (shared with other workers
    or not)."""
    return {"CUDA_VISIBLE_DEVICES": gpu, **(SHARED_GPU_ENVIRONMENT if shared else {})}


def use_gpu(gpu: str, shared: bool) -> bool:
    """Put this process on ``gpu`` if its backend has not started yet; False when it has."""
    if any(name in sys.modules for name in BACKENDS):
        return os.environ.get("CUDA_VISIBLE_DEVICES") == gpu
    os.environ.update(gpu_environment(gpu, shared))
    return True
