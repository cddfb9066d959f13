"""Every update rule against an independent float64 NumPy implementation.

Each reference below is written from the equations in the papers and the
lectures, not from the package's code: one function per algorithm, taking
the per-variable state (a dict), the weights, the gradient, the learning
rate and the step number t (from 1), and returning the new weights. Each row
runs 30 steps on random gradients of widely varying scale (with some exact
zeros) over a scalar, a vector, a matrix and a 4-D variable, and compares the
total displacement w_T - w_0 in float32 with the float64 reference.
"""

import functools
import math

import keras
import numpy as np
import pytest

from keras_adaptive import optimizers
from keras_adaptive.schedules import MomentumRamp

SHAPES = [(), (7,), (4, 3), (2, 3, 2, 2)]
STEPS = 30
RTOL = 1e-5
ATOL = 2e-6


def ramp(initial, final, ramp_steps):
    """The momentum ramp, written independently of MomentumRamp."""

    def value(step):
        progress = min(max(step / ramp_steps, 0.0), 1.0)
        return initial + (final - initial) * (1 - math.cos(math.pi * progress)) / 2

    return value


def constant(value):
    return lambda step: value


NO_MOMENTUM = constant(0.0)
BETA_1 = constant(0.9)


# --- float64 references ----------------------------------------------------


def sgd(momentum=NO_MOMENTUM, nesterov=False):
    def step(s, w, g, lr, t):
        mu = momentum(t - 1)
        s["v"] = mu * s.get("v", 0.0) - lr * g
        return w + mu * s["v"] - lr * g if nesterov else w + s["v"]

    return step


def adagrad(initial=0.0, epsilon=1e-7):
    def step(s, w, g, lr, t):
        s["G"] = s.get("G", initial) + g**2
        return w - lr * g / np.sqrt(s["G"] + epsilon)

    return step


