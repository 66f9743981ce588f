"""Searches with the real Optuna and its real SQLite storage, on small slices."""

import csv
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import sqlalchemy
from click.testing import CliRunner

from mnist_lab import cli
from mnist_lab.analysis.search_tables import write_search_views
from mnist_lab.core.config import load_config
from mnist_lab.core.errors import UsageError
from mnist_lab.core.output import Output, silent
from mnist_lab.core.search_plan import load_search
from mnist_lab.results import store
from mnist_lab.results.checkpoints import CheckpointFolder
from mnist_lab.results.catalog import rows
from mnist_lab.training import search as search_module
from mnist_lab.training.run import train
from mnist_lab.training.search import SearchOutcome, finished_trials, lock_name, open_study, run_search
from mnist_lab.training.sweep import SweepCheckpoints

from conftest import (default_sigint, descendants_alive, in_this_process, other_cpu_kernels, without_timings,
                      write_config)
from dask_processes import RealCluster
from postgres_server import PostgresServer

QUIET = Output(log=silent, progress=False)
SLICE = "[data.train_limit=600, data.test_limit=200]"
# Epochs slow enough (batches of 10) for a kill or a stopped server to land inside a trial.
SLOW = "[data.train_limit=1500, data.test_limit=200, training.batch_size=10]"


def search_file(folder, name="look", space="training.learning_rate: {low: 0.05, high: 1.0, log: true}",
                extra="trials: 3\n", config="logreg", epochs="{choices: [2]}", data=SLICE):
    return write_config(folder, f"name: {name}\nconfig: {config}\nset: {data}\nvalidation: 200\n{extra}space:\n"
                                f"  {space}\n  training.epochs: {epochs}\n", name=f"{name}.yaml")


def states(study) -> list:
    return [trial.state.name for trial in study.trials]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    search = load_search(search_file(folder))
    outcome = run_search(search, folder / "results", output=QUIET,
                         write_views=lambda where, study: write_search_views(where, study, search))
    return search, folder / "results", outcome


def test_a_search_runs_its_trials_on_the_validation_split(searched):
    search, results, outcome = searched
    assert states(outcome.study) == ["COMPLETE"] * 3 and outcome.ran == 3
    for trial in outcome.study.trials:
        (key,) = trial.user_attrs["cells"]
        record = store.validated_record(store.cell_path(outcome.folder, key), store.CELL_FIELDS)
        # Chosen on the held-out training images, never on the test set.
        assert trial.value == record["validation_accuracy"] != record["test_accuracy"]
        assert record["data"]["validation_images"] == 200 and record["data"]["train_images"] == 600
        assert [row["epoch"] for row in record["history"]] == sorted(trial.intermediate_values)
        assert record["config"]["training"]["learning_rate"] == trial.params["training.learning_rate"]
    with open(outcome.folder / "trials.csv") as stream:
        table = list(csv.DictReader(stream))
    assert [row["state"] for row in table] == ["complete"] * 3
    assert {row["host"] for row in table} == {socket.gethostname()}  # where its cells are (a shared study's trials)
    assert {float(row["value"]) for row in table} == {trial.value for trial in outcome.study.trials}
    best = load_config(outcome.folder / "best.yaml")  # the best trial's config, ready to train
    assert best.training.learning_rate == outcome.study.best_params["training.learning_rate"]
    assert best.data.validation == 200
    assert "(the test set was not used to choose it)" in (outcome.folder / "trials.md").read_text()
    assert {path.name for path in (outcome.folder / "figures").glob("*.png")} == {
        "optimization_history.png", "parallel_coordinate.png", "slice.png"}
    # Trials are listed as results, and logged for TensorBoard.
    listed = [row for row in rows(results) if row["kind"] == "trial"]
    assert len(listed) == 3 and {row["sweep"] for row in listed} == {"look"}
    assert all(row["validation_accuracy"] is not None for row in listed)
    assert len(list((results / "tensorboard" / "searches" / "look").iterdir())) == 3


def test_the_views_are_the_same_bytes_when_made_again(searched, tmp_path):
    """Made again from the stored study, here and in a process computing on other CPU kernels
    (the fANOVA importances, the figures)."""
    search, results, outcome = searched
    names = ["trials.csv", "trials.md", "best.yaml", "importances.csv", *(f"figures/{name}.png" for name in (
        "optimization_history", "parallel_coordinate", "slice"))]
    before = {name: (outcome.folder / name).read_bytes() for name in names}
    study = open_study(search, outcome.folder, create=False)  # read back from the storage
    write_search_views(outcome.folder, study, search)
    assert before == {name: (outcome.folder / name).read_bytes() for name in before}
    copy = shutil.copytree(outcome.folder, tmp_path / "copy")
    for name in names:
        (copy / name).unlink()
    program = ("import sys\nfrom pathlib import Path\n"
               "from mnist_lab.analysis.search_tables import write_search_views\n"
               "from mnist_lab.core.search_plan import load_search\nfrom mnist_lab.training.search import open_study\n"
               "search, folder = load_search(sys.argv[1]), Path(sys.argv[2])\n"
               "write_search_views(folder, open_study(search, folder, create=False), search)\n")
    subprocess.run([sys.executable, "-c", program, str(results.parent / "look.yaml"), str(copy)], check=True,
                   env={**os.environ, **other_cpu_kernels()})
    assert before == {name: (copy / name).read_bytes() for name in before}


