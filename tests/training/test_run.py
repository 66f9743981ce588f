import csv
import json
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import sklearn.metrics

from mnist_lab.training import fit, resume
from mnist_lab.results import plots
from mnist_lab.results.checkpoints import Checkpoint
from mnist_lab.core.config import load_config
from mnist_lab.training.records import confusion_counts
from mnist_lab.core.identity import experiment_key
from mnist_lab.core.data import prepare, validation_rows
from mnist_lab.results.catalog import formatted, rows
from mnist_lab.training.numpy_engine import NumpyModel
from mnist_lab.training.run import train
from mnist_lab.core.output import Output, silent

from conftest import ROOT, in_this_process

RUN_FILES = {"config.yaml", "model.keras", "history.csv", "metrics.json", "summary.txt",
             "learning_curves.png", "confusion_matrix.png"}

pytestmark = pytest.mark.backend  # make test runs this module on the JAX backend too


def weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras").get_weights()


def test_run_directory_is_complete_and_consistent(tmp_path, small_config, mnist):
    config = small_config("mlp")
    result = train(config, "mlp", tmp_path, output=Output(log=silent, progress=False), dataset=mnist)
    assert result.trained and result.run_dir == tmp_path / "runs" / experiment_key("mlp", config)
    assert {path.name for path in result.run_dir.iterdir()} == RUN_FILES
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics == result.metrics
    assert metrics["parameters"] == 79_510 and metrics["epochs"] == 2 and metrics["seed"] == 0
    assert set(metrics["versions"]) >= {"python", "keras", "backend", "backend_version"}
    assert metrics["versions"]["backend"] == keras.backend.backend()  # jax in the JAX run of make test
    # How it was computed: on this CPU; XLA by Keras's "auto" (JAX yes, TensorFlow with op determinism no).
    assert metrics["device"] == "cpu:0" and metrics["jit_compile"] == (keras.backend.backend() == "jax")
    assert metrics["data"]["verified_mnist"] and metrics["data"]["train_images"] == 600
    assert (metrics["data"]["train_limit"], metrics["data"]["test_images"]) == (600, 300)
    with open(result.run_dir / "history.csv") as stream:
        history = list(csv.DictReader(stream))
    assert [int(row["epoch"]) for row in history] == [1, 2]
    assert float(history[-1]["test_accuracy"]) == pytest.approx(metrics["test_accuracy"], abs=1e-12)
    assert load_config(result.run_dir / "config.yaml") == config
    assert "Parameters: 79,510" in (result.run_dir / "summary.txt").read_text()

    # Independent oracles: the saved model's own predictions on the same test slice.
    arrays = prepare(mnist, "mlp", test_limit=300)
    probabilities = keras.saving.load_model(result.run_dir / "model.keras").predict(arrays.x_test, verbose=0)
    predicted = probabilities.argmax(axis=1)
    assert metrics["test_accuracy"] == pytest.approx((predicted == arrays.test_labels).mean(), abs=1e-6)
    assert metrics["test_loss"] == pytest.approx(sklearn.metrics.log_loss(arrays.test_labels, probabilities,
                                                                          labels=range(10)), rel=1e-5)
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == 300 and np.trace(matrix) == (predicted == arrays.test_labels).sum()


@pytest.mark.parametrize("engine", ["keras", "numpy"])
def test_a_validation_split_is_evaluated_each_epoch_and_recorded(tmp_path, small_config, mnist, engine):
    config = small_config("mlp", "data.validation=200", f"engine={engine}")
    result = train(config, "mlp", tmp_path, output=Output(log=silent, progress=False), dataset=mnist)
    metrics = result.metrics
    assert metrics["data"]["validation_images"] == 200 and metrics["data"]["train_images"] == 600
    with open(result.run_dir / "history.csv") as stream:
        history = list(csv.DictReader(stream))
    assert [float(row["validation_accuracy"]) for row in history][-1] == metrics["validation_accuracy"]
    # Independent oracle: the saved model's predictions on the held-out rows, which scikit-learn scores.
    held = validation_rows(60000, 200)
    images = mnist.x_train[held].reshape(200, 784) / np.float32(255)
    if engine == "keras":
        probabilities = keras.saving.load_model(result.run_dir / "model.keras").predict(images, verbose=0)
    else:
        probabilities = NumpyModel.load(result.run_dir / "model.npz").probabilities(images)
    assert metrics["validation_accuracy"] == pytest.approx((probabilities.argmax(axis=1) == mnist.y_train[held]).mean())
    assert metrics["validation_loss"] == pytest.approx(sklearn.metrics.log_loss(mnist.y_train[held], probabilities,
                                                                                labels=range(10)), rel=1e-5)
    assert "validation" in formatted(rows(tmp_path), "table", width=200).splitlines()[0]


