"""REPORT.md's sentences: each answer to a question of the lab, worded by the numbers it is
given (sweep summaries, separability rows, the checks of report_checks.py)."""

from __future__ import annotations

import math

from mnist_lab.analysis.evidence import difference_p_value, signed, significant
from mnist_lab.analysis.lab import LAB_RESULTS, reproduced
from mnist_lab.analysis.separability import differs, judged, resting_on, step_verdicts
from mnist_lab.analysis.sweep_tables import distinctive, summary_entry
from mnist_lab.core.config import ScheduleConfig
from mnist_lab.core.describe import EMBEDDING_SOURCES, SOURCES, describe_schedule


def accuracy_and_loss(lab_accuracy, lab_loss, entries) -> str:
    """Whether any group reaches the lab's accuracy with a loss as high as its (a pair a fresh
    model rarely shows: more accuracy usually comes with less loss), worded by the numbers."""
    reaching = [entry for entry in entries if entry["test_accuracy_mean"] >= lab_accuracy]
    if not reaching:
        return (f"No group's mean accuracy reaches the lab's {lab_accuracy:.2%} (the highest: "
                f"{max(entry['test_accuracy_mean'] for entry in entries):.2%}).")
    losses = [entry["test_loss_mean"] for entry in reaching]
    above = sum(loss >= lab_loss for loss in losses)
    return (f"{len(reaching)} of {len(entries)} groups reach the lab's accuracy of {lab_accuracy:.2%} on average; "
            f"their mean losses run from {min(losses):.4f} to {max(losses):.4f}, "
            + (f"all below the lab's {lab_loss:.4f}: none pairs that accuracy with that loss." if not above else
               f"{above} of them at or above the lab's {lab_loss:.4f}."))


def hypothesis(entry) -> str:
    """A group of the CNN sweep in words: its setting and what else differs from the reference."""
    extras = [value if field == "continues" else f"{field} {value}" for field, value in distinctive(entry).items()]
    return ", ".join([f"batch {entry['batch_size']}, {entry['epochs']} epochs, lr {entry['learning_rate']:g}",
                      *extras])


# Each measure compared across sources: its column, its name, whether higher is better.
_MEASURE_DIRECTIONS = (("neighborhood_hit", "NH", True), ("hull_overlap", "hull overlap", False),
                       ("ellipse_overlap", "ellipse overlap", False))


def measures_answer(rows) -> str:
    """The answer to "how do the separability measures differ?", worded by the t-SNE rows of the
    separability table (tables.read_separability): whether each measure improves from pixels to
    the networks, and how the local NH and the global hulls disagree on the best map."""
    maps = {row["source"]: row for row in rows if row["method"] == "tsne"}
    order = [source for source in SOURCES if source in maps]
    if not order:
        return ""
    lines = ["**How do the three separability measures differ?** Neighborhood Hit scores each point by its 6 "
             "nearest 2-D neighbours, so it judges the local structure; a convex hull must hold every point of "
             "its class, strays included, so it judges the outermost points; an ellipse summarises a class by its "
             "mean and covariance, so it judges the bulk of the class and ignores its shape (ellipse overlap: the "
             "share of points inside another class's ellipse of √2 σ)."]
    if len(order) > 1:
        path = " → ".join(EMBEDDING_SOURCES[source]['phrase'] for source in order)
        trends = [f"{name} {' → '.join(f'{maps[source][column]:.3f}' for source in order)} "
                  f"({_path_verdict([maps[source] for source in order], order, column, higher_better)})"
                  for column, name, higher_better in _MEASURE_DIRECTIONS]
        lines.append(f"On the t-SNE maps, {path}: {'; '.join(trends)}; {resting_on(rows, 'tsne')}.")
    best = max(order, key=lambda source: maps[source]["neighborhood_hit"])
    row = maps[best]
    per_class = {label: row[f"neighborhood_hit_{label}"] for label in range(10)
                 if not math.isnan(row[f"neighborhood_hit_{label}"])}
    low, high = min(per_class, key=per_class.get), max(per_class, key=per_class.get)
    lines.append(f"On the map with the highest NH ({EMBEDDING_SOURCES[best]['phrase']}, {row['neighborhood_hit']:.3f}), "
                 f"{1 - row['neighborhood_hit']:.1%} of a point's neighbours carry another label (per digit from "
                 f"{1 - per_class[high]:.1%} for {high} to {1 - per_class[low]:.1%} for {low}), yet "
                 f"{row['hull_overlap']:.1%} of its points lie inside another class's hull and "
                 f"{row['ellipse_overlap']:.1%} inside another class's ellipse.")
    return " ".join(lines)


