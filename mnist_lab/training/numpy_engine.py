"""The lab's Part 1: logistic regression and the MLP with back-propagation written by hand.

Notation of the lab: a batch x (n x 784), one-hot labels y (n x 10).
  logreg:  z = x W + b,                       ŷ = softmax(z)
  mlp:     h = σ(x W1 + b1),  z = h W2 + b2,  ŷ = softmax(z)
  loss:    L = −(1/n) Σ y · log ŷ              (categorical cross-entropy)
Parameters are named as the Keras layers are (fc1, fc2), so weights compare one to one.
"""

from __future__ import annotations

import math
import time

import numpy as np

from mnist_lab.core.data import NUM_CLASSES, epoch_order

PIXELS = 784


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    exponentials = np.exp(z - z.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z) = z − max − log Σ exp(z − max): exact where softmax would underflow to 0."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow warning for large |z|.
    positive = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + positive), positive / (1 + positive)).astype(z.dtype, copy=False)


class NumpyModel:
    """``logreg`` or ``mlp`` as plain arrays; ``params`` maps "fc1/kernel" etc. to arrays."""

    def __init__(self, model_type: str, params: dict):
        self.type, self.params = model_type, params

    @classmethod
    def initialised(cls, model_config, seed: int, dtype=np.float32) -> "NumpyModel":
        """Keras's default initialisation: Glorot-uniform kernels, zero biases."""
        rng = np.random.default_rng(seed)
        sizes = ([(PIXELS, NUM_CLASSES)] if model_config.type == "logreg"
                 else [(PIXELS, model_config.hidden_units), (model_config.hidden_units, NUM_CLASSES)])
        params = {}
        for index, (fan_in, fan_out) in enumerate(sizes, start=1):
            limit = math.sqrt(6 / (fan_in + fan_out))
            params[f"fc{index}/kernel"] = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)
            params[f"fc{index}/bias"] = np.zeros(fan_out, dtype=dtype)
        return cls(model_config.type, params)

    @classmethod
    def load(cls, path) -> "NumpyModel":
        with np.load(path, allow_pickle=False) as archive:
            params = {name: archive[name] for name in archive.files if name != "type"}
            return cls(str(archive["type"]), params)

    def save(self, path):
        np.savez(path, type=np.array(self.type), **self.params)

    def get_weights(self) -> list:
        """The parameters in order, as Keras's Model.get_weights gives its own."""
        return [array.copy() for array in self.params.values()]

    def set_weights(self, weights: list):
        shapes = [array.shape for array in self.params.values()]
        if [np.shape(array) for array in weights] != shapes:
            raise ValueError(f"expected weights of shapes {shapes}, got {[np.shape(array) for array in weights]}")
        for name, array in zip(self.params, weights):
            self.params[name] = np.array(array, dtype=self.params[name].dtype)

    def count_params(self) -> int:
        return sum(array.size for array in self.params.values())

    def summary(self) -> str:
        rows = [f"{name:12} {str(array.shape):12} {array.size:>8,}" for name, array in self.params.items()]
        return "\n".join([f"NumPy {self.type} (hand-written back-propagation)", *rows,
                          f"Parameters: {self.count_params():,}"])

    def hidden(self, x: np.ndarray) -> np.ndarray:
        """h = σ(x W1 + b1), the MLP's 100-unit hidden layer."""
        if self.type != "mlp":
            raise ValueError(f"only the mlp has a hidden layer, not {self.type}")
        return sigmoid(x @ self.params["fc1/kernel"] + self.params["fc1/bias"])

    def logits(self, x: np.ndarray) -> np.ndarray:
        """z, the scores before the softmax."""
        p = self.params
        inputs = self.hidden(x) if self.type == "mlp" else x
        last = "fc2" if self.type == "mlp" else "fc1"
        return inputs @ p[f"{last}/kernel"] + p[f"{last}/bias"]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """L = −(1/n) Σ y · log ŷ, through log-softmax."""
        return float(-(y * log_softmax(self.logits(x))).sum() / len(x))

    def gradients(self, x: np.ndarray, y: np.ndarray) -> dict:
        """∂L/∂θ for every parameter, by back-propagation."""
        return self.backward(x, y)[0]

    def backward(self, x: np.ndarray, y: np.ndarray):
        """The gradients and, as the forward pass computed them on the way, the logits z."""
        p, n = self.params, len(x)
        if self.type == "logreg":
            z = x @ p["fc1/kernel"] + p["fc1/bias"]
            dz = (softmax(z) - y) / n                                       # ∂L/∂z = (ŷ − y)/n
            return {"fc1/kernel": x.T @ dz,                                 # ∇W = xᵀ(ŷ − y)/n
                    "fc1/bias": dz.sum(axis=0)}, z                          # ∇b = mean(ŷ − y)
        h = sigmoid(x @ p["fc1/kernel"] + p["fc1/bias"])                   # h = σ(z1)
        z = h @ p["fc2/kernel"] + p["fc2/bias"]
        dz2 = (softmax(z) - y) / n                                          # ∂L/∂z2 = (ŷ − y)/n
        dh = dz2 @ p["fc2/kernel"].T                                        # ∂L/∂h = ∂L/∂z2 W2ᵀ
        dz1 = dh * h * (1 - h)                                              # σ'(z1) = h(1 − h)
        return {"fc1/kernel": x.T @ dz1, "fc1/bias": dz1.sum(axis=0),       # ∇W1 = xᵀ ∂L/∂z1
                "fc2/kernel": h.T @ dz2, "fc2/bias": dz2.sum(axis=0)}, z    # ∇W2 = hᵀ ∂L/∂z2

    def sgd_step(self, x: np.ndarray, y: np.ndarray, learning_rate: float) -> np.ndarray:
        """θ ← θ − η ∇θ L (plain SGD, no momentum); returns the logits before the step."""
        gradients, logits = self.backward(x, y)
        for name, gradient in gradients.items():
            self.params[name] -= np.asarray(learning_rate, dtype=gradient.dtype) * gradient
        return logits


