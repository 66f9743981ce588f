import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mnist_lab.analysis import report
from mnist_lab.core.config import ModelConfig
from mnist_lab.core.data import prepare
from mnist_lab.training.models import build_model
from mnist_lab.training.numpy_engine import NumpyModel
from mnist_lab.analysis import lab, report_answers, report_checks

from conftest import ROOT, cell_record, other_cpu_kernels, write_cells


def test_logreg_loss_is_convex_and_the_mlp_loss_is_not():
    checks = report_checks.convexity_checks(images=100, segments=20)
    assert checks["logreg"]["max_excess"] <= 1e-10
    assert checks["mlp"]["max_excess"] > 0.01


def test_a_step_of_one_over_the_bound_never_increases_the_loss(mnist):
    arrays = prepare(mnist, "logreg", train_limit=300)
    x, y = arrays.train_inputs().astype(np.float64), arrays.y_train.astype(np.float64)
    step = 1 / report_checks.loss_landscape(x, arrays.y_train.argmax(axis=1))["smoothness_bound"]
    model = NumpyModel.initialised(ModelConfig(type="logreg"), seed=0, dtype=np.float64)
    losses = [model.loss(x, y)]
    for _ in range(30):
        model.sgd_step(x, y, step)  # the whole slice as one batch: gradient descent
        losses.append(model.loss(x, y))
    assert all(later <= earlier + 1e-12 for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] - 0.1


def test_report_is_generated_from_the_cells_and_regenerates_identically(tmp_path, mnist):
    # An empty folder: what the data alone allows, and every missing part named with its command.
    lines = []
    text = report.write_report(tmp_path, log=lines.append).read_text()
    assert lines == [f"Wrote {tmp_path / 'REPORT.md'} (7 parts missing; it names them and the commands that make them)"]
    for sweep, command in (("lab", "mnist-lab sweep"), ("notebook", "mnist-lab sweep sweep-notebook"),
                           ("cnn", "mnist-lab sweep sweep-cnn"), ("engines", "mnist-lab sweep sweep-engines"),
                           ("schedules", "mnist-lab sweep sweep-schedules"), ("gd", "mnist-lab sweep sweep-gd")):
        # The commands write where this report reads: --results names this folder.
        assert re.search(rf"^- `sweeps/{sweep}`: all \d+ cells \(.+\): `{command} --results {re.escape(str(tmp_path))}` ",
                         text, re.MULTILINE), sweep
    assert ("- `embeddings/`: the t-SNE and PCA maps and their measures (Part 3 and its answers): "
            f"`mnist-lab visualize --results {tmp_path}`") in text
    assert "- **not run**: 9 of 9" in text and "## The three models" in text
    records = [cell_record(mnist, "logreg", 300, 10, 0.5, seed, accuracy, loss)
               for seed, accuracy, loss in ((0, 0.9220, 0.272), (1, 0.9225, 0.274), (2, 0.9230, 0.276))]
    # Cells of a slice in the same folder must not change any number of the report.
    records += [cell_record(mnist, "logreg", 300, 10, 0.5, seed, 0.5, 2.0, train_limit=500) for seed in (0, 1)]
    write_cells(tmp_path / "sweeps" / "lab", records)
    path = report.write_report(tmp_path)
    first = path.read_text()
    assert ("| logreg | 300 | 10 | 0.5 | 92.26%, 0.2737 | 92.25% ± 0.05%, 0.2740 ± 0.0020 (3 seeds) | yes (+0.0, +0.0) | — |  "
            "| reproduced by fresh models |") in first
    assert "| cnn | 300 | 10 | 0.5 | 98.26%, 0.1003 | — |  | — |  | not run |" in first
    assert "- **reproduced by fresh models**: 1 of 9 (logreg batch 300, 10 epochs, lr 0.5)." in first
    assert "| cnn | conv1: (24, 24, 32), 5 · 5 · 1 · 32 + 32 = 832;" in first and "| 155,606 |" in first
    assert "![logreg learning curves](report/logreg_learning_curves.png)" in first
    assert (tmp_path / "report" / "logreg_learning_curves.png").stat().st_size > 10_000
    lines = []
    assert report.write_report(tmp_path, log=lines.append).read_text() == first
    assert lines == [f"Up to date: {tmp_path / 'REPORT.md'} was made from these results by this code"]
    # (Made again from the same cells, the same bytes: test_the_committed_results_regenerate_… below.)
    # A changed cell makes it again.
    changed = cell_record(mnist, "logreg", 300, 10, 0.5, 1, 0.9240, 0.270)
    write_cells(tmp_path / "sweeps" / "lab", [changed])
    lines.clear()
    assert "92.30% ± 0.10%" in report.write_report(tmp_path, log=lines.append).read_text()
    assert len(lines) == 1 and lines[0].startswith(f"Wrote {tmp_path / 'REPORT.md'} (7 parts missing;")


