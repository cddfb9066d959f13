"""CoolDownOnPlateau: scripted decisions, then real training on both backends."""

import warnings

import keras
import numpy as np
import pytest
from models import (
    JIT,
    TRACES,
    CountingSequential,
    Interrupt,
    assert_traced_once,
    assert_traces,
    build_optimizer,
    optimizer_of_kind,
)

from keras_adaptive.callbacks import CoolDownOnPlateau
from keras_adaptive.schedules import ScaledLearningRate

# ---------------------------------------------------------------------------
# Scripted logs: the callback driven epoch by epoch, without training.

#: For the tests of what happens over several reductions without improvement.
SEVERAL = {"stop_on_futile_reduction": False}


def tiny_model(learning_rate=1.0, optimizer=None):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer or keras.optimizers.SGD(learning_rate), "mse")
    return model


def drive(callback, model, values, key="val_loss", epochs=100):
    """Feed ``values`` as the logs of a fit of ``epochs`` epochs (a validation
    pass for a ``val_`` key); the kernel holds the epoch number.

    Returns the logged learning rates and the epoch at which training stopped.
    """
    callback.set_model(model)
    callback.set_params({"epochs": epochs, "steps": None, "verbose": 0})
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        model.layers[0].kernel.assign([[float(epoch)]])
        if key.startswith("val_"):
            callback.on_test_end({key.removeprefix("val_"): value})
        logs = {key: value}
        callback.on_epoch_end(epoch, logs)
        rates.append(logs["learning_rate"])
        if model.stop_training:
            return rates, epoch
    return rates, None


def kernel(model):
    return float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])


def test_min_mode_reductions_stop_and_restore(capsys):
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(
        **SEVERAL, patience=2, max_reductions=2, min_rel_delta=0.0, verbose=1
    )
    values = [1.0, 0.9, 0.8, 0.8, 0.85, 0.8, 0.8, 0.81, 0.8, 0.7]
    rates, stop = drive(callback, model, values)
    # Plateau counted at epochs 3,4 -> reduce at 4; 5,6 -> reduce at 6; 7,8 -> stop.
    np.testing.assert_allclose(rates, [1.0] * 5 + [0.1] * 2 + [0.01] * 2, rtol=1e-6)
    assert stop == 8
    assert callback.stopped_epoch == 8
    assert callback.reductions == 2
    assert callback.best == pytest.approx(0.8)
    assert callback.best_epoch == 2
    assert kernel(model) == 2.0  # the weights of epoch 2 (0-based) are back
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines == [
        "Epoch 5: CoolDownOnPlateau: val_loss has not improved on 0.8 (epoch 3) "
        "for 2 epochs; learning rate 1 -> 0.1 (reduction 1 of 2).",
        "Epoch 7: CoolDownOnPlateau: val_loss has not improved on 0.8 (epoch 3) "
        "for 2 epochs; learning rate 0.1 -> 0.01 (reduction 2 of 2).",
        "Epoch 9: CoolDownOnPlateau: val_loss has not improved on 0.8 (epoch 3) "
        "for 2 epochs after 2 of 2 reductions and no reduction is left; stopping "
        "training and restoring the weights of epoch 3.",
    ]


def test_a_reduction_without_improvement_ends_training(capsys):
    """The default stop_on_futile_reduction: a plateau right after a reduction
    that brought no improvement stops, with reductions left (here 2 p epochs
    after the best, as ReduceLROnPlateau with EarlyStopping(patience=2p))."""
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(patience=2, min_rel_delta=0.0, verbose=1)
    rates, stop = drive(callback, model, [1.0, 0.8, 0.9, 0.85, 0.8, 0.81, 0.7])
    np.testing.assert_allclose(rates, [1.0] * 4 + [0.1] * 2, rtol=1e-6)
    assert stop == 5 and stop - callback.best_epoch == 2 * 2
    assert callback.reductions == 1 and kernel(model) == 1.0
    assert "the last reduction brought no improvement" in capsys.readouterr().out


