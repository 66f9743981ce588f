"""Sweeps on real Dask clusters (LocalCluster processes, a `dask scheduler` and `dask worker`)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from click.testing import CliRunner

from mnist_lab import cli
from mnist_lab.executors import ClusterSpec, plan_seconds

from conftest import ROOT, default_sigint, write_config

SLICE = ["--set", "data.train_limit=2000", "--set", "data.test_limit=300"]
DASK_BIN = os.path.join(os.path.dirname(sys.executable), "dask")


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
        return [{key: value for key, value in row.items() if key not in ("train_seconds", "seconds_per_epoch")}
                for row in csv.DictReader(stream)]


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The serial sweep of the grid: the reference every parallel run must equal."""
    folder = tmp_path_factory.mktemp("serial")
    path = grid(folder)
    subprocess.run(sweep_command(path, folder / "results"), check=True, capture_output=True)
    return path, table(folder / "results")


def descendants_alive(pids):
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


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


def test_a_killed_worker_does_not_fail_the_sweep(tmp_path):
    """SIGKILL one worker process mid-trajectory: Dask runs its trajectory again elsewhere. The
    trajectories are long enough (10,000 images, 6 epochs) for the kill to land inside one."""
    longer = grid(tmp_path, epochs="[1, 6]")
    bigger = ("--set", "data.train_limit=10000")
    subprocess.run([*sweep_command(longer, tmp_path / "serial"), *bigger], check=True, capture_output=True)
    expected = table(tmp_path / "serial")
    process = subprocess.Popen([*sweep_command(longer, tmp_path / "results", "--workers", "2"), *bigger],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cells = tmp_path / "results" / "sweeps" / "par" / "cells"
    deadline = time.monotonic() + 120
    while not list(cells.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [child for child in psutil.Process(process.pid).children(recursive=True)
               if "spawn_main" in " ".join(child.cmdline())]  # not the resource tracker
    assert len(workers) == 2
    victim = max(workers, key=lambda child: child.cpu_times().user)  # a worker busy training
    victim.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "6 cells trained, 0 skipped, 0 failed" in out
    assert table(tmp_path / "results") == expected


def test_a_trajectory_killed_in_a_serial_sweep_resumes_on_a_worker(tmp_path):
    """The client sends a trajectory's checkpoint to the worker that goes on with it: killed after
    a few epochs in one process, resumed on a LocalCluster worker with as many compute threads,
    the cells equal those of a sweep never stopped."""
    longer = write_config(tmp_path, f"name: par\nseeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'mlp.yaml'}\n"
                                    f"    batch_size: [20]\n    epochs: [2, 8]\n", name="par.yaml")
    bigger = ("--set", "data.train_limit=10000")
    subprocess.run([*sweep_command(longer, tmp_path / "serial"), *bigger], check=True, capture_output=True)
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
    process = subprocess.Popen(sweep_command(path, tmp_path, "--workers", "2"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    cells = tmp_path / "sweeps" / "par" / "cells"
    deadline = time.monotonic() + 120
    while not list(cells.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    time.sleep(1)
    assert children and descendants_alive(children) == []
    resumed = subprocess.run(sweep_command(path, tmp_path, "--workers", "2"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
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
    from mnist_lab import versions

    monkeypatch.setattr(versions, "__version__", "0.0.0-client")
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
