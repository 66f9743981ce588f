import csv
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_lab import cli
from mnist_lab.analysis import sweep_tables

from conftest import cell_record, write_cells, write_config


@pytest.fixture(scope="module")
def records(mnist):
    return [cell_record(mnist, "logreg", batch, epochs, 0.5, seed, 0.92 + 0.001 * seed + 0.0001 * epochs, 0.27)
            for batch in (300, 400) for epochs in (10, 15) for seed in (0, 1, 2)]


def test_summary_is_mean_and_sample_std_with_the_labs_numbers(records, tmp_path):
    from mnist_lab.results import store

    write_cells(tmp_path, records)
    summary = sweep_tables.summarize(sweep_tables.cell_rows(store.read_cells(tmp_path).records.values()))
    assert len(summary) == 4
    first = summary[0]
    assert (first["batch_size"], first["epochs"], first["seeds"]) == (300, 10, 3)
    accuracies = [0.92 + 0.001 * seed + 0.001 for seed in (0, 1, 2)]
    assert first["test_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert first["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert (first["lab_test_loss"], first["lab_test_accuracy"]) == (0.2737, 0.9226)
    assert math.isnan(summary[3]["lab_test_accuracy"])  # batch 400, 15 epochs: not in the lab's table


def test_lab_verdict():
    # Five seeds: the interval's half-width is 3.04 std.
    assert sweep_tables.lab_verdict(0.9190, 0.0010, 5, 0.9226, 100, " pp") == "no (+0.36 pp, +1.2)"
    assert sweep_tables.lab_verdict(0.9220, 0.0010, 5, 0.9226, 100, " pp") == "yes (+0.06 pp, +0.2)"
    assert sweep_tables.lab_verdict(0.2700, 0.0030, 5, 0.2737) == "yes (+0.0037, +0.4)"
    assert sweep_tables.lab_verdict(0.92, math.nan, 1, 0.9226, 100, " pp") == "n/a, one seed (+0.26 pp)"
    assert sweep_tables.lab_verdict(0.92, 0.001, 5, math.nan) == ""


def test_report_is_a_view_of_the_cells(tmp_path, records):
    write_cells(tmp_path, records)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "logreg-continuesfresh_model_heatmap.png").write_bytes(b"a figure of an older name")
    (tmp_path / "figures" / "a folder.png").mkdir()  # not a figure: neither removed nor a crash
    os.mkfifo(tmp_path / "figures" / "a fifo.png")  # a stale name is removed without being opened
    written = sweep_tables.write_sweep_report(tmp_path)
    assert [path.name for path in (tmp_path / "figures").glob("*.png") if path not in written] == ["a folder.png"]
    names = {path.name for path in written}
    assert names == {"table.csv", "summary.csv", "table.md", "logreg_accuracy_vs_epochs.png", "logreg_heatmap.png"}
    first = {path.name: path.read_bytes() for path in written}
    with open(tmp_path / "table.csv") as stream:
        assert len(list(csv.DictReader(stream))) == len(records)
    markdown = (tmp_path / "table.md").read_text()
    assert "trained on 60,000 images and tested on 10,000" in markdown
    assert "| 300 | 10 | 0.5 | 3 | 92.20 ± 0.10 | 0.2700 ± 0.0000 | 92.26 | 0.2737 | yes (+0.06 pp, +0.1) " \
        "| no (+0.0037, +inf) | **no** | 0.50 |" in markdown  # reproduced: the accuracy and the loss both inside
    assert sweep_tables.write_sweep_report(tmp_path) == []  # up to date with the cells: nothing written
    for path in written:
        path.unlink()
    assert {path.name: path.read_bytes() for path in sweep_tables.write_sweep_report(tmp_path)} == first
    (tmp_path / "cells" / f"{records[0]['key']}.json").unlink()  # a cell fewer: made again
    assert {path.name for path in sweep_tables.write_sweep_report(tmp_path)} == names
    assert sweep_tables.write_sweep_report(tmp_path / "empty") is None


