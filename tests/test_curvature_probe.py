"""`measure_curvature` on compiled models, against Hessians built in the test.

* a linear model with mean-squared error and an L2 kernel regulariser, whose
  Hessian is written out in NumPy (2 [X 1]'[X 1] / (n o) per output, plus 2l
  on the kernel);
* a 4-6-3 tanh network with softmax cross-entropy and L2 regularisers in
  float64, whose Hessian is `jax.hessian` of a re-implementation in JAX
  float64;
* the lecture's claim on a quadratic: gradient descent along the top
  eigenvector at eta_opt, 0.95 * 2 / lambda_max and 1.05 * 2 / lambda_max.
"""

import contextlib
import math

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from keras_adaptive import optimizers
from keras_adaptive._numpy import to_numpy
from keras_adaptive.curvature import measure_curvature

L2 = 0.01


def flat_weights(model):
    """The trainable weights, flattened in order, as float64."""
    return np.concatenate(
        [to_numpy(v, "float64").ravel() for v in model.trainable_variables]
    )


def linear_model(features, outputs, l2=L2):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(
                outputs, kernel_regularizer=keras.regularizers.L2(l2) if l2 else None
            ),
        ]
    )
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    return model


def linear_hessian(x, outputs, l2=L2):
    """The Hessian of mean_s mean_j (x_s W_j + b_j - y_sj)^2 + l2 ||W||^2 over
    (kernel row-major, bias), in float64."""
    samples, features = x.shape
    design = np.hstack([x.astype("float64"), np.ones((samples, 1))])
    per_output = 2.0 * design.T @ design / (samples * outputs)
    size = (features + 1) * outputs
    hessian = np.zeros((size, size))
    for j in range(outputs):
        rows = [i * outputs + j for i in range(features)] + [features * outputs + j]
        hessian[np.ix_(rows, rows)] = per_output
    hessian[: features * outputs, : features * outputs] += (
        2 * l2 * np.eye(features * outputs)
    )
    return hessian


def regression_data(samples=64, features=20, outputs=3, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(0.3, 2.0, features)  # distinct curvatures
    x = (rng.standard_normal((samples, features)) * scales).astype("float32")
    y = rng.standard_normal((samples, outputs)).astype("float32")
    return x, y


def test_linear_model_top_three_eigenvalues_match_the_closed_form():
    x, y = regression_data()
    model = linear_model(20, 3)
    exact = np.linalg.eigvalsh(linear_hessian(x, 3))[::-1]
    result = measure_curvature(model, x, y, k=3, tolerance=1e-5)

    assert result.converged and result.full_data and result.samples == 64
    # With 3 outputs every eigenvalue occurs 3 times: the block finds all 3.
    np.testing.assert_allclose(result.eigenvalues, exact[:3], rtol=1e-5)
    assert np.all(result.residuals <= 1e-5 * exact[0])
    assert result.products < 63  # fewer than the dimension
    assert result.lambda_max == result.eigenvalues[0]
    assert result.optimal_learning_rate == pytest.approx(1 / exact[0], rel=1e-5)
    assert result.max_stable_learning_rate == pytest.approx(2 / exact[0], rel=1e-5)
    print(f"linear model: residuals {result.residuals}, {result.products} products")


def test_the_same_seed_gives_the_same_result_and_a_probe_batch_says_so():
    x, y = regression_data()
    model = linear_model(20, 3)
    first = measure_curvature(model, x, y, probe_samples=20, seed=5)
    second = measure_curvature(model, x, y, probe_samples=20, seed=5)
    assert first.lambda_max == second.lambda_max and first.products == second.products
    assert not first.full_data and first.samples == 20
    # The probe batch is numpy.random.default_rng(seed).choice(n, m, False).
    rows = np.random.default_rng(5).choice(64, 20, replace=False)
    exact = np.linalg.eigvalsh(linear_hessian(x[rows], 3))[-1]
    assert first.lambda_max == pytest.approx(exact, rel=1e-4)
    whole = measure_curvature(model, x, y, probe_samples=64)
    assert whole.full_data and whole.samples == 64
    chunked = measure_curvature(model, x, y, chunk_size=24)  # 24 + 24 + 16
    assert chunked.lambda_max == pytest.approx(whole.lambda_max, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, r"measure_curvature: `k` must be an integer in \[1, 63\]"),
        ({"smallest": 64}, r"`smallest` must be an integer in \[0, 63\]"),
        ({"trace_samples": 1}, "`trace_samples` must be 0 .no trace. or an integer"),
        ({"probe_samples": 0}, r"`probe_samples` must be an integer in \[1, 64\]"),
        ({"probe_samples": 65}, "received probe_samples=65"),
        ({"tolerance": 2.0}, r"`tolerance` must be a float in \(0.0, 1.0\)"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    x, y = regression_data()
    with pytest.raises(ValueError, match=message):
        measure_curvature(linear_model(20, 3), x, y, **kwargs)


def test_data_of_unequal_lengths_are_refused():
    model = linear_model(20, 3)
    x, y = regression_data()
    with pytest.raises(ValueError, match="measure_curvature: `x` must be arrays"):
        measure_curvature(model, [x, x[:10]], y, probe_samples=5)


# -- A small network in float64, against jax.hessian ----------------------


@pytest.fixture
def float64():
    """Layers made in the test store and compute float64 (on JAX, with its
    64-bit types enabled for the test)."""
    keras.config.set_floatx("float64")
    keras.mixed_precision.set_dtype_policy("float64")
    with contextlib.ExitStack() as stack:
        if keras.backend.backend() == "jax":
            stack.enter_context(jax.enable_x64(True))
        yield
    keras.config.set_floatx("float32")


def small_network():
    keras.utils.set_random_seed(11)
    regularizer = {
        "kernel_regularizer": keras.regularizers.L2(L2),
        "bias_regularizer": keras.regularizers.L2(L2),
    }
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="tanh", **regularizer),
            keras.layers.Dense(3, **regularizer),
        ]
    )
    model.compile(
        optimizer=optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, 40)
    return model, x, y


