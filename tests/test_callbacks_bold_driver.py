"""BoldDriver: scripted decisions, revert of weights and slots, real training."""

import math

import keras
import numpy as np
import pytest
from models import (
    JIT,
    TRACES,
    CountingSequential,
    Interrupt,
    assert_traces,
    build_optimizer,
    optimizer_of_kind,
)

from keras_adaptive.callbacks import BoldDriver


def tiny_model(optimizer):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer, "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def value(variable):
    return float(np.asarray(keras.ops.convert_to_numpy(variable)).ravel()[0])


def test_scripted_accept_reject_and_revert(capsys):
    optimizer = keras.optimizers.SGD(1.0, momentum=0.9)
    model = tiny_model(optimizer)
    slot = optimizer.momentums[0]
    callback = BoldDriver(verbose=1)
    callback.set_model(model)
    callback.on_train_begin()
    losses = [1.0, 0.8, 0.9, 0.7, math.nan, 0.6]
    rates, kernels, slots, steps = [], [], [], []
    for epoch, loss in enumerate(losses):
        callback.on_epoch_begin(epoch)
        # "Training" during the epoch: weights, slots and step counter move.
        model.layers[0].kernel.assign([[float(epoch)]])
        slot.assign([[10.0 * epoch]])
        optimizer.iterations.assign(epoch + 1)
        logs = {"loss": loss}
        callback.on_epoch_end(epoch, logs)
        rates.append(logs["learning_rate"])
        kernels.append(value(model.layers[0].kernel))
        slots.append(value(slot))
        steps.append(int(value(optimizer.iterations)))
    np.testing.assert_allclose(
        rates, [1.0, 1.0, 1.05, 0.525, 0.55125, 0.275625], rtol=1e-6
    )
    np.testing.assert_allclose(value(optimizer.learning_rate), 0.2894063, rtol=1e-6)
    # Epoch 2 and 4 are undone: back to the state after epochs 1 and 3.
    assert kernels == [0.0, 1.0, 1.0, 3.0, 3.0, 5.0]
    assert slots == [0.0, 10.0, 10.0, 30.0, 30.0, 50.0]
    assert steps == [1, 2, 3, 4, 5, 6]  # the step counter is not reverted
    assert (callback.increases, callback.decreases) == (3, 2)
    assert callback.reference == 0.6
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines == [
        "Epoch 3: BoldDriver: loss 0.9 did not decrease from 0.8; learning rate "
        "1.05 -> 0.525, steps undone.",
        "Epoch 5: BoldDriver: loss is nan; learning rate 0.55125 -> 0.275625, "
        "steps undone.",
    ]


def test_revert_keeps_the_step_counters():
    import keras_adaptive.optimizers as ours

    optimizer = ours.SGD(1.0, momentum=0.9, skip_nonfinite=True)
    model = tiny_model(optimizer)
    callback = BoldDriver()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, loss in enumerate([1.0, 2.0]):
        callback.on_epoch_begin(epoch)
        model.layers[0].kernel.assign([[float(epoch + 1)]])
        optimizer.iterations.assign(epoch + 1)
        optimizer.skipped_steps.assign(epoch + 1)
        callback.on_epoch_end(epoch, {"loss": loss})
    assert callback.decreases == 1
    assert value(model.layers[0].kernel) == 1.0  # epoch 1 undone
    assert value(optimizer.iterations) == 2
    assert value(optimizer.skipped_steps) == 2


def test_bounds_and_no_revert():
    model = tiny_model(keras.optimizers.SGD(1.0))
    callback = BoldDriver(
        increase=2.0, decrease=0.1, min_lr=0.05, max_lr=3.0, revert=False
    )
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, loss in enumerate([5.0, 4.0, 3.0, 2.0, 2.5, 2.6, 2.7]):
        callback.on_epoch_begin(epoch)
        model.layers[0].kernel.assign([[float(epoch)]])
        callback.on_epoch_end(epoch, {"loss": loss})
        rates.append(value(model.optimizer.learning_rate))
        assert value(model.layers[0].kernel) == epoch  # never reverted
    np.testing.assert_allclose(rates, [1.0, 2.0, 3.0, 3.0, 0.3, 0.05, 0.05], rtol=1e-6)
    # Without revert the reference follows the latest loss.
    assert callback.reference == 2.7