def test_a_damaged_separability_table_is_named_not_a_crash(tmp_path, mnist):
    write_cells(tmp_path / "sweeps" / "lab", [cell_record(mnist, "logreg", 300, 10, 0.5, seed, 0.922, 0.274)
                                              for seed in (0, 1)])
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "separability.csv").write_text("source,method,points\nraw,tsne,")
    lines = []
    report.write_report(tmp_path, log=lines.append)
    assert lines and lines[0].startswith(f"Warning: damaged result, treated as not done: "
                                         f"{tmp_path / 'embeddings' / 'separability.csv'}: expected the columns")


def test_the_no_minimiser_counts_on_a_small_fixture():
    # Four 2x2 images: pixel 0 lit only in class 0, pixel 1 never, pixels 2 and 3 in both classes.
    x = np.array([[1, 0, 1, 0], [0.5, 0, 0, 1], [0, 0, 1, 1], [0, 0, 0.5, 1]])
    facts = report_checks.loss_landscape(x, np.array([0, 0, 1, 1]), image_width=2)
    assert (facts["never_lit"], facts["one_class"]) == (1, 1)
    assert facts["example"] == {"row": 0, "column": 0, "label": 0, "images": 2}
    assert facts["rank"] == np.linalg.matrix_rank(np.hstack([x, np.ones((4, 1))])) == 4  # the zero column costs one
    gram = np.hstack([x, np.ones((4, 1))]).T @ np.hstack([x, np.ones((4, 1))]) / 4
    # Two classes: the Hessian at zero weights is X̃ᵀX̃/n ⊗ (diag(p) − ppᵀ), p = 1/2, top eigenvalue 1/2.
    assert facts["start_curvature"] == pytest.approx(np.linalg.eigvalsh(gram)[-1] / 2)
    assert facts["smoothness_bound"] == pytest.approx(np.linalg.eigvalsh(gram)[-1] / 2)


def test_the_minimiser_answer_is_worded_by_its_numbers():
    facts = {"pixels": 784, "images": 60000, "never_lit": 67, "one_class": 33, "rank": 713,
             "example": {"row": 1, "column": 19, "label": 6, "images": 30},
             "smoothness_bound": 19.5, "start_curvature": 3.9, "batch_size": 300,
             "batch_start_curvatures": [3.8, 4.2, 4.0, 3.95]}
    text = report_answers.minimiser_answer(facts, 0.5)
    assert "Not to a minimum" in text and "lit in 30 images, all of class 6" in text
    assert "has rank 713, not 785: its null space has 72 dimensions" in text
    assert "flat along a subspace of 785 + 9 · 72 = 1,433 of the 7,850 parameters' directions" in text
    assert "No rate is claimed here: the textbook O(1/k) bound assumes a minimiser" in text
    assert ("the first epoch's 4 batches of 300 images (seed 0's order) runs from 0.476 to 0.526, and 1 of them "
            "(25%) have a limit below the step") in text  # 2/4.0 = 0.5 is not below
    assert "The step 0.5 (the course's; the lab report prints no learning rate for the logistic regression" in text
    assert "exceeds that worst-case bound" in text and "the step lies below it" in text
    other = report_answers.minimiser_answer({**facts, "one_class": 0, "example": None, "rank": 785, "never_lit": 0,
                                     "start_curvature": 10.0}, 0.05)
    assert "does not apply here" in other and "Not to a minimum" not in other and "flat along" not in other
    assert "reproduces its losses) lies below that worst-case bound" in other


