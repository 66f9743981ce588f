"""The one training path: seeding, building, and fitting epoch by epoch with per-epoch test
metrics, for train runs and sweep cells and both engines (resume.py restores a checkpoint into
it; records.py turns its history into a result)."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import keras
import numpy as np

from mnist_lab.core import interrupts
from mnist_lab.training import batches, numpy_engine, tensors
from mnist_lab.training.models import build_model, forward, forward_chunks
from mnist_lab.training.numpy_engine import NumpyModel
from mnist_lab.training.resume import restore

# Batches run per call into the compiled graph: the same SGD steps in the same
# order (a test proves the weights are identical), with far less Python
# overhead per step; it is what makes train faster than a plain fit().
STEPS_PER_EXECUTION = 50


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A trained model, its per-epoch history and its last test-set probabilities."""

    model: keras.Model
    history: list
    test_probabilities: np.ndarray


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def new_model(config):
    """Seed every random source, then build (and compile): the start of every training."""
    seed_everything(config.seed)
    if config.engine == "numpy":
        return NumpyModel.initialised(config.model, config.seed)
    return compiled_model(config)


def fit_model(model, config, arrays, *, verbose=0, on_epoch=None, resume=None) -> Trajectory:
    """Train ``model`` through ``config.stages`` (``config.training`` alone for a fresh model),
    evaluating the test set after each epoch; the history counts the epochs of every stage.

    ``resume``: a checkpoint of this training; its weights and optimizer state are restored and
    training goes on after its last epoch, with the numbers of a training never stopped.
    ``on_epoch(history)`` runs after each finite epoch, before the next one starts (where a
    checkpoint is taken: see resume.checkpoint()); a signal waits until it returns. The one
    training path of mnist-lab: train and sweep, both engines.
    """
    history, total = [], config.total_epochs
    if resume is not None:
        if resume.epoch > total:
            raise ValueError(f"a checkpoint after epoch {resume.epoch} cannot resume a training of {total} epochs")
        restore(model, resume)
        history = list(resume.history)
    epochs = EpochLog(arrays.y_test, print_each=verbose > 0 and config.engine == "numpy", total=total,
                      history=history, y_validation=arrays.y_validation)
    after_epoch = _after_epoch(on_epoch)
    if config.engine == "numpy":
        _numpy_fit(model, config, arrays, epochs, after_epoch)
    else:
        _keras_fit(model, config, arrays, epochs, verbose, after_epoch)
    last = epochs.history[-1]
    if not math.isfinite(last["train_loss"]):
        raise Diverged(f"training diverged: the loss became {last['train_loss']} in epoch {last['epoch']} "
                       f"(learning rate {config.learning_rate_at(last['epoch'] - 1):g}); a smaller "
                       f"training.learning_rate usually helps")
    if epochs.test_probabilities is None:  # resumed after its last epoch: nothing was left to train
        epochs.test_probabilities = predict(model, arrays.x_test)
    return Trajectory(model, epochs.history, epochs.test_probabilities)


def _after_epoch(on_epoch):
    """``on_epoch`` as the training calls it after each finite epoch: with SIGINT and SIGTERM held
    back until it returns, so that the cells and checkpoint it writes are never cut short (inside
    a backend's fit a signal ends the process at once: see interrupts.py)."""
    def after(history):
        if on_epoch is not None:
            with interrupts.deferred():
                on_epoch(list(history))
    return after


def _numpy_fit(model, config, arrays, epochs: EpochLog, after_epoch):
    for epoch in range(len(epochs.history), config.total_epochs):
        interrupts.check()
        loss, accuracy, seconds = numpy_engine.train_epoch(model, config, epoch, arrays)
        if not epochs.record(loss, accuracy, seconds, lambda: model.probabilities(arrays.x_test),
                             lambda: model.probabilities(arrays.x_validation)):
            return
        after_epoch(epochs.history)


def _keras_fit(model, config, arrays, epochs: EpochLog, verbose, after_epoch):
    """One Keras fit() per stage (its batch size and step), each epoch in its (seed, epoch) order
    rather than Keras's own shuffle, whose order follows from a generator's hidden state and
    could not be resumed (batches.py draws it)."""
    test_inputs = tensors.resident(arrays, "test", lambda: forward_chunks(arrays.x_test))
    validation_inputs = (None if arrays.x_validation is None else
                         tensors.resident(arrays, "validation", lambda: forward_chunks(arrays.x_validation)))
    # Each epoch's step from its index alone (its stage's schedule), so a resumed training takes
    # the steps of one never stopped; before the recorder, which logs the epoch under that step.
    steps = keras.callbacks.LearningRateScheduler(lambda epoch, _: config.learning_rate_at(epoch))
    callbacks = [steps, EpochRecorder(test_inputs, validation_inputs, epochs, after_epoch),
                 keras.callbacks.TerminateOnNaN()]
    if verbose:
        callbacks.append(EpochOfTotal(config.total_epochs))
    end = 0
    for stage in config.stages:
        end += stage.epochs
        done = len(epochs.history)
        if done >= end:
            continue
        if done and not math.isfinite(epochs.history[-1]["train_loss"]):
            return
        source = batches.stage_batches(arrays, config.seed, stage.batch_size)
        with interrupts.leave_at_once():  # see interrupts.py: no unwinding through a running fit
            model.fit(source.data, epochs=end, initial_epoch=done, shuffle=False, verbose=verbose,
                      callbacks=[batches.EpochOrders(source), *callbacks])


