"""Time estimates before anything runs: a training from its config and the seconds per epoch this
machine measured on the same kind of training (every run and sweep cell in the results folder),
else a built-in figure, saying which; and a sweep's trajectories shared out over its workers."""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.core.backends import DEFAULT_BACKEND, compute_threads, selected_backend
from mnist_lab.core.config import to_dict
from mnist_lab.core.sweep_plan import trajectories
from mnist_lab.results import store

# Seconds per epoch on full MNIST measured on the project's 2-core CPU machine
# (training plus the test evaluation), for estimates before anything has run.
MEASURED_EPOCH_SECONDS = {"logreg": 0.2, "mlp": 0.4, "cnn": 6.0}
# ... at the lab's batch of 300; each step more or fewer costs this (a step's dispatch and update
# whatever its size: 0.33 ms logistic regression, 0.38 ms MLP, from epochs of 12,000 images at
# batches of 10 to 1,000 on the project's 2-core machine), so batches of 10 are not estimated
# at the speed of batches of 300.
BUILT_IN_BATCH, STEP_SECONDS = 300, 0.00035
TRAJECTORY_OVERHEAD_SECONDS = 1.0  # building and tracing a model
FULL_TRAIN_IMAGES = 60000
SEARCH_CORNERS = 64  # the combinations of a search space's ends its estimate is the mean of
# A command's seconds outside its training loops on the project's 2-core machine: Python, the
# backend and matplotlib imported, the data read, figures and files written. A whole `train`
# process minus its record's wall_seconds measured 5.4 s (NumPy MLP), 5.7 s (CNN), 6.7 s (MLP).
START_SECONDS = 6.0
# A training loop's wall time over its training steps (the test evaluation after every epoch,
# checkpoints) where no run of the kind has measured it: 1.25 (MLP) and 1.47 (CNN) measured here.
LOOP_SHARE = 1.3


@dataclass(frozen=True)
class Estimate:
    """Expected seconds of training, what they rest on, in words, and the whole command's."""

    seconds: float
    basis: str
    measured: bool = True  # False: from a built-in figure
    loop_share: float = LOOP_SHARE  # the training loop's wall time over its training steps

    @property
    def in_all(self) -> float:
        """The whole command: start-up, the training loops (evaluation included), the files."""
        return START_SECONDS + self.seconds * self.loop_share

    def describe(self, duration) -> str:
        """"2 s of training, about 9 s in all (…); from <basis>", durations worded by ``duration``."""
        return (f"{duration(self.seconds)} of training, about {duration(self.in_all)} in all (start-up and files "
                f"{START_SECONDS:.0f} s, the loop {self.loop_share:.2f} x its training steps); from {self.basis}")


def measured_records(results_dir) -> list[dict]:
    """The records of every complete run and sweep cell under ``results_dir``: what this machine
    has measured (read without Keras; damaged ones are left out silently, as commands that read
    them warn)."""
    records = [metrics for _, metrics in store.complete_runs(results_dir, log=lambda _: None)]
    for place in (store.SWEEPS_FOLDER, store.SEARCHES_FOLDER):  # sweep cells, and a search's trial cells
        folders = Path(results_dir) / place
        for folder in sorted(folders.iterdir()) if folders.is_dir() else []:
            if folder.is_dir():
                records += list(store.read_cells(folder).records.values())
    return records


def run_seconds(config, epochs: int, records=(), threads=None) -> Estimate:
    """Expected training time of ``epochs`` epochs of ``config``: from the median seconds per epoch
    of ``records`` of the same speed class (model, engine, backend, batch size, training images,
    compute threads: _speed_class) when there are some, else from the built-in figure of the
    project's machine scaled by the training images used; the estimate says which."""
    return dataclasses.replace(_estimate(config, epochs, _measured(records), threads),
                               loop_share=_loop_share(config, records, threads))


def sweep_seconds(cells, records, workers=1, threads=None) -> Estimate:
    """Expected wall time of ``cells`` on ``workers`` workers, each trajectory estimated as
    run_seconds does (its longest cell), from ``records`` where they match."""
    measured = _measured(records)
    estimates = [_estimate(group[0].config, max(cell.config.total_epochs for cell in group), measured, threads)
                 for group in trajectories(cells)]
    from_records = sum(estimate.measured for estimate in estimates)
    basis = (f"{from_records} of {len(estimates)} trainings at the speeds of this results folder's runs and sweep "
             f"cells of the same model, engine, backend, batch size, images and threads"
             + ("" if from_records == len(estimates) else
                f"; {len(estimates) - from_records} at built-in figures from the project's 2-core machine, as nothing "
                "of their kind has been measured in this results folder"))
    return Estimate(plan_seconds([estimate.seconds for estimate in estimates], workers), basis)


