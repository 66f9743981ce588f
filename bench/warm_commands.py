"""`visualize`, `report` and `sweep --report-only` when nothing has changed: seconds for the whole
command (a fresh process, start-up included), once cold (everything made) and then warm
(everything up to date: freshness.py), against the goal of two seconds.

They run on a copy of the committed results/ in a temporary folder. `visualize` embeds the raw
pixels of the first 2,000 test images (t-SNE and PCA): the MLP and CNN maps need trained runs,
which a fresh clone does not have, and the warm path is the same for every source.

    python bench/warm_commands.py [--repeats 5]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"visualize": ["visualize", "--sources", "raw", "--limit", "2000", "--quiet"],
            "report": ["report"],
            "sweep --report-only": ["sweep", "--report-only"]}


def seconds(arguments, results) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnist_lab", *arguments, "--results", results], cwd=ROOT, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def measure(repeats=5) -> dict:
    """Per command: (cold seconds, median warm seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        results = str(Path(folder) / "results")
        shutil.copytree(ROOT / "results", results, ignore=shutil.ignore_patterns(".made-from.json", "runs", "cache"))
        timings = {}
        for name, arguments in COMMANDS.items():
            cold = seconds(arguments, results)
            timings[name] = (cold, statistics.median(seconds(arguments, results) for _ in range(repeats)))
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    for name, (cold, warm) in measure(options.repeats).items():
        print(f"mnist-lab {name:20} cold {cold:6.2f} s, warm {warm:5.2f} s (goal 2 s: ratio {warm / 2:.2f})")


if __name__ == "__main__":
    main()
