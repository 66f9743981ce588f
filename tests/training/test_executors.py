"""Sweeps on real Dask clusters (LocalCluster processes, a `dask scheduler` and `dask worker`)."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import psutil
import pytest
from click.testing import CliRunner

from mnist_lab import cli
from mnist_lab.training.estimates import plan_seconds
from mnist_lab.training.executors import ClusterSpec

from conftest import ROOT, default_sigint, descendants_alive, in_this_process, without_timings, write_config
from dask_processes import DASK_BIN, KILLS, RealCluster

SLICE = ["--set", "data.train_limit=2000", "--set", "data.test_limit=300"]


def grid(folder, name="par", epochs="[1, 3]", seeds="[0, 1]"):
    return write_config(folder, f"name: {name}\nseeds: {seeds}\nmodels:\n"
                                f"  - config: {ROOT / 'configs' / 'logreg.yaml'}\n    batch_size: [100]\n"
                                f"    epochs: {epochs}\n  - config: {ROOT / 'configs' / 'mlp.yaml'}\n"
                                f"    batch_size: [100]\n    epochs: [2]\n", name=f"{name}.yaml")


def sweep_command(path, results, *options):
    return [sys.executable, "-m", "mnist_lab", "sweep", str(path), *SLICE, "--results", str(results), "-q", *options]


def table(results, name="par"):
    """table.csv without the timing columns (the numbers must agree to the last digit)."""
    with open(results / "sweeps" / name / "table.csv") as stream:
        return without_timings(csv.DictReader(stream))


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The serial sweep of the grid: the reference every parallel run must equal."""
    folder = tmp_path_factory.mktemp("serial")
    path = grid(folder)
    in_this_process(sweep_command(path, folder / "results"))
    return path, table(folder / "results")


