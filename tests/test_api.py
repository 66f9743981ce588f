"""The Python API against the command line (same identity, store and errors), and the example
notebook run top to bottom in a real Jupyter kernel."""

import json

import pytest
from click.testing import CliRunner

from mnist_lab import api, cli
from mnist_lab.core.backends import ONEDNN_VARIABLE
from mnist_lab.core.errors import ConfigError, UsageError
from mnist_lab.results import store

from conftest import ROOT

SLICE = {"data.train_limit": 600, "data.test_limit": 200, "training.epochs": 1}


def test_a_training_started_here_is_the_command_lines_and_back(tmp_path):
    result = api.train("logreg", SLICE, results=tmp_path, progress=False)
    assert result.trained and result.folder.parent == tmp_path / "runs"
    assert [row["epoch"] for row in result.history] == [1]
    assert result.history[0]["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert result.model().count_params() == 7850
    # The same experiment from the terminal is found, not trained again; and back here.
    arguments = [item for field, value in SLICE.items() for item in ("--set", f"{field}={value}")]
    told = CliRunner().invoke(cli.main, ["train", "logreg", *arguments, "--results", str(tmp_path)])
    assert told.exit_code == 0 and f"Already trained: {result.folder}" in told.output
    again = api.train("logreg", SLICE, results=tmp_path, progress=False)
    assert not again.trained and again.folder == result.folder and again.metrics["created"] == result.metrics["created"]
    assert [row["key"] for row in api.runs(tmp_path)] == [result.key]
    # Overrides as typed on the command line are the same experiment.
    assert api.train("logreg", [f"{field}={value}" for field, value in SLICE.items()], results=tmp_path,
                     progress=False).folder == result.folder
    assert api.runs(tmp_path, where="model=mlp") == []


def test_the_api_raises_what_the_command_line_prints(tmp_path):
    with pytest.raises(ConfigError) as raised:
        api.train("logreg", {"training.epochs": 0, "training.batch_size": "many"}, results=tmp_path)
    printed = CliRunner().invoke(cli.main, ["train", "logreg", "--set", "training.epochs=0", "--set",
                                            'training.batch_size="many"', "--results", str(tmp_path)])
    assert printed.exit_code == 2 and printed.output == "".join(f"Error: {line}\n" for line in
                                                                str(raised.value).splitlines())
    assert len(str(raised.value).splitlines()) == 2  # every problem at once
    with pytest.raises(UsageError, match="no such run folder"):
        api.predict(tmp_path / "nothing", [ROOT / "README.md"])
    with pytest.raises(UsageError, match="overrides: expected a dict of field: value"):
        api.train("logreg", 3, results=tmp_path)
    # The options the command line's click checks, checked here alike.
    for options, expected in (({"trials": 0}, "--trials: expected an integer >= 1, got 0 (int)"),
                              ({"trials": 2.5}, "--trials: expected an integer >= 1, got 2.5 (float)"),
                              ({"trials": True}, "--trials: expected an integer >= 1, got True (bool)"),
                              ({"minutes": "x"}, "--minutes: expected a finite number of minutes > 0, got 'x'"),
                              ({"workers": 0}, "--workers: expected an integer >= 1, got 0 (int)")):
        with pytest.raises(UsageError) as raised:
            api.search("search-mlp", results=tmp_path, **options)
        assert str(raised.value).startswith(expected)
    with pytest.raises(UsageError, match="--workers: expected an integer >= 1, got 'two'"):
        api.sweep("sweep-notebook", results=tmp_path, workers="two")
    assert not (tmp_path / "runs").exists()


def test_the_example_notebook_runs_in_a_real_kernel(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MNIST_LAB_QUICK", "1")  # the kernel inherits it: slices and 2 epochs
    monkeypatch.delenv(ONEDNN_VARIABLE)  # as in a new user's shell: the API sets it up as a command does
    monkeypatch.setenv("MNIST_LAB_CACHE", str(tmp_path / "cache"))
    notebook = nbformat.read(ROOT / "examples" / "lab.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.outputs)
    assert "trained again: False - same run: True" in printed
    assert "4 cells trained, 0 kept" in printed and printed.count("test accuracy") >= 6
    assert "training.epochs: expected an integer >= 1, got 0" in printed
    assert (tmp_path / "results" / "sweeps" / "notebook-grid" / "table.csv").is_file()
    # The kernel's runs ran (and say they ran) the oneDNN kernels a command turns on, on any CPU.
    recorded = {json.loads(path.read_text())["versions"]["onednn_opts"]
                for path in (tmp_path / "results" / "runs").glob(f"*/{store.METRICS_FILE}")}
    assert recorded == {"1"}
