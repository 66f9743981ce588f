"""The numerical experiments behind REPORT.md's answers, with fixed seeds: Part 1's gradients
against finite differences, the convexity chord checks, and the logistic regression's loss
landscape (pixels that leave it without a minimiser, rank, curvature)."""

from __future__ import annotations

import numpy as np

from mnist_lab.core.config import ModelConfig
from mnist_lab.core.data import epoch_order, load_builtin, model_inputs, prepare


CONVEXITY_SEED = 0


def gradient_checks(images=16, entries=60) -> dict:
    """Part 1's back-propagated gradients against centred finite differences, per model: the
    largest relative error over its parameter arrays (numpy_engine.finite_difference_errors)."""
    from mnist_lab.training.numpy_engine import NumpyModel, finite_difference_errors

    errors = {}
    for model_type in ("logreg", "mlp"):
        rng = np.random.default_rng(CONVEXITY_SEED)
        model = NumpyModel.initialised(ModelConfig(type=model_type), CONVEXITY_SEED, dtype=np.float64)
        for name in model.params:  # non-zero biases, so their gradients are checked too
            model.params[name] += rng.normal(scale=0.1, size=model.params[name].shape)
        arrays = prepare(load_builtin(), model_type, train_limit=images)
        errors[model_type] = max(finite_difference_errors(model, arrays.train_inputs().astype(np.float64),
                                                          arrays.y_train.astype(np.float64), rng, entries).values())
    return {"images": images, "entries": entries, "errors": errors}


