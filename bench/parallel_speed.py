"""Sweep wall time on Dask workers against the serial sweep, same cells, same machine, one run.

The logreg and MLP cells of bench/sweep-grid.yaml on full MNIST (36 cells, 18
trajectories): serial (one process), `--workers 1` (the overhead of Dask) and
`--workers 2` (one compute thread each on this 2-core machine). Also the
largest difference of any cell's test loss and accuracy from the serial run
(the thread count per worker changes the order of float sums).

    python bench/parallel_speed.py [--only logreg,mlp] [--set data.train_limit=5000]
"""

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sweep_seconds(results, only, overrides, *options) -> float:
    command = [sys.executable, "-m", "mnist_lab", "sweep", "bench/sweep-grid.yaml", "--only", only, "--results",
               str(results), "--quiet", *[item for override in overrides for item in ("--set", override)], *options]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def metrics(results) -> dict:
    with open(Path(results) / "sweeps" / "bench" / "table.csv") as stream:
        return {row["key"]: (float(row["test_loss"]), float(row["test_accuracy"])) for row in csv.DictReader(stream)}


def measure(only="logreg,mlp", overrides=()) -> dict:
    """Wall seconds of each way and the largest metric difference from serial."""
    seconds, tables = {}, {}
    for name, options in (("serial", ()), ("workers 1", ("--workers", "1")), ("workers 2", ("--workers", "2"))):
        with tempfile.TemporaryDirectory() as results:
            seconds[name] = sweep_seconds(results, only, overrides, *options)
            tables[name] = metrics(results)
    differences = {name: max(max(abs(a - b) for a, b in zip(tables[name][key], tables["serial"][key]))
                             for key in tables["serial"]) for name in tables}
    return {"cells": len(tables["serial"]), "seconds": seconds, "differences": differences}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="logreg,mlp")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    options = parser.parse_args()
    result = measure(options.only, options.overrides)
    serial = result["seconds"]["serial"]
    print(f"{result['cells']} cells ({options.only})")
    for name, seconds in result["seconds"].items():
        print(f"{name:10} {seconds:8.1f} s  serial/this {serial / seconds:5.2f}x  "
              f"largest |Δ| of a test metric from serial {result['differences'][name]:.3g}")


if __name__ == "__main__":
    main()
