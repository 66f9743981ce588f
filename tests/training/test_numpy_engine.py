import json

import numpy as np
import pytest
import scipy.special

from mnist_lab.core.config import ModelConfig, load_config
from mnist_lab.core.data import prepare
from mnist_lab.core.errors import ConfigError
from mnist_lab.training.numpy_engine import GRADIENT_TOLERANCE, NumpyModel, finite_difference_errors, log_softmax, sigmoid, softmax
from mnist_lab.training.run import train
from mnist_lab.core.output import Output, silent
from mnist_lab.analysis.sweep_tables import write_sweep_report

from conftest import ROOT, write_config

QUIET = {"output": Output(log=silent, progress=False)}
# A sweep as the command runs it: its tables written at the end.
SWEEP = {**QUIET, "write_tables": lambda folder, experiments: write_sweep_report(folder, experiments, log=silent)}


def test_softmax_and_log_softmax_are_stable():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(softmax(z), scipy.special.softmax(z, axis=1))
    np.testing.assert_allclose(log_softmax(z), scipy.special.log_softmax(z, axis=1))
    assert np.isfinite(log_softmax(z)).all() and log_softmax(z)[0, 2] == -2000.0
    np.testing.assert_allclose(sigmoid(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("model_type", ["logreg", "mlp"])
def test_gradients_match_centred_finite_differences(model_type, mnist):
    rng = np.random.default_rng(0)
    model = NumpyModel.initialised(ModelConfig(type=model_type), seed=1, dtype=np.float64)
    for name in model.params:  # non-zero biases, so their gradients are tested too
        model.params[name] += rng.normal(scale=0.1, size=model.params[name].shape)
    arrays = prepare(mnist, model_type, train_limit=16)
    x, y = arrays.train_inputs().astype(np.float64), arrays.y_train.astype(np.float64)
    before = {name: value.copy() for name, value in model.params.items()}
    errors = finite_difference_errors(model, x, y, rng)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors
    for name, value in before.items():  # every probed parameter was put back
        np.testing.assert_array_equal(model.params[name], value)
    # A wrong gradient is caught: halve one array's back-propagated gradient.
    wrong = NumpyModel(model.type, dict(model.params))
    wrong.gradients = lambda x, y: {name: value / 2 if name == "fc1/kernel" else value
                                    for name, value in model.gradients(x, y).items()}
    assert finite_difference_errors(wrong, x, y, np.random.default_rng(0))["fc1/kernel"] > 0.3


@pytest.mark.parametrize("model_type", ["logreg", "mlp"])
def test_one_sgd_step_matches_keras(model_type, mnist):
    import keras

    from mnist_lab.training.models import build_model

    keras_model = build_model(ModelConfig(type=model_type))
    keras_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="categorical_crossentropy")
    names = ["fc1/kernel", "fc1/bias"] + (["fc2/kernel", "fc2/bias"] if model_type == "mlp" else [])
    numpy_model = NumpyModel(model_type, {name: weight.copy() for name, weight in
                                          zip(names, keras_model.get_weights())})
    arrays = prepare(mnist, model_type, train_limit=64)
    keras_model.train_on_batch(arrays.train_inputs(), arrays.y_train)
    numpy_model.sgd_step(arrays.train_inputs(), arrays.y_train, 0.5)
    for name, weight in zip(names, keras_model.get_weights()):
        np.testing.assert_allclose(numpy_model.params[name], weight, atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_type", ["logreg", "mlp"])
def test_both_engines_reach_the_same_accuracy(model_type, mnist, tmp_path):
    overrides = ["data.train_limit=20000", "data.test_limit=5000", "training.epochs=4", "training.batch_size=100"]
    accuracy = {}
    for engine in ("keras", "numpy"):
        config = load_config(ROOT / "configs" / f"{model_type}.yaml", [*overrides, f"engine={engine}"], environ={})
        accuracy[engine] = train(config, engine, tmp_path, dataset=mnist, **QUIET).metrics["test_accuracy"]
    assert abs(accuracy["keras"] - accuracy["numpy"]) < 0.005, accuracy


def test_numpy_run_directory_has_the_same_files_and_numbers(mnist, tmp_path):
    config = load_config(ROOT / "configs" / "mlp-numpy.yaml", ["data.train_limit=2000", "data.test_limit=500",
                                                               "training.epochs=2"], environ={})
    result = train(config, "mlp-numpy", tmp_path, dataset=mnist, **QUIET)
    files = {path.name for path in result.run_dir.iterdir()}
    assert files == {"config.yaml", "model.npz", "history.csv", "metrics.json", "summary.txt",
                     "learning_curves.png", "confusion_matrix.png"}
    keras_run = train(load_config(ROOT / "configs" / "mlp.yaml", ["data.train_limit=200", "data.test_limit=50",
                                                                  "training.epochs=1"], environ={}),
                      "mlp", tmp_path, dataset=mnist, **QUIET)
    assert set(json.loads((result.run_dir / "metrics.json").read_text())) == set(keras_run.metrics)
    assert (result.run_dir / "history.csv").read_text().splitlines()[0] == \
        (keras_run.run_dir / "history.csv").read_text().splitlines()[0]
    model = NumpyModel.load(result.run_dir / "model.npz")
    arrays = prepare(mnist, "mlp", test_limit=500)
    accuracy = (model.probabilities(arrays.x_test).argmax(1) == arrays.test_labels).mean()
    assert result.metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert result.metrics["parameters"] == 79_510
    again = train(config, "again", tmp_path, dataset=mnist, **QUIET)
    assert again.metrics["test_loss"] == result.metrics["test_loss"]  # the seed fixes the batch order


def test_numpy_engine_config_checks(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, "engine: numpy\nmodel: {type: cnn, activation: relu}\n"), environ={})
    assert caught.value.problems == [
        f"{tmp_path / 'exp.yaml'}: engine: expected keras for model.type cnn (the numpy engine has logreg and mlp), "
        "got 'numpy' (str)",
        f"{tmp_path / 'exp.yaml'}: model.activation: expected sigmoid with engine numpy, got 'relu' (str)"]


def test_the_numpy_mlp_hidden_layer_can_be_visualized(mnist, tmp_path):
    from mnist_lab.analysis import visualize

    config = load_config(ROOT / "configs" / "mlp-numpy.yaml", ["data.train_limit=1000", "training.epochs=1"],
                         environ={})
    run = train(config, "mlp-numpy", tmp_path, dataset=mnist, **QUIET).run_dir
    lines = []
    written = visualize.visualize(sources=("mlp",), methods=("pca",), results_dir=tmp_path, limit=200,
                              runs_by_type={"mlp": run}, output=Output(log=lines.append, progress=False))
    assert f"mlp: hidden layer of {run}" in lines
    assert (tmp_path / "embeddings" / "mlp_pca.png") in written
    assert "| MLP hidden layer | pca |" in (tmp_path / "embeddings" / "separability.md").read_text()


def test_engine_is_a_sweep_axis(tmp_path, mnist):
    from mnist_lab.core.sweep_plan import load_sweep
    from mnist_lab.results.store import sweep_folder
    from mnist_lab.training.sweep import run_sweep

    path = write_config(tmp_path, f"name: engines\nseeds: [0]\nmodels:\n  - config: {ROOT / 'configs' / 'mlp.yaml'}\n"
                                  "    engine: [keras, numpy]\n    epochs: [1, 2]\n", name="engines.yaml")
    sweep = load_sweep(path, ["data.train_limit=1000", "data.test_limit=200"])
    assert [(cell.config.engine, cell.config.training.epochs) for cell in sweep.cells] == [
        ("keras", 1), ("keras", 2), ("numpy", 1), ("numpy", 2)]
    outcome = run_sweep(sweep, tmp_path, **SWEEP)
    assert (outcome.trained, outcome.failures) == (4, {})
    table = (sweep_folder(tmp_path, "engines") / "table.md").read_text()
    assert "## mlp\n" in table and "## mlp, numpy engine\n" in table
    bad = write_config(tmp_path, f"models:\n  - config: {ROOT / 'configs' / 'cnn.yaml'}\n    engine: [numpy]\n",
                       name="bad.yaml")
    with pytest.raises(ConfigError, match=r"bad.yaml: models\[0\]: engine: expected keras for model.type cnn"):
        load_sweep(bad)


def test_a_diverging_numpy_run_is_one_error_line_without_numpy_warnings(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    # A first stage trains (and is logged, and checkpointed); the second diverges in its first epoch.
    result = subprocess.run([sys.executable, "-W", "default", "-m", "mnist_lab", "train",
                             str(ROOT / "configs" / "mlp-numpy.yaml"), "--set", "training.learning_rate=1e38",
                             "--set", "continues=[{epochs: 1, learning_rate: 0.1}]",
                             "--set", "data.train_limit=600", "--set", "data.test_limit=100",
                             "--results", str(tmp_path), "-q"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Error: training diverged: the loss became" in result.stderr and "in epoch 2" in result.stderr
    assert "RuntimeWarning" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs" / ".checkpoints").exists()  # neither its checkpoint nor its live log is kept


def test_a_continued_model_goes_through_its_stages_as_a_hand_written_loop_would(mnist):
    """The oracle: SGD written out here, stage by stage on one model, each epoch in its (seed, epoch)
    order counted over the whole training; fit_model's numbers must be the same bits."""
    import dataclasses

    from mnist_lab.core.config import Config, ModelConfig
    from mnist_lab.core.data import epoch_order, prepare
    from mnist_lab.training.fit import fit_model, new_model
    from mnist_lab.training.numpy_engine import NumpyModel

    base = Config(model=ModelConfig(type="logreg"), engine="numpy", seed=3)
    stages = [dataclasses.replace(base.training, batch_size=batch, epochs=epochs, learning_rate=rate)
              for batch, epochs, rate in ((100, 2, 0.5), (250, 1, 0.2), (60, 2, 0.1))]
    config = dataclasses.replace(base, continues=tuple(stages[:-1]), training=stages[-1])
    arrays = prepare(mnist, "logreg", 1000, 200)
    trained = fit_model(new_model(config), config, arrays)
    model, epoch = NumpyModel.initialised(config.model, config.seed), 0
    for stage in stages:
        for _ in range(stage.epochs):
            order = epoch_order(config.seed, epoch, 1000)
            for start in range(0, 1000, stage.batch_size):
                batch = order[start:start + stage.batch_size]
                model.sgd_step(arrays.train_inputs(batch), arrays.y_train[batch], stage.learning_rate)
            epoch += 1
    assert len(trained.history) == 5 and [row["epoch"] for row in trained.history] == [1, 2, 3, 4, 5]
    for name, value in model.params.items():
        np.testing.assert_array_equal(trained.model.params[name], value)