def _path_verdict(maps, sources, column, higher_better) -> str:
    """Whether a measure gets better at every step along ``maps`` (separability rows of ``sources``),
    each step judged against the spread of its runs where they have one (separability.step_verdicts)."""
    failing = [f"{EMBEDDING_SOURCES[first]['short']} to {EMBEDDING_SOURCES[second]['short']}: {verdict}"
               for first, second, verdict in zip(sources, sources[1:], step_verdicts(maps, column, higher_better))
               if verdict != "better"]
    noise = " beyond noise" if judged(maps) else ""
    if not failing:
        return f"better at every step{',' if noise else ''}{noise}"
    return f"not better at every step{noise}: {', '.join(failing)}"


# The measures t-SNE and PCA are compared by: column, name, whether higher is better.
_PROJECTION_MEASURES = (("neighborhood_hit", "NH", True), ("trustworthiness", "trustworthiness", True),
                        ("hull_overlap", "hull overlap", False), ("ellipse_overlap", "ellipse overlap", False))


def _listed(names) -> str:
    """Names in a sentence: "a", "a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _better(tsne: dict, pca: dict, column: str, higher_better: bool) -> str:
    """Which method's map a measure favours: neither when they are equal, or their difference is
    within the spread of their runs."""
    if not differs(tsne, pca, column):
        return "neither"
    return "t-SNE" if (tsne[column] > pca[column]) == higher_better else "PCA"


def projection_answer(rows, pca_variance_share: float) -> str:
    """The answer to "t-SNE or PCA?": what each method is, and for each source which one each
    measure favours, worded by the separability table's NH, trustworthiness and two overlaps."""
    maps = {(row["source"], row["method"]): row for row in rows}
    sources = [source for source in SOURCES if (source, "tsne") in maps and (source, "pca") in maps]
    text = ("**t-SNE or PCA?** PCA is linear: its two axes are the directions of largest variance (on the raw "
            f"pixels they hold {pca_variance_share:.1%} of it), and it maps new points with the same projection. "
            "t-SNE is non-linear: it keeps neighbourhoods and depends on hyper-parameters (the perplexity). "
            "scikit-learn's TSNE, the course's, has no map for new points; openTSNE, which mnist-lab uses, places "
            "new points into an existing map by optimising them against it (its transform), not by a fixed "
            "formula as PCA's projection.")
    comparisons = []
    for source in sources:
        tsne, pca = maps[(source, "tsne")], maps[(source, "pca")]
        winners = {name: _better(tsne, pca, column, higher_better) for column, name, higher_better in _PROJECTION_MEASURES}
        favoured = {}
        for name, winner in winners.items():
            favoured.setdefault(winner, []).append(name)
        comparisons.append(f"on {EMBEDDING_SOURCES[source]['phrase']}, "
                           + ", ".join(f"{name} {tsne[column]:.3f}" + (" (t-SNE)" if index == 0 else "")
                                       + f" against {pca[column]:.3f}" + (" (PCA)" if index == 0 else "")
                                       for index, (column, name, _) in enumerate(_PROJECTION_MEASURES))
                           + (f": all {len(winners)} favour {winners['NH']}" if len(favoured) == 1 else ": " + "; ".join(
                               f"{_listed(names)} favour{'s' if len(names) == 1 else ''} {winner}"
                               for winner, names in favoured.items())))
    measured = "; ".join(comparisons)
    return text + (f" O{measured[1:]} (neither: equal, or within noise); measured {resting_on(rows, 'tsne')}."
                   if comparisons else "")


