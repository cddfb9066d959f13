"""The private Keras names the optimizers rely on still exist and act as used.

`keras_adaptive.optimizers._backend` and the base class use a few private
members of Keras's optimizers. If a Keras release renames or changes one,
these tests fail first, naming the member, instead of the package misbehaving.
"""

import keras
import numpy as np
import pytest
from conftest import BACKEND

from keras_adaptive import optimizers


@pytest.mark.parametrize(
    "member",
    [
        "_apply_weight_decay",
        "_use_weight_decay",
        "_backend_update_step",
        "_get_variable_index",
        "_trainable_variables",
    ],
)
def test_base_optimizer_members_exist(member):
    optimizer = keras.optimizers.SGD(weight_decay=0.1)
    optimizer.build([keras.Variable(np.ones(2, "float32"))])
    assert hasattr(optimizer, member), (
        f"keras.optimizers.Optimizer has no `{member}` any more: "
        "keras_adaptive.optimizers._backend/base need updating for this Keras"
    )


def test_use_weight_decay_honours_the_exclusions():
    optimizer = keras.optimizers.SGD(weight_decay=0.1)
    kept, excluded = (keras.Variable(np.ones(2, "float32"), name=n) for n in "ab")
    optimizer.exclude_from_weight_decay(var_names=["b"])
    optimizer.build([kept, excluded])
    assert optimizer._use_weight_decay(kept)
    assert not optimizer._use_weight_decay(excluded)


@pytest.mark.tensorflow_only
def test_tensorflow_optimizer_members_exist():
    import tensorflow as tf

    optimizer = optimizers.SGD()
    assert optimizer._distribution_strategy is tf.distribute.get_strategy(), (
        "Keras's TensorFlow optimizer no longer records its strategy in "
        "`_distribution_strategy`"
    )
    keras_classes = [
        c for c in type(optimizer).__mro__ if c.__module__.startswith("keras")
    ]
    assert any("_distributed_tf_update_step" in vars(c) for c in keras_classes), (
        "Keras's TensorFlow optimizer has no `_distributed_tf_update_step` any more"
    )


@pytest.mark.tensorflow_only
def test_tensorflow_update_goes_through_the_distributed_step():
    """The override is called: l2 is added there on TensorFlow."""
    calls = []

    class Probe(optimizers.SGD):
        def _distributed_tf_update_step(self, *args):
            calls.append(1)
            return super()._distributed_tf_update_step(*args)

    variable = keras.Variable(np.ones(2, "float32"))
    Probe(l2=0.5).apply([np.zeros(2, "float32")], [variable])
    assert calls == [1], "Keras's TensorFlow optimizer bypassed the distributed step"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [0.995, 0.995])


def test_backend_is_one_the_package_supports():
    assert BACKEND in ("tensorflow", "jax", "torch")
