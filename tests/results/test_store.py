import json
import os
import subprocess
import sys
import time

import pytest

from mnist_lab.results import store
from mnist_lab.core.output import Output, silent


def make_run(folder, text):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(text)


def test_staging_is_hidden_and_removed_on_failure(tmp_path):
    final = tmp_path / "runs" / "mlp-0000abcd"
    with pytest.raises(KeyboardInterrupt):
        with store.staging(final) as staged:
            assert staged.name.startswith(".") and staged.parent == final.parent
            (staged / "model.keras").write_text("half")
            raise KeyboardInterrupt
    assert list(final.parent.iterdir()) == []


def test_publish_keeps_a_complete_run_unless_replacing(tmp_path):
    final = tmp_path / "mlp-0000abcd"
    make_run(final, "old")
    with store.staging(final) as staged:
        (staged / "metrics.json").write_text("new")
        assert store.publish(staged, final, replace=False) is False
    assert (final / "metrics.json").read_text() == "old"
    with store.staging(final) as staged:
        (staged / "metrics.json").write_text("new")
        old_inode = final.stat().st_ino
        assert store.publish(staged, final, replace=True) is True
    assert (final / "metrics.json").read_text() == "new" and final.stat().st_ino != old_inode
    # No .replaced, .partial or lock file left behind.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mlp-0000abcd"]
    assert sorted(path.name for path in final.iterdir()) == ["metrics.json"]


def test_replacing_never_leaves_a_moment_without_a_run(tmp_path):
    """A reader polling the run while it is replaced 30 times always finds a complete one."""
    final = tmp_path / "mlp-0000abcd"
    make_run(final, "0")
    watcher = subprocess.Popen([sys.executable, "-c", f"""
import os, sys, time
path = {str(final / 'metrics.json')!r}
end = time.time() + 60
misses = reads = 0
while time.time() < end and not os.path.exists(path + '.stop'):
    reads += 1
    if not os.path.exists(path):
        misses += 1
print(misses, reads)
"""], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    for version in range(1, 31):
        with store.staging(final) as staged:
            (staged / "metrics.json").write_text(str(version))
            store.publish(staged, final, replace=True)
    (final / "metrics.json.stop").write_text("")
    misses, reads = map(int, watcher.communicate(timeout=70)[0].split())
    assert reads > 100 and misses == 0
    assert (final / "metrics.json").read_text() == "30"


HOLD_LOCK = """
import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(60)
"""


def test_clean_up_removes_abandoned_staging_folders_only(tmp_path):
    """Folders whose lock is free are abandoned, whatever their name says; a folder whose lock a
    live process holds (here one named for another host) is kept."""
    final = tmp_path / "mlp-0000abcd"
    abandoned = tmp_path / ".mlp-0000abcd.somehost-12345.partial"
    other_config = tmp_path / ".cnn-0000beef.otherhost-1.partial"
    live = tmp_path / ".mlp-0000abcd.otherhost-99.partial"
    for folder in (abandoned, other_config, live):
        folder.mkdir()
        (folder / store.STAGING_LOCK).write_text("")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(live / store.STAGING_LOCK)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with store.staging(final):
            pass
        assert not abandoned.exists() and not other_config.exists() and live.exists()
    finally:
        holder.kill()
        holder.wait()
    store.remove_abandoned(tmp_path)  # its owner is gone now
    assert not live.exists()


def test_a_complete_run_left_in_staging_by_a_kill_is_published(tmp_path, small_config, mnist):
    from mnist_lab.training.run import train

    config = small_config("logreg", "training.epochs=1")
    run = train(config, "logreg", tmp_path, output=Output(log=silent, progress=False), dataset=mnist).run_dir
    hidden = run.with_name(f".{run.name}.deadhost-1.partial")
    os.rename(run, hidden)  # as a kill between the last file and the rename leaves it
    store.remove_abandoned(run.parent)
    assert run.is_dir() and not hidden.exists()
    assert store.read_run(run)["test_accuracy"] > 0


@pytest.mark.parametrize("content, message", [
    ("", "not valid JSON (empty file)"),
    ('{"test_loss": 0.3', "not valid JSON"),
    ("[]", "expected a JSON object, got list"),
    ('{"test_loss": 0.3}', "missing or mistyped field(s) model, test_accuracy"),
])
def test_damaged_metrics_are_named(tmp_path, content, message):
    make_run(tmp_path / "mlp-0000abcd", content)
    with pytest.raises(store.DamagedResult, match=r"mlp-0000abcd/metrics.json: " + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        store.read_run(tmp_path / "mlp-0000abcd")


def test_check_writable_refuses_files_in_the_path(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(store.UsageError, match=r"--results .*/file/sub: .*/file is a file, expected a folder"):
        store.check_writable(tmp_path / "file" / "sub", "--results")
    store.check_writable(tmp_path / "new" / "deeper", "--results")
    assert not (tmp_path / "new").exists()  # it creates nothing


def test_files_get_the_users_mode(tmp_path):
    from mnist_lab.core.files import atomic_write_text

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.json", json.dumps({}))
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("change, message", [
    (lambda record: record.update(history=record["history"][:-1]), "history does not hold one valid entry per epoch"),
    (lambda record: record["history"][0].pop("test_loss"), "history does not hold one valid entry per epoch"),
    (lambda record: record.update(epoch_seconds=["x"] * record["epochs"]), "epoch_seconds does not hold"),
    (lambda record: record.update(test_accuracy=float("nan")), "test metrics are not finite numbers"),
    (lambda record: record["config"]["training"].update(epochs=0), "its config is not valid"),
    (lambda record: record["data"].pop("sha256"), "data record lacks its digests"),
])
def test_damaged_cells_are_named(tmp_path, mnist, change, message):
    from conftest import cell_record, write_cells

    record = cell_record(mnist, "logreg", 300, 3, 0.5, 0, 0.9, 0.3)
    change(record)
    write_cells(tmp_path, [record])
    cells = store.read_cells(tmp_path)
    assert not cells.records and len(cells.damaged) == 1 and message in cells.damaged[0]


def test_deeply_nested_json_is_damaged_not_a_crash(tmp_path):
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "logreg-0.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in store.read_cells(tmp_path).damaged[0]
