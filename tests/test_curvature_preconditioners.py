"""The diagonal preconditioners P read from optimizer state.

Where the step is w <- w - lr * u / P with a u the test can compute from the
gradients (the gradient, or the bias-corrected momentum), P is checked
against the step the optimizer actually took: P = -lr * u / (w2 - w1) after
the second step. Adadelta, whose P mixes statistics of two steps, is checked
against its equations in float64.
"""

import keras
import numpy as np
import pytest

from keras_adaptive import optimizers
from keras_adaptive._numpy import to_numpy
from keras_adaptive.curvature import (
    diagonal_preconditioner,
    has_diagonal_preconditioner,
)

RATE = 0.1
GRADIENTS = [
    np.array([0.5, -2.0, 3.0, -0.01], "float64"),
    np.array([1.5, 1.0, -0.5, 0.02], "float64"),
]


def adam_direction(beta_1=0.9):
    """The bias-corrected first moment after the two gradients."""
    g1, g2 = GRADIENTS
    m = (1 - beta_1) * (beta_1 * g1 + g2)
    return m / (1 - beta_1**2)


def nadam_direction(beta_1=0.9, psi=0.004):
    """Dozat's m-bar of the second step (Nadam's docstring equations)."""

    def mu(t):
        return beta_1 * (1 - 0.5 * 0.96 ** (t * psi))

    g1, g2 = GRADIENTS
    m = mu(2) * (1 - mu(1)) * g1 + (1 - mu(2)) * g2
    return mu(3) * m / (1 - mu(1) * mu(2) * mu(3)) + (1 - mu(2)) * g2 / (
        1 - mu(1) * mu(2)
    )


def gradient_direction():
    return GRADIENTS[1]


CASES = {
    "Adam": (lambda: optimizers.Adam(RATE), adam_direction),
    "Adam-amsgrad": (lambda: optimizers.Adam(RATE, amsgrad=True), adam_direction),
    "Adamax": (lambda: optimizers.Adamax(RATE), adam_direction),
    "Nadam": (lambda: optimizers.Nadam(RATE), nadam_direction),
    "Adagrad": (lambda: optimizers.Adagrad(RATE), gradient_direction),
    "RMSprop": (lambda: optimizers.RMSprop(RATE), gradient_direction),
    "RMSprop-centered": (
        lambda: optimizers.RMSprop(RATE, centered=True),
        gradient_direction,
    ),
    "keras.Adam": (lambda: keras.optimizers.Adam(RATE), adam_direction),
    "keras.Adam-amsgrad": (
        lambda: keras.optimizers.Adam(RATE, amsgrad=True),
        adam_direction,
    ),
    "keras.Adagrad": (lambda: keras.optimizers.Adagrad(RATE), gradient_direction),
    "keras.RMSprop-centered": (
        lambda: keras.optimizers.RMSprop(RATE, centered=True),
        gradient_direction,
    ),
}


def two_steps(optimizer):
    """The weights after each of two steps from zero, and the variable."""
    variable = keras.Variable(np.zeros(4, "float32"), name="w")
    weights = []
    for gradient in GRADIENTS:
        tensor = keras.ops.convert_to_tensor(gradient.astype("float32"))
        optimizer.apply_gradients([(tensor, variable)])
        weights.append(to_numpy(variable, "float64"))
    return weights, variable


@pytest.mark.parametrize("case", sorted(CASES))
def test_preconditioner_is_the_diagonal_the_step_divided_by(case):
    make, direction = CASES[case]
    optimizer = make()
    (w1, w2), variable = two_steps(optimizer)
    assert has_diagonal_preconditioner(optimizer)
    [diagonal] = diagonal_preconditioner(optimizer, [variable])
    implied = -RATE * direction() / (w2 - w1)
    np.testing.assert_allclose(diagonal, implied, rtol=2e-4)


def test_a_loss_scale_optimizer_is_looked_through():
    inner = keras.optimizers.Adam(RATE)
    (w1, w2), variable = two_steps(inner)
    wrapper = keras.optimizers.LossScaleOptimizer(inner)
    assert has_diagonal_preconditioner(wrapper)
    [diagonal] = diagonal_preconditioner(wrapper, [variable])
    np.testing.assert_allclose(
        diagonal, -RATE * adam_direction() / (w2 - w1), rtol=2e-4
    )


def test_adamw_preconditioner_after_the_decoupled_decay():
    optimizer = keras.optimizers.AdamW(RATE, weight_decay=0.5)
    (w1, w2), variable = two_steps(optimizer)
    [diagonal] = diagonal_preconditioner(optimizer, [variable])
    adam_step = w2 - w1 * (1 - RATE * 0.5)  # Keras decays before the step
    np.testing.assert_allclose(
        diagonal, -RATE * adam_direction() / adam_step, rtol=2e-4
    )


def test_adadelta_preconditioner_follows_its_equations():
    rho, epsilon = 0.95, 1e-6
    optimizer = optimizers.Adadelta()
    _, variable = two_steps(optimizer)
    squares, steps = np.zeros(4), np.zeros(4)
    for g in GRADIENTS:
        squares = rho * squares + (1 - rho) * g**2
        step = np.sqrt((steps + epsilon) / (squares + epsilon)) * g
        steps = rho * steps + (1 - rho) * step**2
    expected = np.sqrt(squares + epsilon) / np.sqrt(steps + epsilon)
    [diagonal] = diagonal_preconditioner(optimizer, [variable])
    np.testing.assert_allclose(diagonal, expected, rtol=1e-5)


def test_an_optimizer_without_a_diagonal_preconditioner_is_refused():
    optimizer = optimizers.SGD(RATE, momentum=0.9)
    _, variable = two_steps(optimizer)
    assert not has_diagonal_preconditioner(optimizer)
    message = r"`optimizer` must have a diagonal preconditioner, one of \[.*'keras"
    with pytest.raises(ValueError, match=message + r".*received optimizer=SGD"):
        diagonal_preconditioner(optimizer, [variable])


def test_adam_before_its_first_step_is_refused():
    optimizer = optimizers.Adam()
    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer.build([variable])
    with pytest.raises(ValueError, match="Adam has taken no step yet"):
        diagonal_preconditioner(optimizer, [variable])
