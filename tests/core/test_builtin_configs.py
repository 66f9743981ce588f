import os
import re

import pytest
from click.testing import CliRunner

from mnist_lab.core import builtin_configs
from mnist_lab import cli
from mnist_lab.core.config import load_config
from mnist_lab.core.errors import UsageError
from mnist_lab.core.search_plan import load_search
from mnist_lab.core.sweep_plan import load_sweep

from conftest import ROOT


def test_every_built_in_config_loads():
    names = builtin_configs.names()
    assert {"logreg", "mlp", "cnn", "sweep", "sweep-notebook", "sweep-cnn"} <= set(names)
    for name in names:
        path = builtin_configs.resolve(name)
        loader = load_sweep if name.startswith("sweep") else load_search if name.startswith("search") else load_config
        loader(path)
        assert builtin_configs.summary(name), name


def test_the_repository_configs_are_the_packaged_ones():
    assert (ROOT / "configs").resolve() == builtin_configs.folder().resolve()


def test_a_name_finds_the_built_in_config_and_a_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert builtin_configs.resolve("cnn") == builtin_configs.resolve("cnn.yaml") == builtin_configs.folder() / "cnn.yaml"
    (tmp_path / "cnn.yaml").write_text("model: {type: mlp}\n")
    assert builtin_configs.resolve("cnn.yaml") == tmp_path.joinpath("cnn.yaml").relative_to(tmp_path)
    # A path stays a path, so loading it names the missing file.
    assert builtin_configs.resolve("elsewhere/cnn.yaml").as_posix() == "elsewhere/cnn.yaml"
    with pytest.raises(UsageError, match=r"^nosuch: no such config file, and no built-in config of that name "
                                         r"\(built-in: cnn, logreg, "):
        builtin_configs.resolve("nosuch")


def test_the_default_sweep_is_the_local_one_when_present(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert builtin_configs.default_sweep() == builtin_configs.folder() / "sweep.yaml"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "sweep.yaml").write_text("name: mine\n")
    assert builtin_configs.default_sweep().resolve() == (tmp_path / "configs" / "sweep.yaml").resolve()


def test_copies_keep_existing_files_and_respect_the_umask(tmp_path):
    (tmp_path / "cnn.yaml").write_text("edited\n")
    old = os.umask(0o027)
    try:
        copied, kept = builtin_configs.copy_to(tmp_path)
    finally:
        os.umask(old)
    assert kept == [tmp_path / "cnn.yaml"] and (tmp_path / "cnn.yaml").read_text() == "edited\n"
    assert {path.stem for path in copied} == set(builtin_configs.names()) - {"cnn"}
    assert all(path.stat().st_mode & 0o777 == 0o640 for path in copied)
    # The copied sweep finds its base configs beside it.
    plan = load_sweep(tmp_path / "sweep-notebook.yaml")
    assert len(plan.cells) == 25 and not list(tmp_path.glob("*.tmp*"))


def test_the_configs_command_lists_and_copies(tmp_path):
    listed = CliRunner().invoke(cli.main, ["configs"])
    assert listed.exit_code == 0
    assert any(re.fullmatch(r"sweep-notebook +The lab's logistic-regression settings replayed.*", line)
               for line in listed.output.splitlines())
    # Every description whole, wrapped under its column (the last line names the folder, a path).
    assert "…" not in listed.output and max(len(line) for line in listed.output.splitlines()[:-1]) <= 80
    assert "fc2: 155,606 parameters" in listed.output.replace("\n", " ")
    copied = CliRunner().invoke(cli.main, ["configs", "--copy", str(tmp_path / "mine")])
    assert copied.exit_code == 0 and f"Wrote {tmp_path / 'mine' / 'cnn.yaml'}" in copied.output
    again = CliRunner().invoke(cli.main, ["configs", "--copy", str(tmp_path / "mine")])
    assert "Wrote" not in again.output and f"Kept {tmp_path / 'mine' / 'cnn.yaml'} (already there" in again.output
    (tmp_path / "file").write_text("")
    refused = CliRunner().invoke(cli.main, ["configs", "--copy", str(tmp_path / "file")])
    assert refused.exit_code == 2 and "is a file, expected a folder" in refused.output


def test_train_and_sweep_take_a_built_in_name(tmp_path):
    planned = CliRunner().invoke(cli.main, ["sweep", "sweep-notebook", "--dry-run", "--results", str(tmp_path)])
    assert planned.exit_code == 0, planned.output
    assert "400x10 lr 0.5 batch 500 epochs 10 lr 0.5 seed 4" in planned.output and "25 cells, 25 to train" in planned.output
    dry = CliRunner().invoke(cli.main, ["train", "cnn", "--dry-run", "--results", str(tmp_path)])
    assert dry.exit_code == 0 and f"Would train: {tmp_path / 'runs' / 'cnn-'}" in dry.output
    wrong = CliRunner().invoke(cli.main, ["train", "cnm"])
    assert wrong.exit_code == 2 and "cnm: no such config file, and no built-in config of that name" in wrong.output
