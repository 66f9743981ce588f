"""Searches with the real Optuna and its real SQLite storage, on small slices."""

import csv
import signal
import subprocess
import sys
import time

import pytest

from mnist_lab.analysis.search_tables import write_search_views
from mnist_lab.core.config import load_config
from mnist_lab.core.output import Output, silent
from mnist_lab.core.search_plan import load_search
from mnist_lab.results import store
from mnist_lab.results.catalog import rows
from mnist_lab.training.run import train
from mnist_lab.training.search import open_study, run_search

from conftest import write_config

QUIET = Output(log=silent, progress=False)
SLICE = "set: [data.train_limit=600, data.test_limit=200]\nvalidation: 200\n"


def search_file(folder, name="look", space="training.learning_rate: {low: 0.05, high: 1.0, log: true}",
                extra="trials: 3\n", config="logreg"):
    return write_config(folder, f"name: {name}\nconfig: {config}\n{SLICE}{extra}space:\n  {space}\n"
                                f"  training.epochs: {{choices: [2]}}\n", name=f"{name}.yaml")


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


def test_the_views_are_the_same_bytes_when_made_again(searched):
    search, _, outcome = searched
    names = ["trials.csv", "trials.md", "best.yaml", "importances.csv", "figures/slice.png"]
    before = {name: (outcome.folder / name).read_bytes() for name in names if (outcome.folder / name).exists()}
    study = open_study(search, outcome.folder, create=False)  # read back from the storage
    write_search_views(outcome.folder, study, search)
    assert before == {name: (outcome.folder / name).read_bytes() for name in before}


def test_a_trial_already_in_the_store_is_answered_not_trained(tmp_path, searched, mnist):
    search = load_search(search_file(tmp_path, name="answered", space="training.learning_rate: {choices: [0.3]}",
                                     extra="trials: 1\nsampler: grid\n"))
    (cell,) = search.cells({"training.learning_rate": 0.3, "training.epochs": 2})
    run = train(cell.config, "logreg", tmp_path / "results", output=QUIET, dataset=mnist)
    outcome = run_search(search, tmp_path / "results", output=QUIET)
    (trial,) = outcome.study.trials
    assert trial.user_attrs["answered_by_0"] == f"runs/{run.run_dir.name}"
    assert trial.value == run.metrics["validation_accuracy"]
    assert not list(outcome.folder.glob("cells/*.json"))  # nothing trained again


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
    # Slow enough epochs (batches of 10) for the kill to land inside the second trial.
    path = search_file(tmp_path, name="kill", extra="trials: 3\npruner: none\nset: [data.train_limit=3000, "
                       "data.test_limit=200, training.batch_size=10]\n")
    path.write_text(path.read_text().replace(SLICE.splitlines()[0] + "\n", ""))
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
    resumed = subprocess.run([*command, "--results", str(killed)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming 1 trial stopped by a kill" in resumed.stdout
    search = load_search(path)
    whole = run_search(search, tmp_path / "whole", output=QUIET, event_logs=False).study
    study = open_study(search, folder, create=False)
    finished = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    failed = [trial for trial in study.trials if trial.state.name == "FAIL"]
    assert len(finished) == 3 and len(failed) == 1 and "RUNNING" not in states(study)  # counted once
    # The same trials, the same numbers, the killed one's too (resumed from its checkpoint).
    assert [(trial.params, trial.value) for trial in finished] == [(trial.params, trial.value) for trial in
                                                                  whole.trials]
    # The killed trial was run again with its fields (resumed from its checkpoint, or answered by
    # its cell when the kill came after the cell was written).
    assert failed[0].params in [trial.params for trial in finished]
    assert not list(folder.glob(".running/*")) and not list(folder.glob(".checkpoints/*"))


def test_two_processes_add_trials_to_one_study(tmp_path):
    path = search_file(tmp_path, name="shared", extra="trials: 4\npruner: none\n")
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"  # a storage URL, as a study shared by machines names one
    command = [sys.executable, "-m", "mnist_lab", "search", str(path), "--quiet", "--no-tensorboard",
               "--results", str(tmp_path / "results"), "--storage", url]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    study = open_study(load_search(path), store.search_folder(tmp_path / "results", "shared"), url, create=False)
    assert not (store.search_folder(tmp_path / "results", "shared") / "study.db").exists()
    finished = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    # Each process stops once the study holds four; one may be finishing its own as the other counts.
    assert 4 <= len(finished) <= 5 and "RUNNING" not in states(study)
    assert len({trial.number for trial in finished}) == len(finished)
    assert all(store.cell_path(store.search_folder(tmp_path / "results", "shared"), trial.user_attrs["cells"][0])
               .is_file() for trial in finished)


def test_a_search_trains_its_trials_on_two_dask_workers(tmp_path):
    from mnist_lab.training.executors import ClusterSpec

    search = load_search(search_file(tmp_path, name="dask", extra="trials: 3\npruner: none\n"))
    outcome = run_search(search, tmp_path / "results", output=QUIET, event_logs=False,
                         cluster=ClusterSpec.create(2, None, threads_per_worker=1))
    assert states(outcome.study) == ["COMPLETE"] * 3  # two at once, never past the budget
    for trial in outcome.study.trials:  # the client alone wrote the store, as the trials came back
        record = store.validated_record(store.cell_path(outcome.folder, trial.user_attrs["cells"][0]),
                                        store.CELL_FIELDS)
        assert trial.value == record["validation_accuracy"] and record["compute_threads"] == 1
        assert sorted(trial.intermediate_values) == [1, 2]
    assert not list(outcome.folder.glob(".running/*"))


def test_a_combination_valid_only_field_by_field_fails_its_trial_and_the_search_goes_on(tmp_path):
    # Each value alone is valid on the base (Keras, sigmoid); the NumPy engine with relu is not. The
    # schedule's `every` is searched only where the chosen type takes it.
    path = write_config(tmp_path, "name: combo\nconfig: logreg\nset: [data.train_limit=600, data.test_limit=200]\n"
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