def _group(accuracy, std, seeds=5):
    return {"test_accuracy_mean": accuracy, "test_accuracy_std": std, "seeds": seeds}


def test_a_trend_is_stated_only_beyond_the_seeds_noise():
    rises, falls = "accuracy rises with the learning rate", "accuracy falls with the learning rate"
    beyond = report_answers.trend([("0.2", _group(0.9288, 0.0008)), ("0.5", _group(0.9489, 0.0009))], rises, falls)
    assert beyond == ("Accuracy rises with the learning rate: +2.01 points from 0.2 to 0.5, beyond the seeds' "
                      "noise (Welch's t-test, p < 0.001).")
    # The report's epochs: +0.08 points from first to last with stds of 0.09-0.14: not a trend; its one
    # step beyond noise (10 to 15) is named as such.
    inside = report_answers.trend([("10", _group(0.9226, 0.0009)), ("15", _group(0.9241, 0.0008)),
                                   ("20", _group(0.9234, 0.0014))], rises, falls)
    assert inside.startswith("Not distinguishable from the seeds' noise at the 5 % level: the accuracy changes by "
                             "+0.08 points from 10 to 20") and "rises" not in inside
    assert "beyond noise step by step: 10 to 15 (+0.15 points" in inside and "from noise: 15 to 20." in inside
    # The same means from seeds ten times tighter: beyond noise from first to last, but not a direction,
    # since one step goes the other way.
    tight = report_answers.trend([("10", _group(0.9226, 0.00009)), ("15", _group(0.9241, 0.00008)),
                                  ("20", _group(0.9234, 0.00014))], rises, falls)
    assert tight.startswith("The accuracy is higher at 20 than at 10 (+0.08 points from 10 to 20), beyond")
    assert "15 to 20 (-0.07 points" in tight and "rises" not in tight
    falling = report_answers.trend([("a", _group(0.95, 0.001)), ("b", _group(0.94, 0.001)), ("c", _group(0.93, 0.001))],
                                   rises, falls)
    assert falling.startswith("Accuracy falls with the learning rate: -2.00 points from a to c, every step beyond")
    loss = report_answers.trend([("a", {"test_loss_mean": 0.27, "test_loss_std": 0.001, "seeds": 5}),
                                 ("b", {"test_loss_mean": 0.28, "test_loss_std": 0.001, "seeds": 5})],
                                "the loss rises", "the loss falls", metric="loss")
    assert loss.startswith("The loss rises: +0.0100 from a to b, beyond the seeds' noise")
    one_seed = report_answers.trend([("a", _group(0.92, float("nan"), 1)), ("b", _group(0.93, float("nan"), 1))],
                                    rises, falls)
    assert one_seed == "The accuracy changes by +1.00 points from a to b (no spread over seeds to judge it by)."


def test_the_convexity_answer_is_worded_by_the_chord_checks():
    checks = {"images": 500, "logreg": {"segments": 110, "max_excess": -9.9e-3}, "mlp": {"max_excess": 0.365}}
    text = report_answers.convexity_answer(checks)
    assert "the loss never rises above the chord" in text and "the MLP's loss is not convex" in text
    odd = report_answers.convexity_answer({**checks, "logreg": {"segments": 110, "max_excess": 1e-3},
                                   "mlp": {"max_excess": -1e-4}})
    assert "never rises" not in odd and "rises 1.00e-03 above a chord" in odd
    assert "the MLP's loss is not convex" not in odd and "no evidence here against convexity" in odd


