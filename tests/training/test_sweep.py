import csv
import dataclasses
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_lab import cli
from mnist_lab.core import versions
from mnist_lab.core.backends import compute_threads
from mnist_lab.core.config import load_config
from mnist_lab.core.data import prepare
from mnist_lab.core.errors import ConfigError
from mnist_lab.core.sweep_plan import load_sweep, trajectories
from mnist_lab.results.checkpoints import Checkpoint, CheckpointFolder
from mnist_lab.results.store import SweepLocked, sweep_folder, sweep_lock
from mnist_lab.training.sweep import SweepCheckpoints, run_sweep
from mnist_lab.training.fit import fit_model, new_model
from mnist_lab.core.describe import describe_cell
from mnist_lab.training.run import train
from mnist_lab.core.output import Output, silent
from mnist_lab.analysis.sweep_tables import write_sweep_report

from conftest import ROOT, default_sigint, in_this_process, without_timings, write_config

QUICK = ("data.train_limit=1000", "data.test_limit=200")
QUICK_OPTIONS = [option for override in QUICK for option in ("--set", override)]
QUIET = {"output": Output(log=silent, progress=False)}
# A sweep as the command runs it: its tables written at the end.
SWEEP = {**QUIET, "write_tables": lambda folder, experiments: write_sweep_report(folder, experiments, log=silent)}


def tiny_sweep(folder, grid="epochs: [1, 2]", seeds="[0, 1]", config=ROOT / "configs" / "logreg.yaml", name="tiny"):
    return write_config(folder, f"name: {name}\nseeds: {seeds}\nmodels:\n  - config: {config}\n"
                                f"    batch_size: [100]\n    {grid}\n", name=f"{name}.yaml")


def test_lab_sweep_covers_every_cell_of_the_lab_table():
    sweep = load_sweep(ROOT / "configs" / "sweep.yaml")
    settings = {(cell.name, cell.config.training.batch_size, cell.config.training.epochs, cell.config.training.learning_rate)
                for cell in sweep.cells}
    from mnist_lab.analysis.lab import LAB_RESULTS

    assert {(model, *rest) for model, *rest in LAB_RESULTS} <= settings
    assert len(sweep.cells) == 5 * (9 + 3 + 1)  # logreg 3x3, mlp 3 rates, cnn 1; five seeds each
    assert {cell.config.seed for cell in sweep.cells} == {0, 1, 2, 3, 4}
    # Epoch sharing: one training per (model, batch size, learning rate, seed).
    assert len(trajectories(sweep.cells)) == 5 * (3 + 3 + 1)
    full = load_sweep(ROOT / "configs" / "sweep-full.yaml")
    assert len(full.cells) == 3 * 3 * 27 and len(trajectories(full.cells)) == 3 * 3 * 9


def test_axes_left_out_keep_the_base_value_and_duplicates_collapse(tmp_path):
    path = write_config(tmp_path, f"models:\n  - config: {ROOT / 'configs' / 'mlp.yaml'}\n"
                                  "    learning_rate: [0.2, 0.2, 1e-1]\n", name="s.yaml")
    sweep = load_sweep(path, ["training.epochs=3"])
    assert sweep.name == "s"
    assert [(cell.config.training.batch_size, cell.config.training.epochs, cell.config.training.learning_rate, cell.config.seed)
            for cell in sweep.cells] == [(300, 3, rate, seed) for seed in (0, 1, 2) for rate in (0.2, 0.1)]


