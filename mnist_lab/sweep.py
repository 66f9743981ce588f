"""`mnist-lab sweep`: batch size x epochs x learning rate x seed, each trajectory trained once.

Cells that differ only in ``epochs`` share one training: it runs to the largest
epoch count and writes each cell's result file when it passes that cell's
epoch count. A cell is done when its file exists, so a killed sweep resumes.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import statistics
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import files, interrupts, store
from .config import (FOLDER_NAME, Config, TrainingConfig, config_name, consistency_problems, load_config,
                     load_sweep_config, to_dict)
from .errors import ConfigError
from .checkpoints import CheckpointFolder
from .event_logs import FOLDER as LOGS_FOLDER, LiveLog, hyperparameters, write_log
from .identity import experiment_key, key_hash, trajectory_key
from .trajectory import DataCache, failure_message, train_trajectory
from .train import FULL_TRAIN_IMAGES, estimate_seconds as trajectory_seconds



@dataclass(frozen=True)
class Cell:
    """One point of the grid: a base config's name and the resolved config it trains."""

    name: str
    config: Config

    @functools.cached_property
    def key(self) -> str:
        """The cell's key: its label (the base config's name) and its experiment hash, computed once."""
        return experiment_key(self.name, self.config)

    @property
    def experiment(self) -> str:
        """The cell's identity: its experiment hash (config, data content), whatever its label."""
        return key_hash(self.key)

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
            # The grid's own overrides first; --set from the command line wins over them.
            base = load_config(base_path, [*((item, f"models[{index}].set") for item in grid.set or ()), *overrides],
                               data_path=data_path)
        except ConfigError as error:
            problems += [f"{path}: models[{index}].config: {problem}" for problem in error.problems]
            continue
        if grid.chain and (grid.batch_size or grid.epochs or grid.learning_rate):
            problems.append(f"{path}: models[{index}].chain: expected no batch_size, epochs or learning_rate "
                            f"axis beside a chain (each stage sets them)")
            continue
        expanded = expand_grid(config_name(base_path), base, grid, spec.seeds)
        # A combination can be invalid where each value alone is not (numpy engine, cnn base).
        problems += list(dict.fromkeys(f"{path}: models[{index}]: {field_path}: {message}" for cell in expanded
                                       for field_path, message, _ in consistency_problems(cell.config)))
        cells += expanded
    name = spec.name or Path(path).stem
    if not FOLDER_NAME[0].fullmatch(name):  # a name from the file's own name; spec.name is checked at load
        problems.append(f"{path}: name: expected {FOLDER_NAME[1]} (the default is the file's name), "
                        f"got {name!r}; set name: in the file")
    if problems:
        raise ConfigError(problems)
    unique = {}  # one cell per experiment, whatever base config names it (reads every cell's data)
    for cell in cells:
        unique.setdefault(cell.experiment, cell)
    return Sweep(name, tuple(unique.values()))


def expand_grid(name, base: Config, grid, seeds) -> list[Cell]:
    """Every combination of the grid's axes; an axis left out keeps the base config's value. A
    grid with a ``chain`` has a cell after each of its stages, all trained on one model."""
    if grid.chain:
        return _chain_cells(name, base, grid, seeds)
    training = base.training
    axes = [grid.engine or (base.engine,), grid.seeds or seeds, grid.batch_size or (training.batch_size,),
            grid.learning_rate or (training.learning_rate,), grid.epochs or (training.epochs,)]
    # Epochs vary fastest, so the cells of one trajectory are neighbours.
    return [Cell(name, dataclasses.replace(base, engine=engine, seed=seed, training=dataclasses.replace(
                training, batch_size=batch_size, learning_rate=learning_rate, epochs=epochs)))
            for engine, seed, batch_size, learning_rate, epochs
            in itertools.product(*(dict.fromkeys(axis) for axis in axes))]


def _chain_cells(name, base: Config, grid, seeds) -> list[Cell]:
    """Per engine and seed, one cell after each stage of the chain: a stage's fields left out
    keep the base config's values; the model of stage k has been through stages 1..k-1."""
    stages = [dataclasses.replace(base.training, **{field: value for field, value in vars(stage).items()
                                                    if value is not None}) for stage in grid.chain]
    return [Cell(name, dataclasses.replace(base, engine=engine, seed=seed, training=stage,
                                           continues=(*base.continues, *stages[:index])))
            for engine, seed in itertools.product(dict.fromkeys(grid.engine or (base.engine,)),
                                                  dict.fromkeys(grid.seeds or seeds))
            for index, stage in enumerate(stages)]


