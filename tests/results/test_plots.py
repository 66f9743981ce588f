import numpy as np

from mnist_lab.results import plots

HISTORY = [{"epoch": epoch, "train_loss": 1 / epoch, "train_accuracy": 1 - 0.1 / epoch,
            "test_loss": 1.1 / epoch, "test_accuracy": 1 - 0.12 / epoch} for epoch in (1, 2, 3)]


def test_figures_are_written_and_deterministic(tmp_path):
    matrix = np.arange(100).reshape(10, 10)
    for name in ("a", "b"):
        plots.learning_curves(HISTORY, tmp_path / f"curves_{name}.png", "title")
        plots.confusion_matrix(matrix, tmp_path / f"confusion_{name}.png", "title")
    for kind in ("curves", "confusion"):
        first, second = (tmp_path / f"{kind}_{name}.png" for name in ("a", "b"))
        assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and first.stat().st_size > 10_000
        assert first.read_bytes() == second.read_bytes()
