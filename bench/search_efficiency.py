"""How soon a search finds what the lab's grid finds: Optuna's TPE with the median pruner, TPE
alone and random search against the grid over the same ranges, counted in training epochs.

Per model (logistic regression, MLP), on a validation split of 6,000 training images and the
first 10,000 of the others (a slice, so that many repeats fit; the same for every method):
- the grid: batch size 300/400/500 x learning rate 0.2/0.3/0.5 x epochs 10/15/20 (the lab's,
  configs/sweep-full.yaml), run as `mnist-lab sweep` runs it: cells differing only in epochs
  share one training, 9 trainings of 20 epochs = 180 epochs; its best validation accuracy is the
  target (27 trials of a search would train 405);
- each search: the same ranges (batch size one of 300/400/500, learning rate 0.2-0.5 on a log
  scale, epochs 10-20), 27 trials, sampler seeds 0..N-1, each in an empty results folder.

Epochs spent: every epoch a search trained (a pruned trial's up to where it stopped; a trial
with the fields of an earlier one is answered from its cell and costs none, and so does a trial
passed on a longer one's way, whose cell that training wrote). A search reaches
the target at the first trial whose validation accuracy is at least the grid's best (strict),
or within one standard error of it (sqrt(p (1 - p) / 6,000): 0.004 at 90 %; the grid's best is
the largest of 27 noisy measurements, so a strict target also asks a search to match luck).

    python bench/search_efficiency.py [--models logreg,mlp] [--seeds 5] [--figure PATH]

Prints, per model and method, the grid's best and epochs, the median epochs to reach it over the
seeds (when more than half reach it; "never" otherwise) and the ratio to the grid's epochs, for
both targets; draws best-so-far validation accuracy against epochs spent.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VALIDATION_IMAGES = 6000
SLICE = f"[data.train_limit=10000, data.validation={VALIDATION_IMAGES}]"  # the grid's (a search's: validation:)
GRID = {"batch_size": [300, 400, 500], "learning_rate": [0.2, 0.3, 0.5], "epochs": [10, 15, 20]}
SPACE = ("  training.batch_size: {choices: [300, 400, 500]}\n"
         "  training.learning_rate: {low: 0.2, high: 0.5, log: true}\n"
         "  training.epochs: {low: 10, high: 20}\n")
METHODS = {"TPE + median pruner": ("tpe", "median"), "TPE": ("tpe", "none"), "random": ("random", "none")}
TRIALS = 27


def grid(model: str, folder: Path) -> tuple:
    """The grid's best validation accuracy and the epochs its sweep trains."""
    from mnist_lab.core.output import Output, silent
    from mnist_lab.core.sweep_plan import load_sweep, longest, trajectories
    from mnist_lab.results import store
    from mnist_lab.training.sweep import run_sweep

    path = folder / f"grid-{model}.yaml"
    path.write_text(f"name: grid-{model}\nseeds: [0]\nmodels:\n  - config: {model}\n    set: {SLICE}\n"
                    + "".join(f"    {axis}: {values}\n" for axis, values in GRID.items()))
    sweep = load_sweep(path)
    run_sweep(sweep, folder / "results", output=Output(log=silent, progress=False), event_logs=False)
    records = store.read_cells(store.sweep_folder(folder / "results", sweep.name)).records.values()
    epochs = sum(longest(group).config.total_epochs for group in trajectories(list(sweep.cells)))
    return max(record["validation_accuracy"] for record in records), epochs


def search(model: str, method: str, seed: int, folder: Path) -> list:
    """(epochs spent so far, best validation accuracy so far) after each trial of one search."""
    from mnist_lab.core.output import Output, silent
    from mnist_lab.core.search_plan import load_search
    from mnist_lab.training.search import run_search

    sampler, pruner = METHODS[method]
    path = folder / f"{model}-{sampler}-{pruner}-{seed}.yaml"
    path.write_text(f"name: s\nconfig: {model}\nset: [data.train_limit=10000]\nvalidation: {VALIDATION_IMAGES}\n"
                    f"trials: {TRIALS}\n"
                    f"sampler: {sampler}\npruner: {pruner}\nseed: {seed}\nspace:\n{SPACE}")
    with tempfile.TemporaryDirectory() as results:
        study = run_search(load_search(path), results, output=Output(log=silent, progress=False),
                           event_logs=False).study
        curve, spent, best = [], 0, float("-inf")
        for trial in study.trials:
            answered = any(name.startswith("answered_by_") for name in trial.user_attrs)
            spent += 0 if answered else len(trial.intermediate_values)
            if trial.state.name == "COMPLETE":
                best = max(best, trial.value)
            curve.append((spent, best))
    return curve



