"""Figures, rendered headless (Agg) and deterministic."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402


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


def _save(figure, path):
    figure.tight_layout()
    # No creation date in the metadata, so the same figure gives the same bytes.
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