def convexity_checks(images=500, segments=100, points_per_segment=9) -> dict:
    """Largest excess of the loss over its chord: random segments for logreg, a permutation
    segment for the MLP (both ends trained, equal loss)."""
    from mnist_lab.training.numpy_engine import NumpyModel

    arrays = prepare(load_builtin(), "mlp", train_limit=images)
    x, y = arrays.train_inputs().astype(np.float64), arrays.y_train.astype(np.float64)
    rng = np.random.default_rng(CONVEXITY_SEED)
    fractions = np.linspace(0, 1, points_per_segment + 2)[1:-1]

    def excess(model_type, start, end):
        ends = [NumpyModel(model_type, params).loss(x, y) for params in (start, end)]
        return max(NumpyModel(model_type, {name: t * start[name] + (1 - t) * end[name] for name in start}).loss(x, y)
                   - (t * ends[0] + (1 - t) * ends[1]) for t in fractions)

    trained = {}
    for model_type in ("logreg", "mlp"):
        model = NumpyModel.initialised(ModelConfig(type=model_type), CONVEXITY_SEED, dtype=np.float64)
        for start in range(0, images, 50):
            for _ in range(20):
                model.sgd_step(x[start:start + 50], y[start:start + 50], 0.5)
        trained[model_type] = model.params

    def random_point():
        return {name: rng.normal(scale=0.05, size=value.shape) for name, value in trained["logreg"].items()}

    # Segments between random points, and from the trained model to random points.
    segments_checked = [(random_point(), random_point()) for _ in range(segments)]
    segments_checked += [(trained["logreg"], random_point()) for _ in range(segments // 10)]
    logreg_worst = max(excess("logreg", start, end) for start, end in segments_checked)
    order = rng.permutation(trained["mlp"]["fc1/bias"].size)
    permuted = {"fc1/kernel": trained["mlp"]["fc1/kernel"][:, order], "fc1/bias": trained["mlp"]["fc1/bias"][order],
                "fc2/kernel": trained["mlp"]["fc2/kernel"][order], "fc2/bias": trained["mlp"]["fc2/bias"]}
    return {"images": images, "logreg": {"segments": len(segments_checked), "max_excess": float(logreg_worst)},
            "mlp": {"segments": 1, "max_excess": float(excess("mlp", trained["mlp"], permuted))}}


def _augmented(x: np.ndarray) -> np.ndarray:
    """X̃: the pixels and a constant 1 (the bias's input)."""
    return np.hstack([x.astype(np.float64), np.ones((len(x), 1))])


def _gram_largest_eigenvalue(x: np.ndarray) -> float:
    """λmax(X̃ᵀX̃/n), from the smaller of X̃ᵀX̃ and X̃X̃ᵀ (the same non-zero eigenvalues)."""
    augmented = _augmented(x)
    gram = augmented.T @ augmented if augmented.shape[0] >= augmented.shape[1] else augmented @ augmented.T
    return float(np.linalg.eigvalsh(gram / len(x))[-1])


def loss_landscape(x: np.ndarray, labels: np.ndarray, image_width=28, batch_size=300, seed=0) -> dict:
    """The logistic regression's loss on images ``x`` (one row each) with ``labels``: the pixels
    that leave it without a minimiser (non-zero only in images of one class), the pixels zero
    in every image, the rank of X̃, and its curvature: the global bound L ≤ ½ λmax(X̃ᵀX̃/n), and
    the Hessian's largest eigenvalue at zero weights (uniform softmax p = 1/10), λmax(X̃ᵀX̃/n)
    times the largest eigenvalue of diag(p) − ppᵀ, which is 1/10; the same for each batch of
    ``batch_size`` images of the first epoch's order (``seed``), the curvature SGD's steps meet."""
    lit = x != 0
    classes = np.unique(labels)
    lit_by_class = np.stack([lit[labels == label].any(axis=0) for label in classes])
    one_class = lit_by_class.sum(axis=0) == 1
    images_lit = lit.sum(axis=0)
    example = int(np.argmax(np.where(one_class, images_lit, -1)))
    largest = _gram_largest_eigenvalue(x)
    return {"pixels": x.shape[1], "images": len(x), "never_lit": int((~lit.any(axis=0)).sum()),
            "one_class": int(one_class.sum()),
            "example": ({"row": example // image_width, "column": example % image_width,
                         "label": int(classes[lit_by_class[:, example].argmax()]), "images": int(images_lit[example])}
                        if one_class.any() else None),
            "rank": int(np.linalg.matrix_rank(_augmented(x))), "smoothness_bound": 0.5 * largest,
            "start_curvature": largest / len(classes), "batch_size": batch_size,
            "batch_start_curvatures": [_gram_largest_eigenvalue(batch) / len(classes)
                                       for batch in _first_epoch_batches(x, batch_size, seed)]}


def _first_epoch_batches(x: np.ndarray, batch_size: int, seed: int):
    order = epoch_order(seed, 0, len(x))
    return [x[order[start:start + batch_size]] for start in range(0, len(x), batch_size)]


def layer_facts(model_type: str) -> list[dict]:
    """Each layer of the model mnist-lab builds for ``model_type``: its name, kind, input and output
    shapes (without the batch), parameter count, and the shapes its parameters come from (a kernel
    and a bias) or a pooling layer's window."""
    from mnist_lab.training.models import build_model

    facts = []
    for layer in build_model(ModelConfig(type=model_type)).layers:
        fact = {"name": layer.name, "kind": type(layer).__name__, "input": tuple(layer.input.shape[1:]),
                "output": tuple(layer.output.shape[1:]), "parameters": layer.count_params()}
        if hasattr(layer, "kernel"):
            fact.update(kernel=tuple(layer.kernel.shape), bias=tuple(layer.bias.shape))
        if hasattr(layer, "pool_size"):
            fact["pool"] = tuple(layer.pool_size)
        facts.append(fact)
    return facts


def pca_variance_share(points: int, components=2) -> float:
    """Share of the raw test pixels' variance (first ``points`` test images) on PCA's first axes."""
    from sklearn.decomposition import PCA

    pixels = model_inputs(load_builtin().x_test[:points], "mlp").astype(np.float64)
    return float(PCA(n_components=components).fit(pixels).explained_variance_ratio_.sum())