def lab_comparisons(summary) -> list[str]:
    """The models, the MLP's learning rates and the logistic regression's epochs and batch sizes
    compared, each sentence worded by whether the numbers rise."""
    keras_entries = [entry for entry in summary if entry["engine"] == "keras"]
    lines = []
    best = [max(entries, key=lambda entry: entry["test_accuracy_mean"])
            for model in ("logreg", "mlp", "cnn")
            if (entries := [entry for entry in keras_entries if entry["model"] == model])]
    if len(best) > 1:
        lines += ["", "**How do the models compare?** Best mean test accuracy in the sweep: "
                  + ", ".join(f"{entry['model']} {entry['test_accuracy_mean']:.2%} (batch {entry['batch_size']}, "
                              f"{entry['epochs']} epochs, lr {entry['learning_rate']:g})" for entry in best)
                  + ". " + trend([(entry["model"], entry) for entry in best], "each model beats the one before",
                                 "each model falls behind the one before")]
    series = [("MLP, learning rate (10 epochs, batch 300)", "mlp", {"epochs": 10, "batch_size": 300}, "learning_rate"),
              ("logistic regression, epochs (batch 300)", "logreg", {"batch_size": 300}, "epochs")]
    for title, model, fixed, varied in series:
        entries = sorted((entry for entry in keras_entries if entry["model"] == model
                          and all(entry[field] == value for field, value in fixed.items())), key=lambda e: e[varied])
        if len(entries) > 1:
            points = [(f"{entry[varied]:g}", entry) for entry in entries]
            words = varied.replace("_", " ")
            lines += ["", f"**{title[0].upper()}{title[1:]}:** " + ", ".join(
                f"{label} → {entry['test_accuracy_mean']:.2%} ± {entry['test_accuracy_std']:.2%}"
                for label, entry in points)
                      + ". " + trend(points, f"accuracy rises with the {words}", f"accuracy falls with the {words}")
                      + " " + trend(points, f"the loss rises with the {words}", f"the loss falls with the {words}",
                                    metric="loss")]
    return lines


def batch_size_answer(summary, continued, train_images: int, epochs=10, learning_rate=0.5) -> str:
    """The answer to "what does a larger batch change?" for the logistic regression at the lab's
    batch sizes: fresh models' accuracy and loss per batch size and whether they change beyond
    noise, the lab's own numbers, and how far a model trained on through the lab's settings (the
    notebook sweep) accounts for them: at which of its stages it reproduces the lab, and at which not."""
    sizes = sorted(batch for model, batch, lab_epochs, rate in LAB_RESULTS
                   if model == "logreg" and lab_epochs == epochs and rate == learning_rate)
    fresh = {batch: entry for batch in sizes if (entry := summary_entry(summary, ("logreg", batch, epochs, learning_rate)))}
    if len(fresh) < 2:
        return ""
    first, last = min(fresh), max(fresh)
    points = [(f"{batch}", entry) for batch, entry in fresh.items()]
    lab = {batch: LAB_RESULTS[("logreg", batch, epochs, learning_rate)] for batch in fresh}
    lab_change = lab[last][1] - lab[first][1]
    text = (f"**What does a larger batch change?** (logistic regression, {epochs} epochs, lr {learning_rate:g}, "
            f"{train_images:,} training images) Fewer updates per epoch: "
            + "; ".join(f"batch {batch} → {math.ceil(train_images / batch)} updates, "
                        f"{entry['test_accuracy_mean']:.2%} ± {entry['test_accuracy_std']:.2%}, "
                        f"loss {entry['test_loss_mean']:.4f}" for batch, entry in fresh.items())
            + ". " + trend(points, "accuracy rises with the batch size", "accuracy falls with the batch size")
            + " " + trend(points, "the loss rises with the batch size", "the loss falls with the batch size",
                          metric="loss")
            + f" The lab's numbers change by {lab_change * 100:+.2f} points from batch {first} to {last} "
            f"({', '.join(f'{lab[batch][1]:.2%}' for batch in fresh)}).")
    stages = {(batch, stage_epochs): reproduced(entry) for model, batch, stage_epochs, rate in LAB_RESULTS
              if model == "logreg" and rate == learning_rate and (batch, stage_epochs) != (first, epochs)
              and (entry := summary_entry(continued, ("logreg", batch, stage_epochs, rate)))}
    if not any(stages.values()):
        return text
    named = {verdict: [f"{batch}×{stage_epochs}" for (batch, stage_epochs), found in stages.items() if found is verdict]
             for verdict in (True, False)}
    return (text + " A hypothesis: the lab trained one model on through its settings in turn (a notebook "
            "re-running `fit`), so its later numbers measure more training, not the batch size. A model "
            f"trained on that way reproduces the lab's numbers after the stages {', '.join(named[True])}"
            + (f" and not after {', '.join(named[False])} (table above): consistent with some of the lab's "
               "numbers, not with all." if named[False] else " (table above): consistent with every one of them."))