def test_confusion_counts_match_scikit_learn():
    rng = np.random.default_rng(1)
    labels, predictions = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    np.testing.assert_array_equal(confusion_counts(labels, predictions),
                                  sklearn.metrics.confusion_matrix(labels, predictions, labels=range(10)))


def test_same_config_same_numbers(tmp_path, small_config, mnist):
    config = small_config("cnn", "data.train_limit=300", "data.test_limit=100")
    quiet = {"output": Output(log=silent, progress=False), "dataset": mnist}
    first = train(config, "a", tmp_path, **quiet)
    second = train(config, "b", tmp_path, **quiet)
    for key in ("test_accuracy", "test_loss", "train_loss"):
        assert first.metrics[key] == second.metrics[key]
    for left, right in zip(weights(first.run_dir), weights(second.run_dir)):
        np.testing.assert_array_equal(left, right)


def test_grouped_steps_do_not_change_the_numbers(tmp_path, small_config, mnist, monkeypatch):
    # 6 batches: more than one graph call of 4 steps, one with a remainder.
    config = small_config("mlp", "data.train_limit=600", "training.batch_size=100")
    quiet = {"output": Output(log=silent, progress=False), "dataset": mnist}
    monkeypatch.setattr(fit, "STEPS_PER_EXECUTION", 4)
    grouped = train(config, "grouped", tmp_path, **quiet)
    monkeypatch.setattr(fit, "STEPS_PER_EXECUTION", 1)
    single = train(config, "single", tmp_path, **quiet)
    for left, right in zip(weights(grouped.run_dir), weights(single.run_dir)):
        np.testing.assert_array_equal(left, right)
    assert grouped.metrics["test_loss"] == single.metrics["test_loss"]


def test_complete_run_is_kept_unless_forced(tmp_path, small_config, mnist):
    config = small_config("logreg")
    quiet = {"output": Output(log=silent, progress=False), "dataset": mnist}
    first = train(config, "logreg", tmp_path, **quiet)
    stamp = (first.run_dir / "metrics.json").stat().st_mtime_ns
    again = train(config, "logreg", tmp_path, **quiet)
    assert not again.trained and {key: again.metrics[key] for key in first.metrics} == first.metrics
    assert (first.run_dir / "metrics.json").stat().st_mtime_ns == stamp
    forced = train(config, "logreg", tmp_path, force=True, **quiet)
    assert forced.trained and (first.run_dir / "metrics.json").stat().st_mtime_ns != stamp


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, small_config, mnist, monkeypatch):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "confusion_matrix", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(small_config("logreg"), "logreg", tmp_path, output=Output(log=silent, progress=False), dataset=mnist)
    # Only the training's last checkpoint, hidden, to resume from.
    assert [path.name for path in (tmp_path / "runs").iterdir()] == [".checkpoints"]
    monkeypatch.undo()
    lines = []
    train(small_config("logreg"), "logreg", tmp_path, output=Output(log=lines.append, progress=False), dataset=mnist)
    assert any(line.startswith("Resuming after epoch 2 of 2") for line in lines)
    assert [path.name for path in (tmp_path / "runs").iterdir()] == [experiment_key("logreg", small_config("logreg"))]


@pytest.mark.parametrize("model_type, engine, schedule", [("mlp", "keras", "exponential"), ("cnn", "keras", "constant"),
                                                      ("mlp", "numpy", "inverse_time")])
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_bits(small_config, mnist, model_type, engine, schedule):
    config = small_config(model_type, "training.epochs=3", f"engine={engine}", f"training.schedule.type={schedule}")
    arrays = prepare(mnist, model_type, 600, 300)
    model, saved = fit.new_model(config), []
    whole = fit.fit_model(model, config, arrays, on_epoch=lambda history: saved.append(
        resume.checkpoint(model, "key", history).to_bytes()))
    resumed = fit.fit_model(fit.new_model(config), config, arrays, resume=Checkpoint.from_bytes(saved[0], "first"))
    for left, right in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(left, right)
    assert resumed.history == whole.history[:1] + [
        {**row, "train_seconds": resumed.history[index]["train_seconds"]} for index, row in
        enumerate(whole.history[1:], start=1)]
    np.testing.assert_array_equal(resumed.test_probabilities, whole.test_probabilities)
    # Resumed after the last epoch: nothing is trained, the model's predictions are computed.
    done = fit.fit_model(fit.new_model(config), config, arrays, resume=Checkpoint.from_bytes(saved[-1], "last"))
    np.testing.assert_array_equal(done.test_probabilities, whole.test_probabilities)