def rmsprop(rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    def step(s, w, g, lr, t):
        s["ms"] = rho * s.get("ms", 0.0) + (1 - rho) * g**2
        s["mg"] = rho * s.get("mg", 0.0) + (1 - rho) * g
        variance = s["ms"] - s["mg"] ** 2 if centered else s["ms"]
        s["m"] = momentum * s.get("m", 0.0) + lr * g / np.sqrt(variance + epsilon)
        return w - s["m"]

    return step


def adadelta(rho=0.95, epsilon=1e-6):
    def step(s, w, g, lr, t):
        s["Eg2"] = rho * s.get("Eg2", 0.0) + (1 - rho) * g**2
        dx = np.sqrt(s.get("Edx2", 0.0) + epsilon) / np.sqrt(s["Eg2"] + epsilon) * g
        s["Edx2"] = rho * s.get("Edx2", 0.0) + (1 - rho) * dx**2
        return w - lr * dx

    return step


def adam(beta_1=BETA_1, beta_2=0.999, epsilon=1e-8, amsgrad=False):
    def step(s, w, g, lr, t):
        b1 = beta_1(t - 1)
        s["prod"] = s.get("prod", 1.0) * b1
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = beta_2 * s.get("v", 0.0) + (1 - beta_2) * g**2
        s["vmax"] = np.maximum(s.get("vmax", 0.0), s["v"])
        v = s["vmax"] if amsgrad else s["v"]
        m_hat = s["m"] / (1 - s["prod"])
        v_hat = v / (1 - beta_2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + epsilon)

    return step


def adamax(beta_1=BETA_1, beta_2=0.999, epsilon=1e-8):
    def step(s, w, g, lr, t):
        b1 = beta_1(t - 1)
        s["prod"] = s.get("prod", 1.0) * b1
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["u"] = np.maximum(beta_2 * s.get("u", 0.0), np.abs(g))
        return w - lr / (1 - s["prod"]) * s["m"] / (s["u"] + epsilon)

    return step


def nadam(beta_1=BETA_1, beta_2=0.999, epsilon=1e-8, psi=0.004):
    def mu(t):
        return beta_1(t - 1) * (1 - 0.5 * 0.96 ** (t * psi))

    def step(s, w, g, lr, t):
        s["prod"] = s.get("prod", 1.0) * mu(t)
        s["m"] = mu(t) * s.get("m", 0.0) + (1 - mu(t)) * g
        s["n"] = beta_2 * s.get("n", 0.0) + (1 - beta_2) * g**2
        m_bar = mu(t + 1) * s["m"] / (1 - s["prod"] * mu(t + 1))
        m_bar += (1 - mu(t)) * g / (1 - s["prod"])
        n_hat = s["n"] / (1 - beta_2**t)
        return w - lr * m_bar / (np.sqrt(n_hat) + epsilon)

    return step


def delta_bar_delta(
    increment=0.05, decay=0.95, min_gain=0.1, max_gain=10.0, momentum=None
):
    """Per-weight gains: + increment on agreement, * decay on a flip, clipped.
    The sign test is against the previous gradient, or, with a momentum
    schedule, against the descent direction -v the weight has been moving in."""

    def step(s, w, g, lr, t):
        previous = s.get("g", 0.0) if momentum is None else -s.get("v", 0.0)
        product = g * previous
        gain = s.get("gain", np.ones_like(w))
        gain = np.where(
            product > 0, gain + increment, np.where(product < 0, gain * decay, gain)
        )
        hits = s.setdefault("hits", set())
        hits.update(
            name
            for name, hit in [
                ("grow", product > 0),
                ("shrink", product < 0),
                ("max_gain", gain > max_gain),
                ("min_gain", gain < min_gain),
            ]
            if np.any(hit)
        )
        s["gain"] = np.minimum(np.maximum(gain, min_gain), max_gain)
        if momentum is not None:
            s["v"] = momentum(t - 1) * s.get("v", 0.0) - lr * s["gain"] * g
            return w + s["v"]
        s["g"] = g
        return w - lr * s["gain"] * g

    return step


def rprop(eta_minus=0.5, eta_plus=1.2, min_step=1e-6, max_step=50.0):
    """iRprop-: sign-driven step sizes; no step for a weight whose sign flips."""

    def step(s, w, g, lr, t):
        delta = s.get("delta", np.full_like(w, lr))
        product = g * s.get("g", 0.0)
        delta = np.where(
            product > 0,
            delta * eta_plus,
            np.where(product < 0, delta * eta_minus, delta),
        )
        hits = s.setdefault("hits", set())
        hits.update(
            name
            for name, hit in [
                ("grow", product > 0),
                ("shrink", product < 0),
                ("max_step", delta > max_step),
                ("min_step", delta < min_step),
            ]
            if np.any(hit)
        )
        s["delta"] = np.minimum(np.maximum(delta, min_step), max_step)
        s["g"] = np.where(product < 0, 0.0, g)
        return w - np.sign(s["g"]) * s["delta"]

    return step


def lbfgs(history_size=10, curvature_epsilon=1e-10):
    """L-BFGS on the whole model as one vector, with the inverse Hessian kept
    as an explicit matrix: H0 = gamma I from the newest pair, then the BFGS
    update H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T for the stored
    pairs, oldest first. Pairs are the steps taken and the gradient changes;
    one with s^T y <= epsilon y^T y is skipped, the oldest is dropped beyond
    `history_size`. With no pair stored the step is -min(1, 1/|g|_1) g."""

    def step(s, w, g, lr, t):
        pairs = s.setdefault("pairs", [])
        hits = s.setdefault("hits", set())
        if t > 1:
            s_k, y_k = s["step"], g - s["g"]
            if s_k @ y_k > curvature_epsilon * (y_k @ y_k):
                pairs.append((s_k, y_k))
                hits.add("accept")
                if len(pairs) > history_size:
                    pairs.pop(0)
                    hits.add("wrap")
            else:
                hits.add("skip")
        if pairs:
            s_new, y_new = pairs[-1]
            inverse_hessian = (s_new @ y_new) / (y_new @ y_new) * np.eye(w.size)
            for s_k, y_k in pairs:
                rho = 1.0 / (s_k @ y_k)
                left = np.eye(w.size) - rho * np.outer(s_k, y_k)
                inverse_hessian = left @ inverse_hessian @ left.T
                inverse_hessian += rho * np.outer(s_k, s_k)
            direction = -inverse_hessian @ g
        else:
            direction = -min(1.0, 1.0 / np.abs(g).sum()) * g
        s["step"], s["g"] = lr * direction, g
        return w + s["step"]

    step.whole_model = True
    step.problem = trajectory_problem
    return step


def trajectory_problem(seed, rule, learning_rate):
    """Gradients of a smooth non-convex objective along the reference's own
    path, for the quasi-Newton rule: its curvature pairs are only meaningful
    (and well conditioned) when the gradients come from one function.

    f(w) = sum_i log(1 + (a_i^T w - b_i)^2) + 0.5 ||w||^2 over all variables
    as one vector: a robust regression whose curvature is negative for large
    residuals, so that some curvature pairs are skipped.
    """
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(shape).astype("float32") for shape in SHAPES]
    sizes = [w.size for w in initial]
    n = sum(sizes)
    a = rng.standard_normal((2 * n, n)) / math.sqrt(n)
    b = rng.standard_normal(2 * n)

    def gradient(w):
        residual = a @ w - b
        return a.T @ (2.0 * residual / (1.0 + residual**2)) + w

    weights = np.concatenate([w.ravel() for w in initial]).astype("float64")
    state, gradients = {}, []
    for t in range(1, STEPS + 1):
        g = gradient(weights).astype("float32")
        gradients.append(
            [
                piece.reshape(w.shape)
                for piece, w in zip(
                    np.split(g, np.cumsum(sizes)[:-1]), initial, strict=True
                )
            ]
        )
        weights = rule(state, weights, g.astype("float64"), learning_rate, t)
    return initial, gradients


