"""What a user waits for: the whole `mnist-lab train` process against the plain Keras script doing
the same work (full MNIST, the lab's settings, the test set evaluated after every epoch), as
whole processes, paired and alternating, with each process's own wall time and peak memory.

Also, from the run's record, where the tool's time goes: ``wall_seconds`` (data, model, every
epoch with its evaluation and checkpoint) against the sum of the epochs' training steps
(``epoch_seconds``); the overhead is their difference as a share of the steps.

    python bench/whole_command.py                         # logreg 20 epochs, mlp 10, cnn 3
    python bench/whole_command.py --models logreg --pairs 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = {"logreg": 20, "mlp": 10, "cnn": 3}  # the settings: the lab's for logreg and mlp


def run_process(command) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one process, from the kernel's accounting."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    return seconds, usage.ru_maxrss / 1024


def tool_command(model_type, epochs, results):
    return [sys.executable, "-m", "mnist_lab", "train", model_type, "--set", f"training.epochs={epochs}",
            "--results", results, "--force", "--quiet", "--no-tensorboard"]


def plain_command(model_type, epochs):
    return [sys.executable, str(ROOT / "bench" / "plain_keras.py"), model_type, str(epochs), "--validate"]


def measure(models=tuple(EPOCHS), pairs=3) -> list[dict]:
    rows = []
    for model_type in models:
        epochs = EPOCHS[model_type]
        tool, plain, tool_memory, plain_memory, loops = [], [], [], [], []
        with tempfile.TemporaryDirectory() as results:
            for _ in range(pairs):
                seconds, memory = run_process(plain_command(model_type, epochs))
                plain.append(seconds)
                plain_memory.append(memory)
                seconds, memory = run_process(tool_command(model_type, epochs, results))
                tool.append(seconds)
                tool_memory.append(memory)
                record = json.loads(next((Path(results) / "runs").glob(f"{model_type}-*/metrics.json")).read_text())
                loops.append((record["wall_seconds"], sum(record["epoch_seconds"])))
        ratios = [ours / theirs for ours, theirs in zip(tool, plain)]
        rows.append({"model": model_type, "epochs": epochs, "tool": statistics.median(tool),
                     "plain": statistics.median(plain), "ratio": statistics.median(ratios),
                     "ratios": (min(ratios), max(ratios)), "tool_mib": max(tool_memory),
                     "plain_mib": max(plain_memory), "loop": statistics.median(wall for wall, _ in loops),
                     "steps": statistics.median(steps for _, steps in loops),
                     "overhead": statistics.median((wall - steps) / steps for wall, steps in loops)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(EPOCHS))
    parser.add_argument("--pairs", type=int, default=3)
    options = parser.parse_args()
    print(f"{'model':7} {'epochs':>6} {'train s':>8} {'plain s':>8} {'ratio (min-max)':>18} {'MiB':>12} "
          f"{'loop s':>7} {'steps s':>8} {'overhead':>9}")
    for row in measure(options.models.split(","), options.pairs):
        print(f"{row['model']:7} {row['epochs']:6} {row['tool']:8.1f} {row['plain']:8.1f} "
              f"{row['ratio']:6.2f} ({row['ratios'][0]:.2f}-{row['ratios'][1]:.2f}) "
              f"{row['tool_mib']:5.0f}/{row['plain_mib']:<5.0f} {row['loop']:7.1f} {row['steps']:8.1f} "
              f"{row['overhead']:9.0%}", flush=True)


if __name__ == "__main__":
    main()
