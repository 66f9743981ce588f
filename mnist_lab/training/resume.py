"""A training's state in and out of a checkpoint: taken after an epoch, checked against the
process that would continue it, and restored into a fresh model of its config (the file format
and the files are results/checkpoints.py)."""

from __future__ import annotations

import keras

from mnist_lab.core import backends, versions
from mnist_lab.results.checkpoints import Checkpoint
from mnist_lab.training.numpy_engine import NumpyModel


def checkpoint(model, key: str, history: list) -> Checkpoint:
    """The training's state after ``len(history)`` epochs (see checkpoints.py)."""
    optimizer = [] if isinstance(model, NumpyModel) else [
        keras.ops.convert_to_numpy(variable) for variable in model.optimizer.variables]
    return Checkpoint(key, list(history), model.get_weights(), optimizer,
                      versions.installed(keras.backend.backend()), backends.compute_threads())


def usable_checkpoint(checkpoint, model, log=print):
    """``checkpoint`` when this process can continue it exactly into ``model`` (a fresh model of its
    config), else None (and a note why)."""
    if checkpoint is None:
        return None
    reason = checkpoint.mismatch(versions.installed(keras.backend.backend()), backends.compute_threads())
    if not checkpoint.fits(model.get_weights()):
        reason = "another model's weights (other shapes)"
    if reason is not None:
        log(f"Note: starting over, not resuming after epoch {checkpoint.epoch}: its checkpoint was made "
            f"with {reason}")
        return None
    return checkpoint


def restore(model, checkpoint: Checkpoint):
    """Put the checkpoint's weights and optimizer state into ``model``, a fresh model of its config."""
    model.set_weights(checkpoint.weights)
    if isinstance(model, NumpyModel):
        return
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    if len(optimizer.variables) != len(checkpoint.optimizer):
        raise ValueError(f"the checkpoint holds {len(checkpoint.optimizer)} optimizer variables, "
                         f"the model's optimizer has {len(optimizer.variables)}")
    for variable, value in zip(optimizer.variables, checkpoint.optimizer):
        variable.assign(value)
