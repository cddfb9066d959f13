"""The learning-rate policies on every path a run takes after training.

* reload: after a policy changed the rate (a float, a schedule or a callable),
  `model.save` then `keras.models.load_model` restores every optimizer
  variable of every optimizer of the package (none added), and continued
  training is bit-identical (`test_policy_reload.py` adds Keras's optimizers
  and `BackupAndRestore`);
* resume: interrupted and resumed with `BackupAndRestore`, listed before or
  after the policy, the run ends bit-identical to one never interrupted;
* composition: one policy per learning rate, or a clear error;
* the bold driver on a noisy problem, and non-finite losses.
"""

import math
import warnings

import keras
import numpy as np
import pytest
from models import (
    Inject,
    Interrupt,
    batch_size,
    dense_model,
    numpy_values,
    regression_data,
    scripted_policies,
)
from optimizer_table import ROWS, rows_of_state

from keras_adaptive.callbacks import BoldDriver, CoolDownOnPlateau
from keras_adaptive.schedules import ScaledLearningRate


@keras.saving.register_keras_serializable(package="keras_adaptive_tests")
class ConstantRate:
    """A serializable callable learning rate (no arguments)."""

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value

    def get_config(self):
        return {"value": self.value}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def learning_rate(kind, rate):
    if kind == "float":
        return rate
    if kind == "schedule":
        return keras.optimizers.schedules.ExponentialDecay(rate, 4, 0.9)
    return ConstantRate(rate)


POLICIES = scripted_policies()


def skipping(caught):
    return [str(w.message) for w in caught if "Skipping variable" in str(w.message)]


def fit_with_policy(model, row, policy):
    x, y = regression_data()
    model.fit(
        x,
        y,
        batch_size=batch_size(row),
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[Inject(POLICIES[policy][1]), POLICIES[policy][0]()],
    )


def fit_on(model, row, epochs=2):
    x, y = regression_data()
    model.fit(x, y, batch_size=batch_size(row), epochs=epochs, shuffle=False, verbose=0)


# Every row with a scaled schedule (the scale is the variable a policy adds),
# the policies alternating; both policies with each kind of rate on Adam.
RELOAD_CASES = [
    (row, sorted(POLICIES)[i % 2], "schedule") for i, row in enumerate(ROWS)
] + [
    (rows_of_state("moments")[0], policy, kind)
    for policy in sorted(POLICIES)
    for kind in ("float", "callable")
]


