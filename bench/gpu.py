"""The GPU measurement, in one short call: s/epoch per model, then the full grid's wall time.

On a GPU machine (JAX backend; the machine needs mnist-lab, Keras and jax[cuda]):
1. each model trains 3 epochs alone (`mnist-lab train`): s/epoch after the first, the
   device and whether XLA compiled it (from the run's record);
2. `configs/sweep-full.yaml` (243 cells, 81 trajectories of 20 epochs) runs with each
   worker layout asked for (`--workers N`, the workers sharing the GPUs in turn), each
   in a fresh results folder, stopped at --budget seconds; its wall time, or the cells
   it finished by then;
3. the serial wall time is estimated from step 1 (81 trajectories x 20 epochs at the
   models' s/epoch, plus one graph compilation each), as one serial run of the whole grid
   would not fit the few minutes a GPU is lent for.
Each line is printed as soon as it is measured, so a run cut short still reports.

    KERAS_BACKEND=jax python bench/gpu.py --layouts 4,8
    python bench/gpu.py --train-images 2000 --layouts 2 --budget 60   # a smoke run on a CPU
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("logreg", "mlp", "cnn")
GRID = {"cells": 243, "trajectories_per_model": 27, "epochs": 20}


def mnist_lab(*arguments):
    return [sys.executable, "-m", "mnist_lab", *arguments]


def epoch_seconds(model, results, train_images) -> dict:
    limit = ["--set", f"data.train_limit={train_images}"] if train_images else []
    subprocess.run(mnist_lab("train", f"configs/{model}.yaml", "--set", "training.epochs=3", *limit, "--quiet",
                             "--force", "--results", str(results)), cwd=ROOT, check=True, capture_output=True)
    record = json.loads(next((results / "runs").glob(f"{model}-*/metrics.json")).read_text())
    return {"seconds": record["seconds_per_epoch"], "first": record["epoch_seconds"][0],
            "device": record.get("device"), "jit_compile": record.get("jit_compile")}


def sweep_seconds(workers, results, train_images, budget) -> tuple:
    """(wall seconds, cells finished, whether it completed) of the full grid on ``workers``."""
    limit = ["--set", f"data.train_limit={train_images}"] if train_images else []
    started = time.perf_counter()
    process = subprocess.Popen(mnist_lab("sweep", "configs/sweep-full.yaml", "--workers", str(workers), *limit,
                                         "--quiet", "--results", str(results)), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # the sweep shuts its cluster down
        process.wait(timeout=60)
    cells = len(list((results / "sweeps" / "full" / "cells").glob("*.json")))
    return time.perf_counter() - started, cells, process.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default="4,8", help="worker counts to try, e.g. 4,8")
    parser.add_argument("--train-images", type=int, help="a slice, for a smoke run (default: all 60,000)")
    parser.add_argument("--budget", type=float, default=300, help="seconds each sweep may take")
    options = parser.parse_args()
    print(f"backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}, "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}", flush=True)
    serial = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for model in MODELS:
            found = epoch_seconds(model, Path(folder) / model, options.train_images)
            serial += GRID["trajectories_per_model"] * (found["first"] + (GRID["epochs"] - 1) * found["seconds"])
            print(f"{model:7} {found['seconds']:.3f} s/epoch (first {found['first']:.2f} s) on {found['device']}, "
                  f"jit_compile {found['jit_compile']}", flush=True)
        print(f"serial full grid, estimated from these: {serial:.0f} s", flush=True)
        for workers in (int(value) for value in options.layouts.split(",")):
            seconds, cells, complete = sweep_seconds(workers, Path(folder) / f"workers-{workers}",
                                                     options.train_images, options.budget)
            state = "complete" if complete else f"stopped at the {options.budget:.0f} s budget"
            print(f"--workers {workers}: {seconds:.0f} s, {cells}/{GRID['cells']} cells ({state}); "
                  f"estimated serial / this = {serial / seconds:.2f}" if complete else
                  f"--workers {workers}: {cells}/{GRID['cells']} cells in {seconds:.0f} s ({state})", flush=True)


if __name__ == "__main__":
    main()
