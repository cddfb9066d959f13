"""The curvature algorithms on explicit symmetric matrices (NumPy only).

The references are `numpy.linalg.eigvalsh`, exact traces and the
closed-form variance of Hutchinson's estimator.
"""

import math

import numpy as np
import pytest

from keras_adaptive.curvature import (
    extreme_eigenpairs,
    hutchinson_trace,
    spectral_density,
)


def symmetric(eigenvalues, seed=0):
    """A dense symmetric matrix with the given eigenvalues."""
    rng = np.random.default_rng(seed)
    size = len(eigenvalues)
    basis, _ = np.linalg.qr(rng.standard_normal((size, size)))
    return (basis * np.asarray(eigenvalues)) @ basis.T


def spread_spectrum(size=120, seed=0):
    """An outlier, a few large values and a bulk with negative curvature, as
    in a network's Hessian."""
    rng = np.random.default_rng(seed)
    bulk = rng.uniform(-0.5, 2.0, size - 4)
    return np.concatenate([[40.0, 25.0, 18.0, -3.0], bulk])


def test_largest_and_smallest_eigenvalues_with_their_residuals():
    matrix = symmetric(spread_spectrum())
    exact = np.linalg.eigvalsh(matrix)
    pairs = extreme_eigenpairs(lambda v: matrix @ v, 120, 3, smallest=2, tolerance=1e-9)

    assert pairs.converged
    np.testing.assert_allclose(pairs.largest, exact[::-1][:3], rtol=1e-12)
    np.testing.assert_allclose(pairs.smallest, exact[:2], rtol=1e-10)
    values = np.r_[pairs.largest, pairs.smallest]
    vectors = np.hstack([pairs.largest_vectors, pairs.smallest_vectors])
    residuals = np.r_[pairs.largest_residuals, pairs.smallest_residuals]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=0), 1.0, rtol=1e-12)
    explicit = np.linalg.norm(matrix @ vectors - vectors * values, axis=0)
    np.testing.assert_allclose(residuals, explicit, rtol=1e-6, atol=1e-13)
    assert np.all(residuals <= 1e-9 * 40.0)
    assert pairs.products < 120  # stopped before the whole space


def test_top_eigenvalue_of_a_separated_spectrum_takes_few_products():
    matrix = symmetric(spread_spectrum())
    pairs = extreme_eigenpairs(lambda v: matrix @ v, 120, tolerance=1e-3)
    assert pairs.converged and pairs.products <= 15
    assert pairs.largest[0] == pytest.approx(40.0, rel=1e-6)
    assert pairs.largest_residuals[0] <= 1e-3 * 40.0


def test_a_repeated_eigenvalue_is_found_as_often_as_it_occurs():
    # One starting vector sees one copy of a repeated eigenvalue; the block
    # of k vectors sees k copies.
    eigenvalues = np.r_[[5.0, 5.0, 5.0, 3.0], np.linspace(-1.0, 1.0, 36)]
    matrix = symmetric(eigenvalues, seed=1)
    pairs = extreme_eigenpairs(lambda v: matrix @ v, 40, 4, tolerance=1e-10)
    np.testing.assert_allclose(pairs.largest, [5.0, 5.0, 5.0, 3.0], rtol=1e-10)
    gram = pairs.largest_vectors.T @ pairs.largest_vectors
    np.testing.assert_allclose(gram, np.eye(4), atol=1e-10)


def test_values_are_exact_once_the_space_is_the_whole_space():
    matrix = symmetric([4.0, 2.0, 1.0, -1.0, -2.5], seed=2)
    pairs = extreme_eigenpairs(lambda v: matrix @ v, 5, 2, smallest=2, tolerance=1e-15)
    assert pairs.converged and pairs.products == 5
    np.testing.assert_allclose(pairs.largest, [4.0, 2.0], rtol=1e-13)
    np.testing.assert_allclose(pairs.smallest, [-2.5, -1.0], rtol=1e-13)


def test_an_invariant_starting_space_is_left_for_a_random_direction():
    # A diagonal operator with a starting vector that happens to be an
    # eigenvector must still find the largest eigenvalue.
    diagonal = np.r_[1.0, 7.0, 3.0]

    def matvec(v):
        return diagonal * v

    pairs = extreme_eigenpairs(matvec, 3, 3, tolerance=1e-12)
    np.testing.assert_allclose(pairs.largest, [7.0, 3.0, 1.0], rtol=1e-13)


def test_same_seed_same_result():
    matrix = symmetric(spread_spectrum())
    first, second, other = (
        extreme_eigenpairs(lambda v: matrix @ v, 120, 2, seed=seed)
        for seed in (3, 3, 4)
    )
    np.testing.assert_array_equal(first.largest, second.largest)
    np.testing.assert_array_equal(first.largest_vectors, second.largest_vectors)
    assert first.products == second.products
    assert not np.array_equal(first.largest_vectors, other.largest_vectors)


