"""TensorBoard event files for runs and sweep cells, written with TensorBoard's own record format
and protos (no TensorFlow import, so both engines and every Keras backend log the same way).

The logs are a view of the results, in their own tree, ``<results>/tensorboard`` (open it with
`tensorboard --logdir results/tensorboard`): ``runs/<name>`` per train run and
``sweeps/<sweep>/<name>/`` per sweep cell, where the name is what a person recognises (the
label, engine, changes, batch, epochs, step, seed, data slices) followed by the experiment's hash, so each
result is one TensorBoard run, and one experiment one name. A log holds per epoch the scalars
``accuracy/train``, ``accuracy/test``, ``loss/train``, ``loss/test``, ``learning_rate`` and
``seconds`` (Keras's callback writes ``train/`` and ``validation/`` runs; here the evaluation set
is MNIST's test set, named so, and one run per result keeps the run list one line per result),
and, once the training is complete, the HParams plugin's session records: its hyper-parameters,
so a whole grid can be sorted and compared in the HParams dashboard by the final test metrics.

During training, ``LiveLog`` appends each epoch as it ends; when the result is complete,
``write_log`` rewrites the folder from the result's history, so a finished log holds each
epoch once even when the training was interrupted and resumed in between.
"""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

from mnist_lab.core.describe import (describe_experiment, describe_limits, describe_schedule, describe_stages,
                                     model_changes)
from mnist_lab.core.errors import printable
from mnist_lab.core.files import atomic_path

FOLDER = "tensorboard"  # <results>/tensorboard: runs/<name>, sweeps/<sweep>/<name>, the Projector's files
NAME_LENGTH = 160  # characters of a log's name before its hash, at most NAME_BYTES bytes
NAME_BYTES = 220  # ... as UTF-8: with the hash, within the 255 bytes a file name may have
_FILE_PREFIX = "events.out.tfevents"
_UNSAFE = str.maketrans({"/": "÷", "\\": "_", "<": "_", ">": "_", ":": "_", '"': "_", "|": "_", "?": "_", "*": "_"})


def log_folder(results_dir, place: str, label: str, config, key: str) -> Path:
    """The log folder of experiment ``key`` (``label``-<hash>) trained from ``config``, kept in
    ``place`` ("runs", or "sweeps/<sweep>"): named as a person reads it, then the hash."""
    data = config.data
    limits = describe_limits({"train_limit": data.train_limit, "test_limit": data.test_limit,
                              "validation": data.validation})
    described = " ".join(filter(None, [describe_experiment(label, config),
                                       "" if limits == "all" else f"images {limits}",
                                       "" if data.path is None and data.source == "builtin" else "own data"]))
    # A name is one path component, printable, that every file system takes: control characters
    # escaped, then "/" (as in "lr / (1 + 0.5 t)") and the characters Windows refuses replaced.
    described = printable(described, NAME_LENGTH).translate(_UNSAFE)
    described = described.encode()[:NAME_BYTES].decode(errors="ignore").rstrip(". ")
    return Path(results_dir) / FOLDER / place / f"{described} {key.rsplit('-', 1)[-1]}"


def hyperparameters(config, record) -> dict:
    """What the HParams dashboard compares a result by: its settings and what it ran on."""
    data = record["data"]
    return {"model": config.model.type, "engine": config.engine, "batch_size": config.training.batch_size,
            "epochs": config.training.epochs, "learning_rate": config.training.learning_rate,
            "schedule": describe_schedule(config.training.schedule), "seed": config.seed,
            "setup": model_changes(config) or "the lab's", "continues": describe_stages(config.continues) or "no",
            "data": f"{data.get('source')} {(data.get('digest') or '')[:12]}, {describe_limits(data)}",
            "backend": record["versions"].get("backend", "")}


def _scalars(row: dict, config) -> dict:
    """The scalars of one epoch (a history row of ``config``'s training), by tag."""
    scalars = {"accuracy/train": row["train_accuracy"], "accuracy/test": row["test_accuracy"],
               "loss/train": row["train_loss"], "loss/test": row["test_loss"]}
    if "validation_loss" in row:  # the held-out training images (data.validation)
        scalars.update({"accuracy/validation": row["validation_accuracy"], "loss/validation": row["validation_loss"]})
    return {**scalars, "learning_rate": config.learning_rate_at(row["epoch"] - 1), "seconds": row["train_seconds"]}


def _encode(event) -> bytes:
    """One TFRecord: the event's bytes framed by its length and the masked CRCs TensorBoard checks."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def _event(step=0, summary=None, wall_time=None):
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=step)
    if summary is None:
        event.file_version = "brain.Event:2"
    else:
        event.summary.CopyFrom(summary)
    return event


def _scalar_summary(values: dict):
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
                                      for tag, value in values.items()])


def _hparams_summaries(hparams: dict, started: float, ended: float) -> list:
    """The HParams plugin's session start (the hyper-parameters) and end (success) summaries."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=started)
    for name, value in hparams.items():
        if isinstance(value, str):
            start.hparams[name].string_value = value
        else:
            start.hparams[name].number_value = value
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=ended)
    summaries = []
    for tag, data in ((metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
                      (metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))):
        summaries.append(summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)]))
    return summaries


def _event_file(folder: Path, stamp: float) -> Path:
    return folder / f"{_FILE_PREFIX}.{int(stamp):010d}.mnist-lab"


def write_log(folder: Path, config, history: list, hparams: dict, created: float):
    """A complete log of a finished training from its ``history`` (store.HISTORY_FIELDS rows),
    ``created`` (seconds since the epoch) when it ended, replacing whatever ``folder`` held:
    written whole, then renamed into place."""
    started = created - sum(row["train_seconds"] for row in history)
    shutil.rmtree(folder, ignore_errors=True)
    events = [_event(wall_time=started)]
    elapsed = started
    for row in history:
        elapsed += row["train_seconds"]
        events.append(_event(row["epoch"], _scalar_summary(_scalars(row, config)), elapsed))
    events += [_event(0, summary, stamp) for summary, stamp in
               zip(_hparams_summaries(hparams, started, created), (started, created))]
    target = _event_file(folder, started)

    def write():
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"".join(map(_encode, events)))

    _into_folder(folder, write)


def _into_folder(folder: Path, write, attempts=3):
    """``write()`` into ``folder``, made again when another process writing the same experiment's
    log cleared it meanwhile (two trains of one experiment at once: a live log starting at epoch 1
    or a complete log rewriting the folder); both hold the same numbers, the last complete one stays."""
    for attempt in range(attempts):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return write()
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise


class LiveLog:
    """A training's log while it runs: each epoch's scalars appended as the epoch ends. Starting
    at epoch 1, it first clears what an earlier attempt left; resuming later, it appends."""

    def __init__(self, folder: Path, config):
        self.folder, self.config, self._file, self._stamp = Path(folder), config, None, None

    def epoch(self, row: dict):
        if self._file is None:
            if row["epoch"] == 1:
                shutil.rmtree(self.folder, ignore_errors=True)
            self._stamp = time.time()
            self._file = _event_file(self.folder, self._stamp)
        event = _encode(_event(row["epoch"], _scalar_summary(_scalars(row, self.config))))
        _into_folder(self.folder, lambda: self._append(event))

    def _append(self, event: bytes):
        if not self._file.exists():  # a new log, or one another process cleared
            self._file.write_bytes(_encode(_event(wall_time=self._stamp)))
        with open(self._file, "ab") as stream:
            stream.write(event)

    def discard(self):
        """The log of a training that leaves no result (it diverged): it goes."""
        shutil.rmtree(self.folder, ignore_errors=True)
