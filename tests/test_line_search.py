"""`keras_adaptive.full_batch.strong_wolfe` alone, on scalar functions.

The functions are SciPy's own test functions of its scalar Wolfe searches
(scipy/optimize/tests/test_linesearch.py: -s - s^3 + s^4,
exp(-4 s) + s^2 and -sin(10 s)), three quadratics and a cubic with known
minimisers. Every returned step is checked against both strong Wolfe
conditions from phi and phi' in the test, and the evaluations are counted
beside `scipy.optimize` `scalar_search_wolfe2` on the same functions, from
the same first trial step.
"""

import math

import numpy as np
import pytest
from scipy.optimize._linesearch import scalar_search_wolfe2

from keras_adaptive.full_batch import WolfeStep, cubic_minimizer, strong_wolfe


def scipy_1(s):
    return -s - s**3 + s**4, -1 - 3 * s**2 + 4 * s**3


def scipy_2(s):
    return np.exp(-4 * s) + s**2, -4 * np.exp(-4 * s) + 2 * s


def scipy_3(s):
    return -np.sin(10 * s), -10 * np.cos(10 * s)


def quadratic(curvature, minimiser):
    def phi(s):
        return curvature * (s - minimiser) ** 2, 2 * curvature * (s - minimiser)

    return phi


#: name -> (phi, minimiser along alpha > 0, or None where several local
#: minima make the step's target depend on the trial steps).
FUNCTIONS = {
    "scipy_1": (scipy_1, None),
    "scipy_2": (scipy_2, None),
    "scipy_3": (scipy_3, None),
    "quadratic, minimum at 2": (quadratic(1.0, 2.0), 2.0),
    "steep quadratic, minimum at 0.01": (quadratic(100.0, 0.01), 0.01),
    "flat quadratic, minimum at 50": (quadratic(0.001, 50.0), 50.0),
    "cubic s^3 - 3 s, minimum at 1": (lambda s: (s**3 - 3 * s, 3 * s**2 - 3), 1.0),
}


def first_steps(name, phi):
    """SciPy's test draws old_phi0 from this generator and sets the first
    step to min(1, 2.02 (phi(0) - old_phi0) / phi'(0)) (1 if negative);
    the other functions start too short, at 1 and too long."""
    if name.startswith("scipy"):
        rng = np.random.default_rng(2231892908)
        value, slope = phi(0.0)
        steps = []
        for old_value in rng.standard_normal(3):
            step = min(1.0, 1.01 * 2 * (value - old_value) / slope)
            steps.append(1.0 if step < 0 else step)
        return steps
    return [0.1, 1.0, 10.0]


CASES = [
    (name, alpha, c2)
    for name, (phi, _) in FUNCTIONS.items()
    for alpha in first_steps(name, phi)
    for c2 in (0.9, 0.1)
]


class Counted:
    """phi with a record of the step lengths it was evaluated at."""

    def __init__(self, phi):
        self.phi = phi
        self.alphas = set()

    def __call__(self, alpha):
        self.alphas.add(float(alpha))
        return self.phi(alpha)

    def value(self, alpha):
        return self(alpha)[0]

    def slope(self, alpha):
        return self(alpha)[1]


def assert_strong_wolfe(phi, step, c1, c2):
    value0, slope0 = phi(0.0)
    value, slope = phi(step.alpha)
    assert step.value == value and step.slope == slope
    assert value <= value0 + c1 * step.alpha * slope0, "sufficient decrease"
    assert abs(slope) <= c2 * abs(slope0), "curvature"


@pytest.mark.parametrize(("name", "alpha", "c2"), CASES)
def test_every_step_satisfies_both_strong_wolfe_conditions(name, alpha, c2):
    phi, minimiser = FUNCTIONS[name]
    value0, slope0 = phi(0.0)
    step = strong_wolfe(phi, value0, slope0, alpha, c2=c2)
    assert isinstance(step, WolfeStep) and step.wolfe
    assert_strong_wolfe(phi, step, 1e-4, c2)
    if "quadratic" in name:
        # |phi'(s)| <= c2 |phi'(0)| means |s - s*| <= c2 s*.
        assert abs(step.alpha - minimiser) <= c2 * minimiser * (1 + 1e-12)
    elif "cubic" in name:
        # The cubic: phi'(s) = 3 (s^2 - 1) within c2 * 3 of 0.
        assert abs(step.alpha**2 - 1) <= c2 * (1 + 1e-12)


