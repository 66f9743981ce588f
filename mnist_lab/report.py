"""Tables and figures of a sweep, computed from its cell files alone.

The cells are the only source of truth: every table here can be regenerated
from ``cells/`` without training (``mnist-lab sweep --report-only``).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path

from .files import atomic_write_text
from .sweep import read_cell_records

# The lab report's numbers (LAB.md), keyed by (model, batch size, epochs,
# learning rate): (test cross-entropy, test accuracy). Single runs, no seed.
LAB_RESULTS = {
    ("logreg", 300, 10, 0.5): (0.2737, 0.9226),
    ("logreg", 300, 15, 0.5): (0.2687, 0.9238),
    ("logreg", 300, 20, 0.5): (0.2704, 0.9242),
    ("logreg", 400, 10, 0.5): (0.2662, 0.9260),
    ("logreg", 500, 10, 0.5): (0.2659, 0.9254),
    ("mlp", 300, 10, 0.5): (0.1807, 0.9466),
    ("mlp", 300, 10, 0.2): (0.2516, 0.9289),
    ("mlp", 300, 10, 0.3): (0.2221, 0.9370),
    ("cnn", 300, 10, 0.5): (0.1003, 0.9826),
}
def lab_numbers(config, verified_mnist: bool):
    """The lab's (test loss, test accuracy) for exactly this setup, or None.

    Only for the lab's architecture on the whole of the real MNIST."""
    from .config import ModelConfig

    whole_mnist = verified_mnist and config.data.train_limit is None and config.data.test_limit is None
    if not whole_mnist or config.model != ModelConfig(type=config.model.type):
        return None
    training = config.training
    return LAB_RESULTS.get((config.model.type, training.batch_size, training.epochs, training.learning_rate))


SETTING = ("name", "model", "engine", "batch_size", "epochs", "learning_rate")
TABLE_FIELDS = (*SETTING, "seed", "test_accuracy", "test_loss", "train_accuracy", "train_loss",
                "parameters", "train_seconds", "seconds_per_epoch", "key")
SUMMARY_FIELDS = (*SETTING, "seeds", "test_accuracy_mean", "test_accuracy_std", "test_loss_mean",
                  "test_loss_std", "train_accuracy_mean", "train_loss_mean", "seconds_per_epoch_mean",
                  "lab_test_accuracy", "lab_test_loss")
FIGURES_FOLDER = "figures"


def cell_rows(records) -> list[dict]:
    """One flat row per cell, in a stable order."""
    rows = [{"name": record["name"], "model": record["model"], "engine": record["config"].get("engine", "keras"),
             "batch_size": record["config"]["training"]["batch_size"], "epochs": record["epochs"],
             "learning_rate": record["config"]["training"]["learning_rate"], "seed": record["seed"],
             "test_accuracy": record["test_accuracy"], "test_loss": record["test_loss"],
             "train_accuracy": record["train_accuracy"], "train_loss": record["train_loss"],
             "parameters": record["parameters"], "train_seconds": sum(record["epoch_seconds"]),
             "seconds_per_epoch": record["seconds_per_epoch"],
             "key": record["key"]} for record in records]
    return sorted(rows, key=lambda row: (_model_order(row["model"]),
                                         *(row[field] for field in (*SETTING, "seed"))))


def _model_order(model_type: str) -> int:
    """The lab's order: logreg, mlp, cnn."""
    from .config import MODEL_TYPES

    return MODEL_TYPES.index(model_type) if model_type in MODEL_TYPES else len(MODEL_TYPES)


