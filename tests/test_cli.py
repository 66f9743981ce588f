import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_lab import cli, data

from conftest import ROOT, write_config

QUICK = ["--set", "data.train_limit=300", "--set", "data.test_limit=100", "--set", "training.epochs=1"]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(arg) for arg in args])


def test_importing_the_cli_does_not_import_keras_or_tensorflow():
    code = ("import sys, mnist_lab.cli; heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'sklearn', 'matplotlib')]; print(heavy); sys.exit(bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]])
def test_help_answers_in_under_a_second(args):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mnist_lab", *args], capture_output=True, text=True)
    assert time.perf_counter() - started < 1.0
    assert result.returncode == 0 and "Usage: mnist-lab" in result.stdout


def test_train_writes_a_run_and_keeps_it(tmp_path):
    first = invoke("train", ROOT / "configs" / "logreg.yaml", *QUICK, "--results", tmp_path)
    assert first.exit_code == 0, first.output
    assert "Data: shipped MNIST (verified MNIST)" in first.output and "Parameters: 7,850" in first.output
    run = next((tmp_path / "runs").iterdir())
    assert run.name.startswith("logreg-") and f"Run: {run}" in first.output
    second = invoke("train", ROOT / "configs" / "logreg.yaml", *QUICK, "--results", tmp_path, "--quiet")
    assert second.exit_code == 0 and f"Already trained: {run} (use --force to retrain)" in second.output
    assert "Parameters" not in second.output


def test_train_on_an_idx_folder_given_by_data(tmp_path, tiny_arrays):
    from conftest import write_idx_folder

    folder = write_idx_folder(tmp_path / "idx", tiny_arrays, compress=True)
    result = invoke("train", ROOT / "configs" / "mlp.yaml", "--data", folder, *QUICK, "--results", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    assert f"path: {folder}" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("content, args, expected", [
    (None, [], "Error: {config}: cannot read config: no such file"),
    ("model: [cnn\n", [], "Error: {config}: line 2, column 1: invalid YAML: "),
    ("model: {type: cnn}\ntraining: {batch_size: 0, epochs: 0}\n", [],
     "Error: {config}: training.batch_size: expected an integer >= 1, got 0 (int)\n"
     "Error: {config}: training.epochs: expected an integer >= 1, got 0 (int)\n"),
    ("model: {type: cnn}\n", ["--set", "training.learning_rate=0"],
     "Error: --set: training.learning_rate: expected a number > 0, got 0 (int)\n"),
    ("model: {type: cnn}\n", ["--data", "{tmp}/missing.npz"],
     "Error: {tmp}/missing.npz: no such file or folder (expected an .npz file or a folder"),
])
def test_bad_input_is_one_line_each_and_exit_2(tmp_path, content, args, expected):
    config = tmp_path / "exp.yaml"
    if content is not None:
        write_config(tmp_path, content)
    args = [arg.format(tmp=tmp_path) for arg in args]
    result = invoke("train", config, *args, "--results", tmp_path / "results")
    assert result.exit_code == 2
    assert expected.format(config=config, tmp=tmp_path) in result.output
    assert "Traceback" not in result.output and not (tmp_path / "results").exists()


def test_runtime_failure_is_exit_1_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"junk")
    monkeypatch.setattr(data, "shipped_path", lambda: damaged)
    result = invoke("train", ROOT / "configs" / "logreg.yaml", "--results", tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("Error: shipped MNIST is damaged: ")
    assert result.output.rstrip().endswith("(--debug shows the traceback)")
    debug = invoke("--debug", "train", ROOT / "configs" / "logreg.yaml", "--results", tmp_path)
    assert type(debug.exception).__name__ == "IntegrityError"


def test_console_entry_point_end_to_end(tmp_path):
    npz = tmp_path / "tiny.npz"
    with np.load(data.shipped_path()) as full:
        np.savez(npz, **{key: full[key][:200] for key in data.SPLITS})
    result = subprocess.run([sys.executable, "-m", "mnist_lab", "train", str(ROOT / "configs" / "cnn.yaml"),
                             "--data", str(npz), "--set", "training.epochs=1", "--results", str(tmp_path), "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Test loss" in result.stdout and "Traceback" not in result.stderr


def _bad_data(tmp_path, tiny_arrays, case):
    """Build one kind of broken dataset; return its path and the message expected."""
    from conftest import write_idx_folder

    if case == "junk npz":
        (tmp_path / "junk.npz").write_bytes(b"junk" * 10)
        return tmp_path / "junk.npz", "junk.npz: not a readable .npz archive"
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    labels = folder / "train-labels-idx1-ubyte"
    if case == "wrong magic":
        labels.write_bytes(b"\x00\x00\x08\x03" + labels.read_bytes()[4:])
        return folder, f"{labels}: wrong magic number 0x00000803, expected 0x00000801"
    if case == "truncated":
        labels.write_bytes(labels.read_bytes()[:-1])
        return folder, f"{labels}: header announces shape (50,) (50 bytes of data), file holds 49"
    if case == "missing file":
        labels.unlink()
        return folder, f"{folder}: missing IDX file(s) train-labels-idx1-ubyte (raw or .gz)"
    write_idx_folder(folder, {**tiny_arrays, "y_test": tiny_arrays["y_test"][:5]})
    return folder, "t10k-images-idx3-ubyte has 20 images but"


@pytest.mark.parametrize("case", ["junk npz", "wrong magic", "truncated", "missing file", "mismatched counts"])
def test_bad_data_is_one_line_and_exit_2(tmp_path, tiny_arrays, case):
    path, expected = _bad_data(tmp_path, tiny_arrays, case)
    result = invoke("train", ROOT / "configs" / "logreg.yaml", "--data", path, "--results", tmp_path / "results")
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1
    assert not (tmp_path / "results").exists()


def test_unreadable_config_is_exit_2(tmp_path):
    result = invoke("train", tmp_path, "--results", tmp_path / "results")
    assert result.exit_code == 2 and f"Error: {tmp_path}: cannot read config: it is a directory" in result.output
