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


def test_epoch_axes_tick_whole_epochs_only(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path, tight=True: drawn.append(figure))
    history = [{"epoch": epoch, "train_loss": 1 / epoch, "test_loss": 1 / epoch, "train_accuracy": 0.5 + epoch / 10,
                "test_accuracy": 0.5 + epoch / 10} for epoch in (1, 2)]
    plots.learning_curves(history, tmp_path / "curves.png", "two epochs")
    plots.loss_against_time({"a": ([0.5, 1.0], [0.9, 0.8])}, tmp_path / "time.png", "two epochs")
    epoch_axes = [*drawn[0].axes, drawn[1].axes[0]]
    for axis in epoch_axes:
        shown = [tick for tick in axis.get_xticks() if axis.get_xlim()[0] <= tick <= axis.get_xlim()[1]]
        assert shown and all(float(tick).is_integer() for tick in shown), shown