def test_the_cnn_hypotheses_are_judged_by_the_one_definition(tmp_path, mnist):
    lab = [cell_record(mnist, "logreg", 300, 10, 0.5, seed, 0.9226, loss) for seed, loss in enumerate((0.27, 0.2737, 0.28))]
    write_cells(tmp_path / "sweeps" / "lab", lab)
    far = [cell_record(mnist, "cnn", 300, 10, 0.5, seed, 0.978 + seed / 1e4, 0.068 + seed / 1e3) for seed in range(3)]
    near = [cell_record(mnist, "cnn", 300, 30, 0.5, seed, 0.9826 + (seed - 1) / 1e3, 0.09 + seed / 1e2)
            for seed in range(3)]
    write_cells(tmp_path / "sweeps" / "cnn", far)
    text = report.write_report(tmp_path).read_text()
    assert "**None of the 1 hypotheses reproduces the lab's pair.** Closest: batch 300, 10 epochs, lr 0.5" in text
    write_cells(tmp_path / "sweeps" / "cnn", near)
    text = report.write_report(tmp_path).read_text()
    assert ("Not excluded by the criterion (inside the interval): batch 300, 30 epochs, lr 0.5 (the prediction "
            "interval of its 3 seeds spans our mean ± 0.50% in accuracy and ± 0.0497 in loss") in text
    assert "| batch 300, 30 epochs, lr 0.5 | 3 | 98.26% ± 0.10% | 0.1000 ± 0.0100 | +0.0 | +0.0 | yes |" in text
    # Two descriptions with the same numbers seed by seed are one experiment: listed once, counted once.
    twin = [cell_record(mnist, "cnn", 300, 20, 0.5, seed, 0.978 + seed / 1e4, 0.068 + seed / 1e3) for seed in range(3)]
    write_cells(tmp_path / "sweeps" / "cnn", twin)
    text = report._cnn_section(tmp_path / "sweeps" / "cnn", print)  # the section alone: the rest is unchanged
    assert ("| batch 300, 10 epochs, lr 0.5 = batch 300, 20 epochs, lr 0.5 (one experiment: the same numbers seed "
            "by seed) | 3 |") in text
    assert "(inside the interval): batch 300, 30 epochs, lr 0.5 (" in text and "of 2 groups" in text  # not 3


def _separability_row(source, method, hit, hull, trust=0.99, ellipse=0.5, runs=1, std=math.nan):
    row = {"source": source, "method": method, "points": 1000.0, "runs": runs, "neighborhood_hit": hit,
           "hull_overlap": hull, "trustworthiness": trust, "ellipse_overlap": ellipse,
           **{f"neighborhood_hit_{label}": hit - label / 1000 for label in range(10)}}
    return {**row, **{f"{measure}_std": std for measure in ("neighborhood_hit", "hull_overlap", "trustworthiness",
                                                             "ellipse_overlap")}}


def test_the_measures_answer_is_worded_by_the_separability_table():
    rows = [_separability_row("raw", "tsne", 0.90, 0.95, ellipse=0.6), _separability_row("mlp", "tsne", 0.93, 0.97, ellipse=0.5),
            _separability_row("cnn", "tsne", 0.97, 0.80, ellipse=0.2)]
    text = report_answers.measures_answer(rows)
    assert "NH 0.900 → 0.930 → 0.970 (better at every step)" in text
    assert "in one t-SNE run of each map and one trained model per network" in text  # no spread: no finding
    assert "hull overlap 0.950 → 0.970 → 0.800 (not better at every step: pixels to MLP: not better)" in text
    assert "ellipse overlap 0.600 → 0.500 → 0.200 (better at every step)" in text
    assert "highest NH (the CNN, 0.970), 3.0% of a point's neighbours" in text and "80.0% of its points" in text
    assert "and 20.0% inside another class's ellipse" in text and "from 3.0% for 0 to 3.9% for 9" in text
    # When the networks lose NH, the answer says so and names the best map.
    worse = [_separability_row("raw", "tsne", 0.95, 0.9), _separability_row("cnn", "tsne", 0.91, 0.85)]
    text = report_answers.measures_answer(worse)
    assert "NH 0.950 → 0.910 (not better at every step: pixels to CNN: not better)" in text
    assert "highest NH (raw pixels, 0.950)" in text
    # Over runs: the README's raw 0.930 < MLP 0.937 with t-SNE runs spread by 0.004 is within noise; the
    # same steps with runs spread by 0.0004 are beyond it.
    spread = [_separability_row(source, "tsne", hit, 0.9, runs=3, std=std) for source, hit, std in
              (("raw", 0.930, 0.004), ("mlp", 0.937, 0.004), ("cnn", 0.973, 0.004))]
    text = report_answers.measures_answer(spread)
    assert "NH 0.930 → 0.937 → 0.973 (not better at every step beyond noise: pixels to MLP: within noise)" in text
    assert "over 3 t-SNE runs (seeds) of each map, of one trained model per network" in text
    tight = [{**row, "neighborhood_hit_std": 0.0004} for row in spread]
    assert "NH 0.930 → 0.937 → 0.973 (better at every step, beyond noise)" in report_answers.measures_answer(tight)


