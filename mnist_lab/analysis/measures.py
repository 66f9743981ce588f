"""The separability measures of the lab's Part 3 on a 2-D map: Neighborhood Hit (the course's), k-NN
accuracy, silhouette, trustworthiness, convex-hull overlap and ellipse overlap.

Neighbour sets are exact and deterministic: squared distances are computed
coordinate-wise in float64 (so duplicate points tie exactly), a point is never
its own neighbour, and among points at the same distance the lower index wins.
Neighborhood Hit and the two overlaps are written here (scikit-learn has none); the tests hold
them to brute-force counts, and trustworthiness to scikit-learn's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from mnist_lab.analysis.embeddings import ELLIPSE_STDS, class_gaussians
from mnist_lab.core.data import NUM_CLASSES


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


def ellipse_overlap(points: np.ndarray, labels: np.ndarray, gaussians: dict, stds: float) -> float:
    """Share of points lying inside the ellipse of at least one other class: its Gaussian's
    (mean, covariance) from ``gaussians`` (embeddings.class_gaussians), half-axes ``stds`` standard
    deviations, that is, a squared Mahalanobis distance of at most stds²."""
    inside_other = np.zeros(len(points), dtype=bool)
    for label, (mean, covariance) in gaussians.items():
        offsets = points - mean
        squared = np.einsum("ij,jk,ik->i", offsets, np.linalg.inv(covariance), offsets)
        inside_other |= (squared <= stds ** 2) & (labels != label)
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


def separability(features: np.ndarray, points: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """All measures of one embedding: NH overall and per class, k-NN accuracy, silhouette,
    trustworthiness, hull overlap, and ellipse overlap (the ellipses of √2 σ the figures draw by
    default, the course's)."""
    from sklearn.metrics import silhouette_score

    overall, per_class = neighborhood_hit(points, labels)
    return {"neighborhood_hit": overall,
            # NaN for a digit absent from these points (a small --limit)
            **{f"neighborhood_hit_{label}": float(per_class[label]) if label < len(per_class) else math.nan
               for label in range(NUM_CLASSES)},
            "knn_accuracy": knn_accuracy(points, labels, seed=seed),
            "silhouette": float(silhouette_score(points, labels)),
            "trustworthiness": trustworthiness(features, points),
            "hull_overlap": hull_overlap(points, labels),
            "ellipse_overlap": ellipse_overlap(points, labels, class_gaussians(points, labels, seed), ELLIPSE_STDS)}
