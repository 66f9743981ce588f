"""The speed baseline: the lab's models as a plain Keras script, the way the lab writes them.

Sequential model, model.fit on NumPy arrays, no mnist-lab code. Prints one JSON
line with the training seconds of each epoch. With --validate it also evaluates
the test set after every epoch (``validation_data``), the work `mnist-lab train`
does, and the epoch's clock then includes that evaluation, as Keras's does.

    python bench/plain_keras.py cnn 3
    python bench/plain_keras.py mlp 10 --validate
"""

import json
import sys
import time

import keras
import numpy as np


def lab_model(model_type):
    if model_type == "logreg":
        return keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    if model_type == "mlp":
        return keras.Sequential([keras.Input((784,)), keras.layers.Dense(100, activation="sigmoid"),
                                 keras.layers.Dense(10, activation="softmax")])
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 5, activation="sigmoid"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 5, activation="sigmoid"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(100, activation="sigmoid"),
        keras.layers.Dense(10, activation="softmax")])


class Clock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def main(model_type, epochs, data_path, validate=False):
    with np.load(data_path) as data:
        x_train, y_train, x_test, y_test = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    shape = (-1, 28, 28, 1) if model_type == "cnn" else (-1, 784)
    x_train, x_test = ((images.astype("float32") / 255).reshape(shape) for images in (x_train, x_test))
    y_train, y_test = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_test, 10)
    model = lab_model(model_type)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    clock = Clock()
    model.fit(x_train, y_train, batch_size=300, epochs=epochs, verbose=0, callbacks=[clock],
              validation_data=(x_test, y_test) if validate else None)
    print(json.dumps({"epoch_seconds": clock.seconds}))


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if argument != "--validate"]
    main(arguments[0], int(arguments[1]), arguments[2] if len(arguments) > 2 else "mnist_lab/resources/mnist.npz",
         validate="--validate" in sys.argv)