def test_min_delta_and_schedule_scaling():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([100], [0.2, 0.1])
    model = tiny_model(keras.optimizers.SGD(schedule))
    callback = BoldDriver(min_delta=0.1)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, loss in enumerate([1.0, 0.95, 0.8]):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": loss})
    # 0.95 is not 0.1 below 1.0: halved; 0.8 is: times 1.05.
    np.testing.assert_allclose(value(model.optimizer.learning_rate), 0.105, rtol=1e-6)
    model.optimizer.iterations.assign(200)
    np.testing.assert_allclose(value(model.optimizer.learning_rate), 0.0525, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"increase": 1.0}, "increase"),
        ({"increase": 0.5}, "increase"),
        ({"decrease": 1.0}, "decrease"),
        ({"decrease": 0.0}, "decrease"),
        ({"decrease": -0.5}, "decrease"),
        ({"min_lr": -1.0}, "min_lr"),
        ({"max_lr": 0.0}, "max_lr"),
        ({"min_lr": 0.5, "max_lr": 0.1}, "max_lr"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"update_freq": 0}, "update_freq"),
        ({"update_freq": "batch"}, "update_freq"),
        ({"update_freq": 5}, "probe_data"),
        (
            {"update_freq": 5, "probe_data": ([1.0], [1.0]), "monitor": "val_loss"},
            "monitor",
        ),
        ({"update_freq": 5, "probe_data": [[1.0], [1.0]]}, "probe_data"),
        ({"probe_data": ([1.0], [1.0])}, "probe_data"),
        ({"max_failures": 0}, "max_failures"),
        ({"max_failures": 1.5}, "max_failures"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^BoldDriver: `{name}` .+; received "):
        BoldDriver(**kwargs)


def test_config_round_trip():
    callback = BoldDriver(
        increase=1.1,
        decrease=0.3,
        update_freq=4,
        max_lr=2.0,
        probe_data=([[1.0]], [[2.0]]),
        max_failures=2,
    )
    assert BoldDriver(**callback.get_config()).get_config() == callback.get_config()


# ---------------------------------------------------------------------------
# Real training on the current backend, jit-compiled (eager on PyTorch).


class Snapshot(keras.callbacks.Callback):
    """Records weights and optimizer variables, optionally scripting the loss.

    A scripted loss replaces the logged one at the epoch's last batch, where
    the policies read the training loss.
    """

    def __init__(self, losses=None):
        super().__init__()
        self.losses = losses
        self.states = []
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.losses is not None and batch + 1 == self.params["steps"]:
            logs["loss"] = self.losses[self.epoch]

    def on_epoch_end(self, epoch, logs=None):
        if self.losses is not None:
            logs["loss"] = self.losses[epoch]
        optimizer = self.model.optimizer
        while hasattr(optimizer, "inner_optimizer"):
            optimizer = optimizer.inner_optimizer
        named = {v.path: np.array(v) for v in optimizer.variables}
        self.states.append((self.model.get_weights(), named))


X = np.random.default_rng(1).normal(size=(16, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")


def make_optimizer(kind, rate):
    if rate == "schedule":
        learning_rate = keras.optimizers.schedules.ExponentialDecay(0.05, 8, 0.5)
    else:
        learning_rate = 0.05
    return optimizer_of_kind("Adam", kind, learning_rate)


@pytest.mark.parametrize(
    ("kind", "rate"),
    [
        ("keras", "float"),
        ("keras", "schedule"),
        ("loss_scale", "float"),
        ("ours", "schedule"),
    ],
)
def test_end_to_end_revert_restores_weights_and_slots(kind, rate):
    TRACES.clear()
    model = CountingSequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)]
    )
    model.compile(make_optimizer(kind, rate), "mse", jit_compile=JIT)
    build_optimizer(model)
    before = Snapshot(losses=[1.0, 0.9, 2.0, 0.8])
    after = Snapshot()
    history = model.fit(
        X,
        Y,
        batch_size=4,
        epochs=4,
        shuffle=False,
        verbose=0,
        callbacks=[before, BoldDriver(), after],
    )
    # A schedule's scale changes after epochs 1 and 2, which later steps use.
    assert_traces(1 if rate == "float" else 3)
    weights_1, slots_1 = before.states[1]
    weights_2, slots_2 = after.states[2]
    assert not np.allclose(before.states[2][0][0], weights_1[0])  # epoch 2 moved
    for a, b in zip(weights_1, weights_2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert slots_1.keys() == slots_2.keys()
    reverted = [k for k in slots_1 if "iteration" not in k and "learning_rate" not in k]
    assert len(reverted) >= 2 * len(weights_1)  # Adam's two slots per weight
    for key in reverted:
        np.testing.assert_array_equal(slots_1[key], slots_2[key])
    steps = [np.asarray(v).item() for k, v in slots_2.items() if "iteration" in k]
    assert steps == [12]
    # Rates: epoch 1 accepted (x1.05), epoch 2 rejected (x0.5), epoch 3 accepted.
    base = 0.05 * 0.5 ** (np.arange(1, 5) * 4 / 8) if rate == "schedule" else 0.05
    scale = np.array([1.0, 1.0, 1.05, 0.525])
    np.testing.assert_allclose(
        history.history["learning_rate"], base * scale, rtol=1e-5
    )


def simulate_windows(lr, epochs, batch, window, increase, decrease):
    """Bold driver on the full-data loss every `window` batches, plain SGD, float64."""
    w, b = np.full((3, 1), 0.2), np.zeros(1)
    x, y = X.astype("float64"), Y.astype("float64")

    def probe(w, b):
        return float(np.mean((x @ w + b - y) ** 2))

    reference, saved = probe(w, b), (w, b)
    rates = []
    for _ in range(epochs):
        for steps, start in enumerate(range(0, len(x), batch), start=1):
            xb, yb = x[start : start + batch], y[start : start + batch]
            residual = xb @ w + b - yb
            w = w - lr * 2.0 / len(xb) * xb.T @ residual
            b = b - lr * 2.0 / len(xb) * residual.sum(axis=0)
            if steps % window == 0 or start + batch >= len(x):
                loss = probe(w, b)
                if loss < reference:
                    lr, reference, saved = lr * increase, loss, (w, b)
                else:
                    lr, (w, b) = lr * decrease, saved
                rates.append(lr)
    return w, b, lr, rates


def test_end_to_end_batch_windows_match_a_float64_simulation():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(0.2)),
        ]
    )
    model.compile(keras.optimizers.SGD(0.35), "mse", jit_compile=JIT)
    callback = BoldDriver(update_freq=3, increase=1.2, decrease=0.5, probe_data=(X, Y))
    model.fit(
        X, Y, batch_size=2, epochs=3, shuffle=False, verbose=0, callbacks=[callback]
    )
    # 8 batches per epoch: windows end after batches 3, 6 and 8.
    w, b, lr, rates = simulate_windows(0.35, 3, 2, 3, 1.2, 0.5)
    assert len(rates) == 9
    assert callback.increases > 0 and callback.decreases > 0
    assert callback.increases + callback.decreases == 9
    np.testing.assert_allclose(value(model.optimizer.learning_rate), lr, rtol=1e-5)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel, w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias, b, rtol=1e-4, atol=1e-5)


