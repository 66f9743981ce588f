import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_lab.results import catalog
from mnist_lab import cli
from mnist_lab.results.checkpoints import Checkpoint, CheckpointFolder
from mnist_lab.core.errors import UsageError
from mnist_lab.results.store import METRICS_FILE

from conftest import cell_record, write_cells


def _write_run(results, record, created):
    run = results / "runs" / record["key"]
    run.mkdir(parents=True)
    (run / METRICS_FILE).write_text(json.dumps({**record, "created": created, "confusion_matrix": [[0] * 10] * 10}))
    (run / "model.keras").write_bytes(b"weights")
    return run


@pytest.fixture
def results(tmp_path, mnist):
    """A results folder with two runs, three sweep cells (one continued), a failed cell, a
    checkpoint of a stopped training, and a damaged cell."""
    _write_run(tmp_path, cell_record(mnist, "logreg", 300, 10, 0.5, 0, 0.921, 0.275), "2026-01-02T10:00:00")
    _write_run(tmp_path, cell_record(mnist, "cnn", 100, 2, 0.1, 1, 0.97, 0.09, train_limit=600),
               "2026-01-03T10:00:00")
    sweep = tmp_path / "sweeps" / "lab"
    cells = [cell_record(mnist, "mlp", 300, 10, rate, 0, accuracy, loss)
             for rate, accuracy, loss in ((0.2, 0.929, 0.25), (0.5, 0.947, 0.18))]
    continued = cell_record(mnist, "logreg", 400, 10, 0.5, 0, 0.9255, 0.2669)
    continued["config"]["continues"] = [{"batch_size": 300, "epochs": 10, "learning_rate": 0.5}]
    from mnist_lab.core.identity import identity_hash, record_experiment

    continued["key"] = f"logreg-{identity_hash(record_experiment(continued, 'test'))}"
    write_cells(sweep, cells + [continued])
    (sweep / "failed").mkdir()
    failed = cell_record(mnist, "cnn", 300, 10, 0.5, 2, 0.1, 2.3)
    (sweep / "failed" / f"{failed['key']}.json").write_text(json.dumps(
        {"key": failed["key"], "config": failed["config"], "error": "ValueError: out of memory\nmore", "traceback": ""}))
    (sweep / "cells" / "mlp-000000000000.json").write_text("{not json")
    history = [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8, "test_loss": 0.4, "test_accuracy": 0.85,
                "train_seconds": 1.0}]
    CheckpointFolder(sweep).save("cnn-aaaaaaaaaaaa", Checkpoint("cnn-aaaaaaaaaaaa", history, [np.zeros(3)], [],
                                                                {"backend": "jax"}, 2).to_bytes())
    return tmp_path


def test_every_result_is_one_row_with_its_state(results):
    rows = {row["key"]: row for row in catalog.rows(results)}
    assert len(rows) == 8
    states = sorted(row["state"] for row in rows.values())
    assert states == ["complete"] * 5 + ["damaged", "failed", "partial"]
    cnn_run = next(row for row in rows.values() if row["kind"] == "run" and row["model"] == "cnn")
    assert (cnn_run["batch_size"], cnn_run["epochs"], cnn_run["learning_rate"], cnn_run["seed"]) == (100, 2, 0.1, 1)
    assert cnn_run["limits"] == "train 600" and cnn_run["data"] == "builtin" and len(cnn_run["digest"]) == 12
    assert cnn_run["test_accuracy"] == 0.97 and cnn_run["sweep"] is None
    continued = next(row for row in rows.values() if row["setup"])
    assert continued["setup"] == "after 300x10 lr 0.5" and continued["sweep"] == "lab"
    failed = next(row for row in rows.values() if row["state"] == "failed")
    assert failed["problem"] == "ValueError: out of memory" and failed["seed"] == 2
    assert rows["mlp-000000000000"]["problem"].endswith("not valid JSON (Expecting property name enclosed in "
                                                        "double quotes: line 1 column 2 (char 1))")
    partial = rows["cnn-aaaaaaaaaaaa"]
    assert (partial["epochs"], partial["test_accuracy"], partial["backend"]) == (1, 0.85, "jax")