def test_a_dry_run_of_a_search_that_holds_its_budget_says_nothing_is_left(searched):
    _, results, _ = searched
    result = CliRunner().invoke(cli.main, ["search", str(results.parent / "look.yaml"), "--results", str(results),
                                           "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "3 finished in the study so far" in result.output and "Estimated time" not in result.output
    assert "Nothing left to run: the study holds its budget (raise it with --trials)" in result.output


@pytest.mark.parametrize("space, options, expected", [
    ("training.learning_rate: {low: 0.05, high: 0.5, log: true}", [],
     "training.learning_rate: float 0.05 1.0 step None log True -> float 0.05 0.5 step None log True"),
    (None, ["--set", "data.train_limit=700"],
     "the base config or data, which the space does not search (data.train_limit: 600 -> 700)")])
def test_a_search_of_the_same_name_with_other_trials_is_refused_its_study(searched, tmp_path, space, options,
                                                                          expected):
    """Another search file with the same name (another space), or other data: its trials would not
    be comparable with the study's, so it is refused, not mixed in."""
    search, results, outcome = searched
    other = search_file(tmp_path, **({"space": space} if space else {}))
    before = len(outcome.study.trials)
    result = CliRunner().invoke(cli.main, ["search", str(other), "--results", str(results), "--quiet", *options])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: search look: the study in ") and expected in result.output
    assert "holds the trials of another search" in result.output and len(result.output.splitlines()) == 1
    assert len(open_study(search, outcome.folder, create=False).trials) == before  # nothing added


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_dead_trial_found_once_the_budget_is_reached_is_failed_not_queued(searched, tmp_path, monkeypatch):
    """A trial whose process fell silent (another machine's, seen only by Optuna's heartbeat), found
    by a run after the study holds its budget: failed, with why, and nothing queued that no run
    would take."""
    search, results, _ = searched
    copy = shutil.copytree(results, tmp_path / "results")
    monkeypatch.setattr(search_module, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(search_module, "GRACE_SECONDS", 1)  # (SQLite's clock counts whole seconds)
    folder = store.search_folder(copy, search.name)
    study = open_study(search, folder)
    dead = study.ask()
    study._storage.record_heartbeat(dead._trial_id)  # its last sign of life
    time.sleep(2.2)
    said = []
    outcome = run_search(search, copy, output=Output(log=said.append, progress=False), event_logs=False,
                         write_views=lambda where, study: write_search_views(where, study, search))
    assert outcome.ran == 0 and states(outcome.study) == ["COMPLETE"] * 3 + ["FAIL"]
    assert ("1 trial stopped by a kill or an interrupt (here or on another machine) is not run again: the study "
            "holds its budget") in said
    with open(folder / "trials.csv") as stream:
        (row,) = [row for row in csv.DictReader(stream) if row["state"] == "fail"]
    assert row["number"] == str(dead.number) and "its process stopped answering" in row["error"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_stopped_twice_names_each_retry_in_the_table(searched, tmp_path):
    """A trial whose process died, run again, and its retry's process died too: trials.csv links
    each failed trial to the one that ran its fields again (Optuna's retry history, read from a
    study that the retries did not alter in memory)."""
    search, results, _ = searched
    search = dataclasses.replace(search, trials=5)
    copy = shutil.copytree(results, tmp_path / "results")
    folder = store.search_folder(copy, search.name)
    study = open_study(search, folder)
    numbers = []
    for _ in range(2):  # a trial (then its retry) whose process ended: its lock is there, held by no one
        trial = study.ask()
        numbers.append(trial.number)
        (folder / store.RUNNING_FOLDER / lock_name(trial.number)).touch()
        assert search_module.retry_stopped_trials(study, folder, search) == (1, 0)
    write_search_views(folder, study, search)
    with open(folder / "trials.csv") as stream:
        errors = {int(row["number"]): row["error"] for row in csv.DictReader(stream)}
    first, second = numbers
    waiting = max(errors)
    assert errors[first] == f"its process ended (killed or interrupted); run again as trial {second}"
    assert errors[second] == f"its process ended (killed or interrupted); run again as trial {waiting}"
    assert errors[waiting] == f"runs trial {second}'s fields again"
    assert (f"| {first} | fail: its process ended (killed or interrupted); run again as trial {second} |"
            in (folder / "trials.md").read_text())


def test_the_best_trial_is_said_with_the_trials_within_noise_of_it(searched):
    """On 200 validation images one standard error of 80 % is 2.83 points: a trial 2 points below
    the best, or tied with it, is named; one 10 points below is not. A loss has ties only."""
    import optuna

    from mnist_lab.analysis.search_tables import best_summary

    search = searched[0]
    for objective, direction, values, expected in (
            ("validation_accuracy", "maximize", (0.80, 0.78, 0.70, 0.80),
             ". Trials 1, 3 are within one standard error of it (±2.83% on 200 validation images): the choice "
             "among them is within noise"),
            ("validation_loss", "minimize", (0.5, 0.49, 0.49), ". Trial 2 is tied with it: the choice among them is "
                                                             "within noise")):
        study = optuna.create_study(direction=direction)
        for number, value in enumerate(values):
            numbers = {"validation_accuracy": value, "validation_loss": value, "test_accuracy": 0.5, "test_loss": 1.0,
                       "cells": [f"cell-{number}"]}
            study.add_trial(optuna.trial.create_trial(value=value, user_attrs=numbers))
        assert best_summary(study, dataclasses.replace(search, objective=objective)).endswith(expected)
        # A trial answered by the best's own cell is the same experiment: not named.
        study.add_trial(optuna.trial.create_trial(value=study.best_value, user_attrs=study.best_trial.user_attrs))
        assert best_summary(study, dataclasses.replace(search, objective=objective)).endswith(expected)


def test_a_shared_studys_text_is_escaped_and_bounded_in_the_tables(searched, tmp_path):
    """A failed trial's error and host come from whichever process told the study (another machine
    of a shared one): in trials.md and trials.csv they cannot forge a row or a line, nor reach a
    terminal's escape sequences, and a long one is cut."""
    from optuna.trial import TrialState

    search, results, _ = searched
    search = dataclasses.replace(search, trials=4)
    folder = store.search_folder(shutil.copytree(results, tmp_path / "results"), search.name)
    study = open_study(search, folder)
    trial = study.ask()
    hostile = "a | b\n| 9 | complete |\x1b]52;c;aGk=\x07\x1b[2J\r" + "x" * 5000
    trial.set_user_attr("error", hostile)
    trial.set_user_attr("host", "node\x1b[31m\nred")
    study.tell(trial, state=TrialState.FAIL)
    write_search_views(folder, study, search)
    table = (folder / "trials.md").read_text()
    (line,) = [line for line in table.splitlines() if line.startswith(f"| {trial.number} |")]
    assert line.startswith(f"| {trial.number} | fail: a \\| b\\n\\| 9 \\| complete \\|\\x1b]52;c;aGk=\\x07")
    (header,) = [line for line in table.splitlines() if line.startswith("| trial |")]
    assert len(re.split(r"(?<!\\)\|", line)) == len(header.split("|"))  # no row forged, none split
    assert not re.search(r"[\x00-\x1f\x7f]", table.replace("\n", "")) and len(line) < 400
    with open(folder / "trials.csv", newline="") as stream:
        (row,) = [row for row in csv.DictReader(stream) if row["number"] == str(trial.number)]
    assert row["host"] == "node\\x1b[31m\\nred"
    assert row["error"].endswith(f"({len(hostile):,} characters)") and len(row["error"]) < 260
    assert not re.search(r"[\x00-\x1f\x7f]", row["error"])


def test_a_trial_already_in_the_store_is_answered_not_trained(tmp_path, searched, mnist):
    search = load_search(search_file(tmp_path, name="answered", space="training.learning_rate: {choices: [0.3]}",
                                     extra="trials: 1\nsampler: grid\n"))
    (cell,) = search.cells({"training.learning_rate": 0.3, "training.epochs": 2})
    run = train(cell.config, "logreg", tmp_path / "results", output=QUIET, dataset=mnist)
    # What a search killed after writing this cell and before removing its checkpoint leaves.
    stale = CheckpointFolder(store.search_folder(tmp_path / "results", "answered")).path(SweepCheckpoints.key([cell]))
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a checkpoint")
    told = []  # what a quiet caller reads: no trial's line (not "answered by"), only warnings
    outcome = run_search(search, tmp_path / "results", output=Output(log=silent, warn=told.append, progress=False))
    assert told == []
    (trial,) = outcome.study.trials
    assert trial.user_attrs["answered_by_0"] == f"runs/{run.run_dir.name}"
    assert trial.value == run.metrics["validation_accuracy"]
    assert not list(outcome.folder.glob("cells/*.json"))  # nothing trained again
    assert not stale.exists()  # nothing is left to train from it


def test_a_grid_search_visits_each_point_once_then_stops(tmp_path):
    """Optuna's grid sampler, made again before each trial: each point once (a point passed on a
    longer trial's way answered by its cell), the budget at most the grid's points, and a run on a
    done grid runs nothing."""
    path = search_file(tmp_path, name="grid", space="training.learning_rate: {choices: [0.1, 0.5]}",
                       extra="trials: 12\nsampler: grid\npruner: none\n", epochs="{choices: [1, 2]}")
    search = load_search(path)
    assert search.trials == 4 and search.with_budget(3, None).trials == 3
    outcome = run_search(search, tmp_path / "results", output=QUIET, event_logs=False)
    points = [tuple(trial.params.values()) for trial in outcome.study.trials]
    assert states(outcome.study) == ["COMPLETE"] * 4 and sorted(points) == [(0.1, 1), (0.1, 2), (0.5, 1), (0.5, 2)]
    trained = [trial for trial in outcome.study.trials if not any(name.startswith("answered_by_")
                                                                  for name in trial.user_attrs)]
    assert len(list(outcome.folder.glob("cells/*.json"))) == 4 and 2 <= len(trained) <= 4
    results = ["--results", str(tmp_path / "results")]
    again = CliRunner().invoke(cli.main, ["search", str(path), *results, "-q", "--trials", "40"])
    assert again.exit_code == 0 and "4 trials already finished in the study; no more to run" in again.output
    assert len(open_study(search, outcome.folder, create=False).trials) == 4
    dry = CliRunner().invoke(cli.main, ["search", str(path), *results, "--dry-run"])
    assert "Budget: 4 trials; 4 finished in the study so far\nNothing left to run: every point of the grid is visited" \
        in dry.output


def test_a_grid_whose_point_fails_is_done_once_every_point_is_visited(tmp_path):
    """The NumPy engine takes sigmoid only: that point fails, and would fail again; the grid is
    done, said so, not a budget left to reach on every run."""
    path = write_config(tmp_path, "name: gridfail\nconfig: mlp\nset: [data.train_limit=600, data.test_limit=200]\n"
                                  "validation: 200\nsampler: grid\npruner: none\nspace:\n"
                                  "  engine: {choices: [keras, numpy]}\n  model.activation: {choices: [relu]}\n"
                                  "  training.epochs: {choices: [1]}\n", name="gridfail.yaml")
    command = ["search", str(path), "--results", str(tmp_path / "results"), "-q", "--no-tensorboard"]
    for run in range(2):
        result = CliRunner().invoke(cli.main, command)
        assert result.exit_code == 0, result.output
        assert "Every point of the grid is visited: 1 finished, 1 failed (their errors are in trials.csv)" in result.output
        assert f"Search gridfail: {1 - run} trial{'' if run == 0 else 's'} run here, {1 - run} failed" in result.output
    dry = CliRunner().invoke(cli.main, [*command, "--dry-run"])
    assert "Nothing left to run: every point of the grid is visited" in dry.output


def test_a_trial_clearly_worse_at_an_epoch_is_pruned_and_recorded(tmp_path):
    search = load_search(search_file(tmp_path, name="prune", extra="trials: 6\n",
                                     space="training.learning_rate: {low: 0.0001, high: 1.0, log: true}"))
    folder = store.search_folder(tmp_path / "results", "prune")
    folder.mkdir(parents=True)
    study = open_study(search, folder)
    # Optuna's median pruner judges a trial once five have finished: five good ones, then a bad one.
    for rate in (0.5, 0.6, 0.7, 0.8, 0.9, 0.0001):
        study.enqueue_trial({"training.learning_rate": rate, "training.epochs": 2})
    outcome = run_search(search, tmp_path / "results", output=QUIET)
    assert states(outcome.study) == ["COMPLETE"] * 5 + ["PRUNED"]
    pruned = outcome.study.trials[-1]
    (record_path,) = (folder / "pruned").glob("*.json")
    record = store.read_pruned(record_path)
    assert record["trial"] == pruned.number and [row["epoch"] for row in record["history"]] == [1]
    assert record["history"][0]["validation_accuracy"] == pruned.intermediate_values[1]
    assert not list(folder.glob(".checkpoints/*"))  # its checkpoint removed
    assert [row["state"] for row in rows(tmp_path / "results") if row["kind"] == "trial"].count("pruned") == 1


def test_sigkill_mid_trial_then_resume_gives_the_study_of_an_uninterrupted_search(tmp_path):
    path = search_file(tmp_path, name="kill", extra="trials: 3\npruner: none\n", epochs="{choices: [1, 2]}",
                       data=SLOW)  # the kill lands inside the second trial
    command = [sys.executable, "-m", "mnist_lab", "search", str(path), "--quiet", "--no-tensorboard"]
    killed = tmp_path / "killed"
    folder = store.search_folder(killed, "kill")
    process = subprocess.Popen([*command, "--results", str(killed)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(folder.glob("cells/*.json"))) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The first trial's checkpoint goes once its cell is written; the next one is the second trial's.
    for present in (False, True):
        while bool(list(folder.glob(".checkpoints/*.npz"))) != present and time.monotonic() < deadline:
            time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    # Resumed in the test's process (its imports are made already): what the kill left is tested.
    assert "Resuming 1 trial stopped by a kill" in in_this_process(command, "--results", killed).output
    search = load_search(path)
    whole = run_search(search, tmp_path / "whole", output=QUIET, event_logs=False).study
    study = open_study(search, folder, create=False)
    finished = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    failed = [trial for trial in study.trials if trial.state.name == "FAIL"]
    asked = [trial for trial in finished if "passed_by" not in trial.user_attrs]
    assert len(asked) == 3 and len(failed) == 1 and "RUNNING" not in states(study)  # counted once
    # The same trials (those passed on a longer one's way too), the same numbers, the killed one's
    # too (resumed from its checkpoint).
    assert [(trial.params, trial.value) for trial in finished] == [(trial.params, trial.value) for trial in
                                                                  whole.trials]
    # The killed trial was run again with its fields (resumed from its checkpoint, or answered by
    # its cell when the kill came after the cell was written).
    assert failed[0].params in [trial.params for trial in finished]
    assert not list(folder.glob(".running/*")) and not list(folder.glob(".checkpoints/*"))


def test_a_trial_passes_its_shorter_epoch_counts_to_the_study_as_trials_that_cost_nothing(tmp_path):
    search = load_search(search_file(tmp_path, name="way", extra="trials: 4\nseed: 1\n", epochs="{low: 1, high: 3}"))
    study = run_search(search, tmp_path / "results", output=QUIET, event_logs=False).study
    folder = store.search_folder(tmp_path / "results", "way")
    by_number = {trial.number: trial for trial in study.trials}
    passed = [trial for trial in study.trials if "passed_by" in trial.user_attrs]
    asked = [trial for trial in study.trials if "passed_by" not in trial.user_attrs]
    assert passed and len(asked) == 4 == finished_trials(study)  # the budget counts the asked ones only

    def history(trial):  # what the trial trained: its cell's epochs, or its pruned record's
        (key,) = trial.user_attrs["cells"]
        path = store.cell_path(folder, key)
        record = store.validated_record(path, store.CELL_FIELDS) if path.is_file() else \
            store.read_pruned(folder / store.PRUNED_FOLDER / f"{key}.json")
        return record["history"]

    for trial in passed:
        longer = by_number[trial.user_attrs["passed_by"]]
        epochs = trial.params["training.epochs"]
        assert {**trial.params, "training.epochs": longer.params["training.epochs"]} == longer.params
        assert epochs < longer.params["training.epochs"] and not trial.intermediate_values  # no training of its own
        # Its cell was written as the longer training passed it: the same epochs, to the last bit.
        assert history(trial) == history(longer)[:epochs]
        assert trial.value == history(longer)[epochs - 1]["validation_accuracy"] == trial.user_attrs[
            "validation_accuracy"]
    write_search_views(folder, study, search)
    with open(folder / "trials.csv") as stream:
        marked = {int(row["number"]): row["passed_by"] for row in csv.DictReader(stream) if row["passed_by"]}
    assert marked == {trial.number: str(trial.user_attrs["passed_by"]) for trial in passed}
    assert f"| {passed[0].number} | complete, on trial {passed[0].user_attrs['passed_by']}'s way |" in (
        folder / "trials.md").read_text()
    # Every shorter epoch count a trial reached is in the study, once.
    for trial in asked:
        reached = min(len(history(trial)), trial.params["training.epochs"] - 1)
        for epochs in range(1, reached + 1):
            same = [other for other in study.trials if other.state.name == "COMPLETE"
                    and other.params == {**trial.params, "training.epochs": epochs}]
            assert len(same) == 1
            assert same[0].number < trial.number or same[0].user_attrs["passed_by"] == trial.number


def test_a_search_whose_every_trial_fails_stops_and_says_the_budget_was_not_reached(tmp_path):
    # Each value is valid alone on the base config; together (the NumPy engine with relu) never.
    path = write_config(tmp_path, "name: doomed\nconfig: mlp\nset: [data.train_limit=600, data.test_limit=200]\n"
                                  "validation: 200\ntrials: 2\nspace:\n  engine: {choices: [numpy]}\n"
                                  "  model.activation: {choices: [relu]}\n", name="doomed.yaml")
    result = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(tmp_path / "results"), "--quiet",
                                           "--no-tensorboard"])
    assert result.exit_code == 1, result.output
    assert "The budget was not reached: 0 of 2 trials finished, 10 failed" in result.output
    study = open_study(load_search(path), store.search_folder(tmp_path / "results", "doomed"), create=False)
    assert states(study) == ["FAIL"] * 10


def search_beside(path, results, storage=None) -> SearchOutcome:
    """Start ``mnist-lab search path`` in another process and, once it is inside its first trial, run
    the same search here, into ``results``: two processes adding trials to one study at once."""
    command = [sys.executable, "-m", "mnist_lab", "search", str(path), "--quiet", "--no-tensorboard",
               "--results", str(results[0]), *(["--storage", storage] if storage else [])]
    other = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = store.search_folder(results[0], load_search(path).name)
    deadline = time.monotonic() + 120
    while not list(folder.glob(".running/*.lock")) and other.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    here = run_search(load_search(path), results[1], storage=storage, output=QUIET, event_logs=False)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, out + err
    there = re.search(r"(\d+) trials? run here", out)
    assert here.ran >= 1 and there and int(there[1]) >= 1, out  # both added trials
    return here


def test_two_processes_add_trials_to_one_study(tmp_path):
    path = search_file(tmp_path, name="shared", extra="trials: 4\npruner: none\n")
    outcome = search_beside(path, [tmp_path / "results"] * 2)
    study = open_study(load_search(path), outcome.folder, create=False)  # the search folder's own SQLite file
    finished = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    # Each process stops once the study holds four; one may be finishing its own as the other counts.
    assert 4 <= len(finished) <= 5 and "RUNNING" not in states(study)
    assert len({trial.number for trial in finished}) == len(finished)
    assert all(store.cell_path(outcome.folder, trial.user_attrs["cells"][0]).is_file() for trial in finished)


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    yield server
    server.close()


@pytest.fixture
def postgres(postgres_server, request):
    """A new database on the real server, for one test."""
    return postgres_server.new_database(request.node.name.split("[")[0][-60:])


# open_study hides Optuna's "experimental" warnings with catch_warnings, which threads share.
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_machines_starting_at_once_on_a_new_database_make_its_tables_once(tmp_path, postgres):
    """Optuna makes a new database's tables on first use; machines doing so at the same moment
    collide in PostgreSQL's catalogue (a lock on one machine cannot hold the others back): each
    waits for the first one's tables instead of failing."""
    search = load_search(search_file(tmp_path))
    machines = 4
    ready = threading.Barrier(machines)

    def open_on(machine):
        ready.wait()
        return open_study(search, store.search_folder(tmp_path / f"machine-{machine}", search.name), postgres)

    with ThreadPoolExecutor(machines) as pool:
        studies = list(pool.map(open_on, range(machines)))
    assert len({study._study_id for study in studies}) == 1  # one study, which every machine opened


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_search_that_finds_the_study_just_made_waits_for_its_makers_record(tmp_path, monkeypatch):
    """Machines opening a new shared study at once: one makes it, then records its search there;
    another search of that name opening it in between waits for that record and is refused, rather
    than recording its own over it (both searches then added trials to one study)."""
    import optuna

    maker = load_search(search_file(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    other = load_search(search_file(tmp_path / "elsewhere", space="training.learning_rate: {choices: [0.1]}"))
    folder = store.search_folder(tmp_path / "results", maker.name)
    folder.mkdir(parents=True)
    url = search_module.storage_url(folder)
    made = optuna.create_study(study_name=maker.name, storage=url, direction=maker.direction)  # not recorded yet
    recording = threading.Timer(0.5, made.set_user_attr, (search_module.SEARCH_ATTR, maker.identity()))
    recording.start()
    with pytest.raises(UsageError, match="holds the trials of another search"):
        open_study(other, folder)
    recording.join()
    assert made.user_attrs[search_module.SEARCH_ATTR] == maker.identity()
    # A study that no search made (Optuna's own command line) is the first search's to open it.
    monkeypatch.setattr(search_module, "IDENTITY_WAIT_SECONDS", 0.2)
    optuna.create_study(study_name="bare", storage=url, direction=maker.direction)
    bare = dataclasses.replace(maker, name="bare")
    opened = open_study(bare, folder)
    assert opened.user_attrs[search_module.SEARCH_ATTR] == bare.identity() and opened.metric_names == [bare.objective]


def test_machines_sharing_a_study_on_postgresql_add_trials_to_it(tmp_path, postgres):
    """Two processes with results folders of their own (two machines) and one study on a real
    PostgreSQL server: the study holds the budget, each trial once, its cell on the machine that
    trained it."""
    path = search_file(tmp_path, name="machines", extra="trials: 4\npruner: none\n")
    machines = [tmp_path / "a", tmp_path / "b"]
    # A dry run looks and makes nothing, not even Optuna's tables in the new database.
    dry = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(machines[0]), "--storage", postgres,
                                        "--dry-run"])
    assert dry.exit_code == 0 and "0 finished in the study so far" in dry.output, dry.output
    engine = sqlalchemy.create_engine(postgres)
    assert sqlalchemy.inspect(engine).get_table_names() == []
    engine.dispose()
    assert not machines[0].exists()
    search_beside(path, machines, postgres)
    study = open_study(load_search(path), store.search_folder(machines[0], "machines"), postgres, create=False)
    finished = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    assert 4 <= len(finished) <= 5 and "RUNNING" not in states(study)
    assert len({trial.number for trial in finished}) == len(finished)
    for trial in finished:
        where = [machine for machine in machines if store.cell_path(store.search_folder(machine, "machines"),
                                                                     trial.user_attrs["cells"][0]).is_file()]
        assert len(where) == 1
    assert not any(store.search_folder(machine, "machines").joinpath("study.db").exists() for machine in machines)


def test_a_trial_of_a_machine_killed_mid_trial_is_run_again_by_another_through_the_heartbeat(tmp_path, postgres,
                                                                                               monkeypatch):
    """Machine A is killed (SIGKILL) inside a trial; its lock is on A, so machine B learns that the
    trial's process is gone from Optuna's heartbeat alone: B fails it and runs it again with its
    fields; the study counts it once. A, run again, finds the budget reached and leaves nothing of
    the killed trial behind (its lock, its checkpoint)."""
    path = search_file(tmp_path, name="heartbeat", extra="trials: 2\npruner: none\n", data=SLOW)
    first, second = tmp_path / "a", tmp_path / "b"
    folder = store.search_folder(first, "heartbeat")
    process = subprocess.Popen([sys.executable, "-m", "mnist_lab", "search", str(path), "--quiet",
                                "--no-tensorboard", "--results", str(first), "--storage", postgres],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(folder.glob(".checkpoints/*.npz")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    search = load_search(path)
    # The heartbeat's policy is a minute; its mechanism is what is tested: a second, not a minute.
    monkeypatch.setattr(search_module, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(search_module, "GRACE_SECONDS", 2)
    time.sleep(2.2)  # A's last heartbeat is older than the grace
    study = run_search(search, second, storage=postgres, output=QUIET, event_logs=False).study
    failed = [trial for trial in study.trials if trial.state.name == "FAIL"]
    finished = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    assert len(failed) == 1 and len(finished) == 2 and "RUNNING" not in states(study)
    assert failed[0].params in [trial.params for trial in finished]
    monkeypatch.undo()
    again = run_search(search, first, storage=postgres, output=QUIET, event_logs=False)
    assert again.ran == 0 and finished_trials(again.study) == 2
    assert not list(folder.glob(".running/*")) and not list(folder.glob(".checkpoints/*"))


def test_a_study_whose_database_stops_mid_trial_ends_the_search_and_the_same_command_resumes(tmp_path):
    """The PostgreSQL server holding the study stops while a trial trains: one Error line (no
    password, no traceback), exit 1, the trial not recorded as a failed training, its checkpoint
    and lock kept; with the server back, the same command resumes the trial from its checkpoint."""
    server = PostgresServer(tmp_path)  # its own: stopped in the middle
    try:
        path = search_file(tmp_path, name="down", extra="trials: 1\npruner: none\n", epochs="{choices: [3]}",
                           data=SLOW)
        folder = store.search_folder(tmp_path / "results", "down")
        command = [sys.executable, "-m", "mnist_lab", "search", str(path), "--quiet", "--no-tensorboard",
                   "--results", str(tmp_path / "results"), "--storage", server.url]
        beating = open_study(load_search(path), folder, server.url)._storage  # as the trial's heartbeat will
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not list(folder.glob(".checkpoints/*.npz")) and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()
        beating.record_heartbeat(0)  # a beat that fails is skipped (Optuna's thread would end with a traceback)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, out + err
        (line,) = [line for line in err.splitlines() if line.startswith("Error:")]
        assert line.startswith("Error: the study's storage (postgresql://lab@127.0.0.1:") and "stopped answering" in line
        assert "Traceback" not in err + out and not list(folder.glob("failed/*")), err
        assert list(folder.glob(".checkpoints/*.npz")) and list(folder.glob(".running/*.lock"))
        server.start()
        said = []
        study = run_search(load_search(path), tmp_path / "results", storage=server.url, event_logs=False,
                           output=Output(log=said.append, progress=False)).study
        assert "Resuming 1 trial stopped by a kill or an interrupt (from its checkpoint where one was kept)" in said
        assert any(line.startswith("trial 1: resuming after epoch") for line in said), said
        assert states(study) == ["FAIL", "COMPLETE"]
        assert not list(folder.glob(".running/*")) and not list(folder.glob(".checkpoints/*"))
    finally:
        server.close()


def test_a_search_on_a_real_cluster_losing_a_worker_gives_the_trials_a_serial_search_gives(tmp_path):
    """`dask scheduler` and two `dask worker` processes; one worker's machine is lost as the first
    cell is written (two trials training at once): the search ends with its budget, and each
    trial's numbers are those of the same fields trained in this process."""
    path = search_file(tmp_path, name="dask", extra="trials: 3\npruner: none\n", epochs="{choices: [1, 2]}")
    cluster = RealCluster(tmp_path)
    try:
        victim = cluster.add_worker()
        cluster.add_worker()
        cluster.wait_for_workers(2)
        results = tmp_path / "results"
        folder = store.search_folder(results, "dask")
        process = subprocess.Popen([sys.executable, "-m", "mnist_lab", "search", str(path), "--quiet",
                                    "--no-tensorboard", "--results", str(results), "--scheduler", cluster.address],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not list(folder.glob("cells/*.json")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        alive = process.poll() is None
        cluster.kill(victim, "machine")
        out, err = process.communicate(timeout=300)
        print(f"killed a worker's machine {'mid-search' if alive else 'after the search'}:\n{out}")
    finally:
        cluster.close()
    assert process.returncode == 0, out + err
    search = load_search(path)
    study = open_study(search, folder, create=False)
    asked = [trial for trial in study.trials if "passed_by" not in trial.user_attrs]
    assert [trial.state.name for trial in asked] == ["COMPLETE"] * 3 and "RUNNING" not in states(study)
    assert not list(folder.glob(".running/*")) and not list(folder.glob(".checkpoints/*"))
    # The same fields trained here, serially: the same numbers, epoch by epoch, to the last bit.
    serial = open_study(search, store.search_folder(tmp_path / "serial", "dask"))
    for trial in asked:
        serial.enqueue_trial(trial.params)
    run_search(search, tmp_path / "serial", output=QUIET, event_logs=False)
    for trial in study.trials:
        (key,) = trial.user_attrs["cells"]
        record = store.validated_record(store.cell_path(folder, key), store.CELL_FIELDS)
        again = store.validated_record(store.cell_path(store.search_folder(tmp_path / "serial", "dask"), key),
                                       store.CELL_FIELDS)
        assert trial.value == record["validation_accuracy"] and without_timings(record["history"]) == without_timings(
            again["history"])


def test_ctrl_c_of_a_search_on_two_local_workers_leaves_no_worker_and_a_rerun_completes_it(tmp_path):
    """`--workers 2` (a LocalCluster: two trials training at once), a real Ctrl-C to the whole
    process group as the first cell is written: exit 130, no traceback, no worker left, and each
    trial it stopped says so; the same command then holds the budget, each trial once."""
    path = search_file(tmp_path, name="ctrl", extra="trials: 4\npruner: none\n", epochs="{choices: [1, 2]}",
                       data=SLOW)
    command = [sys.executable, "-m", "mnist_lab", "search", str(path), "--quiet", "--no-tensorboard", "--results",
               str(tmp_path / "results")]
    folder = store.search_folder(tmp_path / "results", "ctrl")
    process = subprocess.Popen([*command, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=default_sigint, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(folder.glob("cells/*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    children = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err and "Interrupted" in err, out + err
    assert children and descendants_alive(children) == []
    search = load_search(path)
    stopped = [trial for trial in open_study(search, folder, create=False).trials if trial.state.name != "COMPLETE"]
    assert stopped and {(trial.state.name, trial.user_attrs.get("stopped")) for trial in stopped} == {
        ("FAIL", "interrupted")}
    in_this_process(command)  # resumed serially: a cluster resuming a trial is the real cluster's test
    study = open_study(search, folder, create=False)
    asked = [trial for trial in study.trials if trial.state.name == "COMPLETE" and "passed_by" not in trial.user_attrs]
    assert len(asked) == 4 and "RUNNING" not in states(study)
    assert all(trial.params in [again.params for again in asked] for trial in stopped)  # each run again
    for trial in study.trials:
        if trial.state.name == "COMPLETE":
            (key,) = trial.user_attrs["cells"]
            assert trial.value == store.validated_record(store.cell_path(folder, key), store.CELL_FIELDS)[
                "validation_accuracy"]
    assert not list(folder.glob(".running/*")) and not list(folder.glob(".checkpoints/*"))


def test_a_combination_valid_only_field_by_field_fails_its_trial_and_the_search_goes_on(tmp_path):
    # Each value alone is valid on the base (Keras, sigmoid); the NumPy engine with relu is not. The
    # schedule's `every` is searched only where the chosen type takes it.
    path = write_config(tmp_path, "name: combo\nconfig: mlp\nset: [data.train_limit=600, data.test_limit=200]\n"
                                  "validation: 200\ntrials: 3\nspace:\n"
                                  "  engine: {choices: [keras, numpy]}\n  model.activation: {choices: [sigmoid, relu]}\n"
                                  "  training.schedule.type: {choices: [constant, step]}\n"
                                  "  training.schedule.every: {choices: [1, 2]}\n  training.epochs: {choices: [2]}\n",
                        name="combo.yaml")
    search = load_search(path)
    study = open_study(search, store.search_folder(tmp_path / "results", "combo"))
    study.enqueue_trial({"engine": "numpy", "model.activation": "relu", "training.schedule.type": "constant",
                         "training.epochs": 2})
    outcome = run_search(search, tmp_path / "results", output=QUIET, event_logs=False)
    finished = [trial for trial in outcome.study.trials if trial.state.name == "COMPLETE"]
    failed = [trial for trial in outcome.study.trials if trial.state.name == "FAIL"]
    assert len(finished) == 3 and len(failed) >= 1  # each failed trial replaced
    assert all(trial.params["engine"] == "numpy" and trial.params["model.activation"] == "relu"
               and "expected sigmoid with engine numpy" in trial.user_attrs["error"] for trial in failed)
    for trial in finished:
        record = store.validated_record(store.cell_path(outcome.folder, trial.user_attrs["cells"][0]),
                                        store.CELL_FIELDS)
        schedule = record["config"]["training"]["schedule"]
        # A type chosen by the search starts a schedule of that type: step's factor default, every as chosen.
        assert ("training.schedule.every" in trial.params) == (schedule["type"] == "step")
        if schedule["type"] == "step":
            assert (schedule["every"], schedule["factor"]) == (trial.params["training.schedule.every"], 0.5)
