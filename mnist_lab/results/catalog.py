"""`mnist-lab runs`: one row per train run and per sweep cell under a results folder, read from
the small result files alone (no Keras import), to filter, sort and print as a table, CSV,
JSON or Markdown.

States: complete (a valid result), failed (a sweep cell's recorded failure), partial (a
checkpoint of a training that stopped; "in progress" while its sweep's process lives) and
damaged (a result file that does not validate, named with the reason).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from mnist_lab.core.config import from_dict, to_dict
from mnist_lab.core.describe import describe_limits, describe_setup
from mnist_lab.results.checkpoints import Checkpoint, CheckpointFolder
from mnist_lab.core.errors import UsageError, printable
from mnist_lab.core.files import lock_holder, read_bounded
from mnist_lab.results.store import (CELL_FIELDS, CELLS_FOLDER, FAILED_FOLDER, PRUNED_FOLDER, RUNNING_FOLDER, RUNS_FOLDER,
                                     SEARCHES_FOLDER, SWEEP_LOCK, SWEEPS_FOLDER, DamagedResult, read_pruned, read_run,
                                     validated_record)

# Every field of a row, in the order of csv/json; the table shows the first ones that fit.
FIELDS = ("key", "kind", "sweep", "state", "model", "setup", "engine", "backend", "batch_size", "epochs",
          "learning_rate", "seed", "test_accuracy", "test_loss", "validation_accuracy", "validation_loss",
          "seconds_per_epoch", "data", "digest", "limits", "created", "name", "problem")
# The table's columns, and those that give way, first to last, when the terminal is narrow (the
# key, unique to each row, always stays; "setup", what sets a row apart from the lab's model,
# is cut with … past SETUP_WIDTH).
TABLE_FIELDS = ("key", "sweep", "model", "state", "test_accuracy", "test_loss", "validation_accuracy", "batch_size",
                "epochs", "learning_rate", "seed", "setup", "engine", "backend", "seconds_per_epoch", "created", "data",
                "digest", "limits")
GIVE_WAY = ("limits", "digest", "data", "created", "seconds_per_epoch", "backend", "engine", "seed", "model", "setup",
            "sweep", "state", "learning_rate", "epochs", "batch_size", "test_loss", "validation_accuracy")
# Columns the table shows only when a row has a value (a validation split is off by default).
WHEN_PRESENT = ("validation_accuracy",)
SETUP_WIDTH = 40
_HEADINGS = {"sweep": "where", "test_accuracy": "accuracy", "test_loss": "loss", "validation_accuracy": "validation",
             "batch_size": "batch", "learning_rate": "lr", "seconds_per_epoch": "s/epoch"}


def rows(results_dir) -> list[dict]:
    """Every run, cell, failure and checkpoint under ``results_dir``, one row each."""
    results = Path(results_dir)
    found = []
    runs = results / RUNS_FOLDER
    for run in sorted(runs.glob("[!.]*")) if runs.is_dir() else []:
        if run.is_dir():
            found.append(_run_row(run))
    found += _checkpoint_rows(runs, "run", None)
    sweeps = results / SWEEPS_FOLDER
    for folder in sorted(sweeps.iterdir()) if sweeps.is_dir() else []:
        if folder.is_dir():
            found += _sweep_rows(folder)
    searches = results / SEARCHES_FOLDER
    for folder in sorted(searches.iterdir()) if searches.is_dir() else []:
        if folder.is_dir():
            found += _sweep_rows(folder, "trial", _live_search(folder)) + _pruned_rows(folder)
    return found


def _empty(**fields) -> dict:
    return {**dict.fromkeys(FIELDS), **fields}


def _record_row(record: dict, **fields) -> dict:
    config, data = record["config"], record["data"]
    resolved = from_dict(config, "")  # valid: validated_record checked it
    return _empty(model=record["model"], engine=config.get("engine", "keras"),
                  backend=record["versions"].get("backend"), batch_size=config["training"]["batch_size"],
                  epochs=record["epochs"], learning_rate=config["training"]["learning_rate"], seed=record["seed"],
                  test_accuracy=record["test_accuracy"], test_loss=record["test_loss"],
                  validation_accuracy=record.get("validation_accuracy"), validation_loss=record.get("validation_loss"),
                  seconds_per_epoch=record["seconds_per_epoch"], created=record["created"],
                  data=data.get("source"), digest=(data.get("digest") or "")[:12],
                  limits=describe_limits(data), setup=describe_setup(resolved), state="complete", **fields)


def _run_row(run: Path) -> dict:
    try:
        record = read_run(run)
    except DamagedResult as error:
        return _empty(key=run.name, kind="run", name=run.name.rsplit("-", 1)[0], state="damaged", problem=str(error))
    return _record_row(record, key=run.name, kind="run", name=run.name.rsplit("-", 1)[0])


def _sweep_rows(folder: Path, kind="cell", live=None) -> list[dict]:
    """The rows of a sweep's folder, or (``kind`` "trial") of a search's: its cells, failures and
    checkpoints (in progress when ``live``, by default when a sweep process holds the folder)."""
    found = []
    for path in sorted((folder / CELLS_FOLDER).glob("*.json")):
        try:
            record = validated_record(path, CELL_FIELDS)
            found.append(_record_row(record, key=path.stem, kind=kind, sweep=folder.name, name=record["name"]))
        except DamagedResult as error:
            found.append(_empty(key=path.stem, kind=kind, sweep=folder.name, state="damaged", problem=str(error)))
    for path in sorted((folder / FAILED_FOLDER).glob("*.json")):
        found.append({**_failure_row(path, folder.name), "kind": kind})
    live = _live_sweep(folder) if live is None else live
    return found + _checkpoint_rows(folder, kind, folder.name, live)


def _config_fields(config) -> dict:
    """The row fields a config alone gives (a record that is not a result: a failure, a pruned trial)."""
    return {"model": config.model.type, "engine": config.engine, "seed": config.seed,
            "batch_size": config.training.batch_size, "epochs": config.training.epochs,
            "learning_rate": config.training.learning_rate}


def _pruned_rows(folder: Path) -> list[dict]:
    """A search's pruned trials: stopped by its pruner after the epochs their history holds."""
    found = []
    for path in sorted((folder / PRUNED_FOLDER).glob("*.json")):
        try:
            record = read_pruned(path)
        except DamagedResult as error:
            found.append(_empty(key=path.stem, kind="trial", sweep=folder.name, state="damaged", problem=str(error)))
            continue
        config, last = from_dict(record["config"], str(path)), (record["history"] or [{}])[-1]
        found.append(_empty(key=path.stem, kind="trial", sweep=folder.name, name=record["name"], state="pruned",
                            **{**_config_fields(config), "epochs": len(record["history"])},
                            test_accuracy=last.get("test_accuracy"),
                            test_loss=last.get("test_loss"), validation_accuracy=last.get("validation_accuracy"),
                            validation_loss=last.get("validation_loss"), created=_modified(path),
                            limits=describe_limits(to_dict(config.data)), setup=describe_setup(config)))
    return found


