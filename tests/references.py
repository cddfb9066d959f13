"""Float64 NumPy references of every update rule, for `test_exactness.py`.

Each reference is written from the equations in the papers and the lectures,
not from the package's code: one function per algorithm returns the step
rule, which takes the per-variable state (a dict), the weights, the gradient,
the learning rate and the step number t (from 1), and returns the new
weights. A rule may record in ``state["hits"]`` the branches it took (a sign
flip, a clipped value, a skipped pair), which the table's reference cases
list under ``branches``. A rule with ``whole_model = True`` sees all
variables as one concatenated vector; one with a ``problem`` attribute names
the problem (initial weights and gradients) it must run on.

`tests/optimizer_table.py` names these functions in each row's
``references``.
"""

import functools
import math

import numpy as np

#: The variables of the exactness problems and the number of steps.
SHAPES = [(), (7,), (4, 3), (2, 3, 2, 2)]
STEPS = 30


def ramp(initial, final, ramp_steps):
    """The momentum ramp, written independently of MomentumRamp."""

    def value(step):
        progress = min(max(step / ramp_steps, 0.0), 1.0)
        return initial + (final - initial) * (1 - math.cos(math.pi * progress)) / 2

    return value


def constant(value):
    return lambda step: value


def record_branches(state, **taken):
    """Adds to ``state["hits"]`` each branch taken by at least one element."""
    state.setdefault("hits", set()).update(
        name for name, elements in taken.items() if np.any(elements)
    )


NO_MOMENTUM = constant(0.0)
BETA_1 = constant(0.9)


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


def adapt_by_sign(s, product, values, low, high):
    """The grown, shrunk or kept value of `values` where the product of
    successive gradients (or directions) is > 0, < 0 or 0, clipped to
    [low, high]. Records the branches "grow", "shrink", "max" and "min" (a
    value clipped at `high` or at `low`)."""
    grown, shrunk, kept = values
    value = np.where(product > 0, grown, np.where(product < 0, shrunk, kept))
    record_branches(
        s,
        grow=product > 0,
        shrink=product < 0,
        max=value > high,
        min=value < low,
    )
    return np.minimum(np.maximum(value, low), high)


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
        s["gain"] = adapt_by_sign(
            s, product, (gain + increment, gain * decay, gain), min_gain, max_gain
        )
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
        s["delta"] = adapt_by_sign(
            s, product, (delta * eta_plus, delta * eta_minus, delta), min_step, max_step
        )
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
