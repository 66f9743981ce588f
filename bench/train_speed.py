"""Training seconds per epoch: `mnist-lab train` against the plain Keras script.

Both run on full MNIST, in fresh processes, alternating so that machine noise
falls on both; each side's figure is the median over epochs after the first
(graph building), pooled over repeats. Per-epoch test evaluation is excluded
from the tool's figure (its EpochRecorder stops the clock before evaluating).

    python bench/train_speed.py                    # all three models
    python bench/train_speed.py --models logreg,mlp --epochs 6 --repeats 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EPOCHS = {"logreg": 6, "mlp": 6, "cnn": 3}


def plain_seconds(model_type, epochs):
    output = subprocess.run([sys.executable, str(ROOT / "bench" / "plain_keras.py"), model_type, str(epochs)],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["epoch_seconds"]


def tool_seconds(model_type, epochs, results, *overrides, environment=None):
    """Epoch seconds of `mnist-lab train` (``environment``: extra variables, e.g. an ISA limit)."""
    subprocess.run([sys.executable, "-m", "mnist_lab", "train", f"configs/{model_type}.yaml",
                    "--set", f"training.epochs={epochs}", *(item for override in overrides for item in ("--set", override)),
                    "--results", results, "--force", "--quiet"],
                   cwd=ROOT, check=True, capture_output=True, text=True, env={**os.environ, **(environment or {})})
    run = next((Path(results) / "runs").glob(f"{model_type}-*"))
    return json.loads((run / "metrics.json").read_text())["epoch_seconds"]


def measure(models=("logreg", "mlp", "cnn"), epochs=None, repeats=2) -> list:
    """(model, mnist-lab median s/epoch, plain Keras median s/epoch) per model."""
    rows = []
    for model_type in models:
        count = epochs or DEFAULT_EPOCHS[model_type]
        tool, plain = [], []
        with tempfile.TemporaryDirectory() as results:
            for _ in range(repeats):
                plain += plain_seconds(model_type, count)[1:]
                tool += tool_seconds(model_type, count, results)[1:]
        rows.append((model_type, statistics.median(tool), statistics.median(plain)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="logreg,mlp,cnn")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: 6, CNN 3)")
    parser.add_argument("--repeats", type=int, default=2)
    options = parser.parse_args()
    print(f"{'model':8} {'mnist-lab s/epoch':>18} {'plain Keras s/epoch':>20} {'ratio':>7}")
    for model_type, tool, plain in measure(options.models.split(","), options.epochs, options.repeats):
        print(f"{model_type:8} {tool:18.3f} {plain:20.3f} {tool / plain:7.3f}", flush=True)


if __name__ == "__main__":
    main()
