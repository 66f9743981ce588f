"""The one training path: seeding, building, fitting with per-epoch test metrics, and the
result record and run files every training writes (train runs and sweep cells, both engines)."""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from . import backends, interrupts, numpy_engine, plots, store, versions
from .checkpoints import Checkpoint
from .config import to_dict, to_yaml
from .identity import DATA_ORDER, experiment_hash
from .models import build_model, forward
from .numpy_engine import NumpyModel
from .data import NUM_CLASSES, epoch_order

# Batches run per call into the compiled graph: the same SGD steps in the same
# order (a test proves the weights are identical), with far less Python
# overhead per step; it is what makes train faster than a plain fit().
STEPS_PER_EXECUTION = 50


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A trained model, its per-epoch history and its last test-set probabilities."""

    model: keras.Model
    history: list
    test_probabilities: np.ndarray


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def new_model(config):
    """Seed every random source, then build (and compile): the start of every training."""
    seed_everything(config.seed)
    if config.engine == "numpy":
        return NumpyModel.initialised(config.model, config.seed)
    return compiled_model(config)


def fit_model(model, config, arrays, *, verbose=0, on_epoch=None, resume=None) -> Trajectory:
    """Train ``model`` through ``config.stages`` (``config.training`` alone for a fresh model),
    evaluating the test set after each epoch; the history counts the epochs of every stage.

    ``resume``: a checkpoint of this training; its weights and optimizer state are restored and
    training goes on after its last epoch, with the numbers of a training never stopped.
    ``on_epoch(history)`` runs after each finite epoch, before the next one starts (where a
    checkpoint is taken: see checkpoint()). The one training path of mnist-lab: train and
    sweep, both engines.
    """
    history, total = [], config.total_epochs
    if resume is not None:
        if resume.epoch > total:
            raise ValueError(f"a checkpoint after epoch {resume.epoch} cannot resume a training of {total} epochs")
        restore(model, resume)
        history = list(resume.history)
    epochs = EpochLog(arrays.y_test, print_each=verbose > 0 and config.engine == "numpy", total=total,
                      history=history)
    run_epoch = (_numpy_epochs if config.engine == "numpy" else _keras_epochs)(model, config, arrays, epochs, verbose)
    for epoch in range(len(history), total):
        interrupts.check()
        if not run_epoch(epoch, config.stage_of(epoch)):
            break
        if on_epoch is not None:
            # Outside the backend's fit: a Ctrl-C while cells or checkpoints are written unwinds
            # through the atomic writes, which leave nothing behind.
            on_epoch(list(epochs.history))
    last = epochs.history[-1]
    if not math.isfinite(last["train_loss"]):
        raise Diverged(f"training diverged: the loss became {last['train_loss']} in epoch {last['epoch']} "
                       f"(learning rate {config.stage_of(last['epoch'] - 1).learning_rate}); a smaller "
                       f"training.learning_rate usually helps")
    if epochs.test_probabilities is None:  # resumed after its last epoch: nothing was left to train
        epochs.test_probabilities = predict(model, arrays.x_test)
    return Trajectory(model, epochs.history, epochs.test_probabilities)


def _numpy_epochs(model, config, arrays, epochs: EpochLog, verbose):
    """The NumPy engine's epoch: run(epoch, stage) trains it, records it, and says whether its
    loss is finite."""
    def run(epoch, stage) -> bool:
        loss, accuracy, seconds = numpy_engine.train_epoch(model, stage, config.seed, epoch, arrays)
        return epochs.record(loss, accuracy, seconds, lambda: model.probabilities(arrays.x_test))
    return run


def _keras_epochs(model, config, arrays, epochs: EpochLog, verbose):
    """The Keras engine's epoch: one fit() on the training set in that epoch's (seed, epoch) order,
    not Keras's own shuffle, whose order follows from a generator's hidden state and could not
    be resumed. The arrays become backend tensors once, and each epoch's order is one gather of
    them (bench/epoch_order.py measures what this costs against Keras's shuffle)."""
    x_train, y_train = keras.ops.convert_to_tensor(arrays.x_train), keras.ops.convert_to_tensor(arrays.y_train)
    callbacks = [EpochRecorder(arrays.x_test, epochs), keras.callbacks.TerminateOnNaN()]
    if verbose:
        callbacks.append(EpochOfTotal(config.total_epochs))

    def run(epoch, stage) -> bool:
        order = keras.ops.convert_to_tensor(epoch_order(config.seed, epoch, len(arrays.x_train)))
        model.optimizer.learning_rate.assign(stage.learning_rate)  # the stage's step (a variable of the graph)
        with interrupts.leave_at_once():  # see interrupts.py: no unwinding through a running fit
            model.fit(keras.ops.take(x_train, order, axis=0), keras.ops.take(y_train, order, axis=0),
                      batch_size=stage.batch_size, epochs=epoch + 1, initial_epoch=epoch, shuffle=False,
                      verbose=verbose, callbacks=callbacks)
        return math.isfinite(epochs.history[-1]["train_loss"])
    return run


class EpochOfTotal(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, counting "Epoch 3/10" over the whole training although each
    fit() call runs one epoch."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total

    def set_params(self, params):
        super().set_params({**params, "epochs": self.total})


def checkpoint(model, key: str, history: list) -> Checkpoint:
    """The training's state after ``len(history)`` epochs (see checkpoints.py)."""
    optimizer = [] if isinstance(model, NumpyModel) else [
        keras.ops.convert_to_numpy(variable) for variable in model.optimizer.variables]
    return Checkpoint(key, list(history), model.get_weights(), optimizer,
                      versions.installed(keras.backend.backend()), backends.compute_threads())


def usable_checkpoint(checkpoint, model, log=print):
    """``checkpoint`` when this process can continue it exactly into ``model`` (a fresh model of its
    config), else None (and a note why)."""
    if checkpoint is None:
        return None
    reason = checkpoint.mismatch(versions.installed(keras.backend.backend()), backends.compute_threads())
    if not checkpoint.fits(model.get_weights()):
        reason = "another model's weights (other shapes)"
    if reason is not None:
        log(f"Note: starting over, not resuming after epoch {checkpoint.epoch}: its checkpoint was made "
            f"with {reason}")
        return None
    return checkpoint


def restore(model, checkpoint: Checkpoint):
    """Put the checkpoint's weights and optimizer state into ``model``, a fresh model of its config."""
    model.set_weights(checkpoint.weights)
    if isinstance(model, NumpyModel):
        return
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    if len(optimizer.variables) != len(checkpoint.optimizer):
        raise ValueError(f"the checkpoint holds {len(checkpoint.optimizer)} optimizer variables, "
                         f"the model's optimizer has {len(optimizer.variables)}")
    for variable, value in zip(optimizer.variables, checkpoint.optimizer):
        variable.assign(value)


def verbosity(progress: bool) -> int:
    """Keras's live bar on a terminal; one line per epoch in logs and pipes."""
    return (1 if sys.stdout.isatty() else 2) if progress else 0


def seed_everything(seed: int):
    """One seed for Python, NumPy and the backend; deterministic kernels where the backend has
    a switch for them (JAX on the CPU is deterministic as it is)."""
    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # Without it, TensorFlow may reorder float reductions between runs.
        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def compiled_model(config) -> keras.Model:
    """The config's model, compiled for the lab: plain SGD on categorical cross-entropy."""
    model = build_model(config.model, seed=config.seed)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=config.stages[0].learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"],
                  # Keras's PyTorch trainer runs one step per call (it refuses more).
                  steps_per_execution=1 if keras.backend.backend() == "torch" else STEPS_PER_EXECUTION)
    return model


def model_summary(model) -> str:
    if isinstance(model, NumpyModel):
        return model.summary()
    lines = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    return "\n".join(lines).rstrip() + f"\nParameters: {model.count_params():,}"


class EpochLog:
    """The history of a training: per epoch, the training loss, accuracy and seconds
    (evaluation excluded), then the test loss and accuracy; both engines report here."""

    def __init__(self, y_test, print_each=False, total=None, history=()):
        self.y_test, self.print_each, self.total = y_test, print_each, total
        self.history, self.test_probabilities = list(history), None

    def record(self, loss, accuracy, seconds, predict_test) -> bool:
        """Add one epoch; False when the loss is not finite (training must stop)."""
        row = {"epoch": len(self.history) + 1, "train_loss": float(loss), "train_accuracy": float(accuracy),
               "train_seconds": seconds}
        self.history.append(row)
        if not math.isfinite(row["train_loss"]):
            return False
        self.test_probabilities = predict_test()
        row["test_loss"], row["test_accuracy"] = loss_and_accuracy(self.test_probabilities, self.y_test)
        if self.print_each:
            print(f"Epoch {row['epoch']}/{self.total} - {seconds:.2f}s - loss: {row['train_loss']:.4f} - "
                  f"accuracy: {row['train_accuracy']:.4f} - test_loss: {row['test_loss']:.4f} - "
                  f"test_accuracy: {row['test_accuracy']:.4f}", flush=True)
        return True


class EpochRecorder(keras.callbacks.Callback):
    """Feeds Keras's epochs to an EpochLog, timing training only; the test scores also go
    into the epoch's logs, so Keras's progress bar shows them."""

    def __init__(self, x_test, epochs: EpochLog):
        super().__init__()
        self.x_test, self.epochs = x_test, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        if self.epochs.record(logs["loss"], logs["accuracy"], seconds, lambda: predict(self.model, self.x_test)):
            row = self.epochs.history[-1]
            logs.update(test_loss=row["test_loss"], test_accuracy=row["test_accuracy"])


def predict(model, x_test) -> np.ndarray:
    """Class probabilities of either engine's model."""
    return model.probabilities(x_test) if isinstance(model, NumpyModel) else forward(model, x_test)


def loss_and_accuracy(probabilities: np.ndarray, one_hot_labels: np.ndarray) -> tuple[float, float]:
    """Mean categorical cross-entropy (as Keras computes it) and accuracy."""
    losses = keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(one_hot_labels, probabilities))
    accuracy = np.mean(probabilities.argmax(axis=1) == one_hot_labels.argmax(axis=1))
    return float(np.mean(losses, dtype=np.float64)), float(accuracy)


