import sys

from mnist_lab import __version__
from mnist_lab.core import versions
from mnist_lab.core.backends import ONEDNN_VARIABLE


def test_installed_versions_come_from_package_metadata():
    import keras

    found = versions.installed("tensorflow")
    assert found["keras"] == keras.__version__ and found["mnist_lab"] == __version__
    assert found["backend"] == "tensorflow" and "onednn_opts" in found
    assert versions.installed("no-such-backend")["backend_version"] == "not installed"


def test_differences_name_what_changed_and_only_what_was_recorded():
    recorded = dict(versions.installed("tensorflow"), keras="0.0.1")
    del recorded["onednn_opts"]  # an older result did not record it: not a difference
    assert versions.differences(recorded, "tensorflow") == [f"keras 0.0.1 → {versions.installed('tensorflow')['keras']}"]
    assert versions.differences(versions.installed("tensorflow"), "tensorflow") == []


def test_the_onednn_kernels_recorded_are_those_tensorflow_runs(monkeypatch):
    import keras

    assert keras.backend.backend() == "tensorflow"  # started with the variable at 1, as a command starts it
    assert versions.onednn_kernels() == "1"
    # Read once when TensorFlow started: the variable now says nothing of the kernels that run.
    for value in ("0", "false", "anything"):
        monkeypatch.setenv(ONEDNN_VARIABLE, value)
        assert versions.installed("tensorflow")["onednn_opts"] == "1"
    # Before it starts, what the variable will make it, spelled one way per setting.
    monkeypatch.delitem(sys.modules, "tensorflow")
    for value, kernels in (("1", "1"), ("True", "1"), (" true ", "default"), ("0", "0"), ("FALSE", "0"), ("", "default")):
        monkeypatch.setenv(ONEDNN_VARIABLE, value)
        assert versions.onednn_kernels() == kernels
    monkeypatch.delenv(ONEDNN_VARIABLE)
    assert versions.onednn_kernels() == "default"
