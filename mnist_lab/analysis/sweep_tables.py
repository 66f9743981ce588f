"""Tables and figures of a sweep, computed from its cell files alone.

The cells are the only source of truth: every table here can be regenerated
from ``cells/`` without training (``mnist-lab sweep --report-only``).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

from mnist_lab.results import freshness, store
from mnist_lab.core.config import Config, ModelConfig, ScheduleConfig, TrainingConfig, to_dict
from mnist_lab.core.describe import describe_schedule, describe_stages
from mnist_lab.core.files import atomic_write_text, csv_text
from mnist_lab.analysis.evidence import CRITERION, interval_distance, signed
from mnist_lab.analysis.lab import lab_numbers, reproduced

SETTING = ("name", "model", "engine", "batch_size", "epochs", "learning_rate")
METRICS = ("seed", "test_accuracy", "test_loss", "train_accuracy", "train_loss", "parameters", "train_seconds",
           "seconds_per_epoch", "train_images", "test_images", "key")
SUMMARY_METRICS = ("seeds", "test_accuracy_mean", "test_accuracy_std", "test_loss_mean", "test_loss_std",
                   "train_accuracy_mean", "train_loss_mean", "seconds_per_epoch_mean", "train_images",
                   "test_images", "lab_test_accuracy", "lab_test_loss")
# Identity fields already shown as SETTING columns, or never a column (the seed is averaged over).
_SHOWN = {"model.type", "engine", "training.batch_size", "training.epochs", "training.learning_rate", "seed"}


def cell_rows(records) -> list[dict]:
    """One flat row per cell, in a stable order; ``experiment`` holds every identity field
    but the seed, flattened (what groups cells into one setting)."""
    rows = []
    for record in records:
        identity = _flatten(record["experiment"])
        training = record["config"]["training"]
        rows.append({"name": record["name"], "model": record["model"], "engine": identity["engine"],
                     "batch_size": training["batch_size"], "epochs": record["epochs"],
                     "learning_rate": training["learning_rate"], "seed": record["seed"],
                     "test_accuracy": record["test_accuracy"], "test_loss": record["test_loss"],
                     "train_accuracy": record["train_accuracy"], "train_loss": record["train_loss"],
                     "parameters": record["parameters"], "train_seconds": sum(record["epoch_seconds"]),
                     "seconds_per_epoch": record["seconds_per_epoch"],
                     "train_images": record["data"]["train_images"], "test_images": record["data"]["test_images"],
                     "key": record["key"],
                     "lab": lab_numbers(record["config"], record["data"].get("verified_mnist", False)),
                     "experiment": {field: value for field, value in identity.items() if field != "seed"}})
    extras = varying_fields(rows)
    for row in rows:
        # A field some records lack (data_order, in results made before it was recorded) is None.
        row.update({field: _readable(field, row["experiment"].get(field)) for field in extras})
    return sorted(rows, key=lambda row: (_model_order(row["model"]), *(_sortable(row[field]) for field in
                                                                       (*SETTING, *extras, "seed"))))


def _readable(field, value):
    """An identity field's value as a column shows it: a continued model's stages and a schedule
    (None: constant, left out of the identity) in words."""
    if field == "training.schedule":
        return describe_schedule(ScheduleConfig(**(value or {})))
    if field != "continues":
        return value
    return describe_stages(_stage(stage) for stage in value or ()) or FRESH_MODEL


def _stage(stage: dict) -> TrainingConfig:
    """A continued stage of an identity record as a TrainingConfig (no schedule there: constant)."""
    return TrainingConfig(**{**stage, "schedule": ScheduleConfig(**stage.get("schedule", {}))})


FRESH_MODEL = "fresh model"  # the continues column of a model trained from its initial weights


def distinctive(entry) -> dict:
    """The varying identity fields of a summary entry (its ``extras``) whose values set it apart from
    its model's reference setting: neither left out of the identity (None: the default), nor a
    fresh model, nor the default value itself."""
    reference = to_dict(Config(model=ModelConfig(type=entry["model"])))
    return {field: value for field, value in entry["extras"].items()
            if value not in (None, FRESH_MODEL) and value != _readable(field, _field(reference, field))}


def _field(config_dict: dict, dotted: str):
    """The value of field ``dotted`` (e.g. "model.conv_filters") in a config's plain form, or None."""
    value = config_dict
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def varying_fields(rows) -> list[str]:
    """Identity fields beyond the usual columns whose value differs between rows (e.g.
    data.train_limit when slice and full-data cells share a folder): they become columns."""
    fields = dict.fromkeys(field for row in rows for field in row["experiment"])
    return [field for field in fields if field not in _SHOWN
            and len({json.dumps(row["experiment"].get(field)) for row in rows}) > 1]


def _flatten(identity: dict, prefix="") -> dict:
    flat = {}
    for key, value in identity.items():
        if isinstance(value, dict) and key != "schedule":  # a schedule is one column, in words
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _sortable(value):
    return (value is not None, json.dumps(value) if isinstance(value, (list, dict)) else value
            if value is not None else 0)


