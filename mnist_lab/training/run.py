"""One config trained and published as a run folder (the work of `mnist-lab train`).

A config whose complete run exists is answered from the store alone, without
importing Keras or TensorFlow.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.results import store
from mnist_lab.results.checkpoints import CheckpointFolder
from mnist_lab.core.describe import describe_split
from mnist_lab.core.data import downloads_with_keras, prepare
from mnist_lab.results.event_logs import LiveLog, hyperparameters, log_folder, write_log
from mnist_lab.core.identity import load_checked
from mnist_lab.core.output import Output


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    metrics: dict
    trained: bool  # False when a complete run of the same experiment was kept


def existing_run(config, name: str, results_dir, log=print):
    """The metrics of this experiment's complete run, or None (a damaged run is warned of)."""
    final = store.run_dir(results_dir, name, config)
    if not final.exists():
        return None
    try:
        return store.read_run(final)
    except store.DamagedResult as error:
        store.warn_damaged([str(error)], log)
        return None


def train(config, name: str, results_dir="results", *, force=False, output=Output(), dataset=None,
          event_logs=True) -> TrainResult:
    """Train ``config`` unless a complete run of its experiment exists; return its run folder.
    ``output.notice`` names a damaged run that is trained again, and a training resumed from its
    checkpoint (after its last finished epoch, unless ``force``). With ``event_logs``,
    TensorBoard follows the training in its log (event_logs.log_folder), made complete when the
    run is published."""
    final = store.run_dir(results_dir, name, config)
    saved = CheckpointFolder(final.parent)
    existing = None if force else existing_run(config, name, results_dir, output.notice)
    log, notice = output.log, output.notice
    if existing is not None:
        saved.remove(final.name)  # left by a kill between publishing the run and removing it
        return TrainResult(final, existing, trained=False)
    with ThreadPoolExecutor(max_workers=1) as reader:
        # The data is read while Keras and matplotlib are imported (seconds, only when there is
        # training to do): reading the shipped archive is mostly decompression, outside the GIL.
        # Not Keras's download: it imports Keras, which two threads must not do at once.
        in_background = dataset is None and not downloads_with_keras(config.data)
        reading = reader.submit(load_checked, config.data) if in_background else None
        from mnist_lab.results.run_folder import write_run
        from mnist_lab.training import fit, records, resume

        started = time.perf_counter()  # the record's wall_seconds: from here (Keras imported) on
        if dataset is None:
            dataset = reading.result() if reading is not None else load_checked(config.data)
    arrays = prepare(dataset, config.model.type, config.data.train_limit, config.data.test_limit,
                     config.data.scaled, config.data.validation)
    log(f"Data: {dataset.describe()}{describe_split(config.data, len(arrays.y_train), len(arrays.y_test))}")
    model = fit.new_model(config)
    summary = fit.model_summary(model)
    log(summary)
    saved_state = None if force else resume.usable_checkpoint(saved.load(final.name, notice), model, notice)
    if saved_state is not None:
        notice(f"Resuming after epoch {saved_state.epoch} of {config.total_epochs} "
               f"(checkpoint {saved.path(final.name)})")

    logs = run_log_folder(results_dir, name, config)
    live = LiveLog(logs, config) if event_logs else None

    def save_checkpoint(history):
        if live is not None:
            live.epoch(history[-1])
        saved.save(final.name, resume.checkpoint(model, final.name, history).to_bytes())

    try:
        trajectory = fit.fit_model(model, config, arrays, verbose=fit.verbosity(output.progress), resume=saved_state,
                                   on_epoch=save_checkpoint)
    except fit.Diverged:
        saved.remove(final.name)  # it would only diverge again: its checkpoint and live log go
        if live is not None:
            live.discard()
        raise
    predictions = trajectory.test_probabilities.argmax(axis=1)
    confusion = records.confusion_counts(arrays.test_labels, predictions)
    metrics = records.run_metrics(config, dataset, trajectory, confusion, wall_seconds=time.perf_counter() - started)
    with store.staging(final) as staged:
        write_run(staged, name, config, model, summary, trajectory.history, metrics)
        # A damaged run at ``final`` is replaced too; a good one published meanwhile by a
        # concurrent train of the same experiment is kept.
        if event_logs:  # complete before the run appears: a kill between them leaves the log whole
            write_log(logs, config, trajectory.history, hyperparameters(config, metrics),
                      store.created_seconds(metrics))
        trained = store.publish(staged, final, replace=force or _damaged(final))
    saved.remove(final.name)
    return TrainResult(final, metrics if trained else store.read_run(final), trained)


def run_log_folder(results_dir, name: str, config) -> Path:
    """The TensorBoard log of the train run of ``config`` labelled ``name``."""
    return log_folder(results_dir, store.RUNS_FOLDER, name, config, store.run_dir(results_dir, name, config).name)


def _damaged(run: Path) -> bool:
    try:
        store.read_run(run)
    except store.DamagedResult:
        return run.exists()
    return False