def test_the_projection_answer_names_which_method_keeps_more():
    rows = [_separability_row("raw", "tsne", 0.93, 0.9, trust=0.99), _separability_row("raw", "pca", 0.40, 0.9, 0.75),
            _separability_row("cnn", "tsne", 0.90, 0.9, trust=0.80), _separability_row("cnn", "pca", 0.95, 0.9, 0.85)]
    text = report_answers.projection_answer(rows, 0.176)
    assert "they hold 17.6% of it" in text
    assert "On raw pixels, NH 0.930 (t-SNE) against 0.400 (PCA), trustworthiness 0.990 against 0.750, hull overlap " \
           "0.900 against 0.900, ellipse overlap 0.500 against 0.500: NH and trustworthiness favour t-SNE; hull " \
           "overlap and ellipse overlap favour neither" in text
    assert "on the CNN, NH 0.900 (t-SNE) against 0.950 (PCA), trustworthiness 0.800 against 0.850, hull overlap " \
           "0.900 against 0.900, ellipse overlap 0.500 against 0.500: NH and trustworthiness favour PCA" in text
    mixed = report_answers.projection_answer([rows[0], _separability_row("raw", "pca", 0.40, 0.85, trust=0.995,
                                                                         ellipse=0.4)], 0.2)
    assert "NH favours t-SNE; trustworthiness, hull overlap and ellipse overlap favour PCA" in mixed  # lower overlap is better
    alike = report_answers.projection_answer([rows[0], _separability_row("raw", "pca", 0.40, 0.95, trust=0.5,
                                                                         ellipse=0.6)], 0.2)
    assert "all 4 favour t-SNE" in alike
    assert "openTSNE, which mnist-lab uses, places new points into an existing map" in text
    # Over runs, a difference within the spread favours neither method.
    noisy = [_separability_row("raw", "tsne", 0.93, 0.9, trust=0.99, runs=3, std=0.02),
             _separability_row("raw", "pca", 0.40, 0.91, trust=0.98, runs=3, std=0.02)]
    noisy_text = report_answers.projection_answer(noisy, 0.2)
    assert "NH favours t-SNE; trustworthiness, hull overlap and ellipse overlap favour neither" in noisy_text
    assert "measured over 3 t-SNE runs (seeds)" in noisy_text


def _summary_entry(batch, accuracy, accuracy_std, loss=0.27, loss_std=0.001):
    lab_loss, lab_accuracy = lab.LAB_RESULTS[("logreg", batch, 10, 0.5)]
    return {"model": "logreg", "engine": "keras", "batch_size": batch, "epochs": 10, "learning_rate": 0.5,
            "test_accuracy_mean": accuracy, "test_accuracy_std": accuracy_std, "test_loss_mean": loss,
            "test_loss_std": loss_std, "lab_test_accuracy": lab_accuracy, "lab_test_loss": lab_loss, "seeds": 5}


