"""The results store: its layout (every folder name), run folders, sweep cell files, failure
records and the sweep lock.

Every record is read and validated here, and a damaged one (empty, truncated,
malformed, of the wrong shape) is named by file and treated as not done; cells
and failures are written here, a run folder's files by run_folder.py into a
staging folder of this module's.

Run folders are built under a hidden staging name and renamed when complete,
so a folder under ``runs/`` whose name does not start with a dot is complete.
A staging folder holds a lock for as long as its process lives; clean-up
removes only folders whose lock it can take, so a live process's staging
folder is never removed, on this host or another one sharing the folder.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.core.config import from_dict
from mnist_lab.core.data import VALIDATION_FIELDS
from mnist_lab.core.errors import ConfigError, UsageError, printable
from mnist_lab.core.files import Lock, atomic_write_text, lock_holder, read_bounded
from mnist_lab.core.schema import NUMBER, all_of, is_finite, is_of, wrong_fields
from mnist_lab.core.identity import experiment_key, identity_hash, key_hash, record_experiment

RUNS_FOLDER = "runs"
SWEEPS_FOLDER = "sweeps"
SEARCHES_FOLDER = "searches"  # a search's study, trial cells, pruned trials and tables (DIR/searches/<name>)
PRUNED_FOLDER = "pruned"  # a search's pruned trials: their history up to where they were stopped
RUNNING_FOLDER = ".running"  # a search's lock per trial running now in a process on this machine
METRICS_FILE = "metrics.json"
CELLS_FOLDER = "cells"
FAILED_FOLDER = "failed"
FIGURES_FOLDER = "figures"  # a sweep's figures (<sweep>/figures), and the data's (DIR/figures)
REPORT_FIGURES_FOLDER = "report"  # REPORT.md's figures (DIR/report)
EMBEDDINGS_FOLDER = "embeddings"  # visualize's maps and tables (DIR/embeddings)
EMBEDDINGS_CACHE_FOLDER = "cache"  # and its cache of computed maps (DIR/embeddings/cache)
STAGING_LOCK = ".owner"
MODEL_FILE = {"keras": "model.keras", "numpy": "model.npz"}  # a run's model, by engine
MODEL_FILES = tuple(MODEL_FILE.values())
_LIST, _MAPPING = list, dict
# Every result record, train run or sweep cell, carries these (see training/records.py).
RESULT_FIELDS = {"model": str, "test_loss": NUMBER, "test_accuracy": NUMBER, "train_loss": NUMBER,
                 "train_accuracy": NUMBER, "parameters": int, "epochs": int, "seconds_per_epoch": NUMBER,
                 "epoch_seconds": _LIST, "seed": int, "config": _MAPPING, "data": _MAPPING,
                 "versions": _MAPPING, "created": str}
CELL_FIELDS = {**RESULT_FIELDS, "key": str, "name": str, "history": _LIST}
RUN_FIELDS = {**RESULT_FIELDS, "confusion_matrix": _LIST}
# The per-epoch numbers of a history (history.csv, cell records).
HISTORY_FIELDS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_seconds")
HISTORY_KINDS = dict.fromkeys(HISTORY_FIELDS, NUMBER)  # each a number (core/schema.py)


def history_fields(history: list) -> tuple:
    """The columns of ``history``: HISTORY_FIELDS, then VALIDATION_FIELDS where it has them."""
    return HISTORY_FIELDS + (VALIDATION_FIELDS if history and VALIDATION_FIELDS[0] in history[0] else ())


def history_kinds(record: dict) -> dict:
    """What each epoch of ``record``'s history must hold: the validation numbers too when its
    data held images out."""
    held_out = isinstance(record.get("data"), dict) and record["data"].get("validation") is not None
    return {**HISTORY_KINDS, **(dict.fromkeys(VALIDATION_FIELDS, NUMBER) if held_out else {})}


# Added to records as they are read (computed from them), never written.
_DERIVED = ("experiment", "experiment_hash", "model_file")


class DamagedResult(Exception):
    """A result file that cannot be used; the message names the file and what is wrong."""


# --- records -------------------------------------------------------------------------------

def validated_record(path: Path, fields: dict) -> dict:
    """The JSON record in ``path``, checked field by field; DamagedResult otherwise."""
    try:
        record = json.loads(read_bounded(path).decode("utf-8"))
    except FileNotFoundError:
        raise DamagedResult(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DamagedResult(f"{path}: unreadable ({error})") from None
    except ValueError as error:
        raise DamagedResult(f"{path}: not valid JSON ({'empty file' if not path.stat().st_size else error})") from None
    except RecursionError:
        raise DamagedResult(f"{path}: not a result record (JSON nested too deeply)") from None
    if not isinstance(record, dict):
        raise DamagedResult(f"{path}: expected a JSON object, got {type(record).__name__}")
    wrong = wrong_fields(record, fields)
    if wrong:
        raise DamagedResult(f"{path}: missing or mistyped field(s) {', '.join(wrong)}")
    if not all(is_finite(record[name]) for name in ("test_loss", "test_accuracy")):
        raise DamagedResult(f"{path}: test metrics are not finite numbers")
    data = record["data"]
    if (not isinstance(data.get("sha256"), dict) or not all_of(data["sha256"], str)
            or wrong_fields(data, {"train_images": int, "test_images": int})
            or not all(isinstance(data.get(name, ""), str) for name in ("digest", "source"))
            or not all(data.get(name) is None or is_of(data[name], int)
                       for name in ("train_limit", "test_limit", "validation"))):
        raise DamagedResult(f"{path}: data record lacks its digests or image counts, or has mistyped ones")
    if not all_of(record["versions"], str):
        raise DamagedResult(f"{path}: versions record holds a value that is not text")
    try:
        created_seconds(record)
    except (ValueError, OverflowError, OSError):
        raise DamagedResult(f"{path}: created is not a time ({printable(record['created'], 60)})") from None
    per_epoch = [("epoch_seconds", lambda value: is_of(value, NUMBER))]
    if "history" in fields:  # what the tables and REPORT.md's learning curves read of each epoch
        kinds = history_kinds(record)
        per_epoch.append(("history", lambda row: not wrong_fields(row, kinds)))
    for name, valid in per_epoch:
        if len(record[name]) != record["epochs"] or not all(map(valid, record[name])):
            raise DamagedResult(f"{path}: {name} does not hold one valid entry per epoch ({record['epochs']})")
    try:
        record["experiment"] = record_experiment(record, str(path))
    except (ConfigError, KeyError, TypeError, AttributeError) as error:
        raise DamagedResult(f"{path}: its config is not valid ({str(error).splitlines()[0]})") from None
    record["experiment_hash"] = identity_hash(record["experiment"])
    return record


def created_seconds(record: dict) -> float:
    """When a result was made (its ``created`` time), in seconds since the epoch."""
    from datetime import datetime

    return datetime.fromisoformat(record["created"]).timestamp()


def warn_damaged(problems, log):
    for problem in problems:
        log(f"Warning: damaged result, treated as not done: {problem}")


# --- run folders -----------------------------------------------------------------------------

def run_dir(results_dir, name: str, config) -> Path:
    """The run folder of ``config``'s experiment: the one it has under any label (its config
    copied or renamed, a run folder's config.yaml trained as is), else a new one labelled ``name``."""
    key = experiment_key(name, config)
    return find_run(results_dir, key) or Path(results_dir) / RUNS_FOLDER / key