@pytest.mark.parametrize(
    ("row", "policy", "kind"),
    RELOAD_CASES,
    ids=[f"{row.id}-{policy}-{kind}" for row, policy, kind in RELOAD_CASES],
)
def test_reload_after_a_policy_is_bit_identical(row, policy, kind, tmp_path):
    rate = row.kwargs["learning_rate"]

    def compiled():
        model = dense_model()
        model.compile(row.make(learning_rate=learning_rate(kind, rate)), "mse")
        return model

    uninterrupted = compiled()
    fit_with_policy(uninterrupted, row, policy)
    fit_on(uninterrupted, row)

    interrupted = compiled()
    fit_with_policy(interrupted, row, policy)
    saved = interrupted.optimizer
    if kind == "float":
        np.testing.assert_allclose(float(saved.learning_rate), rate / 2, rtol=1e-6)
    else:
        assert isinstance(saved._learning_rate, ScaledLearningRate)
        np.testing.assert_allclose(float(saved._learning_rate.scale), 0.5, rtol=1e-6)
    path = tmp_path / "model.keras"
    interrupted.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.models.load_model(path)
    assert skipping(caught) == []
    restored = loaded.optimizer
    assert type(restored) is row.cls
    plain = row.make(learning_rate=learning_rate(kind, rate))
    plain.build(loaded.trainable_variables)
    assert len(saved.variables) == len(plain.variables)  # nothing added
    assert len(restored.variables) == len(saved.variables)
    for a, b in zip(
        numpy_values(restored.variables), numpy_values(saved.variables), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    if kind != "float":
        assert restored._learning_rate.scale == saved._learning_rate.scale

    fit_on(loaded, row)
    for a, b in zip(loaded.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(loaded.optimizer.iterations) == int(uninterrupted.optimizer.iterations)


def test_reload_of_a_lambda_rate_fails_with_the_keras_error(tmp_path):
    import keras_adaptive.optimizers as ours

    model = dense_model()
    model.compile(ours.Adam(lambda: 0.01), "mse")
    fit_with_policy(model, ROWS[0], "cooldown")
    path = tmp_path / "model.keras"
    with pytest.warns(UserWarning, match="lambda"):
        model.save(path)
    with pytest.raises(ValueError, match="deserialization of a Python lambda"):
        keras.models.load_model(path)


# ---------------------------------------------------------------------------
# Resuming with BackupAndRestore, listed before or after the policy.


class ScriptValidation(Inject):
    """Replaces the validation loss the policies read, in `on_test_end`."""

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_end(self, logs=None):
        logs["loss"] = self.losses[self.epoch]


X, Y = regression_data(samples=32, seed=3)
X_VAL, Y_VAL = regression_data(samples=16, seed=4)

RESUME_CASES = {
    # (Epochs counted from 0; the rate logged is the one the epoch trained
    # with.) Reductions after epochs 2 and 4, the epoch before the
    # interruption; stop after epoch 6, restoring epoch 5.
    "cooldown_val": (
        lambda: CoolDownOnPlateau(patience=1, max_reductions=2),
        ScriptValidation([1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7]),
        [1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01],
    ),
    # The same on the training loss, without a stop.
    "cooldown_loss": (
        lambda: CoolDownOnPlateau(monitor="loss", patience=1, max_reductions=3),
        Inject([1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4]),
        [1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01],
    ),
    # Epoch 4, the epoch before the interruption, rejected (undone).
    "bold_driver": (
        lambda: BoldDriver(),
        Inject([1.0, 0.9, 0.8, 0.7, 2.0, 0.6, 0.5, 0.4, 0.3]),
        [1.0, 1.0, 1.05, 1.1025, 1.157625, 0.5788125, 0.607753, 0.638141, 0.670048],
    ),
    # Windows of 3 batches judged on the same probe data (real losses).
    "bold_driver_batches": (
        lambda: BoldDriver(update_freq=3, increase=1.3, probe_data=(X, Y)),
        None,
        None,
    ),
}


def resume_run(case, order, backup, interrupt_at):
    make_policy, script, _ = RESUME_CASES[case]

    def model():
        keras.utils.set_random_seed(11)
        model = dense_model(seed=5)
        model.compile(keras.optimizers.Adam(0.02), "mse", jit_compile=False)
        return model

    def fit(model, extra):
        policy = make_policy()
        restore = keras.callbacks.BackupAndRestore(str(backup))
        pair = [policy, restore] if order == "policy_first" else [restore, policy]
        scripts = [] if script is None else [script]
        validation = (X_VAL, Y_VAL) if case == "cooldown_val" else None
        history = model.fit(
            X,
            Y,
            validation_data=validation,
            batch_size=4,
            epochs=9,
            shuffle=False,
            verbose=0,
            callbacks=[*scripts, *pair, *extra],
        )
        return policy, history

    trained = model()
    if interrupt_at is not None:
        with pytest.raises(RuntimeError, match="interrupted"):
            fit(trained, [Interrupt(interrupt_at)])
        trained = model()  # a new process: fresh model and callbacks
    policy, history = fit(trained, [])
    return trained, policy, history


@pytest.mark.parametrize("order", ["policy_first", "backup_first"])
@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resume_is_bit_identical_in_either_order(case, order, tmp_path):
    full_model, full_policy, full_history = resume_run(
        case, order, tmp_path / "a", None
    )
    model, policy, history = resume_run(case, order, tmp_path / "b", 5)
    rates = full_history.history["learning_rate"]
    expected = RESUME_CASES[case][2]
    if expected is not None:
        np.testing.assert_allclose(np.asarray(rates) / rates[0], expected, rtol=1e-5)
    else:
        assert full_policy.increases > 0 and full_policy.decreases > 0
    assert len(history.history["loss"]) == len(rates) - 5
    np.testing.assert_array_equal(history.history["learning_rate"], rates[5:])
    for a, b in zip(model.get_weights(), full_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        numpy_values(model.optimizer.variables),
        numpy_values(full_model.optimizer.variables),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert policy._state.values == full_policy._state.values


class EpochMetric(keras.callbacks.Callback):
    """Adds a value to the epoch logs (the policy cannot record it earlier)."""

    def on_epoch_end(self, epoch, logs=None):
        logs["custom"] = 1.0


def test_a_decision_lost_by_the_backup_is_reported_on_resume(tmp_path):
    def fit(extra):
        model = dense_model()
        model.compile(keras.optimizers.SGD(0.01), "mse")
        callbacks = [
            EpochMetric(),
            keras.callbacks.BackupAndRestore(str(tmp_path)),
            CoolDownOnPlateau(monitor="custom", mode="min", patience=1),
            *extra,
        ]
        model.fit(X, Y, batch_size=8, epochs=4, verbose=0, callbacks=callbacks)

    with pytest.raises(RuntimeError, match="interrupted"):
        fit([Interrupt(2)])
    with pytest.raises(RuntimeError, match="before BackupAndRestore") as error:
        fit([])
    assert "no decision for epoch 2" in str(error.value)


# ---------------------------------------------------------------------------
# One learning-rate policy per optimizer.


def small_model(learning_rate=0.01):
    model = dense_model()
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (CoolDownOnPlateau, CoolDownOnPlateau),
        (CoolDownOnPlateau, BoldDriver),
        (BoldDriver, CoolDownOnPlateau),
    ],
)
def test_two_policies_on_one_optimizer_raise(first, second):
    model = small_model()
    callbacks = [first(monitor="loss"), second(monitor="loss")]
    with pytest.raises(ValueError, match="both control the learning rate") as error:
        model.fit(X, Y, epochs=1, verbose=0, callbacks=callbacks)
    assert f"{first.__name__} and {second.__name__}" in str(error.value)


def reduce_every_epoch():
    return keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10)