def trend(points, rising_text: str, falling_text: str, metric="accuracy") -> str:
    """How the mean test ``metric`` moves along ``points`` ((label, summary entry) pairs, in order),
    stated only as far as Welch's test (evidence.difference_p_value) puts each difference beyond the
    seeds' noise: from first to last, and step by step. A direction ("rises with …") only when every
    step goes that way beyond noise; otherwise what first and last show, and which steps do not."""
    unit, digits = (" points", 2) if metric == "accuracy" else ("", 4)
    (first_label, first), (last_label, last) = points[0], points[-1]
    total, overall = versus(last, first, metric)
    span = f"{signed(total, digits)}{unit} from {first_label} to {last_label}"
    if math.isnan(overall):
        return f"The {metric} changes by {span} (no spread over seeds to judge it by)."
    steps = [(f"{label} to {later_label}", *versus(later, earlier, metric))
             for (label, earlier), (later_label, later) in zip(points, points[1:])]
    rising = total > 0
    if significant(overall) and all(significant(p_value) and (difference > 0) == rising
                                    for _, difference, p_value in steps):
        text = rising_text if rising else falling_text
        worst = max(p_value for _, _, p_value in steps)
        return (f"{text[0].upper()}{text[1:]}: {span}, "
                + ("beyond the seeds' noise" if len(steps) == 1 else "every step beyond the seeds' noise")
                + f" (Welch's t-test, {p_value_text(worst) if len(steps) > 1 else p_value_text(overall)}).")
    if significant(overall):
        text = (f"The {metric} is {'higher' if rising else 'lower'} at {last_label} than at {first_label} "
                f"({span}), beyond the seeds' noise (Welch's t-test, {p_value_text(overall)})")
    else:
        text = (f"Not distinguishable from the seeds' noise at the 5 % level: the {metric} changes by {span} "
                f"(Welch's t-test, {p_value_text(overall)})")
    if len(steps) > 1:
        beyond = [f"{step} ({signed(difference, digits)}{unit}, {p_value_text(p_value)})" for step, difference, p_value in steps
                  if significant(p_value)]
        within = [step for step, _, p_value in steps if not significant(p_value)]
        text += ((f"; beyond noise step by step: {', '.join(beyond)}" if beyond else "")
                 + (f"; not distinguishable from noise: {', '.join(within)}" if within else ""))
    return text + "."


CONSTANT = describe_schedule(ScheduleConfig())  # the schedule column's words for the lab's fixed step


def schedule_of(entry) -> str:
    """A schedules-sweep summary entry's schedule, in words."""
    return entry["extras"].get("training.schedule") or CONSTANT


def versus(entry, reference, metric: str) -> tuple[float, float]:
    """A group's mean test ``metric`` against a reference group's (summary entries): the difference
    (accuracy in points) and Welch's p-value (evidence.difference_p_value)."""
    key, scale = ("test_accuracy", 100) if metric == "accuracy" else ("test_loss", 1)
    difference = (entry[f"{key}_mean"] - reference[f"{key}_mean"]) * scale
    return difference, difference_p_value(*((item[f"{key}_mean"], item[f"{key}_std"], item["seeds"])
                                            for item in (entry, reference)))


