"""The benchmark harness (`make bench`): one run, same machine, a table of measured ratios.

1. seconds per training epoch, `mnist-lab train` against a plain Keras script, per model;
2. sweep wall time (shared trajectories, one process) against one `train` process per cell,
   on the logistic regression's grid of configs/sweep.yaml (27 cells);
3. t-SNE of the 10,000 test images: the chosen method against scikit-learn's recipe;
4. `mnist-lab --help` start-up time;
5. content identity: ms per experiment key of a data path, cached against cold;
6. the logreg + MLP cells of configs/sweep.yaml on Dask: --workers 2 and --workers 1 against serial;
7. resuming: seconds lost when a CNN training is killed at a random moment and run again,
   against the seconds of one epoch;
and the CNN's achieved training FLOP/s against this CPU's FP32 peak.

    python bench/run.py
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import identity_cost  # noqa: E402
import parallel_speed  # noqa: E402
import resume_cost  # noqa: E402
import sweep_speed  # noqa: E402
import train_speed  # noqa: E402
import tsne_options  # noqa: E402

CHOSEN_TSNE = "openTSNE FFT 250 iterations"
FP32_FLOP_PER_CYCLE = 32  # two 8-wide FMA units, 2 FLOP per FMA (AVX2; Zen 4 double-pumps AVX-512)


def help_seconds(repeats=7) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mnist_lab", "--help"], check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def cnn_forward_multiply_adds() -> int:
    """Multiply-adds of one forward pass of the lab's CNN, from the model's layer shapes."""
    from mnist_lab.config import ModelConfig
    from mnist_lab.models import build_model

    total = 0
    for layer in build_model(ModelConfig(type="cnn")).layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            height, width, filters = layer.output.shape[1:]
            total += height * width * filters * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2]
        elif kind == "Dense":
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def cpu_peak_flops() -> tuple:
    megahertz = next(float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz"))
    cores = len([line for line in open("/proc/cpuinfo") if line.startswith("processor")])
    return cores, megahertz, cores * megahertz * 1e6 * FP32_FLOP_PER_CYCLE


def main():
    rows = []
    speeds = train_speed.measure(repeats=2)
    for model, tool, plain in speeds:
        rows.append((f"train s/epoch, {model}", f"{tool:.3f}", f"{plain:.3f} (plain Keras)", tool / plain))
    sweep = sweep_speed.measure(only="logreg")
    rows.append((f"sweep wall s, {sweep['cells']} logreg cells", f"{sweep['sweep']:.1f}",
                 f"{sweep['naive']:.1f} (one train per cell)", sweep["sweep"] / sweep["naive"]))
    (_, recipe_s, recipe_nh, recipe_t), (_, chosen_s, chosen_nh, chosen_t) = tsne_options.measure([CHOSEN_TSNE])
    rows.append(("t-SNE s, 10,000 test images", f"{chosen_s:.1f} (NH {chosen_nh:.3f}, T {chosen_t:.3f})",
                 f"{recipe_s:.1f} (sklearn; NH {recipe_nh:.3f}, T {recipe_t:.3f})", chosen_s / recipe_s))
    rows.append(("mnist-lab --help s", f"{help_seconds():.3f}", "", float("nan")))
    parallel = parallel_speed.measure()
    serial = parallel["seconds"]["serial"]
    for workers in ("workers 2", "workers 1"):
        rows.append((f"sweep wall s, {parallel['cells']} cells, --{workers}",
                     f"{parallel['seconds'][workers]:.1f}", f"{serial:.1f} (serial)",
                     parallel["seconds"][workers] / serial))
    resumed = resume_cost.measure(repeats=5)
    after_checkpoint = [lost for lost, redone in zip(resumed["lost"], resumed["redone"]) if redone is not None]
    lost = statistics.median(after_checkpoint) if after_checkpoint else float("nan")
    rows.append(("resume s lost, CNN killed at random", f"{lost:.1f} (work redone + restart)",
                 f"{resumed['epoch']:.2f} (one epoch, 20,000 images)", lost / resumed["epoch"]))
    key = identity_cost.measure()
    rows.append(("experiment key ms, full MNIST path", f"{key['cache file']:.3f} (cached)",
                 f"{key['cold']:.1f} (cold: read and digest)", key["cache file"] / key["cold"]))
    print(f"\n{'measure':34} {'mnist-lab':>34} {'baseline':>40} {'ratio':>7}")
    for name, ours, baseline, ratio in rows:
        print(f"{name:34} {ours:>34} {baseline:>40} {ratio:7.3f}")
    cnn_seconds = next(tool for model, tool, _ in speeds if model == "cnn")
    training_flop = 3 * 2 * cnn_forward_multiply_adds()  # forward + backward ≈ 3 forward passes
    achieved = training_flop * 60000 / cnn_seconds
    cores, megahertz, peak = cpu_peak_flops()
    print(f"\nCNN training: {training_flop / 1e6:.1f} MFLOP per image x {60000 / cnn_seconds:,.0f} images/s = "
          f"{achieved / 1e9:.1f} GFLOP/s; FP32 peak {cores} cores x {megahertz / 1000:.2f} GHz x "
          f"{FP32_FLOP_PER_CYCLE} FLOP/cycle = {peak / 1e9:.1f} GFLOP/s; {achieved / peak:.0%} of peak "
          f"(at the nominal clock; turbo would lower the share)")


if __name__ == "__main__":
    main()