def find_run(results_dir, key: str) -> Path | None:
    """The run folder of the experiment ``key`` names, by its hash whatever its label (the first by
    name when an older version of mnist-lab made several), or None."""
    import glob

    folder = Path(results_dir) / RUNS_FOLDER
    if (folder / key).is_dir():
        return folder / key
    found = sorted(path for path in folder.glob(f"[!.]*-{glob.escape(key_hash(key))}") if path.is_dir())
    return found[0] if found else None


def read_run(run: Path, name: str = None) -> dict:
    """A complete run's metrics, validated, with ``model_file``; DamagedResult otherwise.
    ``name``: the folder name the run is published under (default: its own)."""
    name = name or run.name
    metrics = validated_record(run / METRICS_FILE, RUN_FIELDS)
    deserved = f"{name.rsplit('-', 1)[0]}-{metrics['experiment_hash']}"
    if deserved != name:
        raise DamagedResult(f"{run / METRICS_FILE}: records the experiment {deserved}, not {name}")
    model_file = next((run / file for file in MODEL_FILES if (run / file).is_file()), None)
    if model_file is None or model_file.stat().st_size == 0:
        raise DamagedResult(f"{run}: no model file ({' or '.join(MODEL_FILES)})")
    return {**metrics, "model_file": str(model_file)}


def complete_runs(results_dir, log=print) -> list[tuple[Path, dict]]:
    """Every complete, undamaged run under ``results_dir/runs``, newest first; damaged ones are warned of."""
    found, damaged = [], []
    folder = Path(results_dir) / RUNS_FOLDER
    for run in sorted(folder.glob("[!.]*")) if folder.is_dir() else []:
        if not run.is_dir():
            continue
        try:
            found.append((run, read_run(run)))
        except DamagedResult as error:
            damaged.append(str(error))
    warn_damaged(damaged, log)
    return sorted(found, key=lambda item: (item[1]["created"], item[0].name), reverse=True)