# The largest relative error a correct hand-written gradient shows against centred differences
# (step 1e-6, float64): the differences' round-off is about 1e-8; a wrong formula gives far more.
GRADIENT_TOLERANCE = 1e-6


def finite_difference_errors(model: NumpyModel, x: np.ndarray, y: np.ndarray, rng, entries=60, step=1e-6) -> dict:
    """Per parameter array, the relative error between back-propagation's gradient and centred
    finite differences (L(θ + h) − L(θ − h)) / 2h on ``entries`` of its elements drawn by ``rng``:
    ‖numeric − exact‖ / (‖numeric‖ + ‖exact‖). Use float64 parameters and data."""
    analytic = model.gradients(x, y)
    errors = {}
    for name, parameter in model.params.items():
        numeric, exact = [], []
        for entry in rng.choice(parameter.size, size=min(parameter.size, entries), replace=False):
            index = np.unravel_index(entry, parameter.shape)
            original = parameter[index]
            parameter[index] = original + step
            above = model.loss(x, y)
            parameter[index] = original - step
            below = model.loss(x, y)
            parameter[index] = original
            numeric.append((above - below) / (2 * step))
            exact.append(analytic[name][index])
        numeric, exact = np.array(numeric), np.array(exact)
        errors[name] = float(np.linalg.norm(numeric - exact)
                             / max(np.linalg.norm(numeric) + np.linalg.norm(exact), 1e-12))
    return errors


def train_epoch(model: NumpyModel, config, epoch: int, arrays) -> tuple[float, float, float]:
    """Epoch ``epoch`` (counted from 0 over all stages) of mini-batch SGD with its stage's batch
    size and its scheduled step, in the epoch's order drawn from (seed, epoch): the mean loss and
    accuracy of the batches before their steps (as Keras reports them), and the seconds it took."""
    started = time.perf_counter()
    y, batch_size, seed = arrays.y_train, config.stage_of(epoch).batch_size, config.seed
    learning_rate = config.learning_rate_at(epoch)
    order = epoch_order(seed, epoch, len(y))
    loss_sum = correct = 0.0
    # A diverging step overflows to inf/NaN: that shows in the epoch's loss, which stops
    # training with one clear message, so NumPy's own warnings would only be noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for start in range(0, len(y), batch_size):
            batch = order[start:start + batch_size]
            logits = model.sgd_step(arrays.train_inputs(batch), y[batch], learning_rate)
            loss_sum += float(-(y[batch] * log_softmax(logits)).sum())
            correct += float((logits.argmax(axis=1) == y[batch].argmax(axis=1)).sum())
    return loss_sum / len(y), correct / len(y), time.perf_counter() - started