def test_warns_when_the_products_run_out():
    matrix = symmetric(np.linspace(1.0, 2.0, 60))  # no gap: slow convergence
    with pytest.warns(RuntimeWarning, match="not converged after 4 products"):
        pairs = extreme_eigenpairs(
            lambda v: matrix @ v, 60, tolerance=1e-9, max_products=4
        )
    assert not pairs.converged and pairs.products == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 0}, "`size` must be an integer >= 1; received size=0"),
        ({"k": 0}, r"`k` must be an integer in \[1, 6\]; received k=0"),
        ({"k": 7}, r"`k` must be an integer in \[1, 6\]; received k=7"),
        ({"smallest": -1}, r"`smallest` must be an integer in \[0, 6\]"),
        ({"tolerance": 0.0}, r"`tolerance` must be a float in \(0.0, 1.0\)"),
        ({"tolerance": 1.0}, r"`tolerance` must .*; received tolerance=1.0"),
        ({"k": 3, "max_products": 2}, "`max_products` must be an integer >= 3"),
        ({"matvec": "H"}, "`matvec` must be a callable"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    arguments = {"matvec": lambda v: 2.0 * v, "size": 6, **kwargs}
    with pytest.raises(ValueError, match="extreme_eigenpairs: " + message):
        extreme_eigenpairs(**arguments)


def test_a_product_of_the_wrong_shape_or_not_finite_is_refused():
    with pytest.raises(ValueError, match=r"length size=4; it returned shape \(3,\)"):
        extreme_eigenpairs(lambda v: v[:3], 4)
    with pytest.raises(FloatingPointError, match="product H v is not finite"):
        hutchinson_trace(lambda v: v * np.nan, 4)


def test_hutchinson_trace_within_three_standard_errors_which_halve_with_4x_samples():
    matrix = symmetric(spread_spectrum(80), seed=5)
    exact = np.trace(matrix)
    # Var(z'Hz) = 2 * sum_{i != j} H_ij^2 for Rademacher z.
    variance = 2.0 * (np.sum(matrix**2) - np.sum(np.diag(matrix) ** 2))
    errors = []
    for samples in (400, 1600):
        estimate = hutchinson_trace(lambda v: matrix @ v, 80, samples, seed=0)
        assert estimate.samples == estimate.products == samples
        assert abs(estimate.trace - exact) < 3 * estimate.standard_error
        expected = math.sqrt(variance / samples)
        assert estimate.standard_error == pytest.approx(expected, rel=0.1)
        errors.append(estimate.standard_error)
    assert errors[1] / errors[0] == pytest.approx(0.5, rel=0.1)


def test_hutchinson_trace_of_a_diagonal_is_exact():
    diagonal = np.r_[3.0, -1.0, 0.5]
    estimate = hutchinson_trace(lambda v: diagonal * v, 3, samples=2)
    assert estimate.trace == 2.5 and estimate.standard_error == 0.0


def test_hutchinson_trace_needs_two_samples():
    with pytest.raises(ValueError, match="`samples` must be an integer >= 2"):
        hutchinson_trace(lambda v: v, 3, samples=1)


def test_spectral_density_moments_are_exact_for_a_diagonal():
    # Every Rademacher z gives z' D^p z = tr(D^p), so the quadrature with
    # m steps reproduces tr(D^p) / n for every p < 2m.
    diagonal = np.linspace(-1.0, 3.0, 50) ** 3
    steps = 6
    density = spectral_density(lambda v: diagonal * v, 50, steps=steps, samples=2)
    assert density.products == 12 and density.samples == 2
    assert np.all(density.weights >= 0)
    assert np.sum(density.weights) == pytest.approx(1.0, rel=1e-12)
    for power in range(2 * steps):
        quadrature = np.sum(density.weights * density.nodes**power)
        assert quadrature == pytest.approx(np.mean(diagonal**power), rel=1e-8)


def test_spectral_density_integrates_to_one_and_finds_the_outliers():
    matrix = symmetric(spread_spectrum(), seed=6)
    density = spectral_density(lambda v: matrix @ v, 120, steps=40, samples=3)
    grid = np.linspace(-10.0, 50.0, 6001)
    values = density.density(grid, width=0.2)
    assert np.sum(values) * (grid[1] - grid[0]) == pytest.approx(1.0, rel=1e-6)
    assert np.max(density.nodes) == pytest.approx(40.0, rel=1e-8)
    assert np.min(density.nodes) == pytest.approx(-3.0, rel=1e-6)
    with pytest.raises(ValueError, match="density: `width` must be a float in"):
        density.density(grid, width=0.0)
    with pytest.raises(ValueError, match=r"`steps` must be an integer in \[1, 120\]"):
        spectral_density(lambda v: matrix @ v, 120, steps=121)