def test_a_checkpoint_of_a_live_sweep_is_in_progress(results):
    """In progress while a process holds the sweep's lock; a lock file naming a live process that
    holds no lock (a pid reused since) is partial."""
    lock = results / "sweeps" / "lab" / ".lock"
    lock.write_text(f"{os.getpid()}\n")
    assert {row["state"] for row in catalog.rows(results) if row["key"] == "cnn-aaaaaaaaaaaa"} == {"partial"}
    holder = subprocess.Popen([sys.executable, "-c", f"import sys, time; from mnist_lab.core.files import Lock; "
                               f"lock = Lock({str(lock)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert {row["state"] for row in catalog.rows(results) if row["key"] == "cnn-aaaaaaaaaaaa"} == {"in progress"}
    finally:
        holder.kill()
        holder.wait()
    assert {row["state"] for row in catalog.rows(results) if row["key"] == "cnn-aaaaaaaaaaaa"} == {"partial"}


def test_where_and_sort_compare_values_as_printed(results):
    rows = catalog.rows(results)
    mlp = catalog.select(rows, ["model=mlp", "learning_rate=0.5"])
    assert [(row["model"], row["learning_rate"]) for row in mlp] == [("mlp", 0.5)]
    by_accuracy = catalog.select(rows, ["state=complete"], sort="-test_accuracy")
    assert [row["test_accuracy"] for row in by_accuracy] == sorted((row["test_accuracy"] for row in by_accuracy),
                                                                   reverse=True)
    newest = catalog.select(rows, ["kind=run"])
    assert [row["created"][:10] for row in newest] == ["2026-01-03", "2026-01-02"]
    with_missing = catalog.select(rows, sort="batch_size")
    assert with_missing[0]["batch_size"] == 100 and with_missing[-1]["batch_size"] is None
    with pytest.raises(UsageError, match="--where colour=red: expected FIELD=VALUE with FIELD one of key,"):
        catalog.select(rows, ["colour=red"])
    with pytest.raises(UsageError, match="--sort -speed: expected one of key,"):
        catalog.select(rows, sort="-speed")


def test_the_formats_hold_every_row(results):
    rows = catalog.select(catalog.rows(results))
    parsed = list(csv.DictReader(io.StringIO(catalog.formatted(rows, "csv"))))
    assert [row["key"] for row in parsed] == [row["key"] for row in rows] and set(parsed[0]) == set(catalog.FIELDS)
    assert json.loads(catalog.formatted(rows, "json")) == rows
    markdown = catalog.formatted(rows, "md").splitlines()
    assert len(markdown) == 2 + len(rows) and markdown[0].startswith("| key | where | model | state | accuracy |")


@pytest.mark.parametrize("width", [80, 100, 250])
def test_the_table_fits_the_terminal(results, width):
    text = catalog.formatted(catalog.select(catalog.rows(results)), "table", width)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("key "))
    table = lines[lines.index(header):lines.index(header) + 9]
    assert all(len(line) <= width for line in table), table
    assert lines[0].startswith("All rows: ") is False  # the rows differ in every column shown
    assert ("left out for the terminal's width" in text) == (width < 250)
    assert ("setup" in header) == (width >= 100) and "accuracy" in header
    assert "mlp-000000000000: " in text  # the damaged cell's reason, below the table


def test_a_column_with_one_value_is_said_once(results):
    rows = catalog.select(catalog.rows(results), ["sweep=lab", "state=complete"])
    text = catalog.formatted(rows, "table", 100)
    header = next(line for line in text.splitlines() if line.startswith("key "))
    assert text.startswith("All rows: where sweep lab, state complete, ") and "batch" in header
    assert "where" not in header and "state" not in header
    lab_models = catalog.formatted(catalog.select(catalog.rows(results), ["sweep=lab", "model=mlp"]), "table", 100)
    assert "setup none" in lab_models and "setup ," not in lab_models  # the lab's models: no setup, said as such


def test_the_runs_command_reads_without_keras(results):
    code = ("import sys; from mnist_lab import cli; sys.argv = ['mnist-lab', 'runs', '--results', sys.argv[1]]\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print([m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'sklearn', 'matplotlib')])")
    result = subprocess.run([sys.executable, "-c", code, str(results)], capture_output=True, text=True)
    assert result.stdout.rstrip().endswith("[]") and "logreg-" in result.stdout


def test_the_runs_command_options(results):
    listed = CliRunner().invoke(cli.main, ["runs", "--results", str(results), "--where", "state=failed",
                                           "--format", "json"])
    assert listed.exit_code == 0 and [row["state"] for row in json.loads(listed.output)] == ["failed"]
    none = CliRunner().invoke(cli.main, ["runs", "--results", str(results), "--where", "model=vgg"])
    assert none.exit_code == 0 and none.output == f"No results under {results} match --where model=vgg.\n"
    wrong = CliRunner().invoke(cli.main, ["runs", "--results", str(results), "--sort", "speed"])
    assert wrong.exit_code == 2 and wrong.output.startswith("Error: --sort speed: expected one of")


def test_hostile_files_are_damaged_rows_never_a_hang_or_a_crash(results, mnist):
    """A FIFO where a cell file should be (never opened for a blocking read), a cell linked to
    /dev/zero (never read), a huge integer, a number where the data digest is text, a failure
    record of the wrong types: each a damaged row, and --sort still works on the rest."""
    cells, failed = results / "sweeps" / "lab" / "cells", results / "sweeps" / "lab" / "failed"
    os.mkfifo(cells / "mlp-111111111111.json")
    (cells / "mlp-222222222222.json").symlink_to("/dev/zero")
    huge = cell_record(mnist, "mlp", 300, 10, 0.3, 0, 0.93, 0.22)
    huge["seconds_per_epoch"] = 10 ** 400
    (cells / "mlp-333333333333.json").write_text(json.dumps(huge))
    number = cell_record(mnist, "mlp", 300, 10, 0.4, 0, 0.93, 0.22)
    number["data"]["digest"] = 12345
    (cells / "mlp-444444444444.json").write_text(json.dumps(number))
    (failed / "cnn-555555555555.json").write_text(json.dumps({"config": {"model": {"type": 7}, "seed": "x"},
                                                              "error": ["not", "text"]}))
    rows = {row["key"]: row for row in catalog.rows(results)}
    for key in ("mlp-111111111111", "mlp-222222222222", "mlp-333333333333", "mlp-444444444444", "cnn-555555555555"):
        assert rows[key]["state"] == "damaged", rows[key]
    assert "not a regular file" in rows["mlp-111111111111"]["problem"]
    for field in ("seed", "-learning_rate", "model", "-epochs"):
        result = CliRunner().invoke(cli.main, ["runs", "--results", str(results), "--sort", field])
        assert result.exit_code == 0, result.output


def test_text_from_records_and_names_is_escaped_and_json_is_strict(results, mnist):
    """Terminal escape sequences (OSC 52 writes the clipboard, OSC 0 the title) and newlines in
    a folder name or a record never reach the terminal raw, nor forge a row; a non-finite
    number is null in --format json."""
    cells = results / "sweeps" / "lab" / "cells"
    (cells / "mlp-\x1b]52;c;aGk=\x07\nforged-row.json").write_text("{}")
    nan = cell_record(mnist, "mlp", 300, 10, 0.25, 0, 0.93, 0.22)
    nan["seconds_per_epoch"] = float("nan")
    write_cells(results / "sweeps" / "lab", [nan])
    for form in ("table", "csv", "md"):
        result = CliRunner().invoke(cli.main, ["runs", "--results", str(results), "--format", form])
        assert result.exit_code == 0 and "\x1b" not in result.output and "\x07" not in result.output
        assert not any(line.startswith("forged-row") for line in result.output.splitlines())
    result = CliRunner().invoke(cli.main, ["runs", "--results", str(results), "--format", "json"])
    parsed = json.loads(result.output, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert [row["seconds_per_epoch"] for row in parsed if row["key"] == nan["key"]] == [None]
    (results / "afile").write_text("")
    blocked = CliRunner().invoke(cli.main, ["runs", "--results", str(results / "afile")])
    assert blocked.exit_code == 2 and "a file, expected a results folder" in blocked.output
