"""Where a sweep's trajectories run when one process is not enough: a Dask cluster.

`--workers N` starts a ``distributed.LocalCluster`` of N worker processes on this
machine (and shuts it down at the end, also on Ctrl-C and errors);
`--scheduler ADDRESS` uses a running cluster. Dask is imported only here.

The unit of work is a trajectory, trained by the same function as in-process
(trajectory.train_trajectory). The client loads and validates the data once and
sends it to every worker (no shared filesystem needed); workers stream each
epoch and each cell back through a Dask queue, as plain data, and the client
alone writes the cell files and checkpoints, as each arrives.

Faults, whatever the moment a worker dies:
- mid-trajectory: Dask runs the task again elsewhere, and it resumes from the
  trajectory's latest checkpoint, which the client keeps in a Dask Variable;
- after its trajectory ended: the client has released the task's future as
  soon as it handled its result, so Dask never runs a finished trajectory
  again (a re-run would wait forever for a checkpoint Variable the client had
  deleted: the hang this design removes);
- with no worker left, or no event from any trajectory for a bounded time,
  the client says which trajectories wait and on what, and stops with an error
  (every finished cell is kept; the same command resumes).
A trajectory that fails by itself (an exception, a NaN loss) is reported once,
not retried. A worker whose mnist-lab, Keras or backend differs from the
client's trains nothing: its task says so and the trajectory goes to the other
workers; the client also checks the versions of every record before writing it.
When the client stops (Ctrl-C, an error), it cancels its tasks, and a worker
drops a cancelled trajectory at its next epoch's end.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass

from mnist_lab.core import backend_logs, backends, interrupts
from mnist_lab.core.errors import UsageError, check_count, described, quoted
from mnist_lab.core.schema import is_of
from mnist_lab.training.trajectory import DataCache, failure_message, train_trajectory

POLL_SECONDS = 0.25  # how long the client waits for a finished trajectory before it handles events
WORKER_WAIT_SECONDS = 60  # how long a sweep waits while no usable worker is there (--worker-timeout)
STALL_SECONDS = 600  # no event from any trajectory for this long: the cluster is stuck (longer than any epoch)
# Dask's own default connect timeout is 30 s; a scheduler that answers at all answers in well under
# a second, so a sweep says sooner that nothing is there. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT
# (or Dask's config) sets another.
CONNECT_TIMEOUT = "10s"
# The client sets a trajectory's checkpoint Variable before it submits the task and deletes it once
# it has handled the trajectory, so a task that finds none (a result lost with its worker, computed
# again after the client took it) was abandoned: it frees its worker within seconds, not 30 s (the
# scheduler answers at once when the Variable is there; the wait only counts when it is not).
CHECKPOINT_WAIT_SECONDS = 5
# A finished task's result (its cells' records, kilobytes) comes from a live worker in milliseconds;
# one not fetched by then was likely lost with its worker and Dask runs the task again. The client
# goes back to its events meanwhile (at 30 s every other trajectory's events waited as long; a
# result that was only slow is fetched on the next pass).
RESULT_WAIT_SECONDS = 5
# The versions a cell's numbers depend on: a worker that differs in any trains nothing.
CHECKED_VERSIONS = ("mnist_lab", "keras", "backend", "backend_version")
# Dask's own sampling in each worker (a statistical profiler every 10 ms, memory every 100 ms, a
# 20 ms tick) took about 10 % of a 2-core machine from training (bench/parallel_speed.py); the
# sweep needs none of it.
QUIET_WORKERS = {"distributed.worker.profile.enabled": False, "distributed.worker.profile.interval": "1s",
                 "distributed.worker.memory.monitor-interval": "1s", "distributed.admin.tick.interval": "200ms",
                 "distributed.admin.system-monitor.interval": "2s"}
_worker_data = None  # each worker's DataCache: the arrays it prepared, kept between trajectories


class ClusterStalled(RuntimeError):
    """The cluster lost every usable worker, or made no progress for too long."""


@dataclass(frozen=True)
class ClusterSpec:
    """What the user asked for: a local cluster of ``workers`` processes (on this machine's
    ``gpus`` in turn, when it has some), or a ``scheduler`` address."""

    workers: int = None
    scheduler: str = None
    threads_per_worker: int = None
    gpus: tuple = ()
    worker_timeout: float = WORKER_WAIT_SECONDS

    @classmethod
    def create(cls, workers=None, scheduler=None, threads_per_worker=None,
               worker_timeout=None) -> "ClusterSpec":
        """The spec for these options (UsageError for an address that cannot be one, or more
        local workers than this machine has cores); a local cluster's workers go on the GPUs
        this machine has (a --scheduler cluster's workers are placed by whoever started them)."""
        # (The command line's options are checked by click already; the Python API's are not.)
        check_count("--workers", workers)
        check_count("--threads-per-worker", threads_per_worker)
        if worker_timeout is not None and not (is_of(worker_timeout, (int, float)) and worker_timeout >= 1):
            raise UsageError(f"--worker-timeout: expected a number of seconds >= 1 (inf: wait for good), "
                             f"got {described(worker_timeout)}")
        if scheduler is not None:
            scheduler = checked_address(scheduler)
        if workers is not None and workers > backends.available_cores():
            raise UsageError(f"--workers {workers}: this machine has {backends.available_cores()} core(s); "
                             f"more worker processes than cores only compete for them (at most "
                             f"{backends.available_cores()})")
        gpus = tuple(backends.visible_gpus()) if scheduler is None else ()
        return cls(workers, scheduler, threads_per_worker, gpus, worker_timeout or WORKER_WAIT_SECONDS)

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
        from mnist_lab.core.versions import installed

        backend = backends.use_backend()
        return WorkerSetup(backend, self.threads(), self.gpus,
                           shared_gpus=bool(self.gpus) and self.workers > len(self.gpus),
                           versions=checked_versions(installed(backend)))


def cluster_for(workers=None, scheduler=None, threads_per_worker=None, worker_timeout=None):
    """The ClusterSpec the --workers/--scheduler options ask for (sweep and search, the command
    line and the API), None for this process alone; UsageError for options that contradict."""
    if workers is not None and scheduler is not None:
        raise UsageError("--workers and --scheduler exclude each other: a local cluster, or a running one")
    if workers is None and scheduler is None:
        if threads_per_worker is not None:
            raise UsageError("--threads-per-worker needs --workers or --scheduler")
        return None
    return ClusterSpec.create(workers, scheduler, threads_per_worker, worker_timeout)


def checked_address(address: str) -> str:
    """``address`` when Dask can connect to it (protocol://host:port, a port in 1..65535, or a
    bare host:port, which Dask reads as tcp); UsageError naming it otherwise."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import backends as protocols

    expected = "expected an address such as tcp://10.0.0.5:8786"
    try:
        protocol, location = parse_address(address)
        if protocol not in protocols or not address.isprintable() or any(map(str.isspace, address)):
            raise ValueError
        if protocol in ("tcp", "tls"):
            host, port = parse_host_port(location)
            if not host or port is None or not 0 < int(port) < 65536:
                raise ValueError
    except (ValueError, TypeError):
        raise UsageError(f"--scheduler {quoted(address)}: {expected} (a protocol among {', '.join(sorted(protocols))}, "
                         f"a host, a port from 1 to 65535)") from None
    return address


def checked_versions(found: dict) -> dict:
    return {name: found.get(name) for name in CHECKED_VERSIONS}


def describe_versions(versions: dict) -> str:
    return (f"mnist-lab {versions['mnist_lab']}, Keras {versions['keras']}, "
            f"{versions['backend']} {versions['backend_version']}")


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker sets before its backend starts: the backend, its compute threads and, on a
    local cluster with GPUs, its GPU (local workers are numbered 0..N-1 by LocalCluster); and
    the client's versions, which the worker's must equal."""

    backend: str
    threads: int
    gpus: tuple = ()
    shared_gpus: bool = False
    versions: dict = None

    def apply(self, worker_name):
        backend_logs.quiet([])  # a `dask worker` started by hand: its terminal is spared the chatter too
        backends.use_backend(self.backend)
        backends.limit_threads(self.threads)
        if self.gpus and isinstance(worker_name, int):
            backends.use_gpu(backends.gpu_of_worker(worker_name, list(self.gpus)), self.shared_gpus)


def run_on_dask(dask_client: "DaskClient", groups, data, listener, saved, log=print) -> dict:
    """Train ``groups`` (lists of cells, one trajectory each) on the open ``dask_client``'s cluster;
    return failures.

    ``listener`` (sweep.SweepListener) handles every event in this process: the workers' cells,
    checkpoints, epochs and notes, and failures. ``saved`` (sweep.SweepCheckpoints) gives each
    trajectory's checkpoint to resume from, and forgets it when the trajectory ends.
    """
    run = _Run(dask_client.client, dask_client.spec, groups, data, listener, saved, log, dask_client.refused)
    try:
        return run.wait()
    finally:
        run.cancel()  # a no-op when every trajectory ended; else the cluster is not kept busy


class _Run:
    """One sweep's trajectories on a client: submitted at once, followed until all are done.

    Each trajectory's latest checkpoint also lives in a Dask Variable: when Dask runs a
    trajectory again after its worker died, the new attempt resumes from there. A future is
    released the moment its result is handled, and only then its Variable deleted."""

    def __init__(self, client, spec: ClusterSpec, groups, data, listener, saved, log, refused):
        from distributed import Queue, Variable

        self.worker_timeout, setup = spec.worker_timeout, spec.setup()
        self.client, self.setup, self.listener, self.saved, self.log = client, setup, listener, saved, log
        self.name = f"mnist-lab-{uuid.uuid4().hex}"
        self.queue = Queue(self.name, client=client)
        self.epochs_seen, self.failures, self.refused, self.parked = {}, {}, dict(refused), set()
        self.data, self.scattered, self.groups, self.datasets, self.latest, self.futures = {}, {}, {}, {}, {}, {}
        self.last_progress = self.last_worker = time.monotonic()
        for index, group in enumerate(groups):
            # Each distinct dataset is loaded and validated here, and sent to every worker once.
            dataset = data.dataset(group[0].config.data)
            self.data[dataset.digest] = dataset
            self.groups[index], self.datasets[index] = group, dataset.digest
            self.latest[index] = Variable(f"{self.name}-checkpoint-{index}", client=client)
            self.latest[index].set(saved.resume(group))
            self._submit(index, self._placement())

    def _submit(self, index, workers=None):
        """Send trajectory ``index`` to the cluster: anywhere, or only to ``workers`` (when that
        list is empty, it waits here for a usable worker)."""
        if workers is not None and not workers:
            self.parked.add(index)
            return
        future = self.client.submit(_trajectory_task, index, list(self.groups[index]),
                                    self._sent(self.datasets[index]), self.queue.name,
                                    self.latest[index].name, self.setup, pure=False, workers=workers,
                                    allow_other_workers=False, key=f"trajectory-{index}-{uuid.uuid4().hex}")
        self.futures[future] = (index, None if workers is None else set(workers))

    def _sent(self, digest):
        """The dataset's future on the cluster, sent again when the workers holding it are gone."""
        if digest not in self.scattered or self.scattered[digest].status in ("cancelled", "lost", "error"):
            self.scattered[digest] = self.client.scatter(self.data[digest], broadcast=True, hash=False)
        return self.scattered[digest]

    def _lost_data(self):
        """Trajectories Dask cancelled because every worker holding their data died: sent again
        (with the data) when a usable worker is there, else parked until one comes."""
        for future in [future for future in self.futures if future.status == "cancelled"]:
            self.parked.add(self.futures.pop(future)[0])

    def wait(self) -> dict:
        from distributed import wait
        from distributed.client import FuturesCancelledError

        while self.futures or self.parked:
            interrupts.check()
            done = set()
            try:  # futures learn they are done from the scheduler's messages: no polling here
                if self.futures:
                    done = wait(list(self.futures), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
                else:  # every trajectory waits for a usable worker
                    time.sleep(POLL_SECONDS)
            except TimeoutError:
                pass
            except FuturesCancelledError:
                self._lost_data()
            self._drain()  # a finished trajectory's last events come before its result
            for future in done:
                self._finished(future)
            self._watch()
        return self.failures

    def _drain(self):
        """Handle the events workers sent, in this process (see trajectory.py)."""
        for kind, index, payload in self.queue.get(batch=True):
            self.last_progress = time.monotonic()
            group = self.groups.get(index)
            if group is None:  # a late event of a trajectory already handled
                continue
            if kind == "epoch":
                # A trajectory run again after its worker died repeats epochs: count each once.
                position, row = payload
                if row["epoch"] > self.epochs_seen.get(index, 0):
                    self.epochs_seen[index] = row["epoch"]
                    self.listener.epoch(group[position], row)
            elif kind == "cell":
                self._cell(group, *payload)
            elif kind == "checkpoint":
                self.listener.checkpoint(*payload)
                self.latest[index].set(payload[1])
            else:
                self.listener.note(*payload)

    def _cell(self, group, position, record):
        """Write a worker's cell, unless its versions are not the client's (never written)."""
        made_with = checked_versions(record.get("versions", {}))
        if made_with != self.setup.versions:
            self.log(f"Note: a cell made with {describe_versions(made_with)} was not written (this client "
                     f"runs {describe_versions(self.setup.versions)})")
            return
        self.listener.cell(group[position], record)

    def _finished(self, future):
        if future.status == "cancelled":  # its data was lost, not its work: see _lost_data
            self._lost_data()
            return
        index, _ = self.futures[future]
        group = self.groups[index]
        try:
            outcome = future.result(timeout=RESULT_WAIT_SECONDS)
        except TimeoutError:  # its result was lost with its worker, and Dask runs it again: wait on
            return
        except Exception as error:  # the trajectory's workers kept dying (Dask's allowed failures)
            outcome = {"cells": [], "error": f"lost on the Dask cluster: {type(error).__name__}: {error}",
                       "traceback": traceback.format_exception(error)}
        self.last_progress = time.monotonic()
        del self.futures[future]  # released: Dask will not run a handled trajectory again
        if "refused" in outcome:
            self._refused(index, outcome["worker"], outcome["refused"])
            return
        if "abandoned" in outcome:  # it saw no checkpoint or a cancelled state, yet this client waits on it
            self._submit(index, self._placement())
            return
        for position, record in outcome["cells"]:  # in case an event was lost: the result holds them all
            self._cell(group, position, record)
        if "error" in outcome:
            self.failures.update(self.listener.failed(group, outcome["error"], outcome["traceback"]))
        self.saved.finished(group)
        del self.groups[index]
        self.latest.pop(index).delete()

    def _refused(self, index, worker, versions):
        """A worker of other versions refused trajectory ``index``: send it to the others."""
        if worker not in self.refused:
            self.refused[worker] = versions
            self.log(refusal_note(worker, versions, self.setup.versions))
        self._submit(index, self._placement())

    def _placement(self):
        """Where a trajectory may go: anywhere, unless some workers were refused for their versions."""
        return self._usable_workers() if self.refused else None

    def _usable_workers(self) -> list:
        return sorted(set(self.client.nthreads()) - set(self.refused))

    def _watch(self):
        """Resend trajectories whose allowed workers are all gone; stop (ClusterStalled) when no
        usable worker is left, or nothing has happened, for too long."""
        now, usable = time.monotonic(), self._usable_workers()
        if usable:
            self.last_worker = now
        for future, (index, allowed) in list(self.futures.items()):
            if allowed is not None and usable and not allowed & set(usable):
                del self.futures[future]
                self._submit(index, usable)
        for index in sorted(self.parked) if usable else ():
            self.parked.discard(index)
            self._submit(index, self._placement())
        if now - self.last_worker > self.worker_timeout:
            raise ClusterStalled(f"no usable Dask worker for {self.worker_timeout:g} s"
                                 f"{self._refusals()}; {self._waiting()}")
        if now - self.last_progress > STALL_SECONDS:
            raise ClusterStalled(f"no trajectory made progress for {STALL_SECONDS} s; {self._waiting()}")

    def _refusals(self) -> str:
        return "" if not self.refused else f" (refused for their versions: {', '.join(sorted(self.refused))})"

    def _waiting(self) -> str:
        from mnist_lab.core.describe import describe_cell
        from mnist_lab.core.sweep_plan import longest

        processing = {key: worker for worker, keys in self.client.processing().items() for key in keys}
        waits = [f"{describe_cell(longest(self.groups[index]))} "
                 f"({'training on ' + processing[future.key] if future.key in processing else 'waiting for a worker'})"
                 for future, (index, _) in self.futures.items()]
        waits += [f"{describe_cell(longest(self.groups[index]))} (waiting for a usable worker)"
                  for index in sorted(self.parked)]
        return (f"{len(waits)} trajectories wait: {'; '.join(waits[:5])}{'; …' if len(waits) > 5 else ''}. "
                f"Finished cells are kept; the same command resumes the rest")

    def cancel(self):
        """Cancel every trajectory still on the cluster (their workers drop them at their next epoch)."""
        if self.futures:
            try:
                self.client.cancel(list(self.futures), force=True)
            except Exception:  # noqa: BLE001 (a client already cut off has nothing left to cancel)
                pass
            self.futures.clear()


class Abandoned(Exception):
    """This task's client cancelled it, or went away: the trajectory is no one's any more."""


class _QueueListener:
    """A trajectory's events on a worker, sent to the client's queue as plain data: the cell's
    position in its group, never the Cell object (see trajectory.py)."""

    def __init__(self, queue, index, group, still_wanted, cells: list):
        self.queue, self.index, self.cells, self.still_wanted = queue, index, cells, still_wanted
        self.position = {id(cell): position for position, cell in enumerate(group)}

    def epoch(self, cell, row):
        if not self.still_wanted():
            raise Abandoned()
        self.queue.put(("epoch", self.index, (self.position[id(cell)], row)))

    def cell(self, cell, record):
        self.cells.append((self.position[id(cell)], record))
        self.queue.put(("cell", self.index, self.cells[-1]))

    def checkpoint(self, key, data):
        self.queue.put(("checkpoint", self.index, (key, data)))

    def note(self, text):
        self.queue.put(("note", self.index, (text,)))


def _trajectory_task(index, group, dataset, queue_name, checkpoint_name, setup: WorkerSetup):
    """On a worker: train one trajectory from its latest checkpoint, streaming events to the client.
    Nothing escapes it as an exception: Dask sends a task's exception with its traceback object,
    and a traceback it cannot serialise leaves the client's future waiting forever."""
    cells = []  # (position, record) of each cell passed, also sent as events
    try:
        return _train_on_worker(index, group, dataset, queue_name, checkpoint_name, setup, cells)
    except Abandoned:
        return {"cells": cells, "abandoned": True}
    except Exception as error:  # reported once, not retried: the same inputs would fail again
        return {"cells": cells, "error": failure_message(error), "traceback": traceback.format_exception(error)}


def _train_on_worker(index, group, dataset, queue_name, checkpoint_name, setup: WorkerSetup, cells: list):
    global _worker_data
    from distributed import Queue, Variable, get_worker
    from distributed.worker import thread_state

    from mnist_lab.core.versions import installed

    worker, key = get_worker(), thread_state.key
    setup.apply(worker.name)
    mine = checked_versions(installed(setup.backend))
    if mine != setup.versions:
        return {"refused": mine, "worker": worker.address}
    try:
        resume = Variable(checkpoint_name).get(timeout=CHECKPOINT_WAIT_SECONDS)
    except TimeoutError:  # its client handled it already, or is gone
        raise Abandoned() from None

    def still_wanted() -> bool:
        task = worker.state.tasks.get(key)
        return task is not None and task.state not in ("cancelled", "released", "forgotten")

    _worker_data = _worker_data or DataCache()
    listener = _QueueListener(Queue(queue_name), index, group, still_wanted, cells)
    train_trajectory(group, dataset, _worker_data.arrays(dataset, group[0].config), listener, resume)
    return {"cells": cells}


class DaskClient:
    """A Dask client for ``spec``, with its local cluster when it started one; both are closed
    on leaving, whatever the reason (no worker process outlives the sweep)."""

    def __init__(self, spec: ClusterSpec, log):
        self.spec, self.log, self.cluster, self.client = spec, log, None, None
        self.refused = {}  # worker address -> its versions, when they are not this client's

    def __enter__(self):
        import dask
        from distributed import Client, LocalCluster

        try:
            if self.spec.scheduler is not None:
                self.client = self._connect(Client)
            else:
                dask.config.set(QUIET_WORKERS)  # read by the workers the cluster starts
                self.cluster = LocalCluster(n_workers=self.spec.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=":0" if _has_dashboard() else None,
                                            env=backends.thread_environment(self.spec.threads()),
                                            silence_logs=50, preload=[__name__])  # see dask_setup
                self.client = Client(self.cluster)
            self.refused = check_versions(self.client, self.log)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.log(f"Dask: {self.spec.describe()}"
                 + (f"; dashboard {self.client.dashboard_link}" if _has_dashboard() else ""))
        return self

    def _connect(self, client_class):
        """A client of the --scheduler cluster, once it has a worker; UsageError naming the address
        when no scheduler answers within the connect timeout, or no worker comes."""
        address = self.spec.scheduler
        timeout = connect_timeout()
        self.log(f"Connecting to the Dask scheduler {address} (waiting up to {timeout:g} s)…")
        try:
            _probe(address, timeout)
            client = client_class(address, timeout=timeout)
        except (OSError, TimeoutError) as error:
            raise UsageError(f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s "
                             f"({type(error).__name__}); check the address, or wait longer with "
                             f"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=60s") from None
        self.client = client
        try:
            client.wait_for_workers(1, timeout=self.spec.worker_timeout)
        except TimeoutError:
            raise UsageError(f"--scheduler {address}: the scheduler has no worker after "
                             f"{self.spec.worker_timeout:g} s; "
                             f"start one with `dask worker {address}`") from None
        return client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _probe(address: str, timeout: float):
    """Ask the scheduler at ``address`` who it is, all within ``timeout`` (TimeoutError, OSError):
    a Client's own timeout covers the TCP connection but not Dask's handshake, so a peer that
    accepts and never answers would keep it waiting without end."""
    import asyncio

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            await comm.read()
        finally:
            comm.abort()

    asyncio.run(asyncio.wait_for(identity(), timeout))


def dask_setup(worker):
    """Run by each local worker process as it starts (Dask's preload): Ctrl-C in a terminal
    reaches the whole process group, and this client shuts its workers down itself; left to
    asyncio, each worker would print a KeyboardInterrupt traceback."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def connect_timeout() -> float:
    """Seconds to wait for a scheduler: Dask's ``distributed.comm.timeouts.connect`` when the user
    set it (its environment variable or a config file), else CONNECT_TIMEOUT."""
    import dask
    from dask.utils import parse_timedelta

    configured = dask.config.get("distributed.comm.timeouts.connect")
    user_set = "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT" in os.environ or parse_timedelta(configured) != 30
    return float(parse_timedelta(configured if user_set else CONNECT_TIMEOUT))


def _has_dashboard() -> bool:
    try:
        import bokeh  # noqa: F401  (Dask serves its dashboard with it)
    except ImportError:
        return False
    return True


def check_versions(client, log) -> dict:
    """The workers whose mnist-lab, Keras or backend differ from this client's (they would train
    other code under the same keys), each noted; UsageError when every worker does. Workers that
    join later are checked by each task (see _trajectory_task)."""
    from mnist_lab.core.versions import installed

    backend = backends.use_backend()
    mine = checked_versions(installed(backend))
    found = {worker: checked_versions(versions) for worker, versions in client.run(installed, backend).items()}
    wrong = {worker: versions for worker, versions in found.items() if versions != mine}
    if wrong and len(wrong) == len(found):
        raise UsageError(f"Dask workers with other versions than this client ({describe_versions(mine)}): "
                         f"{'; '.join(f'{worker}: {describe_versions(versions)}' for worker, versions in wrong.items())}; "
                         f"install the same versions on every worker")
    for worker, versions in wrong.items():
        log(refusal_note(worker, versions, mine))
    return wrong


def refusal_note(worker, versions: dict, mine: dict) -> str:
    return (f"Note: Dask worker {worker} has {describe_versions(versions)}, not this client's "
            f"{describe_versions(mine)}: it is given no work")