def test_sweep_validation_names_file_and_field(tmp_path):
    path = write_config(tmp_path, f"""
models:
  - config: {ROOT / 'configs' / 'logreg.yaml'}
    batch_size: [0, 300]
    epoch: [10]
  - config: missing.yaml
seeds: []
""", name="bad.yaml")
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    assert caught.value.problems == [
        f"{path}: models[0].epoch: unknown field, expected one of config, batch_size, epochs, learning_rate, schedule, seeds, engine, set, chain",
        f"{path}: models[0].batch_size: expected a non-empty list of integers >= 1 and <= 600000 or null, got [0, 300] (list)",
        f"{path}: seeds: expected a non-empty list of integers >= 0 and <= 4294967295, got [] (list)"]
    path.write_text("models:\n  - config: missing.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    assert caught.value.problems == [
        f"{path}: models[0].config: {tmp_path / 'missing.yaml'}: cannot read config: no such file"]
    result = CliRunner().invoke(cli.main, ["sweep", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.backend
def test_a_shared_trajectory_equals_separate_runs_to_the_last_bit(mnist):
    config = load_config(ROOT / "configs" / "mlp.yaml", [*QUICK, "training.batch_size=100", "training.epochs=3"],
                         environ={})
    arrays = prepare(mnist, "mlp", 1000, 200)
    captured = {}

    def capture(history):
        captured[len(history)] = (model.get_weights(), dict(history[-1]))

    model = new_model(config)
    fit_model(model, config, arrays, on_epoch=capture)
    for epochs in (1, 2):
        alone = load_config(ROOT / "configs" / "mlp.yaml",
                            [*QUICK, "training.batch_size=100", f"training.epochs={epochs}"], environ={})
        separate = fit_model(new_model(alone), alone, arrays)
        weights, row = captured[epochs]
        for shared_weight, separate_weight in zip(weights, separate.model.get_weights()):
            np.testing.assert_array_equal(shared_weight, separate_weight)
        assert (row["test_loss"], row["test_accuracy"]) == (separate.history[-1]["test_loss"],
                                                            separate.history[-1]["test_accuracy"])


@pytest.mark.backend
def test_cells_match_train_and_reruns_skip(tmp_path, mnist):
    path = tiny_sweep(tmp_path)
    sweep = load_sweep(path, QUICK)
    outcome = run_sweep(sweep, tmp_path / "results", **SWEEP)
    assert (outcome.trained, outcome.skipped, outcome.failures) == (4, 0, {})
    folder = sweep_folder(tmp_path / "results", "tiny")
    for cell in sweep.cells:
        record = json.loads((folder / "cells" / f"{cell.key}.json").read_text())
        alone = train(cell.config, cell.name, tmp_path / "runs", dataset=mnist, **QUIET).metrics
        assert (record["test_loss"], record["test_accuracy"]) == (alone["test_loss"], alone["test_accuracy"])
        assert record["epochs"] == cell.config.training.epochs and len(record["history"]) == cell.config.training.epochs
    assert {path.name for path in folder.iterdir()} >= {"cells", "table.csv", "summary.csv", "table.md", "figures"}
    again = run_sweep(sweep, tmp_path / "results", **SWEEP)
    assert (again.trained, again.skipped) == (0, 4)
    forced = run_sweep(sweep, tmp_path / "results", force=True, **SWEEP)
    assert (forced.trained, forced.skipped) == (4, 0)


def _table(folder):
    with open(folder / "table.csv") as stream:
        return without_timings(csv.DictReader(stream))


def test_sigkill_mid_sweep_then_resume_gives_the_same_table(tmp_path):
    path = tiny_sweep(tmp_path, grid="epochs: [2, 4, 6]", config=ROOT / "configs" / "mlp.yaml", name="kill")
    command = [sys.executable, "-m", "mnist_lab", "sweep", str(path), "--quiet", "--set", "data.train_limit=12000",
               "--set", "data.test_limit=500", "--set", "training.batch_size=60"]
    killed_results = tmp_path / "killed"
    cells = sweep_folder(killed_results, "kill") / "cells"
    process = subprocess.Popen([*command, "--results", str(killed_results)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(cells.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    finished = len(list(cells.glob("*.json")))
    assert 1 <= finished < 6, "the kill should land mid-sweep"
    saved = sweep_folder(killed_results, "kill") / ".checkpoints"
    mid_trajectory = bool(list(saved.glob("*.checkpoint.npz")))
    # The resume and the uninterrupted sweep in the test's process (its imports are made already):
    # what is tested is what the killed process left, not the process that reads it.
    resumed = in_this_process(command, "--results", killed_results)
    assert f"{finished} of 6 cells already done, skipped" in resumed.output
    assert ("Resuming 1 trajectory from checkpoints" in resumed.output) == mid_trajectory
    assert not saved.exists()
    clean_results = tmp_path / "clean"
    in_this_process(command, "--results", clean_results)
    assert _table(sweep_folder(killed_results, "kill")) == _table(sweep_folder(clean_results, "kill"))


def test_bad_data_of_one_base_config_fails_the_sweep_up_front(tmp_path, tiny_arrays):
    data_path = tmp_path / "later.npz"
    bad = write_config(tmp_path, f"name: mixed\nseeds: [0]\nmodels:\n  - config: base.yaml\n"
                                 f"  - config: {ROOT / 'configs' / 'logreg.yaml'}\n    epochs: [1]\n", name="mixed.yaml")
    write_config(tmp_path, f"model: {{type: logreg}}\ntraining: {{epochs: 1}}\ndata: {{path: {data_path}}}\n",
                 name="base.yaml")
    runner = CliRunner()
    # Bad data is bad input: found before any training, exit 2, nothing written.
    result = runner.invoke(cli.main, ["sweep", str(bad), "--results", str(tmp_path / "r"), "-q", *QUICK_OPTIONS])
    assert result.exit_code == 2, result.output
    assert f"Error: {data_path}: no such file or folder" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()
    np.savez(data_path, **tiny_arrays)
    retry = runner.invoke(cli.main, ["sweep", str(bad), "--results", str(tmp_path / "r"), "-q", *QUICK_OPTIONS])
    assert retry.exit_code == 0, retry.output
    assert "2 cells trained, 0 skipped, 0 failed" in retry.output


def test_diverging_cell_is_stopped_and_recorded(tmp_path):
    path = tiny_sweep(tmp_path, grid="epochs: [1, 3]\n    learning_rate: [1.0e+38]", seeds="[0]", name="nan",
                      config=ROOT / "configs" / "mlp.yaml")
    outcome = run_sweep(load_sweep(path, QUICK), tmp_path, **SWEEP)
    assert len(outcome.failures) == 2
    assert all("training diverged: the loss became nan in epoch 1" in message
               for message in outcome.failures.values())


def test_a_second_sweep_on_the_same_folder_refuses(tmp_path):
    path = tiny_sweep(tmp_path)
    sweep = load_sweep(path, QUICK)
    with sweep_lock(sweep_folder(tmp_path, "tiny")):
        with pytest.raises(SweepLocked, match=r"tiny is being written by another sweep \(pid \d+\); wait"):
            run_sweep(sweep, tmp_path, **SWEEP)
        result = CliRunner().invoke(cli.main, ["sweep", str(path), "--results", str(tmp_path)])
        assert result.exit_code == 1 and "is being written by another sweep" in result.output


def test_dry_run_lists_cells_and_trains_nothing(tmp_path):
    path = tiny_sweep(tmp_path)
    result = CliRunner().invoke(cli.main, ["sweep", str(path), "--dry-run", "--results", str(tmp_path / "r")])
    assert result.exit_code == 0
    assert result.output.count("todo  logreg batch 100") == 4
    assert "4 cells, 4 to train; estimated time" in result.output
    assert not (tmp_path / "r").exists()


def test_damaged_and_stale_cells_are_named_redone_or_rekeyed(tmp_path):
    path = tiny_sweep(tmp_path)
    sweep = load_sweep(path, QUICK)
    folder = sweep_folder(tmp_path, "tiny")
    run_sweep(sweep, tmp_path, **SWEEP)
    table = _table(folder)
    cells = sorted((folder / "cells").glob("*.json"))
    cells[0].write_text(cells[0].read_text()[:200])  # truncated by a full disk, say
    record = json.loads(cells[1].read_text())
    stale = folder / "cells" / "logreg-0123abcd.json"  # as an older identity scheme named it
    stale.write_text(json.dumps({**record, "key": "logreg-0123abcd"}))
    cells[1].unlink()
    (folder / "cells" / "logreg-ffffffffffff.json").write_text("[]")  # not a record at all
    for command in (["--report-only"], ["--dry-run"]):
        result = CliRunner().invoke(cli.main, ["sweep", str(path), *QUICK_OPTIONS, "--results", str(tmp_path),
                                               *command])
        assert result.exit_code == 0, result.output
        assert f"Warning: damaged result, treated as not done: {cells[0]}: not valid JSON" in result.output
        assert "logreg-ffffffffffff.json: expected a JSON object, got list" in result.output
    assert "3 cells, 1 to train" not in result.output and "4 cells, 1 to train" in result.output
    lines = []
    outcome = run_sweep(sweep, tmp_path, output=Output(log=lines.append, progress=False),
                        write_tables=SWEEP["write_tables"])
    assert (outcome.skipped, outcome.trained) == (3, 1)
    assert not stale.exists() and cells[1].exists() and json.loads(cells[1].read_text())["key"] == cells[1].stem
    assert _table(folder) == table


def test_dry_run_estimates_from_cells_of_the_same_kind(tmp_path):
    """After a slice sweep, the full-data estimate uses the built-in speeds, and the slice's
    estimate its own measured ones: never the last cell read."""
    from mnist_lab.results.store import read_cells
    from mnist_lab.training.estimates import (BUILT_IN_BATCH, LOOP_SHARE, MEASURED_EPOCH_SECONDS, START_SECONDS,
                                              STEP_SECONDS, TRAJECTORY_OVERHEAD_SECONDS, run_seconds, sweep_seconds)

    def built_in(images, batch):  # an epoch at the built-in speed, its steps beyond the lab's batch's counted
        steps = math.ceil(images / batch) - math.ceil(images / BUILT_IN_BATCH)
        return MEASURED_EPOCH_SECONDS["logreg"] * images / 60000 + steps * STEP_SECONDS

    path = tiny_sweep(tmp_path, seeds="[0]")
    run_sweep(load_sweep(path, QUICK), tmp_path, **SWEEP)
    records = list(read_cells(sweep_folder(tmp_path, "tiny")).records.values())
    full = sweep_seconds(load_sweep(path).cells, records)
    batch = load_sweep(path).cells[0].config.training.batch_size
    assert full.seconds == pytest.approx(TRAJECTORY_OVERHEAD_SECONDS + built_in(60000, batch) * 2)
    assert full.basis.startswith("0 of 1 trainings at the speeds of this results folder") and "1 at built-in" in full.basis
    measured = np.median([record["seconds_per_epoch"] for record in records])
    sliced = sweep_seconds(load_sweep(path, QUICK).cells, records)
    assert sliced.seconds == pytest.approx(TRAJECTORY_OVERHEAD_SECONDS + measured * 2)
    assert sliced.basis.startswith("1 of 1 trainings at the speeds") and "built-in" not in sliced.basis
    # Measured with other compute threads (another machine, another worker layout): not this speed.
    assert sweep_seconds(load_sweep(path, QUICK).cells, records, threads=99).seconds != pytest.approx(sliced.seconds)
    other_batch = load_sweep(path, [*QUICK, "training.batch_size=50"])
    other_batch = dataclasses.replace(other_batch, cells=tuple(
        dataclasses.replace(cell, config=dataclasses.replace(cell.config, training=dataclasses.replace(
            cell.config.training, batch_size=50))) for cell in other_batch.cells))
    assert sweep_seconds(other_batch.cells, records).seconds == pytest.approx(
        TRAJECTORY_OVERHEAD_SECONDS + built_in(1000, 50) * 2)
    assert built_in(60000, 10) > 8 * built_in(60000, 300)  # 6,000 steps an epoch, not 200
    # The whole command: start-up and files, and each loop its steps x the share runs measured
    # (sweep cells do not record it: the built-in share), else the built-in one.
    assert sliced.in_all == pytest.approx(START_SECONDS + sliced.seconds * LOOP_SHARE)
    config = load_sweep(path, QUICK).cells[0].config
    run = {**records[0], "wall_seconds": 2.5 * sum(records[0]["epoch_seconds"])}  # as a train run records it
    assert run_seconds(config, 2, [run]).loop_share == pytest.approx(2.5)
    assert run_seconds(config, 2, [run], threads=99).loop_share == LOOP_SHARE  # another speed class


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_sweep_keeps_only_whole_cells_and_resumes(tmp_path, signum, code):
    path = tiny_sweep(tmp_path, grid="epochs: [2, 4, 6]", config=ROOT / "configs" / "mlp.yaml", name="stop")
    command = [sys.executable, "-m", "mnist_lab", "sweep", str(path), "--quiet", "--set", "data.train_limit=12000",
               "--set", "data.test_limit=500", "--set", "training.batch_size=60", "--results", str(tmp_path)]
    cells = sweep_folder(tmp_path, "stop") / "cells"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list(cells.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signum)
    assert process.wait(timeout=60) == code
    assert ("Terminated" if signum == signal.SIGTERM else "Interrupted") in process.stderr.read()
    finished = list(cells.glob("*.json"))
    assert 1 <= len(finished) < 6 and not list(cells.parent.rglob("*.tmp"))
    assert all(json.loads(cell.read_text())["key"] == cell.stem for cell in finished)
    assert f"{len(finished)} of 6 cells already done" in in_this_process(command).output


def test_kept_cells_made_with_other_versions_are_noted(tmp_path):
    path = tiny_sweep(tmp_path, seeds="[0]")
    sweep = load_sweep(path, QUICK)
    run_sweep(sweep, tmp_path, **SWEEP)
    cell = next((sweep_folder(tmp_path, "tiny") / "cells").glob("*.json"))
    record = json.loads(cell.read_text())
    record["versions"]["keras"] = "0.0.1"
    cell.write_text(json.dumps(record))
    lines = []
    outcome = run_sweep(sweep, tmp_path, output=Output(log=lines.append, progress=False),
                        write_tables=SWEEP["write_tables"])
    assert outcome.skipped == 2
    assert any(line.startswith("Note: kept cells made with other versions than those installed: keras 0.0.1 → ")
               and line.endswith("(1 cells); --force reruns them with the installed ones") for line in lines)


def test_a_checkpoint_that_cannot_be_continued_is_said_to_start_over_even_quietly(tmp_path):
    sweep = load_sweep(tiny_sweep(tmp_path, seeds="[0]"), QUICK)
    (group,) = trajectories(sweep.cells)
    key = SweepCheckpoints.key(group)
    history = [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0, "test_accuracy": 0.5,
                "train_seconds": 0.25}]
    CheckpointFolder(sweep_folder(tmp_path, "tiny")).save(key, Checkpoint(
        key, history, [np.zeros((3, 3), np.float32)], [], versions.installed("tensorflow"), compute_threads()).to_bytes())
    said, told = [], []
    outcome = run_sweep(sweep, tmp_path, output=Output(log=said.append, warn=told.append, progress=False))
    assert outcome.trained == 2 and [line for line in said if "starting over" in line] == []
    assert told == ["Note: starting over, not resuming after epoch 1: its checkpoint was made with another "
                    "model's weights (other shapes)"]


def test_a_file_where_the_sweep_needs_a_folder_is_bad_input(tmp_path):
    path = tiny_sweep(tmp_path)
    (tmp_path / "r" / "sweeps" / "tiny").mkdir(parents=True)
    (tmp_path / "r" / "sweeps" / "tiny" / "cells").write_text("")
    result = CliRunner().invoke(cli.main, ["sweep", str(path), *QUICK_OPTIONS, "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert f"{tmp_path / 'r' / 'sweeps' / 'tiny' / 'cells'} is a file, expected a folder" in result.output


@pytest.mark.backend
def test_a_chain_is_one_training_whose_cells_equal_separate_continued_runs(tmp_path, mnist):
    path = write_config(tmp_path, f"name: chain\nseeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                                  "    chain:\n      - {batch_size: 100, epochs: 2}\n"
                                  "      - {batch_size: 250, epochs: 1, learning_rate: 0.2}\n", name="chain.yaml")
    sweep = load_sweep(path, QUICK)
    first, second = sweep.cells
    assert (first.config.continues, second.config.continues) == ((), (first.config.training,))
    assert (second.config.training.batch_size, second.config.training.epochs, second.config.training.learning_rate) == (250, 1, 0.2)
    assert [len(group) for group in trajectories(sweep.cells)] == [2]  # the first cell is on the way
    assert run_sweep(sweep, tmp_path / "results", **SWEEP).trained == 2
    folder = sweep_folder(tmp_path / "results", "chain")
    for cell in sweep.cells:
        record = json.loads((folder / "cells" / f"{cell.key}.json").read_text())
        alone = train(cell.config, cell.name, tmp_path / "runs", dataset=mnist, **QUIET).metrics
        assert (record["test_loss"], record["test_accuracy"]) == (alone["test_loss"], alone["test_accuracy"])
        assert record["epochs"] == len(record["history"]) == cell.config.training.epochs
    again = train(second.config, second.name, tmp_path / "again", dataset=mnist, **QUIET).metrics
    assert (again["test_loss"], again["test_accuracy"]) == (alone["test_loss"], alone["test_accuracy"])
    assert first.key != second.key and "after 100x2 lr 0.5" in describe_cell(second)
    headings = [line for line in (folder / "table.md").read_text().splitlines() if line.startswith("## ")]
    assert headings == ["## logreg", "## logreg, after 100x2 lr 0.5"]  # the reference setting: no suffix


def test_chains_share_trainings_only_along_the_same_stages(tmp_path):
    notebook = load_sweep(ROOT / "configs" / "sweep-notebook.yaml")
    assert len(notebook.cells) == 25 and [len(group) for group in trajectories(notebook.cells)] == [5] * 5
    lab = load_sweep(ROOT / "configs" / "sweep.yaml", ["training.epochs=10"])
    fresh = next(cell for cell in lab.cells if cell.config.training.batch_size == 300 and cell.config.training.epochs == 10
                 and cell.name == "logreg" and cell.config.seed == 0)
    assert fresh.key == notebook.cells[0].key  # the chain's first stage is the fresh model
    forked = write_config(tmp_path, f"seeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                                    "    chain: [{epochs: 2}, {batch_size: 400}]\n"
                                    f"  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                                    "    chain: [{epochs: 2}, {batch_size: 500}]\n", name="forked.yaml")
    cells = load_sweep(forked).cells
    assert len(cells) == 3  # the shared first stage is one cell
    assert sorted(len(group) for group in trajectories(cells)) == [1, 2]  # the fork trains twice
    both = write_config(tmp_path, f"models:\n  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                                  "    epochs: [1, 2]\n    chain: [{epochs: 2}]\n", name="both.yaml")
    with pytest.raises(ConfigError, match=r"models\[0\]\.chain: expected no batch_size, epochs, learning_rate or schedule"):
        load_sweep(both)


def test_a_grid_sets_fields_of_its_base_config(tmp_path):
    path = write_config(tmp_path, f"seeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'cnn.yaml'}\n"
                                  "    set: [model.conv_activation=relu, 'model.conv_filters=[32]', data.scaled=false]\n"
                                  f"  - config: {ROOT / 'configs' / 'cnn.yaml'}\n", name="variants.yaml")
    variant, plain = load_sweep(path, ["training.epochs=2"]).cells
    assert (variant.config.model.conv_activation, variant.config.model.conv_filters, variant.config.data.scaled) == (
        "relu", (32,), False)
    assert variant.config.training.epochs == 2 and variant.key != plain.key
    assert describe_cell(variant).startswith("cnn [conv_activation relu, conv_filters [32], unscaled pixels] batch")
    assert describe_cell(plain).startswith("cnn batch 300")
    wins = load_sweep(path, ["model.conv_activation=tanh"]).cells[0]
    assert wins.config.model.conv_activation == "tanh"  # --set on the command line wins
    bad = write_config(tmp_path, f"models:\n  - config: {ROOT / 'configs' / 'cnn.yaml'}\n"
                                 "    set: [model.conv_activation=foo]\n", name="bad.yaml")
    with pytest.raises(ConfigError) as caught:
        load_sweep(bad)
    assert caught.value.problems == [f"{bad}: models[0].config: models[0].set: model.conv_activation: expected one "
                                     f"of sigmoid, relu, tanh, elu, gelu, selu, softplus, swish, got 'foo' (str)"]


def test_a_renamed_base_config_is_the_same_experiment(tmp_path):
    """The experiment, not the base config's file name, finds a cell: a renamed copy of the
    config trains nothing again, and the tables keep every cell."""
    run_sweep(load_sweep(tiny_sweep(tmp_path), QUICK), tmp_path / "results", **SWEEP)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "my-logreg.yaml").write_bytes((ROOT / "configs" / "logreg.yaml").read_bytes())
    sweep = load_sweep(tiny_sweep(renamed, config=renamed / "my-logreg.yaml"), QUICK)
    again = run_sweep(sweep, tmp_path / "results", **SWEEP)
    assert (again.trained, again.skipped) == (0, 4)
    assert len(_table(sweep_folder(tmp_path / "results", "tiny"))) == 4


def test_two_base_configs_of_one_experiment_make_one_cell(tmp_path):
    copy = tmp_path / "copy.yaml"
    copy.write_bytes((ROOT / "configs" / "logreg.yaml").read_bytes())
    path = write_config(tmp_path, f"name: twice\nseeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                                  f"    epochs: [1]\n  - config: {copy}\n    epochs: [1]\n", name="twice.yaml")
    assert len(load_sweep(path, QUICK).cells) == 1


def test_schedules_are_an_axis_and_share_trainings_only_where_the_length_leaves_the_steps(tmp_path):
    path = write_config(tmp_path, f"seeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                                  "    epochs: [2, 3]\n"
                                  "    schedule: [{type: constant}, {type: exponential}, {type: cosine}]\n",
                        name="schedules.yaml")
    cells = load_sweep(path).cells
    assert len(cells) == 6 and len({cell.key for cell in cells}) == 6
    sizes = {group[0].config.training.schedule.type: len(group) for group in trajectories(cells)
             if len(group) == 2}
    assert sizes == {"constant": 2, "exponential": 2}  # cosine's 2 and 3 epochs are two trainings
    assert len(trajectories(cells)) == 4
    assert "lr 0.5 exponential x0.8 per epoch seed 0" in describe_cell(cells[2])
    bad = write_config(tmp_path, f"models:\n  - config: {ROOT / 'configs' / 'logreg.yaml'}\n"
                                 "    schedule: [{type: cosine, every: 2}]\n", name="bad.yaml")
    with pytest.raises(ConfigError, match=r"models\[0\]: training\.schedule\.every: expected no every for schedule "
                                          r"type cosine \(it takes final\)"):
        load_sweep(bad)


def test_a_sweep_file_names_a_built_in_config_unless_a_file_beside_it_has_that_name(tmp_path):
    path = write_config(tmp_path, "seeds: [0]\nmodels:\n  - config: logreg\n  - config: mlp.yaml\n", name="named.yaml")
    cells = load_sweep(path).cells
    assert [(cell.name, cell.config.model.type) for cell in cells] == [("logreg", "logreg"), ("mlp", "mlp")]
    write_config(tmp_path, "model: {type: mlp}\ntraining: {epochs: 3}\n", name="logreg")  # a file beside wins
    assert load_sweep(path).cells[0].config.model.type == "mlp"
    missing = write_config(tmp_path, "models:\n  - config: lgoreg.yaml\n", name="missing.yaml")
    with pytest.raises(ConfigError, match=r"models\[0\]\.config: .*lgoreg\.yaml: cannot read config: no such file"):
        load_sweep(missing)
