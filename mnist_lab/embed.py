"""2-D embeddings (t-SNE, PCA) and the separability measures of the lab's Part 3.

Neighbour sets are exact and deterministic: squared distances are computed
coordinate-wise in float64 (so duplicate points tie exactly), a point is never
its own neighbour, and among points at the same distance the lower index wins.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import freshness, interrupts, tables
from .data import NUM_CLASSES, idx_sha256
from .errors import UsageError
from .files import atomic_path, atomic_write_text, read_bounded

NEIGHBORHOOD_K = 6  # the lab's Neighborhood Hit
KNN_FOLDS = 5  # folds of the k-NN accuracy
TRUSTWORTHINESS_K = 5  # scikit-learn's default
_CHUNK_ROWS = 512  # rows of the distance matrix held at once (512 x 10,000 float64 = 41 MB)


def nearest_neighbors(points: np.ndarray, k: int) -> np.ndarray:
    """Indices (n x k) of each point's k nearest other points, ties to the lower index."""
    points = np.asarray(points, dtype=np.float64)
    count = len(points)
    if not 1 <= k < count:
        raise ValueError(f"k: expected 1 <= k < number of points ({count}), got {k}")
    neighbors = np.empty((count, k), dtype=np.int64)
    for start in range(0, count, _CHUNK_ROWS):
        rows = np.arange(start, min(start + _CHUNK_ROWS, count))
        distances = _squared_distances(points[rows], points)
        distances[np.arange(len(rows)), rows] = np.inf
        neighbors[rows] = _k_smallest(distances, k)
    return neighbors


def neighborhood_hit(points: np.ndarray, labels: np.ndarray, k: int = NEIGHBORHOOD_K):
    """The lab's NH: per point, the share of its k nearest 2-D neighbours with its label.

    Returns (mean over all points, mean per class as an array indexed by class).
    """
    labels = np.asarray(labels)
    hits = (labels[nearest_neighbors(points, k)] == labels[:, None]).mean(axis=1)
    classes = np.unique(labels)
    per_class = np.full(classes.max() + 1, np.nan)
    per_class[classes] = [hits[labels == label].mean() for label in classes]
    return float(hits.mean()), per_class


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int = TRUSTWORTHINESS_K) -> float:
    """Trustworthiness of a low-dimensional map (Venna and Kaski), as scikit-learn defines it.

    Penalises points that are near in the map but far in the original space, by
    how far down the original neighbour ranking they sit. Exact; memory stays at
    one chunk of the distance matrix, and only the needed ranks are computed.
    """
    high = np.asarray(high, dtype=np.float64)
    count = len(high)
    low_neighbors = nearest_neighbors(low, k)
    penalty = 0.0
    for start in range(0, count, _CHUNK_ROWS):
        rows = np.arange(start, min(start + _CHUNK_ROWS, count))
        distances = _squared_distances_blas(high[rows], high)
        distances[np.arange(len(rows)), rows] = np.inf
        near = low_neighbors[rows]
        near_distances = np.take_along_axis(distances, near, axis=1)
        # Rank of each map neighbour in the original space: 1 + how many points are closer.
        ranks = 1 + (distances[:, None, :] < near_distances[:, :, None]).sum(axis=2)
        penalty += np.maximum(ranks - k, 0).sum()
    return float(1 - 2 / (count * k * (2 * count - 3 * k - 1)) * penalty)


def hull_overlap(points: np.ndarray, labels: np.ndarray) -> float:
    """Share of points lying inside the convex hull of at least one other class."""
    from scipy.spatial import ConvexHull

    inside_other = np.zeros(len(points), dtype=bool)
    for label in np.unique(labels):
        members = points[labels == label]
        if len(members) < 3:
            continue
        equations = ConvexHull(members).equations  # rows (a, b, c): a x + b y + c <= 0 inside
        inside = (points @ equations[:, :2].T + equations[:, 2] <= 1e-12).all(axis=1)
        inside_other |= inside & (labels != label)
    return float(inside_other.mean())