def schedule_answer(model: str, entries, lab_rate: float) -> str:
    """Whether a decreasing step helps ``model`` (the report's advice), from its schedules-sweep
    summary entries: each schedule against the constant step from the same start, and those from a
    larger start against the lab's constant step, in accuracy and in loss, beyond the seeds' noise
    or not; and how the best group compares with the lab's step."""
    constants = {entry["learning_rate"]: entry for entry in entries if schedule_of(entry) == CONSTANT}
    starts = {rate: [entry for entry in entries if entry["learning_rate"] == rate and schedule_of(entry) != CONSTANT]
              for rate in sorted(constants)}
    starts = {rate: decreasing for rate, decreasing in starts.items() if decreasing}
    if not starts:
        return ""
    text = (f"{model}, against the constant step from the same start (Welch's t-test, 5 % level): "
            + "; ".join(f"from {rate:g}, {_outcomes(decreasing, constants[rate])}" for rate, decreasing in starts.items())
            + ".")
    if lab_rate in constants:
        text += "".join(f" Large at first, then decreased: from {rate:g}, against the lab's constant {lab_rate:g}, "
                        f"{_outcomes([constants[rate], *decreasing], constants[lab_rate])}."
                        for rate, decreasing in starts.items() if rate > lab_rate)
    same_start = {_outcome(entry, constants[rate], metric) for rate, decreasing in starts.items()
                  for entry in decreasing for metric in ("accuracy", "loss")}
    text += f" So, in {entries[0]['epochs']} epochs, decreasing a step from the same start {_verdict(same_start)}"
    if lab_rate in constants and any(rate > lab_rate for rate in starts):
        larger = {_outcome(entry, constants[lab_rate], metric) for rate, decreasing in starts.items()
                  if rate > lab_rate for entry in decreasing for metric in ("accuracy", "loss")}
        alone = {_outcome(constants[rate], constants[lab_rate], metric) for rate in starts if rate > lab_rate
                 for metric in ("accuracy", "loss")}
        text += (f"; a larger first step, then decreased, against the lab's constant step {_verdict(larger)}"
                 + (", as the larger constant step alone does: that part is the larger step's"
                    if BETTER in larger and BETTER in alone else ""))
    text += "."
    best = max(entries, key=lambda entry: entry["test_accuracy_mean"])
    lab = constants.get(lab_rate)
    if lab is not None and best is not lab:
        difference, p_value = versus(best, lab, "accuracy")
        text += (f" The highest mean accuracy, {best['test_accuracy_mean']:.2%} ({schedule_of(best)} from "
                 f"{best['learning_rate']:g}), is {signed(difference, 2)} points from the lab's constant {lab_rate:g} "
                 f"({p_value_text(p_value)}: {'beyond' if significant(p_value) else 'within'} the seeds' noise).")
    return text


BETTER, WORSE, WITHIN, UNJUDGED = "better beyond noise", "worse beyond noise", "within noise", "no spread to judge by"


def _verdict(outcomes: set) -> str:
    """What a set of _outcome results says, as the end of a sentence."""
    if BETTER in outcomes:
        return "helps in the cases named and hurts in others" if WORSE in outcomes else "helps in the cases named"
    if WORSE in outcomes:
        return "hurts in the cases named"
    return ("is not distinguishable from the constant step" if WITHIN in outcomes else
            "cannot be judged without a spread over seeds")


def _outcome(entry, reference, metric: str) -> str:
    """How a group's mean test ``metric`` compares with a reference group's, judged by Welch's test."""
    difference, p_value = versus(entry, reference, metric)
    if math.isnan(p_value):
        return UNJUDGED
    if not significant(p_value):
        return WITHIN
    return BETTER if (difference > 0) == (metric == "accuracy") else WORSE


def _outcomes(entries, reference) -> str:
    """The outcomes of ``entries`` against ``reference``, grouped, e.g. "accuracy worse beyond noise for
    cosine to 0 and step x0.5 every 3 epochs, within noise for the other 2; loss within noise for all 4"."""
    parts = []
    for metric in ("accuracy", "loss"):
        grouped = {}
        for entry in entries:
            grouped.setdefault(_outcome(entry, reference, metric), []).append(schedule_of(entry))
        words = [f"{outcome} for all {len(names)}" if len(grouped) == 1 else f"{outcome} for {_listed(names)}"
                 for outcome, names in sorted(grouped.items())]
        parts.append(f"{metric} {', '.join(words)}")
    return "; ".join(parts)