@contextmanager
def staging(final: Path):
    """A hidden folder beside ``final`` to build a run in, locked while this process lives;
    removed if the block fails. Abandoned staging folders beside it are resolved first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(final.parent)
    staged = final.with_name(f".{final.name}.{_owner_token()}.partial")
    lock = _locked_staging_folder(staged)
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    finally:
        lock.close()


def _locked_staging_folder(staged: Path, attempts=5):
    """Create ``staged`` holding its lock. A clean-up running at the same moment can take the
    lock of a just-made folder (and remove it) before this process does: then start again."""
    for _ in range(attempts):
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        try:
            return Lock(staged / STAGING_LOCK)
        except OSError:  # removed meanwhile, or locked first by that clean-up (or a lock that failed)
            continue
    raise RuntimeError(f"{staged}: could not lock a staging folder (another process keeps removing it)")


def publish(staged: Path, final: Path, replace: bool) -> bool:
    """Rename a complete staged run to ``final``; False if a complete one is kept instead.

    With ``replace``, the two folders are exchanged in one atomic rename, so the
    old run stays visible until the new one is: there is no moment without a run
    at ``final``, and a kill at any point leaves the old run in an unlocked
    staging folder that the next clean-up removes.
    """
    if not final.exists():
        try:
            os.rename(staged, final)
            (final / STAGING_LOCK).unlink(missing_ok=True)
            return True
        except OSError:
            if not final.exists():  # not a lost race with a concurrent run: a real error
                raise
    if not replace:
        shutil.rmtree(staged)
        return False
    _exchange(staged, final)
    (final / STAGING_LOCK).unlink(missing_ok=True)
    shutil.rmtree(staged, ignore_errors=True)  # now the old run
    return True


def remove_abandoned(folder: Path):
    """Resolve the staging folders under ``folder`` whose owner is gone (whose lock is free):
    a complete, valid run whose final name is free is published (a kill came between its
    last file and its rename); anything else is deleted. A folder whose lock is held, by a
    process on this host or another, is left alone."""
    mine = _owner_token()
    for leftover in folder.glob(".*.partial"):
        if mine in leftover.name or not leftover.is_dir():
            continue
        try:
            with Lock(leftover / STAGING_LOCK):
                _resolve_abandoned(leftover)
        except FileNotFoundError:  # removed meanwhile by another clean-up
            continue
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                raise  # a lock held by a live process is left alone; anything else is a real error


def _resolve_abandoned(leftover: Path):
    final = leftover.with_name(leftover.name[1:].rsplit(".", 2)[0])
    try:
        if not final.exists():
            read_run(leftover, final.name)
            os.rename(leftover, final)
            (final / STAGING_LOCK).unlink(missing_ok=True)
            return
    except DamagedResult:
        pass
    shutil.rmtree(leftover, ignore_errors=True)


def _owner_token() -> str:
    """Host and process id: unique among live processes sharing a folder."""
    host = "".join(character if character.isalnum() or character in "-_" else "_"
                   for character in socket.gethostname())[:40]
    return f"{host}-{os.getpid()}"


_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path):
    """Swap two folders atomically (Linux renameat2); elsewhere, two renames and a short window."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        at_cwd = -100
        if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):  # not "this filesystem cannot exchange"
            raise OSError(code, os.strerror(code), str(first))
    parked = second.with_name(f".{second.name}.{_owner_token()}-old.partial")
    os.rename(second, parked)
    os.rename(first, second)
    os.rename(parked, first)


def sweep_folder(results_dir, name) -> Path:
    return Path(results_dir) / SWEEPS_FOLDER / name


def search_folder(results_dir, name) -> Path:
    return Path(results_dir) / SEARCHES_FOLDER / name


def find_result(results_dir, experiment_hash: str) -> tuple[Path, dict] | None:
    """A complete, valid result of the experiment ``experiment_hash`` anywhere in the store (a train
    run, a sweep cell, a search's trial cell) and its record, or None: what answers a search's
    trial without training it."""
    import glob

    results = Path(results_dir)
    run = find_run(results, f"any-{experiment_hash}")
    candidates = [] if run is None else [(run, lambda: read_run(run))]
    for place in (SWEEPS_FOLDER, SEARCHES_FOLDER):
        for path in sorted(results.glob(f"{place}/*/{CELLS_FOLDER}/*-{glob.escape(experiment_hash)}.json")):
            candidates.append((path, lambda path=path: validated_record(path, CELL_FIELDS)))
    for path, read in candidates:
        try:
            record = read()
        except DamagedResult:
            continue
        if record["experiment_hash"] == experiment_hash:
            return path, record
    return None


class SweepLocked(RuntimeError):
    """Another sweep process holds the folder."""


SWEEP_LOCK = ".lock"  # a sweep folder's: held by the one sweep process writing it