def _live_search(folder: Path) -> bool:
    """Whether a search process is running one of the folder's trials now (its lock is held)."""
    return any(lock_holder(lock) is not None for lock in (folder / RUNNING_FOLDER).glob("*.lock"))


def _failure_row(path: Path, sweep: str) -> dict:
    row = _empty(key=path.stem, kind="cell", sweep=sweep, name=path.stem.rsplit("-", 1)[0], state="failed")
    try:
        failure = json.loads(read_bounded(path))
        config = from_dict(failure["config"], str(path))  # a failure's config is checked like a result's
        if not isinstance(failure["error"], str):
            raise TypeError("its error is not text")
        row.update(_config_fields(config), problem=(failure["error"].splitlines() or [""])[0],
                   created=_modified(path))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as error:
        row.update(state="damaged", problem=f"{path}: not a failure record ({type(error).__name__})")
    return row


def _checkpoint_rows(owner: Path, kind: str, sweep, live_pid=None) -> list[dict]:
    """A row per checkpoint: a training that stopped after some epochs (or is running now)."""
    found = []
    checkpoints = CheckpointFolder(owner)
    for key in checkpoints.keys():
        path = checkpoints.path(key)
        state = "in progress" if live_pid else "partial"
        try:
            checkpoint = Checkpoint.from_bytes(read_bounded(path), str(path))
        except (OSError, DamagedResult) as error:
            found.append(_empty(key=key, kind=kind, sweep=sweep, state="damaged", problem=str(error)))
            continue
        last = checkpoint.history[-1]
        found.append(_empty(key=key, kind=kind, sweep=sweep, name=key.rsplit("-", 1)[0],
                            state=state, epochs=checkpoint.epoch,
                            test_accuracy=last["test_accuracy"], test_loss=last["test_loss"],
                            validation_accuracy=last.get("validation_accuracy"),
                            validation_loss=last.get("validation_loss"), backend=checkpoint.versions.get("backend"), created=_modified(path)))
    return found


def _live_sweep(folder: Path) -> bool:
    """Whether a sweep process holds the folder's lock now (asked, never taken: files.lock_holder)."""
    return lock_holder(folder / SWEEP_LOCK) is not None


def _modified(path: Path) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat()


