import dataclasses
import re

import pytest

from mnist_lab.core.config import (DATA_ENV_VAR, Config, ModelConfig, load_config, to_dict,
                              to_yaml)
from mnist_lab.core.errors import ConfigError
from mnist_lab.core.identity import experiment
from mnist_lab.core.identity import experiment_hash as config_hash

from conftest import ROOT, write_config

LAB = {"batch_size": 300, "epochs": 10, "learning_rate": 0.5,
       "schedule": {"type": "constant", "every": None, "factor": None, "decay": None, "final": None}}


def problems(path, overrides=(), **kwargs):
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides, **kwargs)
    return caught.value.problems


@pytest.mark.parametrize("model", ["logreg", "mlp", "cnn"])
def test_shipped_configs_reproduce_the_lab(model):
    config = load_config(ROOT / "configs" / f"{model}.yaml", environ={})
    assert config.model.type == model
    assert dataclasses.asdict(config.training) == LAB
    assert (config.model.hidden_units, config.model.activation) == (100, "sigmoid")
    assert (config.model.conv_filters, config.model.kernel_size, config.model.pool_size) == ((32, 64), 5, 2)
    assert config.data.source == "builtin" and config.data.path is None and config.seed == 0


def test_defaults_are_the_labs(tmp_path):
    config = load_config(write_config(tmp_path, "model: {type: mlp}\n"), environ={})
    assert dataclasses.asdict(config.training) == LAB
    assert config.data.train_limit is None and config.data.test_limit is None


def test_every_invalid_field_is_reported_at_once(tmp_path):
    path = write_config(tmp_path, """
model: {type: rnn, activation: softmaxx, hidden_units: 1.5}
training: {batch_size: 0, epochs: ten, learning_rate: -1, bach_size: 3}
seed: true
""")
    assert problems(path) == [
        f"{path}: model.type: expected one of logreg, mlp, cnn, got 'rnn' (str)",
        f"{path}: model.hidden_units: expected an integer >= 1 and <= 65536, got 1.5 (float)",
        f"{path}: model.activation: expected one of sigmoid, relu, tanh, elu, gelu, selu, softplus, swish, "
        f"got 'softmaxx' (str)",
        f"{path}: training.bach_size: unknown field, expected one of batch_size, epochs, learning_rate, schedule",
        f"{path}: training.batch_size: expected an integer >= 1 and <= 600000, got 0 (int)",
        f"{path}: training.epochs: expected an integer >= 1, got 'ten' (str)",
        f"{path}: training.learning_rate: expected a number > 0, got -1 (int)",
        f"{path}: seed: expected an integer >= 0 and <= 4294967295, got True (bool)",
    ]


def test_missing_sections_and_wrong_shapes(tmp_path):
    assert problems(write_config(tmp_path, "training: {epochs: 2}\n")) == [
        f"{tmp_path / 'exp.yaml'}: model: expected a mapping with type, hidden_units, activation, "
        "conv_activation, conv_filters, kernel_size, pool_size, got nothing (missing)"]
    assert problems(write_config(tmp_path, "model: cnn\n")) == [
        f"{tmp_path / 'exp.yaml'}: model: expected a mapping with type, hidden_units, activation, "
        "conv_activation, conv_filters, kernel_size, pool_size, got 'cnn' (str)"]
    assert problems(write_config(tmp_path, "- model\n")) == [
        f"{tmp_path / 'exp.yaml'}: expected a mapping with the sections model, training, data, seed, engine, continues, "
        "got a list"]


def test_unreadable_and_malformed_files(tmp_path):
    assert problems(tmp_path / "absent.yaml") == [f"{tmp_path / 'absent.yaml'}: cannot read config: no such file"]
    assert problems(tmp_path) == [f"{tmp_path}: cannot read config: it is a directory"]
    bad = write_config(tmp_path, "model:\n  type: [cnn\n")
    (message,) = problems(bad)
    assert re.fullmatch(rf"{re.escape(str(bad))}: line 3, column 1: invalid YAML: .+", message)


def test_overrides_are_typed_and_validated_like_the_file(tmp_path):
    path = write_config(tmp_path, "model: {type: cnn}\n")
    config = load_config(path, ["training.epochs=2", "training.learning_rate=1e-3",
                                "model.conv_filters=[8, 16]", "data.train_limit=null"], environ={})
    assert (config.training.epochs, config.training.learning_rate) == (2, 0.001)
    assert config.model.conv_filters == (8, 16)
    assert problems(path, ["training.epochs=abc", "training.bach_size=3"]) == [
        "--set: training.bach_size: unknown field, expected one of batch_size, epochs, learning_rate, schedule",
        "--set: training.epochs: expected an integer >= 1, got 'abc' (str)"]
    assert problems(path, ["training.epochs"]) == [
        "--set training.epochs: expected field.path=value, e.g. training.epochs=2"]
    assert problems(path, ["model.type.name=cnn"]) == [
        f"--set model.type.name=cnn: model.type in {path} is not a section"]
    assert problems(path, ["seed.value=1"]) == [
        "--set: seed: expected an integer >= 0 and <= 4294967295, got {'value': 1} (mapping)"]