def test_a_reduction_that_helps_allows_the_next():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(patience=1, min_rel_delta=0.0)
    # Reduction at epoch 2; epoch 3 improves; plateau at 4: reduce again.
    rates, stop = drive(callback, model, [1.0, 0.5, 0.6, 0.4, 0.45, 0.5])
    np.testing.assert_allclose(rates, [1.0, 1.0, 1.0, 0.1, 0.1, 0.01], rtol=1e-6)
    assert stop == 5 and callback.reductions == 2 and kernel(model) == 3.0


def model_with_metric(metric):
    """A tiny model whose compiled metrics are built (as in `fit`)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(keras.optimizers.SGD(1.0), "mse", metrics=[metric])
    x = np.linspace(0.5, 1.0, 4, dtype="float32").reshape(-1, 1)
    model.evaluate(x, 2 * x, verbose=0)
    return model


@pytest.mark.parametrize(
    ("monitor", "mode", "metric"),
    [
        ("val_score", "max", None),
        # R2Score's direction is "up" in Keras; no name suffix says so.
        ("val_r2", "auto", keras.metrics.R2Score(name="r2")),
        ("val_acc", "auto", "acc"),
    ],
)
def test_max_mode_and_the_direction_keras_gives(monitor, mode, metric):
    values = [0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7]
    model = tiny_model(1.0) if metric is None else model_with_metric(metric)
    callback = CoolDownOnPlateau(
        monitor=monitor, mode=mode, patience=1, max_reductions=1
    )
    rates, stop = drive(callback, model, values, key=monitor)
    # 0.6 at epoch 2 does not improve -> reduce; 0.7 improves at 3; stop at 4.
    np.testing.assert_allclose(rates, [1.0, 1.0, 1.0, 0.1, 0.1], rtol=1e-6)
    assert stop == 4
    assert kernel(model) == 3.0


def test_auto_minimises_a_metric_whose_name_sounds_like_accuracy():
    # A loss-like metric named as if it were an accuracy: Keras's direction
    # ("down") decides, not the name.
    metric = keras.metrics.MeanAbsoluteError(name="mae_accuracy")
    callback = CoolDownOnPlateau(monitor="val_mae_accuracy", patience=1)
    rates, _ = drive(
        callback, model_with_metric(metric), [0.5, 0.6], key="val_mae_accuracy"
    )
    np.testing.assert_allclose(rates, [1.0, 1.0])
    assert callback.best == 0.5 and callback.reductions == 1


def test_auto_refuses_a_monitor_of_unknown_direction():
    callback = CoolDownOnPlateau(monitor="val_score", patience=1)
    with pytest.raises(ValueError, match="mode='min' or mode='max'") as error:
        drive(callback, tiny_model(1.0), [0.5, 0.6], key="val_score")
    assert "`val_score`" in str(error.value)


def test_min_mode_ignores_a_rising_value_as_improvement():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(monitor="loss", mode="min", patience=1)
    rates, _ = drive(callback, model, [1.0, 2.0, 3.0], key="loss")
    np.testing.assert_allclose(rates, [1.0, 1.0, 0.1], rtol=1e-6)


def test_negative_flat_metric_is_a_plateau():
    # best * (1 - rtol) is above a negative best: that rule would never reduce.
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(
        monitor="val_elbo", mode="min", patience=2, min_rel_delta=0.01
    )
    values = [-1.0, -1.0, -1.005, -2.0, -2.0, -2.0]
    rates, stop = drive(callback, model, values, key="val_elbo")
    # -1.005 beats -1.0 by less than 1% of |best|: epochs 1, 2 form a plateau.
    np.testing.assert_allclose(rates, [1.0] * 3 + [0.1] * 3, rtol=1e-6)
    assert callback.reductions == 2
    assert callback.best == -2.0
    assert stop is None


def test_min_delta_is_absolute():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(
        monitor="val_loss", patience=1, min_delta=0.1, min_rel_delta=0.0
    )
    rates, _ = drive(callback, model, [1.0, 0.95, 0.8, 0.75])
    np.testing.assert_allclose(rates, [1.0, 1.0, 0.1, 0.1], rtol=1e-6)
    assert callback.best == pytest.approx(0.8)


def test_cooldown_skips_epochs_after_each_reduction():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(**SEVERAL, patience=1, cooldown=2, min_rel_delta=0.0)
    rates, stop = drive(callback, model, [1.0] * 20)
    # Reductions at 1, 4, 7 (epochs 2-3, 5-6, 8-9 are cooldown); stop at 10.
    expected = [1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 1e-3, 1e-3, 1e-3]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert stop == 10
    assert kernel(model) == 0.0


def test_min_lr_reached_before_max_reductions(capsys):
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(
        **SEVERAL, patience=1, min_lr=0.05, max_reductions=3, verbose=1
    )
    rates, stop = drive(callback, model, [1.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(rates, [1.0, 1.0, 0.1, 0.05], rtol=1e-6)
    assert stop == 3
    assert callback.reductions == 2
    out = capsys.readouterr().out
    assert "learning rate 0.1 -> 0.05 (reduction 2 of 3)." in out
    assert (
        "after 2 of 3 reductions and the learning rate 0.05 is at min_lr=0.05; "
        "stopping training and restoring the weights of epoch 1." in out
    )


def test_start_from_epoch_ignores_warm_up():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(patience=1, start_from_epoch=3, max_reductions=1)
    values = [0.5, 0.6, 0.7, 0.8, 0.8, 0.8]
    rates, stop = drive(callback, model, values)
    # Epochs 0-2 are not monitored: the best is epoch 3's 0.8.
    np.testing.assert_allclose(rates, [1.0] * 5 + [0.1], rtol=1e-6)
    assert stop == 5
    assert callback.best_epoch == 3
    assert kernel(model) == 3.0


def test_restore_best_on_reduce_and_no_restore_at_stop():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(
        patience=1,
        max_reductions=1,
        restore_best_on_reduce=True,
        restore_best_weights=False,
    )
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate([1.0, 0.5, 0.6, 0.7]):
        callback.on_epoch_begin(epoch)
        model.layers[0].kernel.assign([[10.0 + epoch]])
        if epoch == 3:
            model.layers[0].kernel.assign([[20.0]])
        callback.on_test_end({"loss": value})
        callback.on_epoch_end(epoch, {"val_loss": value})
        if epoch == 2:
            assert kernel(model) == 11.0  # back to epoch 1 at the reduction
    assert model.stop_training
    assert kernel(model) == 20.0


@pytest.mark.parametrize("verbose", [0, 1])
@pytest.mark.parametrize("restore", [True, False])
def test_best_weights_are_restored_at_the_end_of_the_budget(restore, verbose, capsys):
    """As EarlyStopping(restore_best_weights=True): a fit that ends its epochs
    without a stop ends with the best epoch's weights, restored when training
    ends, and says so in one line at every verbosity."""
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(
        patience=5, restore_best_weights=restore, verbose=verbose
    )
    rates, stop = drive(callback, model, [1.0, 0.5, 0.7, 0.6], epochs=4)
    assert stop is None and kernel(model) == 3.0
    callback.on_train_end()
    assert kernel(model) == (1.0 if restore else 3.0)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    expected = [
        "Epoch 4: CoolDownOnPlateau: end of training; restored the weights of "
        "epoch 2, the best (val_loss 0.5)."
    ]
    assert lines == (expected if restore else [])


def test_a_stop_restores_once():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(patience=1, max_reductions=1, verbose=1)
    _, stop = drive(callback, model, [1.0, 0.5, 0.7, 0.7])
    assert stop == 3 and kernel(model) == 1.0
    model.layers[0].kernel.assign([[30.0]])  # a change after the stop stays
    callback.on_train_end()
    assert kernel(model) == 30.0


def test_a_stop_at_verbose_0_says_that_it_restored(capsys):
    callback = CoolDownOnPlateau(patience=1, max_reductions=1)
    _, stop = drive(callback, tiny_model(1.0), [1.0, 0.5, 0.7, 0.7])
    assert stop == 3
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1
    assert lines[0].startswith("Epoch 4: CoolDownOnPlateau: val_loss has not")
    assert lines[0].endswith("stopping training and restoring the weights of epoch 2.")


def test_no_validation_falls_back_to_loss_after_two_epochs_with_one_warning():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(**SEVERAL, patience=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rates, _ = drive(callback, model, [1.0, 1.0, 1.0, 1.0], key="loss")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "so `loss` is monitored" in messages[0]
    # Epoch 0 is not counted; epoch 1 is the first best; 2 and 3 plateau.
    np.testing.assert_allclose(rates, [1.0, 1.0, 1.0, 0.1], rtol=1e-6)
    assert callback.reductions == 2 and callback.best_epoch == 1


def test_an_explicit_validation_monitor_without_validation_warns_and_waits():
    model = tiny_model(1.0)
    callback = CoolDownOnPlateau(monitor="val_loss", patience=1)
    with pytest.warns(UserWarning, match="the first 2 epochs of this fit had no"):
        drive(callback, model, [1.0, 1.0, 1.0], key="loss")
    assert callback.reductions == 0
    assert callback.best is None


@pytest.mark.parametrize(
    ("monitor", "key"), [("lost", "loss"), ("val_lost", "val_loss")]
)
def test_a_monitored_value_missing_from_logs_that_should_hold_it_raises(monitor, key):
    """A training value missing from an epoch's logs, or a validation value
    missing from the logs of a validation pass, is a mistake: both policies
    raise the same error (see test_callbacks_bold_driver.py)."""
    callback = CoolDownOnPlateau(monitor=monitor, mode="min")
    where = "validation" if monitor.startswith("val_") else "epoch"
    with pytest.raises(ValueError, match=f"is not in the {where} logs of epoch 1"):
        drive(callback, tiny_model(1.0), [1.0], key=key)


def test_schedule_output_is_scaled_not_replaced():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([10], [1.0, 0.5])
    model = tiny_model(optimizer=keras.optimizers.SGD(schedule))
    callback = CoolDownOnPlateau(**SEVERAL, patience=1)
    rates, _ = drive(callback, model, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(rates, [1.0, 1.0, 0.1], rtol=1e-6)
    wrapped = model.optimizer._learning_rate
    assert isinstance(wrapped, ScaledLearningRate)
    assert wrapped.schedule is schedule
    model.optimizer.iterations.assign(20)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.005, rtol=1e-6)
    restored = ScaledLearningRate.from_config(wrapped.get_config())
    np.testing.assert_allclose(float(restored(20)), 0.005, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"factor": 1.0}, "factor"),
        ({"factor": 0.0}, "factor"),
        ({"factor": -0.5}, "factor"),
        ({"patience": -1}, "patience"),
        ({"patience": 1.5}, "patience"),
        ({"mode": "up"}, "mode"),
        ({"max_reductions": 0}, "max_reductions"),
        ({"min_lr": -1e-3}, "min_lr"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"min_rel_delta": -0.1}, "min_rel_delta"),
        ({"cooldown": -1}, "cooldown"),
        ({"start_from_epoch": -2}, "start_from_epoch"),
        ({"monitor": ""}, "monitor"),
    ],
)
def test_invalid_arguments(kwargs, name):
    value = next(iter(kwargs.values()))
    expected = rf"^CoolDownOnPlateau: `{name}` must be .+; received {name}="
    with pytest.raises(ValueError, match=expected) as error:
        CoolDownOnPlateau(**kwargs)
    assert str(error.value).endswith(f"{name}={value!r}.")


def test_config_round_trip():
    callback = CoolDownOnPlateau(monitor="val_acc", factor=0.5, patience=3, cooldown=2)
    assert CoolDownOnPlateau(**callback.get_config()).get_config() == (
        callback.get_config()
    )


# ---------------------------------------------------------------------------
# Real training on the current backend, jit-compiled (eager on PyTorch).


class Script(keras.callbacks.Callback):
    """Writes a scripted value into the logs, and records weights and rates."""

    def __init__(self, values, key="val_loss"):
        super().__init__()
        self.values = values
        self.key = key
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append([np.array(w) for w in self.model.get_weights()])


X = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")


def simulate(rates):
    """Full-batch gradient descent on the MSE of a linear model, in float64."""
    w = np.full((3, 1), 0.1)
    b = np.zeros(1)
    x, y = X.astype("float64"), Y.astype("float64")
    out = []
    for rate in rates:
        residual = x @ w + b - y
        w = w - rate * 2.0 / len(x) * x.T @ residual
        b = b - rate * 2.0 / len(x) * residual.sum(axis=0)
        out.append((w, b))
    return out


def linear_model(optimizer):
    model = CountingSequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(0.1)),
        ]
    )
    model.compile(optimizer, "mse", jit_compile=JIT)
    build_optimizer(model)
    return model


def decay(step):
    return 0.1 * 0.5 ** (step / 4.0)


def make_optimizer(kind, rate):
    if rate == "float":
        learning_rate = 0.1
    elif rate == "schedule":
        learning_rate = keras.optimizers.schedules.ExponentialDecay(0.1, 4, 0.5)
    else:
        learning_rate = lambda: 0.1  # noqa: E731
    return optimizer_of_kind("SGD", kind, learning_rate)


@pytest.mark.parametrize(
    ("kind", "rate"),
    [
        ("keras", "schedule"),
        ("keras", "float"),
        ("keras", "callable"),
        ("loss_scale", "schedule"),
        ("loss_scale", "float"),
        ("ours", "schedule"),
        ("ours", "float"),
    ],
)
def test_end_to_end_effective_rate_and_one_retrace_per_scale_change(kind, rate):
    TRACES.clear()
    model = linear_model(make_optimizer(kind, rate))
    values = [1.0, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8]
    script = Script(values)
    callback = CoolDownOnPlateau(monitor="val_loss", patience=1, max_reductions=2)
    history = model.fit(
        X, Y, batch_size=16, epochs=8, verbose=0, callbacks=[script, callback]
    )
    # Reductions at epochs 2 and 4, stop at 5 restoring epoch 3.
    scale = np.array([1.0, 1.0, 1.0, 0.1, 0.1, 0.01])
    base = decay(np.arange(6)) if rate == "schedule" else np.full(6, 0.1)
    expected = simulate(base * scale)
    assert len(history.history["loss"]) == 6
    # A float rate is a variable; a schedule's scale retraces once per
    # reduction that a later step uses (after epochs 2 and 4).
    traces = 1 if rate == "float" else 3
    assert_traces(traces)
    for epoch, (w, b) in enumerate(expected):
        np.testing.assert_allclose(script.weights[epoch][0], w, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(script.weights[epoch][1], b, rtol=2e-5, atol=1e-6)
    final = model.get_weights()
    np.testing.assert_allclose(final[0], expected[3][0], rtol=2e-5, atol=1e-6)
    # The logged rate is the one of the next step at the end of each epoch.
    next_base = decay(np.arange(1, 7)) if rate == "schedule" else np.full(6, 0.1)
    logged_scale = np.array([1.0, 1.0, 1.0, 0.1, 0.1, 0.01])
    np.testing.assert_allclose(
        history.history["learning_rate"], next_base * logged_scale, rtol=1e-5
    )
    # A second fit continues with the reduced rate, without retracing.
    model.fit(
        X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[Script(values), callback]
    )
    assert_traces(traces)


def test_end_to_end_adam_of_this_package_converges_with_reductions():
    import keras_adaptive.optimizers as ours

    TRACES.clear()
    model = linear_model(ours.Adam(0.05))
    callback = CoolDownOnPlateau(
        **SEVERAL, monitor="loss", patience=2, min_rel_delta=1e-3, max_reductions=2
    )
    history = model.fit(X, Y, batch_size=4, epochs=60, verbose=0, callbacks=[callback])
    rates = np.asarray(history.history["learning_rate"])
    assert callback.reductions == 2
    assert_traced_once()
    assert set(np.round(rates / 0.05, 6)) == {1.0, 0.1, 0.01}
    assert history.history["loss"][-1] < 0.05 * history.history["loss"][0]


class Rates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = {}

    def on_epoch_end(self, epoch, logs=None):
        self.rates[epoch] = logs["learning_rate"]


@pytest.mark.parametrize("rate", ["float", "schedule"])
def test_resume_with_backup_and_restore_makes_the_same_decisions(tmp_path, rate):
    values = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]

    def learning_rate():
        if rate == "float":
            return 0.02
        return keras.optimizers.schedules.ExponentialDecay(0.02, 20, 0.5)

    def run(interrupt_at, backup):
        keras.utils.set_random_seed(7)
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4, "tanh"), keras.layers.Dense(1)]
        )
        model.compile(keras.optimizers.Adam(learning_rate()), "mse", jit_compile=JIT)
        rates = Rates()

        def callbacks(extra):
            return [
                Script(values),
                CoolDownOnPlateau(monitor="val_loss", patience=2, max_reductions=2),
                keras.callbacks.BackupAndRestore(str(backup)),
                rates,
                *extra,
            ]

        if interrupt_at is not None:
            with pytest.raises(RuntimeError, match="interrupted"):
                model.fit(
                    X,
                    Y,
                    batch_size=8,
                    epochs=12,
                    shuffle=False,
                    verbose=0,
                    callbacks=callbacks([Interrupt(interrupt_at)]),
                )
            # A new process: fresh model, fresh callbacks.
            keras.utils.set_random_seed(99)
            model = keras.Sequential(
                [
                    keras.Input((3,)),
                    keras.layers.Dense(4, "tanh"),
                    keras.layers.Dense(1),
                ]
            )
            model.compile(
                keras.optimizers.Adam(learning_rate()), "mse", jit_compile=JIT
            )
        history = model.fit(
            X,
            Y,
            batch_size=8,
            epochs=12,
            shuffle=False,
            verbose=0,
            callbacks=callbacks([]),
        )
        return rates.rates, history, model.get_weights()

    rates_a, history_a, weights_a = run(None, tmp_path / "a")
    rates_b, history_b, weights_b = run(6, tmp_path / "b")
    # Reductions at 3 and 6, stop at 8 restoring epoch 4.
    assert sorted(rates_a) == list(range(9))
    assert sorted(rates_b) == list(range(9))
    assert len(history_b.history["loss"]) == 3  # epochs 6, 7, 8 after resuming
    np.testing.assert_allclose(
        [rates_b[e] for e in range(9)], [rates_a[e] for e in range(9)], rtol=1e-6
    )
    scales = [rates_a[e] / rates_a[0] for e in (3, 4, 6, 7)]
    if rate == "float":
        np.testing.assert_allclose(scales, [1.0, 0.1, 0.1, 0.01], rtol=1e-5)
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_csv_logger_records_the_scaled_rate_and_model_reloads(tmp_path):
    import keras_adaptive.optimizers as ours

    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 4, 0.5)
    model = linear_model(ours.SGD(schedule))
    csv_path = tmp_path / "log.csv"
    model.fit(
        X,
        Y,
        batch_size=16,
        epochs=4,
        verbose=0,
        callbacks=[
            Script([1.0, 1.0, 1.0, 1.0]),
            CoolDownOnPlateau(**SEVERAL, monitor="val_loss", patience=1),
            keras.callbacks.CSVLogger(str(csv_path)),
        ],
    )
    rows = np.genfromtxt(csv_path, delimiter=",", names=True)
    np.testing.assert_allclose(
        rows["learning_rate"],
        decay(np.arange(1, 5)) * np.array([1.0, 1.0, 0.1, 0.01]),
        rtol=1e-5,
    )
    path = tmp_path / "model.keras"
    model.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.models.load_model(
            path, custom_objects={"CountingSequential": CountingSequential}
        )
    assert [str(w.message) for w in caught] == []
    rate = loaded.optimizer._learning_rate
    assert isinstance(rate, ScaledLearningRate)
    plain = ours.SGD(schedule)
    plain.build(loaded.trainable_variables)
    assert len(loaded.optimizer.variables) == len(plain.variables)
    assert int(loaded.optimizer.iterations) == 4
    np.testing.assert_allclose(float(rate(8)), decay(8) * 1e-3, rtol=1e-5)


def test_mixed_precision_loss_scale_optimizer_is_scaled():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    TRACES.clear()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 4, 0.5)
    model = linear_model(keras.optimizers.SGD(schedule))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    history = model.fit(
        X,
        Y,
        batch_size=16,
        epochs=4,
        verbose=0,
        callbacks=[
            Script([1.0, 1.0, 1.0, 1.0]),
            CoolDownOnPlateau(**SEVERAL, patience=1),
        ],
    )
    assert_traces(3)  # reductions after epochs 1, 2 and 3
    np.testing.assert_allclose(
        history.history["learning_rate"],
        decay(np.arange(1, 5)) * np.array([1.0, 1.0, 0.1, 0.01]),
        rtol=1e-5,
    )
    inner = model.optimizer.inner_optimizer
    assert isinstance(inner._learning_rate, ScaledLearningRate)
    np.testing.assert_allclose(float(inner._learning_rate.scale), 1e-3, rtol=1e-6)


def _our_optimizers():
    import keras_adaptive.optimizers as ours

    return list(ours.ALL_OPTIMIZERS)


@pytest.mark.parametrize("cls", _our_optimizers(), ids=lambda cls: cls.__name__)
def test_every_optimizer_of_this_package_takes_the_scaled_schedule(cls):
    TRACES.clear()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 4, 0.5)
    model = linear_model(cls(learning_rate=schedule))
    history = model.fit(
        X,
        Y,
        batch_size=16,
        epochs=3,
        verbose=0,
        callbacks=[Script([1.0, 1.0, 1.0]), CoolDownOnPlateau(patience=1)],
    )
    assert_traces(2)  # the reduction after epoch 1 retraces once
    expected = 0.01 * 0.5 ** (np.arange(1, 4) / 4) * np.array([1.0, 1.0, 0.1])
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-5)


# ---------------------------------------------------------------------------
# Each fit is a run; validation_freq; EarlyStopping; the end-of-fit message.


def fit_scripted(model, callback, values, epochs, extra=()):
    """A fit whose epoch logs hold ``values`` as ``val_loss``; returns the
    weights at the end of each epoch, before the policy's decision."""
    script = Script(values)
    model.fit(
        X,
        Y,
        batch_size=16,
        epochs=epochs,
        verbose=0,
        callbacks=[script, *extra, callback],
    )
    return [weights for weights in script.weights]


