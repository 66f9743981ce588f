"""The lab's three models, built from a ModelConfig with stable layer names."""

from __future__ import annotations

import random

import keras
import numpy as np

from mnist_lab.core.data import IMAGE_SHAPE, NUM_CLASSES
from mnist_lab.training.tensors import shared

# The 100-unit hidden layer of the MLP and of the CNN: later commands
# (visualize) read the hidden representation through this name.
HIDDEN_LAYER = "fc1"
OUTPUT_LAYER = "fc2"
# keras.random.make_default_seed draws seeds in 1..10**9.
KERAS_SEED_RANGE = 10**9
# Images per forward pass when predicting. Fixed for good: under some kernels (oneDNN limited
# to AVX2, or TensorFlow's own with TF_ENABLE_ONEDNN_OPTS=0) another size changes the outputs'
# last bits (measured), and so the test metrics every result records.
FORWARD_BATCH = 1000


def build_model(model_config, seed=None) -> keras.Model:
    """A fresh, uncompiled model for ``model_config`` (pure: no I/O, no training).

    ``seed`` gives each kernel initializer its own seed, drawn from ``random.Random(seed)``
    in layer order: exactly the seeds Keras draws from Python's global generator right
    after ``keras.utils.set_random_seed(seed)``, so the weights are the same, but no other
    thread drawing from that global generator meanwhile (a Dask worker's event loop does)
    can change them.
    """
    builders = {"logreg": _logreg, "mlp": _mlp, "cnn": _cnn}
    if model_config.type not in builders:
        raise ValueError(f"model.type: expected one of {', '.join(builders)}, got {model_config.type!r}")
    draws = random.Random(seed)

    def kernel_initializer():
        if seed is None:
            return "glorot_uniform"
        return keras.initializers.GlorotUniform(seed=draws.randint(1, KERAS_SEED_RANGE))

    return keras.Sequential(builders[model_config.type](model_config, kernel_initializer), name=model_config.type)


def forward(model, inputs) -> np.ndarray:
    """The model's outputs for ``inputs`` (an array, or its ``forward_chunks`` made once for
    repeated use), from direct forward passes in chunks.

    Not model.predict() or evaluate(): with TensorFlow 2.21 on a 2-core CPU,
    either of them called inside fit() leaves the following epochs running on
    one core, twice as slow (measured), and direct calls are as fast. Nor one
    compiled call: its graph fuses layers' operations and gives other bits.
    """
    chunks = _chunks(inputs) if isinstance(inputs, np.ndarray) else inputs
    return np.concatenate([keras.ops.convert_to_numpy(model(chunk, training=False)) for chunk in chunks])


def forward_chunks(inputs: np.ndarray) -> list:
    """``inputs`` as backend tensors in forward's chunks, for a set evaluated after every epoch:
    converted once rather than each time (8 ms of a logistic regression's 29 ms evaluation)."""
    return list(_chunks(inputs))


def _chunks(inputs: np.ndarray):
    return (shared(inputs[start:start + FORWARD_BATCH])
            for start in range(0, len(inputs), FORWARD_BATCH))


def hidden_features(model, inputs: np.ndarray) -> np.ndarray:
    """Activations of the 100-unit hidden layer, read through a sub-model (the model is not changed)."""
    hidden = keras.Model(model.inputs[0], model.get_layer(HIDDEN_LAYER).output)
    return forward(hidden, inputs)


def input_shape(model_type: str) -> tuple:
    return (*IMAGE_SHAPE, 1) if model_type == "cnn" else (IMAGE_SHAPE[0] * IMAGE_SHAPE[1],)


def _logreg(config, kernel):
    # Softmax regression: y = softmax(xW + b), 784 x 10 + 10 = 7,850 parameters.
    return [keras.Input(shape=input_shape("logreg"), name="pixels"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=kernel(), name="fc1")]


def _mlp(config, kernel):
    return [keras.Input(shape=input_shape("mlp"), name="pixels"),
            keras.layers.Dense(config.hidden_units, activation=config.activation, kernel_initializer=kernel(),
                               name=HIDDEN_LAYER),
            keras.layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=kernel(), name=OUTPUT_LAYER)]


def _cnn(config, kernel):
    layers = [keras.Input(shape=input_shape("cnn"), name="pixels")]
    for index, filters in enumerate(config.conv_filters, start=1):
        layers += [keras.layers.Conv2D(filters, config.kernel_size, padding="valid",
                                       activation=config.conv_activation or config.activation,
                                       kernel_initializer=kernel(), name=f"conv{index}"),
                   keras.layers.MaxPooling2D(config.pool_size, name=f"pool{index}")]
    return layers + [keras.layers.Flatten(name="flatten"),
                     keras.layers.Dense(config.hidden_units, activation=config.activation,
                                        kernel_initializer=kernel(), name=HIDDEN_LAYER),
                     keras.layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=kernel(),
                                        name=OUTPUT_LAYER)]
