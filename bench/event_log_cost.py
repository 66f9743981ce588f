"""What TensorBoard logging costs a training: `mnist-lab train` with and without event files
(--no-tensorboard), alternating in fresh processes on the same machine.

The figure is the run's wall seconds per epoch (training, per-epoch test evaluation, the
checkpoint and the log writes after each epoch, and the final run files: everything from
loading the data to publishing the run), median over repeats. The logistic regression has the
shortest epochs, so a fixed per-epoch cost shows most there.

    python bench/event_log_cost.py [--model logreg] [--epochs 10] [--repeats 5]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall_per_epoch(model, epochs, results, logs: bool) -> float:
    subprocess.run([sys.executable, "-m", "mnist_lab", "train", model, "--set", f"training.epochs={epochs}",
                    "--results", results, "--force", "--quiet", "--tensorboard" if logs else "--no-tensorboard"],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    (run,) = (Path(results) / "runs").glob(f"{model}-*")
    if logs != (run / "tensorboard").is_dir():
        raise RuntimeError(f"{run}: event files {'missing' if logs else 'written with --no-tensorboard'}")
    return json.loads((run / "metrics.json").read_text())["wall_seconds"] / epochs


def measure(model="logreg", epochs=10, repeats=5) -> dict:
    timings = {True: [], False: []}
    with tempfile.TemporaryDirectory() as results:
        for _ in range(repeats):
            for logs in (True, False):
                timings[logs].append(wall_per_epoch(model, epochs, results, logs))
    return {"model": model, "with": statistics.median(timings[True]), "without": statistics.median(timings[False])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="logreg")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    result = measure(options.model, options.epochs, options.repeats)
    print(f"{result['model']} wall s/epoch: with event files {result['with']:.4f}, without {result['without']:.4f}, "
          f"ratio {result['with'] / result['without']:.3f}")


if __name__ == "__main__":
    main()
