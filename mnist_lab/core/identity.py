"""What an experiment *is*: its resolved config, with the data named by its content.

The one source of keys for runs, sweep cells and table groups. A data path is
not part of an identity: ``--data data.npz``, ``--data ./data.npz`` and a
copy elsewhere are one experiment; a file replaced at the same path is
another. The data's content digest is cached by file path, size, inode and
modification time, so repeated calls do not re-read the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mnist_lab.core.backends import DEFAULT_BACKEND, selected_backend
from mnist_lab.core.config import ScheduleConfig, from_dict, to_dict
from mnist_lab.core.errors import DataError
from mnist_lab.core.data import MNIST_DIGEST, SPLITS, content_digest, load_dataset, load_path, source_files
from mnist_lab.core.files import atomic_write_text
from mnist_lab.core.schema import all_of

HASH_DIGITS = 12  # 48 bits: no collision to fear among the millions of experiments of one folder
CACHE_ENV_VAR = "MNIST_LAB_CACHE"
DIGEST_CACHE_FILE = "data-digests.json"
DIGEST_CACHE_ENTRIES = 256  # the newest entries kept; the rest is recomputed if needed
_memo = {}  # stamp -> array digests, for this process
# How each epoch orders the training images: drawn from (seed, epoch) alone (data.epoch_order).
# Results made before (each engine's own shuffling generator) record no order; their identity
# stays as it was, so they keep their keys, and they never share a key, a table row or a cache
# entry with today's experiments, whose seed draws other orders.
DATA_ORDER = "seed-epoch"
# Config fields added after results existed, each with the value that means "as before".
# ("continues", "*", ...) is that field in each earlier stage.
ADDED_FIELDS = {("model", "conv_activation"): None, ("data", "scaled"): True, ("data", "validation"): None,
                ("training", "schedule"): to_dict(ScheduleConfig()),
                ("continues", "*", "schedule"): to_dict(ScheduleConfig()), ("continues",): []}


def experiment(config_dict: dict, data_digest: str, backend: str, data_order=DATA_ORDER) -> dict:
    """The identity record: every field that defines the experiment, with the stages a continued
    model was trained through before (``continues``); the data by its content digest and the
    slice used (first N images), not by where it was read; the Keras backend, whose random
    streams turn one seed into other initial weights; and how each epoch orders the training
    images (None: a result made before that was recorded)."""
    record = json.loads(json.dumps(config_dict))  # a deep copy
    data = record.pop("data")
    record["data"] = {**{field: value for field, value in data.items() if field not in ("source", "path")},
                      "digest": data_digest}
    for path, unchanged in ADDED_FIELDS.items():
        # At its "as before" value, a field added later leaves the identity as it was: the keys stay.
        for section in _sections(record, path[:-1]):
            if section.get(path[-1], unchanged) == unchanged:
                section.pop(path[-1], None)
    record["backend"] = backend
    if data_order is not None:
        record["data_order"] = data_order
    return record


def _sections(record: dict, path) -> list:
    """The mappings at ``path`` in ``record`` ("*": every item of a list)."""
    sections = [record]
    for name in path:
        if name == "*":
            sections = [item for section in sections if isinstance(section, list) for item in section]
        else:
            sections = [section.get(name, {}) for section in sections]
    return [section for section in sections if isinstance(section, dict)]


def experiment_hash(config, content=None, backend=None) -> str:
    """Short digest of the experiment ``config`` defines, its data named by ``content`` (the data's
    digest, when it is already loaded, as on a Dask worker that cannot see the data's path)
    or else by reading its path; on ``backend``, by default the one this process selected."""
    return identity_hash(experiment(to_dict(config), content or data_digest(config.data),
                                    backend or selected_backend()))


def experiment_key(name: str, config) -> str:
    """The key of a run or cell: its config's name, a label, and its experiment hash, which alone
    finds it (key_hash): a copied or renamed config is the same experiment."""
    return f"{name}-{experiment_hash(config)}"


def key_hash(key: str) -> str:
    """The experiment hash a result's key ends with (what comes before it is only a label)."""
    return key.rsplit("-", 1)[-1]


def trajectory_key(name: str, config, content=None) -> str:
    """The key of a training's path through its epochs: its experiment without the epoch count,
    so that a checkpoint after epoch k serves every epoch count from k on (the cells of one
    sweep trajectory, a sweep whose grid grew longer)."""
    identity = experiment(to_dict(config), content or data_digest(config.data), selected_backend())
    if not config.training.schedule.length_matters:  # (a cosine's steps depend on the epoch count)
        del identity["training"]["epochs"]
    return f"{name}-{identity_hash(identity)}"


def search_identity(base, space: dict, objective: str, seeds) -> dict:
    """What makes the trials of a search comparable, so that one study never holds two searches:
    the experiment of its base config without the fields its ``space`` searches (field ->
    description) and the seed (each trial's own), the space, the objective and the seeds."""
    identity = experiment(to_dict(base), data_digest(base.data), selected_backend())
    for field in [*space, "seed"]:
        *sections, name = field.split(".")
        for section in _sections(identity, sections):
            section.pop(name, None)
    return {"base": identity, "space": dict(space), "objective": objective, "seeds": list(seeds)}


def record_experiment(record: dict, where: str) -> dict:
    """The identity a stored result deserves, recomputed from what it holds (its resolved
    config and its data digests); ConfigError when its config is not valid."""
    config = from_dict(record["config"], where)
    return experiment(to_dict(config), content_digest(record["data"]["sha256"]),
                      record["versions"].get("backend", DEFAULT_BACKEND), record.get("data_order"))


def data_digest(data_config) -> str:
    """Content digest of the data a (resolved) DataConfig names."""
    if data_config.path is None:  # the shipped copy or Keras's download: both verified MNIST on load
        return MNIST_DIGEST
    return content_digest(path_digests(data_config.path))


def path_digests(path) -> dict:
    """The four arrays' IDX digests of the data at ``path``, read only when the files changed."""
    files = source_files(path)
    stamp = _stamp(files)
    if stamp in _memo:
        return _memo[stamp]
    cache = _read_cache()
    digests = cache.get(stamp)
    if digests is None:
        digests = load_path(path).sha256
        cache = {**cache, stamp: digests}
        _write_cache(dict(list(cache.items())[-DIGEST_CACHE_ENTRIES:]))
    _memo[stamp] = digests
    return digests


def cache_folder() -> Path:
    """``$MNIST_LAB_CACHE``, else ``$XDG_CACHE_HOME/mnist-lab``, else ``~/.cache/mnist-lab``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist-lab"


def _stamp(files) -> str:
    """What changes when any of the files changes: real path, size, inode, device, mtime."""
    parts = []
    for file in files:
        status = file.stat()
        parts.append([str(file.resolve()), status.st_size, status.st_ino, status.st_dev, status.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _read_cache() -> dict:
    """The digest cache; a missing, damaged or foreign file counts as empty (it is only a cache)."""
    try:
        cache = json.loads((cache_folder() / DIGEST_CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {stamp: digests for stamp, digests in cache.items()
            if isinstance(digests, dict) and sorted(digests) == sorted(SPLITS) and all_of(digests, str)}


def _write_cache(cache: dict):
    try:
        atomic_write_text(cache_folder() / DIGEST_CACHE_FILE, json.dumps(cache, indent=1) + "\n")
    except OSError:
        pass  # an unwritable cache only costs the next call a re-read


def identity_hash(identity: dict) -> str:
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_DIGITS]


def load_checked(data_config):
    """Load the data a config names and check it is the content its identity was computed from
    (a file replaced between the two would otherwise file results under the wrong key)."""
    expected = data_digest(data_config)
    dataset = load_dataset(data_config)
    if dataset.digest != expected:
        raise DataError(f"{data_config.path}: the data changed while mnist-lab was reading it; run again")
    return dataset