def gradient_descent_answer(full_batch, mini_batch, train_images: int) -> str:
    """The answer to "batch gradient descent or mini-batch SGD?": full-batch groups (summary entries
    with their mean training seconds) against the mini-batch group, at the same epochs, at the same
    training seconds, and at the most epochs run, each judged beyond the seeds' noise or not."""
    updates = math.ceil(train_images / mini_batch["batch_size"])
    text = [f"**Batch gradient descent or mini-batch SGD?** Full-batch gradient descent takes one step per epoch, "
            f"on all {train_images:,} images; batches of {mini_batch['batch_size']} take {updates}, each from "
            f"{mini_batch['batch_size']} images. SGD ({mini_batch['epochs']} epochs, {mini_batch['train_seconds_mean']:.1f} "
            f"s of training): {_accuracy_loss(mini_batch)}."]
    same_epochs = next((entry for entry in full_batch if entry["epochs"] == mini_batch["epochs"]), None)
    if same_epochs is not None:
        text.append(f"Gradient descent in the same {same_epochs['epochs']} epochs ({same_epochs['epochs']} steps, "
                    f"{same_epochs['train_seconds_mean']:.1f} s): {_accuracy_loss(same_epochs)}, "
                    f"{_against(same_epochs, mini_batch)}.")
    affordable = [entry for entry in full_batch if entry["train_seconds_mean"] <= mini_batch["train_seconds_mean"]]
    if affordable:
        budget = max(affordable, key=lambda entry: entry["epochs"])
        if budget is not same_epochs:
            text.append(f"In the same training time, the most epochs run that fit ({budget['epochs']}, "
                        f"{budget['train_seconds_mean']:.1f} s): {_accuracy_loss(budget)}, {_against(budget, mini_batch)}.")
    else:
        text.append("Each full-batch epoch took longer than a mini-batch one: no gradient-descent group run fits "
                    "in SGD's training time.")
    longest = max(full_batch, key=lambda entry: entry["epochs"])
    if longest is not same_epochs and longest not in affordable:
        text.append(f"After {longest['epochs']} epochs ({longest['train_seconds_mean'] / mini_batch['train_seconds_mean']:.1f}× "
                    f"SGD's training time): {_accuracy_loss(longest)}, {_against(longest, mini_batch)}.")
    return " ".join(text)


def _accuracy_loss(entry) -> str:
    return (f"{entry['test_accuracy_mean']:.2%} ± {entry['test_accuracy_std']:.2%}, loss "
            f"{entry['test_loss_mean']:.4f} ± {entry['test_loss_std']:.4f}")


def _against(entry, reference) -> str:
    """How a group compares with the reference (SGD) in accuracy and loss, in words (_outcome)."""
    return "; ".join(f"{metric} {signed(difference, digits)}{unit} against SGD ({p_value_text(p_value)}, "
                     f"{_outcome(entry, reference, metric)})"
                     for metric, digits, unit in (("accuracy", 2, " points"), ("loss", 4, ""))
                     for difference, p_value in [versus(entry, reference, metric)])


def p_value_text(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3g}"


def parameter_count(fact: dict) -> str:
    """A layer's parameter count written out from the shapes it comes from (layer_facts), e.g.
    "784 · 10 + 10 = 7,850"; "none" for a layer without parameters."""
    if "kernel" not in fact:
        return "none"
    return f"{' · '.join(map(str, fact['kernel']))} + {math.prod(fact['bias'])} = {fact['parameters']:,}"


