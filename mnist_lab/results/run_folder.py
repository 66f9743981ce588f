"""A run folder's files: its resolved config, model summary, model, history, figures and record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mnist_lab.core.config import to_yaml
from mnist_lab.results import plots, store

HISTORY_FILE = "history.csv"


def write_run(folder: Path, name, config, model, summary, history, metrics):
    """Every file of a run folder; metrics.json last, so its presence means the rest is written."""
    (folder / "config.yaml").write_text(to_yaml(config))
    (folder / "summary.txt").write_text(summary + "\n")
    model.save(folder / store.MODEL_FILE[config.engine])
    # csv's own line ends (\r\n), as history.csv always had; tables use files.csv_text (\n).
    with open(folder / HISTORY_FILE, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=store.history_fields(history))
        writer.writeheader()
        writer.writerows(history)
    title = f"{name}: test accuracy {metrics['test_accuracy']:.2%}"
    plots.learning_curves(history, folder / "learning_curves.png", title)
    plots.confusion_matrix(np.array(metrics["confusion_matrix"]), folder / "confusion_matrix.png", title)
    (folder / store.METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")


def read_history(folder: Path) -> list[dict]:
    """A run's history.csv: one dict per epoch, the epoch an int, the rest floats."""
    with open(folder / HISTORY_FILE, newline="") as stream:
        return [{name: int(value) if name == "epoch" else float(value) for name, value in row.items()}
                for row in csv.DictReader(stream)]
