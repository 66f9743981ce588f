"""The cost of content identity: milliseconds per experiment key, cold and cached.

A key names its data by content, so the first key of a data path reads and
digests the data; later keys read a small cache file (keyed by real path,
size, inode, device and modification time) or the process's memo. Measured
on full MNIST (an .npz copy at a path), each case in a fresh process so no
memo or page state carries over, plus the shipped copy (no I/O at all).

    python bench/identity_cost.py [--repeats 5]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One timing in a fresh process: the key of a config, `repeats` times, milliseconds each.
PROBE = """
import json, sys, time
from mnist_lab.core.config import Config, DataConfig, ModelConfig
from mnist_lab.core.identity import experiment_key
config = Config(model=ModelConfig(type="logreg"), data=DataConfig(path=sys.argv[1] or None))
timings = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    experiment_key("logreg", config)
    timings.append((time.perf_counter() - started) * 1000)
print(json.dumps(timings))
"""


def probe(path, calls, cache) -> list:
    result = subprocess.run([sys.executable, "-c", PROBE, str(path or ""), str(calls)], check=True,
                            capture_output=True, text=True, env={**os.environ, "MNIST_LAB_CACHE": str(cache)})
    return json.loads(result.stdout)


def measure(repeats=5) -> dict:
    """Median milliseconds per key: cold (no cache), from the cache file, from the memo, shipped data."""
    from mnist_lab.core.data import shipped_path

    work = Path(tempfile.mkdtemp(prefix="identity-cost-"))
    try:
        data = work / "mnist.npz"
        shutil.copy(shipped_path(), data)
        cold, cache_file, memo, shipped = [], [], [], []
        for index in range(repeats):
            cache = work / f"cache-{index}"
            first, *later = probe(data, 20, cache)  # no cache yet: reads and digests the data
            cold.append(first)
            memo.extend(later)
            cache_file.append(probe(data, 1, cache)[0])  # a new process: the cache file answers
            shipped.extend(probe(None, 20, cache))
        return {name: statistics.median(values) for name, values in
                (("cold", cold), ("cache file", cache_file), ("memo", memo), ("shipped", shipped))}
    finally:
        shutil.rmtree(work)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    costs = measure(parser.parse_args().repeats)
    for name, milliseconds in costs.items():
        print(f"{name:11} {milliseconds:9.3f} ms per key")
    print(f"cold / cache file: {costs['cold'] / costs['cache file']:.0f}x")


if __name__ == "__main__":
    main()
