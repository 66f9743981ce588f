import csv
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_lab import cli, report
from mnist_lab.files import atomic_write_text

from conftest import write_config


def record(name, model, batch_size, epochs, learning_rate, seed, accuracy, loss):
    return {"key": f"{name}-{batch_size}-{epochs}-{learning_rate}-{seed}", "name": name, "model": model,
            "config": {"engine": "keras", "training": {"batch_size": batch_size, "learning_rate": learning_rate}},
            "epochs": epochs, "seed": seed, "test_accuracy": accuracy, "test_loss": loss,
            "train_accuracy": accuracy + 0.01, "train_loss": loss - 0.01, "parameters": 7850,
            "epoch_seconds": [0.5] * epochs, "seconds_per_epoch": 0.5}


def write_cells(folder, records):
    for entry in records:
        atomic_write_text(folder / "cells" / f"{entry['key']}.json", json.dumps(entry))


RECORDS = [record("logreg", "logreg", batch, epochs, 0.5, seed, 0.92 + 0.001 * seed + 0.0001 * epochs, 0.27)
           for batch in (300, 400) for epochs in (10, 15) for seed in (0, 1, 2)]


def test_summary_is_mean_and_sample_std_with_the_labs_numbers():
    summary = report.summarize(report.cell_rows(RECORDS))
    assert len(summary) == 4
    first = summary[0]
    assert (first["batch_size"], first["epochs"], first["seeds"]) == (300, 10, 3)
    accuracies = [0.92 + 0.001 * seed + 0.001 for seed in (0, 1, 2)]
    assert first["test_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert first["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert (first["lab_test_loss"], first["lab_test_accuracy"]) == (0.2737, 0.9226)
    assert math.isnan(summary[3]["lab_test_accuracy"])  # batch 400, 15 epochs: not in the lab's table


def test_lab_verdict():
    assert report.lab_verdict(0.9200, 0.0010, 0.9226, 100, " pp") == "no (+0.26 pp)"
    assert report.lab_verdict(0.9220, 0.0010, 0.9226, 100, " pp") == "yes (+0.06 pp)"
    assert report.lab_verdict(0.2700, 0.0030, 0.2737) == "yes (+0.0037)"
    assert report.lab_verdict(0.92, math.nan, 0.9226, 100, " pp") == "n/a, one seed (+0.26 pp)"
    assert report.lab_verdict(0.92, 0.001, math.nan) == ""


def test_report_is_a_view_of_the_cells(tmp_path):
    write_cells(tmp_path, RECORDS)
    written = report.write_sweep_report(tmp_path)
    names = {path.name for path in written}
    assert names == {"table.csv", "summary.csv", "table.md", "logreg_accuracy_vs_epochs.png", "logreg_heatmap.png"}
    first = {path.name: path.read_bytes() for path in written}
    with open(tmp_path / "table.csv") as stream:
        assert len(list(csv.DictReader(stream))) == len(RECORDS)
    markdown = (tmp_path / "table.md").read_text()
    assert "| 300 | 10 | 0.5 | 3 | 92.20 ± 0.10 | 0.2700 ± 0.0000 | 92.26 | 0.2737 | yes (+0.06 pp) | no (+0.0037) " \
        "| 0.50 |" in markdown
    for path in written:
        path.unlink()
    assert {path.name: path.read_bytes() for path in report.write_sweep_report(tmp_path)} == first


def test_report_only_needs_no_training(tmp_path):
    sweep_file = write_config(tmp_path, "name: lab\nmodels:\n  - config: base.yaml\n", name="sweep.yaml")
    write_config(tmp_path, "model: {type: logreg}\n", name="base.yaml")
    runner = CliRunner()
    empty = runner.invoke(cli.main, ["sweep", str(sweep_file), "--report-only", "--results", str(tmp_path)])
    assert empty.exit_code == 1 and "has no finished cells" in empty.output
    from mnist_lab.sweep import load_sweep

    (cell,) = load_sweep(sweep_file).cells[:1]
    stale = record("logreg", "logreg", 300, 10, 0.5, 9, 0.5, 1.0)  # a cell the sweep no longer defines
    write_cells(tmp_path / "sweeps" / "lab", [{**RECORDS[0], "key": cell.key}, stale])
    result = runner.invoke(cli.main, ["sweep", str(sweep_file), "--report-only", "--results", str(tmp_path)])
    assert result.exit_code == 0 and f"Wrote {tmp_path / 'sweeps' / 'lab' / 'table.md'}" in result.output
    with open(tmp_path / "sweeps" / "lab" / "table.csv") as stream:
        assert [row["key"] for row in csv.DictReader(stream)] == [cell.key]


def test_lab_numbers_only_for_the_labs_exact_setup():
    from mnist_lab.config import load_config

    from conftest import ROOT

    logreg = load_config(ROOT / "configs" / "logreg.yaml", environ={})
    assert report.lab_numbers(logreg, verified_mnist=True) == (0.2737, 0.9226)
    assert report.lab_numbers(logreg, verified_mnist=False) is None
    assert report.lab_numbers(load_config(ROOT / "configs" / "logreg.yaml", ["data.train_limit=100"], environ={}),
                              verified_mnist=True) is None
    assert report.lab_numbers(load_config(ROOT / "configs" / "mlp.yaml", ["model.hidden_units=50"], environ={}),
                              verified_mnist=True) is None
    assert report.lab_numbers(load_config(ROOT / "configs" / "mlp.yaml", ["training.learning_rate=0.3"], environ={}),
                              verified_mnist=True) == (0.2221, 0.9370)