def test_slice_cells_never_pool_with_full_data_cells(tmp_path, records, mnist):
    """A --set data.train_limit sweep run into the same folder: its own rows, its own column,
    no lab numbers beside it, and the full-data rows unchanged."""
    write_cells(tmp_path, records)
    sweep_tables.write_sweep_report(tmp_path)
    with open(tmp_path / "summary.csv") as stream:
        before = {(row["batch_size"], row["epochs"]): row["test_accuracy_mean"] for row in csv.DictReader(stream)}
    sliced = [cell_record(mnist, "logreg", 300, 10, 0.5, seed, 0.85, 0.5, train_limit=5000) for seed in (0, 1, 2)]
    assert {record["key"] for record in sliced}.isdisjoint(record["key"] for record in records)
    write_cells(tmp_path, sliced)
    sweep_tables.write_sweep_report(tmp_path)
    with open(tmp_path / "summary.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert "data.train_limit" in rows[0]
    lab_rows = [row for row in rows if (row["batch_size"], row["epochs"]) == ("300", "10")]
    assert sorted((row["data.train_limit"], row["seeds"], row["lab_test_accuracy"]) for row in lab_rows) == [
        ("", "3", "0.9226"), ("5000", "3", "nan")]
    assert {(row["batch_size"], row["epochs"]): row["test_accuracy_mean"] for row in rows
            if row["data.train_limit"] == ""} == before
    markdown = (tmp_path / "table.md").read_text()
    assert "## logreg, data.train_limit 5000: 5,000 training / 10,000 test images" in markdown
    assert "## logreg: 60,000 training / 10,000 test images" in markdown  # the reference setting: no suffix
    assert "trained and tested on the numbers of images given under each heading" in markdown


def test_a_damaged_cell_is_named_and_left_out(tmp_path, records):
    write_cells(tmp_path, records[:3])
    (tmp_path / "cells" / "logreg-000000000000.json").write_text('{"key": "logreg-0000')
    (tmp_path / "cells" / "logreg-111111111111.json").write_text('[1, 2]')
    (tmp_path / "cells" / "logreg-222222222222.json").write_text('')
    lines = []
    assert sweep_tables.write_sweep_report(tmp_path, log=lines.append)
    assert len(lines) == 3 and all(line.startswith("Warning: damaged result, treated as not done: ") for line in lines)
    assert any("logreg-111111111111.json: expected a JSON object, got list" in line for line in lines)
    assert any("logreg-222222222222.json: not valid JSON (empty file)" in line for line in lines)
    with open(tmp_path / "table.csv") as stream:
        assert len(list(csv.DictReader(stream))) == 3


def test_report_only_needs_no_training(tmp_path, mnist):
    sweep_file = write_config(tmp_path, "name: lab\nmodels:\n  - config: base.yaml\n", name="sweep.yaml")
    write_config(tmp_path, "model: {type: logreg}\n", name="base.yaml")
    runner = CliRunner()
    empty = runner.invoke(cli.main, ["sweep", str(sweep_file), "--report-only", "--results", str(tmp_path)])
    assert empty.exit_code == 1 and "has no finished cells" in empty.output
    from mnist_lab.core.sweep_plan import load_sweep

    (cell,) = load_sweep(sweep_file).cells[:1]
    kept = cell_record(mnist, "logreg", 300, 10, 0.5, 0, 0.92, 0.27, name="base")
    assert kept["key"] == cell.key
    stale = cell_record(mnist, "logreg", 300, 10, 0.5, 9, 0.5, 1.0, name="base")  # a cell the sweep no longer defines
    write_cells(tmp_path / "sweeps" / "lab", [kept, stale])
    result = runner.invoke(cli.main, ["sweep", str(sweep_file), "--report-only", "--results", str(tmp_path)])
    assert result.exit_code == 0 and f"Wrote {tmp_path / 'sweeps' / 'lab' / 'table.md'}" in result.output
    with open(tmp_path / "sweeps" / "lab" / "table.csv") as stream:
        assert [row["key"] for row in csv.DictReader(stream)] == [cell.key]


def test_lab_numbers_only_for_the_labs_exact_setup():
    from mnist_lab.core.config import load_config

    from conftest import ROOT

    from mnist_lab.core.config import to_dict
    from mnist_lab.analysis.lab import lab_numbers

    def lab(model, *overrides, verified=True):
        return lab_numbers(to_dict(load_config(ROOT / "configs" / f"{model}.yaml", overrides, environ={})), verified)

    assert lab("logreg") == (0.2737, 0.9226)
    assert lab("logreg", verified=False) is None
    assert lab("logreg", "data.train_limit=100") is None and lab("logreg", "data.test_limit=100") is None
    assert lab("mlp", "model.hidden_units=50") is None
    assert lab("mlp", "training.learning_rate=0.3") == (0.2221, 0.9370)
    assert lab("logreg", "training.schedule.type=constant") == (0.2737, 0.9226)
    assert lab("logreg", "training.schedule.type=cosine") is None  # the lab's step is constant
    assert lab("logreg", "training.epochs=5", "continues=[{epochs: 5, schedule: {type: step}}]") is None


def test_results_made_before_the_data_order_was_recorded_are_rows_of_their_own(mnist, tmp_path):
    from mnist_lab.results import store
    from mnist_lab.core.identity import identity_hash, record_experiment

    current = [cell_record(mnist, "logreg", 300, 10, 0.5, seed, 0.92, 0.27) for seed in (0, 1)]
    legacy = []
    for seed in (0, 1):
        record = {field: value for field, value in cell_record(mnist, "logreg", 300, 10, 0.5, seed, 0.91, 0.28).items()
                  if field != "data_order"}
        legacy.append({**record, "key": f"logreg-{identity_hash(record_experiment(record, 'old'))}"})
    write_cells(tmp_path, current + legacy)
    rows = sweep_tables.cell_rows(store.read_cells(tmp_path).records.values())
    assert sorted((str(row["data_order"]), row["test_accuracy"]) for row in rows if row["seed"] == 0) == [
        ("None", 0.91), ("seed-epoch", 0.92)]
    summary = sweep_tables.summarize(rows)
    assert sorted((group["test_accuracy_mean"], group["seeds"]) for group in summary) == [(0.91, 2), (0.92, 2)]


def test_groups_are_named_by_what_sets_them_apart_from_the_reference():
    entry = {"model": "cnn", "extras": {"continues": "fresh model", "model.conv_filters": [32, 64],
                                        "data.scaled": None, "model.conv_activation": "relu"}}
    assert sweep_tables.distinctive(entry) == {"model.conv_activation": "relu"}
    stages = "after 300x10 lr 0.5, 300x15 lr 0.5, 300x20 lr 0.5, 400x10 lr 0.5"  # 64 characters, not a digest
    assert len(stages) == 64 and sweep_tables._short(stages) == stages
    assert sweep_tables._short("ab" * 32) == "ab" * 6 and sweep_tables._short([32, 32]) == "[32,32]"