def test_evaluations_against_scipy(capsys):
    """Both searches from the same first step (SciPy's first step is
    min(1, 2.02 (phi(0) - old_phi0) / phi'(0)): old_phi0 is chosen to give
    it; SciPy cannot start above 1, so those rows start it at 1 and are left
    out of the totals), c1 = 1e-4. An evaluation is a step length at which
    phi or phi' was computed."""
    rows, totals = [], {"ours": 0, "scipy": 0}
    for name, alpha, c2 in CASES:
        phi, _ = FUNCTIONS[name]
        value0, slope0 = phi(0.0)
        ours = Counted(phi)
        assert strong_wolfe(ours, value0, slope0, alpha, c2=c2).wolfe
        theirs = Counted(phi)
        old_value = value0 - alpha * slope0 / 2.02 if alpha <= 1.0 else None
        found, *_ = scalar_search_wolfe2(
            theirs.value, theirs.slope, value0, old_value, slope0, c2=c2
        )
        counts = (len(ours.alphas), len(theirs.alphas - {0.0}))
        note = "" if found is not None else "  SciPy found no step"
        if alpha > 1.0:
            note += "  SciPy started at 1"
        else:
            totals["ours"] += counts[0]
            totals["scipy"] += counts[1]
        rows.append(
            f"{name:34s} {alpha:8.3g} {c2:4.1f} {counts[0]:5d} {counts[1]:6d}{note}"
        )
    with capsys.disabled():
        print("\nfunction                           1st step   c2  ours  SciPy")
        print("\n".join(rows))
        print(f"same first step: ours {totals['ours']}, SciPy {totals['scipy']}")
    assert totals["ours"] <= totals["scipy"]


def test_a_non_finite_trial_counts_as_too_long():
    def phi(s):  # the quadratic (s - 2)^2, undefined beyond s = 3
        if s > 3.0:
            return math.nan, math.nan
        return (s - 2.0) ** 2, 2.0 * (s - 2.0)

    step = strong_wolfe(phi, 4.0, -4.0, alpha=100.0, c2=0.1)
    assert step.wolfe and abs(step.alpha - 2.0) <= 0.2


def test_out_of_evaluations_returns_the_lowest_sufficient_point():
    phi = quadratic(1.0, 1000.0)  # the first steps are far too short
    value0, slope0 = phi(0.0)
    step = strong_wolfe(phi, value0, slope0, alpha=1.0, max_evaluations=3, c2=0.1)
    assert not step.wolfe
    assert step.value < value0 + 1e-4 * step.alpha * slope0
    # Extrapolation grows the step at least 2.1-fold and at most 5-fold.
    assert 1.0 + 2 * 1.1 <= step.alpha <= 1.0 + 4 + 5 * 4


def test_no_decrease_gives_none():
    phi = quadratic(1.0, 1.0)
    value0, slope0 = phi(0.0)
    assert strong_wolfe(phi, value0, slope0, alpha=1e6, max_evaluations=2) is None


def test_a_slope_that_is_not_negative_raises():
    with pytest.raises(ValueError, match=r"`slope` must be negative.*slope=0.5"):
        strong_wolfe(quadratic(1.0, 1.0), 1.0, 0.5)


def test_cubic_minimizer_is_exact_for_a_cubic():
    coefficients = np.array([0.5, -1.0, -2.0, 3.0])  # 0.5 a^3 - a^2 - 2 a + 3
    value = np.poly1d(coefficients)
    slope = value.deriv()
    roots = slope.roots
    minimum = roots[value.deriv(2)(roots) > 0][0]
    for a, b in [(0.0, 1.0), (3.0, -0.5), (0.5, 4.0)]:
        found = cubic_minimizer(a, value(a), slope(a), b, value(b), slope(b))
        assert found == pytest.approx(minimum, rel=1e-12)
    # A cubic with a monotone slope has no minimiser.
    assert cubic_minimizer(0.0, 0.0, 1.0, 1.0, 1.0 + 1.0 / 3.0, 2.0) is None