def summarize(rows) -> list[dict]:
    """Mean and sample standard deviation over seeds for each setting, with the lab's numbers."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[field] for field in SETTING), []).append(row)
    summary = []
    for setting, members in groups.items():
        entry = dict(zip(SETTING, setting))
        entry["seeds"] = len(members)
        for metric in ("test_accuracy", "test_loss"):
            values = [member[metric] for member in members]
            entry[f"{metric}_mean"] = statistics.fmean(values)
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
        for metric in ("train_accuracy", "train_loss", "seconds_per_epoch"):
            entry[f"{metric}_mean"] = statistics.fmean(member[metric] for member in members)
        lab = LAB_RESULTS.get((entry["model"], *setting[3:]))
        entry["lab_test_loss"], entry["lab_test_accuracy"] = lab if lab else (math.nan, math.nan)
        summary.append(entry)
    return summary


def lab_verdict(mean, std, lab, scale=1.0, unit="") -> str:
    """Whether the lab's number lies within our mean ± 2 std, and how far it is from the mean."""
    if math.isnan(lab):
        return ""
    delta = f"{(lab - mean) * scale:+.2f}{unit}" if unit else f"{lab - mean:+.4f}"
    if math.isnan(std):
        return f"n/a, one seed ({delta})"
    return f"{'yes' if abs(lab - mean) <= 2 * std else 'no'} ({delta})"