def trajectories(cells) -> list[list[Cell]]:
    """Cells grouped into trainings, in sweep order: cells that differ only in ``epochs`` share one,
    and so does a continued model's chain, whose earlier cells lie on the way to its last one."""
    groups = {}
    for cell in cells:
        shared = dataclasses.replace(cell.config, training=dataclasses.replace(cell.config.training, epochs=1))
        groups.setdefault((cell.name, shared), []).append(cell)
    hosts = []  # the groups trained, the longest first; a group on the way of one is trained by it
    for group in sorted(groups.values(), key=lambda group: -longest(group).config.total_epochs):
        host = next((host for host in hosts if _on_the_way(longest(group), longest(host))), None)
        if host is None:
            hosts.append(group)
        else:
            host.extend(group)
    order = {id(cell): index for index, cell in enumerate(cells)}
    return sorted(hosts, key=lambda group: min(order[id(cell)] for cell in group))


def _on_the_way(cell: Cell, longer: Cell) -> bool:
    """Whether training ``longer`` passes through ``cell``'s model: the same everything but the
    stages, and ``cell``'s stages a start of ``longer``'s (its last one possibly shorter)."""
    fresh = {"training": TrainingConfig(), "continues": ()}
    if (cell.name, dataclasses.replace(cell.config, **fresh)) != (longer.name, dataclasses.replace(longer.config, **fresh)):
        return False
    mine, theirs = cell.config.stages, longer.config.stages
    if len(mine) > len(theirs) or mine[:-1] != theirs[:len(mine) - 1]:
        return False
    last, passed = mine[-1], theirs[len(mine) - 1]
    return dataclasses.replace(last, epochs=1) == dataclasses.replace(passed, epochs=1) and last.epochs <= passed.epochs


def longest(group) -> Cell:
    """The cell a trajectory trains to: the most epochs, its earlier stages counted."""
    return max(group, key=lambda cell: cell.config.total_epochs)


def sweep_folder(results_dir, name) -> Path:
    return Path(results_dir) / store.SWEEPS_FOLDER / name


def pending_cells(sweep: Sweep, done, force=False) -> list[Cell]:
    """The cells whose experiment is not among the keys ``done``, whatever their labels (all of them
    with ``force``)."""
    done_experiments = {key_hash(key) for key in done}
    return [cell for cell in sweep.cells if force or cell.experiment not in done_experiments]


def dry_run(sweep: Sweep, folder: Path, force=False, cluster=None, log=print):
    """List every cell (todo or done) and the estimated wall time, on ``cluster`` if given; train
    nothing (cells written under an older identity count as done: the sweep re-keys them)."""
    from .progress import describe_cell, duration

    cells = store.read_cells(folder)
    store.warn_damaged(cells.damaged, log)
    todo = pending_cells(sweep, {**cells.records, **{key: None for key in cells.stale.values()}}, force)
    for cell in sweep.cells:
        log(f"{'todo' if cell in todo else 'done'}  {describe_cell(cell)}")
    spread = "" if cluster is None else f", {len(trajectories(todo))} trajectories on {cluster.describe()}"
    seconds = estimate_seconds(todo, cells.records.values(), 1 if cluster is None else cluster.workers or 1)
    assumption = ("" if cluster is None else
                  " (as if each worker trained as fast as one serial process: optimistic when the cores are "
                  "shared out)" if cluster.workers else
                  " (as if on one worker: the cluster's size is not known before it runs)")
    log(f"{len(sweep.cells)} cells, {len(todo)} to train{spread}; estimated time {duration(seconds)} on this "
        f"machine's measured speeds{assumption}")


def estimate_seconds(cells, records, workers=1) -> float:
    """Expected wall time of ``cells`` on ``workers`` workers: each trajectory at the seconds per
    epoch measured in ``records`` of the same model, engine, batch size and number of training
    images (their median), else at this machine's built-in figures."""
    from .executors import plan_seconds

    return plan_seconds(trajectory_estimates(cells, records), workers)


