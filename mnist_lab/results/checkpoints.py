"""Resumable training: a training's state at the end of an epoch, and the files that keep it.

A checkpoint holds the model's weights, the optimizer's state and the history
so far. The data order needs nothing stored: epoch e's order follows from
(seed, e) alone (data.epoch_order). So a training resumed from its checkpoint
makes the same numbers, to the last bit, as one never stopped — on the same
versions and the same number of compute threads, which a checkpoint records
and must match to be used.

Checkpoints travel as bytes (an .npz archive): a Dask worker sends them to
the client, which alone writes files. On disk there is one file per training,
replaced atomically after every epoch and removed when the training ends.
This module is their only reader and writer; no Keras import here.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_lab.core.files import atomic_path, read_bounded
from mnist_lab.core.schema import wrong_fields
from mnist_lab.results.store import HISTORY_KINDS, DamagedResult, warn_damaged
from mnist_lab.core.versions import compared

FORMAT = 1
FOLDER = ".checkpoints"  # hidden: a runs/ or sweep folder lists results, not work in progress
SUFFIX = ".checkpoint.npz"


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A training (named by ``key``) after ``len(history)`` epochs."""

    key: str
    history: list  # one row per finished epoch (store.HISTORY_FIELDS)
    weights: list  # the model's arrays, in the model's own order
    optimizer: list  # the optimizer's variables, in its order (SGD: its step counter, its rate)
    versions: dict  # versions.installed() where it was made
    compute_threads: int

    @property
    def epoch(self) -> int:
        return len(self.history)

    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT, "key": self.key, "history": self.history, "versions": self.versions,
                "compute_threads": self.compute_threads, "weights": len(self.weights),
                "optimizer": len(self.optimizer)}
        arrays = {f"weight_{index}": array for index, array in enumerate(self.weights)}
        arrays.update({f"optimizer_{index}": array for index, array in enumerate(self.optimizer)})
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> "Checkpoint":
        """The checkpoint ``data`` holds; DamagedResult naming ``where`` when it is not a valid one."""
        if not data.startswith(b"PK"):  # np.load would try to read anything else as a pickle
            raise DamagedResult(f"{where}: not a readable checkpoint (not an .npz archive)")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                weights = [archive[f"weight_{index}"] for index in range(meta["weights"])]
                optimizer = [archive[f"optimizer_{index}"] for index in range(meta["optimizer"])]
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as error:
            raise DamagedResult(f"{where}: not a readable checkpoint ({type(error).__name__}: {error})") from None
        checkpoint = cls(meta.get("key"), meta.get("history"), weights, optimizer, meta.get("versions"),
                         meta.get("compute_threads"))
        if meta.get("format") != FORMAT or not checkpoint._valid():
            raise DamagedResult(f"{where}: not a checkpoint of format {FORMAT} with a valid history and finite weights")
        return checkpoint

    def _valid(self) -> bool:
        history_valid = isinstance(self.history, list) and self.history and all(
            not wrong_fields(row, HISTORY_KINDS) and row["epoch"] == number
            for number, row in enumerate(self.history, start=1))
        return (not wrong_fields(vars(self), {"key": str, "versions": dict, "compute_threads": int})
                and bool(history_valid)
                and all(np.isfinite(array).all() for array in [*self.weights, *self.optimizer]
                        if np.issubdtype(array.dtype, np.number)))

    def fits(self, weights: list) -> bool:
        """Whether its weights have the shapes of ``weights`` (a fresh model's of its config)."""
        return [np.shape(array) for array in self.weights] == [np.shape(array) for array in weights]

    def mismatch(self, versions: dict, compute_threads: int) -> str | None:
        """Why this checkpoint cannot continue here (other versions or thread count: the resumed
        epochs would not be the ones its training would have made), or None."""
        changed = compared(self.versions, versions)
        if compute_threads != self.compute_threads:
            changed.append(f"compute threads {self.compute_threads} → {compute_threads}")
        return ", ".join(changed) or None


class CheckpointFolder:
    """The checkpoint files of the trainings of one folder (a sweep's, or runs/), in its FOLDER."""

    def __init__(self, owner: Path):
        self.folder = Path(owner) / FOLDER

    def path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"

    def keys(self) -> list[str]:
        """The keys of the trainings that have a checkpoint file here, sorted."""
        return sorted(path.name[:-len(SUFFIX)] for path in self.folder.glob(f"*{SUFFIX}"))

    def load(self, key: str, log=print) -> Checkpoint | None:
        """Training ``key``'s checkpoint when a valid one exists (a damaged one is warned of and
        removed: its training starts over)."""
        path = self.path(key)
        for leftover in self.folder.glob(f".{path.name}.*.tmp"):  # a save cut short by a kill
            leftover.unlink(missing_ok=True)
        try:
            data = read_bounded(path)
        except FileNotFoundError:
            return None
        except OSError as error:  # a folder or a FIFO in its place would block every save: it goes
            warn_damaged([f"{path}: unreadable ({error.strerror or error}); removed"], log)
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
            return None
        try:
            checkpoint = Checkpoint.from_bytes(data, str(path))
            if checkpoint.key != key:
                raise DamagedResult(f"{path}: holds the training {checkpoint.key}, not {key}")
        except DamagedResult as error:
            warn_damaged([str(error)], log)
            path.unlink(missing_ok=True)
            return None
        return checkpoint

    def save(self, key: str, data: bytes):
        """Replace training ``key``'s checkpoint with ``data``, atomically."""
        with atomic_path(self.path(key)) as temporary:
            temporary.write_bytes(data)

    def remove(self, key: str):
        """Training ``key``'s checkpoint; the folder too once it is empty."""
        self.path(key).unlink(missing_ok=True)
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