@contextmanager
def sweep_lock(folder: Path):
    """Hold a sweep folder for this process (files.Lock: the kernel releases it even on
    kill -9, and `mnist-lab runs` asks who holds it without taking it)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = Lock(folder / SWEEP_LOCK)
    except BlockingIOError:
        holder = lock_holder(folder / SWEEP_LOCK)
        raise SweepLocked(f"{folder} is being written by another sweep (pid {holder or '? (another host)'}); "
                          f"wait for it to finish, or use another --results folder") from None
    with lock:
        yield


# --- sweep cells -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cells:
    """What a sweep folder's ``cells/`` holds: valid records by key, damaged files, stale keys."""

    records: dict  # key -> record
    damaged: list  # messages naming each damaged file
    stale: dict  # path -> key the record deserves (written under an older identity)


def cell_path(folder: Path, key: str) -> Path:
    return folder / CELLS_FOLDER / f"{key}.json"


def read_cells(folder: Path, log=None) -> Cells:
    """The cells of a sweep folder; with ``log``, the damaged ones named in a warning."""
    records, damaged, stale = {}, [], {}
    for path in sorted((folder / CELLS_FOLDER).glob("*.json")):
        try:
            record = validated_record(path, CELL_FIELDS)
        except DamagedResult as error:
            damaged.append(str(error))
            continue
        key = f"{record['name']}-{record['experiment_hash']}"
        if key != path.stem:
            stale[path] = key
        else:
            records[path.stem] = record
    if log is not None:
        warn_damaged(damaged, log)
    return Cells(records, damaged, stale)


def rekey_cells(folder: Path, cells: Cells) -> Cells:
    """Move cells written under an older identity to the key their records deserve."""
    records = dict(cells.records)
    for path, key in cells.stale.items():
        record = json.loads(path.read_text())
        record["key"] = key
        record.pop("config_hash", None)  # older records carry their old hash there; nothing reads it
        if key not in records:
            write_cell(folder, key, record)
            records[key] = validated_record(cell_path(folder, key), CELL_FIELDS)
        path.unlink()
    return Cells(records, cells.damaged, {})


def write_cell(folder: Path, key: str, record: dict):
    """Write a cell atomically and clear any failure recorded for it."""
    record = {name: value for name, value in record.items() if name not in _DERIVED}
    atomic_write_text(cell_path(folder, key), json.dumps(record, indent=1) + "\n")
    (folder / FAILED_FOLDER / f"{key}.json").unlink(missing_ok=True)


def write_failure(folder: Path, key: str, failure: dict):
    atomic_write_text(folder / FAILED_FOLDER / f"{key}.json", json.dumps(failure, indent=1) + "\n")


# A pruned trial's record: which trial, its config and its history up to where it was stopped.
PRUNED_FIELDS = {"key": str, "name": str, "trial": int, "config": _MAPPING, "history": _LIST}


def write_pruned(folder: Path, key: str, pruned: dict):
    atomic_write_text(folder / PRUNED_FOLDER / f"{key}.json", json.dumps(pruned, indent=1) + "\n")


def read_pruned(path: Path) -> dict:
    """A pruned trial's record, validated; DamagedResult otherwise."""
    try:
        record = json.loads(read_bounded(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise DamagedResult(f"{path}: not a pruned trial's record ({type(error).__name__})") from None
    if not isinstance(record, dict) or wrong_fields(record, PRUNED_FIELDS) or not all(
            isinstance(row, dict) and not wrong_fields(row, HISTORY_KINDS) for row in record["history"]):
        raise DamagedResult(f"{path}: missing or mistyped field(s) of a pruned trial's record")
    try:
        from_dict(record["config"], str(path))
    except ConfigError as error:
        raise DamagedResult(f"{path}: its config is not valid ({error.problems[0]})") from None
    return record


def remove_temporaries(folder: Path):
    """Atomic writes cut short by a kill leave hidden .tmp files: remove them."""
    for leftover in folder.rglob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def check_writable(folder, option: str):
    """Refuse, before any work, a results folder that cannot be one: a path through a file, or
    a place this user cannot write. Creates nothing."""
    folder = Path(folder)
    for path in (folder, *folder.parents):
        if path.is_symlink() and not path.exists():
            raise UsageError(f"{option} {folder}: {path} is a link to nothing ({os.readlink(path)}), expected a "
                             f"folder")
        if path.exists():
            if not path.is_dir():
                raise UsageError(f"{option} {folder}: {path} is a file, expected a folder")
            if not os.access(path, os.W_OK | os.X_OK):
                raise UsageError(f"{option} {folder}: cannot write in {path} (no permission, or a read-only "
                                 f"filesystem)")
            return
