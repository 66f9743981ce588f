"""Compute threads of the process that trains: how many, set before the backend starts, recorded.

N Dask workers on C cores each get C/N threads, so they do not oversubscribe
the CPU; the count a result was trained with is written in its record, as a
different count may change the order of float sums.
"""

from __future__ import annotations

import os
import sys

# The variables the backends and BLAS libraries read when they start.
_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int, override=None) -> int:
    """``override``, else this machine's cores shared among ``workers`` (at least one each)."""
    return override or max(1, available_cores() // workers)


def thread_environment(threads: int) -> dict:
    """Environment variables that give a new process ``threads`` compute threads."""
    return {name: str(threads) for name in _THREAD_VARIABLES}


def limit_threads(threads: int) -> bool:
    """Give this process ``threads`` compute threads if its backend has not started yet;
    False when it has (then its count stays as it is, and compute_threads() says which)."""
    if "tensorflow" in sys.modules:
        return os.environ.get("TF_NUM_INTRAOP_THREADS") == str(threads)
    os.environ.update(thread_environment(threads))
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # NumPy's BLAS, already loaded
    return True


def compute_threads() -> int:
    """The intra-op threads training uses here: the set count, else the backend's default (all cores)."""
    return int(os.environ.get("TF_NUM_INTRAOP_THREADS") or available_cores())