def _model_order(model_type: str) -> int:
    """The lab's order: logreg, mlp, cnn."""
    from mnist_lab.core.config import MODEL_TYPES

    return MODEL_TYPES.index(model_type) if model_type in MODEL_TYPES else len(MODEL_TYPES)


def summarize(rows) -> list[dict]:
    """Mean and sample standard deviation over seeds for each experiment (every identity field
    but the seed), with the lab's numbers where the setting is the lab's on the whole of MNIST."""
    extras = varying_fields(rows)
    groups = {}
    for row in rows:
        groups.setdefault((row["name"], json.dumps(row["experiment"], sort_keys=True)), []).append(row)
    summary = []
    for members in groups.values():
        first = members[0]
        entry = {field: first[field] for field in (*SETTING, *extras, "train_images", "test_images")}
        entry["extras"] = {field: first[field] for field in extras}
        entry["seeds"] = len(members)
        # Each seed's test numbers: two groups with the same are one experiment under two descriptions
        # (a model continued at its own batch size and rate is a longer training: the same data order).
        entry["seed_results"] = tuple(sorted((member["seed"], member["test_accuracy"], member["test_loss"])
                                             for member in members))
        for metric in ("test_accuracy", "test_loss"):
            values = [member[metric] for member in members]
            entry[f"{metric}_mean"] = statistics.fmean(values)
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
        for metric in ("train_accuracy", "train_loss", "seconds_per_epoch", "train_seconds"):
            entry[f"{metric}_mean"] = statistics.fmean(member[metric] for member in members)
        entry["lab_test_loss"], entry["lab_test_accuracy"] = first["lab"] or (math.nan, math.nan)
        summary.append(entry)
    return summary


def lab_verdict(mean, std, seeds, lab, scale=1.0, unit="") -> str:
    """Whether the lab's number lies inside our prediction interval (lab.py), how far it is from
    our mean, and that gap in half-widths of the interval."""
    if math.isnan(lab):
        return ""
    delta = f"{signed((lab - mean) * scale, 2)}{unit}" if unit else signed(lab - mean, 4)
    distance = interval_distance(mean, std, seeds, lab)
    if math.isnan(distance):
        return f"n/a, one seed ({delta})"
    return f"{'yes' if abs(distance) <= 1 else 'no'} ({delta}, {signed(distance)})"


def yes_no(verdict) -> str:
    """A verdict in a table cell: yes, **no**, or blank (nothing to compare)."""
    return "" if verdict is None else "yes" if verdict else "**no**"


def markdown_table(summary, title: str) -> str:
    """Per experiment group, the settings with mean ± std over seeds and, for the lab's setup
    on the whole of MNIST only, the lab's numbers beside them."""
    counts = sorted({(entry["train_images"], entry["test_images"]) for entry in summary})
    images = (f"trained on {counts[0][0]:,} images and tested on {counts[0][1]:,}" if len(counts) == 1 else
              "trained and tested on the numbers of images given under each heading")
    lines = [f"# {title}", "",
             f"Mean ± sample standard deviation over seeds, {images}. "
             f"\"Lab inside\" says whether {CRITERION}, how far the lab's number is from our mean "
             "(lab − ours), and that gap in half-widths of the interval (inside: at most 1 in size); "
             "\"reproduced\": both the lab's accuracy and its loss lie inside (the definition REPORT.md uses "
             "too); the lab's numbers stand only "
             "beside the lab's architecture trained and tested on the whole of MNIST. Loss is the mean "
             "categorical cross-entropy; the lab's loss figures are on the same scale. s/epoch: "
             "training seconds per epoch (median after the first epoch, mean over seeds).", ""]
    groups = [(heading, entries) for heading, _, entries in _groups(summary)]
    for heading, entries in groups:
        twins = [_twin_note(entry, groups) for entry in entries]
        if len(counts) > 1:
            heading += f": {entries[0]['train_images']:,} training / {entries[0]['test_images']:,} test images"
        lines += [f"## {heading}", "",
                  "| batch size | epochs | learning rate | seeds | test accuracy (%) | test loss "
                  "| lab accuracy (%) | lab loss | lab accuracy inside | lab loss inside | reproduced "
                  "| s/epoch |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: |"]
        for entry in entries:
            accuracy, accuracy_std = entry["test_accuracy_mean"], entry["test_accuracy_std"]
            loss, loss_std = entry["test_loss_mean"], entry["test_loss_std"]
            lab_accuracy, lab_loss = entry["lab_test_accuracy"], entry["lab_test_loss"]
            lines.append(
                f"| {entry['batch_size']} | {entry['epochs']} | {entry['learning_rate']:g} | {entry['seeds']} "
                f"| {_plus_minus(accuracy * 100, accuracy_std * 100, 2)} | {_plus_minus(loss, loss_std, 4)} "
                f"| {'' if math.isnan(lab_accuracy) else f'{lab_accuracy * 100:.2f}'} "
                f"| {'' if math.isnan(lab_loss) else f'{lab_loss:.4f}'} "
                f"| {lab_verdict(accuracy, accuracy_std, entry['seeds'], lab_accuracy, 100, ' pp')} "
                f"| {lab_verdict(loss, loss_std, entry['seeds'], lab_loss)} | {yes_no(reproduced(entry))} "
                f"| {entry['seconds_per_epoch_mean']:.2f} |")
        lines += ["", *(f"{note}\n" for note in twins if note)]
    return "\n".join(lines)


