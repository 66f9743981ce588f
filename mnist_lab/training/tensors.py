"""Backend tensors of the data's arrays: made once per prepared data set and kept while it lives
(``resident``), and sharing the array's memory where the backend can (``shared``).

Both exist because fresh memory is not free on a virtual machine whose memory is backed at its
first touch: 3-6 ms per MB, 0.13-0.3 s for the 47 MB of training images, paid by every process
and every stage that copies them (docs/performance.md, "Fresh memory").
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

_RESIDENT = weakref.WeakKeyDictionary()  # per Prepared: {kind: its tensors}, dropped with it
_TENSORFLOW_ALIGNMENT = 64  # bytes: TensorFlow aborts the process on less (its Eigen kernels' alignment)


def resident(arrays, kind: str, make):
    """``make()`` made once per Prepared ``arrays`` and ``kind``, and kept while they live: every
    stage and every trajectory of a sweep (which keeps its Prepared arrays) share one copy."""
    made = _RESIDENT.setdefault(arrays, {})
    if kind not in made:
        made[kind] = make()
    return made[kind]


def shared(array: np.ndarray):
    """A backend tensor of ``array``'s values: under TensorFlow, over the array's own memory
    when that memory allows it (aligned, contiguous, writable: core.data reads and converts
    into such memory), else a copy. The array must not change while the tensor is in use."""
    if keras.backend.backend() == "tensorflow" and _shareable(array):
        import tensorflow as tf

        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return keras.ops.convert_to_tensor(array)


def _shareable(array: np.ndarray) -> bool:
    # DLPack has no read-only flag (NumPy refuses to export such an array), and TensorFlow
    # checks the alignment only by aborting: both are checked here first.
    return (array.flags.c_contiguous and array.flags.writeable and array.size > 0
            and array.ctypes.data % _TENSORFLOW_ALIGNMENT == 0)
