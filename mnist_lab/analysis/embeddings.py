"""2-D maps of a representation (t-SNE, PCA) and the class shapes drawn on them (convex hulls,
best-fit ellipses)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mnist_lab.core import interrupts


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
    scikit-learn recipe (bench/tsne_options.py; docs/performance.md)."""

    perplexity: float = 30.0
    init: str = "pca"
    engine: str = "opentsne"  # FFT-accelerated; "sklearn" is the course's exact recipe, about 2x slower
    iterations: int = 250  # openTSNE's, after its 250 early-exaggeration ones (sklearn: its default 1000)

    def describe(self, method: str) -> str:
        """How ``method``'s maps are computed, in words (what differs from the course's recipe shows)."""
        if method == "pca":
            return "scikit-learn PCA, 2 components"
        if self.engine == "sklearn":
            return f"scikit-learn TSNE (the course's recipe), perplexity {self.perplexity:g}, {self.init} initialisation"
        return (f"openTSNE, FFT gradients, perplexity {self.perplexity:g}, {self.init} initialisation, "
                f"{OPENTSNE_EXAGGERATION_ITERATIONS} + {self.iterations} iterations (not the course's scikit-learn "
                "TSNE: within 0.01 of its NH and trustworthiness, about twice as fast)")


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


def class_gaussians(points: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """Each class's best-fit Gaussian (a one-component full-covariance Gaussian mixture) as
    (mean, covariance): what its ellipse is drawn from and scored by."""
    from sklearn.mixture import GaussianMixture

    gaussians = {}
    for label in np.unique(labels):
        members = points[labels == label]
        if len(members) < 2:
            continue
        mixture = GaussianMixture(n_components=1, covariance_type="full", random_state=seed).fit(members)
        gaussians[int(label)] = (mixture.means_[0], mixture.covariances_[0])
    return gaussians


def class_ellipses(points: np.ndarray, labels: np.ndarray, seed: int, stds=ELLIPSE_STDS) -> dict:
    """Each class's best-fit ellipse (class_gaussians), as (centre, width, height, angle in degrees)
    along its covariance's eigen-axes, with half-axes of ``stds`` standard deviations."""
    ellipses = {}
    for label, (mean, covariance) in class_gaussians(points, labels, seed).items():
        variances, axes = np.linalg.eigh(covariance)
        width, height = 2 * stds * np.sqrt(variances[::-1])
        angle = float(np.degrees(np.arctan2(axes[1, -1], axes[0, -1])))
        ellipses[label] = (mean, float(width), float(height), angle)
    return ellipses
