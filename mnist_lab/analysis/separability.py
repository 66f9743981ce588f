"""visualize's separability table (DIR/embeddings/separability.csv and .md): one row per
(source, method), written, read back and worded."""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path

from mnist_lab.analysis.evidence import difference_p_value, significant
from mnist_lab.core.describe import EMBEDDING_SOURCES, SOURCES
from mnist_lab.core.files import csv_text, read_bounded, write_if_changed
from mnist_lab.results import store


CSV_FILE, MARKDOWN_FILE = "separability.csv", "separability.md"  # in DIR/embeddings
# The measures of one map (one run of t-SNE or PCA); those in SPREAD also get their sample standard
# deviation over a row's runs (seeds), which decides whether a difference is beyond noise.
SPREAD = ("neighborhood_hit", "knn_accuracy", "silhouette", "trustworthiness", "hull_overlap", "ellipse_overlap")
MEASURES = ("neighborhood_hit", *(f"neighborhood_hit_{label}" for label in range(10)), *SPREAD[1:], "seconds")
# What each row embedded (the pixels, or which run's layer) and how its maps were computed, in words.
PROVENANCE = ("embedded", "settings")
SEPARABILITY_FIELDS = ("source", "method", "points", "runs",
                       *(name for measure in MEASURES[:-1]
                         for name in ((measure, f"{measure}_std") if measure in SPREAD else (measure,))),
                       *PROVENANCE, "seconds")  # the seconds last: the one column a rerun changes