def test_data_path_precedence(tmp_path):
    path = write_config(tmp_path, "model: {type: mlp}\n")
    environ = {DATA_ENV_VAR: "/env/data.npz"}
    assert load_config(path, environ={}).data.path is None
    assert load_config(path, environ=environ).data.path == "/env/data.npz"
    assert load_config(path, ["data.path=/set.npz"], environ=environ).data.path == "/set.npz"
    assert load_config(path, data_path="/cli.npz", environ=environ).data.path == "/cli.npz"
    keras_source = write_config(tmp_path, "model: {type: mlp}\ndata: {source: keras}\n", "k.yaml")
    assert load_config(keras_source, environ=environ).data.path is None
    assert problems(keras_source, data_path="/cli.npz", environ={}) == [
        f"{keras_source} and --data: data.source: expected builtin (the default) when data.path is set, "
        "got 'keras' (str)"]


def test_cnn_geometry_must_fit_28_pixels(tmp_path):
    path = write_config(tmp_path, "model: {type: cnn, conv_filters: [8, 8, 8]}\n")
    assert problems(path) == [
        f"{path}: model.conv_filters: expected at most 2 convolution layers for kernel_size 5 and "
        "pool_size 2 on 28x28 images, got 3 [8, 8, 8] (list)"]
    assert load_config(path, ["model.kernel_size=3"], environ={}).model.conv_filters == (8, 8, 8)
    # The culprit set on the command line is named with the file.
    lab = ROOT / "configs" / "cnn.yaml"
    assert problems(lab, ["model.kernel_size=13"], environ={}) == [
        f"{lab} and --set: model.conv_filters: expected at most 1 convolution layers for kernel_size 13 and "
        "pool_size 2 on 28x28 images, got 2 [32, 64] (list)"]


