"""`mnist-lab sweep`: batch size x epochs x learning rate x seed, each trajectory trained once.

Cells that differ only in ``epochs`` share one training: it runs to the largest
epoch count and writes each cell's result file when it passes that cell's
epoch count. A cell is done when its file exists, so a killed sweep resumes.
"""

from __future__ import annotations

import dataclasses
import fcntl
import itertools
import json
import os
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import (Config, config_hash, config_name, consistency_problems, load_config, load_sweep_config,
                     to_dict)
from .errors import ConfigError
from .files import atomic_write_text

SWEEPS_FOLDER = "sweeps"
CELLS_FOLDER = "cells"
FAILED_FOLDER = "failed"
# Seconds per epoch on full MNIST measured on the project's 2-core CPU machine
# (epoch plus test evaluation), for --dry-run before any cell has run.
MEASURED_EPOCH_SECONDS = {"logreg": 0.2, "mlp": 0.4, "cnn": 10.5}
TRAJECTORY_OVERHEAD_SECONDS = 1.0  # building and tracing a model


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a base config's name and the resolved config it trains."""

    name: str
    config: Config

    @property
    def key(self) -> str:
        return f"{self.name}-{config_hash(self.config)}"

    @property
    def epochs(self) -> int:
        return self.config.training.epochs


@dataclass(frozen=True)
class Sweep:
    name: str
    cells: tuple


@dataclass(frozen=True)
class SweepOutcome:
    folder: Path
    skipped: int
    trained: int
    failures: dict  # cell key -> error message


class SweepLocked(RuntimeError):
    """Another sweep process holds the folder."""


def load_sweep(path, overrides=(), data_path=None, only=None) -> Sweep:
    """Read a sweep file and its base configs (``--set``/``--data`` apply to each base).

    ``only`` keeps the grids of these base-config names (file names without extension).
    """
    spec = load_sweep_config(path)
    names = [config_name(grid.config) for grid in spec.models]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ConfigError([f"--only: expected names among {', '.join(dict.fromkeys(names))}, "
                           f"got {', '.join(unknown)}"])
    cells, problems = [], []
    for index, grid in enumerate(spec.models):
        if only and names[index] not in only:
            continue
        base_path = Path(path).parent / grid.config
        try:
            base = load_config(base_path, overrides, data_path=data_path)
        except ConfigError as error:
            problems += [f"{path}: models[{index}].config: {problem}" for problem in error.problems]
            continue
        expanded = expand_grid(config_name(base_path), base, grid, spec.seeds)
        # A combination can be invalid where each value alone is not (numpy engine, cnn base).
        problems += list(dict.fromkeys(f"{path}: models[{index}]: {field_path}: {message}" for cell in expanded
                                       for field_path, message in consistency_problems(cell.config)))
        cells += expanded
    if problems:
        raise ConfigError(problems)
    return Sweep(spec.name or config_name(path), tuple(dict.fromkeys(cells)))


def expand_grid(name, base: Config, grid, seeds) -> list[Cell]:
    """Every combination of the grid's axes; an axis left out keeps the base config's value."""
    training = base.training
    axes = [grid.engine or (base.engine,), grid.seeds or seeds, grid.batch_size or (training.batch_size,),
            grid.learning_rate or (training.learning_rate,), grid.epochs or (training.epochs,)]
    # Epochs vary fastest, so the cells of one trajectory are neighbours.
    return [Cell(name, dataclasses.replace(base, engine=engine, seed=seed, training=dataclasses.replace(
                training, batch_size=batch_size, learning_rate=learning_rate, epochs=epochs)))
            for engine, seed, batch_size, learning_rate, epochs
            in itertools.product(*(dict.fromkeys(axis) for axis in axes))]


def trajectories(cells) -> list[list[Cell]]:
    """Cells grouped by everything but the epoch count, in sweep order."""
    groups = {}
    for cell in cells:
        shared = dataclasses.replace(cell.config, training=dataclasses.replace(cell.config.training, epochs=1))
        groups.setdefault((cell.name, shared), []).append(cell)
    return list(groups.values())


def sweep_folder(results_dir, name) -> Path:
    return Path(results_dir) / SWEEPS_FOLDER / name


def cell_path(folder: Path, cell: Cell) -> Path:
    return folder / CELLS_FOLDER / f"{cell.key}.json"


def pending_cells(sweep: Sweep, folder: Path, force=False) -> list[Cell]:
    return [cell for cell in sweep.cells if force or not cell_path(folder, cell).exists()]


