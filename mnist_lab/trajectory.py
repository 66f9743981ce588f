"""One trajectory: the cells of a sweep that differ only in epochs, trained as one run.

The same code trains a trajectory in the sweep's own process and on a Dask
worker (executors.py); each cell's record is made here as training passes its
epoch count, and the caller decides where it goes.
"""

from __future__ import annotations

from .data import prepare
from .train import load_checked


def train_trajectory(group, dataset, arrays, on_epoch, on_cell):
    """Train one trajectory to its longest epoch count; ``on_epoch(row)`` after every epoch and
    ``on_cell(cell, record)`` as each cell's epoch count passes. The same path in this
    process and on a Dask worker."""
    from .fit import fit_model, new_model

    by_epochs = {cell.epochs: cell for cell in group}
    longest = by_epochs[max(by_epochs)]
    model = new_model(longest.config)

    def epoch_done(history):
        on_epoch(history[-1])
        cell = by_epochs.get(len(history))
        if cell is not None:
            on_cell(cell, cell_record(cell, dataset, history, model.count_params()))

    fit_model(model, longest.config, arrays, on_epoch=epoch_done)


def cell_record(cell, dataset, history, parameters) -> dict:
    """A cell's result file: the shared result numbers, its resolved config and history."""
    from .fit import result_record

    return {"key": cell.key, "name": cell.name, **result_record(cell.config, dataset, history, parameters),
            "history": history}


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
        layout = (dataset.digest, config.data.train_limit, config.data.test_limit, config.model.type == "cnn")
        if layout not in self._arrays:
            self._arrays[layout] = prepare(dataset, config.model.type, config.data.train_limit,
                                           config.data.test_limit)
        return self._arrays[layout]

    def get(self, config):
        dataset = self.dataset(config.data)
        return dataset, self.arrays(dataset, config)
