"""Seconds lost when a CNN training is killed at a random moment and run again.

A `mnist-lab train` of the CNN runs once uninterrupted (wall time W); then,
per repeat, it is killed with SIGKILL at a uniformly random moment of that
span (after k seconds) and the same command is run again (R seconds), which
resumes from the last epoch's checkpoint. Lost = k + R − W: the epoch cut
short plus the second process's start-up (imports, data, graph tracing).
The work redone is the time from the last checkpoint's write (its mtime) to
the kill: checkpoints bound it by one epoch and its evaluation; the rest is
the second start-up. Without checkpoints the rerun would start over: it
would lose all k seconds.

    python bench/resume_cost.py                 # 20,000 training images, 5 epochs, 3 kills
    python bench/resume_cost.py --repeats 5 --train-images 60000
"""

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(results, train_images, epochs):
    return [sys.executable, "-m", "mnist_lab", "train", "configs/cnn.yaml", "--quiet", "--results", str(results),
            "--set", f"data.train_limit={train_images}", "--set", f"training.epochs={epochs}"]


def timed(arguments) -> float:
    started = time.perf_counter()
    subprocess.run(arguments, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def killed_after(arguments, seconds, checkpoints: Path):
    """Run ``arguments``, SIGKILL it after ``seconds``: (killed, seconds of work since its last
    checkpoint, None before the first one); (False, None) when it finished before."""
    process = subprocess.Popen(arguments, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=seconds)
        return False, None
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        killed = time.time()
        process.wait()
    saved = list(checkpoints.glob("*.checkpoint.npz"))
    return True, (killed - saved[0].stat().st_mtime if saved else None)


def measure(train_images=20000, epochs=5, repeats=3, seed=0) -> dict:
    draw = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        clean = Path(folder) / "clean"
        whole = timed(command(clean, train_images, epochs))
        run = next((clean / "runs").glob("cnn-*"))
        epoch = statistics.median(json.loads((run / "metrics.json").read_text())["epoch_seconds"])
        lost, restart, redone = [], [], []
        for repeat in range(repeats):
            results = Path(folder) / f"killed-{repeat}"
            kill_at = draw.uniform(0, whole)
            killed, since_checkpoint = killed_after(command(results, train_images, epochs), kill_at,
                                                    results / "runs" / ".checkpoints")
            if not killed:
                continue
            rerun = timed(command(results, train_images, epochs))
            lost.append(kill_at + rerun - whole)
            restart.append(kill_at)
            redone.append(since_checkpoint)
    return {"whole": whole, "epoch": epoch, "lost": lost, "restart": restart, "redone": redone}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    found = measure(options.train_images, options.epochs, options.repeats)
    print(f"uninterrupted: {found['whole']:.1f} s, one epoch {found['epoch']:.2f} s")
    for lost, restart, redone in zip(found["lost"], found["restart"], found["redone"]):
        where = ("before the first checkpoint (start-up or epoch 1: nothing to resume)" if redone is None else
                 f"work since the last checkpoint {redone:4.1f} s ({redone / found['epoch']:.2f} epochs), "
                 f"the restart {lost - redone:4.1f} s")
        print(f"killed after {restart:5.1f} s: lost {lost:5.1f} s, {where}; starting over would lose {restart:5.1f} s")
    after_checkpoint = [(lost, redone) for lost, redone in zip(found["lost"], found["redone"]) if redone is not None]
    if after_checkpoint:
        median = statistics.median(lost for lost, _ in after_checkpoint)
        print(f"killed after a checkpoint: median lost {median:.1f} s = {median / found['epoch']:.2f} x one epoch; "
              f"work since the last checkpoint at most {max(r for _, r in after_checkpoint) / found['epoch']:.2f} "
              f"epochs (an epoch and its test evaluation)")


if __name__ == "__main__":
    main()