def test_resume_with_backup_and_restore_makes_the_same_decisions(tmp_path):
    def model_and_callbacks(backup, extra=()):
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4, "tanh"), keras.layers.Dense(1)]
        )
        model.compile(keras.optimizers.Adam(0.05), "mse", jit_compile=JIT)
        callbacks = [
            Snapshot(losses=[1.0, 0.9, 2.0, 0.95, 0.85, 1.5, 0.8, 0.7]),
            BoldDriver(),
            keras.callbacks.BackupAndRestore(str(backup)),
            *extra,
        ]
        return model, callbacks

    def fit(model, callbacks):
        return model.fit(
            X, Y, batch_size=4, epochs=8, shuffle=False, verbose=0, callbacks=callbacks
        )

    model_a, callbacks_a = model_and_callbacks(tmp_path / "a")
    history_a = fit(model_a, callbacks_a)
    model_b, callbacks_b = model_and_callbacks(tmp_path / "b", [Interrupt(4)])
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(model_b, callbacks_b)
    model_b, callbacks_b = model_and_callbacks(tmp_path / "b")
    history_b = fit(model_b, callbacks_b)
    driver_a, driver_b = callbacks_a[1], callbacks_b[1]
    assert (driver_a.increases, driver_a.decreases) == (4, 3)
    assert (driver_b.increases, driver_b.decreases) == (4, 3)
    assert driver_b.reference == 0.7
    np.testing.assert_allclose(
        history_b.history["learning_rate"], history_a.history["learning_rate"][4:]
    )
    for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# Step counters with gradient accumulation; the monitored value.