def assert_weights_equal(model, weights):
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("second_epochs", [3, 9])
def test_each_fit_restores_its_own_best_epoch(second_epochs, capsys):
    """A policy reused for a second fit, shorter or longer than the first,
    restores the best of that fit and names its epoch in that fit."""
    model = linear_model(keras.optimizers.SGD(0.05))
    policy = CoolDownOnPlateau(patience=20)
    first = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.1, 0.5]  # best: epoch 7 (1-based)
    weights = fit_scripted(model, policy, first, epochs=8)
    assert_weights_equal(model, weights[6])
    # The second fit never reaches the first one's best value.
    second = [0.8, 0.6, 0.7, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9][:second_epochs]
    weights = fit_scripted(model, policy, second, epochs=second_epochs)
    assert policy.best == 0.6 and policy.best_epoch == 1
    assert_weights_equal(model, weights[1])
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines == [
        "Epoch 8: CoolDownOnPlateau: end of training; restored the weights of "
        "epoch 7, the best (val_loss 0.1).",
        f"Epoch {second_epochs}: CoolDownOnPlateau: end of training; restored "
        "the weights of epoch 2, the best (val_loss 0.6).",
    ]


def test_each_fit_counts_its_own_reductions():
    model = linear_model(keras.optimizers.SGD(0.1))
    policy = CoolDownOnPlateau(patience=1, max_reductions=1)
    history = model.fit(
        X, Y, batch_size=16, epochs=4, verbose=0, callbacks=[Script([1.0] * 4), policy]
    )
    assert policy.reductions == 1 and len(history.history["loss"]) == 3
    # The rate is the optimizer's and stays cut; the count starts again.
    history = model.fit(
        X, Y, batch_size=16, epochs=4, verbose=0, callbacks=[Script([1.0] * 4), policy]
    )
    np.testing.assert_allclose(history.history["learning_rate"], [0.01] * 2 + [0.001])
    assert policy.reductions == 1


