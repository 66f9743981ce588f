"""Sweep wall time: `mnist-lab sweep` (one process, shared trajectories) against the naive
way (one fresh `mnist-lab train` process per cell), same cells, same machine, one run.

Also checks that both ways give the same test accuracy and loss for every cell, and how the
sweep's wall time per trained epoch compares with an epoch's training steps (the cells' own
``train_seconds``: what is left is start-up, data, evaluation, checkpoints and writing).

    python bench/sweep_speed.py                         # bench/sweep-grid.yaml, logreg and mlp
    python bench/sweep_speed.py --only logreg --set data.train_limit=10000
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lab.core.sweep_plan import load_sweep, longest, trajectories  # noqa: E402
from mnist_lab.results.store import sweep_folder  # noqa: E402


def timed(command) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(sweep="bench/sweep-grid.yaml", only="logreg,mlp", overrides=()) -> dict:
    """Wall seconds of the sweep and of one train process per cell, and how many cells agree."""
    plan = load_sweep(ROOT / sweep, overrides, only=only.split(","))
    tool = [sys.executable, "-m", "mnist_lab"]
    options = [option for override in overrides for option in ("--set", override)]
    with tempfile.TemporaryDirectory() as sweep_results, tempfile.TemporaryDirectory() as naive_results:
        sweep_seconds = timed([*tool, "sweep", sweep, "--only", only, "--results", sweep_results, "--quiet", *options])
        cells = sweep_folder(sweep_results, plan.name) / "cells"
        trained = [json.loads((cells / f"{longest(group).key}.json").read_text())["history"]
                   for group in trajectories(plan.cells)]
        epochs, steps = sum(map(len, trained)), sum(row["train_seconds"] for history in trained for row in history)
        naive_seconds, same = 0.0, 0
        for cell in plan.cells:
            training = cell.config.training
            naive_seconds += timed([*tool, "train", f"configs/{cell.name}.yaml", "--results", naive_results, "--quiet",
                                    *options, "--set", f"training.batch_size={training.batch_size}",
                                    "--set", f"training.epochs={training.epochs}",
                                    "--set", f"training.learning_rate={training.learning_rate}",
                                    "--set", f"seed={cell.config.seed}"])
            naive = json.loads((Path(naive_results) / "runs" / cell.key / "metrics.json").read_text())
            shared = json.loads((cells / f"{cell.key}.json").read_text())
            same += (naive["test_accuracy"], naive["test_loss"]) == (shared["test_accuracy"], shared["test_loss"])
    return {"cells": len(plan.cells), "sweep": sweep_seconds, "naive": naive_seconds, "same": same,
            "epochs": epochs, "steps": steps}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", default="bench/sweep-grid.yaml")
    parser.add_argument("--only", default="logreg,mlp")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    options = parser.parse_args()
    result = measure(options.sweep, options.only, options.overrides)
    print(f"cells: {result['cells']} ({options.only})")
    print(f"sweep (one process, shared trajectories): {result['sweep']:8.1f} s")
    print(f"naive (one train process per cell):       {result['naive']:8.1f} s")
    print(f"ratio: {result['sweep'] / result['naive']:.2f} ({result['naive'] / result['sweep']:.2f}x faster); "
          f"cells with identical test metrics: {result['same']}/{result['cells']}")
    print(f"sweep wall per trained epoch: {result['sweep'] / result['epochs']:.3f} s over {result['epochs']} epochs, "
          f"{result['sweep'] / result['steps']:.2f}x an epoch's training steps "
          f"({result['steps'] / result['epochs']:.3f} s)")


if __name__ == "__main__":
    main()
