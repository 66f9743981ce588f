"""The numbers every result carries, train runs and sweep cells alike, computed from a training's
history and model, with how they were computed."""

from __future__ import annotations

import statistics
from datetime import datetime, timezone

import keras
import numpy as np

from mnist_lab.core import backends, versions
from mnist_lab.core.config import to_dict
from mnist_lab.core.data import NUM_CLASSES, VALIDATION_FIELDS
from mnist_lab.core.identity import DATA_ORDER
from mnist_lab.training.numpy_engine import NumpyModel


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
    held_out = {name: last[name] for name in VALIDATION_FIELDS if name in last}
    return {
        "model": config.model.type,
        "test_loss": last["test_loss"],
        "test_accuracy": last["test_accuracy"],
        "train_loss": last["train_loss"],
        "train_accuracy": last["train_accuracy"],
        **held_out,
        "parameters": model.count_params(),
        "epochs": len(history),
        "seconds_per_epoch": steady_epoch_seconds(seconds),
        "epoch_seconds": seconds,
        "seed": config.seed,
        "data_order": DATA_ORDER,
        "data": dataset.record(config.data.train_limit, config.data.test_limit, config.data.validation),
        "versions": versions.installed(keras.backend.backend()),
        "compute_threads": backends.compute_threads(),
        "device": "cpu:0" if numpy_model else keras.distribution.list_devices()[0],
        "jit_compile": False if numpy_model else bool(model.jit_compile),
        "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "config": to_dict(config),
    }
