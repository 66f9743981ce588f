"""Progress of a sweep: a bar over all the work (with ETA) and one over the current trajectory;
of a search: a bar over its trials and one over the current training.

The work is counted in epochs, not cells, because cells sharing a trajectory
finish in bursts; an ETA over epochs stays honest. Without bars (``--quiet``)
each finished or failed cell is still logged as one line.
"""

from __future__ import annotations

from mnist_lab.core.describe import describe_cell, trial_value
from mnist_lab.core.output import Output


class SweepProgress:
    def __init__(self, total_cells: int, done_cells: int, total_epochs: int, output: Output):
        self.total_cells, self.done_cells, self.total_epochs = total_cells, done_cells, total_epochs
        self.enabled, self.output = output.progress, output
        self._work = self._trajectory = None

    def __enter__(self):
        if self.enabled:
            from tqdm import tqdm

            self._tqdm = tqdm
            self._work = tqdm(total=self.total_epochs, unit="epoch", desc=self._cells_label(),
                              dynamic_ncols=True, position=0)
        return self

    def __exit__(self, *exc):
        for bar in (self._trajectory, self._work):
            if bar is not None:
                bar.close()

    def start_trajectory(self, longest_cell, done_epochs=0):
        """A bar for the trajectory training to ``longest_cell``; ``done_epochs`` were resumed."""
        if self.enabled:
            if self._trajectory is not None:
                self._trajectory.close()
            total = longest_cell.config.total_epochs
            self._trajectory = self._tqdm(total=total, initial=min(done_epochs, total),
                                          unit="epoch", leave=False, position=1,
                                          desc=describe_cell(longest_cell).rsplit(" epochs", 1)[0],
                                          dynamic_ncols=True)

    def epoch_done(self, row: dict):
        """One epoch of the current trajectory (or, on Dask workers, of any trajectory: then
        there is no per-trajectory bar, only the work bar over all of them)."""
        if self.enabled:
            if self._trajectory is not None:
                self._trajectory.set_postfix(test_accuracy=f"{row['test_accuracy']:.4f}")
                self._trajectory.update(1)
            self._work.update(1)

    def cell_done(self, cell, record: dict):
        self.done_cells += 1
        self._line(f"done   {describe_cell(cell)}: test accuracy {record['test_accuracy']:.2%}, "
                   f"loss {record['test_loss']:.4f}")

    def cell_failed(self, cell, message: str):
        self._line(f"FAILED {describe_cell(cell)}: {message}")

    def note(self, text: str):
        self._line(text, self.output.log)

    def notice(self, text: str):
        """What the user must read even with --quiet: a training's word of itself (a checkpoint it
        cannot continue, so it starts over)."""
        self._line(text, self.output.notice)

    def _cells_label(self) -> str:
        return f"sweep {self.done_cells}/{self.total_cells} cells"

    def _line(self, text: str, log=None):
        if self.enabled:
            self._work.set_description(self._cells_label())
            self._tqdm.write(text)
        else:
            (log or self.output.log)(text)


class SearchProgress(SweepProgress):
    """A search's bars: over its trials (``trials`` in all, ``done`` of them finished before; the
    ETA from the trials' own pace, or the time limit alone) and over the current training."""

    def __init__(self, trials, done: int, minutes, output: Output):
        super().__init__(trials or 0, done, 0, output)
        self.trials, self.minutes = trials, minutes

    def __enter__(self):
        if self.enabled:
            from tqdm import tqdm

            self._tqdm = tqdm
            self._work = tqdm(total=self.trials, initial=self.done_cells, unit="trial", desc=self._cells_label(),
                              dynamic_ncols=True, position=0)
        return self

    def start_trial(self, number: int, values: dict):
        self._line(f"trial {number}: " + ", ".join(f"{field} {trial_value(value)}" for field, value in values.items()))

    def epoch_done(self, row: dict):
        if self.enabled and self._trajectory is not None:
            self._trajectory.set_postfix(validation_accuracy=f"{row['validation_accuracy']:.4f}")
            self._trajectory.update(1)

    def cell_done(self, cell, record: dict):
        self._line(f"done   {describe_cell(cell)}: validation accuracy {record['validation_accuracy']:.2%}, "
                   f"loss {record['validation_loss']:.4f}")

    def trial_finished(self, study, trial):
        """Optuna's callback after each trial: count it, and say the best so far."""
        from optuna.trial import TrialState

        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.done_cells += 1
            if self.enabled:
                self._work.update(1)
        if trial.state == TrialState.COMPLETE:
            self._line(f"trial {trial.number}: {trial.value:.4f} (best so far: trial {study.best_trial.number}, "
                       f"{study.best_value:.4f})")

    def _cells_label(self) -> str:
        total = f"/{self.trials}" if self.trials else ""
        limit = f", at most {self.minutes:g} min" if self.minutes else ""
        return f"search {self.done_cells}{total} trials{limit}"