def convolution_answer(layers: list[dict]) -> str:
    """The answer to "what do the convolutions and the pooling do?", computed from the CNN's layers
    (layer_facts): output sizes, weights per layer, what each pooling divides, and the parameters a
    dense layer would need for the first convolution's outputs."""
    first = next(fact for fact in layers if fact["kind"] == "Conv2D")
    height, width, channels = first["input"]
    size, _, _, filters = first["kernel"]
    outputs = math.prod(first["output"])
    dense = height * width * channels * outputs + outputs
    sentences = [f"**What do the convolutions and the pooling do?** (computed from the CNN mnist-lab builds) "
                 f"{first['name']} slides {filters} filters of {size} × {size} over the {height} × {width} image, "
                 f"at every position where a filter fits whole (valid padding: {height} − {size} + 1 = "
                 f"{first['output'][0]} per side), so {first['output'][0]} × {first['output'][1]} × {filters} = "
                 f"{outputs:,} outputs come from {first['parameters']:,} parameters: the same detector is applied "
                 f"everywhere, which suits images whose statistics do not depend on the position. A dense layer "
                 f"giving the same {outputs:,} outputs from the {height * width * channels} pixels would need "
                 f"{height * width * channels:,} · {outputs:,} + {outputs:,} = {dense:,} parameters, "
                 f"{dense / first['parameters']:,.0f} times as many."]
    for fact in layers:
        if fact["kind"] == "MaxPooling2D":
            before, after = math.prod(fact["input"]), math.prod(fact["output"])
            sentences.append(f"{fact['name']} keeps the largest value of each {fact['pool'][0]} × {fact['pool'][1]} "
                             f"block of each feature map: {fact['input'][0]} × {fact['input'][1]} → "
                             f"{fact['output'][0]} × {fact['output'][1]}, {before:,} → {after:,} values "
                             f"({before // after} times fewer), the same output for a feature moved within its block.")
        elif fact["kind"] == "Conv2D" and fact is not first:
            sentences.append(f"{fact['name']} combines all {fact['kernel'][2]} maps in each "
                             f"{fact['kernel'][0]} × {fact['kernel'][1]} window: {' × '.join(map(str, fact['output']))} "
                             f"outputs from {parameter_count(fact)} parameters.")
    flat = next((fact for fact in layers if fact["kind"] == "Flatten"), None)
    if flat is not None:
        sentences.append(f"{flat['output'][0]:,} values reach the dense layers, against {height * width * channels} "
                         "pixels at the input.")
    sentences.append(f"The lab report's worked example, 400 features of 8 × 8 on 96 × 96 images, gives "
                     f"(96 − 8 + 1)² · 400 = {(96 - 8 + 1) ** 2 * 400:,} values per image (its text prints "
                     "\"892*400\", the square lost).")
    return " ".join(sentences)


def gradient_agreement(errors: dict) -> str:
    """The finite-difference check in words: whether each model's largest relative error is below
    GRADIENT_TOLERANCE. Not its digits: at about 10⁻⁸ they are the differences' round-off, which
    changes with the CPU's BLAS kernels, and REPORT.md must be the same file on any machine."""
    from mnist_lab.training.numpy_engine import GRADIENT_TOLERANCE

    exponent = round(math.log10(GRADIENT_TOLERANCE))
    wrong = [f"{model} {error:.1e}" for model, error in errors.items() if not error < GRADIENT_TOLERANCE]
    if wrong:
        return f"largest relative error above 10{superscript(exponent)} for {', '.join(wrong)}: a gradient is wrong"
    return (f"largest relative error below 10{superscript(exponent)} for {' and '.join(errors)} (what a correct "
            f"gradient gives; the digits beyond are the differences' round-off, which varies with the CPU's kernels)")


def superscript(number: int) -> str:
    return str(number).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def convexity_answer(checks: dict) -> str:
    """The answer to "is the loss convex?", worded by the chord checks (convexity_checks)."""
    logreg, mlp = checks["logreg"]["max_excess"], checks["mlp"]["max_excess"]
    agreement = (f"the loss never rises above the chord (the largest value of loss minus chord is {logreg:.2e})"
                 if logreg <= 0 else
                 f"yet the loss rises {logreg:.2e} above a chord (round-off, or a bug: a convex function cannot)")
    mlp_text = (f"finds the loss up to {mlp:.3f} above the chord (the largest excess over the points checked "
                "inside the segment): the MLP's loss is not convex"
                if mlp > 0 else f"finds no point above the chord (largest excess {mlp:.2e}): no evidence here "
                                "against convexity, which hidden-unit symmetry still rules out")
    return ("**Is the logistic regression's loss convex in (W, b)?** Yes: it is a log-sum-exp of affine functions "
            f"of (W, b) minus an affine function. Along {checks['logreg']['segments']} random segments between "
            f"parameter points (and segments from a trained model), on {checks['images']} training images, "
            f"{agreement}. The same test on the MLP, between a trained network and the same network with its "
            f"hidden units permuted (equal loss at both ends), {mlp_text}. (The lab's submitted report said the "
            "logistic regression's loss was not convex; that was wrong.)")


