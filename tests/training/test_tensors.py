import dataclasses
import gc
import weakref

import keras
import numpy as np
import pytest

from mnist_lab.core.data import Prepared, model_inputs
from mnist_lab.training import tensors

pytestmark = pytest.mark.backend  # make test runs this module on the JAX backend too


def grey_levels(rows=301):
    return np.random.default_rng(3).integers(0, 256, size=(rows, 784), dtype=np.uint8)


def test_resident_tensors_are_made_once_per_prepared_arrays_and_dropped_with_them():
    arrays = Prepared(train_images=grey_levels(), y_train=None, x_test=None, y_test=None, test_labels=None,
                      divisor=np.float32(255))
    made = []

    class Tensors:
        pass

    def make():
        made.append(1)
        return Tensors()

    first = tensors.resident(arrays, "training", make)
    assert tensors.resident(arrays, "training", make) is first  # a second stage, a second trajectory
    assert tensors.resident(arrays, "test", make) is not first  # each kind its own
    other = dataclasses.replace(arrays)  # equal arrays, another Prepared: its own tensors
    assert tensors.resident(other, "training", make) is not first
    assert len(made) == 3
    kept = weakref.ref(first)
    del arrays, first
    gc.collect()
    assert kept() is None  # nothing holds a dropped Prepared's tensors


def test_a_shared_tensor_holds_the_arrays_values_and_under_tensorflow_its_memory_where_it_can():
    inputs = model_inputs(grey_levels().reshape(-1, 28, 28), "mlp")
    assert inputs.ctypes.data % 4096 == 0  # page-aligned: what the data layer makes
    read_only = inputs.copy()
    read_only.flags.writeable = False
    others = {"misaligned": inputs.reshape(-1)[1:1001], "strided": inputs[:, ::2], "read-only": read_only,
              "empty": inputs[:0], "uint8": grey_levels()}
    for name, array in {"aligned": inputs, **others}.items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(tensors.shared(array)), array, err_msg=name)
    if keras.backend.backend() != "tensorflow":
        return
    # TensorFlow aborts the whole process on misaligned memory: reaching here proves the check.
    shared, copies = tensors.shared(inputs), {name: tensors.shared(array) for name, array in others.items()
                                              if array.flags.writeable and array.size}
    before = {name: keras.ops.convert_to_numpy(tensor).copy() for name, tensor in copies.items()}
    inputs[:] = 0.5
    assert (keras.ops.convert_to_numpy(shared) == 0.5).all()  # the same memory, not a copy
    for name, tensor in copies.items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(tensor), before[name], err_msg=name)