def trajectory_estimates(cells, records) -> list[float]:
    """Expected seconds of each trajectory of ``cells`` (see estimate_seconds)."""
    measured = {}
    for record in records:
        measured.setdefault(_speed_class(record["config"], record["data"]["train_images"]), []).append(
            record["seconds_per_epoch"])
    estimates = []
    for group in trajectories(cells):
        config = group[0].config
        train_images = min(config.data.train_limit or FULL_TRAIN_IMAGES, FULL_TRAIN_IMAGES)
        seconds = measured.get(_speed_class(to_dict(config), train_images))
        estimates.append(trajectory_seconds(config, max(cell.config.total_epochs for cell in group),
                                            statistics.median(seconds) if seconds else None))
    return estimates


def _speed_class(config_dict: dict, train_images: int) -> tuple:
    """What the speed of an epoch depends on (the learning rate and seed do not change it)."""
    return (json_key(config_dict["model"]), config_dict.get("engine", "keras"),
            config_dict["training"]["batch_size"], train_images)


def json_key(value) -> str:
    return json.dumps(value, sort_keys=True)


LOCK_FILE = ".lock"


@contextmanager
def exclusive_lock(folder: Path):
    """Hold the sweep folder for this process (files.take_lock: the kernel releases it even on
    kill -9, and `mnist-lab runs` asks who holds it without taking it)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = files.take_lock(folder / LOCK_FILE)
    except BlockingIOError:
        holder = files.lock_holder(folder / LOCK_FILE)
        raise SweepLocked(f"{folder} is being written by another sweep (pid {holder or '? (another host)'}); "
                          f"wait for it to finish, or use another --results folder") from None
    with lock:
        yield


def run_sweep(sweep: Sweep, results_dir="results", *, force=False, progress=True, log=print,
              cluster=None, event_logs=True) -> SweepOutcome:
    """Train every pending cell, one trajectory per group, then rewrite the tables and figures.

    ``cluster`` (an executors.ClusterSpec) runs the trajectories on Dask workers; this process
    alone holds the lock and writes the cell files, as each cell's result arrives.
    """
    from . import tables
    from .progress import SweepProgress

    folder = sweep_folder(results_dir, sweep.name)
    with exclusive_lock(folder):
        store.remove_temporaries(folder)
        cells = store.rekey_cells(folder, store.read_cells(folder))
        store.warn_damaged(cells.damaged, log)
        todo = pending_cells(sweep, cells.records, force)
        for cell in todo if event_logs else ():  # a file in a log's place would fail its trajectory on every run
            store.check_writable(SweepListener.log_folder_of(folder, cell), "--results")
        skipped = len(sweep.cells) - len(todo)
        if skipped:
            log(f"{skipped} of {len(sweep.cells)} cells already done, skipped (--force reruns them)")
            by_experiment = {key_hash(key): record for key, record in cells.records.items()}
            _note_versions([by_experiment[cell.experiment] for cell in sweep.cells if cell not in todo], log)
        groups = trajectories(todo)
        saved = SweepCheckpoints(folder, sweep, groups, force, log)
        done_epochs = [saved.done_epochs(group) for group in groups]
        resumed = [epochs for epochs in done_epochs if epochs]
        if resumed:
            log(f"Resuming {len(resumed)} {'trajectory' if len(resumed) == 1 else 'trajectories'} from "
                f"checkpoints ({sum(resumed)} epochs already done)")
        total_epochs = sum(longest(group).config.total_epochs for group in groups) - sum(done_epochs)
        with ExitStack() as stack:
            if cluster is not None and groups:  # connected before the bar: connecting says so itself
                from .executors import DaskClient, run_on_dask

                dask_client = stack.enter_context(DaskClient(cluster, log))
            bar = stack.enter_context(SweepProgress(len(sweep.cells), skipped, total_epochs, enabled=progress,
                                                    log=log))
            listener = SweepListener(folder, bar, saved, event_logs)
            failures = {}
            if cluster is None:
                data = DataCache()
                for group in groups:
                    failures.update(_run_trajectory(group, data, listener, saved))
            elif groups:
                failures = run_on_dask(dask_client, groups, DataCache(), listener, saved, log)
        tables.write_sweep_report(folder, {cell.experiment for cell in sweep.cells}, log=lambda *_: None)
    return SweepOutcome(folder, skipped, len(todo) - len(failures), failures)


def _note_versions(records, log):
    """Say which kept cells were made under other versions than the installed ones (they are kept:
    the experiment is the same; see versions.py)."""
    from .backends import selected_backend
    from .versions import differences

    changed = {}
    for record in records:
        for difference in differences(record["versions"], selected_backend()):
            changed[difference] = changed.get(difference, 0) + 1
    if changed:
        log(f"Note: kept cells made with other versions than those installed: "
            f"{', '.join(f'{difference} ({count} cells)' for difference, count in changed.items())}; "
            f"--force reruns them with the installed ones")


class SweepCheckpoints:
    """The checkpoints of a sweep's pending trajectories (``.checkpoints/`` in its folder): read
    once before training (the progress bar counts what is left), removed as each trajectory
    ends. With ``force`` none is used: every trajectory starts over."""

    def __init__(self, folder: Path, sweep: Sweep, groups, force: bool, log):
        self.files = CheckpointFolder(folder)
        pending = {self.key(group) for group in groups}
        self._saved = {} if force else {key: self.files.load(key, log) for key in pending}
        # A trajectory with nothing left to do keeps no checkpoint (killed before its removal).
        for key in {trajectory_key(cell.name, cell.config) for cell in sweep.cells} - pending:
            self.files.remove(key)

    @staticmethod
    def key(group) -> str:
        """The key train_trajectory saves the group's checkpoints under: that of the cell it trains to."""
        end = longest(group)
        return trajectory_key(end.name, end.config)

    def done_epochs(self, group) -> int:
        saved = self._saved.get(self.key(group))
        return 0 if saved is None else min(saved.epoch, longest(group).config.total_epochs)

    def resume(self, group) -> bytes | None:
        """The group's checkpoint as bytes (what a trajectory resumes from), or None."""
        saved = self._saved.get(self.key(group))
        return None if saved is None else saved.to_bytes()

    def save(self, key: str, data: bytes):
        self.files.save(key, data)

    def finished(self, group):
        self._saved.pop(self.key(group), None)
        self.files.remove(self.key(group))


