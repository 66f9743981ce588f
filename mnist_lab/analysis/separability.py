"""visualize's separability table (DIR/embeddings/separability.csv and .md): one row per
(source, method), written, read back and worded."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mnist_lab.core.describe import EMBEDDING_SOURCES, SOURCES
from mnist_lab.core.files import csv_text, read_bounded, write_if_changed
from mnist_lab.results import store


CSV_FILE, MARKDOWN_FILE = "separability.csv", "separability.md"  # in DIR/embeddings
SEPARABILITY_FIELDS = ("source", "method", "points", "neighborhood_hit",
                       *(f"neighborhood_hit_{label}" for label in range(10)),
                       "knn_accuracy", "silhouette", "trustworthiness", "hull_overlap", "seconds")


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
        return [{key: (value if key in ("source", "method") else float(value)) for key, value in row.items()}
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
             "class's convex hull (lower is better).", "",
             "| source | method | NH | k-NN accuracy | silhouette | trustworthiness | hull overlap | "
             + " | ".join(f"NH {label}" for label in range(10)) + " |",
             "| --- | --- |" + " ---: |" * 15]
    for row in rows:
        lines.append(f"| {EMBEDDING_SOURCES[row['source']]['layer'] if row['source'] in EMBEDDING_SOURCES else row['source']} | {row['method']} "
                     f"| {row['neighborhood_hit']:.3f} | {row['knn_accuracy']:.3f} | {row['silhouette']:.3f} "
                     f"| {row['trustworthiness']:.3f} | {row['hull_overlap']:.3f} | "
                     + " | ".join(f"{row[f'neighborhood_hit_{label}']:.3f}" for label in range(10)) + " |")
    lines += ["", *(_untangling_verdict(rows, method) for method in dict.fromkeys(row["method"] for row in rows))]
    return "\n".join(lines) + "\n"


def one_run(method: str) -> str:
    """What one row per map rests on, and so what it cannot tell apart from noise."""
    if method == "tsne":
        return ("in one t-SNE run of each map and one trained model per network; the spread over t-SNE runs and "
                "model seeds is not measured here, so a small step may be noise")
    return ("with one trained model per network; the spread over model seeds is not measured here, so a small step "
            "may be noise")


def _untangling_verdict(rows, method) -> str:
    """The course's expected finding (NH raw < MLP < CNN; the lab report prints no NH), checked
    against this method's numbers and worded by them."""
    hits = {row["source"]: row["neighborhood_hit"] for row in rows if row["method"] == method}
    order = [source for source in SOURCES if source in hits]
    chain = " < ".join(f"{source} {hits[source]:.3f}" for source in order)
    if len(order) < 2:
        return f"- {method}: only {chain}; nothing to compare."
    path = " to ".join(EMBEDDING_SOURCES[source]["short"] for source in order)
    if all(hits[a] < hits[b] for a, b in zip(order, order[1:])):
        return (f"- {method}: NH {chain}: increasing from {path}, the order the course expects, {one_run(method)}.")
    ranked = " ≤ ".join(f"{source} {hits[source]:.3f}" for source in sorted(order, key=hits.get))
    return f"- {method}: NH is **not** increasing from {path} here: {ranked}."
