from mnist_lab import __version__
from mnist_lab.core import versions


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
