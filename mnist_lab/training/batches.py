"""The training batches of a stage for Keras's fit(): each epoch in its (seed, epoch) order, each
batch gathered from the one resident copy of the training images (grey levels) and converted
as it is drawn.

One fit() trains a whole stage: a fit() per epoch (to hand it that epoch's order) cost more
in set-up than a logistic regression's epoch of steps (bench/whole_command.py). So the order
is not in the data but drawn at each epoch's start (``EpochOrders``, a callback), from the
epoch's number alone: a training resumed at any epoch sees the orders of one never stopped.
Keras asks its input for a new pass after ``on_epoch_begin``, so the pass reads that order.

Under TensorFlow a tf.data pipeline gathers each batch (Keras's own array input is a tf.data
pipeline there too); a Keras PyDataset, which every backend takes, would run Python per
batch inside tf.data, too slow for a 1 ms step. Under the other backends a PyDataset gathers
in NumPy, as Keras's array input does there. Both give the batches ``x[order][i:i + size]``
of the whole float32 array, bit for bit (tests/training/test_batches.py).
"""

from __future__ import annotations

import keras
import numpy as np

from mnist_lab.core.data import epoch_order
from mnist_lab.training.tensors import resident, shared


def stage_batches(arrays, seed: int, batch_size: int):
    """The batches of ``arrays`` (a core.data.Prepared) at ``batch_size``, in the orders of
    ``seed``: pass ``.data`` to fit() and ``EpochOrders(batches)`` among its callbacks."""
    if keras.backend.backend() == "tensorflow":
        return TensorFlowBatches(arrays, seed, batch_size)
    return ArrayBatches(arrays, seed, batch_size)


class EpochOrders(keras.callbacks.Callback):
    """Draws each epoch's order before the epoch reads its batches (Keras numbers epochs from 0
    over the whole training, as epoch_order does)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.draw(epoch)


class TensorFlowBatches:
    """A tf.data pass of the epoch's batches, each gathered by index from the resident images."""

    def __init__(self, arrays, seed: int, batch_size: int):
        import tensorflow as tf

        self.seed, self.size = seed, len(arrays.y_train)
        images, labels = resident(arrays, "training", lambda: (shared(arrays.train_images), shared(arrays.y_train)))
        # Read only for a batch's shape until the first epoch draws (ArrayBatches likewise).
        self.order = tf.Variable(tf.range(self.size, dtype=tf.int32), trainable=False)
        divisor = tf.constant(arrays.divisor)

        def batch(step):
            rows = self.order[step * batch_size:(step + 1) * batch_size]
            return tf.cast(tf.gather(images, rows), tf.float32) / divisor, tf.gather(labels, rows)

        steps = -(-self.size // batch_size)
        # Gathered where the step asks for it: no background threads (autotuning, an injected
        # prefetch), which on two cores took turns with the steps (bench/whole_command.py).
        options = tf.data.Options()
        options.autotune.enabled = False
        options.experimental_optimization.inject_prefetch = False
        self.data = tf.data.Dataset.range(steps).map(batch).with_options(options)

    def draw(self, epoch: int):
        self.order.assign(epoch_order(self.seed, epoch, self.size).astype(np.int32))


class ArrayBatches(keras.utils.PyDataset):
    """The epoch's batches gathered in NumPy, one per index."""

    def __init__(self, arrays, seed: int, batch_size: int):
        super().__init__()
        self.arrays, self.seed, self.batch_size = arrays, seed, batch_size
        self.order = np.arange(len(arrays.y_train))  # read only for a batch's shape, before epochs draw
        self.data = self

    def __len__(self) -> int:
        return -(-len(self.arrays.y_train) // self.batch_size)

    def __getitem__(self, step: int):
        rows = self.order[step * self.batch_size:(step + 1) * self.batch_size]
        return self.arrays.train_inputs(rows), self.arrays.y_train[rows]

    def draw(self, epoch: int):
        self.order = epoch_order(self.seed, epoch, len(self.arrays.y_train))