def test_config_is_frozen_and_round_trips_through_yaml(tmp_path):
    config = load_config(ROOT / "configs" / "cnn.yaml", environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1
    again = load_config(write_config(tmp_path, to_yaml(config)), environ={})
    assert again == config and config_hash(again) == config_hash(config)


def test_hash_follows_the_resolved_values_not_the_text(tmp_path):
    spelled_out = write_config(tmp_path, "# lab\nmodel: {type: mlp}\ntraining: {epochs: 10}\n", "a.yaml")
    reordered = write_config(tmp_path, "training:\n  epochs: 10\nmodel:\n  type: mlp\n", "b.yaml")
    first, second = load_config(spelled_out, environ={}), load_config(reordered, environ={})
    assert config_hash(first) == config_hash(second)
    assert config_hash(first) != config_hash(load_config(spelled_out, ["seed=1"], environ={}))
    assert re.fullmatch(r"[0-9a-f]{12}", config_hash(first))


def test_the_docs_document_every_field():
    readme = (ROOT / "docs" / "configs.md").read_text()
    fields = to_dict(Config(model=ModelConfig(type="mlp")))
    for section, values in fields.items():
        names = [f"{section}.{name}" for name in values] if isinstance(values, dict) else [section]
        for name in names:
            assert f"`{name}`" in readme, f"docs/configs.md does not document {name}"


def test_a_continued_model_lists_its_earlier_stages(tmp_path):
    path = write_config(tmp_path, "model: {type: logreg}\ntraining: {batch_size: 400, epochs: 10}\n"
                                  "continues:\n  - {batch_size: 300, epochs: 10}\n  - {epochs: 15, learning_rate: 0.2}\n")
    config = load_config(path, environ={})
    assert [(stage.batch_size, stage.epochs, stage.learning_rate) for stage in config.stages] == [
        (300, 10, 0.5), (300, 15, 0.2), (400, 10, 0.5)]  # fields left out: the defaults, the lab's
    assert config.total_epochs == 35
    again = load_config(write_config(tmp_path, to_yaml(config), "again.yaml"), environ={})
    assert again == config
    fresh = load_config(ROOT / "configs" / "logreg.yaml", environ={})
    assert fresh.continues == () and load_config(write_config(tmp_path, to_yaml(fresh), "fresh.yaml"),
                                                 environ={}) == fresh  # written out as continues: []
    bad = write_config(tmp_path, "model: {type: logreg}\ncontinues:\n  - {batch_size: 0}\n  - 3\n", "bad.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(bad, environ={})
    assert caught.value.problems == [
        f"{bad}: continues[0].batch_size: expected an integer >= 1 and <= 600000, got 0 (int)",
        f"{bad}: continues[1]: expected a mapping with batch_size, epochs, learning_rate, schedule, got 3 (int)"]


def test_a_schedule_takes_its_types_parameters_with_their_defaults(tmp_path):
    path = write_config(tmp_path, "model: {type: logreg}\n")
    step = load_config(path, ["training.schedule.type=step"], environ={}).training.schedule
    assert (step.every, step.factor, step.decay, step.final) == (3, 0.5, None, None)
    spelled_out = load_config(path, ["training.schedule={type: step, every: 3, factor: 0.5}"], environ={})
    assert spelled_out.training.schedule == step  # one schedule, one resolved form (and one identity)
    assert problems(path, ["training.schedule={type: exponential, every: 2, factor: 1.5}",
                           "continues=[{schedule: {type: constant, decay: 0.1}}]"]) == [
        "--set: training.schedule.factor: expected a number > 0 and <= 1 or null, got 1.5 (float)"]
    assert problems(path, ["training.schedule={type: exponential, every: 2}",
                           "continues=[{schedule: {type: constant, decay: 0.1}}]"]) == [
        "--set: continues[0].schedule.decay: expected no decay for schedule type constant (it takes no "
        "parameter), got 0.1 (float)",
        "--set: training.schedule.every: expected no every for schedule type exponential (it takes factor), "
        "got 2 (int)"]
    assert problems(path, ["training.schedule.type=linear"])[0].startswith(
        "--set: training.schedule.type: expected one of constant, step, exponential, inverse_time, cosine")


@pytest.mark.parametrize("schedule", ["{type: constant}", "{type: step, every: 2, factor: 0.3}", "{type: exponential}",
                                      "{type: inverse_time, decay: 2}", "{type: cosine}", "{type: cosine, final: 0.1}"])
def test_each_epochs_step_is_kerass_own_schedule_at_that_epoch(tmp_path, schedule):
    """Oracle: Keras's learning-rate schedules, with one 'step' per epoch."""
    import keras

    config = load_config(write_config(tmp_path, "model: {type: logreg}\n"),
                         ["training.learning_rate=0.4", "training.epochs=7", f"training.schedule={schedule}"], environ={})
    rates = keras.optimizers.schedules
    chosen = config.training.schedule
    oracle = {"constant": lambda: lambda epoch: 0.4,
              "step": lambda: rates.ExponentialDecay(0.4, chosen.every, chosen.factor, staircase=True),
              "exponential": lambda: rates.ExponentialDecay(0.4, 1, chosen.factor),
              "inverse_time": lambda: rates.InverseTimeDecay(0.4, 1, chosen.decay),
              "cosine": lambda: rates.CosineDecay(0.4, 7, alpha=chosen.final)}[chosen.type]()
    expected = [float(keras.ops.convert_to_numpy(oracle(epoch))) for epoch in range(7)]
    assert [config.learning_rate_at(epoch) for epoch in range(7)] == pytest.approx(expected, rel=1e-6)
    if chosen.type != "constant":
        assert len(set(expected)) > 1


def test_a_validation_fraction_is_the_count_it_holds_one_experiment(tmp_path):
    path = write_config(tmp_path, "model:\n  type: logreg\n")
    by_fraction = load_config(path, ["data.validation=0.1"])
    by_count = load_config(path, ["data.validation=6000"])
    by_float = load_config(path, ["data.validation=6e3"])
    assert by_fraction.data.validation == by_count.data.validation == by_float.data.validation == 6000
    assert isinstance(by_float.data.validation, int)
    assert config_hash(by_fraction) == config_hash(by_count) == config_hash(by_float)
    assert config_hash(by_count) != config_hash(load_config(path, ["data.validation=5000"]))
    # Off by default, and then the identity of results made before the field existed.
    plain = load_config(path)
    assert plain.data.validation is None and config_hash(plain) != config_hash(by_count)
    assert "validation" not in experiment(to_dict(plain), "d", "tensorflow")["data"]
    with pytest.raises(ConfigError) as raised:
        load_config(path, ["data.validation=1.5"])
    assert "data.validation: expected a whole number of images or a fraction below 1, got 1.5 (float)" in str(raised.value)
    with pytest.raises(ConfigError, match=r"data.validation: expected a number > 0 or null, got -3"):
        load_config(path, ["data.validation=-3"])