def knn_accuracy(points, labels, k=NEIGHBORHOOD_K, seed=0) -> float:
    """5-fold cross-validated accuracy of a k-NN classifier on the 2-D points."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = StratifiedKFold(n_splits=KNN_FOLDS, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "the least populated class has only N members": expected on slices
        warnings.simplefilter("ignore", UserWarning)
        return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), points, labels, cv=folds).mean())


def _squared_distances(rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact squared distances, coordinate by coordinate (for low dimensions)."""
    total = np.zeros((len(rows), len(points)))
    for axis in range(points.shape[1]):
        total += (rows[:, axis, None] - points[None, :, axis]) ** 2
    return total


def _squared_distances_blas(rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Squared distances through one matrix product (for high dimensions)."""
    distances = (rows**2).sum(1)[:, None] + (points**2).sum(1)[None, :] - 2 * rows @ points.T
    return np.maximum(distances, 0)


def _k_smallest(distances: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k smallest values, sorted, ties to the lower index."""
    candidates = np.argpartition(distances, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(distances, candidates, axis=1).max(axis=1, keepdims=True)
    # Every column at or below the k-th distance, in (distance, index) order.
    rows, columns = np.nonzero(distances <= kth)
    order = np.lexsort((columns, distances[rows, columns], rows))
    rows, columns = rows[order], columns[order]
    starts = np.searchsorted(rows, np.arange(len(distances)))
    return columns[starts[:, None] + np.arange(k)[None, :]]


SOURCES = ("raw", "mlp", "cnn")
METHODS = ("tsne", "pca")
# Ellipse half-axes in standard deviations along each eigen-axis: √2, as the course's code draws
# them (width 2√2·√λ); they hold 1 − e^(−1) ≈ 63 % of a 2-D Gaussian's mass (ellipse_mass).
ELLIPSE_STDS = math.sqrt(2)


def ellipse_mass(stds: float) -> float:
    """Share of a 2-D Gaussian's mass inside its ellipse of half-axes ``stds`` standard deviations:
    the squared Mahalanobis radius is chi-square with 2 degrees of freedom, P(r² ≤ s²) = 1 − e^(−s²/2)."""
    return 1 - math.exp(-stds ** 2 / 2)


def ellipse_caption(stds: float) -> str:
    return f"best-fit Gaussian ellipse per class: half-axes {stds:.3g} σ, {ellipse_mass(stds):.0%} of its mass"


@dataclass(frozen=True)
class TsneSettings:
    """t-SNE parameters: the lab's (2-D, PCA initialisation, perplexity 30), computed the
    fastest way measured whose NH and trustworthiness stay within 0.01 of the lab's
    scikit-learn recipe (bench/tsne_options.py; README, "Performance")."""

    perplexity: float = 30.0
    init: str = "pca"
    engine: str = "opentsne"  # FFT-accelerated; "sklearn" is the course's exact recipe, about 2x slower
    iterations: int = 250  # openTSNE's, after its 250 early-exaggeration ones (sklearn: its default 1000)


OPENTSNE_EXAGGERATION_ITERATIONS = 250
_TSNE_REPORT_EVERY = 25


def embed_points(features: np.ndarray, method: str, settings: TsneSettings, seed: int,
                 progress=None) -> np.ndarray:
    """2-D coordinates of ``features`` by ``method`` ("tsne" or "pca")."""
    features = np.asarray(features, dtype=np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if settings.engine == "sklearn":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, init=settings.init, perplexity=settings.perplexity,
                    random_state=seed).fit_transform(features)
    from openTSNE import TSNE

    def report(iteration, error, embedding):
        interrupts.check()  # a signal lost inside openTSNE's threads or callbacks stops it here
        if progress is not None:
            progress(_TSNE_REPORT_EVERY)

    tsne = TSNE(n_components=2, perplexity=settings.perplexity, initialization=settings.init,
                negative_gradient_method="fft", n_iter=settings.iterations,
                early_exaggeration_iter=OPENTSNE_EXAGGERATION_ITERATIONS, n_jobs=2, random_state=seed,
                callbacks=report, callbacks_every_iters=_TSNE_REPORT_EVERY)
    return np.asarray(tsne.fit(features))


def separability(features: np.ndarray, points: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """All measures of one embedding: NH overall and per class, k-NN accuracy, silhouette,
    trustworthiness, hull overlap."""
    from sklearn.metrics import silhouette_score

    overall, per_class = neighborhood_hit(points, labels)
    return {"neighborhood_hit": overall,
            # NaN for a digit absent from these points (a small --limit)
            **{f"neighborhood_hit_{label}": float(per_class[label]) if label < len(per_class) else math.nan
               for label in range(NUM_CLASSES)},
            "knn_accuracy": knn_accuracy(points, labels, seed=seed),
            "silhouette": float(silhouette_score(points, labels)),
            "trustworthiness": trustworthiness(features, points),
            "hull_overlap": hull_overlap(points, labels)}


def class_hulls(points: np.ndarray, labels: np.ndarray) -> dict:
    """Each class's convex hull as a closed polygon (vertices in order)."""
    from scipy.spatial import ConvexHull

    hulls = {}
    for label in np.unique(labels):
        members = points[labels == label]
        if len(members) >= 3:
            vertices = members[ConvexHull(members).vertices]
            hulls[int(label)] = np.vstack([vertices, vertices[:1]])
    return hulls


def class_ellipses(points: np.ndarray, labels: np.ndarray, seed: int, stds=ELLIPSE_STDS) -> dict:
    """Each class's best-fit ellipse: a one-component full-covariance Gaussian mixture, as
    (centre, width, height, angle in degrees) along its covariance's eigen-axes, with half-axes
    of ``stds`` standard deviations."""
    from sklearn.mixture import GaussianMixture

    ellipses = {}
    for label in np.unique(labels):
        members = points[labels == label]
        if len(members) < 2:
            continue
        mixture = GaussianMixture(n_components=1, covariance_type="full", random_state=seed).fit(members)
        variances, axes = np.linalg.eigh(mixture.covariances_[0])
        width, height = 2 * stds * np.sqrt(variances[::-1])
        angle = float(np.degrees(np.arctan2(axes[1, -1], axes[0, -1])))
        ellipses[int(label)] = (mixture.means_[0], float(width), float(height), angle)
    return ellipses


@dataclass(frozen=True)
class Representation:
    """What gets embedded: the test images as one source sees them."""

    source: str
    features: object  # a callable returning the (n x d) array, computed at most once, only when needed
    key: str  # digest of everything that determines the features
    dimensions: str  # for progress lines, e.g. "10,000 x 784"
    images: str  # digest of the images embedded


def visualize(*, sources=SOURCES, methods=METHODS, results_dir="results", limit=None, seed=0,
              runs_by_type=None, train_missing=False, settings=TsneSettings(), data_config=None,
              ellipse_stds=ELLIPSE_STDS, progress=True, log=print) -> list:
    """The lab's Part 3: embeddings, their figures and the separability table; returns the paths
    written. A figure or table already made from the same inputs is kept, not made again
    (freshness.py), so a call with nothing new to do reads the cache and writes nothing."""
    from . import projector
    from .config import DataConfig
    from .train import load_checked

    data_config = data_config or DataConfig()
    dataset = load_checked(data_config)
    folder = Path(results_dir) / EMBEDDINGS_FOLDER
    images, labels = dataset.x_test[:limit], dataset.y_test[:limit]
    check_inputs(labels, methods, settings, ellipse_stds)
    representations = [_representation(source, images, dataset, data_config, results_dir,
                                       (runs_by_type or {}).get(source), train_missing, log) for source in sources]
    figures = _Figures(idx_sha256(labels))
    first = dataset.x_train[:200]
    figures.draw(Path(results_dir) / "figures" / "train_first_200.png", ("first 200", idx_sha256(first)),
                 lambda plots, path: plots.image_grid(first, 10, 20, path, "The first 200 training images"))
    rows, tsne_panels = [], []
    tensors = []  # for TensorBoard's Projector: each source's features and each of its maps
    for representation in representations:
        tensors.append((f"{representation.source} features ({representation.dimensions})",
                        projector.tensor_file(representation.source, representation.key), representation.features))
        for method in methods:
            points, measures = _embedding(representation, method, labels, settings, seed, folder, progress, log)
            points_digest = hashlib.sha256(points.tobytes()).hexdigest()
            tensors.append((f"{representation.source} {_METHOD_NAMES[method]} map",
                            projector.tensor_file(f"{representation.source}_{method}", points_digest),
                            lambda points=points: points))
            title = (f"{representation.source} {_METHOD_NAMES[method]}: Neighborhood Hit (k = {NEIGHBORHOOD_K}) "
                     f"{measures['neighborhood_hit']:.3f}")
            figures.draw(folder / f"{representation.source}_{method}.png", (points_digest, title, seed, ellipse_stds),
                         lambda plots, path, points=points, title=title: plots.embedding_panels(
                             points, labels, class_hulls(points, labels), class_ellipses(points, labels, seed,
                                                                                        ellipse_stds),
                             path, title, ellipse_caption(ellipse_stds)))
            rows.append({"source": representation.source, "method": method, "points": len(labels), **measures})
            if method == "tsne":
                tsne_panels.append((f"{representation.source}: NH {measures['neighborhood_hit']:.3f}", points,
                                    points_digest))
    if len(tsne_panels) > 1:
        figures.draw(folder / "untangling.png", [(title, digest) for title, _, digest in tsne_panels],
                     lambda plots, path: plots.untangling([panel[:2] for panel in tsne_panels], labels, path))
    written = figures.written + projector.export(folder / projector.FOLDER, images, labels, tensors)
    rows += _cached_rows(folder, rows, idx_sha256(images), settings, seed)
    rows.sort(key=lambda row: (SOURCES.index(row["source"]), METHODS.index(row["method"])))
    written += tables.write_separability(rows, folder)
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
        from . import plots

        draw(plots, path)
        freshness.record([path], key)
        self.written.append(path)


MAX_ELLIPSE_STDS = 10


def check_inputs(labels, methods, settings, ellipse_stds=ELLIPSE_STDS):
    """Refuse, before any work, a number of points the measures cannot use (UsageError)."""
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


EMBEDDINGS_FOLDER = "embeddings"
CACHE_FOLDER = "cache"
_METHOD_NAMES = {"tsne": "t-SNE", "pca": "PCA"}
_TRAIN_COMMANDS = {"mlp": "mnist-lab train mlp", "cnn": "mnist-lab train cnn"}


def _representation(source, images, dataset, data_config, results_dir, run, train_missing, log) -> Representation:
    from .data import model_inputs

    images_digest = idx_sha256(images)
    shape = f"{len(images):,} x "
    if source == "raw":
        return Representation("raw", functools.cache(lambda: model_inputs(images, "mlp")),
                              _digest({"source": "raw", "images": images_digest}), shape + "784", images_digest)
    if run is None:
        run = _default_run(source, dataset, data_config, results_dir, train_missing, log)
    record = _checked_run(source, Path(run), dataset)
    model_file, scaled = Path(record["model_file"]), record["config"]["data"].get("scaled", True)
    model_digest = freshness.file_digest(model_file)
    log(f"{source}: hidden layer of {run}")

    def features():
        from .store import load_model

        inputs = model_inputs(images, source, scaled)  # as the run's model was trained
        model = load_model(model_file)
        if model_file.suffix == ".npz":  # the numpy engine's MLP
            return model.hidden(inputs)
        from .models import hidden_features

        return hidden_features(model, inputs)

    return Representation(source, functools.cache(features),
                          _digest({"source": source, "images": images_digest, "model": model_digest}),
                          shape + "100", images_digest)


def _checked_run(source, run: Path, dataset) -> dict:
    """The metrics of a run given with --mlp/--cnn, after checking it can serve as ``source``."""
    from .store import DamagedResult, read_run

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
    from .config import Config, ModelConfig, to_dict
    from .backends import selected_backend
    from .identity import experiment
    from .store import complete_runs

    lab_config = Config(model=ModelConfig(type=model_type), data=data_config)
    wanted = experiment(to_dict(lab_config), dataset.digest, selected_backend())
    del wanted["seed"]
    for run, metrics in complete_runs(results_dir, log):
        if {field: value for field, value in metrics["experiment"].items() if field != "seed"} == wanted:
            return run
    if not train_missing:
        raise UsageError(f"no complete run of the lab's {model_type} config on the whole of this data under "
                         f"{Path(results_dir) / 'runs'}: run `{_TRAIN_COMMANDS[model_type]}` first, pass "
                         f"--{model_type} RUN_DIR, or add --train-missing")
    from .train import train

    log(f"Training the lab's {model_type} (--train-missing)")
    return train(lab_config, model_type, results_dir, log=log, dataset=dataset).run_dir


def _embedding(representation, method, labels, settings, seed, folder, progress, log):
    """The cached 2-D points and measures of one (source, method), computing what is missing
    (or damaged) in the cache."""
    parameters = _parameters(method, settings, seed)
    key = _digest({"representation": representation.key, "parameters": parameters})
    cache = folder / CACHE_FOLDER / f"{representation.source}_{method}_{key}"
    points_file, measures_file = cache.with_suffix(".npy"), cache.with_suffix(".json")
    if points_file.exists() or measures_file.exists():
        cached = _read_cache_entry(points_file, measures_file, len(labels))
        if cached is not None:
            log(f"{representation.source} {_METHOD_NAMES[method]}: cached ({points_file.name})")
            return cached
        log(f"Warning: damaged cache entry {cache}.npy/.json, recomputed")
    started = time.perf_counter()
    features = representation.features()
    with _EmbeddingProgress(f"{representation.source} {_METHOD_NAMES[method]} ({representation.dimensions})",
                            method, settings, progress, log) as bar:
        points = embed_points(features, method, settings, seed, progress=bar.update)
    measures = separability(features, points, labels, seed)
    measures["seconds"] = time.perf_counter() - started
    with atomic_path(points_file) as temporary:
        with open(temporary, "wb") as stream:
            np.save(stream, points)
    # What the entry was computed from, so the separability table can merge entries of earlier runs.
    origin = {"source": representation.source, "method": method, "points": len(labels),
              "images": representation.images, "parameters": parameters}
    atomic_write_text(measures_file, json.dumps({**measures, "origin": origin}, indent=1) + "\n")
    return points, measures


def _parameters(method, settings, seed) -> dict:
    return {"method": method, "seed": seed, **(dataclasses.asdict(settings) if method == "tsne" else {})}


_MEASURES = tables.SEPARABILITY_FIELDS[3:]  # after source, method, points: what a cache entry's measures hold


def _read_cache_entry(points_file, measures_file, count):
    """(points, measures) of a cache entry, or None when either file is missing or damaged."""
    try:
        points = np.load(io.BytesIO(read_bounded(points_file)), allow_pickle=False)
        measures = json.loads(read_bounded(measures_file))
    except (OSError, ValueError, EOFError):
        return None
    if (points.shape != (count, 2) or not np.isfinite(points).all() or not isinstance(measures, dict)
            or not all(isinstance(measures.get(name), (int, float)) for name in _MEASURES)):
        return None
    return points, {name: measures[name] for name in _MEASURES}


def _cached_rows(folder, rows, images_digest, settings, seed) -> list[dict]:
    """Rows for the (source, method) pairs not computed in this call, from the newest cache entry
    of the same images and parameters: a partial call (``--sources raw``) adds to the table
    instead of shrinking it."""
    done = {(row["source"], row["method"]) for row in rows}
    found = {}
    for measures_file in sorted((folder / CACHE_FOLDER).glob("*.json"), key=lambda path: path.stat().st_mtime_ns):
        try:
            origin = json.loads(read_bounded(measures_file)).get("origin", {})
        except (OSError, ValueError, AttributeError):
            continue
        pair = (origin.get("source"), origin.get("method"))
        if (pair in done or pair[0] not in SOURCES or pair[1] not in METHODS or origin.get("images") != images_digest
                or origin.get("parameters") != _parameters(pair[1], settings, seed)):
            continue
        cached = _read_cache_entry(measures_file.with_suffix(".npy"), measures_file, origin.get("points"))
        if cached is not None:
            found[pair] = {"source": pair[0], "method": pair[1], "points": origin["points"], **cached[1]}
    return list(found.values())


class _EmbeddingProgress:
    """A bar over openTSNE's iterations; a start and an end line otherwise."""

    def __init__(self, label, method, settings, enabled, log):
        self.label, self.log, self.iterations = label, log, settings.iterations
        self.show_bar = enabled and method == "tsne" and settings.engine == "opentsne"
        self._bar = None

    def __enter__(self):
        self._started = time.perf_counter()
        if self.show_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=OPENTSNE_EXAGGERATION_ITERATIONS + self.iterations, desc=self.label,
                             unit="iteration", dynamic_ncols=True)
        else:
            self.log(f"{self.label}: computing")
        return self

    def update(self, iterations):
        if self._bar is not None:
            self._bar.update(iterations)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
        if exc[0] is None:
            self.log(f"{self.label}: {time.perf_counter() - self._started:.1f} s")


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
