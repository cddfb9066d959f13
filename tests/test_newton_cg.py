"""`minimize(method="newton-cg")` and `minimize(method="trust-ncg")`:
truncated Newton with a line search and CG-Steihaug in a trust region.

The inner solvers are checked on explicit matrices, their products computed
in NumPy; the methods on softmax regression against SciPy's L-BFGS-B optimum
(float64 NumPy objective, as in `test_minimize.py`) and on a small tanh
network, where every run must lower the loss at every iteration.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops
from test_minimize import (
    Flat,
    assert_monotone,
    regression_data,
    regression_loss,
    scipy_lbfgs,
    softmax_regression,
    weights64,
)

import keras_adaptive as ka
from keras_adaptive.full_batch.directions import NewtonCGDirection, steihaug


def product_of(matrix):
    """v -> A v, computed in float64 NumPy, returned as float32 (the
    package's default dtype, on every backend)."""

    def product(v):
        return tensor(matrix @ ops.convert_to_numpy(v).astype(np.float64))

    return product


def tensor(values):
    return ops.convert_to_tensor(np.asarray(values, np.float32), "float32")


def spd_matrix(n=8, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q @ np.diag(np.geomspace(0.1, 10.0, n)) @ q.T


def test_truncated_newton_stops_at_the_forcing_tolerance():
    matrix = spd_matrix()
    g = np.random.default_rng(1).standard_normal(8) * 0.1
    solver = NewtonCGDirection(lambda w: product_of(matrix), max_products=50)
    direction, step = solver.propose(None, tensor(g), 0)
    d = ops.convert_to_numpy(direction).astype(np.float64)
    g = g.astype(np.float32).astype(np.float64)
    residual = np.linalg.norm(matrix @ d + g)
    norm = np.linalg.norm(g)
    assert step == 1.0
    assert residual <= min(0.5, math.sqrt(norm)) * norm * (1 + 1e-4)
    assert g @ d < 0.0  # a descent direction
    # The exact Newton step is not needed: CG stopped early.
    assert np.linalg.norm(d - np.linalg.solve(matrix, -g)) > 1e-6


def test_truncated_newton_takes_scaled_steepest_descent_on_negative_curvature():
    matrix = -np.eye(3)
    g = np.array([1.0, -2.0, 0.5])
    solver = NewtonCGDirection(lambda w: product_of(matrix), max_products=10)
    direction, step = solver.propose(None, tensor(g), 0)
    np.testing.assert_array_equal(ops.convert_to_numpy(direction), -g)
    assert step == pytest.approx(g @ g / abs(g @ matrix @ g), rel=1e-6)


def model_change(matrix, g, p):
    return g @ p + 0.5 * p @ matrix @ p


@pytest.mark.parametrize(
    ("matrix", "radius", "boundary"),
    [
        (spd_matrix(), 100.0, False),
        (spd_matrix(), 0.05, True),
        (np.diag([1.0, -2.0, 3.0, 0.5]), 10.0, True),
    ],
    ids=["interior", "leaves the region", "negative curvature"],
)
def test_steihaug_steps_lie_in_the_region_and_lower_the_model(matrix, radius, boundary):
    n = len(matrix)
    g = np.random.default_rng(2).standard_normal(n).astype(np.float32)
    step = steihaug(tensor(g), product_of(matrix), radius, max_products=50)
    p = ops.convert_to_numpy(step.p).astype(np.float64)
    g = g.astype(np.float64)
    assert step.boundary == boundary
    assert np.linalg.norm(p) <= radius * (1 + 1e-6)
    if boundary:
        assert np.linalg.norm(p) == pytest.approx(radius, rel=1e-6)
    else:
        residual = np.linalg.norm(matrix @ p + g)
        norm = np.linalg.norm(g)
        assert residual <= min(0.5, math.sqrt(norm)) * norm * (1 + 1e-4)
    assert step.model_change == pytest.approx(model_change(matrix, g, p), rel=1e-5)
    # At least the decrease of the Cauchy point, -g scaled to the region
    # or to the model's minimum along -g (Nocedal & Wright 2006, Lemma 4.3).
    curvature = g @ matrix @ g
    cauchy = min(
        radius / np.linalg.norm(g), g @ g / curvature if curvature > 0 else np.inf
    )
    assert step.model_change <= model_change(matrix, g, -cauchy * g) * (1 - 1e-5)


# ---------------------------------------------------------------------------
# minimize


METHODS = ["newton-cg", "trust-ncg"]


@pytest.mark.parametrize("method", METHODS)
def test_reaches_the_scipy_optimum_of_a_small_convex_problem(method):
    x, y = regression_data()
    start = [np.zeros((6, 3)), np.zeros(3)]
    objective = Flat(regression_loss, start, x.astype(np.float64), y, 0.01)
    optimum = scipy_lbfgs(objective, ftol=1e-15, gtol=1e-10).fun
    model = softmax_regression(inputs=6, classes=3, l2=0.01)
    history = ka.minimize(model, x, y, method=method, max_iterations=100)
    assert_monotone(history)
    ours, _ = regression_loss(weights64(model), x.astype(np.float64), y, 0.01)
    assert ours == pytest.approx(optimum, rel=1e-6)
    products = history.history["hessian_vector_products"]
    evaluations = history.history["evaluations"]
    assert np.all(np.diff(products) >= 1) and products[0] >= 1
    assert np.all(np.diff(evaluations) >= 1)
    if method == "trust-ncg":
        assert "step_length" not in history.history
        assert all(r > 0 for r in history.history["trust_radius"])
    else:
        assert "trust_radius" not in history.history


def test_one_product_per_inner_iteration_is_counted():
    """With one CG step per iteration (on a convex problem, so no negative
    curvature exit), every iteration costs exactly one product."""
    x, y = regression_data()
    model = softmax_regression(inputs=6, classes=3, l2=0.01)
    history = ka.minimize(
        model, x, y, method="newton-cg", max_cg_iterations=1, max_iterations=6, gtol=0
    )
    assert history.history["hessian_vector_products"] == [1, 2, 3, 4, 5, 6]


def tanh_network(seed):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(3),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 1.0, w.shape) for w in model.get_weights()])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("method", METHODS)
def test_the_loss_never_increases_on_a_non_convex_problem(method):
    x, y = regression_data(samples=200)
    for seed in range(2):
        model = tanh_network(seed)
        history = ka.minimize(model, x, y, method=method, max_iterations=40)
        assert_monotone(history)
        assert history.history["loss"][-1] < 0.5 * history.initial_loss


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"method": "lbfgs", "max_cg_iterations": 5},
            r"`max_cg_iterations` applies only to method='newton-cg' or "
            r"method='trust-ncg'; received max_cg_iterations=5",
        ),
        (
            {"method": "newton-cg", "initial_trust_radius": 2.0},
            r"`initial_trust_radius` applies only to method='trust-ncg'",
        ),
        (
            {"method": "trust-ncg", "initial_trust_radius": 0.0},
            r"`initial_trust_radius` must be a float in \(0.0, inf\)",
        ),
        (
            {
                "method": "trust-ncg",
                "initial_trust_radius": 5.0,
                "max_trust_radius": 2.0,
            },
            r"`max_trust_radius` must be a float in \[5.0, inf\).*=2.0",
        ),
        (
            {"method": "newton-cg", "max_cg_iterations": 0},
            r"`max_cg_iterations` must be an integer >= 1",
        ),
    ],
)
def test_bad_arguments_raise(kwargs, expected):
    x, y = regression_data(samples=20)
    with pytest.raises(ValueError, match=expected):
        ka.minimize(softmax_regression(inputs=6, classes=3), x, y, **kwargs)
