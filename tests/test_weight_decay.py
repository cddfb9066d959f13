"""Coupled L2 (`l2`, the lecture's G <- G + lambda W) against Keras's
decoupled `weight_decay` (w <- w - eta * wd * w), on every optimizer.

Loshchilov & Hutter (2019, "Decoupled Weight Decay Regularization") show
that the two are the same for plain gradient descent and differ for
adaptive methods, whose statistics rescale the coupled term: both facts are
checked numerically here. See docs/weight_decay.md.
"""

import keras
import numpy as np
import pytest
from models import batch_size, dense_model, numpy_values, regression_data
from optimizer_table import ROWS, row_id

from keras_adaptive import optimizers

LAMBDA = 0.1
STEPS = 20


def run(optimizer, initial, gradients):
    variables = [keras.Variable(w) for w in initial]
    for step in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step], variables)
    return numpy_values(variables)


def random_gradients(seed=0, shapes=((5,), (3, 2)), steps=STEPS):
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(s).astype("float32") for s in shapes]
    gradients = [
        [rng.standard_normal(s).astype("float32") for s in shapes] for _ in range(steps)
    ]
    return initial, gradients


def test_plain_sgd_coupled_equals_decoupled_with_the_same_lambda():
    """Coupled: w <- w - eta (g + lambda w). Keras's decoupled decay already
    contains eta, w <- w - eta wd w, then w <- w - eta g. Both are
    w (1 - eta lambda) - eta g, so l2=lambda equals weight_decay=lambda: the
    "eta factor" of Loshchilov & Hutter (their decoupled rate is
    lambda' = eta lambda) is inside Keras's definition."""
    initial, gradients = random_gradients()
    coupled = run(optimizers.SGD(learning_rate=0.1, l2=LAMBDA), initial, gradients)
    decoupled = run(
        optimizers.SGD(learning_rate=0.1, weight_decay=LAMBDA), initial, gradients
    )
    expected = [w.astype("float64") for w in initial]
    for step in gradients:
        expected = [
            w * (1 - 0.1 * LAMBDA) - 0.1 * g
            for w, g in zip(expected, step, strict=True)
        ]
    for c, d, e in zip(coupled, decoupled, expected, strict=True):
        np.testing.assert_allclose(c, d, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(c, e, rtol=1e-5, atol=1e-6)
    # The same for Keras's own SGD with its decoupled weight_decay.
    keras_sgd = run(
        keras.optimizers.SGD(learning_rate=0.1, weight_decay=LAMBDA),
        initial,
        gradients,
    )
    for c, k in zip(coupled, keras_sgd, strict=True):
        np.testing.assert_allclose(c, k, rtol=1e-6, atol=1e-7)


def test_sgd_with_momentum_coupled_differs_from_decoupled():
    """With momentum the coupled term enters the velocity and is amplified
    by 1 / (1 - mu); the decoupled decay is not."""
    initial, gradients = random_gradients()
    coupled = run(
        optimizers.Momentum(learning_rate=0.05, l2=LAMBDA), initial, gradients
    )
    decoupled = run(
        optimizers.Momentum(learning_rate=0.05, weight_decay=LAMBDA), initial, gradients
    )
    gap = max(np.max(np.abs(c - d)) for c, d in zip(coupled, decoupled, strict=True))
    assert gap > 0.05


def test_adam_coupled_and_decoupled_differ():
    """With zero loss gradients only the regulariser acts. Coupled, Adam
    normalises lambda w by its own magnitude: m_hat / sqrt(v_hat) ~ sign(w),
    so every weight moves by about eta per step whatever lambda or its size
    (lambda = 0.01 and 1 give the same weights). Decoupled, each weight
    shrinks by the factor (1 - eta wd) per step, in proportion to its size,
    as the penalty lambda/2 ||w||^2 intends."""
    eta = 0.001
    w0 = np.array([2.0, 0.5, -4.0, 0.1], "float32")
    zero = [[np.zeros(4, "float32")] for _ in range(STEPS)]

    def adam(**kwargs):
        return run(optimizers.Adam(learning_rate=eta, **kwargs), [w0], zero)[0]

    coupled = {lam: adam(l2=lam) for lam in (0.01, 1.0)}
    decoupled = {lam: adam(weight_decay=lam) for lam in (0.01, 1.0)}
    # Coupled: independent of lambda, within 2% of T * eta * sign(w0) (the
    # gradient lambda w shrinks a little during the run).
    np.testing.assert_allclose(coupled[0.01], coupled[1.0], rtol=1e-5)
    np.testing.assert_allclose(
        (w0 - coupled[1.0]) / (STEPS * eta), np.sign(w0), rtol=0.02
    )
    # Decoupled: geometric shrinkage, exactly, for each lambda.
    for lam in (0.01, 1.0):
        np.testing.assert_allclose(
            decoupled[lam], w0 * (1 - eta * lam) ** STEPS, rtol=1e-6, atol=1e-7
        )
    # So the two differ on every weight: with wd = 1 the decoupled decay
    # moves a weight by about eta |w| per step (four times as far as the
    # coupled penalty for |w| = 4, a tenth as far for |w| = 0.1).
    moved_coupled = np.abs(w0 - coupled[1.0])
    moved_decoupled = np.abs(w0 - decoupled[1.0])
    np.testing.assert_allclose(moved_decoupled / moved_coupled, np.abs(w0), rtol=0.03)
    assert np.all(np.abs(coupled[1.0] - decoupled[1.0]) > 0.005)


def test_adam_coupled_and_decoupled_differ_with_gradients():
    """With loss gradients of different scales, the coupled penalty of a
    weight with large gradients is divided by their large RMS and nearly
    vanishes; the decoupled decay acts on all weights alike."""
    rng = np.random.default_rng(3)
    initial = [np.ones(6, "float32")]
    scales = np.array([100.0, 100.0, 100.0, 0.01, 0.01, 0.01], "float32")
    gradients = [
        [(scales * rng.choice([-1.0, 1.0], 6)).astype("float32")] for _ in range(200)
    ]
    plain = run(optimizers.Adam(learning_rate=0.01), initial, gradients)[0]
    coupled = run(optimizers.Adam(learning_rate=0.01, l2=1.0), initial, gradients)[0]
    decoupled = run(
        optimizers.Adam(learning_rate=0.01, weight_decay=1.0), initial, gradients
    )[0]
    shrink_coupled = plain - coupled
    shrink_decoupled = plain - decoupled
    # Large-gradient weights: the coupled penalty is ~1e-4 of the gradient.
    assert np.all(np.abs(shrink_coupled[:3]) < 0.05)
    # Decoupled: all weights shrink by (1 - 0.01)^200 of their size, ~0.87.
    assert np.all(shrink_decoupled > 0.5)
    # Small-gradient weights: the coupled penalty dominates their gradient.
    assert np.all(shrink_coupled[3:] > 0.5)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_l2_equals_the_penalty_added_to_the_loss(row):
    """For every optimizer, l2=lambda trains exactly like the loss plus
    lambda/2 * ||w||^2 (Keras's L2 regularizer with factor lambda/2 on every
    kernel and bias)."""
    x, y = regression_data()

    def fit(optimizer, penalty):
        model = dense_model()
        if penalty:
            for layer in model.layers:
                regularizer = keras.regularizers.L2(LAMBDA / 2)
                layer.kernel_regularizer = regularizer
                layer.bias_regularizer = regularizer
            model = keras.Sequential.from_config(model.get_config())
            model.set_weights(dense_model().get_weights())
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=batch_size(row), epochs=3, shuffle=False, verbose=0)
        return model.get_weights()

    coupled = fit(row.make(l2=LAMBDA), penalty=False)
    penalised = fit(row.make(), penalty=True)
    for a, b in zip(coupled, penalised, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_l2_and_weight_decay_are_in_the_config(row):
    optimizer = row.make(l2=0.003, weight_decay=0.004)
    config = optimizer.get_config()
    assert config["l2"] == 0.003
    assert config["weight_decay"] == 0.004
    assert row.cls.from_config(config).l2 == 0.003
