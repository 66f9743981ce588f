import os
import stat

import numpy as np
import pytest

from mnist_lab.results.checkpoints import FOLDER, Checkpoint, CheckpointFolder
from mnist_lab.results.store import DamagedResult

VERSIONS = {"python": "3.11.0", "keras": "3.15.1", "backend": "tensorflow"}


def history(epochs):
    return [{"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.5, "test_loss": 1.1 / epoch,
             "test_accuracy": 0.6, "train_seconds": 0.25} for epoch in range(1, epochs + 1)]


def checkpoint(key="mlp-abc", epochs=2):
    rng = np.random.default_rng(0)
    return Checkpoint(key, history(epochs), [rng.normal(size=(4, 3)).astype(np.float32), np.zeros(3, np.float32)],
                      [np.array(7, np.int64), np.array(0.5, np.float32)], VERSIONS, 2)


def test_bytes_round_trip_keeps_every_bit():
    original = checkpoint()
    copy = Checkpoint.from_bytes(original.to_bytes(), "here")
    assert (copy.key, copy.history, copy.versions, copy.compute_threads, copy.epoch) == (
        original.key, original.history, original.versions, original.compute_threads, 2)
    for left, right in zip(original.weights + original.optimizer, copy.weights + copy.optimizer):
        assert left.dtype == right.dtype
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize("damage", [b"", b"not a zip archive", "truncated"])
def test_damaged_bytes_are_named(damage):
    data = checkpoint().to_bytes()
    with pytest.raises(DamagedResult, match="^somewhere: not a readable checkpoint"):
        Checkpoint.from_bytes(data[: len(data) // 2] if damage == "truncated" else damage, "somewhere")


def test_a_history_that_does_not_count_epochs_is_damaged():
    broken = checkpoint()
    broken.history[1]["epoch"] = 5
    with pytest.raises(DamagedResult, match="valid history"):
        Checkpoint.from_bytes(broken.to_bytes(), "x")


@pytest.mark.parametrize("field, value", [("train_loss", True), ("test_accuracy", 2**70), ("train_seconds", "0.25")])
def test_a_history_number_of_the_wrong_kind_is_damaged(field, value):
    """A hostile checkpoint: a bool, an integer no float holds, or text where a number belongs."""
    broken = checkpoint()
    broken.history[0][field] = value
    with pytest.raises(DamagedResult, match="valid history"):
        Checkpoint.from_bytes(broken.to_bytes(), "x")


def test_mismatch_names_other_versions_and_threads():
    saved = checkpoint()
    assert saved.mismatch(VERSIONS, 2) is None
    assert saved.mismatch({**VERSIONS, "keras": "3.16.0"}, 1) == "keras 3.15.1 → 3.16.0, compute threads 2 → 1"


def test_folder_saves_atomically_with_the_user_mode_and_removes(tmp_path):
    saved = CheckpointFolder(tmp_path)
    old_mask = os.umask(0o027)
    try:
        saved.save("mlp-abc", checkpoint().to_bytes())
    finally:
        os.umask(old_mask)
    path = tmp_path / FOLDER / "mlp-abc.checkpoint.npz"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert saved.load("mlp-abc").epoch == 2
    saved.save("mlp-abc", checkpoint(epochs=3).to_bytes())
    assert saved.load("mlp-abc").epoch == 3 and [p.name for p in (tmp_path / FOLDER).iterdir()] == [path.name]
    saved.remove("mlp-abc")
    assert not (tmp_path / FOLDER).exists()  # no empty folder left behind
    assert saved.load("mlp-abc") is None


def test_a_damaged_or_foreign_file_is_warned_of_and_removed(tmp_path):
    saved = CheckpointFolder(tmp_path)
    saved.save("mlp-abc", b"garbage")
    (saved.folder / ".mlp-abc.checkpoint.npz.x1y2.tmp").write_bytes(b"cut short")
    lines = []
    assert saved.load("mlp-abc", lines.append) is None
    assert lines == [f"Warning: damaged result, treated as not done: {saved.path('mlp-abc')}: not a readable "
                     f"checkpoint (not an .npz archive)"]
    assert list(saved.folder.iterdir()) == []
    saved.save("mlp-abc", checkpoint(key="cnn-def").to_bytes())
    lines.clear()
    assert saved.load("mlp-abc", lines.append) is None
    assert "holds the training cnn-def, not mlp-abc" in lines[0]


def test_nan_weights_a_folder_in_its_place_or_another_models_arrays_never_resume(tmp_path):
    """Each would fail every run (a save onto a folder, set_weights of other shapes) or resume a
    training that only diverges: named, cleared, and the training starts over."""
    from mnist_lab.training.resume import usable_checkpoint
    from mnist_lab.training.numpy_engine import NumpyModel
    from mnist_lab.core.config import ModelConfig

    broken = checkpoint()
    broken.weights[0][0, 0] = np.nan
    with pytest.raises(DamagedResult, match="finite weights"):
        Checkpoint.from_bytes(broken.to_bytes(), "x")
    saved = CheckpointFolder(tmp_path)
    saved.path("mlp-abc").mkdir(parents=True)
    lines = []
    assert saved.load("mlp-abc", lines.append) is None and "removed" in lines[0]
    saved.save("mlp-abc", checkpoint().to_bytes())  # the folder is gone: saving works again
    model = NumpyModel.initialised(ModelConfig(type="mlp"), seed=0)
    notes = []
    assert usable_checkpoint(saved.load("mlp-abc"), model, notes.append) is None
    assert "another model's weights" in notes[0]