def estimate_seconds(cells, folder: Path) -> float:
    """Expected training time: this folder's measured speeds where it has cells, else this machine's."""
    measured = dict(MEASURED_EPOCH_SECONDS)
    for record in read_cell_records(folder):
        measured[record["model"]] = record["seconds_per_epoch"]
    total = 0.0
    for group in trajectories(cells):
        config = group[0].config
        train_images = min(config.data.train_limit or 60000, 60000)
        total += (TRAJECTORY_OVERHEAD_SECONDS + measured[config.model.type] * max(cell.epochs for cell in group)
                  * train_images / 60000)
    return total


def read_cell_records(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((folder / CELLS_FOLDER).glob("*.json"))]


@contextmanager
def exclusive_lock(folder: Path):
    """Hold the sweep folder for this process; the kernel releases it even on kill -9."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise SweepLocked(f"{folder} is being written by another sweep (pid {handle.read().strip() or '?'}); "
                              f"wait for it to finish, or use another --results folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def run_sweep(sweep: Sweep, results_dir="results", *, force=False, progress=True, log=print) -> SweepOutcome:
    """Train every pending cell, one trajectory per group, then rewrite the tables and figures."""
    from . import report
    from .progress import SweepProgress

    folder = sweep_folder(results_dir, sweep.name)
    with exclusive_lock(folder):
        for leftover in folder.rglob(".*.tmp"):  # atomic writes cut short by a kill
            leftover.unlink()
        todo = pending_cells(sweep, folder, force)
        skipped = len(sweep.cells) - len(todo)
        if skipped:
            log(f"{skipped} of {len(sweep.cells)} cells already done, skipped (--force reruns them)")
        failures, groups = {}, trajectories(todo)
        total_epochs = sum(max(cell.epochs for cell in group) for group in groups)
        with SweepProgress(len(sweep.cells), skipped, total_epochs, enabled=progress, log=log) as bar:
            data = _DataCache()
            for group in groups:
                failures.update(_run_trajectory(group, folder, data, bar))
        report.write_sweep_report(folder, {cell.key for cell in sweep.cells})
    return SweepOutcome(folder, skipped, len(todo) - len(failures), failures)


def _run_trajectory(group, folder, data, bar) -> dict:
    """Train one trajectory, writing each cell as its epoch count passes; return failures."""
    from .train import fit_model, new_model

    by_epochs = {cell.epochs: cell for cell in group}
    longest = by_epochs[max(by_epochs)]
    written = set()
    bar.start_trajectory(longest)

    def on_epoch(history):
        bar.epoch_done(history[-1])
        cell = by_epochs.get(len(history))
        if cell is not None:
            record = cell_record(cell, dataset, history, model.count_params())
            atomic_write_text(cell_path(folder, cell), json.dumps(record, indent=1) + "\n")
            (folder / FAILED_FOLDER / f"{cell.key}.json").unlink(missing_ok=True)
            written.add(cell.key)
            bar.cell_done(cell, record)

    try:
        dataset, arrays = data.get(longest.config)
        model = new_model(longest.config)
        fit_model(model, longest.config, arrays, on_epoch=on_epoch)
    except Exception as error:  # one failed cell must not stop the sweep
        return _record_failures([cell for cell in group if cell.key not in written], folder, error, bar)
    return {}


def _record_failures(cells, folder, error, bar) -> dict:
    message = str(error) or type(error).__name__
    for cell in cells:
        atomic_write_text(folder / FAILED_FOLDER / f"{cell.key}.json", json.dumps({
            "key": cell.key, "config": to_dict(cell.config), "error": message,
            "traceback": traceback.format_exception(error)}, indent=1) + "\n")
        bar.cell_failed(cell, message)
    return {cell.key: message for cell in cells}


def cell_record(cell: Cell, dataset, history, parameters) -> dict:
    """A cell's result file: the shared result numbers, its resolved config and history."""
    from .train import result_record

    return {"key": cell.key, "name": cell.name, **result_record(cell.config, dataset, history, parameters),
            "config": to_dict(cell.config), "history": history}


class _DataCache:
    """Each dataset loaded once per sweep, each model input layout prepared once."""

    def __init__(self):
        self._datasets, self._arrays = {}, {}

    def get(self, config):
        from .data import load_dataset, prepare

        source = (config.data.source, config.data.path)
        if source not in self._datasets:
            self._datasets[source] = load_dataset(config.data)
        dataset = self._datasets[source]
        layout = (source, config.data.train_limit, config.data.test_limit, config.model.type == "cnn")
        if layout not in self._arrays:
            self._arrays[layout] = prepare(dataset, config.model.type, config.data.train_limit,
                                           config.data.test_limit)
        return dataset, self._arrays[layout]
