import dataclasses
import json
import os

import numpy as np
import pytest

from mnist_lab.core import identity
from mnist_lab.core.config import Config, DataConfig, ModelConfig, ScheduleConfig, to_dict
from mnist_lab.core.data import MNIST_DIGEST, SPLITS, shipped_path


def with_data(**data):
    base = Config(model=ModelConfig(type="logreg"))
    return dataclasses.replace(base, data=dataclasses.replace(base.data, **data))


def test_the_same_content_under_any_path_is_one_experiment(tmp_path, tiny_arrays, monkeypatch):
    np.savez(tmp_path / "a.npz", **tiny_arrays)
    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub" / "copy.npz", **tiny_arrays)
    monkeypatch.chdir(tmp_path)
    keys = {identity.experiment_hash(with_data(path=path))
            for path in ("a.npz", "./a.npz", str(tmp_path / "a.npz"), "sub/copy.npz", "sub/../a.npz")}
    assert len(keys) == 1
    # The shipped MNIST, Keras's download and a copy of it at a path: one experiment.
    assert (identity.experiment_hash(with_data()) == identity.experiment_hash(with_data(source="keras"))
            == identity.experiment_hash(with_data(path=str(shipped_path()))))


def test_other_content_is_another_experiment_even_at_the_same_path(tmp_path, tiny_arrays, monkeypatch):
    path = tmp_path / "data.npz"
    np.savez(path, **tiny_arrays)
    before = identity.experiment_hash(with_data(path=str(path)))
    changed = dict(tiny_arrays, y_train=np.roll(tiny_arrays["y_train"], 1))
    np.savez(path, **changed)
    os.utime(path, ns=(1, 1))  # same size, same inode: the modification time tells
    assert identity.experiment_hash(with_data(path=str(path))) != before
    # A relative path means the file in the current folder, not the first one seen.
    other = tmp_path / "other"
    other.mkdir()
    np.savez(other / "data.npz", **tiny_arrays)
    monkeypatch.chdir(tmp_path)
    here = identity.experiment_hash(with_data(path="data.npz"))
    monkeypatch.chdir(other)
    assert identity.experiment_hash(with_data(path="data.npz")) == before != here


def test_identity_covers_everything_but_the_path(tmp_path):
    plain = identity.experiment_hash(with_data())
    assert identity.experiment_hash(with_data(train_limit=100)) != plain
    assert identity.experiment_hash(with_data(test_limit=100)) != plain
    assert identity.experiment_hash(dataclasses.replace(with_data(), seed=1)) != plain
    assert identity.experiment_hash(dataclasses.replace(with_data(), engine="numpy")) != plain
    assert identity.experiment_hash(with_data(), backend="jax") != plain
    record = identity.experiment({"model": {"type": "logreg"}, "seed": 0,
                                  "data": {"source": "builtin", "path": "/x", "train_limit": None, "test_limit": 5}},
                                 MNIST_DIGEST, "jax")
    assert record["data"] == {"digest": MNIST_DIGEST, "train_limit": None, "test_limit": 5}
    assert record["backend"] == "jax"


def test_digests_are_cached_by_file_stamp(tmp_path, tiny_arrays, monkeypatch):
    """A second process (an empty memo) reads the digest from the cache file, not the data."""
    path = tmp_path / "data.npz"
    np.savez(path, **tiny_arrays)
    first = identity.path_digests(path)
    cache = json.loads((identity.cache_folder() / identity.DIGEST_CACHE_FILE).read_text())
    assert first in cache.values() and sorted(first) == sorted(SPLITS)
    monkeypatch.setattr(identity, "_memo", {})
    monkeypatch.setattr(identity, "load_path", lambda path: pytest.fail("the cache should have answered"))
    assert identity.path_digests(path) == first


