"""One trajectory: the cells of a sweep that differ only in epochs, trained as one run.

The same code trains a trajectory in the sweep's own process and on a Dask
worker (executors.py); it reports what happens to a listener, and the listener
decides where it goes (the sweep's files here, the client's queue on a worker):

  epoch(cell, row)         an epoch ended on the way to ``cell`` (progress bar, live log)
  cell(cell, record)       the training passed a cell's epoch count: its result record
  checkpoint(key, data)    the trajectory's checkpoint after that epoch, as bytes
  note(text)               something the user should read
"""

from __future__ import annotations

from mnist_lab.core.data import prepare
from mnist_lab.core.identity import load_checked, trajectory_key


class Stopped(Exception):
    """Raised by a listener to end a training early on purpose (a search's pruned trial): not a failure."""


def train_trajectory(group, dataset, arrays, listener, resume=None):
    """Train one trajectory to its longest epoch count, from ``resume`` (its checkpoint) when given:
    cells it already passed get their records from the checkpoint's history, the others as
    training passes them. (The cells of a continued model share its earlier stages: a cell is
    passed after those stages' epochs and its own.)"""
    from mnist_lab.results.checkpoints import Checkpoint
    from mnist_lab.training.fit import fit_model, new_model
    from mnist_lab.training.resume import checkpoint, usable_checkpoint

    by_epochs = {cell.config.total_epochs: cell for cell in group}
    longest = by_epochs[max(by_epochs)]
    key = trajectory_key(longest.name, longest.config, dataset.digest)
    model = new_model(longest.config)
    resume = usable_checkpoint(None if resume is None else Checkpoint.from_bytes(resume, key), model, listener.note)
    done = 0 if resume is None else resume.epoch
    for total, cell in by_epochs.items():
        if total <= done:
            listener.cell(cell, cell_record(cell, dataset, resume.history[:total], model))
    if longest.config.total_epochs <= done:
        return

    def epoch_done(history):
        listener.epoch(longest, history[-1])
        cell = by_epochs.get(len(history))
        if cell is not None:
            listener.cell(cell, cell_record(cell, dataset, history, model))
        listener.checkpoint(key, checkpoint(model, key, history).to_bytes())

    fit_model(model, longest.config, arrays, on_epoch=epoch_done, resume=resume)


def cell_record(cell, dataset, history, model) -> dict:
    """A cell's result file: the shared result numbers, its resolved config and history."""
    from mnist_lab.training.records import last_stage, result_record

    return {"key": cell.key, "name": cell.name, **result_record(cell.config, dataset, history, model),
            "history": last_stage(cell.config, history)}


def failure_message(error) -> str:
    return str(error) or type(error).__name__


class DataCache:
    """Each dataset loaded once, each model input layout prepared once, per process."""

    def __init__(self):
        self._datasets, self._arrays = {}, {}

    def dataset(self, data_config):
        source = (data_config.source, data_config.path)
        if source not in self._datasets:
            self._datasets[source] = load_checked(data_config)
        return self._datasets[source]

    def arrays(self, dataset, config):
        data = config.data
        layout = (dataset.digest, data.train_limit, data.test_limit, data.scaled, data.validation,
                  config.model.type == "cnn")
        if layout not in self._arrays:
            self._arrays[layout] = prepare(dataset, config.model.type, data.train_limit, data.test_limit, data.scaled,
                                           data.validation)
        return self._arrays[layout]

    def get(self, config):
        dataset = self.dataset(config.data)
        return dataset, self.arrays(dataset, config)