class SweepListener:
    """Where a trajectory's events go, in this process (also for events a Dask worker sent): cells
    and checkpoints to the sweep's files, epochs and notes to the progress bar; with
    ``event_logs``, epochs to the live TensorBoard log of the cell they train to, and each cell's
    complete log beside its record (event_logs.py)."""

    def __init__(self, folder: Path, bar, saved: SweepCheckpoints, event_logs=True):
        self.folder, self.bar, self.saved, self.event_logs = folder, bar, saved, event_logs
        self.written = set()  # cell keys written by this sweep
        self.live = {}  # cell key -> its LiveLog

    def epoch(self, cell, row):
        self.bar.epoch_done(row)
        if self.event_logs and cell.key not in self.written:
            if cell.key not in self.live:
                self.live[cell.key] = LiveLog(self.log_folder(cell), cell.config)
            self.live[cell.key].epoch(row)

    def log_folder(self, cell) -> Path:
        return self.log_folder_of(self.folder, cell)

    @staticmethod
    def log_folder_of(folder: Path, cell) -> Path:
        return folder / LOGS_FOLDER / cell.key

    def cell(self, cell, record):
        """Write a cell's record once (a trajectory run again after its worker died repeats it)."""
        if cell.key not in self.written:
            store.write_cell(self.folder, cell.key, record)
            self.written.add(cell.key)
            if self.event_logs:
                self.live.pop(cell.key, None)
                write_log(self.log_folder(cell), cell.config, record["history"],
                          hyperparameters(cell.config, record), store.created_seconds(record))
            self.bar.cell_done(cell, record)

    def checkpoint(self, key, data):
        self.saved.save(key, data)

    def note(self, text):
        self.bar.note(text)

    def failed(self, group, message, trace) -> dict:
        """Record the failure of the cells of ``group`` not written yet; return them."""
        cells = [cell for cell in group if cell.key not in self.written]
        for cell in cells:
            store.write_failure(self.folder, cell.key, {"key": cell.key, "config": to_dict(cell.config),
                                                        "error": message, "traceback": trace})
            self.bar.cell_failed(cell, message)
        return {cell.key: message for cell in cells}


def _run_trajectory(group, data, listener: SweepListener, saved: SweepCheckpoints) -> dict:
    """Train one trajectory in this process, publishing each cell as it passes; return failures."""
    interrupts.check()
    listener.bar.start_trajectory(longest(group), saved.done_epochs(group))
    try:
        dataset, arrays = data.get(group[0].config)
        train_trajectory(group, dataset, arrays, listener, saved.resume(group))
    except Exception as error:  # one failed cell must not stop the sweep
        saved.finished(group)
        return listener.failed(group, failure_message(error), traceback.format_exception(error))
    saved.finished(group)
    return {}