def epochs_to_reach(curve, target):
    return next((spent for spent, best in curve if best >= target - 1e-12), None)


def standard_error(accuracy: float) -> float:
    from mnist_lab.analysis.evidence import accuracy_standard_error

    return accuracy_standard_error(accuracy, VALIDATION_IMAGES)


def median_to_reach(curves, target):
    """Median epochs to reach ``target`` over the seeds, None unless more than half reach it; and how many do."""
    reached = [epochs for epochs in (epochs_to_reach(curve, target) for curve in curves) if epochs is not None]
    return (statistics.median(reached) if len(reached) * 2 > len(curves) else None), len(reached)


def measure(models=("logreg", "mlp"), seeds=5, figure=None, log=print) -> list:
    """Rows: (model, method, grid best, grid epochs, (median epochs to reach, seeds reaching) strictly
    and within one standard error, seeds, median final best, median epochs spent)."""
    rows, curves, grids = [], {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for model in models:
            target, grid_epochs = grids[model] = grid(model, folder)
            log(f"{model}: grid best validation accuracy {target:.4f} after {grid_epochs} epochs")
            for method in METHODS:
                found = [search(model, method, seed, folder) for seed in range(seeds)]
                curves[model, method] = found
                strict = median_to_reach(found, target)
                near = median_to_reach(found, target - standard_error(target))
                rows.append((model, method, target, grid_epochs, strict, near, seeds,
                             statistics.median(curve[-1][1] for curve in found),
                             statistics.median(curve[-1][0] for curve in found)))
                log(f"  {method}: epochs to reach strictly {[epochs_to_reach(curve, target) for curve in found]}, "
                    f"within 1 s.e. {[epochs_to_reach(curve, target - standard_error(target)) for curve in found]}; "
                    f"median best {rows[-1][7]:.4f} after {rows[-1][8]} epochs")
    if figure is not None:
        draw(curves, models, grids, figure)
    return rows


def draw(curves, models, grids, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    colors = dict(zip(METHODS, ("tab:red", "tab:blue", "tab:gray")))
    for axis, model in zip(axes[0], models):
        target, grid_epochs = grids[model]
        for method in METHODS:
            for index, curve in enumerate(curves.get((model, method), [])):
                axis.step([spent for spent, _ in curve], [best for _, best in curve], where="post",
                          color=colors[method], alpha=0.6, label=method if index == 0 else None)
        axis.axhline(target, color="black", linestyle="--", linewidth=1, label="grid's best")
        axis.axvline(grid_epochs, color="black", linestyle=":", linewidth=1, label="grid's epochs")
        axis.set(title=f"{model}: best validation accuracy so far", xlabel="epochs trained", ylabel="accuracy")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="logreg,mlp")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--figure", default=str(ROOT / "docs" / "search_efficiency.png"))
    arguments = parser.parse_args()
    from mnist_lab.core import backend_logs

    backend_logs.quiet([])
    rows = measure(tuple(arguments.models.split(",")), arguments.seeds, arguments.figure)
    print(f"\n{'model':8} {'method':20} {'grid best':>9} {'grid ep.':>8} {'strictly':>16} {'within 1 s.e.':>16}")
    for model, method, target, grid_epochs, strict, near, seeds, _, _ in rows:
        print(f"{model:8} {method:20} {target:9.4f} {grid_epochs:8} {_reach(strict, seeds, grid_epochs):>16} "
              f"{_reach(near, seeds, grid_epochs):>16}")


def _reach(found, seeds, grid_epochs) -> str:
    """"<median epochs> (<ratio to the grid>) <k>/<seeds>", or "never k/seeds"."""
    median, hits = found
    return f"never {hits}/{seeds}" if median is None else f"{median:g} ({median / grid_epochs:.2f}) {hits}/{seeds}"


if __name__ == "__main__":
    main()