def test_the_batch_size_answer_is_worded_by_the_sweeps():
    fresh = [_summary_entry(300, 0.9228, 0.0015), _summary_entry(400, 0.9220, 0.0003), _summary_entry(500, 0.9218, 0.0003)]
    continued = [_summary_entry(400, 0.9255, 0.0009, 0.2669, 0.0008), _summary_entry(500, 0.9256, 0.0006, 0.2664, 0.0009)]
    text = report_answers.batch_size_answer(fresh, continued, 60000)
    assert "batch 300 → 200 updates, 92.28% ± 0.15%" in text and "batch 500 → 120 updates" in text
    assert "Not distinguishable from the seeds' noise at the 5 % level: the accuracy changes by -0.10 points" in text
    assert "+0.28 points from batch 300 to 500 (92.26%, 92.60%, 92.54%)" in text
    assert "reproduces the lab's numbers after the stages 400×10, 500×10 (table above): consistent with every one" in text
    # A continued stage that misses the lab's numbers is named: a hypothesis consistent with some stages only.
    missing = continued + [{**_summary_entry(300, 0.9257, 0.0008, 0.2664, 0.0006), "epochs": 20,
                            "lab_test_accuracy": 0.9242, "lab_test_loss": 0.2704}]  # its loss 2.2 half-widths off
    text = report_answers.batch_size_answer(fresh, missing, 60000)
    assert ("reproduces the lab's numbers after the stages 400×10, 500×10 and not after 300×20 (table above): "
            "consistent with some of the lab's numbers, not with all.") in text
    # Fresh models rising with the batch beyond noise, no continued model: no hypothesis.
    rising = [_summary_entry(300, 0.9220, 0.0005), _summary_entry(500, 0.9250, 0.0005)]
    text = report_answers.batch_size_answer(rising, [], 60000)
    assert "Accuracy rises with the batch size: +0.30 points from 300 to 500, beyond the seeds' noise" in text
    assert "The loss changes by" not in text and "the loss" in text.lower()
    assert "hypothesis" not in text and text.endswith("92.54%).")
    assert report_answers.batch_size_answer(rising[:1], [], 60000) == ""


def test_the_accuracy_and_loss_sentence_follows_the_groups():
    def group(accuracy, loss):
        return {"test_accuracy_mean": accuracy, "test_loss_mean": loss}

    text = report_answers.accuracy_and_loss(0.9826, 0.1003, [group(0.9899, 0.0296), group(0.9844, 0.0497), group(0.96, 0.13)])
    assert text == ("2 of 3 groups reach the lab's accuracy of 98.26% on average; their mean losses run from 0.0296 "
                    "to 0.0497, all below the lab's 0.1003: none pairs that accuracy with that loss.")
    paired = report_answers.accuracy_and_loss(0.9826, 0.1003, [group(0.9830, 0.1010), group(0.9850, 0.05)])
    assert paired.endswith("1 of them at or above the lab's 0.1003.") and "none pairs" not in paired
    assert report_answers.accuracy_and_loss(0.9826, 0.1003, [group(0.97, 0.1)]) == (
        "No group's mean accuracy reaches the lab's 98.26% (the highest: 97.00%).")


