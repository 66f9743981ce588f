import dataclasses

import keras
import numpy as np
import pytest

from mnist_lab.core.config import Config, ModelConfig
from mnist_lab.core.data import Prepared, epoch_order, prepare
from mnist_lab.training import batches
from mnist_lab.training.fit import fit_model, new_model

pytestmark = pytest.mark.backend  # make test runs this module on the JAX backend too


def sources():
    """Both sources where this backend has them: tf.data only under TensorFlow."""
    found = [batches.ArrayBatches]
    if keras.backend.backend() == "tensorflow":
        found.append(batches.TensorFlowBatches)
    return found


def every_grey_level(size=301):
    """Images that hold each of the 256 grey levels (and labels), so the per-batch conversion is
    checked on every value it can meet."""
    draws = np.random.default_rng(7)
    images = draws.integers(0, 256, size=(size, 784), dtype=np.uint8)
    images[0, :256] = np.arange(256)
    labels = np.eye(10, dtype=np.float32)[draws.integers(0, 10, size)]
    return images, labels


@pytest.mark.parametrize("scaled", [True, False])
def test_each_epoch_gives_the_batches_of_the_whole_array_in_its_order(scaled):
    images, labels = every_grey_level()
    divisor = np.float32(255 if scaled else 1)
    arrays = Prepared(train_images=images, y_train=labels, x_test=None, y_test=None, test_labels=None,
                      divisor=divisor)
    whole = images.astype(np.float32) / divisor  # what training used before: the array converted at once
    for source_class in sources():
        source = source_class(arrays, seed=5, batch_size=40)
        for epoch in (0, 3, 0):
            source.draw(epoch)
            drawn = [(np.asarray(x), np.asarray(y)) for x, y in
                     (source.data if source_class is batches.TensorFlowBatches else
                      (source[step] for step in range(len(source))))]
            order = epoch_order(5, epoch, len(images))
            assert [len(y) for _, y in drawn] == [40] * 7 + [21]
            expected_x, expected_y = whole[order], labels[order]
            for step, (x, y) in enumerate(drawn):
                assert x.dtype == np.float32
                np.testing.assert_array_equal(x, expected_x[step * 40:(step + 1) * 40])
                np.testing.assert_array_equal(y, expected_y[step * 40:(step + 1) * 40])


def test_one_fit_per_stage_trains_as_steps_written_out_would(mnist):
    """The oracle: one train_on_batch per batch, in each epoch's (seed, epoch) order counted over
    the whole training, stage by stage on one model, each stage with its batch size (batches
    that do not divide the images, nor fill the grouped steps) and step: fit_model's weights
    must be the same bits, and each epoch's loss the mean of its batches'."""
    base = Config(model=ModelConfig(type="mlp", hidden_units=20), seed=2)
    stages = [dataclasses.replace(base.training, batch_size=batch, epochs=epochs, learning_rate=rate)
              for batch, epochs, rate in ((7, 2, 0.5), (300, 1, 0.2), (64, 2, 0.1))]
    config = dataclasses.replace(base, continues=tuple(stages[:-1]), training=stages[-1])
    arrays = prepare(mnist, "mlp", 1000, 200)
    trained = fit_model(new_model(config), config, arrays)

    model, epoch, losses = new_model(config), 0, []  # the same seeding, the same initial weights
    x = arrays.train_inputs()
    for stage in stages:
        model.optimizer.learning_rate.assign(stage.learning_rate)
        for _ in range(stage.epochs):
            order = epoch_order(config.seed, epoch, 1000)
            batch_losses = []
            for start in range(0, 1000, stage.batch_size):
                rows = order[start:start + stage.batch_size]
                batch_losses.append(model.train_on_batch(x[rows], arrays.y_train[rows])[0] * len(rows))
            losses.append(sum(batch_losses) / 1000)  # Keras's epoch loss: the batches' mean, by images
            epoch += 1
    assert [row["epoch"] for row in trained.history] == [1, 2, 3, 4, 5]
    assert [row["train_loss"] for row in trained.history] == pytest.approx(losses, rel=1e-5)
    for left, right in zip(trained.model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(left, right)