def markdown_table(summary, title: str) -> str:
    """Per model, the settings with mean ± std over seeds and the lab's numbers beside them."""
    lines = [f"# {title}", "",
             "Mean ± sample standard deviation over seeds, on the 10,000 test images. "
             "\"Lab inside ±2σ\" says whether the lab report's single-run number lies within "
             "our mean ± 2 std, and how far it is from our mean (lab − ours). Loss is the mean "
             "categorical cross-entropy; the lab's loss figures are on the same scale. s/epoch: "
             "training seconds per epoch (median after the first epoch, mean over seeds).", ""]
    for heading, _, entries in _groups(summary):
        lines += [f"## {heading}", "",
                  "| batch size | epochs | learning rate | seeds | test accuracy (%) | test loss "
                  "| lab accuracy (%) | lab loss | lab accuracy inside ±2σ | lab loss inside ±2σ | s/epoch |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
        for entry in entries:
            accuracy, accuracy_std = entry["test_accuracy_mean"], entry["test_accuracy_std"]
            loss, loss_std = entry["test_loss_mean"], entry["test_loss_std"]
            lab_accuracy, lab_loss = entry["lab_test_accuracy"], entry["lab_test_loss"]
            lines.append(
                f"| {entry['batch_size']} | {entry['epochs']} | {entry['learning_rate']:g} | {entry['seeds']} "
                f"| {_plus_minus(accuracy * 100, accuracy_std * 100, 2)} | {_plus_minus(loss, loss_std, 4)} "
                f"| {'' if math.isnan(lab_accuracy) else f'{lab_accuracy * 100:.2f}'} "
                f"| {'' if math.isnan(lab_loss) else f'{lab_loss:.4f}'} "
                f"| {lab_verdict(accuracy, accuracy_std, lab_accuracy, 100, ' pp')} "
                f"| {lab_verdict(loss, loss_std, lab_loss)} | {entry['seconds_per_epoch_mean']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def write_sweep_report(folder: Path, keys=None) -> list[Path]:
    """Rewrite table.csv, summary.csv, table.md and the figures from the cells; return the paths.

    ``keys`` limits the tables to the cells of the sweep as it is now defined (a
    cell of a grid value since removed stays on disk but leaves the tables).
    """
    from . import plots

    records = read_cell_records(folder)
    rows = cell_rows([record for record in records if keys is None or record["key"] in keys])
    if not rows:
        return []
    summary = summarize(rows)
    written = [folder / "table.csv", folder / "summary.csv", folder / "table.md"]
    atomic_write_text(written[0], _csv(rows, TABLE_FIELDS))
    atomic_write_text(written[1], _csv(summary, SUMMARY_FIELDS))
    atomic_write_text(written[2], markdown_table(summary, f"Sweep {folder.name}: test results"))
    for _, prefix, entries in _groups(summary):
        written += plots.sweep_figures(entries, folder / FIGURES_FOLDER, prefix)
    return written


def _groups(summary):
    """(heading, file prefix, entries) per base config and engine, in table order."""
    for name, engine in dict.fromkeys((entry["name"], entry["engine"]) for entry in summary):
        entries = [entry for entry in summary if (entry["name"], entry["engine"]) == (name, engine)]
        model = entries[0]["model"]
        heading = name + ("" if name == model else f" ({model})") + ("" if engine == "keras" else f", {engine} engine")
        yield heading, name if engine == "keras" else f"{name}-{engine}", entries


def _plus_minus(mean, std, digits) -> str:
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _csv(rows, fields) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({field: row[field] for field in fields} for row in rows)
    return buffer.getvalue()


SEPARABILITY_FIELDS = ("source", "method", "points", "neighborhood_hit",
                       *(f"neighborhood_hit_{label}" for label in range(10)),
                       "knn_accuracy", "silhouette", "trustworthiness", "hull_overlap", "seconds")
_SOURCE_NAMES = {"raw": "raw pixels", "mlp": "MLP hidden layer", "cnn": "CNN dense layer"}


def write_separability(rows: list[dict], folder: Path) -> list[Path]:
    """separability.csv and .md: one row per (source, method), and the lab's conclusion checked."""
    written = [folder / "separability.csv", folder / "separability.md"]
    atomic_write_text(written[0], _csv(rows, SEPARABILITY_FIELDS))
    atomic_write_text(written[1], separability_markdown(rows))
    return written


def separability_markdown(rows: list[dict]) -> str:
    lines = ["# Separability of the ten digits in 2-D", "",
             f"{rows[0]['points']:,} test images. NH: Neighborhood Hit, the share of each point's 6 nearest "
             "2-D neighbours with its label (the lab's measure). k-NN: 5-fold accuracy of a 6-NN classifier "
             "on the 2-D points. Silhouette: scikit-learn's, by class. Trustworthiness (k = 5): how well the "
             "map's neighbourhoods exist in the original space. Hull overlap: share of points inside another "
             "class's convex hull (lower is better).", "",
             "| source | method | NH | k-NN accuracy | silhouette | trustworthiness | hull overlap | "
             + " | ".join(f"NH {label}" for label in range(10)) + " |",
             "| --- | --- |" + " ---: |" * 15]
    for row in rows:
        lines.append(f"| {_SOURCE_NAMES.get(row['source'], row['source'])} | {row['method']} "
                     f"| {row['neighborhood_hit']:.3f} | {row['knn_accuracy']:.3f} | {row['silhouette']:.3f} "
                     f"| {row['trustworthiness']:.3f} | {row['hull_overlap']:.3f} | "
                     + " | ".join(f"{row[f'neighborhood_hit_{label}']:.3f}" for label in range(10)) + " |")
    lines += ["", *(_untangling_verdict(rows, method) for method in dict.fromkeys(row["method"] for row in rows))]
    return "\n".join(lines) + "\n"


def _untangling_verdict(rows, method) -> str:
    """The lab's conclusion (raw < MLP < CNN in NH), checked against this method's numbers."""
    hits = {row["source"]: row["neighborhood_hit"] for row in rows if row["method"] == method}
    order = [source for source in ("raw", "mlp", "cnn") if source in hits]
    chain = " < ".join(f"{source} {hits[source]:.3f}" for source in order)
    if len(order) < 2:
        return f"- {method}: only {chain}; nothing to compare."
    if all(hits[a] < hits[b] for a, b in zip(order, order[1:])):
        return (f"- {method}: NH {chain}: increasing from pixels to MLP to CNN, as the lab finds: "
                f"the networks' hidden layers untangle the classes.")
    ranked = " ≤ ".join(f"{source} {hits[source]:.3f}" for source in sorted(order, key=hits.get))
    return f"- {method}: NH is **not** ordered raw < MLP < CNN here: {ranked}."
