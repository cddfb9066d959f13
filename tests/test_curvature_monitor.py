"""`CurvatureMonitor`: its log keys, its values, and no retrace.

A linear model with mean-squared error has a constant Hessian,
2 [X 1]'[X 1] / (n o) per output (written out in NumPy in the test), so the
logged lambda_max is known at every epoch. The preconditioned value for Adam
is checked against Adam replayed in float64 NumPy on the same full-batch
gradients.
"""

import csv
import math

import keras
import numpy as np
import pytest
from models import JIT, TRACES, CountingSequential, assert_traced_once

from keras_adaptive import optimizers
from keras_adaptive._numpy import to_numpy
from keras_adaptive.callbacks.curvature_monitor import LOG_KEYS, CurvatureMonitor

rng = np.random.default_rng(0)
X = (rng.standard_normal((32, 4)) * [1.5, 1.0, 0.7, 0.3]).astype("float32")
Y = rng.standard_normal((32, 2)).astype("float32")


def design():
    return np.hstack([X, np.ones((len(X), 1))]).astype("float64")


def hessian():
    """Over (kernel row-major, bias) of Dense(2): 2 D'D / (n o) per output."""
    per_output = 2.0 * design().T @ design() / (len(X) * 2)
    full = np.zeros((10, 10))
    for j in range(2):
        rows = [i * 2 + j for i in range(4)] + [8 + j]
        full[np.ix_(rows, rows)] = per_output
    return full


def linear(optimizer, model_class=keras.Sequential):
    keras.utils.set_random_seed(5)
    model = model_class([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse", jit_compile=JIT)
    return model


def fit(model, *callbacks, epochs=3):
    return model.fit(
        X,
        Y,
        batch_size=len(X),
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    ).history


@pytest.mark.compiled
def test_keys_reach_history_and_csv_logger_without_a_retrace(tmp_path):
    TRACES.clear()
    model = linear(optimizers.SGD(0.05), CountingSequential)
    path = tmp_path / "log.csv"
    monitor = CurvatureMonitor(X, Y, every=2)
    history = fit(model, monitor, keras.callbacks.CSVLogger(str(path)), epochs=4)
    assert_traced_once()

    top = np.linalg.eigvalsh(hessian())[-1]
    expected = [top, math.nan, top, math.nan]
    np.testing.assert_allclose(history["lambda_max"], expected, rtol=1e-4)
    np.testing.assert_allclose(
        history["lr_times_lambda_max"], 0.05 * np.asarray(expected), rtol=1e-4
    )
    assert "preconditioned_lambda_max" not in history  # SGD has no P
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["lambda_max"]) for r in rows[::2]] == pytest.approx(
        [top, top], rel=1e-4
    )
    assert all(math.isnan(float(r["lambda_max"])) for r in rows[1::2])


def test_the_optimizers_coupled_l2_is_part_of_the_hessian():
    model = linear(optimizers.SGD(0.05, l2=0.3))
    history = fit(model, CurvatureMonitor(X, Y), epochs=1)
    top = np.linalg.eigvalsh(hessian())[-1]
    assert history["lambda_max"][0] == pytest.approx(top + 0.3, rel=1e-4)


def adam_preconditioners(steps, keras_form, rate=0.01, beta_1=0.9, beta_2=0.999):
    """Adam on the full-batch MSE gradient, replayed in float64 from the
    model's initial weights: P after each step (this package's form, or
    Keras's, which adds epsilon before the bias correction)."""
    keras.utils.set_random_seed(5)
    initial = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    params = [to_numpy(v, "float64") for v in initial.trainable_variables]
    epsilon = 1e-7 if keras_form else 1e-8
    m = [np.zeros_like(w) for w in params]
    v = [np.zeros_like(w) for w in params]
    diagonals = []
    for t in range(1, steps + 1):
        residual = X.astype("float64") @ params[0] + params[1] - Y
        scale = 2.0 / residual.size
        grads = [scale * X.T @ residual, scale * residual.sum(axis=0)]
        correction = 1 - beta_2**t
        diagonal = []
        for i, g in enumerate(grads):
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            if keras_form:
                p = (np.sqrt(v[i]) + epsilon) / np.sqrt(correction)
            else:
                p = np.sqrt(v[i] / correction) + epsilon
            params[i] = params[i] - rate * m[i] / (1 - beta_1**t) / p
            diagonal.append(p.ravel())
        diagonals.append(np.concatenate(diagonal))
    return diagonals


@pytest.mark.parametrize("keras_form", [False, True], ids=["ours", "keras"])
def test_preconditioned_top_eigenvalue_for_adam(keras_form):
    optimizer = keras.optimizers.Adam(0.01) if keras_form else optimizers.Adam(0.01)
    model = linear(optimizer)
    history = fit(model, CurvatureMonitor(X, Y, tolerance=1e-6), epochs=3)
    h = hessian()
    for epoch, diagonal in enumerate(adam_preconditioners(3, keras_form)):
        scale = 1 / np.sqrt(diagonal)
        expected = np.linalg.eigvalsh(scale[:, None] * h * scale[None, :])[-1]
        logged = history["preconditioned_lambda_max"][epoch]
        assert logged == pytest.approx(expected, rel=1e-3)
        assert history["lr_times_preconditioned_lambda_max"][epoch] == pytest.approx(
            0.01 * expected, rel=1e-3
        )
    assert set(LOG_KEYS) <= set(history)


def test_preconditioned_false_leaves_the_preconditioned_keys_out():
    history = fit(
        linear(optimizers.Adam(0.01)), CurvatureMonitor(X, Y, preconditioned=False)
    )
    assert "lambda_max" in history and "preconditioned_lambda_max" not in history


def test_preconditioned_true_refuses_an_optimizer_without_one():
    monitor = CurvatureMonitor(X, Y, preconditioned=True)
    with pytest.raises(ValueError, match="`preconditioned` must be False or None"):
        fit(linear(optimizers.SGD(0.1)), monitor)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every": 0}, "`every` must be an integer >= 1"),
        ({"tolerance": 0.0}, r"`tolerance` must be a float in \(0.0, 1.0\)"),
        ({"max_products": 0}, "`max_products` must be an integer >= 1"),
        ({"verbose": 2}, r"`verbose` must be an integer in \[0, 1\]"),
        ({"preconditioned": "yes"}, "`preconditioned` must be True or False"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match="CurvatureMonitor: " + message):
        CurvatureMonitor(X, Y, **kwargs)