def confusion_counts(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """counts[true, predicted] over the ten digits."""
    return np.bincount(labels * NUM_CLASSES + predictions,
                       minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def steady_epoch_seconds(seconds: list) -> float:
    """Median epoch time after the first, which also pays for building the graph."""
    return statistics.median(seconds[1:] or seconds)


def run_metrics(config, dataset, trajectory, confusion, wall_seconds) -> dict:
    return {**result_record(config, dataset, trajectory.history, trajectory.model),
            "confusion_matrix": confusion.tolist(), "wall_seconds": wall_seconds}


def last_stage(config, history: list) -> list:
    """The rows of ``history`` (a training's, up to this config's end) of its last stage, ``training``."""
    return history[len(history) - config.training.epochs:]


def result_record(config, dataset, history, model) -> dict:
    """The numbers every result carries, train runs and sweep cells alike, with how they were
    computed (versions, compute threads, device, XLA compilation: none of them is part of the
    experiment, and each may move the last digits). A continued model's record holds the epochs
    of its last stage, ``training``."""
    history = last_stage(config, history)
    last = history[-1]
    seconds = [row["train_seconds"] for row in history]
    numpy_model = isinstance(model, NumpyModel)
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
        "seed": config.seed,
        "config_hash": experiment_hash(config, dataset.digest, keras.backend.backend()),
        "data_order": DATA_ORDER,
        "data": dataset.record(config.data.train_limit, config.data.test_limit),
        "versions": versions.installed(keras.backend.backend()),
        "compute_threads": backends.compute_threads(),
        "device": "cpu:0" if numpy_model else keras.distribution.list_devices()[0],
        "jit_compile": False if numpy_model else bool(model.jit_compile),
        "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "config": to_dict(config),
    }


def write_run(folder: Path, name, config, model, summary, history, metrics):
    """Every file of a run folder; metrics.json last, so its presence means the rest is written."""
    (folder / "config.yaml").write_text(to_yaml(config))
    (folder / "summary.txt").write_text(summary + "\n")
    model.save(folder / ("model.npz" if isinstance(model, NumpyModel) else "model.keras"))
    with open(folder / "history.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=store.HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)
    title = f"{name}: test accuracy {metrics['test_accuracy']:.2%}"
    plots.learning_curves(history, folder / "learning_curves.png", title)
    plots.confusion_matrix(np.array(metrics["confusion_matrix"]), folder / "confusion_matrix.png", title)
    (folder / store.METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
