"""TensorBoard logs, read back by the real TensorBoard: a server on 127.0.0.1 over a tiny run, a
tiny sweep and a Projector export, queried through its HTTP data API."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from mnist_lab.analysis import visualize
from mnist_lab.results import event_logs, store
from mnist_lab.core.config import load_config
from mnist_lab.core.sweep_plan import load_sweep
from mnist_lab.training.sweep import SweepListener, run_sweep
from mnist_lab.training.run import run_log_folder, train
from mnist_lab.core.output import Output, silent

from conftest import ROOT

LIMITS = ["data.train_limit=600", "data.test_limit=200"]


@pytest.fixture(scope="module")
def logged(tmp_path_factory, mnist):
    """A results folder with a 3-epoch train run, a sweep of two learning rates x (1, 2) epochs
    (two trajectories, four cells) and a Projector export of raw pixels."""
    results = tmp_path_factory.mktemp("results")
    config = load_config(ROOT / "configs" / "logreg.yaml", [*LIMITS, "training.epochs=3"], environ={})
    run = train(config, "logreg", results, output=Output(log=silent, progress=False), dataset=mnist).run_dir
    sweep_file = results.parent / "sweep.yaml"
    sweep_file.write_text(f"name: tiny\nseeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                          "    batch_size: [100]\n    epochs: [1, 2]\n    learning_rate: [0.1, 0.5]\n")
    plan = load_sweep(sweep_file, LIMITS)
    run_sweep(plan, results, output=Output(log=silent, progress=False))
    visualize.visualize(sources=("raw",), methods=("pca",), results_dir=results, limit=200, runs=1,
                        output=Output(log=silent, progress=False))
    return results, run, plan


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(logged):
    """The real TensorBoard over the results folder; its address once it has loaded every run."""
    results = logged[0]
    port = _free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "tensorboard"), "--logdir",
                                str(results / event_logs.FOLDER),
                                "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if len(_get(address, "/data/runs")) == 5:  # the run and the four cells
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"TensorBoard did not serve the runs: {process.stderr.read()[-2000:]!r}")
            time.sleep(0.5)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(address, path, **query):
    url = address + path + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(address, path, body):
    request = urllib.request.Request(address + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _scalars(address, run, tag):
    return [(step, value) for _, step, value in _get(address, "/data/plugin/scalars/scalars", run=run, tag=tag)]


def _name(results, folder: Path) -> str:
    """The TensorBoard run of a log folder: its path under the logdir."""
    return folder.relative_to(results / event_logs.FOLDER).as_posix()


def test_each_result_is_one_run_named_as_a_person_reads_it(logged, server):
    results, run, plan = logged
    names = sorted(_get(server, "/data/runs"))
    assert len(names) == 5  # the run and four cells: no train/, test/ or Projector entries
    config = load_config(ROOT / "configs" / "logreg.yaml", [*LIMITS, "training.epochs=3"], environ={})
    assert _name(results, run_log_folder(results, "logreg", config)) == \
        f"runs/logreg batch 300 epochs 3 lr 0.5 seed 0 images train 600, test 200 {run.name.rsplit('-', 1)[1]}"
    for cell in plan.cells:
        name = _name(results, SweepListener.log_folder_of(results / "sweeps" / "tiny", cell))
        assert name in names and name.startswith(f"sweeps/tiny/logreg batch 100 epochs {cell.config.training.epochs} "
                                                 f"lr {cell.config.training.learning_rate:g} seed 0 images train 600, test 200 ")


def test_a_train_run_logs_each_epoch(logged, server):
    results, run, _ = logged
    history = json.loads((run / store.METRICS_FILE).read_text())
    config = load_config(ROOT / "configs" / "logreg.yaml", [*LIMITS, "training.epochs=3"], environ={})
    name = _name(results, run_log_folder(results, "logreg", config))
    rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    columns = {name: index for index, name in enumerate(rows[0])}
    for tag, column in (("accuracy/test", "test_accuracy"), ("loss/train", "train_loss"),
                        ("seconds", "train_seconds")):
        expected = [(int(row[columns["epoch"]]), float(row[columns[column]])) for row in rows[1:]]
        got = _scalars(server, name, tag)
        assert [step for step, _ in got] == [1, 2, 3]
        assert np.allclose([value for _, value in got], [value for _, value in expected], rtol=1e-6)
    assert [value for _, value in _scalars(server, name, "learning_rate")] == [0.5] * 3
    assert got and history["epochs"] == 3
    assert not (results / "runs" / ".checkpoints").exists()  # the checkpoint went when the run was published


def test_the_sweep_cells_are_compared_in_the_hparams_dashboard(logged, server):
    results, _, plan = logged
    cells = store.read_cells(results / "sweeps" / "tiny").records
    assert len(cells) == 4
    groups = _post(server, "/data/plugin/hparams/session_groups",
                   {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS"], "colParams": [],
                    "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    by_name = {group["name"]: group for group in groups}
    for cell in plan.cells:
        record = cells[cell.key]
        name = _name(results, SweepListener.log_folder_of(results / "sweeps" / "tiny", cell))
        group = by_name[name]
        assert group["hparams"]["learning_rate"] == record["config"]["training"]["learning_rate"]
        assert group["hparams"]["epochs"] == record["epochs"] and group["hparams"]["batch_size"] == 100
        assert group["hparams"]["model"] == "logreg" and group["hparams"]["engine"] == "keras"
        metrics = {(value["name"]["group"], value["name"]["tag"]): value["value"] for value in group["metricValues"]}
        assert metrics[("", "accuracy/test")] == pytest.approx(record["test_accuracy"], rel=1e-6)
        assert metrics[("", "loss/test")] == pytest.approx(record["test_loss"], rel=1e-6)
        # Each cell's own epochs, once each: a 1-epoch cell is not the 2-epoch one.
        steps = [step for step, _ in _scalars(server, name, "loss/test")]
        assert steps == list(range(1, record["epochs"] + 1))
    experiment = _get(server, "/data/plugin/hparams/experiment", request=json.dumps({"experimentName": ""}))
    differing = {info["name"] for info in experiment["hparamInfos"] if info.get("differs")}
    assert {"learning_rate", "epochs", "batch_size"} <= differing


def test_the_projector_opens_on_the_features_and_shows_the_maps(logged, server):
    results = logged[0]
    assert _get(server, "/data/plugin/projector/runs") == ["."]  # the logdir's root: not a training's run
    info = _get(server, "/data/plugin/projector/info", run=".")
    shapes = [(embedding["tensorName"], embedding["tensorShape"]) for embedding in info["embeddings"]]
    # The Projector lists the tensors by name and opens on the first (seen in a browser): the
    # features; the map with a third column, so the Projector can show it.
    assert shapes == [("1 raw features (200 x 784)", [200, 784]), ("5 raw PCA map", [200, 3])]
    assert sorted(name for name, _ in shapes) == [name for name, _ in shapes]
    url = f"{server}/data/plugin/projector/tensor?" + urllib.parse.urlencode({"run": ".", "name": "5 raw PCA map"})
    with urllib.request.urlopen(url, timeout=10) as response:
        served = np.frombuffer(response.read(), dtype=np.float32).reshape(200, 3)
    (cached,) = (results / "embeddings" / "cache").glob("raw_pca_*.npy")
    assert np.allclose(served[:, :2], np.load(cached), atol=1e-6) and not served[:, 2].any()
    with urllib.request.urlopen(f"{server}/data/plugin/projector/metadata?" + urllib.parse.urlencode(
            {"run": ".", "name": "5 raw PCA map"}), timeout=10) as response:
        labels = response.read().decode().split()
    assert labels == [str(label) for label in np.load(ROOT / "mnist_lab" / "resources" / "mnist.npz")["y_test"][:200]]


def _read_steps(folder: Path) -> list:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        steps += [event.step for event in EventFileLoader(str(path)).Load()
                  if event.summary.value and not event.summary.value[0].tag.startswith("_hparams_")]
    return steps


def _row(epoch):
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.5, "test_loss": 1.1 / epoch,
            "test_accuracy": 0.4, "train_seconds": 0.25}


def test_a_resumed_log_appends_and_the_final_log_holds_each_epoch_once(tmp_path):
    config = load_config(ROOT / "configs" / "logreg.yaml", ["training.epochs=4"], environ={})
    live = event_logs.LiveLog(tmp_path / "log", config)
    for epoch in (1, 2, 3):
        live.epoch(_row(epoch))
    resumed = event_logs.LiveLog(tmp_path / "log", config)  # a new process, after a checkpoint at epoch 2
    for epoch in (3, 4):
        resumed.epoch(_row(epoch))
    assert _read_steps(tmp_path / "log") == [1, 2, 3, 3, 4]
    restarted = event_logs.LiveLog(tmp_path / "log", config)  # starting over clears the old attempt
    restarted.epoch(_row(1))
    assert _read_steps(tmp_path / "log") == [1]
    event_logs.write_log(tmp_path / "log", config, [_row(epoch) for epoch in (1, 2, 3, 4)], {"seed": 0}, 1.8e9)
    assert _read_steps(tmp_path / "log") == [1, 2, 3, 4]
    first = {path.name: path.read_bytes() for path in (tmp_path / "log").rglob("events*")}
    event_logs.write_log(tmp_path / "log", config, [_row(epoch) for epoch in (1, 2, 3, 4)], {"seed": 0}, 1.8e9)
    assert {path.name: path.read_bytes() for path in (tmp_path / "log").rglob("events*")} == first  # reproducible


def test_a_log_cleared_by_another_process_of_the_same_experiment_is_made_again(tmp_path):
    # Two trains of one experiment at once: one clears the folder (its epoch 1, or its complete
    # log) while the other appends; the other's next epoch goes into a file made again.
    config = load_config(ROOT / "configs" / "logreg.yaml", ["training.epochs=3"], environ={})
    live = event_logs.LiveLog(tmp_path / "log", config)
    live.epoch(_row(1))
    shutil.rmtree(tmp_path / "log")
    live.epoch(_row(2))
    assert _read_steps(tmp_path / "log") == [2]
    event_logs.write_log(tmp_path / "log", config, [_row(epoch) for epoch in (1, 2, 3)], {"seed": 0}, 1.8e9)
    assert _read_steps(tmp_path / "log") == [1, 2, 3]


def test_no_tensorboard_writes_no_logs(tmp_path, mnist):
    config = load_config(ROOT / "configs" / "logreg.yaml", [*LIMITS, "training.epochs=1"], environ={})
    run = train(config, "logreg", tmp_path, output=Output(log=silent, progress=False), dataset=mnist,
                event_logs=False).run_dir
    assert (run / store.METRICS_FILE).exists() and not list(tmp_path.rglob("events.out.tfevents*"))
    shutil.rmtree(run)


def test_the_numpy_engine_logs_the_same_way(tmp_path, mnist):
    config = load_config(ROOT / "configs" / "mlp-numpy.yaml", [*LIMITS, "training.epochs=2"], environ={})
    train(config, "mlp-numpy", tmp_path, output=Output(log=silent, progress=False), dataset=mnist)
    log = run_log_folder(tmp_path, "mlp-numpy", config)
    assert _read_steps(log) == [1, 2]
    assert len(list(log.glob("events.out.tfevents.*"))) == 1  # scalars and HParams session in one file


def test_a_log_name_is_one_safe_path_component_and_keeps_its_hash():
    config = load_config(ROOT / "configs" / "logreg.yaml", ["training.schedule.type=inverse_time"], environ={})
    for label in ("a\nb/c:d*e<f>g|h?\"i\\j\x1b[31m", "ü" * 300):
        folder = event_logs.log_folder("r", "runs", label, config, f"{label}-0123456789ab")
        assert folder.parent == Path("r/tensorboard/runs") and folder.name.endswith(" 0123456789ab")
        assert len(folder.name.encode()) <= 255 and folder.name.isprintable()
        assert not set('/\\<>:"|?*') & set(folder.name)
