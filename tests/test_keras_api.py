"""The private Keras members that `keras_adaptive._keras_api` wraps still
exist and act as the package uses them.

Every use of a private part of Keras goes through `keras_adaptive._keras_api`;
each of its functions and hooks is exercised here, so that a Keras release
that renames or changes one fails here first, with a message naming it,
instead of the package misbehaving.
"""

import keras
import numpy as np
import pytest
from conftest import BACKEND

from keras_adaptive import _keras_api, optimizers

UPDATE = "keras_adaptive._keras_api needs updating for Keras " + keras.__version__


def built_sgd(**kwargs):
    optimizer = keras.optimizers.SGD(**kwargs)
    variables = [keras.Variable(np.ones(2, "float32"), name=n) for n in "ab"]
    optimizer.build(variables)
    return optimizer, variables


@pytest.mark.parametrize("member", _keras_api.OPTIMIZER_MEMBERS)
def test_optimizer_members_exist(member):
    assert callable(getattr(keras.optimizers.Optimizer, member, None)), (
        f"keras.optimizers.Optimizer has no method `{member}` any more: {UPDATE}"
    )


@pytest.mark.parametrize("attribute", _keras_api.OPTIMIZER_ATTRIBUTES)
def test_built_optimizer_attributes_exist(attribute):
    optimizer, _ = built_sgd()
    assert hasattr(optimizer, attribute), (
        f"a built Keras optimizer has no `{attribute}` any more: {UPDATE}"
    )


def test_learning_rate_object_is_the_variable_or_the_schedule():
    optimizer, _ = built_sgd(learning_rate=0.5)
    rate = _keras_api.learning_rate_object(optimizer)
    assert isinstance(rate, keras.Variable), UPDATE
    assert float(keras.ops.convert_to_numpy(rate)) == 0.5
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert _keras_api.learning_rate_object(keras.optimizers.SGD(schedule)) is schedule


def test_trainable_variables_are_the_built_variables_in_order():
    optimizer, variables = built_sgd()
    got = _keras_api.trainable_variables(optimizer)
    assert [id(v) for v in got] == [id(v) for v in variables], UPDATE


def test_move_last_variable_changes_the_saved_order():
    optimizer, _ = built_sgd(momentum=0.9)
    before = list(optimizer.variables)
    added = optimizer.add_variable((), name="probe")
    _keras_api.move_last_variable(optimizer, 1)
    assert optimizer.variables[1] is added, UPDATE
    assert [v for v in optimizer.variables if v is not added] == before


def test_uses_weight_decay_honours_the_exclusions():
    optimizer = keras.optimizers.SGD(weight_decay=0.1)
    kept, excluded = (keras.Variable(np.ones(2, "float32"), name=n) for n in "ab")
    optimizer.exclude_from_weight_decay(var_names=["b"])
    optimizer.build([kept, excluded])
    assert _keras_api.uses_weight_decay(optimizer, kept), UPDATE
    assert not _keras_api.uses_weight_decay(optimizer, excluded), UPDATE


