"""The Python API: the command line's operations for a notebook or a script.

    from mnist_lab import api

    result = api.train("cnn", {"training.epochs": 3})
    result.test_accuracy, result.history[-1], result.model()
    table = api.sweep("sweep-notebook").table
    search = api.search("search-mlp", {"data.train_limit": 10000}, trials=10)
    search.best, search.trials
    api.runs(where=["model=cnn"])
    api.predict(result.folder, ["my-seven.png"])

Each function calls what the command of the same name calls (commands/ and the layers under
it), and sets the process up as the command line does (its backend, TensorFlow's oneDNN
kernels), so an experiment has the same identity, results folder, resume and checks whether it
was started here or in a terminal. Where the command line prints ``Error:`` and exits 2, these
raise the same message as an exception (``mnist_lab.core.errors.UsageError``, a ValueError, or
its ``ConfigError``). Progress goes to the notebook's output: Keras's bar for a training,
tqdm's text bar for a sweep (Jupyter draws both in place). In a script, the backends' C++
start-up lines are kept off the terminal as the command line keeps them (backend_logs.py; not
where the user set TF_CPP_MIN_LOG_LEVEL); a Jupyter kernel's own stderr is left alone.
Overrides are a dict of dotted fields, as ``--set`` takes them: ``{"training.epochs": 3,
"model.conv_filters": [16, 32]}``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.core.output import Output, silent


@dataclass(frozen=True)
class Result:
    """A train run: its folder, its record (metrics.json), and whether this call trained it
    (False: a complete run of the same experiment was there and is returned instead)."""

    folder: Path
    metrics: dict
    trained: bool

    @property
    def key(self) -> str:
        return self.folder.name

    @property
    def config(self) -> dict:
        """The resolved config that made it."""
        return self.metrics["config"]

    @property
    def test_accuracy(self) -> float:
        return self.metrics["test_accuracy"]

    @property
    def test_loss(self) -> float:
        return self.metrics["test_loss"]

    @property
    def history(self) -> list[dict]:
        """One dict per epoch: epoch, train and test loss and accuracy, train_seconds."""
        from mnist_lab.results.run_folder import read_history

        return read_history(self.folder)

    def model(self):
        """The trained model (a keras.Model; the NumPy engine's own model for its runs)."""
        from mnist_lab.results.store import read_run
        from mnist_lab.training.saved_models import load_run_model

        return load_run_model(Path(read_run(self.folder)["model_file"]))


@dataclass(frozen=True)
class SweepResult:
    """A sweep's folder, what this call did, and its table (table.csv: one row per cell)."""

    folder: Path
    trained: int
    skipped: int
    failures: dict  # cell key -> message

    @property
    def table(self) -> list[dict]:
        with open(self.folder / "table.csv", newline="") as stream:
            return list(csv.DictReader(stream))


@dataclass(frozen=True)
class SearchResult:
    """A search's folder, its Optuna study, what this call ran, and its trials (trials.csv)."""

    folder: Path
    study: object  # optuna.Study: study.best_trial, study.trials_dataframe(), Optuna's plots
    ran: int
    failed: int

    @property
    def trials(self) -> list[dict]:
        with open(self.folder / "trials.csv", newline="") as stream:
            return list(csv.DictReader(stream))

    @property
    def best(self) -> dict | None:
        """The best trial: its number, fields, validation numbers and (not used in the choice)
        test numbers; None before any trial is complete."""
        from mnist_lab.analysis.search_tables import best_trial

        trial = best_trial(self.study)
        return None if trial is None else {"number": trial.number, "params": trial.params, "value": trial.value,
                                           **{name: trial.user_attrs[name] for name in (
                                               "validation_accuracy", "validation_loss", "test_accuracy",
                                               "test_loss")}}


def train(config, overrides: dict | None = None, *, data=None, results="results", force=False,
          progress=True, tensorboard=True) -> Result:
    """Train ``config`` (a YAML file or a built-in name: "logreg", "mlp", "cnn", ...) with
    ``overrides``, unless a complete run of the same experiment exists; resumes an interrupted
    training from its checkpoint. ``data``: an .npz or IDX folder instead of the shipped MNIST."""
    from mnist_lab.commands.train import prepared
    from mnist_lab.training.run import train as train_config

    _set_up()
    resolved, name, _ = prepared(str(config), _settings(overrides), data, results, tensorboard)
    outcome = train_config(resolved, name, results, force=force, event_logs=tensorboard,
                           output=Output(log=print if progress else silent, warn=print, progress=progress))
    return Result(outcome.run_dir, outcome.metrics, outcome.trained)


def sweep(sweep_file=None, overrides: dict | None = None, *, only=None, data=None, results="results", force=False,
          workers=None, scheduler=None, progress=True, tensorboard=True) -> SweepResult:
    """Train every cell of ``sweep_file`` (a file, a built-in name such as "sweep-cnn", or the
    lab's sweep when None), keeping finished cells; ``only``: model types ("logreg", ...);
    ``workers`` or ``scheduler``: on a local or running Dask cluster."""
    from mnist_lab.commands.sweep import prepared, swept
    from mnist_lab.training.executors import cluster_for

    _set_up()
    cluster = cluster_for(workers, scheduler)
    only = ",".join(only) if isinstance(only, (list, tuple)) else only
    plan, _ = prepared(None if sweep_file is None else str(sweep_file), _settings(overrides), data, results, only)
    outcome = swept(plan, results, force, Output(log=print if progress else silent, warn=print, progress=progress),
                    cluster, tensorboard)
    return SweepResult(outcome.folder, outcome.trained, outcome.skipped, outcome.failures)


def search(search_file, overrides: dict | None = None, *, trials=None, minutes=None, data=None, results="results",
           storage=None, workers=None, scheduler=None, progress=True, tensorboard=True) -> SearchResult:
    """Search the space of ``search_file`` (a file or a built-in name such as "search-mlp") with
    Optuna on its validation split, adding trials to its study until it holds ``trials``
    finished ones (default: the file's; those passed on a longer trial's way are free); a killed
    search resumes. ``storage``: an Optuna storage URL instead of SQLite in the search's folder;
    ``workers`` or ``scheduler``: trials trained at once on a local or running Dask cluster."""
    from mnist_lab.commands.search import prepared, searched
    from mnist_lab.training.executors import cluster_for

    _set_up()
    cluster = cluster_for(workers, scheduler)
    plan, _ = prepared(str(search_file), _settings(overrides), data, results, trials, minutes)
    outcome = searched(plan, results, storage, Output(log=print if progress else silent, warn=print,
                                                      progress=progress), tensorboard, cluster)
    return SearchResult(outcome.folder, outcome.study, outcome.ran, outcome.failed)


def runs(results="results", where=(), sort=None) -> list[dict]:
    """One dict per run and sweep cell under ``results``, as `mnist-lab runs` lists them;
    ``where``: "FIELD=VALUE" conditions, ``sort``: a field ("-FIELD" descending)."""
    from mnist_lab.results.catalog import rows, select

    return select(rows(results), [where] if isinstance(where, str) else list(where), sort)


def predict(run, images, *, invert=None, threshold=None, results="results"):
    """What ``run``'s model (a run folder, its key or a Result) reads in each image file: a list
    of answers with ``digits`` (likeliest first, with probabilities), ``seen`` (the 28 x 28 image
    it classified) and ``doubts``; ``invert``: True for dark ink on light paper, False for light
    on dark, None to tell from each image."""
    from mnist_lab.analysis.predict import Classifier, answers, checked_threshold
    from mnist_lab.commands.predict import resolve_run

    _set_up()
    images = [images] if isinstance(images, (str, Path)) else list(images)  # one path is one image
    checked_threshold(threshold, "threshold")
    folder = run.folder if isinstance(run, Result) else resolve_run(str(run), results)
    classifier = Classifier.of_run(folder)
    return answers(classifier, [str(image) for image in images], invert, threshold) if images else []


def _set_up():
    """This process set up as the command line sets its own up (backends.use_backend: the backend,
    and TensorFlow's oneDNN kernels on, so that a result made here ran the kernels a terminal's
    did), on the backend Keras already runs on where it does; and the command line's filter of
    the backends' C++ start-up lines, in a script whose stderr is the process's file descriptor 2
    (in Jupyter it is the kernel's stream: left alone)."""
    import sys

    from mnist_lab.core import backend_logs
    from mnist_lab.core.backends import use_backend

    use_backend(sys.modules["keras"].backend.backend() if "keras" in sys.modules else None)
    if isinstance(sys.stderr, io.TextIOWrapper) and _descriptor(sys.stderr) == 2:
        backend_logs.quiet([])


def _descriptor(stream):
    try:
        return stream.fileno()
    except (OSError, ValueError):
        return None


def _settings(overrides) -> list[str]:
    """Overrides as ``--set`` takes them: a dict's values in JSON, which YAML reads back, or
    "FIELD=VALUE" strings as typed on the command line."""
    from mnist_lab.core.errors import UsageError

    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{field}={json.dumps(value)}" for field, value in overrides.items()]
    if isinstance(overrides, (list, tuple)) and all(isinstance(item, str) for item in overrides):
        return list(overrides)
    raise UsageError(f"overrides: expected a dict of field: value (or a list of \"field=value\" strings), got "
                     f"{type(overrides).__name__}")
