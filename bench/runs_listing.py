"""`mnist-lab runs` on a large results folder: seconds for the whole command (a fresh process,
start-up included) over generated results, half train runs and half sweep cells, against the
goal of one second for 1,000.

The results are copies of a committed lab-sweep cell with other seeds, each under the key its
record deserves, so every one validates as a real result would (the listing checks each
record's identity). The train runs get a placeholder model file: the listing never reads it.

    python bench/runs_listing.py [--runs 1000] [--repeats 5]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_lab.core.identity import identity_hash, record_experiment  # noqa: E402
from mnist_lab.results.store import CELLS_FOLDER, METRICS_FILE, RUNS_FOLDER, SWEEPS_FOLDER  # noqa: E402


def generate(results: Path, count: int):
    template = json.loads(next((ROOT / "results" / "sweeps" / "lab" / CELLS_FOLDER).glob("logreg-*.json")).read_text())
    for seed in range(count):
        record = {**template, "seed": seed, "config": {**template["config"], "seed": seed}}
        key = f"{record['name']}-{identity_hash(record_experiment(record, 'bench'))}"
        record["key"] = key
        if seed % 2:
            path = results / SWEEPS_FOLDER / "bench" / CELLS_FOLDER / f"{key}.json"
        else:
            path = results / RUNS_FOLDER / key / METRICS_FILE
            record = {**record, "confusion_matrix": [[0] * 10] * 10}
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "model.keras").write_bytes(b"placeholder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))


def measure(runs=1000, repeats=5) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        generate(Path(folder), runs)
        timings, lines = [], 0
        for _ in range(repeats):
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "mnist_lab", "runs", "--results", folder, "--format", "csv"],
                                    check=True, capture_output=True, text=True)
            timings.append(time.perf_counter() - started)
            lines = len(result.stdout.splitlines()) - 1
    if lines != runs:
        raise RuntimeError(f"listed {lines} rows, expected {runs}")
    return {"runs": runs, "seconds": statistics.median(timings)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    result = measure(arguments.runs, arguments.repeats)
    print(f"mnist-lab runs, {result['runs']:,} results: {result['seconds']:.3f} s (median of {arguments.repeats}); "
          f"goal 1 s: ratio {result['seconds']:.2f}")


if __name__ == "__main__":
    main()