def minimiser_answer(facts: dict, step: float) -> str:
    """The answer to "does a well-chosen step guarantee convergence to the global minimum?",
    worded by ``facts`` (loss_landscape) and the lab's ``step``."""
    bound, start = facts["smoothness_bound"], facts["start_curvature"]
    columns = facts["pixels"] + 1
    if facts["one_class"]:
        example = facts["example"]
        existence = (f"Not to a minimum: on these {facts['images']:,} training images the loss has none. "
                     f"{facts['one_class']} pixels are non-zero only in images of a single class (e.g. row "
                     f"{example['row']}, column {example['column']}: lit in {example['images']} images, all of "
                     f"class {example['label']}); raising that pixel's weight for that class raises only those "
                     "images' scores for their own class, so the loss decreases without end along that direction: "
                     "its infimum is not attained, and the weights grow without bound.")
    else:
        existence = ("No pixel is non-zero in the images of one class only, so this argument for an unattained "
                     "infimum does not apply here.")
    null = columns - facts["rank"]
    flat = (f" {facts['never_lit']} pixels are zero in every training image, and the augmented data matrix X̃ "
            f"({facts['images']:,} × {columns}: pixels and a constant 1) has rank {facts['rank']}, not {columns}: "
            f"its null space has {null} dimensions, and each of the 10 classes' weight columns can move along it "
            f"without changing any score. With softmax's own invariance (the same vector added to every class's "
            f"column changes no probability: {columns} directions), the loss is flat along a subspace of "
            f"{columns} + 9 · {null} = {columns + 9 * null:,} of the {columns * 10:,} parameters' directions."
            if null else "")
    relation = "exceeds" if step > 2 / bound else "lies below"
    local = "below" if step < 2 / start else "above"
    limits = [2 / curvature for curvature in facts["batch_start_curvatures"]]
    below = sum(limit < step for limit in limits)
    batches = (f" The lab trains on batches, whose curvature varies: evaluated at zero weights, the local limit "
               f"of each of the first epoch's {len(limits)} batches of {facts['batch_size']} images (seed 0's order) "
               f"runs from {min(limits):.3f} to {max(limits):.3f}, and {below} of them ({below / len(limits):.0%}) "
               "have a limit below the step (only the first batch meets zero weights; later ones meet the "
               "curvature at the weights reached by then)." if limits else "")
    return (f"**Does a well-chosen step guarantee convergence to the global minimum?** {existence}{flat} "
            f"What gradient descent does guarantee: the loss is convex and its gradient L-Lipschitz with "
            f"L ≤ ½ λmax(X̃ᵀX̃ / n) = {bound:.2f}, so with any constant step below 2/L = {2 / bound:.3f} "
            "full-batch gradient descent's loss converges to its infimum. No rate is claimed here: the "
            "textbook O(1/k) bound assumes a minimiser, which this loss lacks; without one, Ji and Telgarsky "
            "(\"Risk and parameter convergence of logistic regression\", 2018) prove O(ln²k / k) for gradient "
            "descent on binary logistic regression with any data, while the lab trains a ten-class softmax "
            f"by mini-batches. The step {step:g} (the course's; the lab report prints no learning rate for the "
            f"logistic regression, and 0.5 reproduces its losses) {relation} that worst-case bound. At the start (zero "
            f"weights, uniform softmax) the Hessian's largest eigenvalue is λmax(X̃ᵀX̃ / n)/10 = {start:.2f}, "
            f"{bound / start:.1f} times below the bound L, which gives a local step limit 2/{start:.2f} = "
            f"{2 / start:.3f} for the full batch: the step lies {local} it.{batches} With mini-batches "
            "(SGD) a constant step is only guaranteed to reach a neighbourhood of the infimum; a decreasing step is needed "
            "to approach it.")
