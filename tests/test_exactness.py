"""Every update rule against an independent float64 NumPy implementation.

The references, in `references.py`, are written from the equations in the
papers and the lectures, not from the package's code; the rows of
`optimizer_table.py` name them, one `Reference` per case. Each case runs 30
steps on random gradients of widely varying scale (with some exact zeros)
over a scalar, a vector, a matrix and a 4-D variable, and compares the total
displacement w_T - w_0 in float32 with the float64 reference. Every case
runs once more with decoupled weight decay and once with coupled L2.
"""

import math

import keras
import numpy as np
import pytest
from optimizer_table import ROWS
from references import SHAPES, STEPS, coupled, decoupled

from keras_adaptive import optimizers

RTOL = 1e-5
ATOL = 2e-6
WEIGHT_DECAY = 0.05
L2 = 0.05


def exactness_cases():
    """(row, kwargs, rule) of every case: as listed, with weight decay, with
    L2."""
    cases = [
        (case_id, row, reference) for row in ROWS for case_id, reference in row.cases()
    ]
    return (
        [pytest.param(row, ref.kwargs, ref.rule, id=name) for name, row, ref in cases]
        + [
            pytest.param(
                row,
                {**ref.kwargs, "weight_decay": WEIGHT_DECAY},
                decoupled(ref.rule, WEIGHT_DECAY),
                id=name + "-weight_decay",
            )
            for name, row, ref in cases
        ]
        + [
            pytest.param(
                row, {**ref.kwargs, "l2": L2}, coupled(ref.rule, L2), id=name + "-l2"
            )
            for name, row, ref in cases
        ]
    )


def random_problem(seed):
    """Initial weights and STEPS gradients per shape, of scale 1e-3 to 3."""
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(shape).astype("float32") for shape in SHAPES]
    gradients = []
    for _ in range(STEPS):
        scale = 10.0 ** rng.uniform(-3, 0.5)
        step = []
        for shape in SHAPES:
            g = scale * rng.standard_normal(shape) * (rng.random(shape) > 0.1)
            step.append(g.astype("float32"))
        gradients.append(step)
    return initial, gradients


def make_problem(rule, kwargs, learning_rate):
    """The row's problem: random gradients, unless its rule names another."""
    seed = len(kwargs) + 7
    problem = getattr(rule, "problem", None)
    if problem is None:
        return random_problem(seed)
    return problem(seed, rule, learning_rate)


def run_reference(rule, learning_rate, initial, gradients):
    """The float64 weights after the steps, and the branches the rule took."""
    if getattr(rule, "whole_model", False):
        return run_whole_model_reference(rule, learning_rate, initial, gradients)
    weights = [w.astype("float64") for w in initial]
    states = [{} for _ in weights]
    for t, step in enumerate(gradients, start=1):
        weights = [
            rule(s, w, g.astype("float64"), learning_rate, t)
            for s, w, g in zip(states, weights, step, strict=True)
        ]
    return weights, set().union(*(s.get("hits", set()) for s in states))


def run_whole_model_reference(rule, learning_rate, initial, gradients):
    """Runs a rule that sees all variables as one concatenated vector."""
    sizes = [w.size for w in initial]
    weights = np.concatenate([w.ravel() for w in initial]).astype("float64")
    state = {}
    for t, step in enumerate(gradients, start=1):
        g = np.concatenate([g.ravel() for g in step]).astype("float64")
        weights = rule(state, weights, g, learning_rate, t)
    pieces = np.split(weights, np.cumsum(sizes)[:-1])
    weights = [p.reshape(w.shape) for p, w in zip(pieces, initial, strict=True)]
    return weights, state.get("hits", set())


def run_optimizer(optimizer, initial, gradients):
    variables = [keras.Variable(w) for w in initial]
    for step in gradients:
        optimizer.apply(step, variables)
    return [keras.ops.convert_to_numpy(v).astype("float64") for v in variables]


def initial_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@pytest.mark.parametrize("row, kwargs, rule", exactness_cases())
def test_matches_float64_reference(row, kwargs, rule):
    optimizer = row.cls(**kwargs)
    learning_rate = initial_rate(optimizer)
    initial, gradients = make_problem(rule, kwargs, learning_rate)
    expected, _ = run_reference(rule, learning_rate, initial, gradients)
    actual = run_optimizer(optimizer, initial, gradients)
    for w0, got, want in zip(initial, actual, expected, strict=True):
        moved = want - w0
        assert np.max(np.abs(moved)) > 1e-3, "the test problem must move the weights"
        np.testing.assert_allclose(got - w0, moved, rtol=RTOL, atol=ATOL)


def test_every_optimizer_has_an_exactness_row():
    """Every class of the package has a row, in the order of the lectures,
    and every row has at least one reference case."""
    in_package = [row.cls for row in ROWS if row.cls in optimizers.ALL_OPTIMIZERS]
    assert in_package == list(optimizers.ALL_OPTIMIZERS)
    assert all(row.references for row in ROWS), [
        row.id for row in ROWS if not row.references
    ]


def test_keras_adam_differs_where_documented():
    """The documented epsilon placement is observable: Keras's Adam adds
    epsilon to the uncorrected sqrt(v), so with a large epsilon its first
    step is smaller than Algorithm 1's."""
    gradient = keras.ops.convert_to_tensor(np.full((3,), 0.01, "float32"))
    steps = []
    for optimizer in (
        optimizers.Adam(learning_rate=1.0, epsilon=0.01),
        keras.optimizers.Adam(learning_rate=1.0, epsilon=0.01),
    ):
        variable = keras.Variable(np.zeros(3, "float32"))
        optimizer.apply([gradient], [variable])
        steps.append(-float(keras.ops.convert_to_numpy(variable)[0]))
    # Algorithm 1: m_hat = v_hat^0.5 = 0.01, step = 0.01 / (0.01 + 0.01).
    np.testing.assert_allclose(steps[0], 0.5, rtol=1e-6)
    # Keras: step = eta * sqrt(1 - beta_2) / (1 - beta_1) * m / (sqrt(v) + eps)
    # with m = 0.1 * 0.01 and sqrt(v) = sqrt(0.001) * 0.01, i.e. 1 / (1 + sqrt(1000)).
    np.testing.assert_allclose(steps[1], 1 / (1 + math.sqrt(1000)), rtol=1e-5)


#: The cases that must take given branches on their problem (sign flips, gain
#: and step clipping, skipped curvature pairs, the wrap-around of the L-BFGS
#: memory), so that the comparison above covers them.
BRANCH_CASES = [
    pytest.param(row, reference, id=case_id)
    for row in ROWS
    for case_id, reference in row.cases()
    if reference.branches
]


@pytest.mark.parametrize("row, reference", BRANCH_CASES)
def test_rows_exercise_every_branch(row, reference):
    """Every listed branch occurs in the case's 30 steps."""
    learning_rate = initial_rate(row.cls(**reference.kwargs))
    initial, gradients = make_problem(reference.rule, reference.kwargs, learning_rate)
    _, hits = run_reference(reference.rule, learning_rate, initial, gradients)
    assert reference.branches <= hits, f"misses {set(reference.branches - hits)}"