def schedule_every_epoch():
    return keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.9)


@pytest.mark.parametrize("policy_first", [True, False])
@pytest.mark.parametrize(
    ("keras_callback", "culprit"),
    [
        (reduce_every_epoch, "ReduceLROnPlateau"),
        (schedule_every_epoch, "LearningRateScheduler"),
    ],
)
def test_a_keras_callback_changing_the_same_rate_raises(
    keras_callback, culprit, policy_first
):
    model = small_model()
    policy = CoolDownOnPlateau(monitor="loss", patience=5)
    pair = [policy, keras_callback()]
    callbacks = pair if policy_first else pair[::-1]
    with pytest.raises(RuntimeError, match="not by this policy") as error:
        model.fit(X, Y, epochs=4, verbose=0, callbacks=callbacks)
    assert culprit in str(error.value)
    assert policy.reductions == 0


def test_each_fit_starts_the_policy_afresh_and_a_new_policy_takes_over():
    model = small_model(0.1)
    # Every epoch after a fit's first is a plateau: the rate is cut at each.
    policy = CoolDownOnPlateau(
        monitor="loss", patience=1, max_reductions=3, stop_on_futile_reduction=False
    )
    history = model.fit(
        X, Y, epochs=2, verbose=0, callbacks=[Inject([1.0, 1.0]), policy]
    )
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.1])
    assert policy.reductions == 1
    history = model.fit(
        X, Y, epochs=2, verbose=0, callbacks=[Inject([1.0, 1.0]), policy]
    )
    # The rate is the optimizer's and stays cut; the second fit's first epoch
    # is its first value, its second a plateau.
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.01, 0.01], rtol=1e-5
    )
    assert policy.reductions == 1 and policy.best_epoch == 0
    # A new policy in a later fit takes over the rate.
    driver = BoldDriver()
    history = model.fit(
        X, Y, epochs=3, verbose=0, callbacks=[Inject([1.0, 0.5, 0.4]), driver]
    )
    np.testing.assert_allclose(
        history.history["learning_rate"], [1e-3, 1e-3, 1.05e-3], rtol=1e-5
    )


