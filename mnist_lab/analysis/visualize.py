"""`visualize`'s work, the lab's Part 3: which runs' hidden layers to embed (found, checked or
trained), the maps and their figures, TensorBoard's Projector export and the separability table."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_lab.analysis.embedding_cache import cached_rows, embedding, json_digest
from mnist_lab.analysis.embeddings import (ELLIPSE_STDS, TsneSettings, class_ellipses, class_hulls,
                                           ellipse_caption)
from mnist_lab.analysis.measures import KNN_FOLDS, NEIGHBORHOOD_K
from mnist_lab.analysis.separability import combined, write_separability
from mnist_lab.core.data import idx_sha256
from mnist_lab.core.describe import EMBEDDING_METHODS, MAP_RUNS, METHODS, SOURCES
from mnist_lab.core.errors import UsageError, printable
from mnist_lab.core.output import Output
from mnist_lab.results import event_logs, freshness, store


@dataclass(frozen=True)
class Representation:
    """What gets embedded: the test images as one source sees them."""

    source: str
    features: object  # a callable returning the (n x d) array, computed at most once, only when needed
    key: str  # digest of everything that determines the features
    dimensions: str  # for progress lines, e.g. "10,000 x 784"
    images: str  # digest of the images embedded
    embedded: str  # what it is, for the table: the pixels, or which run's layer (its key and seed)


def visualize(*, sources=SOURCES, methods=METHODS, results_dir="results", limit=None, seed=0,
              runs_by_type=None, train_missing=False, settings=TsneSettings(), data_config=None,
              ellipse_stds=ELLIPSE_STDS, runs=MAP_RUNS, output=Output()) -> list:
    """The lab's Part 3: embeddings, their figures and the separability table; returns the paths
    written. Each map is computed ``runs`` times, with seeds ``seed``, ``seed`` + 1, …: the table
    gives each measure's mean and spread over them (what decides whether a difference is beyond
    noise); the figures and the Projector show the first. A figure or table already made from the same inputs is kept, not made again
    (freshness.py), so a call with nothing new to do reads the cache and writes nothing."""
    from mnist_lab.analysis import projector
    from mnist_lab.core.config import DataConfig
    from mnist_lab.core.identity import load_checked

    log, progress = output.log, output.progress
    data_config = data_config or DataConfig()
    dataset = load_checked(data_config)
    folder = Path(results_dir) / store.EMBEDDINGS_FOLDER
    images, labels = dataset.x_test[:limit], dataset.y_test[:limit]
    check_inputs(labels, methods, settings, ellipse_stds, seed, runs)
    seeds = list(range(seed, seed + runs))
    representations = [_representation(source, images, dataset, data_config, results_dir,
                                       (runs_by_type or {}).get(source), train_missing, log) for source in sources]
    figures = _Figures(idx_sha256(labels))
    first = dataset.x_train[:200]
    figures.draw(Path(results_dir) / store.FIGURES_FOLDER / "train_first_200.png", ("first 200", idx_sha256(first)),
                 lambda plots, path: plots.image_grid(first, 10, 20, path, "The first 200 training images"))
    rows, tsne_panels = [], []
    tensors = []  # for TensorBoard's Projector: each source's features and each of its maps
    for representation in representations:
        tensors.append((projector.listed_name(representation.source, None, f"{representation.source} features ({representation.dimensions})"),
                        projector.tensor_file(representation.source, representation.key), representation.features))
        for method in methods:
            maps = [embedding(representation, method, labels, settings, run_seed, folder, progress, log)
                    for run_seed in seeds]
            points, measures = maps[0][0], combined([run_measures for _, run_measures in maps])
            points_digest = hashlib.sha256(points.tobytes()).hexdigest()
            tensors.append((projector.listed_name(representation.source, method,
                                                  f"{representation.source} {EMBEDDING_METHODS[method]} map"),
                            projector.tensor_file(f"{representation.source}_{method}_xy0", points_digest),
                            lambda points=points: projector.viewable_map(points)))
            title = (f"{representation.source} {EMBEDDING_METHODS[method]}: Neighborhood Hit (k = {NEIGHBORHOOD_K}) "
                     f"{measures['neighborhood_hit']:.3f}")
            figures.draw(folder / f"{representation.source}_{method}.png", (points_digest, title, seed, ellipse_stds),
                         lambda plots, path, points=points, title=title: plots.embedding_panels(
                             points, labels, class_hulls(points, labels), class_ellipses(points, labels, seed,
                                                                                        ellipse_stds),
                             path, title, ellipse_caption(ellipse_stds)))
            rows.append({"source": representation.source, "method": method, "points": len(labels), **measures,
                         "embedded": representation.embedded, "settings": settings.describe(method)})
            if method == "tsne":
                tsne_panels.append((f"{representation.source}: NH {measures['neighborhood_hit']:.3f}", points,
                                    points_digest))
    if len(tsne_panels) > 1:
        figures.draw(folder / "untangling.png", [(title, digest) for title, _, digest in tsne_panels],
                     lambda plots, path: plots.untangling([panel[:2] for panel in tsne_panels], labels, path))
    written = figures.written + projector.export(Path(results_dir) / event_logs.FOLDER, images, labels, tensors)
    rows += cached_rows(folder, rows, idx_sha256(images), settings, seeds)
    rows.sort(key=lambda row: (SOURCES.index(row["source"]), METHODS.index(row["method"])))
    written += write_separability(rows, folder)
    if figures.kept:
        log(f"Up to date, not redrawn: {figures.kept} figure{'s' if figures.kept > 1 else ''}")
    return written


class _Figures:
    """Draws a figure only when it is not up to date with its inputs (freshness.py); matplotlib is
    imported only when one is drawn."""

    def __init__(self, labels_digest: str):
        self.labels_digest, self.written, self.kept = labels_digest, [], 0

    def draw(self, path: Path, inputs, draw):
        key = freshness.inputs_key(path.name, self.labels_digest, inputs)
        if freshness.up_to_date([path], key):
            self.kept += 1
            return
        from mnist_lab.results import plots

        draw(plots, path)
        freshness.record([path], key)
        self.written.append(path)


MAX_ELLIPSE_STDS = 10
MAX_SEED = 2**32 - 1


def check_inputs(labels, methods, settings, ellipse_stds=ELLIPSE_STDS, seed=0, runs=MAP_RUNS):
    """Refuse, before any work, a number of points the measures cannot use, or runs whose seeds do
    not exist (UsageError)."""
    if seed + runs - 1 > MAX_SEED:
        raise UsageError(f"--seed {seed} with --runs {runs}: the runs' seeds {seed} … {seed + runs - 1} go past "
                         f"{MAX_SEED:,}, the largest seed; lower --seed")
    points = len(labels)
    if not (math.isfinite(ellipse_stds) and 0 < ellipse_stds <= MAX_ELLIPSE_STDS):
        raise UsageError(f"--ellipse-stds {ellipse_stds:g}: expected a number > 0 and at most {MAX_ELLIPSE_STDS} "
                         f"(an ellipse of {MAX_ELLIPSE_STDS} standard deviations holds all but e^-50 of a "
                         f"Gaussian's mass; a larger one draws nothing more)")
    if not math.isfinite(settings.perplexity):
        raise UsageError(f"--perplexity {settings.perplexity}: expected a finite number >= 1")
    # t-SNE looks at 3 x perplexity neighbours of each point.
    if "tsne" in methods and 3 * settings.perplexity > points - 2:
        raise UsageError(f"--perplexity {settings.perplexity:g}: expected at most {(points - 2) / 3:.1f} for "
                         f"{points:,} points (t-SNE uses 3 x perplexity neighbours); lower it or raise --limit")
    largest_class = np.bincount(labels).max()
    if largest_class < KNN_FOLDS or len(np.unique(labels)) < 2 or points < KNN_FOLDS * (NEIGHBORHOOD_K + 1):
        raise UsageError(f"--limit {points}: too few points for the measures (a {KNN_FOLDS}-fold k-NN with "
                         f"k = {NEIGHBORHOOD_K} needs at least {KNN_FOLDS * (NEIGHBORHOOD_K + 1)} points, two "
                         f"classes and one class of {KNN_FOLDS}); raise --limit")


_TRAIN_COMMANDS = {"mlp": "mnist-lab train mlp", "cnn": "mnist-lab train cnn"}


def _representation(source, images, dataset, data_config, results_dir, run, train_missing, log) -> Representation:
    from mnist_lab.core.data import model_inputs

    images_digest = idx_sha256(images)
    shape = f"{len(images):,} x "
    if source == "raw":
        return Representation("raw", functools.cache(lambda: model_inputs(images, "mlp")),
                              json_digest({"source": "raw", "images": images_digest}), shape + "784",
                              images_digest, "the test images' 784 pixels")
    if run is None:
        run = _default_run(source, dataset, data_config, results_dir, train_missing, log)
    record = _checked_run(source, Path(run), dataset)
    model_file, scaled = Path(record["model_file"]), record["config"]["data"].get("scaled", True)
    model_digest = freshness.file_digest(model_file)
    log(f"{source}: hidden layer of {run}")

    def features():
        from mnist_lab.training.saved_models import hidden_representation, load_run_model

        inputs = model_inputs(images, source, scaled)  # as the run's model was trained
        return hidden_representation(load_run_model(model_file), inputs)

    return Representation(source, functools.cache(features),
                          json_digest({"source": source, "images": images_digest, "model": model_digest}),
                          shape + "100", images_digest,
                          f"the 100-unit hidden layer of run {printable(Path(run).name, 100)} (seed {record['seed']})")


def _checked_run(source, run: Path, dataset) -> dict:
    """The metrics of a run given with --mlp/--cnn, after checking it can serve as ``source``."""
    from mnist_lab.results.store import DamagedResult, read_run

    try:
        metrics = read_run(run)
    except DamagedResult as error:
        raise UsageError(f"--{source} {run}: not a complete run ({error})") from None
    if metrics["model"] != source:
        raise UsageError(f"--{source} {run}: a {metrics['model']} run, expected a {source} run "
                         f"(its hidden layer is what is embedded)")
    trained_on = metrics["experiment"]["data"]["digest"]
    if trained_on != dataset.digest:
        raise UsageError(f"--{source} {run}: trained on other data (digest {trained_on[:12]}) than the images "
                         f"to embed ({dataset.describe()}, digest {dataset.digest[:12]}); pass --data with "
                         f"the data it was trained on")
    return metrics


def _default_run(model_type, dataset, data_config, results_dir, train_missing, log) -> Path:
    """The newest complete run of the lab's config for ``model_type`` on the whole of this data
    (any seed); with ``train_missing``, trained when there is none."""
    from mnist_lab.core.config import Config, ModelConfig, to_dict
    from mnist_lab.core.backends import selected_backend
    from mnist_lab.core.identity import experiment
    from mnist_lab.results.store import complete_runs

    lab_config = Config(model=ModelConfig(type=model_type), data=data_config)
    wanted = experiment(to_dict(lab_config), dataset.digest, selected_backend())
    del wanted["seed"]
    for run, metrics in complete_runs(results_dir, log):
        if {field: value for field, value in metrics["experiment"].items() if field != "seed"} == wanted:
            return run
    if not train_missing:
        raise UsageError(f"no complete run of the lab's {model_type} config on the whole of this data under "
                         f"{Path(results_dir) / store.RUNS_FOLDER}: run `{_TRAIN_COMMANDS[model_type]}` first, pass "
                         f"--{model_type} RUN_DIR, or add --train-missing")
    from mnist_lab.training.run import train

    log(f"Training the lab's {model_type} (--train-missing)")
    return train(lab_config, model_type, results_dir, output=Output(log=log), dataset=dataset).run_dir