def decoupled(rule, weight_decay):
    """Keras's decoupled weight decay: w <- w - eta * wd * w, then the rule."""

    @functools.wraps(rule)
    def step(s, w, g, lr, t):
        return rule(s, w - lr * weight_decay * w, g, lr, t)

    return step


def coupled(rule, l2):
    """The lecture's weight decay: G <- G + lambda * W, then the rule."""

    @functools.wraps(rule)
    def step(s, w, g, lr, t):
        return rule(s, w, g + l2 * w, lr, t)

    return step


# --- the table ---------------------------------------------------------------

RAMP = (0.5, 0.99, 20)
BASE_ROWS = [
    ("SGD", optimizers.SGD, {"learning_rate": 0.1}, sgd()),
    (
        "SGD-momentum",
        optimizers.SGD,
        {"learning_rate": 0.05, "momentum": 0.9},
        sgd(constant(0.9)),
    ),
    (
        "SGD-nesterov",
        optimizers.SGD,
        {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True},
        sgd(constant(0.8), nesterov=True),
    ),
    ("Momentum", optimizers.Momentum, {"learning_rate": 0.05}, sgd(constant(0.9))),
    (
        "Nesterov",
        optimizers.Nesterov,
        {"learning_rate": 0.05},
        sgd(constant(0.9), nesterov=True),
    ),
    (
        "Momentum-ramp",
        optimizers.Momentum,
        {"learning_rate": 0.05, "momentum": MomentumRamp(*RAMP)},
        sgd(ramp(*RAMP)),
    ),
    (
        "Nesterov-ramp",
        optimizers.Nesterov,
        {"learning_rate": 0.05, "momentum": MomentumRamp(*RAMP)},
        sgd(ramp(*RAMP), nesterov=True),
    ),
    ("Adagrad", optimizers.Adagrad, {"learning_rate": 0.1}, adagrad()),
    (
        "Adagrad-initial-epsilon",
        optimizers.Adagrad,
        {"learning_rate": 0.1, "initial_accumulator_value": 0.1, "epsilon": 1e-3},
        adagrad(0.1, 1e-3),
    ),
    ("RMSprop", optimizers.RMSprop, {"learning_rate": 0.01}, rmsprop()),
    (
        "RMSprop-momentum",
        optimizers.RMSprop,
        {"learning_rate": 0.01, "momentum": 0.9},
        rmsprop(momentum=0.9),
    ),
    (
        "RMSprop-centered",
        optimizers.RMSprop,
        {"learning_rate": 0.01, "centered": True},
        rmsprop(centered=True),
    ),
    (
        "RMSprop-centered-momentum-epsilon",
        optimizers.RMSprop,
        {
            "learning_rate": 0.01,
            "rho": 0.5,
            "momentum": 0.5,
            "centered": True,
            "epsilon": 1e-3,
        },
        rmsprop(rho=0.5, momentum=0.5, centered=True, epsilon=1e-3),
    ),
    ("Adadelta", optimizers.Adadelta, {}, adadelta()),
    (
        "Adadelta-rho-epsilon",
        optimizers.Adadelta,
        {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-3},
        adadelta(0.9, 1e-3),
    ),
    ("Adam", optimizers.Adam, {"learning_rate": 0.01}, adam()),
    (
        "Adam-amsgrad",
        optimizers.Adam,
        {"learning_rate": 0.01, "amsgrad": True},
        adam(amsgrad=True),
    ),
    (
        "Adam-epsilon",
        optimizers.Adam,
        {"learning_rate": 0.01, "epsilon": 1e-2, "beta_2": 0.99},
        adam(beta_2=0.99, epsilon=1e-2),
    ),
    (
        "Adam-beta1-ramp",
        optimizers.Adam,
        {"learning_rate": 0.01, "beta_1": MomentumRamp(*RAMP)},
        adam(beta_1=ramp(*RAMP)),
    ),
    ("Adamax", optimizers.Adamax, {}, adamax()),
    (
        "Adamax-epsilon-ramp",
        optimizers.Adamax,
        {"learning_rate": 0.2, "epsilon": 1e-2, "beta_1": MomentumRamp(*RAMP)},
        adamax(beta_1=ramp(*RAMP), epsilon=1e-2),
    ),
    ("Nadam", optimizers.Nadam, {"learning_rate": 0.01}, nadam()),
    (
        "Nadam-fast-warmup",
        optimizers.Nadam,
        {"learning_rate": 0.01, "momentum_decay": 0.5, "epsilon": 1e-3},
        nadam(psi=0.5, epsilon=1e-3),
    ),
    (
        "Nadam-beta1-ramp",
        optimizers.Nadam,
        {"learning_rate": 0.01, "beta_1": MomentumRamp(*RAMP)},
        nadam(beta_1=ramp(*RAMP)),
    ),
    (
        "DeltaBarDelta",
        optimizers.DeltaBarDelta,
        {"learning_rate": 0.1},
        delta_bar_delta(),
    ),
    (
        "DeltaBarDelta-clipped",
        optimizers.DeltaBarDelta,
        {
            "learning_rate": 0.1,
            "increment": 0.1,
            "decay": 0.7,
            "min_gain": 0.6,
            "max_gain": 1.25,
        },
        delta_bar_delta(increment=0.1, decay=0.7, min_gain=0.6, max_gain=1.25),
    ),
    (
        "DeltaBarDelta-momentum-clipped",
        optimizers.DeltaBarDelta,
        {"learning_rate": 0.05, "momentum": 0.8, "min_gain": 0.8, "max_gain": 1.1},
        delta_bar_delta(min_gain=0.8, max_gain=1.1, momentum=constant(0.8)),
    ),
    (
        "DeltaBarDelta-momentum-ramp",
        optimizers.DeltaBarDelta,
        {"learning_rate": 0.05, "momentum": MomentumRamp(*RAMP)},
        delta_bar_delta(momentum=ramp(*RAMP)),
    ),
    ("Rprop", optimizers.Rprop, {"learning_rate": 0.01}, rprop()),
    (
        "Rprop-clipped",
        optimizers.Rprop,
        {
            "learning_rate": 0.01,
            "eta_minus": 0.4,
            "eta_plus": 1.3,
            "min_step": 0.004,
            "max_step": 0.015,
        },
        rprop(eta_minus=0.4, eta_plus=1.3, min_step=0.004, max_step=0.015),
    ),
    ("LBFGS", optimizers.LBFGS, {"learning_rate": 0.5}, lbfgs()),
    (
        "LBFGS-history-5",
        optimizers.LBFGS,
        {"learning_rate": 0.5, "history_size": 5, "curvature_epsilon": 0.2},
        lbfgs(history_size=5, curvature_epsilon=0.2),
    ),
]

