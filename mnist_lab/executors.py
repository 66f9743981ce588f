"""Where a sweep's trajectories run when one process is not enough: a Dask cluster.

`--workers N` starts a ``distributed.LocalCluster`` of N worker processes on this
machine (and shuts it down at the end, also on Ctrl-C and errors);
`--scheduler ADDRESS` uses a running cluster. Dask is imported only here.

The unit of work is a trajectory, trained by the same function as in-process
(trajectory.train_trajectory). The client loads and validates the data once and
sends it to every worker (no shared filesystem needed); workers stream each
epoch and each cell back through a Dask queue, and the client alone writes the
cell files and checkpoints, as each arrives. A worker killed mid-trajectory
costs that trajectory at most one epoch: Dask runs it again on another worker,
from its latest checkpoint, and its cells come out identical. A trajectory that fails by itself (an exception, a NaN loss) is
reported once, not retried.
"""

from __future__ import annotations

import heapq
import traceback
import uuid
from dataclasses import dataclass

from . import backends
from .errors import UsageError
from .trajectory import DataCache, failure_message, train_trajectory

POLL_SECONDS = 0.25  # how long the client waits for a finished trajectory before it handles events
WORKER_WAIT_SECONDS = 60  # how long a --scheduler cluster may take to show a worker
# Dask's own sampling in each worker (a statistical profiler every 10 ms, memory every 100 ms, a
# 20 ms tick) took about 10 % of a 2-core machine from training (bench/parallel_speed.py); the
# sweep needs none of it.
QUIET_WORKERS = {"distributed.worker.profile.enabled": False, "distributed.worker.profile.interval": "1s",
                 "distributed.worker.memory.monitor-interval": "1s", "distributed.admin.tick.interval": "200ms",
                 "distributed.admin.system-monitor.interval": "2s"}
_worker_data = None  # each worker's DataCache: the arrays it prepared, kept between trajectories