def test_the_committed_results_regenerate_to_the_same_bytes_on_other_cpu_kernels(tmp_path):
    """REPORT.md and every sweep's tables and figures, made again from the committed results under
    another OpenBLAS kernel than this CPU's own and with oneDNN limited to AVX2 (both at once: one
    regeneration, as it costs 20 s), are the committed files byte for byte."""
    variants = {"other": other_cpu_kernels()}
    committed = ROOT / "results"
    local = (".made-from.json", ".lock")  # a checkout's own records (ignored by git), never results
    expected = {path.relative_to(committed): path.read_bytes() for path in committed.rglob("*")
                if path.is_file() and path.name not in local}
    processes = {}
    for name, variables in variants.items():
        copy = tmp_path / name
        shutil.copytree(committed, copy, ignore=shutil.ignore_patterns(*local))
        commands = [["report", "--results", str(copy)]] + [
            ["sweep", sweep, "--report-only", "--results", str(copy)]
            for sweep in ("sweep", "sweep-cnn", "sweep-notebook", "sweep-engines", "sweep-schedules", "sweep-gd")]
        # The seven commands in one process (the kernels are chosen as it starts): one import, not seven.
        program = ("import sys\nfrom click.testing import CliRunner\nfrom mnist_lab import cli\n"
                   f"for arguments in {commands!r}:\n"
                   "    result = CliRunner().invoke(cli.main, arguments)\n"
                   "    print(result.output)\n"
                   "    if result.exit_code != 0:\n"
                   "        sys.exit(f'{arguments}: exit {result.exit_code}: {result.exception!r}')\n")
        processes[name] = subprocess.Popen([sys.executable, "-c", program], env={**os.environ, **variables},
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert out.count("Wrote") >= 7, out  # every file was made again, not found up to date
        made = {path.relative_to(tmp_path / name): path.read_bytes() for path in (tmp_path / name).rglob("*")
                if path.is_file() and path.name not in local}
        assert [str(path) for path in expected if made.get(path) != expected[path]] == [], name


@pytest.mark.parametrize("model_type", ["logreg", "mlp", "cnn"])
def test_each_layers_parameter_count_is_written_out_and_adds_up_to_keras_count(model_type):
    facts = report_checks.layer_facts(model_type)
    for fact in facts:  # each "a · b · … + c = total" works out to the layer's count
        text = report_answers.parameter_count(fact)
        if text != "none":
            formula, total = text.split(" = ")
            weights, biases = formula.split(" + ")
            assert math.prod(map(int, weights.split(" · "))) + int(biases) == int(total.replace(",", ""))
            assert int(total.replace(",", "")) == fact["parameters"]
    assert sum(fact["parameters"] for fact in facts) == build_model(ModelConfig(type=model_type)).count_params()


def test_the_convolution_answer_is_computed_from_the_cnns_layers():
    text = report_answers.convolution_answer(report_checks.layer_facts("cnn"))
    outputs = 24 * 24 * 32
    assert f"24 × 24 × 32 = {outputs:,} outputs come from 832 parameters" in text
    assert f"784 · {outputs:,} + {outputs:,} = {784 * outputs + outputs:,} parameters" in text
    assert f"24 × 24 → 12 × 12, {outputs:,} → {outputs // 4:,} values (4 times fewer)" in text
    assert "8 × 8 → 4 × 4, 4,096 → 1,024 values" in text and "(96 − 8 + 1)² · 400 = 3,168,400" in text


def _scheduled(rate, schedule, accuracy, accuracy_std, loss, loss_std, seeds=5):
    extras = {} if schedule is None else {"training.schedule": schedule}
    return {"learning_rate": rate, "extras": extras, "epochs": 10, "seeds": seeds, "test_accuracy_mean": accuracy,
            "test_accuracy_std": accuracy_std, "test_loss_mean": loss, "test_loss_std": loss_std}


def test_the_schedule_answer_claims_help_only_beyond_the_seeds_noise():
    constant = _scheduled(0.5, None, 0.9226, 0.0009, 0.2810, 0.0010)
    # Inside the noise: +0.05 points with stds of 0.09-0.1, -0.0005 in loss with stds of 0.001.
    inside = report_answers.schedule_answer("logreg", [constant, _scheduled(0.5, "cosine to 0", 0.9231, 0.0010,
                                                                            0.2805, 0.0010)], 0.5)
    assert inside == ("logreg, against the constant step from the same start (Welch's t-test, 5 % level): from 0.5, "
                      "accuracy within noise for all 1; loss within noise for all 1. So, in 10 epochs, decreasing a "
                      "step from the same start is not distinguishable from the constant step. The highest mean "
                      "accuracy, 92.31% (cosine to 0 from 0.5), is +0.05 points from the lab's constant 0.5 "
                      "(p = 0.43: within the seeds' noise).")
    # The same means from seeds ten times tighter: beyond noise, and the conclusion follows.
    tight = report_answers.schedule_answer("logreg", [_scheduled(0.5, None, 0.9226, 0.00009, 0.2810, 0.0001),
                                                      _scheduled(0.5, "cosine to 0", 0.9231, 0.0001, 0.2805, 0.0001)], 0.5)
    assert ("from 0.5, accuracy better beyond noise for all 1; loss better beyond noise for all 1" in tight
            and "decreasing a step from the same start helps in the cases named." in tight)
    mixed = report_answers.schedule_answer("mlp", [
        constant, _scheduled(0.5, "step x0.5 every 3 epochs", 0.9300, 0.0009, 0.2500, 0.0010),
        _scheduled(0.5, "cosine to 0", 0.9227, 0.0009, 0.2809, 0.0010),
        _scheduled(1.0, None, 0.9400, 0.0009, 0.2000, 0.0010),
        _scheduled(1.0, "exponential x0.8 per epoch", 0.9300, 0.0009, 0.2600, 0.0010)], 0.5)
    assert ("from 0.5, accuracy better beyond noise for step x0.5 every 3 epochs, within noise for cosine to 0; "
            "loss better beyond noise for step x0.5 every 3 epochs, within noise for cosine to 0; from 1, accuracy "
            "worse beyond noise for all 1") in mixed
    assert ("Large at first, then decreased: from 1, against the lab's constant 0.5, accuracy better beyond noise "
            "for all 2; loss better beyond noise for all 2.") in mixed
    assert ("decreasing a step from the same start helps in the cases named and hurts in others; a larger first "
            "step, then decreased, against the lab's constant step helps in the cases named, as the larger constant "
            "step alone does: that part is the larger step's.") in mixed
    assert "The highest mean accuracy, 94.00% (constant from 1), is +1.74 points from the lab's constant 0.5" in mixed
    one_seed = report_answers.schedule_answer("logreg", [_scheduled(0.5, None, 0.92, math.nan, 0.28, math.nan, 1),
                                                         _scheduled(0.5, "cosine to 0", 0.93, math.nan, 0.27, math.nan, 1)], 0.5)
    assert "accuracy no spread to judge by for all 1" in one_seed
    assert "decreasing a step from the same start cannot be judged without a spread over seeds." in one_seed


def _batch_group(batch, epochs, seconds, accuracy, accuracy_std, loss, loss_std):
    return {"batch_size": batch, "epochs": epochs, "train_seconds_mean": seconds, "seeds": 5,
            "test_accuracy_mean": accuracy, "test_accuracy_std": accuracy_std, "test_loss_mean": loss,
            "test_loss_std": loss_std}


def test_the_gradient_descent_answer_compares_at_the_same_epochs_and_time_beyond_noise_only():
    sgd = _batch_group(300, 10, 1.6, 0.9226, 0.0009, 0.2758, 0.0023)
    full = [_batch_group(60000, 10, 1.1, 0.8378, 0.0048, 0.7663, 0.0087),
            _batch_group(60000, 15, 1.5, 0.9224, 0.0010, 0.2760, 0.0025),  # inside the seeds' noise
            _batch_group(60000, 100, 8.2, 0.8996, 0.0013, 0.3751, 0.0012)]
    text = report_answers.gradient_descent_answer(full, sgd, 60000)
    assert "batches of 300 take 200, each from 300 images. SGD (10 epochs, 1.6 s of training): 92.26% ± 0.09%" in text
    assert ("Gradient descent in the same 10 epochs (10 steps, 1.1 s): 83.78% ± 0.48%, loss 0.7663 ± 0.0087, "
            "accuracy -8.48 points against SGD (p < 0.001, worse beyond noise)") in text
    assert ("In the same training time, the most epochs run that fit (15, 1.5 s): 92.24% ± 0.10%, loss 0.2760 ± "
            "0.0025, accuracy -0.02 points against SGD (p = 0.748, within noise); loss +0.0002 against SGD") in text
    assert "After 100 epochs (5.1× SGD's training time)" in text
    slower = report_answers.gradient_descent_answer([_batch_group(60000, 10, 2.0, 0.84, 0.005, 0.77, 0.01)], sgd, 60000)
    assert "no gradient-descent group run fits in SGD's training time" in slower
