import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_lab import cli
from mnist_lab.core import data

from conftest import ROOT, default_sigint, in_this_process, write_config

QUICK = ["--set", "data.train_limit=300", "--set", "data.test_limit=100", "--set", "training.epochs=1"]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(arg) for arg in args])


def test_importing_the_cli_does_not_import_keras_or_tensorflow():
    code = ("import sys, mnist_lab.cli; heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'sklearn', 'matplotlib')]; print(heavy); sys.exit(bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["sweep", "--help"]])
def test_help_answers_without_importing_anything_heavy(args):
    """What makes --help instant, proved without a clock: it imports no backend, no Dask, no
    scikit-learn or matplotlib."""
    code = (f"import sys\nfrom mnist_lab import cli\ntry:\n    cli.main({args!r}, prog_name='mnist-lab')\n"
            "except SystemExit:\n    pass\nprint('heavy:', sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tensorflow', 'keras', 'jax', 'torch', 'dask', 'distributed', 'sklearn', 'matplotlib'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "Usage: mnist-lab" in result.stdout and "heavy: []" in result.stdout, result.stdout + result.stderr


def test_the_command_list_shows_each_summary_whole_in_80_columns():
    listing = CliRunner().invoke(cli.main, ["--help"], terminal_width=80).output
    commands = listing.split("Commands:\n")[1].splitlines()
    assert len(commands) == len(cli.main.commands) and all(not line.endswith("...") for line in commands), listing


def test_train_writes_a_run_and_keeps_it(tmp_path):
    first = invoke("train", ROOT / "configs" / "logreg.yaml", *QUICK, "--results", tmp_path)
    assert first.exit_code == 0, first.output
    assert "Data: shipped MNIST (verified MNIST)" in first.output and "Parameters: 7,850" in first.output
    run = next((tmp_path / "runs").iterdir())
    assert run.name.startswith("logreg-") and f"Run: {run}" in first.output
    second = invoke("train", ROOT / "configs" / "logreg.yaml", *QUICK, "--results", tmp_path, "--quiet")
    assert second.exit_code == 0 and f"Already trained: {run} (use --force to retrain)" in second.output
    assert "Parameters" not in second.output
    held_out = invoke("train", ROOT / "configs" / "logreg.yaml", *QUICK, "--set", "data.validation=200", "--results",
                      tmp_path, "--quiet")
    metrics = json.loads(next(path for path in (tmp_path / "runs").glob("*/metrics.json")
                              if path.parent != run).read_text())
    assert (f"Validation loss {metrics['validation_loss']:.4f}, validation accuracy "
            f"{metrics['validation_accuracy']:.2%} (200 held-out training images)") in held_out.output
    assert "Validation" not in second.output  # none without a split


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
     "Error: {config}: training.batch_size: expected an integer >= 1 and <= 600000, got 0 (int)\n"
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
    # One update of 200 images leaves the sigmoid CNN at chance: said, with what would leave it.
    assert "Note: the CNN is at chance (" in result.stdout
    assert "after 200 images seen or fewer" in result.stdout and "900 epochs of 200 images would see 180,000" in result.stdout


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


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join(['*' + chr(97 + level)] * 9)}]\n" for level in range(8))


