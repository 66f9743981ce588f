"""Training a sweep's pending cells: each trajectory once, in this process or on Dask workers,
each cell's record written as the training passes its epoch count (core/sweep_plan.py says which
cells share a trajectory). A cell is done when its file exists, so a killed sweep resumes.
"""

from __future__ import annotations

import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.core import interrupts
from mnist_lab.core.config import to_dict
from mnist_lab.core.identity import key_hash, trajectory_key
from mnist_lab.core.output import Output
from mnist_lab.core.sweep_plan import Sweep, longest, pending_cells, trajectories
from mnist_lab.results import store
from mnist_lab.results.checkpoints import CheckpointFolder
from mnist_lab.results.event_logs import LiveLog, hyperparameters, log_folder, write_log
from mnist_lab.training.trajectory import DataCache, Stopped, failure_message, train_trajectory


@dataclass(frozen=True)
class SweepOutcome:
    folder: Path
    skipped: int
    trained: int
    failures: dict  # cell key -> error message


def run_sweep(sweep: Sweep, results_dir="results", *, force=False, output=Output(), cluster=None,
              event_logs=True, write_tables=None) -> SweepOutcome:
    """Train every pending cell, one trajectory per group; then, still holding the folder,
    ``write_tables(folder, experiments)`` (the sweep's tables and figures: analysis/sweep_tables.py).

    ``cluster`` (an executors.ClusterSpec) runs the trajectories on Dask workers; this process
    alone holds the lock and writes the cell files, as each cell's result arrives.
    """
    log = output.log
    from mnist_lab.training.progress import SweepProgress

    folder = store.sweep_folder(results_dir, sweep.name)
    with store.sweep_lock(folder):
        store.remove_temporaries(folder)
        cells = store.rekey_cells(folder, store.read_cells(folder, output.notice))  # damaged: read even with -q
        todo = pending_cells(sweep, cells.records, force)
        for cell in todo if event_logs else ():  # a file in a log's place would fail its trajectory on every run
            store.check_writable(SweepListener.log_folder_of(folder, cell), "--results")
        skipped = len(sweep.cells) - len(todo)
        if skipped:
            log(f"{skipped} of {len(sweep.cells)} cells already done, skipped (--force reruns them)")
            by_experiment = {key_hash(key): record for key, record in cells.records.items()}
            _note_versions([by_experiment[cell.experiment] for cell in sweep.cells if cell not in todo], log)
        groups = trajectories(todo)
        saved = SweepCheckpoints(folder, sweep, groups, force, output.notice)
        done_epochs = [saved.done_epochs(group) for group in groups]
        resumed = [epochs for epochs in done_epochs if epochs]
        if resumed:
            log(f"Resuming {len(resumed)} {'trajectory' if len(resumed) == 1 else 'trajectories'} from "
                f"checkpoints ({sum(resumed)} epochs already done)")
        total_epochs = sum(longest(group).config.total_epochs for group in groups) - sum(done_epochs)
        with ExitStack() as stack:
            if cluster is not None and groups:  # connected before the bar: connecting says so itself
                from mnist_lab.training.executors import DaskClient, run_on_dask

                dask_client = stack.enter_context(DaskClient(cluster, log))
            bar = stack.enter_context(SweepProgress(len(sweep.cells), skipped, total_epochs, output))
            listener = SweepListener(folder, bar, saved, event_logs)
            failures = {}
            if cluster is None:
                data = DataCache()
                for group in groups:
                    failures.update(run_trajectory(group, data, listener, saved))
            elif groups:
                failures = run_on_dask(dask_client, groups, DataCache(), listener, saved, log)
        if write_tables is not None:  # under the lock: the tables of exactly these cells
            write_tables(folder, {cell.experiment for cell in sweep.cells})
    return SweepOutcome(folder, skipped, len(todo) - len(failures), failures)


def _note_versions(records, log):
    """Say which kept cells were made under other versions than the installed ones (they are kept:
    the experiment is the same; see versions.py)."""
    from mnist_lab.core.backends import selected_backend
    from mnist_lab.core.versions import differences

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
        return len(self.done_history(group))

    def done_history(self, group) -> list:
        """The epochs of the group's checkpoint (those a resumed training will not train again)."""
        saved = self._saved.get(self.key(group))
        return [] if saved is None else saved.history[:longest(group).config.total_epochs]

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
    complete log in the TensorBoard tree (event_logs.py)."""

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
        """The cell's log in the TensorBoard tree (results/tensorboard/sweeps/<sweep>/<name>, or
        searches/<search>/<name> for a search's trial)."""
        return log_folder(folder.parent.parent, f"{folder.parent.name}/{folder.name}", cell.name, cell.config,
                          cell.key)

    def cell(self, cell, record):
        """Write a cell's record once (a trajectory run again after its worker died repeats it)."""
        if cell.key not in self.written:
            if self.event_logs:  # complete before the cell is: a kill between them leaves it whole
                self.live.pop(cell.key, None)
                write_log(self.log_folder(cell), cell.config, record["history"],
                          hyperparameters(cell.config, record), store.created_seconds(record))
            store.write_cell(self.folder, cell.key, record)
            self.written.add(cell.key)
            self.announce(cell, record)

    def announce(self, cell, record):
        self.bar.cell_done(cell, record)

    def checkpoint(self, key, data):
        self.saved.save(key, data)

    def note(self, text):
        """A training's word of itself (train_trajectory: a checkpoint it starts over from)."""
        self.bar.notice(text)

    def failed(self, group, message, trace) -> dict:
        """Record the failure of the cells of ``group`` not written yet; return them."""
        cells = [cell for cell in group if cell.key not in self.written]
        for cell in cells:
            store.write_failure(self.folder, cell.key, {"key": cell.key, "config": to_dict(cell.config),
                                                        "error": message, "traceback": trace})
            self.bar.cell_failed(cell, message)
        return {cell.key: message for cell in cells}


def run_trajectory(group, data, listener: SweepListener, saved: SweepCheckpoints) -> dict:
    """Train one trajectory in this process, publishing each cell as it passes; return failures.
    A listener that stops the training (Stopped: a pruned trial) ends it without a failure; its
    caller removes the checkpoint (as it must after run_on_dask too)."""
    interrupts.check()
    listener.bar.start_trajectory(longest(group), saved.done_epochs(group))
    try:
        dataset, arrays = data.get(group[0].config)
        train_trajectory(group, dataset, arrays, listener, saved.resume(group))
    except Stopped:
        raise
    except Exception as error:  # one failed cell must not stop the sweep
        saved.finished(group)
        return listener.failed(group, failure_message(error), traceback.format_exception(error))
    saved.finished(group)
    return {}