def network_hessian(model, x, y):
    """jax.hessian of the same loss, written again in JAX float64."""
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    flat = flat_weights(model)

    with jax.enable_x64(True):

        def loss(theta):
            parts, start = [], 0
            for shape in shapes:
                size = math.prod(shape)
                parts.append(theta[start : start + size].reshape(shape))
                start += size
            kernel_1, bias_1, kernel_2, bias_2 = parts
            logits = jnp.tanh(x @ kernel_1 + bias_1) @ kernel_2 + bias_2
            log_p = jax.nn.log_softmax(logits)
            cross_entropy = -jnp.mean(log_p[jnp.arange(len(y)), y])
            return cross_entropy + L2 * sum(jnp.sum(p**2) for p in parts)

        return np.asarray(jax.jit(jax.hessian(loss))(jnp.asarray(flat, jnp.float64)))


@pytest.mark.usefixtures("float64")
def test_small_network_top_and_bottom_eigenvalues_match_jax_hessian():
    model, x, y = small_network()
    assert all(v.dtype == "float64" for v in model.trainable_variables)
    hessian = network_hessian(model, x, y)
    exact = np.linalg.eigvalsh(hessian)
    assert exact[0] < 0  # negative curvature at the initial weights
    result = measure_curvature(model, x, y, k=2, smallest=2, tolerance=1e-7)
    np.testing.assert_allclose(result.eigenvalues, exact[::-1][:2], rtol=1e-4)
    np.testing.assert_allclose(result.smallest_eigenvalues, exact[:2], rtol=1e-4)
    # The residuals met the tolerance, and the vectors are eigenvectors of
    # the reference Hessian too (Keras computes tanh in float32 on JAX and
    # rounds the L2 factor to float32 on TensorFlow: 1e-7 relative).
    scale = np.max(np.abs(exact))
    residuals = np.r_[result.residuals, result.smallest_residuals]
    assert np.all(residuals <= 1e-7 * scale)
    vectors = np.hstack([result.eigenvectors, result.smallest_eigenvectors])
    values = np.r_[result.eigenvalues, result.smallest_eigenvalues]
    explicit = hessian @ vectors - vectors * values
    assert np.all(np.linalg.norm(explicit, axis=0) <= 1e-6 * scale)


@pytest.mark.usefixtures("float64")
def test_small_network_trace_within_three_standard_errors():
    model, x, y = small_network()
    hessian = network_hessian(model, x, y)
    variance = 2.0 * (np.sum(hessian**2) - np.sum(np.diag(hessian) ** 2))
    errors = []
    for samples in (64, 256):
        result = measure_curvature(model, x, y, trace_samples=samples)
        assert abs(result.trace - np.trace(hessian)) < 3 * result.trace_standard_error
        assert result.trace_standard_error == pytest.approx(
            math.sqrt(variance / samples), rel=0.25
        )
        errors.append(result.trace_standard_error)
    assert errors[1] / errors[0] == pytest.approx(0.5, rel=0.2)


# -- The lecture's claim on a quadratic ----------------------------------------


def descend(model, x, y, rate, steps):
    """The weights (flat) after each of `steps` full-batch SGD steps."""
    model.compile(optimizer=optimizers.SGD(rate), loss="mse")
    weights = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights.append(flat_weights(model))

    model.fit(
        x,
        y,
        batch_size=len(x),
        epochs=steps,
        shuffle=False,
        verbose=0,
        callbacks=[Record()],
    )
    return np.asarray(weights, dtype="float64")


def test_the_lectures_rates_on_a_quadratic():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((64, 3)) * [2.0, 1.0, 0.5]).astype("float32")
    noise = 0.1 * rng.standard_normal(64)
    y = (x @ [1.0, -2.0, 0.5] + noise).astype("float32")[:, None]
    model = linear_model(3, 1, l2=0.0)
    start = flat_weights(model)
    design = np.hstack([x, np.ones((64, 1))]).astype("float64")
    best = np.linalg.lstsq(design, y[:, 0].astype("float64"), rcond=None)[0]

    result = measure_curvature(model, x, y, tolerance=1e-6)
    top, lam = result.eigenvectors[:, 0], result.lambda_max
    assert lam == pytest.approx(np.linalg.eigvalsh(2 * design.T @ design / 64)[-1])
    initial = top @ (start - best)  # the error along the top eigenvector

    def error_along_top(rate, steps):
        model.set_weights([start[:3].reshape(3, 1), start[3:]])
        return (descend(model, x, y, rate, steps) - best) @ top

    # eta_opt = 1 / lambda_max: the error along the top eigenvector is gone
    # after one step.
    [after_one] = error_along_top(result.optimal_learning_rate, 1)
    assert abs(after_one) < 1e-4 * abs(initial)
    # 0.95 * 2 / lambda_max: the error changes sign and shrinks by 0.9 per
    # step; 1.05 * 2 / lambda_max: it grows by 1.1 per step.
    for fraction, factor in [(0.95, -0.9), (1.05, -1.1)]:
        errors = error_along_top(fraction * result.max_stable_learning_rate, 30)
        expected = initial * factor ** np.arange(1, 31)
        np.testing.assert_allclose(errors, expected, rtol=2e-3)
    assert abs(errors[-1]) > 10 * abs(initial)  # diverged (1.1^30 = 17.4)