def search_seconds(search, trials: int, records) -> Estimate:
    """Expected wall time of ``trials`` trials of ``search`` (each seed of each trial trained in
    full, one after another): the mean estimate over the corners of its space (each field's
    choices, or the two ends of its range; at most SEARCH_CORNERS of them)."""
    import itertools

    from mnist_lab.core.errors import ConfigError

    measured, estimates = _measured(records), []
    fields = [parameter.field for parameter in search.parameters]
    for values in itertools.islice(itertools.product(*[parameter.choices or (parameter.low, parameter.high)
                                                       for parameter in search.parameters]), SEARCH_CORNERS):
        try:
            config = search.cells(dict(zip(fields, values)))[0].config
        except ConfigError:  # a combination no trial can train
            continue
        estimates.append(_estimate(config, config.total_epochs, measured))
    if not estimates:
        return Estimate(0.0, "no corner of the space is a valid config")
    from_records = sum(estimate.measured for estimate in estimates)
    per_trial = statistics.fmean(estimate.seconds for estimate in estimates) * len(search.seeds)
    basis = (f"the mean over {len(estimates)} corners of the space, {from_records} at speeds measured in this "
             f"results folder, {len(estimates) - from_records} at built-in figures")
    return Estimate(per_trial * trials, basis)


def _loop_share(config, records, threads=None) -> float:
    """The median wall time of a training loop over its training steps among the runs of the same
    speed class as ``config`` (sweep cells do not record it), else LOOP_SHARE."""
    wanted = _config_class(config, threads)
    shares = [record["wall_seconds"] / sum(record["epoch_seconds"]) for record in records
              if record.get("wall_seconds") and sum(record.get("epoch_seconds") or [0]) > 0
              and _record_class(record) == wanted]
    return statistics.median(shares) if shares else LOOP_SHARE


def _measured(records) -> dict:
    """Seconds per epoch of ``records`` by speed class."""
    measured = {}
    for record in records:
        measured.setdefault(_record_class(record), []).append(record["seconds_per_epoch"])
    return measured


def _estimate(config, epochs: int, measured: dict, threads=None) -> Estimate:
    seconds = measured.get(_config_class(config, threads))
    if seconds:
        per_epoch = statistics.median(seconds)
        return Estimate(TRAJECTORY_OVERHEAD_SECONDS + per_epoch * epochs,
                        f"the median {per_epoch:.2f} s per epoch measured in {len(seconds)} "
                        f"run{'s' if len(seconds) > 1 else ''} or cell{'s' if len(seconds) > 1 else ''} of this results "
                        "folder (same model, engine, backend, batch size, images and threads)")
    images = _train_images(config)
    steps = math.ceil(images / config.training.batch_size) - math.ceil(images / BUILT_IN_BATCH)
    per_epoch = max(MEASURED_EPOCH_SECONDS[config.model.type] * images / FULL_TRAIN_IMAGES + steps * STEP_SECONDS, 0.0)
    return Estimate(TRAJECTORY_OVERHEAD_SECONDS + per_epoch * epochs,
                    f"a built-in figure ({per_epoch:.2f} s per epoch, measured on the project's 2-core machine): "
                    "nothing of the same model, engine, backend, batch size, images and threads has been measured "
                    "in this results folder yet", measured=False)


def _train_images(config) -> int:
    left = FULL_TRAIN_IMAGES - (config.data.validation or 0)  # a validation split is never trained on
    return min(config.data.train_limit or left, left)


def _config_class(config, threads=None) -> tuple:
    """The speed class of training ``config`` here, with ``threads`` (this process's by default)."""
    return _speed_class(to_dict(config), _train_images(config), selected_backend(), threads or compute_threads())


def _record_class(record: dict) -> tuple:
    """The speed class a run's or cell's record was measured in."""
    return _speed_class(record["config"], record["data"]["train_images"],
                        record["versions"].get("backend", DEFAULT_BACKEND), record.get("compute_threads"))


def _speed_class(config_dict: dict, train_images: int, backend: str, threads) -> tuple:
    """What the speed of an epoch depends on (the learning rate and seed do not change it)."""
    return (json.dumps(config_dict["model"], sort_keys=True), config_dict.get("engine", "keras"), backend,
            config_dict["training"]["batch_size"], train_images, threads)


def plan_seconds(trajectory_seconds: list, workers: int) -> float:
    """Wall time of trajectories of these durations on ``workers`` workers: longest first, each to
    the worker that frees up first (what Dask's scheduler does with equal-priority tasks)."""
    finish = [0.0] * max(1, workers)
    for seconds in sorted(trajectory_seconds, reverse=True):
        heapq.heapreplace(finish, finish[0] + seconds)
    return max(finish)
