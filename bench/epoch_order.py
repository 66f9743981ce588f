"""What a resumable data order costs: Keras's own shuffle against orders drawn from (seed, epoch).

Resuming a training at epoch k with the same numbers as an uninterrupted run needs
epoch k's order of the training images to follow from (seed, epoch) alone, not from
a generator's hidden state. The options, each training the same model the same
number of epochs on full MNIST in this process (median s/epoch after the first,
including drawing the order and permuting the data):

  keras shuffle    one fit(epochs=E, shuffle=True): the first path, not resumable
  stage pipeline   the shipped path (training/batches.py): one fit() per stage over a tf.data
                   pipeline that gathers each batch by index from the uint8 images and converts
                   it, the order drawn by a callback as each epoch starts; no background threads
  autotuned        the same with tf.data's autotuning and injected prefetch left on
  tensor gather    the path before it: the arrays made float32 backend tensors once, then per
                   epoch keras.ops.take in that epoch's order and fit(epochs=e+1,
                   initial_epoch=e, shuffle=False)
  numpy copy       the same with the permuted NumPy arrays given to fit(), which converts
                   them again every epoch
  generator        one fit() over a Python generator of batches in each epoch's order

    python bench/epoch_order.py                  # logreg, mlp (300 per batch), cnn (20,000 images)
    python bench/epoch_order.py --models logreg --epochs 8
"""

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mnist_lab.core.config import DataConfig, ModelConfig  # noqa: E402
from mnist_lab.core.data import load_dataset, prepare  # noqa: E402
from mnist_lab.training.models import build_model  # noqa: E402
from plain_keras import Clock  # noqa: E402  (the same epoch clock as the speed baseline)

TRAIN_IMAGES = {"logreg": None, "mlp": None, "cnn": 20000}


def compiled(model_type):
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(type=model_type), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=50)
    return model


def keras_shuffle(model, arrays, epochs):
    clock = Clock()
    model.fit(arrays.train_inputs(), arrays.y_train, batch_size=300, epochs=epochs, shuffle=True, verbose=0,
              callbacks=[clock])
    return clock.seconds


def stage_pipeline(model, arrays, epochs, autotuned=False):
    """The clock comes first among the callbacks, so each epoch's time includes drawing its order."""
    import tensorflow as tf

    from mnist_lab.training.batches import EpochOrders, stage_batches

    source, clock = stage_batches(arrays, 0, 300), Clock()
    if autotuned:
        options = tf.data.Options()
        options.autotune.enabled = True
        options.experimental_optimization.inject_prefetch = True
        source.data = source.data.with_options(options)
    model.fit(source.data, epochs=epochs, shuffle=False, verbose=0, callbacks=[clock, EpochOrders(source)])
    return clock.seconds


def fit_per_epoch(model, arrays, epochs, tensors=True):
    """Seconds per epoch including drawing the order and permuting the data (a Clock callback
    would miss them)."""
    seconds, x, y = [], arrays.train_inputs(), arrays.y_train
    if tensors:
        x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    for epoch in range(epochs):
        started = time.perf_counter()
        order = np.random.default_rng([0, epoch]).permutation(len(x))
        if tensors:
            order = keras.ops.convert_to_tensor(order)
            epoch_x, epoch_y = keras.ops.take(x, order, axis=0), keras.ops.take(y, order, axis=0)
        else:
            epoch_x, epoch_y = x[order], y[order]
        model.fit(epoch_x, epoch_y, batch_size=300, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
        seconds.append(time.perf_counter() - started)
    return seconds


def batches(x, y, batch_size, first_epoch):
    """Every epoch's batches from ``first_epoch`` on, each epoch in its (seed, epoch) order."""
    for epoch in itertools.count(first_epoch):
        order = np.random.default_rng([0, epoch]).permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            yield x[batch], y[batch]


def generator(model, arrays, epochs):
    clock, x, y = Clock(), arrays.train_inputs(), arrays.y_train
    model.fit(batches(x, y, 300, 0), steps_per_epoch=-(-len(x) // 300), epochs=epochs, verbose=0, callbacks=[clock])
    return clock.seconds


OPTIONS = {"keras shuffle": keras_shuffle, "stage pipeline": stage_pipeline,
           "autotuned": lambda model, arrays, epochs: stage_pipeline(model, arrays, epochs, autotuned=True),
           "tensor gather": fit_per_epoch,
           "numpy copy": lambda model, arrays, epochs: fit_per_epoch(model, arrays, epochs, tensors=False),
           "generator": generator}


def measure(models, epochs, repeats=2):
    dataset = load_dataset(DataConfig())
    rows = []
    for model_type in models:
        arrays = prepare(dataset, model_type, TRAIN_IMAGES[model_type])
        count = epochs or (3 if model_type == "cnn" else 6)
        timings = {name: [] for name in OPTIONS}
        for _ in range(repeats):  # alternating, so machine noise falls on every option
            for name, option in OPTIONS.items():
                timings[name] += option(compiled(model_type), arrays, count)[1:]
        rows.append((model_type, len(arrays.y_train), {name: statistics.median(t) for name, t in timings.items()}))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="logreg,mlp,cnn")
    parser.add_argument("--epochs", type=int, help="epochs per measurement (default: 6, CNN 3)")
    parser.add_argument("--repeats", type=int, default=2)
    options = parser.parse_args()
    print(f"{'model':8} {'images':>7} " + " ".join(f"{name:>14}" for name in OPTIONS) + "  (s/epoch; ratio to keras shuffle)")
    for model_type, images, seconds in measure(options.models.split(","), options.epochs, options.repeats):
        base = seconds["keras shuffle"]
        print(f"{model_type:8} {images:7} " + " ".join(f"{value:8.3f} {value / base:5.2f}" for value in seconds.values()),
              flush=True)


if __name__ == "__main__":
    main()
