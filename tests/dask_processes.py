"""A real Dask cluster for the tests: the `dask scheduler` and `dask worker` command-line
programs on 127.0.0.1, each worker in its own process group (as if on its own machine), with
the three ways a worker dies: its machine lost (the whole group), its nanny alone, or its worker
process alone (as the kernel's OOM killer does: the nanny starts a new one)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

DASK_BIN = os.path.join(os.path.dirname(sys.executable), "dask")
KILLS = ("machine", "nanny", "worker")


class RealCluster:
    def __init__(self, folder: Path):
        self.folder, self.workers = folder, []
        scheduler_file = folder / "scheduler.json"
        self.scheduler = subprocess.Popen([DASK_BIN, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                           "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                          stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "w"),
                                          start_new_session=True)
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # the file is written before the scheduler listens on every interface
        self.address = json.loads(scheduler_file.read_text())["address"]

    def add_worker(self, preload=None) -> subprocess.Popen:
        """One `dask worker` (a nanny and its worker process), with ``preload`` (a module path) run
        in its worker process before any task."""
        options = [] if preload is None else ["--preload", str(preload)]
        log = open(self.folder / f"worker-{len(self.workers)}.log", "w")
        worker = subprocess.Popen([DASK_BIN, "worker", self.address, "--nworkers", "1", "--nthreads", "1",
                                   "--no-dashboard", *options], stdout=subprocess.DEVNULL, stderr=log,
                                  start_new_session=True)
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count, timeout=120):
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(count, timeout=timeout)

    def executing(self) -> int:
        """How many tasks the cluster's workers are running now."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            return sum(client.run(lambda dask_worker: len(dask_worker.state.executing)).values())

    @staticmethod
    def kill(worker: subprocess.Popen, how: str):
        if how == "machine":
            os.killpg(worker.pid, signal.SIGKILL)
        elif how == "nanny":
            os.kill(worker.pid, signal.SIGKILL)
        else:
            for child in psutil.Process(worker.pid).children(recursive=True):
                if "spawn_main" in " ".join(child.cmdline()):  # not the resource tracker
                    child.kill()

    def close(self):
        for process in [*self.workers, self.scheduler]:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
