"""The speed baseline: the lab's models as a plain Keras script, the way the lab writes them.

Sequential model, model.fit on NumPy arrays, no mnist-lab code. Prints one JSON
line with the training seconds of each epoch.

    python bench/plain_keras.py cnn 3
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


def main(model_type, epochs, data_path):
    with np.load(data_path) as data:
        x_train, y_train = data["x_train"], data["y_train"]
    shape = (-1, 28, 28, 1) if model_type == "cnn" else (-1, 784)
    x_train = (x_train.astype("float32") / 255).reshape(shape)
    y_train = keras.utils.to_categorical(y_train, 10)
    model = lab_model(model_type)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    clock = Clock()
    model.fit(x_train, y_train, batch_size=300, epochs=epochs, verbose=0, callbacks=[clock])
    print(json.dumps({"epoch_seconds": clock.seconds}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "mnist_lab/resources/mnist.npz")