class ValidationScript(keras.callbacks.Callback):
    """Sets the validation loss of each validation pass, and the training loss
    of every epoch (at its last batch, where the policies read it)."""

    def __init__(self, validation, training):
        super().__init__()
        self.validation = iter(validation)
        self.training = training
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.params["steps"]:
            logs["loss"] = self.training

    def on_test_end(self, logs=None):
        logs["loss"] = next(self.validation)


def test_the_default_monitor_follows_validation_freq():
    """With validation_freq=2 the policy watches val_loss at the epochs that
    validate: no warning, and no cut on the (flat) training loss."""
    model = linear_model(keras.optimizers.SGD(0.05))
    policy = CoolDownOnPlateau(patience=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            X,
            Y,
            batch_size=16,
            epochs=8,
            verbose=0,
            validation_data=(X, Y),
            validation_freq=2,
            callbacks=[ValidationScript([1.0, 0.5, 0.6, 0.7], training=1.0), policy],
        )
    # No warning from the policy, nor any other but the DeprecationWarning of
    # NumPy 2 that Keras's own PyTorch conversions raise.
    assert [str(w.message) for w in caught if "CoolDown" in str(w.message)] == []
    assert all(issubclass(w.category, DeprecationWarning) for w in caught)
    # val_loss at epochs 1, 3, 5, 7: best 0.5 at 3, plateau at 5 (cut), no
    # improvement at 7 (stop, restoring epoch 3).
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.05] * 6 + [0.005] * 2, rtol=1e-6
    )
    assert policy.reductions == 1 and policy.stopped_epoch == 7
    assert policy.best_epoch == 3


@pytest.mark.parametrize("early_stopping_first", [True, False])
def test_early_stopping_that_restores_has_the_last_word(early_stopping_first):
    """Both restore at the end of the fit: the policy leaves it to EarlyStopping
    (in either order) and says so when training starts."""
    model = linear_model(keras.optimizers.SGD(0.05))
    policy = CoolDownOnPlateau(patience=20)
    stopping = keras.callbacks.EarlyStopping(
        monitor="loss", patience=20, restore_best_weights=True
    )
    pair = [stopping, policy] if early_stopping_first else [policy, stopping]
    # val_loss is best at epoch 1 (0-based); the real training loss falls every
    # epoch, so EarlyStopping's best is the last epoch.
    script = Script([1.0, 0.5, 0.7, 0.8])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            X, Y, batch_size=16, epochs=4, verbose=0, callbacks=[script, *pair]
        )
    losses = history.history["loss"]
    assert losses == sorted(losses, reverse=True)
    assert policy.best_epoch == 1
    assert_weights_equal(model, script.weights[3])
    ours = [str(w.message) for w in caught if "CoolDown" in str(w.message)]
    assert len(ours) == 1 and "CoolDownOnPlateau does not restore" in ours[0]
