"""`mnist-lab train`: fit one model from a resolved config and write its run directory."""

from __future__ import annotations

import csv
import importlib
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from . import __version__, plots, runs
from .config import config_hash, to_yaml
from .data import NUM_CLASSES, load_dataset, prepare
from .models import build_model

# Evaluation batch: large for speed; it changes no number beyond float rounding.
EVALUATION_BATCH = 1000
# Batches run per call into the compiled graph: the same SGD steps in the same
# order (a test proves the weights are identical), with far less Python
# overhead per step; it is what makes train faster than a plain fit().
STEPS_PER_EXECUTION = 50
HISTORY_FIELDS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_seconds")


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    metrics: dict
    trained: bool  # False when a complete run of the same config was kept


def train(config, name: str, results_dir="results", *, force=False, progress=True,
          log=print, dataset=None) -> TrainResult:
    """Train ``config`` unless a complete run of it exists; return its run directory."""
    final = runs.run_dir(results_dir, name, config)
    if final.exists() and not force:
        return TrainResult(final, runs.read_metrics(final), trained=False)
    started = time.perf_counter()
    seed_everything(config.seed)
    dataset = load_dataset(config.data) if dataset is None else dataset
    log(f"Data: {dataset.describe()}")
    arrays = prepare(dataset, config.model.type, config.data.train_limit, config.data.test_limit)
    model = compiled_model(config)
    summary = model_summary(model)
    log(summary)
    clock = EpochClock()
    fit = model.fit(arrays.x_train, arrays.y_train, batch_size=config.training.batch_size,
                    epochs=config.training.epochs, shuffle=True, verbose=_verbosity(progress),
                    callbacks=[clock, EvaluateEachEpoch(arrays.x_test, arrays.y_test)])
    history = history_rows(fit.history, clock.seconds)
    predictions = model.predict(arrays.x_test, batch_size=EVALUATION_BATCH, verbose=0).argmax(axis=1)
    metrics = run_metrics(config, model, dataset, history, clock.seconds,
                          confusion_counts(arrays.test_labels, predictions),
                          wall_seconds=time.perf_counter() - started)
    with runs.staging(final) as staged:
        _write_run(staged, name, config, model, summary, history, metrics)
        trained = runs.publish(staged, final, replace=force)
    return TrainResult(final, metrics if trained else runs.read_metrics(final), trained)


def _verbosity(progress: bool) -> int:
    """Keras's live bar on a terminal; one line per epoch in logs and pipes."""
    return (1 if sys.stdout.isatty() else 2) if progress else 0


def seed_everything(seed: int):
    """One seed for Python, NumPy and the backend; deterministic kernels on TensorFlow."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Without it, TensorFlow may reorder float reductions between runs.
        tf.config.experimental.enable_op_determinism()


def compiled_model(config) -> keras.Model:
    """The config's model, compiled for the lab: plain SGD on categorical cross-entropy."""
    model = build_model(config.model)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=config.training.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=STEPS_PER_EXECUTION)
    return model


def model_summary(model) -> str:
    lines = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    return "\n".join(lines).rstrip() + f"\nParameters: {model.count_params():,}"


class EpochClock(keras.callbacks.Callback):
    """Training seconds per epoch; listed before EvaluateEachEpoch so evaluation is excluded."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class EvaluateEachEpoch(keras.callbacks.Callback):
    """Adds test loss and accuracy to each epoch's logs (shown by the progress bar)."""

    def __init__(self, x_test, y_test):
        super().__init__()
        self.x_test, self.y_test = x_test, y_test

    def on_epoch_end(self, epoch, logs=None):
        scores = self.model.evaluate(self.x_test, self.y_test, batch_size=EVALUATION_BATCH,
                                     verbose=0, return_dict=True)
        logs["test_loss"] = scores["loss"]
        logs["test_accuracy"] = scores["accuracy"]


def history_rows(history: dict, seconds: list) -> list[dict]:
    return [{"epoch": epoch + 1, "train_loss": history["loss"][epoch],
             "train_accuracy": history["accuracy"][epoch], "test_loss": history["test_loss"][epoch],
             "test_accuracy": history["test_accuracy"][epoch], "train_seconds": seconds[epoch]}
            for epoch in range(len(seconds))]


def confusion_counts(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """counts[true, predicted] over the ten digits."""
    return np.bincount(labels * NUM_CLASSES + predictions,
                       minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def steady_epoch_seconds(seconds: list) -> float:
    """Median epoch time after the first, which also pays for building the graph."""
    return statistics.median(seconds[1:] or seconds)


def run_metrics(config, model, dataset, history, seconds, confusion, wall_seconds) -> dict:
    last = history[-1]
    return {
        "model": config.model.type,
        "test_loss": last["test_loss"],
        "test_accuracy": last["test_accuracy"],
        "train_loss": last["train_loss"],
        "train_accuracy": last["train_accuracy"],
        "parameters": model.count_params(),
        "epochs": len(history),
        "seconds_per_epoch": steady_epoch_seconds(seconds),
        "epoch_seconds": seconds,
        "wall_seconds": wall_seconds,
        "seed": config.seed,
        "config_hash": config_hash(config),
        "confusion_matrix": confusion.tolist(),
        "data": dataset.record(),
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def versions() -> dict:
    backend = keras.backend.backend()
    return {"python": platform.python_version(), "keras": keras.__version__,
            "backend": backend, "backend_version": importlib.import_module(backend).__version__,
            "numpy": np.__version__, "mnist_lab": __version__}


def _write_run(folder: Path, name, config, model, summary, history, metrics):
    (folder / "config.yaml").write_text(to_yaml(config))
    (folder / "summary.txt").write_text(summary + "\n")
    model.save(folder / "model.keras")
    with open(folder / "history.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)
    title = f"{name}: test accuracy {metrics['test_accuracy']:.2%}"
    plots.learning_curves(history, folder / "learning_curves.png", title)
    plots.confusion_matrix(np.array(metrics["confusion_matrix"]), folder / "confusion_matrix.png", title)
    # metrics.json last: its presence means every other file is written.
    (folder / runs.METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
