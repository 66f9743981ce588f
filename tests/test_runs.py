import os
import subprocess
import sys

import pytest

from mnist_lab import runs


def make_run(folder, text):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(text)


def test_staging_is_hidden_and_removed_on_failure(tmp_path):
    final = tmp_path / "runs" / "mlp-0000abcd"
    with pytest.raises(KeyboardInterrupt):
        with runs.staging(final) as staged:
            assert staged.name.startswith(".") and staged.parent == final.parent
            (staged / "model.keras").write_text("half")
            raise KeyboardInterrupt
    assert list(final.parent.iterdir()) == []


def test_publish_keeps_a_complete_run_unless_replacing(tmp_path):
    final = tmp_path / "mlp-0000abcd"
    make_run(final, "old")
    with runs.staging(final) as staged:
        (staged / "metrics.json").write_text("new")
        assert runs.publish(staged, final, replace=False) is False
    assert (final / "metrics.json").read_text() == "old"
    with runs.staging(final) as staged:
        (staged / "metrics.json").write_text("new")
        assert runs.publish(staged, final, replace=True) is True
    assert (final / "metrics.json").read_text() == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mlp-0000abcd"]


def test_partial_folders_of_dead_processes_are_cleaned(tmp_path):
    final = tmp_path / "mlp-0000abcd"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    abandoned = tmp_path / f".mlp-0000abcd.{dead}.partial"
    live = tmp_path / f".mlp-0000abcd.{os.getppid()}.partial"
    abandoned.mkdir()
    live.mkdir()
    with runs.staging(final):
        pass
    assert not abandoned.exists() and live.exists()