@pytest.mark.parametrize("engine", ["keras", "numpy"])
def test_a_schedule_takes_the_steps_of_stages_trained_one_after_another(small_config, mnist, engine):
    """Oracle: the same model trained through one-epoch stages, each at the scheduled step."""
    scheduled = small_config("logreg", "training.epochs=3", "training.learning_rate=0.8", f"engine={engine}",
                             "training.schedule={type: step, every: 1, factor: 0.25}")
    staged = small_config("logreg", "training.epochs=1", "training.learning_rate=0.05", f"engine={engine}",
                          "continues=[{epochs: 1, learning_rate: 0.8, batch_size: 100}, "
                          "{epochs: 1, learning_rate: 0.2, batch_size: 100}]")
    arrays = prepare(mnist, "logreg", 600, 300)
    runs = [fit.fit_model(fit.new_model(config), config, arrays) for config in (scheduled, staged)]
    for left, right in zip(runs[0].model.get_weights(), runs[1].model.get_weights()):
        np.testing.assert_array_equal(left, right)
    np.testing.assert_array_equal(runs[0].test_probabilities, runs[1].test_probabilities)
    constant = small_config("logreg", "training.epochs=3", "training.learning_rate=0.8", f"engine={engine}")
    assert not np.array_equal(fit.fit_model(fit.new_model(constant), constant, arrays).test_probabilities,
                              runs[0].test_probabilities)


def test_a_training_killed_mid_epoch_resumes_to_the_same_bits(tmp_path):
    """SIGKILL during epoch 2 or later; the rerun resumes after the last finished epoch and
    ends with the weights and numbers of a run never stopped (trained here, in this process)."""
    from mnist_lab import api

    fields = {"data.train_limit": 10000, "data.test_limit": 500, "training.batch_size": 20, "training.epochs": 3,
              "training.schedule.type": "exponential"}  # steps that differ by epoch
    command = [sys.executable, "-m", "mnist_lab", "train", str(ROOT / "configs" / "mlp.yaml"), "--quiet",
               *(option for field, value in fields.items() for option in ("--set", f"{field}={value}"))]
    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, "--results", str(killed)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    saved = killed / "runs" / ".checkpoints"
    deadline = time.monotonic() + 120
    while not list(saved.glob("*.checkpoint.npz")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not list((killed / "runs").glob("mlp-*")), "the kill should land mid-training"
    # Resumed in the test's process (its imports are made already): what the kill left is tested.
    resumed = in_this_process(command, "--results", killed)
    assert "Resuming after epoch " in resumed.output and " of 3 (checkpoint " in resumed.output
    assert not saved.exists()  # removed once the run is published
    clean = tmp_path / "clean"
    api.train(ROOT / "configs" / "mlp.yaml", fields, results=clean, progress=False, tensorboard=False)
    [killed_run], [clean_run] = (list((folder / "runs").glob("mlp-*")) for folder in (killed, clean))
    assert killed_run.name == clean_run.name
    for left, right in zip(weights(killed_run), weights(clean_run)):
        np.testing.assert_array_equal(left, right)
    first, second = (json.loads((run / "metrics.json").read_text()) for run in (killed_run, clean_run))
    numbers = ("test_loss", "test_accuracy", "train_loss", "train_accuracy", "confusion_matrix")
    assert {key: first[key] for key in numbers} == {key: second[key] for key in numbers}
    histories = []
    for run in (killed_run, clean_run):
        with open(run / "history.csv") as stream:
            histories.append([{**row, "train_seconds": None} for row in csv.DictReader(stream)])
    assert histories[0] == histories[1] and len(histories[0]) == 3


def test_a_copied_or_renamed_config_finds_the_same_run(tmp_path):
    """`train <run>/config.yaml`, as the README allows, and any renamed copy of a config are the
    same experiment: answered from its run, never trained into a second folder; predict finds the
    run by a key under another label."""
    from click.testing import CliRunner

    from mnist_lab import cli

    quick = ["--set", "data.train_limit=300", "--set", "data.test_limit=100", "--set", "training.epochs=1",
             "--results", str(tmp_path), "--no-tensorboard"]
    first = CliRunner().invoke(cli.main, ["train", "logreg", *quick])
    assert first.exit_code == 0, first.output
    (run,) = (tmp_path / "runs").iterdir()
    renamed = tmp_path / "mine.yaml"
    renamed.write_text((run / "config.yaml").read_text())
    for config in (run / "config.yaml", renamed):
        again = CliRunner().invoke(cli.main, ["train", str(config), *quick])
        assert again.exit_code == 0 and f"Already trained: {run}" in again.output, again.output
    assert [path.name for path in (tmp_path / "runs").iterdir()] == [run.name]
    seen = CliRunner().invoke(cli.main, ["predict", f"config-{run.name.rsplit('-', 1)[1]}",
                                         str(run / "learning_curves.png"), "--results", str(tmp_path)])
    assert seen.exit_code == 0 and "learning_curves.png: " in seen.output, seen.output  # any image serves