# ---------------------------------------------------------------------------
# The bold driver on a noisy problem that converges, and non-finite values.


def noisy_regression():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((128, 8)) * np.geomspace(1, 0.1, 8)).astype("float32")
    y = (x @ rng.standard_normal((8, 1)) + 0.2 * rng.standard_normal((128, 1))).astype(
        "float32"
    )
    return x, y


def noisy_run(callback):
    x, y = noisy_regression()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    model.fit(x, y, batch_size=16, epochs=20, verbose=0, callbacks=[callback])
    rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    return rate, float(model.evaluate(x, y, verbose=0))


def test_bold_driver_with_batch_windows_does_not_collapse_on_noise():
    x, y = noisy_regression()
    epoch_rate, epoch_loss = noisy_run(BoldDriver())
    window = BoldDriver(update_freq=2, probe_data=(x, y))
    window_rate, window_loss = noisy_run(window)
    print(
        f"\nper epoch: rate {epoch_rate:.3g}, loss {epoch_loss:.4f}; "
        f"windows of 2 batches: rate {window_rate:.3g}, loss {window_loss:.4f}"
    )
    assert window.increases > window.decreases
    assert window_rate > 0.05 / 100
    assert window_loss < 1.1 * epoch_loss


def scripted_driver(losses, **kwargs):
    model = small_model(1.0)
    driver = BoldDriver(**kwargs)
    driver.set_model(model)
    driver.on_train_begin()
    rates, references = [], []
    for epoch, loss in enumerate(losses):
        driver.on_epoch_begin(epoch)
        driver.on_epoch_end(epoch, {"loss": loss})
        rates.append(float(model.optimizer.learning_rate))
        references.append(driver.reference)
        if model.stop_training:
            break
    return driver, model, rates, references


def test_a_non_finite_loss_is_a_failure_never_the_reference():
    losses = [1.0, math.nan, 0.9, math.inf, 0.8]
    driver, model, rates, references = scripted_driver(losses, revert=False)
    np.testing.assert_allclose(rates, [1.0, 0.5, 0.525, 0.2625, 0.275625], rtol=1e-6)
    assert references == [1.0, 1.0, 0.9, 0.9, 0.8]
    assert (driver.increases, driver.decreases, driver.failures) == (2, 2, 0)
    assert not model.stop_training


@pytest.mark.parametrize("revert", [True, False])
def test_repeated_failures_stop_training(revert, capsys):
    losses = [1.0, 0.9, math.nan, math.nan, math.nan, 0.5]
    driver, model, rates, _ = scripted_driver(
        losses, revert=revert, max_failures=3, verbose=1
    )
    assert model.stop_training
    assert len(rates) == 5
    np.testing.assert_allclose(rates[-1], 1.05 * 0.5**3, rtol=1e-6)
    assert driver.failures == 3
    assert "3 non-finite values in a row (max_failures=3), stopping" in (
        capsys.readouterr().out
    )


class Weights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_a_nan_loss_in_training_undoes_the_epoch_and_training_goes_on():
    x, y = noisy_regression()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05, momentum=0.5), "mse")
    driver = BoldDriver()
    weights = Weights()
    losses = [1.0, 0.9, math.nan, 0.8, 0.7]
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=5,
        verbose=0,
        callbacks=[Inject(losses), driver, weights],
    )
    for a, b in zip(weights.weights[2], weights.weights[1], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        np.asarray(history.history["learning_rate"]) / 0.05,
        [1.0, 1.0, 1.05, 0.525, 0.55125],
        rtol=1e-5,
    )
    assert driver.reference == 0.7
    assert (driver.increases, driver.decreases, driver.failures) == (3, 1, 0)
