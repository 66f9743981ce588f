"""Figures, rendered headless (Agg) and deterministic."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from .files import atomic_path  # noqa: E402


def learning_curves(history: list[dict], path, title: str):
    """Loss and accuracy per epoch, train and test, side by side."""
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "accuracy", "accuracy")):
        for split, style in (("train", "-o"), ("test", "-s")):
            axis.plot(epochs, [row[f"{split}_{metric}"] for row in history], style, label=split, markersize=4)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    _save(figure, path)


def confusion_matrix(matrix: np.ndarray, path, title: str):
    """Counts of (true, predicted) digit pairs, with each count written in its cell."""
    matrix = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, label="test images")
    classes = range(len(matrix))
    axis.set_xticks(classes)
    axis.set_yticks(classes)
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("true digit")
    threshold = matrix.max() / 2
    for true in classes:
        for predicted in classes:
            count = matrix[true, predicted]
            axis.text(predicted, true, str(count), ha="center", va="center", fontsize=7,
                      color="white" if count > threshold else "black")
    axis.set_title(title)
    _save(figure, path)


def sweep_figures(summary: list[dict], folder, name: str) -> list:
    """A model's sweep figures: accuracy against epochs and against learning rate (one line
    per batch size, error bars over seeds) and batch size x learning rate heatmaps, each
    drawn only where its axes have more than one value."""
    values = {axis: sorted({entry[axis] for entry in summary}) for axis in ("batch_size", "epochs", "learning_rate")}
    written = []
    for x_axis, panel_axis in (("epochs", "learning_rate"), ("learning_rate", "epochs")):
        if len(values[x_axis]) > 1:
            path = folder / f"{name}_accuracy_vs_{x_axis}.png"
            _accuracy_lines(summary, x_axis, panel_axis, values, path, name)
            written.append(path)
    if len(values["batch_size"]) > 1 or len(values["learning_rate"]) > 1:
        path = folder / f"{name}_heatmap.png"
        _heatmaps(summary, values, path, name)
        written.append(path)
    return written


_LABELS = {"batch_size": "batch size", "epochs": "epochs", "learning_rate": "learning rate"}


def _accuracy_lines(summary, x_axis, panel_axis, values, path, name):
    panels = values[panel_axis]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, sharey=True)
    for axis, panel in zip(axes[0], panels):
        for batch_size in values["batch_size"]:
            points = sorted((entry[x_axis], entry["test_accuracy_mean"] * 100,
                             np.nan_to_num(entry["test_accuracy_std"]) * 100)
                            for entry in summary if entry[panel_axis] == panel and entry["batch_size"] == batch_size)
            if points:
                x, mean, std = zip(*points)
                axis.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=f"batch {batch_size}")
        axis.set_title(f"{_LABELS[panel_axis]} {panel:g}")
        axis.set_xlabel(_LABELS[x_axis])
        axis.set_xticks(values[x_axis])
        axis.grid(alpha=0.3)
        axis.legend()
    axes[0][0].set_ylabel("test accuracy (%), mean ± std over seeds")
    figure.suptitle(f"{name}: test accuracy against {_LABELS[x_axis]}")
    _save(figure, path)


def _heatmaps(summary, values, path, name):
    batch_sizes, rates, epochs = values["batch_size"], values["learning_rate"], values["epochs"]
    figure, axes = plt.subplots(1, len(epochs), figsize=(1.6 * len(rates) * len(epochs) + 2.5,
                                                         1.0 * len(batch_sizes) + 2.2), squeeze=False)
    cells = {(entry["batch_size"], entry["learning_rate"], entry["epochs"]): entry for entry in summary}
    accuracies = [entry["test_accuracy_mean"] * 100 for entry in summary]
    for axis, epoch_count in zip(axes[0], epochs):
        grid = np.full((len(batch_sizes), len(rates)), np.nan)
        for row, batch_size in enumerate(batch_sizes):
            for column, rate in enumerate(rates):
                entry = cells.get((batch_size, rate, epoch_count))
                if entry is not None:
                    grid[row, column] = entry["test_accuracy_mean"] * 100
                    spread = entry["test_accuracy_std"] * 100
                    text = f"{grid[row, column]:.2f}" + ("" if np.isnan(spread) else f"\n±{spread:.2f}")
                    axis.text(column, row, text, ha="center", va="center", fontsize=8)
        image = axis.imshow(grid, cmap="viridis", vmin=min(accuracies), vmax=max(accuracies), aspect="auto")
        axis.set_xticks(range(len(rates)), [f"{rate:g}" for rate in rates])
        axis.set_yticks(range(len(batch_sizes)), [str(size) for size in batch_sizes])
        axis.set_xlabel("learning rate")
        axis.set_ylabel("batch size")
        axis.set_title(f"{epoch_count} epochs")
    figure.colorbar(image, ax=axes[0].tolist(), label="test accuracy (%)")
    figure.suptitle(f"{name}: test accuracy, mean over seeds")
    _save(figure, path, tight=False)


def _save(figure, path, tight=True):
    if tight:
        figure.tight_layout()
    # No creation date in the metadata, so the same figure gives the same bytes;
    # written beside its final name and renamed, so a kill never leaves half a PNG.
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