def combined(runs: list[dict]) -> dict:
    """One row's measures from its maps' (one per seed): each measure's mean, the sample standard
    deviation of those in SPREAD (NaN for a single run), and the seconds of all runs."""
    row = {"runs": len(runs)}
    for measure in MEASURES:
        values = [run[measure] for run in runs]
        row[measure] = math.fsum(values) if measure == "seconds" else statistics.fmean(values)
        if measure in SPREAD:
            row[f"{measure}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
    return row


def judged(rows) -> bool:
    """Whether every one of ``rows`` has several runs: a spread to judge differences by."""
    return min(int(row["runs"]) for row in rows) > 1


def differs(first: dict, second: dict, measure: str) -> bool:
    """Whether two rows' ``measure`` differ as far as their runs can tell: where both have several
    runs, beyond their spread (Welch's test: evidence.difference_p_value), except that runs which all
    gave the same value (PCA is deterministic here) have no noise to be within, so any difference
    between two such rows is exact; with a single run, at all (the sentence then says it rests on
    one run: resting_on)."""
    if not judged((first, second)) or (_exact(first, measure) and _exact(second, measure)):
        return first[measure] != second[measure]
    return significant(difference_p_value(*((row[measure], row[f"{measure}_std"], row["runs"])
                                            for row in (first, second))))


def step_verdicts(rows, measure: str, higher_better=True) -> list[str]:
    """Each step between consecutive ``rows``: "not better", "within noise" (better, but not as far
    as differs can tell) or "better"."""
    verdicts = []
    for earlier, later in zip(rows, rows[1:]):
        better = later[measure] > earlier[measure] if higher_better else later[measure] < earlier[measure]
        verdicts.append("not better" if not better else "better" if differs(earlier, later, measure) else
                        "within noise")
    return verdicts


def _exact(row: dict, measure: str) -> bool:
    """Whether every run of a row gave the same value of ``measure``."""
    return row[f"{measure}_std"] == 0


def write_separability(rows: list[dict], folder: Path) -> list[Path]:
    """separability.csv and .md: one row per (source, method), and the lab's conclusion checked;
    returns those that changed."""
    texts = {folder / CSV_FILE: csv_text(rows, SEPARABILITY_FIELDS),
             folder / MARKDOWN_FILE: separability_markdown(rows)}
    return [path for path, text in texts.items() if write_if_changed(path, text)]


def read_separability(folder: Path, log=print) -> list[dict]:
    """The rows of separability.csv, numbers as floats; [] (with a warning) when it is damaged."""
    path = folder / CSV_FILE
    if not path.exists():
        return []
    try:
        rows = list(csv.DictReader(io.StringIO(read_bounded(path).decode("utf-8"))))
        if not rows or any(set(row) != set(SEPARABILITY_FIELDS) for row in rows):
            raise ValueError(f"expected the columns {', '.join(SEPARABILITY_FIELDS)}")
        return [{key: (value if key in ("source", "method", *PROVENANCE) else float(value)) for key, value in row.items()}
                for row in rows]
    except (OSError, ValueError, csv.Error) as error:
        store.warn_damaged([f"{path}: {error}"], log)
        return []


def separability_markdown(rows: list[dict]) -> str:
    lines = ["# Separability of the ten digits in 2-D", "",
             f"{int(rows[0]['points']):,} test images. NH: Neighborhood Hit, the share of each point's 6 nearest "
             "2-D neighbours with its label (the course's measure; the lab report prints none). k-NN: 5-fold accuracy of a 6-NN classifier "
             "on the 2-D points. Silhouette: scikit-learn's, by class. Trustworthiness (k = 5): how well the "
             "map's neighbourhoods exist in the original space. Hull overlap: share of points inside another "
             "class's convex hull; ellipse overlap: share of points inside another class's best-fit ellipse "
             "(half-axes √2 σ, the course's; lower is better for both). Each row: the mean over its runs (each "
             "map computed with seeds SEED, SEED + 1, …; the figures show the first) ± the sample standard "
             "deviation over them, where there are several.", "",
             "| source | method | runs | NH | k-NN accuracy | silhouette | trustworthiness | hull overlap | "
             "ellipse overlap | " + " | ".join(f"NH {label}" for label in range(10)) + " |",
             "| --- | --- |" + " ---: |" * 17]
    for row in rows:
        lines.append(f"| {_layer(row['source'])} "
                     f"| {row['method']} | {int(row['runs'])} | "
                     + " | ".join(_spread(row, measure) for measure in SPREAD) + " | "
                     + " | ".join(f"{row[f'neighborhood_hit_{label}']:.3f}" for label in range(10)) + " |")
    lines += ["", "Embedded: " + "; ".join(f"{_layer(source)}: {embedded}" for source, embedded in
                                          dict.fromkeys((row["source"], row["embedded"]) for row in rows)) + ".",
              "", "Maps: " + "; ".join(f"{method}: {settings}" for method, settings in
                                     dict.fromkeys((row["method"], row["settings"]) for row in rows)) + ".",
              "", *(_untangling_verdict(rows, method) for method in dict.fromkeys(row["method"] for row in rows))]
    return "\n".join(lines) + "\n"


def _layer(source: str) -> str:
    return EMBEDDING_SOURCES[source]["layer"] if source in EMBEDDING_SOURCES else source


def _spread(row, measure) -> str:
    """A measure as the table prints it: its mean, ± its spread over the row's runs where there are several."""
    std = row[f"{measure}_std"]
    return f"{row[measure]:.3f}" if math.isnan(std) else f"{row[measure]:.3f} ± {std:.3f}"


def resting_on(rows, method: str) -> str:
    """What the ``method`` rows rest on, and so what they cannot tell apart from noise."""
    rows = [row for row in rows if row["method"] == method]
    runs = min(int(row["runs"]) for row in rows)
    name = "t-SNE" if method == "tsne" else "PCA"
    if judged(rows) and all(_exact(row, "neighborhood_hit") for row in rows):
        return (f"{name} gave the same map in each of its {runs} runs (seeds), so these differences are exact for "
                "these models; the spread over model seeds is not measured here (one trained model per network)")
    if judged(rows):
        return (f"over {runs} {name} runs (seeds) of each map, of one trained model per network: a difference "
                "is beyond noise when Welch's t-test over the runs gives p < 0.05; the spread over model seeds "
                "is not measured here")
    return (f"in one {name} run of each map and one trained model per network; the spread over {name} runs and "
            "model seeds is not measured here, so a small step may be noise (`--runs` measures it)")


def _untangling_verdict(rows, method) -> str:
    """The course's expected finding (NH raw < MLP < CNN; the lab report prints no NH), checked
    against this method's numbers, each step judged against the spread of its runs."""
    maps = {row["source"]: row for row in rows if row["method"] == method}
    order = [source for source in SOURCES if source in maps]
    chain = " < ".join(f"{source} {maps[source]['neighborhood_hit']:.3f}" for source in order)
    if len(order) < 2:
        return f"- {method}: only {chain}; nothing to compare."
    path = " to ".join(EMBEDDING_SOURCES[source]["short"] for source in order)
    verdicts = step_verdicts([maps[source] for source in order], "neighborhood_hit")
    if "not better" in verdicts:
        ranked = " ≤ ".join(f"{source} {maps[source]['neighborhood_hit']:.3f}"
                            for source in sorted(order, key=lambda source: maps[source]["neighborhood_hit"]))
        return f"- {method}: NH is **not** increasing from {path} here: {ranked}; {resting_on(rows, method)}."
    if not judged(maps.values()):
        return f"- {method}: NH {chain}: increasing from {path}, the order the course expects, {resting_on(rows, method)}."
    within = [f"{a} to {b}" for (a, b), verdict in zip(zip(order, order[1:]), verdicts) if verdict == "within noise"]
    if not within:
        return (f"- {method}: NH {chain}: increasing from {path} at every step beyond noise, the order the course "
                f"expects; {resting_on(rows, method)}.")
    return (f"- {method}: NH {chain}, but not every step beyond noise ({', '.join(within)} within it): the order "
            f"the course expects is not established here; {resting_on(rows, method)}.")
