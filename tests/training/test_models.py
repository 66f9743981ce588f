import keras
import numpy as np
import pytest

from mnist_lab.core.config import ModelConfig
from mnist_lab.training.models import (FORWARD_BATCH, HIDDEN_LAYER, OUTPUT_LAYER, build_model, forward, forward_chunks,
                                      hidden_features, input_shape)

pytestmark = pytest.mark.backend  # make test runs this module on the JAX backend too


@pytest.mark.parametrize("model_type, parameters", [("logreg", 7_850), ("mlp", 79_510), ("cnn", 155_606)])
def test_parameter_counts_are_the_labs(model_type, parameters):
    assert build_model(ModelConfig(type=model_type)).count_params() == parameters


def test_layer_names_are_stable():
    assert [layer.name for layer in build_model(ModelConfig(type="logreg")).layers] == ["fc1"]
    assert [layer.name for layer in build_model(ModelConfig(type="mlp")).layers] == [HIDDEN_LAYER, OUTPUT_LAYER]
    assert [layer.name for layer in build_model(ModelConfig(type="cnn")).layers] == [
        "conv1", "pool1", "conv2", "pool2", "flatten", HIDDEN_LAYER, OUTPUT_LAYER]


@pytest.mark.parametrize("model_type", ["mlp", "cnn"])
def test_hidden_layer_is_read_without_changing_the_model(model_type):
    model = build_model(ModelConfig(type=model_type))
    before = [weight.copy() for weight in model.get_weights()]
    images = np.random.default_rng(0).random((3, *input_shape(model_type)), dtype=np.float32)
    features = hidden_features(model, images)
    assert features.shape == (3, 100) and ((features > 0) & (features < 1)).all()  # sigmoid units
    expected = keras.Model(model.inputs[0], model.get_layer(HIDDEN_LAYER).output)(images)
    np.testing.assert_allclose(features, keras.ops.convert_to_numpy(expected), rtol=1e-6)
    assert [layer.name for layer in model.layers][-1] == OUTPUT_LAYER
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    probabilities = forward(model, images)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("model_type", ["logreg", "cnn"])
def test_inputs_converted_once_give_the_outputs_of_the_array(model_type):
    model = build_model(ModelConfig(type=model_type), seed=1)
    images = np.random.default_rng(2).random((2 * FORWARD_BATCH + 7, *input_shape(model_type)), dtype=np.float32)
    chunks = forward_chunks(images)
    assert [len(chunk) for chunk in chunks] == [FORWARD_BATCH, FORWARD_BATCH, 7]
    np.testing.assert_array_equal(forward(model, chunks), forward(model, images))


def test_architecture_knobs_come_from_the_config():
    mlp = build_model(ModelConfig(type="mlp", hidden_units=50, activation="relu"))
    assert mlp.count_params() == 784 * 50 + 50 + 50 * 10 + 10
    assert mlp.get_layer(HIDDEN_LAYER).activation.__name__ == "relu"
    cnn = build_model(ModelConfig(type="cnn", conv_filters=(8,), kernel_size=3, pool_size=2))
    # 28 -> 26 (3x3 valid) -> 13 (pool); 13 * 13 * 8 inputs to fc1.
    assert cnn.count_params() == (3 * 3 * 8 + 8) + (13 * 13 * 8 * 100 + 100) + (100 * 10 + 10)


def test_each_build_is_a_fresh_model():
    config = ModelConfig(type="logreg")
    first, second = build_model(config), build_model(config)
    first.get_layer("fc1").kernel.assign(np.zeros((784, 10), np.float32))
    assert np.abs(second.get_layer("fc1").kernel.numpy()).sum() > 0


def test_unknown_type_is_a_value_error():
    with pytest.raises(ValueError, match="model.type: expected one of logreg, mlp, cnn, got 'rnn'"):
        build_model(ModelConfig(type="rnn"))


@pytest.mark.parametrize("model_type", ["logreg", "mlp", "cnn"])
def test_seeded_weights_equal_keras_own_and_ignore_other_draws(model_type):
    """The oracle: Keras's default seeding right after set_random_seed. With a seed, a draw from
    Python's global generator in between (another thread's) changes nothing."""
    import random

    from mnist_lab.training.fit import seed_everything

    seed_everything(7)
    keras_own = build_model(ModelConfig(type=model_type)).get_weights()
    seed_everything(7)
    random.random()
    disturbed = build_model(ModelConfig(type=model_type)).get_weights()
    seed_everything(7)
    random.random()
    seeded = build_model(ModelConfig(type=model_type), seed=7).get_weights()
    assert all(np.array_equal(left, right) for left, right in zip(keras_own, seeded))
    assert not all(np.array_equal(left, right) for left, right in zip(keras_own, disturbed))


def test_convolutions_may_take_their_own_activation():
    relu = build_model(ModelConfig(type="cnn", conv_activation="relu"))
    activations = {layer.name: layer.activation.__name__ for layer in relu.layers if hasattr(layer, "activation")}
    assert activations == {"conv1": "relu", "conv2": "relu", "fc1": "sigmoid", "fc2": "softmax"}
    lab = build_model(ModelConfig(type="cnn"))
    assert {layer.activation.__name__ for layer in lab.layers if layer.name.startswith("conv")} == {"sigmoid"}
