"""A run's saved model, either engine's (``model.keras`` or the NumPy engine's ``model.npz``):
loaded with its damage named, and the two things the analysis asks of it. Keras is imported only
for a Keras model."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mnist_lab.core.errors import UsageError


def load_run_model(model_file):
    """A run's model; UsageError naming the file when it is damaged (truncated, overwritten, of
    another kind)."""
    model_file = Path(model_file)
    try:
        if model_file.suffix == ".npz":
            from mnist_lab.training.numpy_engine import NumpyModel

            return NumpyModel.load(model_file)
        if not zipfile.is_zipfile(model_file):  # Keras would say "File not found" of a truncated one
            raise ValueError("not a complete .keras archive: truncated or overwritten")
        import keras

        return keras.saving.load_model(model_file)
    except Exception as error:  # noqa: BLE001 (whatever a damaged file raises, it is named)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"{model_file}: damaged, the model cannot be loaded ({reason}); retrain it with "
                         f"`mnist-lab train --force`") from None


def class_probabilities(model, inputs: np.ndarray) -> np.ndarray:
    """One row of class probabilities per input, from a model load_run_model returned: Keras's own
    predict(), as `predict` always printed (its JSON shows every digit); training evaluates with
    fit.predict, whose batches are its own."""
    if _is_numpy_engine(model):
        return model.probabilities(inputs)
    return np.asarray(model.predict(inputs, verbose=0))


def hidden_representation(model, inputs: np.ndarray) -> np.ndarray:
    """The 100-unit hidden layer's values per input (what `visualize` embeds)."""
    if _is_numpy_engine(model):
        return model.hidden(inputs)
    from mnist_lab.training.models import hidden_features

    return hidden_features(model, inputs)


def _is_numpy_engine(model) -> bool:
    from mnist_lab.training.numpy_engine import NumpyModel

    return isinstance(model, NumpyModel)