def accumulating_run(callbacks):
    """3 batches an epoch, updates every 2: an epoch can end mid-accumulation."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(0.05, momentum=0.5, gradient_accumulation_steps=2)
    model.compile(optimizer, "mse", jit_compile=JIT)
    model.fit(
        X[:12],
        Y[:12],
        batch_size=4,
        epochs=4,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    return model


def test_revert_with_gradient_accumulation_keeps_every_step_counter():
    plain = accumulating_run([])
    before = Snapshot(losses=[1.0, 0.5, 2.0, 0.4])  # epoch 2 rejected
    after = Snapshot()
    driver = BoldDriver()
    model = accumulating_run([before, driver, after])
    assert (driver.increases, driver.decreases) == (2, 1)
    # 12 batches, one update every 2: the counter advances as without the
    # driver (Keras's `iterations` counts updates).
    assert int(value(model.optimizer.iterations)) == 6
    assert int(value(plain.optimizer.iterations)) == 6
    _, slots_before = before.states[2]
    weights_after, slots_after = after.states[2]
    for a, b in zip(weights_after, before.states[1][0], strict=True):
        np.testing.assert_array_equal(a, b)  # epoch 2 is undone
    accumulators = [k for k in slots_before if "accumulator" in k]
    assert len(accumulators) == 2
    # Epoch 2 ends mid-accumulation (its last batch is the 9th): the update in
    # progress is left as it is.
    assert np.any(slots_before[accumulators[0]] != 0)
    for key in accumulators:
        np.testing.assert_array_equal(slots_after[key], slots_before[key])


@pytest.mark.parametrize("monitor", ["lost", "val_lost"])
def test_a_monitored_value_missing_from_logs_that_should_hold_it_raises(monitor):
    """The same rule and message as CoolDownOnPlateau's: a training value
    missing from an epoch, or a validation value from a validated epoch."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    validated = monitor.startswith("val_")
    where = "validation" if validated else "epoch"
    with pytest.raises(ValueError, match=f"is not in the {where} logs of epoch 1"):
        model.fit(
            X,
            Y,
            epochs=2,
            verbose=0,
            validation_data=(X, Y) if validated else None,
            callbacks=[BoldDriver(monitor=monitor)],
        )


def test_decisions_on_a_validation_value_follow_validation_freq():
    """Epochs without validation are not judged: their steps stand until the
    next validated epoch decides on all of them."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse", jit_compile=JIT)
    driver = BoldDriver(monitor="val_loss")
    history = model.fit(
        X,
        Y,
        epochs=6,
        batch_size=16,
        shuffle=False,
        verbose=0,
        validation_data=(X[:8], Y[:8]),
        validation_freq=2,
        callbacks=[driver],
    )
    val_losses = history.history["val_loss"]
    assert len(val_losses) == 3 and val_losses[0] > val_losses[1] > val_losses[2]
    # Reference at epoch 1; accepted at 3 and 5: the rate grows only then.
    np.testing.assert_allclose(
        np.asarray(history.history["learning_rate"]) / 0.05,
        [1.0, 1.0, 1.0, 1.0, 1.05, 1.05],
        rtol=1e-6,
    )
    assert (driver.increases, driver.decreases) == (2, 0)