def _text(value) -> str:
    """A field as printed: every text from a file or a folder name escaped and bounded (no
    terminal escape sequence or newline reaches the terminal, no row is forged)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return printable(value, 200)


def select(found: list[dict], where=(), sort=None) -> list[dict]:
    """The rows matching every ``FIELD=VALUE`` of ``where`` (compared as printed: 0.5, 300, cnn),
    sorted by ``sort`` (``-FIELD`` descending; default: newest first)."""
    for condition in where:
        field, separator, value = condition.partition("=")
        if not separator or field not in FIELDS:
            raise UsageError(f"--where {condition}: expected FIELD=VALUE with FIELD one of {', '.join(FIELDS)}")
        found = [row for row in found if _text(row[field]) == value or
                 (field == "state" and _text(row[field]).startswith(value))]
    order = sort or "-created"
    field = order.lstrip("-")
    if field not in FIELDS:
        raise UsageError(f"--sort {sort}: expected one of {', '.join(FIELDS)} (-FIELD for descending)")
    present = sorted((row for row in found if row[field] is not None), key=lambda row: _sort_key(row[field]),
                     reverse=order.startswith("-"))
    return present + [row for row in found if row[field] is None]


def _sort_key(value) -> tuple:
    """Numbers before texts, each in their own order (a field may hold both)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (0, value, "") if number else (1, 0, str(value))


def _finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def formatted(found: list[dict], form: str, width: int = 100) -> str:
    if form == "json":  # strict JSON: a non-finite number is null, every non-ASCII character escaped
        return json.dumps([{field: _finite_or_none(value) for field, value in row.items()} for row in found],
                          indent=1, allow_nan=False) + "\n"
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({field: _text(row[field]) for field in FIELDS} for row in found)
        return buffer.getvalue()
    fields = [field for field in TABLE_FIELDS
              if field not in WHEN_PRESENT or any(row[field] is not None for row in found)]
    cells = [[_cell(row, field) for field in fields] for row in found]
    headings = [_HEADINGS.get(field, field) for field in fields]
    if form == "md":
        return "\n".join(["| " + " | ".join(headings) + " |", "|" + " --- |" * len(headings),
                          *("| " + " | ".join(line) + " |" for line in cells)]) + "\n"
    problems = "".join(f"{_text(row['key'])}: {printable(row['problem'])}\n" for row in found if row["problem"])
    return _fitted_table(fields, headings, cells, width) + problems


def _cell(row, field) -> str:
    value = row[field]
    if field == "sweep":
        return {"run": "run", "trial": f"search {value}"}.get(row["kind"], f"sweep {value}")
    if value is None:
        return "—"
    if field in ("test_accuracy", "validation_accuracy"):
        return f"{value:.2%}"
    if field == "test_loss":
        return f"{value:.4f}"
    if field == "seconds_per_epoch":
        return f"{value:.2f}"
    if field == "created":
        return _text(value[:16].replace("T", " "))
    return _text(value)


def _fitted_table(fields, headings, cells, width) -> str:
    """Aligned columns of ``fields`` (TABLE_FIELDS, in order), fitted to ``width`` characters by leaving out
    columns in GIVE_WAY order. A column with one value in every row (several rows) is said once
    above the table instead, leaving room for the others."""
    import textwrap

    constant = {index for index in range(1, len(fields)) if len(cells) > 1 and len({line[index] for line in cells}) == 1}
    # An empty value said as "none" (a setup of none: the lab's model), not as a bare heading.
    lines = (textwrap.wrap("All rows: " + ", ".join(f"{headings[index]} {cells[0][index] or 'none'}"
                                                   for index in sorted(constant)),
                           width, subsequent_indent="  ") if constant else [])
    widths = {field: min(max([len(headings[index])] + [len(line[index]) for line in cells]),
                         SETUP_WIDTH if field == "setup" else width)
              for index, field in enumerate(fields)}
    shown = [field for index, field in enumerate(fields) if index not in constant]
    left_out = []
    for field in GIVE_WAY:
        if sum(widths[name] for name in shown) + 2 * (len(shown) - 1) <= width:
            break
        if field in shown:
            shown.remove(field)
            left_out.append(headings[fields.index(field)])
    columns = [fields.index(field) for field in shown]

    def line(texts):
        parts = [texts[index] if len(texts[index]) <= widths[fields[index]] else
                 texts[index][:widths[fields[index]] - 1] + "…" for index in columns]
        return "  ".join(part.ljust(widths[fields[index]]) for part, index in zip(parts, columns)).rstrip()

    lines += [line(texts) for texts in [headings, *cells]]
    if left_out:
        lines.append(f"(left out for the terminal's width: {', '.join(left_out)}; --format csv or json show every "
                     "field)")
    return "\n".join(lines) + "\n"
