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


class PythonRate:
    """A callable rate whose value is a Python float: a compiled step holds it
    as a constant."""

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


def test_rebuild_train_function_retraces_with_the_new_constants():
    """While the old train function is still referenced (here: `kept`), JAX's
    trace cache would hand Keras's `make_train_function(force=True)` the old
    trace of `model.train_step`, old constants included; the rebuilt function
    must use the new rate. The loss is (w - 2)^2 from w = 0."""
    rate = PythonRate(0.1)
    layer = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
    model = keras.Sequential([keras.Input((1,)), layer])
    model.compile(keras.optimizers.SGD(rate), "mse", jit_compile=BACKEND != "torch")
    x = np.ones((4, 1), "float32")
    model.fit(x, 2 * x, batch_size=4, verbose=0)
    np.testing.assert_allclose(model.get_weights()[0], [[0.4]], rtol=1e-6)
    kept = model.train_function  # noqa: F841
    rate.value = 0.0
    _keras_api.rebuild_train_function(model)
    model.fit(x, 2 * x, batch_size=4, verbose=0)
    weights = model.get_weights()[0]
    np.testing.assert_allclose(weights, [[0.4]], rtol=1e-6, err_msg=UPDATE)
    rate.value = 0.5  # w = 0.4 - 0.5 * 2 * (0.4 - 2)
    _keras_api.rebuild_train_function(model)
    model.fit(x, 2 * x, batch_size=4, verbose=0)
    weights = model.get_weights()[0]
    np.testing.assert_allclose(weights, [[2.0]], rtol=1e-6, err_msg=UPDATE)
    assert "train_step" not in vars(model)


class Saved(keras.layers.Layer):
    """Saves one number with whatever saves it."""

    def __init__(self, value):
        super().__init__()
        self.number = value

    def save_own_variables(self, store):
        store["number"] = np.asarray(self.number)

    def load_own_variables(self, store):
        self.number = float(np.asarray(store["number"]))


def test_save_with_optimizer_saves_and_loads_with_the_weights(tmp_path):
    def model_with(value):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(0.1), "mse")
        model.optimizer.build(model.trainable_variables)
        saved = Saved(value)
        _keras_api.save_with_optimizer(model.optimizer, "probe", saved)
        return model, saved

    model, _ = model_with(3.0)
    count = len(model.optimizer.variables)
    path = str(tmp_path / "a.weights.h5")
    model.save_weights(path)
    other, saved = model_with(0.0)
    other.load_weights(path)
    assert saved.number == 3.0, (
        f"Keras's saver no longer walks the optimizer's attributes: {UPDATE}"
    )
    assert len(model.optimizer.variables) == count
    model.save(tmp_path / "a.keras")
    loaded = keras.models.load_model(tmp_path / "a.keras")  # ignores it
    assert len(loaded.optimizer.variables) == count


def test_step_bookkeeping_is_the_counter_and_the_accumulators():
    optimizer, variables = built_sgd(learning_rate=0.1, gradient_accumulation_steps=2)
    bookkeeping = _keras_api.step_bookkeeping(optimizer)
    assert len(bookkeeping) == 1 + len(variables), UPDATE
    assert all(any(b is v for v in optimizer.variables) for b in bookkeeping)
    optimizer.apply([keras.ops.ones(2)] * 2, variables)
    counter, *accumulators = bookkeeping
    assert int(keras.ops.convert_to_numpy(counter)) == 1, UPDATE
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 0, UPDATE
    for accumulator in accumulators:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(accumulator), 1.0)
    plain, _ = built_sgd()
    assert _keras_api.step_bookkeeping(plain) == [plain.iterations], UPDATE


def test_metric_direction_is_the_one_early_stopping_uses():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    metrics = ["accuracy", keras.metrics.R2Score(name="r2"), "mae"]
    model.compile(keras.optimizers.SGD(0.1), "mse", metrics=metrics)
    model.evaluate(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    directions = {
        name: _keras_api.metric_direction(model, name)
        for name in ("loss", "val_loss", "val_accuracy", "r2", "mae", "val_other")
    }
    assert directions == {
        "loss": "min",
        "val_loss": "min",
        "val_accuracy": "max",
        "r2": "max",
        "mae": "min",
        "val_other": None,
    }, UPDATE
    for monitor, direction in (("val_accuracy", "max"), ("mae", "min")):
        stopping = keras.callbacks.EarlyStopping(monitor=monitor)
        stopping.set_model(model)
        stopping._set_monitor_op()
        expected = keras.ops.greater if direction == "max" else keras.ops.less
        assert stopping.monitor_op == expected


class FindsItsList(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.found = _keras_api.fit_callbacks(self)


def test_fit_callbacks_are_the_list_fit_calls():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    finder, stopping = FindsItsList(), keras.callbacks.EarlyStopping()
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0, callbacks=[stopping, finder])
    assert finder.found is not None, f"no CallbackList calls the hooks: {UPDATE}"
    assert finder.found[:2] == [stopping, finder]
    finder.on_train_begin()  # called directly: no list
    assert finder.found is None


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