@dataclass(frozen=True)
class ClusterSpec:
    """What the user asked for: a local cluster of ``workers`` processes (on this machine's
    ``gpus`` in turn, when it has some), or a ``scheduler`` address."""

    workers: int = None
    scheduler: str = None
    threads_per_worker: int = None
    gpus: tuple = ()

    @classmethod
    def create(cls, workers=None, scheduler=None, threads_per_worker=None) -> "ClusterSpec":
        """The spec for these options; a local cluster's workers go on the GPUs this machine has
        (a --scheduler cluster's workers are placed by whoever started them, e.g. dask-cuda)."""
        gpus = tuple(backends.visible_gpus()) if scheduler is None else ()
        return cls(workers, scheduler, threads_per_worker, gpus)

    def threads(self) -> int:
        """Compute threads per worker: the override, else this machine's cores shared out (local),
        else the override or one (remote workers: their cores are unknown here)."""
        if self.scheduler is not None:
            return self.threads_per_worker or 1
        return backends.threads_per_worker(self.workers, self.threads_per_worker)

    def describe(self) -> str:
        where = f"the Dask scheduler {self.scheduler}" if self.scheduler else f"{self.workers} local worker processes"
        placed = ""
        if self.gpus:
            per_gpu = -(-self.workers // len(self.gpus))
            placed = (f", on GPU{'s' if len(self.gpus) > 1 else ''} {', '.join(self.gpus)}"
                      f" (up to {per_gpu} worker{'s' if per_gpu > 1 else ''} per GPU)")
        return f"{where}, {self.threads()} compute thread(s) each{placed}"

    def setup(self) -> "WorkerSetup":
        return WorkerSetup(backends.use_backend(), self.threads(), self.gpus,
                           shared_gpus=bool(self.gpus) and self.workers > len(self.gpus))


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker sets before its backend starts: the backend, its compute threads and, on a
    local cluster with GPUs, its GPU (local workers are numbered 0..N-1 by LocalCluster)."""

    backend: str
    threads: int
    gpus: tuple = ()
    shared_gpus: bool = False

    def apply(self, worker_name):
        backends.use_backend(self.backend)
        backends.limit_threads(self.threads)
        if self.gpus and isinstance(worker_name, int):
            backends.use_gpu(backends.gpu_of_worker(worker_name, list(self.gpus)), self.shared_gpus)


def plan_seconds(trajectory_seconds: list, workers: int) -> float:
    """Wall time of trajectories of these durations on ``workers`` workers: longest first, each to
    the worker that frees up first (what Dask's scheduler does with equal-priority tasks)."""
    finish = [0.0] * max(1, workers)
    for seconds in sorted(trajectory_seconds, reverse=True):
        heapq.heapreplace(finish, finish[0] + seconds)
    return max(finish)


def run_on_dask(spec: ClusterSpec, groups, data, listener, saved, log=print) -> dict:
    """Train ``groups`` (lists of cells, one trajectory each) on the cluster; return failures.

    ``listener`` (sweep.SweepListener) handles every event in this process: the workers' cells,
    checkpoints, epochs and notes, and failures. ``saved`` (sweep.SweepCheckpoints) gives each
    trajectory's checkpoint to resume from, and forgets it when the trajectory ends.
    """
    if not groups:
        return {}
    with _client(spec, log) as client:
        return _Run(client, spec.setup(), groups, data, listener, saved).wait()


class _Run:
    """One sweep's trajectories on a client: submitted at once, followed until all are done.

    Each trajectory's latest checkpoint also lives in a Dask Variable: when Dask runs a
    trajectory again after its worker died, the new attempt resumes from there."""

    def __init__(self, client, setup, groups, data, listener, saved):
        from distributed import Queue, Variable

        self.listener, self.saved = listener, saved
        run = f"mnist-lab-{uuid.uuid4().hex}"
        self.queue = Queue(run, client=client)
        self.epochs_seen, self.failures = {}, {}
        scattered, self.groups, self.latest = {}, {}, {}
        for index, group in enumerate(groups):
            # Each distinct dataset is loaded and validated here, and sent to every worker once.
            dataset = data.dataset(group[0].config.data)
            if dataset.digest not in scattered:
                scattered[dataset.digest] = client.scatter(dataset, broadcast=True, hash=False)
            self.latest[index] = Variable(f"{run}-checkpoint-{index}", client=client)
            self.latest[index].set(saved.resume(group))
            future = client.submit(_trajectory_task, index, group, scattered[dataset.digest], self.queue.name,
                                   self.latest[index].name, setup, pure=False,
                                   key=f"trajectory-{index}-{uuid.uuid4().hex}")
            self.groups[future] = (index, group)

    def wait(self) -> dict:
        from distributed import wait

        pending = set(self.groups)
        while pending:
            try:  # futures learn they are done from the scheduler's messages: no polling here
                done = wait(pending, timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = set()
            self._drain()  # a finished trajectory's last events come before its result
            for future in done:
                self._finished(future)
            pending -= done
        return self.failures

    def _drain(self):
        """Handle the events workers sent, in this process (see trajectory.py)."""
        for kind, index, payload in self.queue.get(batch=True):
            if kind == "epoch":
                # A trajectory run again after its worker died repeats epochs: count each once.
                cell, row = payload
                if row["epoch"] > self.epochs_seen.get(index, 0):
                    self.epochs_seen[index] = row["epoch"]
                    self.listener.epoch(cell, row)
            elif kind == "checkpoint":
                self.listener.checkpoint(*payload)
                self.latest[index].set(payload[1])
            else:
                getattr(self.listener, kind)(*payload)

    def _finished(self, future):
        index, group = self.groups[future]
        try:
            outcome = future.result()
        except Exception as error:  # the trajectory's workers kept dying (Dask's allowed failures)
            outcome = {"cells": [], "error": f"lost on the Dask cluster: {type(error).__name__}: {error}",
                       "traceback": traceback.format_exception(error)}
        for cell, record in outcome["cells"]:  # in case an event was lost: the result holds them all
            self.listener.cell(cell, record)
        if "error" in outcome:
            self.failures.update(self.listener.failed(group, outcome["error"], outcome["traceback"]))
        self.saved.finished(group)
        self.latest[index].delete()


class _QueueListener:
    """A trajectory's events on a worker, sent to the client's queue (see trajectory.py)."""

    def __init__(self, queue, index):
        self.queue, self.index, self.cells = queue, index, []

    def epoch(self, cell, row):
        self.queue.put(("epoch", self.index, (cell, row)))

    def cell(self, cell, record):
        self.cells.append((cell, record))
        self.queue.put(("cell", self.index, (cell, record)))

    def checkpoint(self, key, data):
        self.queue.put(("checkpoint", self.index, (key, data)))

    def note(self, text):
        self.queue.put(("note", self.index, (text,)))


def _trajectory_task(index, group, dataset, queue_name, checkpoint_name, setup: WorkerSetup):
    """On a worker: train one trajectory from its latest checkpoint, streaming events to the client."""
    global _worker_data
    from distributed import Queue, Variable, get_worker

    setup.apply(get_worker().name)
    _worker_data = _worker_data or DataCache()
    listener = _QueueListener(Queue(queue_name), index)
    try:
        arrays = _worker_data.arrays(dataset, group[0].config)
        train_trajectory(group, dataset, arrays, listener, Variable(checkpoint_name).get())
    except Exception as error:  # reported once, not retried: the same inputs would fail again
        return {"cells": listener.cells, "error": failure_message(error),
                "traceback": traceback.format_exception(error)}
    return {"cells": listener.cells}


class _client:
    """A Dask client for ``spec``, with its local cluster when it started one; both are closed
    on leaving, whatever the reason (no worker process outlives the sweep)."""

    def __init__(self, spec: ClusterSpec, log):
        self.spec, self.log, self.cluster, self.client = spec, log, None, None

    def __enter__(self):
        import dask
        from distributed import Client, LocalCluster

        try:
            if self.spec.scheduler is not None:
                self.client = Client(self.spec.scheduler, timeout=f"{WORKER_WAIT_SECONDS}s")
                self.client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            else:
                dask.config.set(QUIET_WORKERS)  # read by the workers the cluster starts
                self.cluster = LocalCluster(n_workers=self.spec.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=":0" if _has_dashboard() else None,
                                            env=backends.thread_environment(self.spec.threads()),
                                            silence_logs=50)
                self.client = Client(self.cluster)
            check_versions(self.client)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.log(f"Dask: {self.spec.describe()}"
                 + (f"; dashboard {self.client.dashboard_link}" if _has_dashboard() else ""))
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _has_dashboard() -> bool:
    try:
        import bokeh  # noqa: F401  (Dask serves its dashboard with it)
    except ImportError:
        return False
    return True


def check_versions(client):
    """Refuse workers whose mnist-lab or Keras differs from this client's, or that lack its backend
    (UsageError naming them): they would train other code under the same keys."""
    from .versions import installed

    backend = backends.use_backend()
    mine = installed(backend)
    wrong = [f"{worker}: mnist-lab {found['mnist_lab']}, Keras {found['keras']}, {backend} {found['backend_version']}"
             for worker, found in client.run(installed, backend).items()
             if (found["mnist_lab"], found["keras"]) != (mine["mnist_lab"], mine["keras"])
             or found["backend_version"] == "not installed"]
    if wrong:
        raise UsageError(f"Dask workers with other versions than this client (mnist-lab {mine['mnist_lab']}, "
                         f"Keras {mine['keras']}, {backend} {mine['backend_version']}): {'; '.join(wrong)}; "
                         f"install the same versions on every worker")
