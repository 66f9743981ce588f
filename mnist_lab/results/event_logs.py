"""TensorBoard event files for runs and sweep cells, written with TensorBoard's own record format
and protos (no TensorFlow import, so both engines and every Keras backend log the same way).

A log folder holds, as Keras's TensorBoard callback lays them out, ``train/`` and ``test/``
runs with the scalars ``epoch_loss`` and ``epoch_accuracy`` per epoch (``train/`` also
``epoch_learning_rate`` and ``epoch_seconds``), and, once the training is complete, the
HParams plugin's session records in the folder itself: its hyper-parameters, so a whole grid
can be sorted and compared in TensorBoard's HParams dashboard by the final test metrics.

During training, ``LiveLog`` appends each epoch as it ends; when the result is complete,
``write_log`` rewrites the folder from the result's history, so a finished log holds each
epoch once even when the training was interrupted and resumed in between.
"""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

from mnist_lab.core.describe import describe_limits, describe_schedule, describe_stages, model_changes
from mnist_lab.core.files import atomic_path

FOLDER = "tensorboard"  # a run's logs: <run>/tensorboard; a sweep's: <sweep>/tensorboard/<cell key>
SUBRUNS = ("train", "test")
# The HParams dashboard's metrics: (subrun, tag) as the scalars are written.
METRICS = (("test", "epoch_accuracy"), ("test", "epoch_loss"), ("train", "epoch_accuracy"), ("train", "epoch_loss"))
_FILE_PREFIX = "events.out.tfevents"


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
    """The scalars of one epoch (a history row of ``config``'s training), by subrun."""
    learning_rate = config.learning_rate_at(row["epoch"] - 1)
    return {"train": {"epoch_loss": row["train_loss"], "epoch_accuracy": row["train_accuracy"],
                      "epoch_learning_rate": learning_rate, "epoch_seconds": row["train_seconds"]},
            "test": {"epoch_loss": row["test_loss"], "epoch_accuracy": row["test_accuracy"]}}


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


def empty_event_file(path: Path):
    """An event file holding only its version record: what makes TensorBoard treat a folder as a run."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(_encode(_event(wall_time=0.0)))


def write_log(folder: Path, config, history: list, hparams: dict, created: float):
    """A complete log of a finished training from its ``history`` (store.HISTORY_FIELDS rows),
    ``created`` (seconds since the epoch) when it ended, replacing whatever ``folder`` held:
    each file written whole, then renamed into place."""
    started = created - sum(row["train_seconds"] for row in history)
    shutil.rmtree(folder, ignore_errors=True)
    events = {name: [_event(wall_time=started)] for name in SUBRUNS}
    elapsed = started
    for row in history:
        elapsed += row["train_seconds"]
        for name, values in _scalars(row, config).items():
            events[name].append(_event(row["epoch"], _scalar_summary(values), elapsed))
    events[""] = [_event(wall_time=started)] + [_event(0, summary, stamp) for summary, stamp in
                                                zip(_hparams_summaries(hparams, started, created), (started, created))]
    for name, subrun in events.items():
        target = _event_file(folder / name if name else folder, started)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"".join(map(_encode, subrun)))


class LiveLog:
    """A training's log while it runs: each epoch's scalars appended as the epoch ends. Starting
    at epoch 1, it first clears what an earlier attempt left; resuming later, it appends."""

    def __init__(self, folder: Path, config):
        self.folder, self.config, self._files = Path(folder), config, None

    def epoch(self, row: dict):
        if self._files is None:
            if row["epoch"] == 1:
                shutil.rmtree(self.folder, ignore_errors=True)
            stamp = time.time()
            self._files = {}
            for name in SUBRUNS:
                path = _event_file(self.folder / name, stamp)
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    path.write_bytes(_encode(_event(wall_time=stamp)))
                self._files[name] = path
        for name, values in _scalars(row, self.config).items():
            with open(self._files[name], "ab") as stream:
                stream.write(_encode(_event(row["epoch"], _scalar_summary(values))))
