"""Time estimates before anything runs: a training from its config and the seconds per epoch
measured on the same kind of training, and a sweep's trajectories shared out over its workers."""

from __future__ import annotations

import heapq
import json
import statistics

from mnist_lab.core.config import to_dict
from mnist_lab.core.sweep_plan import trajectories

# Seconds per epoch on full MNIST measured on the project's 2-core CPU machine
# (training plus the test evaluation), for estimates before anything has run.
MEASURED_EPOCH_SECONDS = {"logreg": 0.2, "mlp": 0.4, "cnn": 6.0}
TRAJECTORY_OVERHEAD_SECONDS = 1.0  # building and tracing a model
FULL_TRAIN_IMAGES = 60000


def run_seconds(config, epochs: int, measured_epoch_seconds=None) -> float:
    """Expected training time of ``epochs`` epochs of ``config``: from seconds per epoch measured
    on the same model, engine, batch size and number of training images when there are some,
    else from this machine's built-in figure scaled by the training images used."""
    if measured_epoch_seconds is not None:
        return TRAJECTORY_OVERHEAD_SECONDS + measured_epoch_seconds * epochs
    train_images = min(config.data.train_limit or FULL_TRAIN_IMAGES, FULL_TRAIN_IMAGES)
    return (TRAJECTORY_OVERHEAD_SECONDS
            + MEASURED_EPOCH_SECONDS[config.model.type] * epochs * train_images / FULL_TRAIN_IMAGES)


def sweep_seconds(cells, records, workers=1) -> float:
    """Expected wall time of ``cells`` on ``workers`` workers: each trajectory at the seconds per
    epoch measured in ``records`` of the same model, engine, batch size and number of training
    images (their median), else at this machine's built-in figures."""
    return plan_seconds(trajectory_estimates(cells, records), workers)


def trajectory_estimates(cells, records) -> list[float]:
    """Expected seconds of each trajectory of ``cells`` (see sweep_seconds)."""
    measured = {}
    for record in records:
        measured.setdefault(_speed_class(record["config"], record["data"]["train_images"]), []).append(
            record["seconds_per_epoch"])
    estimates = []
    for group in trajectories(cells):
        config = group[0].config
        train_images = min(config.data.train_limit or FULL_TRAIN_IMAGES, FULL_TRAIN_IMAGES)
        seconds = measured.get(_speed_class(to_dict(config), train_images))
        estimates.append(run_seconds(config, max(cell.config.total_epochs for cell in group),
                                     statistics.median(seconds) if seconds else None))
    return estimates


def _speed_class(config_dict: dict, train_images: int) -> tuple:
    """What the speed of an epoch depends on (the learning rate and seed do not change it)."""
    return (json.dumps(config_dict["model"], sort_keys=True), config_dict.get("engine", "keras"),
            config_dict["training"]["batch_size"], train_images)


def plan_seconds(trajectory_seconds: list, workers: int) -> float:
    """Wall time of trajectories of these durations on ``workers`` workers: longest first, each to
    the worker that frees up first (what Dask's scheduler does with equal-priority tasks)."""
    finish = [0.0] * max(1, workers)
    for seconds in sorted(trajectory_seconds, reverse=True):
        heapq.heapreplace(finish, finish[0] + seconds)
    return max(finish)
