"""The benchmark harness (`make bench`): one run, same machine, a table of measured ratios.

1. seconds per training epoch, `mnist-lab train` against a plain Keras script, per model; and the
   whole `train` process against the plain script doing the same work (a test evaluation after
   every epoch), with peak memory, and the training loop's overhead over its training steps;
2. sweep wall time (shared trajectories, one process) against one `train` process per cell,
   on the logistic regression's grid of bench/sweep-grid.yaml (27 cells);
3. t-SNE of the 10,000 test images: the chosen method against scikit-learn's recipe;
4. `mnist-lab --help` start-up time;
5. content identity: ms per experiment key of a data path, cached against cold;
6. the logreg + MLP cells of bench/sweep-grid.yaml on Dask: --workers 2 and --workers 1 against serial;
7. resuming: seconds lost when a CNN training is killed at a random moment and run again,
   against the seconds of one epoch;
8. TensorBoard event files: a logistic regression's wall seconds per epoch with and without them;
9. `mnist-lab runs` over 1,000 generated results, against its goal of one second;
10. `visualize`, `report` and `sweep --report-only` with nothing to do, against two seconds;
11. `mnist-lab search`: epochs TPE with the median pruner, TPE and random search spend to reach
    the lab's grid's best validation accuracy, against the grid's epochs (bench/search_efficiency.py,
    which also draws docs/search_efficiency.png); and the study's storage, SQLite against Optuna's
    journal file, in ms per trial;
and the CNN's achieved training FLOP/s against this CPU's FP32 peak, with AVX-512 and with
oneDNN limited to AVX2.

    python bench/run.py
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import event_log_cost  # noqa: E402
import identity_cost  # noqa: E402
import parallel_speed  # noqa: E402
import resume_cost  # noqa: E402
import runs_listing  # noqa: E402
import search_efficiency  # noqa: E402
import search_storage  # noqa: E402
import sweep_speed  # noqa: E402
import train_speed  # noqa: E402
import tsne_options  # noqa: E402
import warm_commands  # noqa: E402
import whole_command  # noqa: E402

CHOSEN_TSNE = "openTSNE FFT 250 iterations"
# FP32 FLOP per cycle and core: two FMA units, 2 FLOP per FMA, 8 lanes with AVX2, 16 with AVX-512
# where the units are 512 bits wide (Zen 5, as on the development machine; Zen 4 double-pumps
# 256-bit units, so 32 there).
FP32_FLOP_PER_CYCLE = {"AVX2": 32, "AVX-512": 64}


def help_seconds(repeats=7) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mnist_lab", "--help"], check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def cnn_forward_multiply_adds() -> int:
    """Multiply-adds of one forward pass of the lab's CNN, from the model's layer shapes."""
    from mnist_lab.core.config import ModelConfig
    from mnist_lab.training.models import build_model

    total = 0
    for layer in build_model(ModelConfig(type="cnn")).layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            height, width, filters = layer.output.shape[1:]
            total += height * width * filters * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2]
        elif kind == "Dense":
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def cpu_peak_flops(isa: str) -> tuple:
    megahertz = next(float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz"))
    cores = len([line for line in open("/proc/cpuinfo") if line.startswith("processor")])
    return cores, megahertz, cores * megahertz * 1e6 * FP32_FLOP_PER_CYCLE[isa]


def cnn_share(seconds_per_epoch: float, isa: str, images: int) -> str:
    """The CNN's achieved training FLOP/s against this CPU's FP32 peak on ``isa``."""
    training_flop = 3 * 2 * cnn_forward_multiply_adds()  # forward + backward ≈ 3 forward passes
    achieved = training_flop * images / seconds_per_epoch
    cores, megahertz, peak = cpu_peak_flops(isa)
    return (f"CNN training, {isa}: {training_flop / 1e6:.1f} MFLOP per image x {images / seconds_per_epoch:,.0f} "
            f"images/s = {achieved / 1e9:.1f} GFLOP/s; FP32 peak {cores} cores x {megahertz / 1000:.2f} GHz x "
            f"{FP32_FLOP_PER_CYCLE[isa]} FLOP/cycle = {peak / 1e9:.1f} GFLOP/s; {achieved / peak:.0%} of peak "
            f"(at the nominal clock; turbo would lower the share)")


def main():
    rows = []
    speeds = train_speed.measure(repeats=2)
    for model, tool, plain in speeds:
        rows.append((f"train s/epoch, {model}", f"{tool:.3f}", f"{plain:.3f} (plain Keras)", tool / plain))
    for row in whole_command.measure():
        rows.append((f"train whole s, {row['model']} {row['epochs']} epochs",
                     f"{row['tool']:.1f} ({row['tool_mib']:.0f} MiB)",
                     f"{row['plain']:.1f} (plain + test each epoch, {row['plain_mib']:.0f} MiB)", row["ratio"]))
        rows.append((f"train loop overhead, {row['model']}", f"{row['loop'] - row['steps']:.1f} s",
                     f"{row['steps']:.1f} s (training steps)", row["overhead"]))
    sweep = sweep_speed.measure(only="logreg")
    rows.append((f"sweep wall s, {sweep['cells']} logreg cells", f"{sweep['sweep']:.1f}",
                 f"{sweep['naive']:.1f} (one train per cell)", sweep["sweep"] / sweep["naive"]))
    rows.append((f"sweep wall s per trained epoch, {sweep['epochs']} epochs", f"{sweep['sweep'] / sweep['epochs']:.3f}",
                 f"{sweep['steps'] / sweep['epochs']:.3f} (an epoch's training steps)", sweep["sweep"] / sweep["steps"]))
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
    logged = event_log_cost.measure()
    rows.append(("train wall s/epoch, event files", f"{logged['with']:.4f} (with)", f"{logged['without']:.4f} (without)",
                 logged["with"] / logged["without"]))
    listing = runs_listing.measure()
    rows.append((f"mnist-lab runs s, {listing['runs']:,} results", f"{listing['seconds']:.3f}", "1.000 (goal)",
                 listing["seconds"]))
    for name, (cold, warm) in warm_commands.measure().items():
        rows.append((f"{name} s, nothing to do", f"{warm:.2f} (warm)", f"2.00 (goal; cold {cold:.1f})", warm / 2))
    for model, method, _, grid_epochs, _, (near, hits), seeds, _, _ in search_efficiency.measure(
            figure=BENCH.parent / "docs" / "search_efficiency.png", log=lambda _: None):
        rows.append((f"search epochs to grid best, {model}, {method}",
                     "never" if near is None else f"{near:g} ({hits}/{seeds} seeds)",
                     f"{grid_epochs} (the grid; goal a third)", float("nan") if near is None else near / grid_epochs))
    storage = search_storage.measure()
    rows.append(("search storage ms per trial", f"{storage['sqlite']['one process ms/trial']:.1f} (SQLite)",
                 f"{storage['journal']['one process ms/trial']:.1f} (journal file)",
                 storage["sqlite"]["one process ms/trial"] / storage["journal"]["one process ms/trial"]))
    print(f"\n{'measure':34} {'mnist-lab':>34} {'baseline':>40} {'ratio':>7}")
    for name, ours, baseline, ratio in rows:
        print(f"{name:34} {ours:>34} {baseline:>40} {ratio:7.3f}")
    cnn_seconds = next(tool for model, tool, _ in speeds if model == "cnn")
    print()
    print(cnn_share(cnn_seconds, "AVX-512", 60000))
    with tempfile.TemporaryDirectory() as results:  # oneDNN limited to AVX2: what most laptops run
        avx2 = statistics.median(train_speed.tool_seconds("cnn", 3, results, "data.train_limit=20000",
                                                          environment={"ONEDNN_MAX_CPU_ISA": "AVX2"})[1:])
    print(cnn_share(avx2, "AVX2", 20000) + " (ONEDNN_MAX_CPU_ISA=AVX2, 20,000 images)")


if __name__ == "__main__":
    main()