WEIGHT_DECAY = 0.05
L2 = 0.05
ROWS = (
    [pytest.param(cls, kw, ref, id=name) for name, cls, kw, ref in BASE_ROWS]
    + [
        pytest.param(
            cls,
            {**kw, "weight_decay": WEIGHT_DECAY},
            decoupled(ref, WEIGHT_DECAY),
            id=name + "-weight_decay",
        )
        for name, cls, kw, ref in BASE_ROWS
    ]
    + [
        pytest.param(cls, {**kw, "l2": L2}, coupled(ref, L2), id=name + "-l2")
        for name, cls, kw, ref in BASE_ROWS
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
    if getattr(rule, "whole_model", False):
        return run_whole_model_reference(rule, learning_rate, initial, gradients)
    weights = [w.astype("float64") for w in initial]
    states = [{} for _ in weights]
    for t, step in enumerate(gradients, start=1):
        weights = [
            rule(s, w, g.astype("float64"), learning_rate, t)
            for s, w, g in zip(states, weights, step, strict=True)
        ]
    return weights


def run_whole_model_reference(rule, learning_rate, initial, gradients):
    """Runs a rule that sees all variables as one concatenated vector."""
    sizes = [w.size for w in initial]
    weights = np.concatenate([w.ravel() for w in initial]).astype("float64")
    state = {}
    for t, step in enumerate(gradients, start=1):
        g = np.concatenate([g.ravel() for g in step]).astype("float64")
        weights = rule(state, weights, g, learning_rate, t)
    pieces = np.split(weights, np.cumsum(sizes)[:-1])
    return [p.reshape(w.shape) for p, w in zip(pieces, initial, strict=True)]


def run_optimizer(optimizer, initial, gradients):
    variables = [keras.Variable(w) for w in initial]
    for step in gradients:
        optimizer.apply(step, variables)
    return [keras.ops.convert_to_numpy(v).astype("float64") for v in variables]


@pytest.mark.parametrize("cls, kwargs, rule", ROWS)
def test_matches_float64_reference(cls, kwargs, rule):
    optimizer = cls(**kwargs)
    learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    initial, gradients = make_problem(rule, kwargs, learning_rate)
    expected = run_reference(rule, learning_rate, initial, gradients)
    actual = run_optimizer(optimizer, initial, gradients)
    for w0, got, want in zip(initial, actual, expected, strict=True):
        moved = want - w0
        assert np.max(np.abs(moved)) > 1e-3, "the test problem must move the weights"
        np.testing.assert_allclose(got - w0, moved, rtol=RTOL, atol=ATOL)


def test_every_optimizer_has_an_exactness_row():
    covered = {cls for _, cls, _, _ in BASE_ROWS}
    assert covered == set(optimizers.ALL_OPTIMIZERS)


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


#: The branches each row of the new sign- and curvature-driven optimizers
#: must take on its random problem, so that the comparison above covers them.
BRANCHES = {
    "DeltaBarDelta": {"grow", "shrink"},
    "DeltaBarDelta-clipped": {"grow", "shrink", "max_gain", "min_gain"},
    "DeltaBarDelta-momentum-clipped": {"grow", "shrink", "max_gain", "min_gain"},
    "DeltaBarDelta-momentum-ramp": {"grow", "shrink"},
    "Rprop": {"grow", "shrink"},
    "Rprop-clipped": {"grow", "shrink", "max_step", "min_step"},
    "LBFGS": {"accept", "wrap"},
    "LBFGS-history-5": {"accept", "skip", "wrap"},
}


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_rows_exercise_every_branch(name):
    """Sign flips, gain and step clipping, skipped curvature pairs and the
    wrap-around of the L-BFGS memory all occur in the rows' 30 steps."""
    _, cls, kwargs, rule = next(row for row in BASE_ROWS if row[0] == name)
    learning_rate = float(kwargs["learning_rate"])
    initial, gradients = make_problem(rule, kwargs, learning_rate)
    hits = set()
    if getattr(rule, "whole_model", False):
        state = {}
        weights = np.concatenate([w.ravel() for w in initial]).astype("float64")
        for t, step in enumerate(gradients, start=1):
            g = np.concatenate([g.ravel() for g in step]).astype("float64")
            weights = rule(state, weights, g, learning_rate, t)
        hits = state["hits"]
    else:
        for index, w in enumerate(initial):
            state, w = {}, w.astype("float64")
            for t, step in enumerate(gradients, start=1):
                w = rule(state, w, step[index].astype("float64"), learning_rate, t)
            hits |= state["hits"]
    assert BRANCHES[name] <= hits, f"{name} misses {BRANCHES[name] - hits}"
