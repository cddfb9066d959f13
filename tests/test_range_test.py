"""find_learning_rate: the loss curve, the suggestion, the model left untouched."""

import keras
import numpy as np
import pytest

from keras_adaptive import find_learning_rate
from keras_adaptive.schedules import ExponentialRamp


def quadratic_model(optimizer=None):
    """E(w) = (w - 1)^2 on every batch: the lecture's 1-D example, eta_opt = 1/2."""
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer or keras.optimizers.SGD(0.01, momentum=0.5), "mse")
    return model


X = np.ones((8, 1), "float32")
Y = np.ones((8, 1), "float32")


def optimizer_state(model):
    return [np.array(v) for v in model.optimizer.variables]


def sgd_losses_on_quadratic(rates):
    """Float64 losses (w - 1)^2 of plain SGD from w = 0 at the given rates,
    until w is no longer finite."""
    w, losses = 0.0, []
    for rate in rates:
        losses.append((w - 1.0) ** 2)
        w -= rate * 2.0 * (w - 1.0)
        if not np.isfinite(w):
            break
    return losses


def test_curve_matches_gradient_descent_on_the_quadratic():
    model = quadratic_model()
    result = find_learning_rate(
        model,
        X,
        Y,
        batch_size=8,
        min_lr=1e-3,
        max_lr=10.0,
        num_steps=60,
        optimizer=keras.optimizers.SGD(),
        plot=False,
    )
    rates = 1e-3 * 1e4 ** (np.arange(60) / 59)
    expected = sgd_losses_on_quadratic(rates)
    n = result.losses.size
    assert result.stopped_early and 10 < n < 60  # diverges once rate > 1
    np.testing.assert_allclose(result.learning_rates, rates[:n], rtol=1e-12)
    # Float32 rounding of w near its optimum 1 is amplified once rate > 1/2,
    # so the comparison stops where the float64 loss falls below 1e-3.
    close = int(np.argmax(np.asarray(expected) < 1e-3))
    assert close > 30
    np.testing.assert_allclose(result.losses[:close], expected[:close], rtol=1e-4)
    assert result.losses[-1] > 4.0 * result.losses.min()
    # The loss falls fastest below the optimal rate 1/2; the smoothed minimum
    # comes later, before the divergence.
    assert 0.02 <= result.suggested_learning_rate <= 0.5
    assert 0.5 < result.min_loss_learning_rate < result.learning_rates[-1]


def test_model_and_optimizer_are_left_untouched():
    model = quadratic_model()
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    weights = model.get_weights()
    state = optimizer_state(model)
    optimizer = model.optimizer
    result = find_learning_rate(model, X, Y, batch_size=8, num_steps=20, plot=False)
    assert result.losses.size == 20 and not result.stopped_early
    assert model.optimizer is optimizer
    np.testing.assert_allclose(float(optimizer.learning_rate), 0.01, rtol=1e-6)
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(state, optimizer_state(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_plot_has_labelled_axes():
    pytest.importorskip("matplotlib", reason="plotting needs matplotlib")
    result = find_learning_rate(
        quadratic_model(), X, Y, batch_size=8, min_lr=1e-3, max_lr=10.0, num_steps=30
    )
    (ax,) = result.figure.axes
    assert ax.get_xlabel() == "learning rate (log scale)"
    assert ax.get_ylabel() == "training loss"
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["loss per step", "smoothed loss"]


def test_ramp_schedule_values_and_config():
    ramp = ExponentialRamp(1e-4, 1.0, 5)
    got = [float(ramp(step)) for step in range(7)]
    np.testing.assert_allclose(got, [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1.0, 1.0], rtol=1e-5)
    assert ExponentialRamp.from_config(ramp.get_config()).get_config() == (
        ramp.get_config()
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_lr": 0.0}, "min_lr"),
        ({"min_lr": 1.0, "max_lr": 0.5}, "max_lr"),
        ({"num_steps": 1}, "num_steps"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"divergence_factor": 1.0}, "divergence_factor"),
    ],
)
def test_invalid_arguments(kwargs, name):
    value = kwargs[name]
    expected = (
        rf"^(find_learning_rate|ExponentialRamp): `{name}` must be .+; "
        rf"received {name}={value!r}\.$"
    )
    with pytest.raises(ValueError, match=expected):
        find_learning_rate(quadratic_model(), X, Y, **kwargs)


def test_uncompiled_model_needs_loss_and_optimizer():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="needs a loss and an optimizer"):
        find_learning_rate(model, X, Y)
    result = find_learning_rate(
        model, X, Y, loss="mse", optimizer="sgd", num_steps=5, plot=False
    )
    assert result.losses.size == 5


@pytest.mark.tensorflow_only
def test_accepts_a_tf_data_pipeline():
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(4).repeat()
    result = find_learning_rate(
        quadratic_model(),
        dataset,
        min_lr=1e-3,
        max_lr=0.1,
        num_steps=10,
        optimizer=keras.optimizers.SGD(),
        plot=False,
    )
    rates = 1e-3 * 100.0 ** (np.arange(10) / 9)
    expected = sgd_losses_on_quadratic(rates)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-4)