def _twin_note(entry, groups) -> str:
    """A line naming the groups elsewhere in the table with the same numbers seed by seed as
    ``entry``: one experiment under two descriptions (a model continued at its own batch size and
    step is a longer training of it: the same (seed, epoch) data order), or ''."""
    twins = [f"{other_heading}: batch {other['batch_size']}, {other['epochs']} epochs, lr {other['learning_rate']:g}"
             for other_heading, others in groups for other in others
             if other is not entry and other["seed_results"] == entry["seed_results"]]
    if not twins:
        return ""
    return (f"Batch {entry['batch_size']}, {entry['epochs']} epochs, lr {entry['learning_rate']:g} here has the same "
            f"numbers, seed by seed, as {'; '.join(twins)}: one experiment under two descriptions.")


def write_sweep_report(folder: Path, experiments=None, log=print) -> list[Path] | None:
    """Rewrite table.csv, summary.csv, table.md and the figures from the cells; return the paths
    written: [] when they are up to date with the cells (freshness.py), None without cells.

    ``experiments`` (hashes) limits the tables to the cells of the sweep as it is now
    defined (a cell of a grid value since removed stays on disk but leaves the tables).
    Damaged cell files are named in a warning and left out.
    """
    cells = store.read_cells(folder, log)
    used = sorted(key for key, record in cells.records.items()
                  if experiments is None or record["experiment_hash"] in experiments)
    if not used:
        return None
    key = freshness.inputs_key("sweep tables", folder.name,
                               [(cell, freshness.file_digest(store.cell_path(folder, cell))) for cell in used])
    tables = [folder / "table.csv", folder / "summary.csv", folder / "table.md"]
    if freshness.outputs_up_to_date([folder, folder / store.FIGURES_FOLDER], key, tables):
        return []
    from mnist_lab.results import plots

    rows = cell_rows([cells.records[cell] for cell in used])
    summary = summarize(rows)
    extras = varying_fields(rows)
    atomic_write_text(tables[0], csv_text(rows, (*SETTING, *extras, *METRICS)))
    atomic_write_text(tables[1], csv_text(summary, (*SETTING, *extras, *SUMMARY_METRICS)))
    atomic_write_text(tables[2], markdown_table(summary, f"Sweep {folder.name}: test results"))
    written = list(tables)
    for _, prefix, entries in _groups(summary):
        written += plots.sweep_figures(entries, folder / store.FIGURES_FOLDER, prefix)
    for stale in set((folder / store.FIGURES_FOLDER).glob("*.png")) - set(written):  # of cells or names gone
        if not stale.is_dir():  # a folder of that name is not a figure of ours: left as it is
            stale.unlink()
    freshness.record(written, key)
    return written


def _groups(summary):
    """(heading, file prefix, entries) per base config, engine and any other varying identity
    field, in table order: a figure or table section never mixes two experiments' settings."""
    def group(entry):
        return entry["name"], entry["engine"], json.dumps(entry["extras"], sort_keys=True)

    for name, engine, extras_text in dict.fromkeys(group(entry) for entry in summary):
        entries = [entry for entry in summary if group(entry) == (name, engine, extras_text)]
        model, extras = entries[0]["model"], distinctive(entries[0])
        heading = name + ("" if name == model else f" ({model})") + ("" if engine == "keras" else f", {engine} engine")
        heading += "".join(f", {_short(value)}" if field == "continues" else f", {field} {_short(value)}"
                           for field, value in extras.items())
        # Reference values add nothing, so the usual figures keep their names.
        prefix = (name + ("" if engine == "keras" else f"-{engine}")
                  + "".join(f"-{field.rsplit('.', 1)[-1]}{_short(value)}" for field, value in extras.items()))
        # Anything but letters, digits, '.', '_' and '-' becomes one '_' per run of it: a file name.
        yield heading, re.sub(r"[^A-Za-z0-9._-]+", "_", prefix), entries


def _short(value) -> str:
    """A column value for headings: digests shortened, lists without spaces."""
    if isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef"):  # a SHA-256
        return value[:12]
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list) else str(value)


def _plus_minus(mean, std, digits) -> str:
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_entry(summary, setting):
    """The summary entry of the lab's architecture at ``setting`` (Keras engine), or None."""
    model, batch, epochs, rate = setting
    return next((entry for entry in summary if (entry["model"], entry["engine"], entry["batch_size"],
                                                 entry["epochs"], entry["learning_rate"])
                 == (model, "keras", batch, epochs, rate)), None)