def test_a_local_cluster_gives_the_serial_table_and_leaves_no_process(serial, tmp_path):
    path, expected = serial
    process = subprocess.Popen(sweep_command(path, tmp_path, "--workers", "2", "--threads-per-worker", "2"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children = set()
    while process.poll() is None:
        try:
            children |= {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert "Dask: 2 local worker processes, 2 compute thread(s) each" in out
    assert "Sweep par: 6 cells trained, 0 skipped, 0 failed" in out
    assert table(tmp_path) == expected
    assert len(children) >= 2 and descendants_alive(children) == []
    records = [json.loads(cell.read_text()) for cell in (tmp_path / "sweeps" / "par" / "cells").glob("*.json")]
    assert {record["compute_threads"] for record in records} == {2}


def test_a_trajectory_killed_in_a_serial_sweep_resumes_on_a_worker(tmp_path):
    """The client sends a trajectory's checkpoint to the worker that goes on with it: killed after
    a few epochs in one process, resumed on a LocalCluster worker with as many compute threads,
    the cells equal those of a sweep never stopped."""
    longer = write_config(tmp_path, f"name: par\nseeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'mlp.yaml'}\n"
                                    f"    batch_size: [20]\n    epochs: [2, 4]\n", name="par.yaml")
    bigger = ("--set", "data.train_limit=10000")
    in_this_process([*sweep_command(longer, tmp_path / "serial"), *bigger])
    process = subprocess.Popen([*sweep_command(longer, tmp_path / "results"), *bigger], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    cells = tmp_path / "results" / "sweeps" / "par" / "cells"
    deadline = time.monotonic() + 120
    while not list(cells.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    threads = str(len(os.sched_getaffinity(0)))  # what the serial sweep used
    resumed = subprocess.run([*sweep_command(longer, tmp_path / "results", "--workers", "1",
                                             "--threads-per-worker", threads), *bigger], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming 1 trajectory from checkpoints" in resumed.stdout and "starting over" not in resumed.stdout
    assert table(tmp_path / "results") == table(tmp_path / "serial")
    assert not (tmp_path / "results" / "sweeps" / "par" / ".checkpoints").exists()


def test_ctrl_c_stops_the_cluster_and_a_rerun_resumes(serial, tmp_path):
    path, expected = serial
    """A real Ctrl-C: SIGINT to the whole process group, workers included. The client shuts them
    down; none prints a traceback. What they kept resumes (here serially: a cluster resuming a
    trajectory is the test above's)."""
    process = subprocess.Popen(sweep_command(path, tmp_path, "--workers", "2"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint, start_new_session=True)
    cells = tmp_path / "sweeps" / "par" / "cells"
    deadline = time.monotonic() + 120
    while not list(cells.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 130
    assert "Traceback" not in process.stderr.read()
    time.sleep(1)
    assert children and descendants_alive(children) == []
    in_this_process(sweep_command(path, tmp_path))
    assert table(tmp_path) == expected


def test_remote_workers_get_the_data_from_the_client(tmp_path, tiny_arrays):
    """A `dask scheduler` and a `dask worker` whose working folder cannot see the client's
    relative --data path: the data travels with the work."""
    import numpy as np

    client_dir, worker_dir = tmp_path / "client", tmp_path / "worker"
    client_dir.mkdir()
    worker_dir.mkdir()
    np.savez(client_dir / "digits.npz", **tiny_arrays)
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([DASK_BIN, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(scheduler_file)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([DASK_BIN, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                   "--no-dashboard"], cwd=worker_dir, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        path = grid(tmp_path, name="remote", epochs="[1]", seeds="[0]")
        result = subprocess.run([sys.executable, "-m", "mnist_lab", "sweep", str(path), "--data", "digits.npz",
                                 "--results", "results", "-q", "--scheduler", address], cwd=client_dir,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert f"Dask: the Dask scheduler {address}, 1 compute thread(s) each" in result.stdout
        assert "2 cells trained, 0 skipped, 0 failed" in result.stdout
        assert not (worker_dir / "results").exists()  # the client alone writes
        assert len(list((client_dir / "results" / "sweeps" / "remote" / "cells").glob("*.json"))) == 2
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


def test_workers_with_other_versions_are_refused(tmp_path, monkeypatch):
    from mnist_lab.core import versions

    installed = versions._version
    monkeypatch.setattr(versions, "_version", lambda package: "0.0.0-client" if package == "mnist-lab"
                        else installed(package))
    path = grid(tmp_path)
    result = CliRunner().invoke(cli.main, ["sweep", str(path), *SLICE, "--results", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 2, result.output
    assert "Error: Dask workers with other versions than this client (mnist-lab 0.0.0-client" in result.output
    assert "install the same versions on every worker" in result.output
    assert not (tmp_path / "sweeps" / "par" / "cells").exists()


def test_options_and_dry_run_spread(tmp_path):
    path = grid(tmp_path)
    both = CliRunner().invoke(cli.main, ["sweep", str(path), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert both.exit_code == 2 and "--workers and --scheduler exclude each other" in both.output
    alone = CliRunner().invoke(cli.main, ["sweep", str(path), "--threads-per-worker", "2"])
    assert alone.exit_code == 2 and "--threads-per-worker needs --workers or --scheduler" in alone.output
    dry = CliRunner().invoke(cli.main, ["sweep", str(path), *SLICE, "--results", str(tmp_path), "--dry-run",
                                        "--workers", "2", "--threads-per-worker", "1"])
    assert dry.exit_code == 0 and "6 cells, 6 to train, 4 trajectories on 2 local worker processes, " \
                                  "1 compute thread(s) each; estimated time" in dry.output
    assert not (tmp_path / "sweeps").exists()


def test_plan_seconds_is_longest_first_on_the_first_free_worker():
    assert plan_seconds([3, 5, 3, 4, 3], 2) == 10  # 5 | 4, then 3 -> 7, 3 -> 8, 3 -> 10
    assert plan_seconds([10, 1, 1], 3) == 10
    assert plan_seconds([2, 2, 2], 1) == 6


def test_cluster_spec_threads_and_gpu_placement():
    assert ClusterSpec(workers=4, threads_per_worker=3).threads() == 3
    on_gpus = ClusterSpec(workers=3, threads_per_worker=1, gpus=("0", "1"))
    assert on_gpus.describe() == "3 local worker processes, 1 compute thread(s) each, on GPUs 0, 1 (up to 2 workers per GPU)"
    assert on_gpus.setup().shared_gpus and not ClusterSpec(workers=1, gpus=("0",)).setup().shared_gpus
    assert ClusterSpec(scheduler="tcp://x:1").threads() == 1


def test_a_serial_sweep_never_imports_dask(tmp_path):
    path = grid(tmp_path, epochs="[1]", seeds="[0]")
    code = ("import sys; from click.testing import CliRunner; from mnist_lab import cli; "
            f"result = CliRunner().invoke(cli.main, ['sweep', {str(path)!r}, '--set', 'data.train_limit=300', "
            f"'--results', {str(tmp_path)!r}, '-q']); print(result.exit_code, 'distributed' in sys.modules, "
            "'dask' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["0", "False", "False"], result.stdout + result.stderr


# --- a real `dask scheduler` and `dask worker` processes, losing workers --------------------------

@pytest.fixture
def real_cluster(tmp_path):
    cluster = RealCluster(tmp_path)
    yield cluster
    cluster.close()


def cell_files(results, name="par"):
    folder = results / "sweeps" / name / "cells"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def wait_for(condition, process, timeout=120):
    """Wait until ``condition()`` holds, or ``process`` ended; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# The three ways a worker dies, one after another in one sweep, each as the sweep's next cell file
# appears (right after a trajectory, or its first cell, finished: its result may still be on the
# dying worker): a worker process alone (its nanny starts a new one, which then finishes the
# sweep), a nanny alone, a whole machine. MNIST_LAB_KILL_TRIALS=N adds N sweeps losing one worker
# of two in a random way after a random delay (seeded), while trajectories train, travel or are handled.
_DRAWS = random.Random(17)
KILL_TRIALS = [[("worker", 1, None), ("nanny", 2, None), ("machine", 3, None)]] + [
    [(_DRAWS.choice(KILLS), 0, 2 + _DRAWS.random() * 8)] for _ in range(int(os.environ.get("MNIST_LAB_KILL_TRIALS", "0")))]


@pytest.mark.parametrize("kills", KILL_TRIALS, ids=lambda kills: "-".join(how for how, _, _ in kills))
def test_a_real_cluster_losing_workers_finishes_the_sweep(serial, real_cluster, tmp_path, kills):
    path, expected = serial
    victims = [real_cluster.add_worker() for _ in range(max(2, len(kills)))]
    real_cluster.wait_for_workers(len(victims))
    results = tmp_path / "results"
    process = subprocess.Popen(sweep_command(path, results, "--scheduler", real_cluster.address, "--no-tensorboard"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for victim, (how, cells_before, delay) in zip(victims, kills):
        if delay is None:
            wait_for(lambda: len(cell_files(results)) >= cells_before, process)
        else:
            time.sleep(delay)
        print(f"killed the {how} after {len(cell_files(results))} cells / {delay or 0:.1f} s: "
              f"{'mid-sweep' if process.poll() is None else 'the sweep had ended'}")
        real_cluster.kill(victim, how)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "Sweep par: 6 cells trained, 0 skipped, 0 failed" in out
    assert table(results) == expected
    logs = [log.read_text() for log in tmp_path.glob("worker-*.log")]
    assert logs and not any("Failed to serialize" in log for log in logs)  # events travel as plain data


def test_a_worker_of_other_versions_joining_late_trains_nothing(serial, real_cluster, tmp_path):
    """A worker whose mnist-lab reports another version joins after the sweep started: it is
    given no work, and every cell is the client's versions' (and the serial table's)."""
    path, expected = serial
    preload = tmp_path / "other_version.py"
    preload.write_text("from mnist_lab.core import versions\n"  # imported by the nanny and its worker alike
                       "if not hasattr(versions, 'real_version'):\n"
                       "    versions.real_version = versions._version\n"
                       "    versions._version = lambda package: ('0.0.0-other' if package == 'mnist-lab'\n"
                       "                                         else versions.real_version(package))\n")
    real_cluster.add_worker()
    real_cluster.wait_for_workers(1)
    results = tmp_path / "results"
    process = subprocess.Popen(sweep_command(path, results, "--scheduler", real_cluster.address, "--no-tensorboard"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(cell_files(results)) >= 1, process)
    real_cluster.add_worker(preload=preload)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert table(results) == expected
    assert {json.loads(cell.read_text())["versions"]["mnist_lab"] for cell in cell_files(results)} == \
        {versions_installed()["mnist_lab"]}
    if "0.0.0-other" in out:  # it took a trajectory (Dask gives queued work to a new idle worker) and refused it
        assert "has mnist-lab 0.0.0-other" in out and "it is given no work" in out


def versions_installed():
    from mnist_lab.core import backends, versions

    return versions.installed(backends.use_backend())


def test_a_cluster_with_no_worker_left_stops_with_an_error_and_keeps_the_cells(serial, real_cluster, tmp_path):
    path, _ = serial
    only = real_cluster.add_worker()
    real_cluster.wait_for_workers(1)
    results = tmp_path / "results"
    process = subprocess.Popen(sweep_command(path, results, "--scheduler", real_cluster.address, "--no-tensorboard",
                                             "--worker-timeout", "3"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(cell_files(results)) >= 1, process)
    real_cluster.kill(only, "machine")
    kept = len(cell_files(results))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, out + err
    assert "Error: no usable Dask worker for 3 s" in err and "trajectories wait:" in err
    assert "the same command resumes the rest" in err
    assert len(cell_files(results)) >= kept >= 1


def test_ctrl_c_cancels_the_trajectories_on_a_shared_cluster(real_cluster, tmp_path):
    """The client's futures are cancelled when it stops: the worker drops the trajectory at its
    next epoch's end instead of training on for no one (40 epochs here)."""
    path = write_config(tmp_path, f"name: long\nseeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'mlp.yaml'}\n"
                                  f"    batch_size: [50]\n    epochs: [40]\n", name="long.yaml")
    real_cluster.add_worker()
    real_cluster.wait_for_workers(1)
    process = subprocess.Popen(sweep_command(path, tmp_path / "results", "--scheduler", real_cluster.address),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    checkpoints = tmp_path / "results" / "sweeps" / "long" / ".checkpoints"
    assert wait_for(lambda: checkpoints.is_dir() and any(checkpoints.glob("*.npz")), process)
    assert real_cluster.executing() == 1
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    deadline = time.monotonic() + 60  # a few epochs; the rest of the trajectory would take far longer
    while real_cluster.executing() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert real_cluster.executing() == 0


def test_a_scheduler_that_does_not_answer_is_named_with_exit_2(tmp_path):
    import socket

    path = grid(tmp_path)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections and never says a word
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free_port = closed.getsockname()[1]
    closed.close()
    environment = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    for address in (f"tcp://127.0.0.1:{free_port}", f"tcp://127.0.0.1:{silent.getsockname()[1]}"):
        result = subprocess.run(sweep_command(path, tmp_path / "results", "--scheduler", address), env=environment,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert f"Connecting to the Dask scheduler {address} (waiting up to 2 s)" in result.stdout
        assert f"Error: --scheduler {address}: no Dask scheduler answered within 2 s" in result.stderr
        assert "Traceback" not in result.stderr
    silent.close()
    for address in ("tcp://127.0.0.1:99999", "tcp://:8786", "nonsense://x"):
        result = CliRunner().invoke(cli.main, ["sweep", str(path), "--scheduler", address])
        assert result.exit_code == 2 and f"Error: --scheduler '{address}': expected an address" in result.output
    many = CliRunner().invoke(cli.main, ["sweep", str(path), "--workers", "1000"])
    assert many.exit_code == 2 and "--workers 1000: this machine has" in many.output