# Each family of bad config input: file content (or None: the path is a folder), --set
# options, and the one error line expected ({config} is the file's path).
@pytest.mark.parametrize("content, args, expected", [
    ("model: {type: mlp}\nmodel: {type: cnn}\n", [], "{config}: line 2, column 1: invalid YAML: duplicate key "
                                                    "'model' (str) (first at line 1)"),
    ("model: {type: mlp, type: cnn}\n", [], "invalid YAML: duplicate key 'type' (str) (first at line 1)"),
    (ALIAS_BOMB + "model: {type: *i}\n", [], "{config}: invalid YAML: its aliases expand to more than 100,000 values"),
    ("model: &m [*m]\n", [], "{config}: line 1, column 8: invalid YAML: an alias refers to itself"),
    ("model: " + "[" * 5000 + "]" * 5000 + "\n", [], "{config}: invalid YAML: nested deeper than"),
    ("model: " + "[" * 40 + "]" * 40 + "\n", [], "{config}: line 1, column 40: invalid YAML: nested deeper than 32"),
    (b"model: {type: \xff\xfe}\n", [], "{config}: cannot read config: not UTF-8 text (byte 0xff at position 14)"),
    ("", [], "{config}: expected a mapping with the sections model, training, data, seed, engine, continues, got an empty file"),
    ("# only a comment\n", [], "got an empty file"),
    ("just some prose of a README, not a config at all " * 20, [], "got a str"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00binary", [], "{config}: not a text file (character #x0003 at position 2)"),
    (b"\x89PNG\r\n\x1a\n\x00", [], "{config}: cannot read config: not UTF-8 text (byte 0x89 at position 0)"),
    (None, [], "{config}: cannot read config: it is a directory"),
    ("/dev/zero", [], "/dev/zero: cannot read config: not a regular file"),
    ("model: {type: mlp}\n", ["--data", "/dev/zero"], "/dev/zero: not a regular file or folder (expected an .npz"),
    ("model: {type: " + "x" * 5000 + "}\n", [], "{config}: model.type: expected one of logreg, mlp, cnn, got "
                                                "'xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx' (str)"),
    ("model: {type: mlp}\n", ["--set", "training.epochs"], "--set training.epochs: expected field.path=value"),
    ("model: {type: mlp}\n", ["--set", "=3"], "--set =3: expected field.path=value"),
    ("model: {type: mlp}\n", ["--set", "training.epochs.count=3"], "--set: training.epochs: expected an integer "
                                                                  ">= 1, got {{'count': 3}} (mapping)"),
    ("model: {type: mlp}\ntraining: {epochs: 3}\n", ["--set", "training.epochs.count=3"],
     "--set training.epochs.count=3: training.epochs in {config} is not a section"),
    ("model: {type: mlp}\n", ["--set", "training=3"], "--set: training: expected a mapping with batch_size, epochs, "
                                                      "learning_rate, schedule, got 3 (int)"),
    ("model: {type: mlp}\n", ["--set", "training.epochs=[1"], "--set: training.epochs: expected an integer >= 1, "
                                                              "got '[1' (str)"),
    ("model: {type: mlp}\n", ["--set", "seed=&a [*a]"], "--set: seed: expected an integer"),
    ("model: {type: mlp}\n", ["--set", "training.learning_rate=.nan"], "--set: training.learning_rate: expected a "
                                                                       "number > 0, got nan (float)"),
    ("model: {type: mlp}\n", ["--set", "engine=numpy", "--set", "model.activation=relu"],
     "--set: model.activation: expected sigmoid with engine numpy, got 'relu' (str)"),
    ("model: {type: cnn}\n", ["--set", "engine=numpy"], "--set: engine: expected keras for model.type cnn"),
    ("model: {type: mlp}\n", ["--set", "model.type=cnn", "--set", "engine=numpy"],
     "--set: engine: expected keras for model.type cnn"),
    ("engine: numpy\nmodel: {type: mlp}\n", ["--set", "model.type=cnn"],
     "{config} and --set: engine: expected keras for model.type cnn"),
])
def test_every_bad_config_is_one_error_line_and_exit_2(tmp_path, content, args, expected):
    config = tmp_path / "exp.yaml"
    if content == "/dev/zero":
        config = content
    elif content is None:
        config.mkdir()
    elif isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content)
    result = invoke("train", config, *args, "--results", tmp_path / "results")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and expected.format(config=config) in errors[0], result.output
    assert len(errors[0]) < 400 and "Traceback" not in result.output
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("field, value, expected", [
    ("name", "../escape", "name: expected a folder name: up to 100 letters, digits, '.', '_' or '-', not starting "
                          "with '.' or null, got '../escape' (str)"),
    ("name", "/tmp/absolute", "got '/tmp/absolute' (str)"),
    ("name", ".hidden", "got '.hidden' (str)"),
    ("name", "a/b", "got 'a/b' (str)"),
    ("seeds", "[-1]", "seeds: expected a non-empty list of integers >= 0"),
    ("models", "[]", "models: expected a non-empty list of mappings with config"),
    ("models", "[{config: /no/such.yaml}]", "models[0].config: /no/such.yaml: cannot read config: no such file"),
])
def test_bad_sweep_files_are_exit_2_and_write_nothing(tmp_path, field, value, expected):
    fields = {"name": "ok", "seeds": "[0]", "models": f"[{{config: {ROOT / 'configs' / 'logreg.yaml'}}}]"}
    sweep = write_config(tmp_path, "".join(f"{key}: {value if key == field else text}\n"
                                           for key, text in fields.items()), name="s.yaml")
    result = invoke("sweep", sweep, "--results", tmp_path / "results")
    assert result.exit_code == 2 and expected in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "results").exists()
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "absolute").exists()