def test_a_damaged_digest_cache_is_recomputed(tmp_path, tiny_arrays, monkeypatch):
    monkeypatch.setenv(identity.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(identity, "_memo", {})
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / identity.DIGEST_CACHE_FILE).write_text('{"x": [1, 2')
    np.savez(tmp_path / "data.npz", **tiny_arrays)
    digests = identity.path_digests(tmp_path / "data.npz")
    assert json.loads((tmp_path / "cache" / identity.DIGEST_CACHE_FILE).read_text()) == {
        next(iter(json.loads((tmp_path / "cache" / identity.DIGEST_CACHE_FILE).read_text()))): digests}


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(identity.CACHE_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert identity.cache_folder() == tmp_path / "mnist-lab"
    assert DataConfig().path is None


def test_results_made_before_the_seeded_data_order_keep_their_keys_as_other_experiments(mnist):
    """A record without ``data_order`` (mnist-lab 0.1) hashes as it always did: the key below is
    the one such a cell was committed under (logreg, batch 400, 20 epochs, lr 0.5, seed 2);
    today's experiment of that setting, whose seed draws other orders, has another key."""
    from conftest import cell_record

    record = cell_record(mnist, "logreg", 400, 20, 0.5, 2, 0.92, 0.27)
    legacy = {field: value for field, value in record.items() if field != "data_order"}
    assert identity.identity_hash(identity.record_experiment(legacy, "old")) == "039d23c450dd"
    assert record["key"] == f"logreg-{identity.identity_hash(identity.record_experiment(record, 'new'))}"
    assert record["key"] != "logreg-039d23c450dd"
    # Pinned as computed before continued models existed: a fresh model's key did not change.
    assert record["key"] == "logreg-f4ab4ce8fdd9"


def test_a_continued_model_is_another_experiment_named_by_what_it_continued_from():
    fresh = Config(model=ModelConfig(type="logreg"))
    stage = dataclasses.replace(fresh.training, batch_size=300, epochs=10)
    continued = dataclasses.replace(fresh, continues=(stage,))
    other_start = dataclasses.replace(fresh, continues=(dataclasses.replace(stage, learning_rate=0.2),))
    keys = {identity.experiment_hash(config) for config in (fresh, continued, other_start)}
    assert len(keys) == 3
    assert identity.experiment(to_dict(continued), MNIST_DIGEST, "tensorflow")["continues"] == [
        {"batch_size": 300, "epochs": 10, "learning_rate": 0.5}]
    assert "continues" not in identity.experiment(to_dict(fresh), MNIST_DIGEST, "tensorflow")


def test_fields_added_later_change_the_key_only_away_from_their_default():
    fresh = Config(model=ModelConfig(type="cnn"))
    relu = dataclasses.replace(fresh, model=dataclasses.replace(fresh.model, conv_activation="relu"))
    unscaled = dataclasses.replace(fresh, data=dataclasses.replace(fresh.data, scaled=False))
    assert len({identity.experiment_hash(config) for config in (fresh, relu, unscaled)}) == 3
    record = identity.experiment(to_dict(fresh), MNIST_DIGEST, "tensorflow")
    assert "conv_activation" not in record["model"] and "scaled" not in record["data"]
    assert identity.experiment(to_dict(unscaled), MNIST_DIGEST, "tensorflow")["data"]["scaled"] is False


def test_a_constant_schedule_keeps_every_key_and_any_other_makes_another_experiment():
    fresh = Config(model=ModelConfig(type="logreg"))
    continued = dataclasses.replace(fresh, continues=(fresh.training,))
    for config in (fresh, continued):  # "schedule" was added later: at its default, nowhere in the identity
        assert "schedule" not in json.dumps(identity.experiment(to_dict(config), MNIST_DIGEST, "tensorflow"))

    def scheduled(config, **schedule):
        return dataclasses.replace(config, training=dataclasses.replace(config.training,
                                                                        schedule=ScheduleConfig(**schedule)))
    keys = {identity.experiment_hash(config) for config in
            (fresh, continued, scheduled(fresh, type="step"), scheduled(fresh, type="step", every=2),
             scheduled(fresh, type="cosine"), scheduled(continued, type="cosine"))}
    assert len(keys) == 6
    assert (identity.experiment_hash(scheduled(fresh, type="step"))
            == identity.experiment_hash(scheduled(fresh, type="step", every=3, factor=0.5)))
    # A checkpoint serves longer trainings on the same path, except where the steps depend on the length.
    longer = {kind: dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=20))
              for kind, config in (("step", scheduled(fresh, type="step")), ("cosine", scheduled(fresh, type="cosine")))}
    assert identity.trajectory_key("a", scheduled(fresh, type="step")) == identity.trajectory_key("a", longer["step"])
    assert identity.trajectory_key("a", scheduled(fresh, type="cosine")) != identity.trajectory_key("a", longer["cosine"])
