"""t-SNE of the 10,000 raw MNIST test images: the course's recipe against faster options.

Prints, for each option, seconds, Neighborhood Hit (k = 6) and trustworthiness
(k = 5, against the 784-pixel space), and the differences from the course's recipe
(scikit-learn TSNE, init='pca', perplexity 30). An option qualifies when both
stay within 0.01 of the recipe's.

    python bench/tsne_options.py [--limit 10000] [--only NAME,...]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_lab.analysis import measures  # noqa: E402
from mnist_lab.core.data import load_builtin, model_inputs  # noqa: E402


def pca(points, dimensions, seed):
    from sklearn.decomposition import PCA

    return PCA(n_components=dimensions, random_state=seed).fit_transform(points)


def sklearn_tsne(points, seed, threads=None):
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", perplexity=30, random_state=seed, n_jobs=threads).fit_transform(points)


def open_tsne(points, seed, iterations=500):
    from openTSNE import TSNE

    return np.asarray(TSNE(n_components=2, perplexity=30, initialization="pca", negative_gradient_method="fft",
                           n_iter=iterations, n_jobs=2, random_state=seed).fit(points))


RECIPE = "sklearn (lab recipe)"
OPTIONS = {
    RECIPE: lambda x, seed: sklearn_tsne(x, seed),
    "sklearn n_jobs=2": lambda x, seed: sklearn_tsne(x, seed, threads=2),
    "sklearn on PCA-50": lambda x, seed: sklearn_tsne(pca(x, 50, seed), seed, threads=2),
    "openTSNE FFT": lambda x, seed: open_tsne(x, seed),
    "openTSNE FFT 250 iterations": lambda x, seed: open_tsne(x, seed, iterations=250),
    "openTSNE FFT on PCA-50": lambda x, seed: open_tsne(pca(x, 50, seed), seed),
    "openTSNE FFT on PCA-50 250 iterations": lambda x, seed: open_tsne(pca(x, 50, seed), seed, iterations=250),
}


def measure(names, limit=10000, seed=0) -> list:
    """(option, seconds, NH, trustworthiness) for the course's recipe and each named option."""
    mnist = load_builtin()
    pixels, labels = model_inputs(mnist.x_test[:limit], "mlp"), mnist.y_test[:limit]
    rows = []
    for name in [RECIPE, *(name for name in names if name != RECIPE)]:
        started = time.perf_counter()
        points = OPTIONS[name](pixels, seed)
        seconds = time.perf_counter() - started
        rows.append((name, seconds, measures.neighborhood_hit(points, labels)[0], measures.trustworthiness(pixels, points)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated option names (the recipe is always run)")
    options = parser.parse_args()
    names = options.only.split(",") if options.only else list(OPTIONS)
    print(f"{'option':42} {'seconds':>8} {'NH':>7} {'trust':>7} {'dNH':>7} {'dtrust':>7}  within 0.01")
    rows = measure(names, options.limit, options.seed)
    for name, seconds, hit, trust in rows:
        d_hit, d_trust = hit - rows[0][2], trust - rows[0][3]
        verdict = "yes" if abs(d_hit) <= 0.01 and abs(d_trust) <= 0.01 else "no"
        print(f"{name:42} {seconds:8.1f} {hit:7.4f} {trust:7.4f} {d_hit:+7.4f} {d_trust:+7.4f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