def test_a_sweep_file_named_dot_dot_needs_a_name(tmp_path):
    (tmp_path / "x").mkdir()
    sweep = tmp_path / "x" / "..yaml"
    sweep.write_text(f"models: [{{config: {ROOT / 'configs' / 'logreg.yaml'}}}]\n")
    result = invoke("sweep", sweep, "--results", tmp_path / "results", "--dry-run")
    assert result.exit_code == 2 and "name: expected a folder name" in result.output and "got '.'" in result.output


@pytest.mark.parametrize("command", ["train", "sweep", "visualize", "report"])
def test_a_results_folder_that_cannot_be_is_refused_before_any_work(tmp_path, command):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = {"train": [ROOT / "configs" / "logreg.yaml", *QUICK], "sweep": [ROOT / "configs" / "sweep.yaml", *QUICK],
            "visualize": ["--sources", "raw", "--limit", "100"]}.get(command, [])
    result = invoke(command, *args, "--results", blocker)
    assert result.exit_code == 2 and f"Error: --results {blocker}" in result.output
    assert f"{blocker} is a file, expected a folder" in result.output
    assert blocker.read_text() == "not a folder"


def test_already_trained_and_dry_run_answer_without_tensorflow(tmp_path):
    config = ROOT / "configs" / "logreg.yaml"
    assert invoke("train", config, *QUICK, "--results", tmp_path, "-q").exit_code == 0
    metrics_file = next((tmp_path / "runs").iterdir()) / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["versions"]["keras"] = "0.0.1"
    metrics_file.write_text(json.dumps(metrics))
    code = ("import sys; from click.testing import CliRunner; from mnist_lab import cli; "
            "result = CliRunner().invoke(cli.main, sys.argv[1:]); print(result.output); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules); sys.exit(result.exit_code)")
    for extra in ([], ["--dry-run"]):
        result = subprocess.run([sys.executable, "-c", code, "train", str(config), *QUICK, "--results", str(tmp_path),
                                 *extra], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith("False False"), result.stdout
        assert "Already trained" in result.stdout
    assert "Note: made with other versions than those installed (keras 0.0.1 → " in result.stdout or extra


def test_a_damaged_run_is_named_and_retrained(tmp_path):
    config = ROOT / "configs" / "logreg.yaml"
    assert invoke("train", config, *QUICK, "--results", tmp_path, "-q").exit_code == 0
    run = next((tmp_path / "runs").iterdir())
    good = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text((run / "metrics.json").read_text()[:100])
    result = invoke("train", config, *QUICK, "--results", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    assert f"Warning: damaged result, treated as not done: {run / 'metrics.json'}: not valid JSON" in result.output
    assert "Already trained" not in result.output
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] == good["test_accuracy"]
    assert [path.name for path in (tmp_path / "runs").iterdir()] == [run.name]


def test_the_same_data_under_another_path_is_the_same_run(tmp_path, tiny_arrays, monkeypatch):
    np.savez(tmp_path / "data.npz", **tiny_arrays)
    monkeypatch.chdir(tmp_path)
    args = [*QUICK, "--results", tmp_path / "results", "-q"]
    assert invoke("train", ROOT / "configs" / "logreg.yaml", "--data", "data.npz", *args).exit_code == 0
    again = invoke("train", ROOT / "configs" / "logreg.yaml", "--data", "./data.npz", *args)
    assert "Already trained" in again.output
    np.savez(tmp_path / "data.npz", **{**tiny_arrays, "y_train": (tiny_arrays["y_train"] + 1) % 10})
    replaced = invoke("train", ROOT / "configs" / "logreg.yaml", "--data", "data.npz", *args)
    assert replaced.exit_code == 0 and "Already trained" not in replaced.output
    assert len(list((tmp_path / "results" / "runs").iterdir())) == 2


def test_files_written_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert invoke("train", ROOT / "configs" / "logreg.yaml", *QUICK, "--results", tmp_path, "-q").exit_code == 0
    finally:
        os.umask(old)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert files and {path.stat().st_mode & 0o777 for path in files} == {0o644}


def test_a_closed_pipe_is_not_an_error(tmp_path):
    command = (f"{sys.executable} -m mnist_lab sweep {ROOT / 'configs' / 'sweep-full.yaml'} --dry-run "
               f"--results {tmp_path} | head -1")
    result = subprocess.run(command, shell=True, capture_output=True, text=True)
    assert result.stdout.startswith("todo  logreg batch 300") and result.stderr == ""


def _stop_when(command, marker, signum, cwd=None):
    """Start ``command``, send ``signum`` once ``marker`` appears on its stdout; return (exit code, stderr)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                               preexec_fn=default_sigint,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stdout:
        if marker in line:
            process.send_signal(signum)
            break
    return process.wait(timeout=120), process.stderr.read()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_stopped_train_leaves_no_run_and_the_next_one_is_correct(tmp_path, signum, code):
    command = [sys.executable, "-m", "mnist_lab", "train", str(ROOT / "configs" / "mlp.yaml"), "--set",
               "data.train_limit=10000", "--set", "data.test_limit=500", "--set", "training.epochs=3",
               "--set", "training.batch_size=50", "--results", str(tmp_path)]
    returncode, stderr = _stop_when(command, "Epoch 2/3", signum)
    assert returncode == code, stderr
    if signum != signal.SIGKILL:
        assert "nothing half-written was kept" in stderr and "Traceback" not in stderr
    runs = tmp_path / "runs"
    assert not runs.exists() or not [path for path in runs.iterdir() if not path.name.startswith(".")]
    assert "Test loss" in in_this_process(command, "-q").output
    assert [path.name.startswith("mlp-") for path in runs.iterdir()] == [True]


def test_two_trains_of_one_experiment_at_once_leave_one_good_run(tmp_path):
    command = [sys.executable, "-m", "mnist_lab", "train", str(ROOT / "configs" / "logreg.yaml"), *QUICK,
               "--results", str(tmp_path), "-q"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    (run,) = (tmp_path / "runs").iterdir()  # no staging folder, no second copy
    assert not run.name.startswith(".") and (run / "metrics.json").is_file() and not (run / ".owner").exists()
    accuracies = {line for out, _ in outputs for line in out.splitlines() if line.startswith("Test loss")}
    assert len(accuracies) == 1  # the same numbers, whichever was kept


@pytest.mark.parametrize("command", ["train", "sweep", "visualize", "report"])
def test_an_empty_results_option_is_refused(command):
    args = {"train": [ROOT / "configs" / "logreg.yaml"], "sweep": [ROOT / "configs" / "sweep.yaml"]}.get(command, [])
    result = invoke(command, *args, "--results", "")
    assert result.exit_code == 2 and "Invalid value for '--results': expected a folder, got an empty value" \
        in result.output


def test_backend_option_selects_the_keras_backend(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnist_lab", "--backend", "jax", "train",
                             str(ROOT / "configs" / "logreg.yaml"), *QUICK, "--results", str(tmp_path), "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    versions = json.loads((run / "metrics.json").read_text())["versions"]
    assert versions["backend"] == "jax" and versions["backend_version"] != "not installed"
    # Another backend draws other initial weights from the same seed: another experiment, another run.
    again = invoke("train", ROOT / "configs" / "logreg.yaml", *QUICK, "--results", tmp_path, "-q")
    assert again.exit_code == 0 and "Already trained" not in again.output
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_a_backend_that_is_not_installed_is_named(tmp_path):
    import importlib.util

    missing = next(name for name in ("torch", "jax") if importlib.util.find_spec(name) is None) \
        if importlib.util.find_spec("torch") is None else None
    if missing is None:
        pytest.skip("torch is installed here: no backend to miss")
    result = subprocess.run([sys.executable, "-m", "mnist_lab", "--backend", missing, "train",
                             str(ROOT / "configs" / "logreg.yaml"), "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 2
    assert f"Error: backend {missing}: the {missing} package is not installed; pip install 'mnist-lab[{missing}]'" \
        in result.stderr
    for command in (["runs", "--results", str(tmp_path)], ["configs"]):  # they read files only: no backend
        listed = subprocess.run([sys.executable, "-m", "mnist_lab", "--backend", missing, *command],
                                capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr


def test_more_field_inputs_are_one_line_and_exit_2(tmp_path):
    """A config whose file name would make a hidden run, a link to nothing as --copy's folder,
    an ellipse no figure can draw, a file where the live TensorBoard log goes, a huge or escaping
    option value: each refused before any work, with one bounded, escaped line."""
    hidden = tmp_path / ".logreg.yaml"
    hidden.write_bytes((ROOT / "configs" / "logreg.yaml").read_bytes())
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    quick = ["--set", "data.train_limit=300", "--set", "training.epochs=1", "--results", str(tmp_path / "r")]
    from mnist_lab.core.config import load_config
    from mnist_lab.training.run import run_log_folder

    log = run_log_folder(tmp_path / "r", "logreg", load_config(ROOT / "configs" / "logreg.yaml", [
        "data.train_limit=300", "training.epochs=1"], environ={}))
    log.parent.mkdir(parents=True)
    log.write_text("")
    cases = [(["train", str(hidden)], "the file's name '.logreg' labels its results"),
             (["configs", "--copy", str(tmp_path / "dangling")], "is a link to nothing"),
             (["visualize", "--ellipse-stds", "1e300", "--sources", "raw", "--results", str(tmp_path / "v")],
              "--ellipse-stds 1e+300: expected a number > 0 and at most 10"),
             (["visualize", "--seed", str(2**32 - 1), "--runs", "2", "--sources", "raw", "--results", str(tmp_path / "v")],
              "--seed 4294967295 with --runs 2: the runs' seeds 4294967295 … 4294967296 go past 4,294,967,295"),
             (["train", "logreg", *quick], f"{log} is a file, expected a folder"),
             (["train", "logreg", "--set", "x" * 100_000 + "=1"], "characters)"),
             (["train", "logreg", "--set", "a\x1b]0;title\x07\nforged=1"], "a\\x1b]0;title\\x07\\nforged")]
    for args, expected in cases:
        result = CliRunner().invoke(cli.main, args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output and len(result.output.splitlines()) == 1, result.output
        assert len(result.output) < 1000 and "\x1b" not in result.output
    assert not (tmp_path / "v" / "embeddings").exists()
