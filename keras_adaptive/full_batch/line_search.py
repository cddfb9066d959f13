"""A strong-Wolfe line search on any scalar function phi(alpha).

`strong_wolfe` knows nothing of models or tensors: it calls
``phi(alpha) -> (phi(alpha), phi'(alpha))`` with Python floats and returns a
step length, so that it can be tested on plain scalar functions (as SciPy's
`scalar_search_wolfe2` is) and used along any search direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["WolfeStep", "cubic_minimizer", "strong_wolfe"]

#: Largest step length `strong_wolfe` tries by default (SciPy's L-BFGS-B
#: uses 1e10 as well).
ALPHA_MAX = 1e10


@dataclass(frozen=True)
class WolfeStep:
    """A step length found by `strong_wolfe`, with phi and phi' there.

    Attributes:
        alpha: the step length.
        value: phi(alpha), lower than phi(0).
        slope: phi'(alpha).
        wolfe: True if both strong Wolfe conditions hold; False if the
            search ran out of evaluations (or its interval shrank to `xtol`)
            and returned the lowest point that satisfies sufficient decrease.

    Example:
        >>> WolfeStep(alpha=1.0, value=-0.25, slope=0.0, wolfe=True).alpha
        1.0

    References:
        Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed.,
        Springer, §3.1 (the strong Wolfe conditions, eq. 3.7).
    """

    alpha: float
    value: float
    slope: float
    wolfe: bool


def cubic_minimizer(
    a: float, fa: float, da: float, b: float, fb: float, db: float
) -> float | None:
    r"""The minimiser of the cubic through (a, fa) and (b, fb) with slopes
    da and db, or None if it has none.

    .. math::

        d_1 &= \phi'(a) + \phi'(b) - 3\,\frac{\phi(a) - \phi(b)}{a - b} \\
        d_2 &= \operatorname{sign}(b - a)\,\sqrt{d_1^2 - \phi'(a)\,\phi'(b)} \\
        \alpha &= b - (b - a)\,
            \frac{\phi'(b) + d_2 - d_1}{\phi'(b) - \phi'(a) + 2 d_2}

    Example:
        The cubic through phi(a) = a^3 - 3a at a = 0 and a = 2 has its
        minimum at 1:

        >>> cubic_minimizer(0.0, 0.0, -3.0, 2.0, 2.0, 9.0)
        1.0

    References:
        Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed.,
        Springer, eq. 3.59.
    """
    if a == b or not all(map(math.isfinite, (fa, da, fb, db))):
        return None
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    radicand = d1 * d1 - da * db
    if radicand < 0.0:
        return None
    d2 = math.copysign(math.sqrt(radicand), b - a)
    denominator = db - da + 2.0 * d2
    if denominator == 0.0:
        return None
    result = b - (b - a) * (db + d2 - d1) / denominator
    return result if math.isfinite(result) else None


@dataclass(frozen=True)
class _Trial:
    alpha: float
    value: float
    slope: float


def strong_wolfe(
    phi: Callable[[float], tuple[float, float]],
    value: float,
    slope: float,
    alpha: float = 1.0,
    *,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evaluations: int = 20,
    alpha_max: float = ALPHA_MAX,
    xtol: float = 2.220446049250313e-16,
) -> WolfeStep | None:
    r"""A step length along a descent direction that satisfies the strong
    Wolfe conditions.

    With :math:`\phi(\alpha) = f(w + \alpha d)` and :math:`\phi'(0) < 0`,
    the step satisfies

    .. math::

        \phi(\alpha) &\le \phi(0) + c_1\, \alpha\, \phi'(0)
            \quad \text{and} \quad \phi(\alpha) < \phi(0)
            \qquad \text{(sufficient decrease)} \\
        |\phi'(\alpha)| &\le c_2\, |\phi'(0)| \qquad \text{(curvature)}

    found by bracketing and zoom (Nocedal & Wright 2006, Algorithms 3.5 and
    3.6). Bracketing tries `alpha`, then extrapolates to the minimiser of
    the cubic through the last two trials, kept within [1.1, 4] times the
    last increase (Moré & Thuente 1994), until a trial violates sufficient
    decrease, is not lower than the previous one, or has
    :math:`\phi' \ge 0`; zoom then takes the cubic's minimiser
    (`cubic_minimizer`) between the two ends, at least 10 % of the interval
    away from both (bisection if the cubic has none, a point next to the low
    end if the high end's value is not finite). A trial whose value or slope
    is not finite counts as a step too long.

    Differences from SciPy's `scalar_search_wolfe2`: one function returns
    both phi and phi' (one evaluation of a model gives both); when the
    evaluations run out, the lowest point with sufficient decrease is
    returned (flagged `wolfe=False`) instead of nothing.

    Args:
        phi: ``alpha -> (phi(alpha), phi'(alpha))``, Python or NumPy floats.
        value: phi(0).
        slope: phi'(0); must be negative (a descent direction).
        alpha: the first trial step; > 0.
        c1: sufficient-decrease constant, in (0, 1).
        c2: curvature constant, in (c1, 1).
        max_evaluations: calls of `phi` at most; >= 1.
        alpha_max: the largest step tried.
        xtol: zoom stops when its interval is narrower than `xtol` times
            the step (the precision of the weights: float32's epsilon for
            float32 weights).

    Returns:
        A `WolfeStep`, or None if no trial had a lower value than phi(0)
        with sufficient decrease.

    Raises:
        ValueError: if `slope` is not negative.

    Example:
        On phi(alpha) = (alpha - 2)^2, a first trial step of 3 overshoots
        (phi' > 0 there, too steep for c2 = 0.1), and zoom finds the minimum:

        >>> def phi(alpha):
        ...     return (alpha - 2.0) ** 2, 2.0 * (alpha - 2.0)
        >>> step = strong_wolfe(phi, 4.0, -4.0, alpha=3.0, c2=0.1)
        >>> step.alpha, step.value, step.wolfe
        (2.0, 0.0, True)

    References:
        Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed.,
        Springer, Algorithms 3.5 and 3.6, eq. 3.59.
        Moré, J. J. & Thuente, D. J. (1994). Line search algorithms with
        guaranteed sufficient decrease. ACM Transactions on Mathematical
        Software 20(3), 286-307.
    """
    if not slope < 0.0:
        raise ValueError(
            "strong_wolfe: `slope` must be negative (phi'(0) along a descent "
            f"direction); received slope={slope!r}."
        )
    search = _Search(phi, _Trial(0.0, value, slope), c1, c2, max_evaluations, xtol)
    return search.bracket(alpha, alpha_max)


class _Search:
    def __init__(self, phi, start, c1, c2, max_evaluations, xtol):
        self.phi, self.start = phi, start
        self.c1, self.c2 = c1, c2
        self.left = max_evaluations
        self.xtol = xtol

    def evaluate(self, alpha: float) -> _Trial:
        self.left -= 1
        value, slope = self.phi(alpha)
        value, slope = float(value), float(slope)
        if not (math.isfinite(value) and math.isfinite(slope)):
            value = math.inf
        return _Trial(alpha, value, slope)

    def sufficient(self, trial: _Trial) -> bool:
        bound = self.start.value + self.c1 * trial.alpha * self.start.slope
        return trial.value <= bound and trial.value < self.start.value

    def curvature(self, trial: _Trial) -> bool:
        return abs(trial.slope) <= -self.c2 * self.start.slope

    def result(self, trial: _Trial, wolfe: bool) -> WolfeStep | None:
        if trial is self.start:
            return None
        return WolfeStep(trial.alpha, trial.value, trial.slope, wolfe)

    def bracket(self, alpha: float, alpha_max: float) -> WolfeStep | None:
        previous = self.start
        while self.left > 0:
            current = self.evaluate(alpha)
            if not self.sufficient(current) or (
                previous is not self.start and current.value >= previous.value
            ):
                return self.zoom(previous, current)
            if self.curvature(current):
                return self.result(current, True)
            if current.slope >= 0.0:
                return self.zoom(current, previous)
            if alpha >= alpha_max:
                return self.result(current, False)
            alpha = min(_extrapolate(previous, current), alpha_max)
            previous = current
        return self.result(previous, False)

    def zoom(self, low: _Trial, high: _Trial) -> WolfeStep | None:
        """`low` satisfies sufficient decrease with the lowest value so far;
        the interval between `low` and `high` holds a strong-Wolfe point."""
        while self.left > 0:
            width = high.alpha - low.alpha
            if abs(width) <= self.xtol * max(abs(low.alpha), abs(high.alpha)):
                break
            current = self.evaluate(_interpolate(low, high))
            if not self.sufficient(current) or current.value >= low.value:
                high = current
                continue
            if self.curvature(current):
                return self.result(current, True)
            if current.slope * (high.alpha - low.alpha) >= 0.0:
                high = low
            low = current
        return self.result(low, False)


def _extrapolate(previous: _Trial, current: _Trial) -> float:
    """A longer trial step, from the cubic through the last two trials,
    kept within [1.1, 4] times the last increase."""
    width = current.alpha - previous.alpha
    low, high = current.alpha + 1.1 * width, current.alpha + 4.0 * width
    trial = cubic_minimizer(
        previous.alpha,
        previous.value,
        previous.slope,
        current.alpha,
        current.value,
        current.slope,
    )
    if trial is None or trial <= current.alpha:
        trial = high
    return min(max(trial, low), high)


def _interpolate(low: _Trial, high: _Trial) -> float:
    """The cubic's minimiser, at least 10 % of the interval away from its
    ends; next to `low` if `high` has no finite value."""
    width = high.alpha - low.alpha
    near, far = low.alpha + 0.1 * width, high.alpha - 0.1 * width
    if not math.isfinite(high.value):
        return near
    trial = cubic_minimizer(
        low.alpha, low.value, low.slope, high.alpha, high.value, high.slope
    )
    if trial is None:
        return low.alpha + 0.5 * width
    lower, upper = min(near, far), max(near, far)
    return min(max(trial, lower), upper)
