"""Figures, rendered headless (Agg) and deterministic."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from mnist_lab.core.files import atomic_path  # noqa: E402


def learning_curves(history: list[dict], path, title: str):
    """Loss and accuracy per epoch, train and test, side by side."""
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "accuracy", "accuracy")):
        for split, style in (("train", "-o"), ("test", "-s")):
            axis.plot(epochs, [row[f"{split}_{metric}"] for row in history], style, label=split, markersize=4)
        _whole_epochs(axis)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    _save(figure, path)


def loss_against_time(series: dict, path, title: str):
    """The test loss per epoch and against the training seconds spent, one line per (label ->
    (cumulative seconds, losses)), side by side: what a fixed number of epochs and a fixed budget
    of time each buy."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, (seconds, losses) in series.items():
        axes[0].plot(range(1, len(losses) + 1), losses, "-", label=label)
        axes[1].plot(seconds, losses, "-", label=label)
    _whole_epochs(axes[0])
    for axis, x_label in ((axes[0], "epoch"), (axes[1], "training seconds (mean over seeds)")):
        axis.set_xlabel(x_label)
        axis.set_ylabel("test cross-entropy")
        axis.set_yscale("log")
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
    figure, axes = plt.subplots(1, len(epochs), squeeze=False, sharey=True, layout="constrained",
                                figsize=(1.3 * len(rates) * len(epochs) + 2.5, 0.8 * len(batch_sizes) + 2.0))
    cells = {(entry["batch_size"], entry["learning_rate"], entry["epochs"]): entry for entry in summary}
    accuracies = [entry["test_accuracy_mean"] * 100 for entry in summary]
    low, high = min(accuracies), max(accuracies)
    for axis, epoch_count in zip(axes[0], epochs):
        grid = np.full((len(batch_sizes), len(rates)), np.nan)
        for row, batch_size in enumerate(batch_sizes):
            for column, rate in enumerate(rates):
                entry = cells.get((batch_size, rate, epoch_count))
                if entry is None:
                    continue
                grid[row, column] = entry["test_accuracy_mean"] * 100
                spread = entry["test_accuracy_std"] * 100
                text = f"{grid[row, column]:.2f}" + ("" if np.isnan(spread) else f"\n± {spread:.2f}")
                dark = high > low and (grid[row, column] - low) / (high - low) < 0.5
                axis.text(column, row, text, ha="center", va="center", fontsize=9,
                          color="white" if dark else "black")
        image = axis.imshow(grid, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        axis.set_xticks(range(len(rates)), [f"{rate:g}" for rate in rates])
        axis.set_yticks(range(len(batch_sizes)), [str(size) for size in batch_sizes])
        axis.set_xlabel("learning rate")
        axis.set_title(f"{epoch_count} epochs")
    axes[0][0].set_ylabel("batch size")
    figure.colorbar(image, ax=axes[0].tolist(), label="test accuracy (%)")
    figure.suptitle(f"{name}: test accuracy, mean ± std over seeds")
    _save(figure, path, tight=False)


def image_grid(images: np.ndarray, rows: int, columns: int, path, title: str):
    """Grey-level images in a rows x columns grid (the lab's Exercise 0)."""
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 0.6, rows * 0.6 + 0.5))
    for axis, image in zip(axes.ravel(), images):
        axis.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        axis.set_axis_off()
    figure.suptitle(title)
    _save(figure, path)


def embedding_panels(points, labels, hulls: dict, ellipses: dict, path, title: str,
                     ellipse_title="best-fit ellipse of each class"):
    """The lab's three stacked panels: points by class, the class hulls, the class ellipses."""
    from matplotlib.patches import Ellipse

    colors = plt.get_cmap("tab10")
    figure, axes = plt.subplots(3, 1, figsize=(7, 18), sharex=True, sharey=True)
    _scatter_by_class(axes[0], points, labels)
    axes[0].set_title(title)
    axes[0].legend(title="digit", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    for label, polygon in hulls.items():
        axes[1].fill(polygon[:, 0], polygon[:, 1], color=colors(label), alpha=0.12)
        axes[1].plot(polygon[:, 0], polygon[:, 1], color=colors(label), linewidth=1.2, label=str(label))
    axes[1].set_title("convex hull of each class")
    for label, (centre, width, height, angle) in ellipses.items():
        axes[2].add_patch(Ellipse(centre, width, height, angle=angle, facecolor=(*colors(label)[:3], 0.15),
                                  edgecolor=colors(label), linewidth=1.5))
        axes[2].annotate(str(label), centre, ha="center", va="center", fontsize=10, weight="bold",
                         color=colors(label))
    axes[2].set_title(ellipse_title)
    for axis in axes[1:]:
        axis.legend(handles=_class_handles(colors, sorted({*hulls, *ellipses})), title="digit",
                    loc="center left", bbox_to_anchor=(1.0, 0.5))
    for axis in axes:
        axis.grid(alpha=0.2)
    _save(figure, path)


def untangling(panels: list, labels, path):
    """The lab's headline picture: t-SNE of raw pixels and of the hidden layers, side by side."""
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5.5), squeeze=False)
    for axis, (title, points) in zip(axes[0], panels):
        _scatter_by_class(axis, points, labels)
        axis.set_title(title)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][-1].legend(title="digit", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.suptitle("Manifold untangling: t-SNE of the test images, Neighborhood Hit (k = 6)")
    _save(figure, path)


def _scatter_by_class(axis, points, labels):
    colors = plt.get_cmap("tab10")
    for label in np.unique(labels):
        members = points[labels == label]
        axis.scatter(members[:, 0], members[:, 1], s=2, color=colors(label), label=str(label), rasterized=True)


def _class_handles(colors, labels):
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=colors(label), linewidth=3, label=str(label)) for label in labels]


def _whole_epochs(axis):
    """An epoch axis: labelled "epoch", ticks on whole epochs only (not 1.2, 1.4, … of a short run)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(figure, path, tight=True):
    if tight:
        figure.tight_layout()
    # No creation date in the metadata, so the same figure gives the same bytes;
    # written beside its final name and renamed, so a kill never leaves half a PNG.
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)


def save_axes(axes, path):
    """The figure of ``axes`` (one, or an array of them, as another library drew it) written as
    every figure here is: without a date, atomically."""
    import numpy as np

    first = np.asarray(axes, dtype=object).flat[0]
    _save(first.get_figure(), path, tight=False)  # laid out by the library that drew it