class EpochOfTotal(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, counting "Epoch 3/10" over the whole training although each
    fit() call runs one stage."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total

    def set_params(self, params):
        super().set_params({**params, "epochs": self.total})


def verbosity(progress: bool) -> int:
    """Keras's live bar on a terminal; one line per epoch in logs and pipes."""
    return (1 if sys.stdout.isatty() else 2) if progress else 0


def seed_everything(seed: int):
    """One seed for Python, NumPy and the backend; deterministic kernels where the backend has
    a switch for them (JAX on the CPU is deterministic as it is)."""
    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # Without it, TensorFlow may reorder float reductions between runs.
        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def compiled_model(config) -> keras.Model:
    """The config's model, compiled for the lab: plain SGD on categorical cross-entropy."""
    model = build_model(config.model, seed=config.seed)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=config.stages[0].learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"],
                  # Keras's PyTorch trainer runs one step per call (it refuses more).
                  steps_per_execution=1 if keras.backend.backend() == "torch" else STEPS_PER_EXECUTION)
    return model


def model_summary(model) -> str:
    if isinstance(model, NumpyModel):
        return model.summary()
    lines = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    return "\n".join(lines).rstrip() + f"\nParameters: {model.count_params():,}"


class EpochLog:
    """The history of a training: per epoch, the training loss, accuracy and seconds
    (evaluation excluded), then the test loss and accuracy, and with a validation split
    (``y_validation``) the validation loss and accuracy; both engines report here."""

    def __init__(self, y_test, print_each=False, total=None, history=(), y_validation=None):
        self.y_test, self.y_validation, self.print_each, self.total = y_test, y_validation, print_each, total
        self.history, self.test_probabilities = list(history), None

    def record(self, loss, accuracy, seconds, predict_test, predict_validation) -> bool:
        """Add one epoch; False when the loss is not finite (training must stop)."""
        row = {"epoch": len(self.history) + 1, "train_loss": float(loss), "train_accuracy": float(accuracy),
               "train_seconds": seconds}
        self.history.append(row)
        if not math.isfinite(row["train_loss"]):
            return False
        self.test_probabilities = predict_test()
        row["test_loss"], row["test_accuracy"] = loss_and_accuracy(self.test_probabilities, self.y_test)
        if self.y_validation is not None:
            row["validation_loss"], row["validation_accuracy"] = loss_and_accuracy(predict_validation(),
                                                                                   self.y_validation)
        if self.print_each:
            held_out = (f" - validation_loss: {row['validation_loss']:.4f} - validation_accuracy: "
                        f"{row['validation_accuracy']:.4f}" if self.y_validation is not None else "")
            print(f"Epoch {row['epoch']}/{self.total} - {seconds:.2f}s - loss: {row['train_loss']:.4f} - "
                  f"accuracy: {row['train_accuracy']:.4f} - test_loss: {row['test_loss']:.4f} - "
                  f"test_accuracy: {row['test_accuracy']:.4f}{held_out}", flush=True)
        return True


class EpochRecorder(keras.callbacks.Callback):
    """Feeds Keras's epochs to an EpochLog, timing training only, then runs ``after_epoch`` on
    the history of each finite one; the test scores also go into the epoch's logs, so Keras's
    progress bar shows them."""

    def __init__(self, test_inputs, validation_inputs, epochs: EpochLog, after_epoch):
        super().__init__()
        self.test_inputs, self.validation_inputs = test_inputs, validation_inputs
        self.epochs, self.after_epoch = epochs, after_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        if self.epochs.record(logs["loss"], logs["accuracy"], seconds, lambda: forward(self.model, self.test_inputs),
                              lambda: forward(self.model, self.validation_inputs)):
            row = self.epochs.history[-1]
            logs.update({name: value for name, value in row.items() if name.startswith(("test_", "validation_"))})
            self.after_epoch(self.epochs.history)


def predict(model, x_test) -> np.ndarray:
    """Class probabilities of either engine's model."""
    return model.probabilities(x_test) if isinstance(model, NumpyModel) else forward(model, x_test)


def loss_and_accuracy(probabilities: np.ndarray, one_hot_labels: np.ndarray) -> tuple[float, float]:
    """Mean categorical cross-entropy (as Keras computes it) and accuracy."""
    losses = keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(one_hot_labels, probabilities))
    accuracy = np.mean(probabilities.argmax(axis=1) == one_hot_labels.argmax(axis=1))
    return float(np.mean(losses, dtype=np.float64)), float(accuracy)