class Recorder(optimizers.SGD):
    """Records which of the renamed hooks Keras called."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def update_variables(self, grads, trainable_variables, learning_rate):
        self.calls.append("update_variables")
        super().update_variables(grads, trainable_variables, learning_rate)

    def decay_weights(self, variables):
        self.calls.append("decay_weights")
        super().decay_weights(variables)

    def distributed_update_step(self, distribution, grads_and_vars, learning_rate):
        self.calls.append("distributed_update_step")
        super().distributed_update_step(distribution, grads_and_vars, learning_rate)


def test_keras_calls_the_renamed_hooks():
    optimizer = Recorder(learning_rate=0.1, weight_decay=0.5, l2=0.5)
    variable = keras.Variable(np.ones(2, "float32"))
    optimizer.apply([np.zeros(2, "float32")], [variable])
    expected = ["decay_weights", "update_variables"]
    if BACKEND == "tensorflow":
        expected.append("distributed_update_step")
    assert sorted(optimizer.calls) == sorted(expected), (
        f"Keras called {optimizer.calls}, not {expected}: {UPDATE}"
    )
    # Decoupled decay w(1 - 0.5 * 0.1), then the l2 gradient 0.5 w, step 0.1.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(variable), [0.95 * 0.95] * 2, rtol=1e-6
    )


@pytest.mark.tensorflow_only
def test_creation_strategy_is_the_strategy_in_effect():
    import tensorflow as tf

    assert _keras_api.creation_strategy(optimizers.SGD()) is (
        tf.distribute.get_strategy()
    ), f"Keras's TensorFlow optimizer no longer records its strategy: {UPDATE}"


class AssignBetweenBatches(keras.callbacks.Callback):
    """Syncs the trainer state, then zeroes the weights after batch 0."""

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            _keras_api.sync_trainer_state(self.model)
            for variable in self.model.trainable_variables:
                variable.assign(np.zeros(variable.shape, "float32"))


def test_sync_trainer_state_makes_assignments_take_effect():
    """On JAX the trainer has `jax_state_sync`; with a zero rate, the weights
    after fit are those the callback assigned after syncing. (Keras 3.15
    also syncs before callbacks itself, so the second check would pass
    without the sync; the first fails when Keras drops the method.)"""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    if BACKEND == "jax":
        assert callable(getattr(model, "jax_state_sync", None)), (
            f"Keras's JAX trainer has no `jax_state_sync` any more: {UPDATE}"
        )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.ones((8, 2), "float32")
    model.fit(x, x[:, :1], batch_size=4, verbose=0, callbacks=[AssignBetweenBatches()])
    for weight in model.get_weights():
        np.testing.assert_array_equal(weight, 0.0, err_msg=UPDATE)


def test_rebuild_train_function_replaces_a_traced_one():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    _keras_api.rebuild_train_function(model)  # none yet: nothing to do
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    traced = model.train_function
    _keras_api.rebuild_train_function(model)
    assert model.train_function is not None and model.train_function is not traced, (
        f"make_train_function(force=True) did not replace the function: {UPDATE}"
    )


def test_backend_is_one_the_package_supports():
    assert BACKEND in ("tensorflow", "jax", "torch")


@pytest.mark.parametrize(
    "name, kwargs, attribute, expected",
    [  # after one step with the gradient g on a variable of zeros
        ("Adam", {}, "_velocities", lambda g: 0.001 * g**2),
        ("Adam", {"amsgrad": True}, "_velocity_hats", lambda g: 0.001 * g**2),
        ("RMSprop", {}, "_velocities", lambda g: 0.1 * g**2),
        ("RMSprop", {"centered": True}, "_average_gradients", lambda g: 0.1 * g),
        ("Adagrad", {}, "_accumulators", lambda g: 0.1 + g**2),
    ],
)
def test_optimizer_slot_holds_the_keras_statistic(name, kwargs, attribute, expected):
    assert attribute in _keras_api.KERAS_SLOT_ATTRIBUTES[name]
    optimizer = getattr(keras.optimizers, name)(**kwargs)
    variables = [keras.Variable(np.zeros(3, "float32"), name=n) for n in "ab"]
    gradients = [np.array([0.5, -2.0, 4.0], "float32"), np.ones(3, "float32")]
    tensors = [keras.ops.convert_to_tensor(g) for g in gradients]
    optimizer.apply_gradients(zip(tensors, variables, strict=True))
    for variable, gradient in zip(variables, gradients, strict=True):
        slot = _keras_api.optimizer_slot(optimizer, attribute, variable)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(slot.value),
            expected(gradient.astype("float64")),
            rtol=1e-6,
            err_msg=f"Keras's {name} keeps another statistic in `{attribute}`: "
            + UPDATE,
        )
