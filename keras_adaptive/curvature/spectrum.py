r"""Eigenvalues, trace and spectral density of a symmetric operator.

Each function sees the operator only through its product: ``matvec(v)``
returns :math:`H v` for a 1-D float64 NumPy array :math:`v` of length
``size``, and :math:`H` is symmetric (a Hessian). Nothing here knows about
Keras; `keras_adaptive.curvature.measure_curvature` applies these functions to
a model's Hessian-vector product.

* `extreme_eigenpairs`: the largest and, optionally, the smallest eigenvalues
  by block Lanczos with full reorthogonalisation (a Rayleigh-Ritz projection
  onto the block Krylov space), each with its residual
  :math:`\|H u - \lambda u\|`;
* `hutchinson_trace`: Hutchinson's estimate of :math:`\operatorname{tr} H`
  from Rademacher vectors, with its standard error;
* `spectral_density`: stochastic Lanczos quadrature, a smoothed estimate of
  the density of the eigenvalues.

All three are deterministic given `seed`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keras_adaptive._validation import check_integer, check_range, refuse

#: A symmetric linear operator, given by its product with a flat vector.
Matvec = Callable[[np.ndarray], np.ndarray]

#: A new Krylov direction shorter than this fraction of its length before
#: orthogonalisation lies in the space already built (to rounding); it is
#: replaced by a random direction.
_DEPENDENT = 1e-10


@dataclass(frozen=True)
class Eigenpairs:
    r"""Extreme eigenvalues of a symmetric operator, from `extreme_eigenpairs`.

    Attributes:
        largest: the `k` largest eigenvalues (largest algebraic), descending.
        largest_vectors: their unit eigenvectors, one per column
            (``size`` x `k`).
        largest_residuals: :math:`\|H u_i - \lambda_i u_i\|` of each, from the
            products computed (no further product is needed for them).
        smallest: the `smallest` smallest eigenvalues, ascending (empty unless
            asked for).
        smallest_vectors: their unit eigenvectors, one per column.
        smallest_residuals: their residuals.
        products: products :math:`H v` computed.
        converged: every residual is at most ``tolerance`` times the largest
            :math:`|\lambda|` found, or the Krylov space is the whole space.

    Each eigenvalue :math:`\lambda_i` reported lies within its residual of an
    exact eigenvalue of :math:`H` (for a symmetric operator, every interval
    :math:`[\lambda_i - r_i, \lambda_i + r_i]` holds one).

    References:
        B. N. Parlett (1998), "The Symmetric Eigenvalue Problem", SIAM,
        theorem 4.5.1 (the residual bound) and chapter 13 (block Lanczos).

    Example:
        >>> import numpy as np
        >>> from keras_adaptive.curvature import extreme_eigenpairs
        >>> pairs = extreme_eigenpairs(lambda v: np.array([3.0, 1.0]) * v, 2)
        >>> pairs.largest, pairs.converged
        (array([3.]), True)
    """

    largest: np.ndarray
    largest_vectors: np.ndarray
    largest_residuals: np.ndarray
    smallest: np.ndarray
    smallest_vectors: np.ndarray
    smallest_residuals: np.ndarray
    products: int
    converged: bool


@dataclass(frozen=True)
class TraceEstimate:
    r"""Hutchinson's estimate of a trace, from `hutchinson_trace`.

    Attributes:
        trace: the mean of :math:`z^\top H z` over the Rademacher vectors
            :math:`z`.
        standard_error: the sample standard deviation of :math:`z^\top H z`
            over :math:`\sqrt{\text{samples}}`.
        samples: Rademacher vectors used (one product each).
        products: products :math:`H v` computed (equal to `samples`).

    References:
        M. F. Hutchinson (1990), "A stochastic estimator of the trace of the
        influence matrix for Laplacian smoothing splines", Communications in
        Statistics - Simulation and Computation 19(2), 433-450.

    Example:
        >>> import numpy as np
        >>> from keras_adaptive.curvature import hutchinson_trace
        >>> estimate = hutchinson_trace(lambda v: np.array([3.0, 1.0]) * v, 2)
        >>> float(estimate.trace), float(estimate.standard_error)  # exact: diagonal
        (4.0, 0.0)
    """

    trace: float
    standard_error: float
    samples: int
    products: int


@dataclass(frozen=True)
class SpectralDensity:
    r"""Stochastic Lanczos quadrature of the eigenvalue density.

    The density of the eigenvalues, :math:`\phi(t) = \frac1n \sum_i
    \delta(t - \lambda_i)`, approximated by `weights` at `nodes`: for every
    polynomial :math:`p` of degree below :math:`2 \times` ``steps``,
    :math:`\sum_j w_j p(\theta_j)` equals the average of
    :math:`z^\top p(H) z / n` over the Rademacher vectors :math:`z`, an
    unbiased estimate of :math:`\frac1n \operatorname{tr} p(H)`.

    Attributes:
        nodes: the Ritz values :math:`\theta_j` of every run, one array.
        weights: their weights :math:`w_j` (>= 0, summing to 1).
        samples: Lanczos runs, each from its own Rademacher vector.
        products: products :math:`H v` computed.

    References:
        L. Lin, Y. Saad and C. Yang (2016), "Approximating spectral densities
        of large matrices", SIAM Review 58(1), 34-65, section 3.2;
        B. Ghorbani, S. Krishnan and Y. Xiao (2019), "An Investigation into
        Neural Net Optimization via Hessian Eigenvalue Density", ICML.

    Example:
        >>> import numpy as np
        >>> from keras_adaptive.curvature import spectral_density
        >>> density = spectral_density(lambda v: np.array([3.0, 1.0]) * v, 2, steps=2)
        >>> round(float(np.sum(density.weights * density.nodes)), 12)  # tr(H) / n
        2.0
    """

    nodes: np.ndarray
    weights: np.ndarray
    samples: int
    products: int

    def density(self, grid: np.ndarray, width: float) -> np.ndarray:
        r"""The density on `grid`, each node widened to a Gaussian.

        :math:`\phi_\sigma(t) = \sum_j w_j\, \mathcal N(t; \theta_j,
        \sigma^2)` with :math:`\sigma` = `width` > 0; it integrates to 1.
        """
        width = check_range(
            "SpectralDensity.density", "width", width, 0.0, low_closed=False
        )
        grid = np.asarray(grid, dtype="float64")
        offsets = (grid[..., None] - self.nodes) / width
        kernel = np.exp(-0.5 * offsets**2) / (width * math.sqrt(2 * math.pi))
        return kernel @ self.weights


class _KrylovSpace:
    """An orthonormal basis of a block Krylov space of `matvec`, with the
    products of every basis vector and the projection of the operator.

    With every new block orthogonalised twice against the whole basis (full
    reorthogonalisation), the projection ``basis.T @ H @ basis`` is the
    block tridiagonal matrix of block Lanczos, computed here from the stored
    products instead of the three-term recurrence, so that the Ritz pairs'
    residuals come out exactly, without further products.
    """

    def __init__(self, matvec: Matvec, size: int, owner: str):
        self.matvec = matvec
        self.size = size
        self.owner = owner
        self.basis = np.zeros((size, 0))
        self.images = np.zeros((size, 0))
        self.projection = np.zeros((0, 0))

    @property
    def dimension(self) -> int:
        return self.basis.shape[1]

    def extend(self, block: np.ndarray, rng: np.random.Generator) -> None:
        """Adds `block`'s columns, made orthonormal to the basis, and their
        products; a column already in the space becomes a random direction."""
        block = self._orthonormal(block, rng)
        images = np.stack(
            [_product(self.matvec, column, self.owner) for column in block.T], axis=1
        )
        cross = 0.5 * (self.basis.T @ images + self.images.T @ block)
        corner = block.T @ images
        corner = 0.5 * (corner + corner.T)
        self.projection = np.block([[self.projection, cross], [cross.T, corner]])
        self.basis = np.hstack([self.basis, block])
        self.images = np.hstack([self.images, images])

    def next_block(self, width: int) -> np.ndarray:
        """The products of the last block: the next block of the space."""
        return self.images[:, -width:]

    def ritz_pairs(self, indices: np.ndarray):
        """Ritz values, unit Ritz vectors and residual norms of the
        eigenpairs of the projection at `indices` (in ascending order of the
        eigenvalues), and the largest Ritz value in magnitude."""
        values, vectors = np.linalg.eigh(self.projection)
        scale = float(np.max(np.abs(values)))
        values, vectors = values[indices], vectors[:, indices]
        ritz = self.basis @ vectors
        residuals = np.linalg.norm(self.images @ vectors - ritz * values, axis=0)
        return values, ritz, residuals, scale

    def _orthonormal(self, block: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        columns = []
        for column in block.T:
            for _ in range(3):  # twice is enough, once more after a restart
                length = np.linalg.norm(column)
                for _ in range(2):
                    column = self._orthogonalise(column, columns)
                if np.linalg.norm(column) > _DEPENDENT * length:
                    break
                column = rng.standard_normal(self.size)
            columns.append(column / np.linalg.norm(column))
        return np.stack(columns, axis=1)

    def _orthogonalise(self, column: np.ndarray, columns: list) -> np.ndarray:
        column = column - self.basis @ (self.basis.T @ column)
        for other in columns:
            column = column - other * (other @ column)
        return column


def _product(matvec: Matvec, vector: np.ndarray, owner: str) -> np.ndarray:
    """``matvec(vector)`` as a float64 array, checked."""
    image = np.asarray(matvec(vector), dtype="float64")
    if image.shape != vector.shape:
        raise ValueError(
            f"{owner}: `matvec` must return a 1-D array of length "
            f"size={vector.size}; it returned shape {image.shape}."
        )
    if not np.all(np.isfinite(image)):
        raise FloatingPointError(
            f"{owner}: the product H v is not finite (NaN or infinite "
            "entries): the loss or its second derivatives overflow at these "
            "weights; measure the curvature at finite weights, or in float64."
        )
    return image


def _check_operator(owner: str, matvec, size) -> int:
    if not callable(matvec):
        refuse(owner, "matvec", matvec, "a callable returning H v for a 1-D array v")
    return check_integer(owner, "size", size, 1)


def extreme_eigenpairs(
    matvec: Matvec,
    size: int,
    k: int = 1,
    *,
    smallest: int = 0,
    tolerance: float = 1e-3,
    max_products: int | None = None,
    seed: int = 0,
) -> Eigenpairs:
    r"""The largest (and smallest) eigenvalues of a symmetric operator.

    Block Lanczos with full reorthogonalisation: from a random block of
    :math:`b = \max(k, \text{smallest})` orthonormal vectors :math:`Q_1`,
    the basis of the block Krylov space
    :math:`\operatorname{span}\{Q_1, H Q_1, H^2 Q_1, \dots\}` grows by one
    block of products at a time, and the eigenpairs
    :math:`(\theta_i, y_i)` of the projection :math:`V^\top H V` give the
    Ritz pairs :math:`(\theta_i, V y_i)`. It stops when the residuals

    .. math::

        r_i = \| H V y_i - \theta_i V y_i \| \le \text{tolerance} \cdot
        \max_j |\theta_j|

    for every wanted pair, when the space is the whole space (the values are
    then exact), or when the next block would exceed `max_products`.

    For a symmetric :math:`H` each :math:`\theta_i` lies within :math:`r_i`
    of an eigenvalue, and typically much closer (within
    :math:`r_i^2 / \text{gap}`). A block of :math:`b` vectors finds an
    eigenvalue repeated up to :math:`b` times as often as it occurs (one
    vector would see only one copy); power iteration with deflation
    (PyHessian) finds the same values with many more products.

    Args:
        matvec: the product :math:`v \mapsto H v` of a symmetric :math:`H`,
            on 1-D float64 arrays of length `size`.
        size: the dimension of :math:`H`, >= 1.
        k: how many of the largest eigenvalues, in [1, size].
        smallest: how many of the smallest eigenvalues, in [0, size]; the
            smallest exposes negative curvature.
        tolerance: the relative residual at which to stop, in (0, 1).
        max_products: the most products to compute (default: 100 blocks);
            at least one block.
        seed: seed of the random starting block.

    Returns:
        The `Eigenpairs`; ``converged`` is False, with a `RuntimeWarning`
        naming the residuals, when `max_products` ran out first.

    Raises:
        ValueError: for an argument out of range, or a `matvec` returning
            the wrong shape.
        FloatingPointError: when a product is not finite.

    References:
        * C. Lanczos (1950), "An iteration method for the solution of the
          eigenvalue problem of linear differential and integral operators",
          J. Res. Nat. Bur. Standards 45, 255-282.
        * G. H. Golub and R. Underwood (1977), "The block Lanczos method for
          computing eigenvalues", Mathematical Software III, 361-377.
        * Z. Yao, A. Gholami, K. Keutzer and M. W. Mahoney (2020), "PyHessian:
          Neural Networks Through the Lens of the Hessian", IEEE BigData
          (power iteration with deflation).

    Example:
        The Hessian of :math:`E(w) = w_1^2 + 3 w_2^2 - w_3^2`:

        >>> import numpy as np
        >>> from keras_adaptive.curvature import extreme_eigenpairs
        >>> hessian = np.diag([2.0, 6.0, -2.0])
        >>> pairs = extreme_eigenpairs(lambda v: hessian @ v, 3, k=2, smallest=1)
        >>> pairs.largest.round(6).tolist(), pairs.smallest.round(6).tolist()
        ([6.0, 2.0], [-2.0])
    """
    owner = "extreme_eigenpairs"
    size = _check_operator(owner, matvec, size)
    k = check_integer(owner, "k", k, 1, size)
    smallest = check_integer(owner, "smallest", smallest, 0, size)
    tolerance = check_range(owner, "tolerance", tolerance, 0.0, 1.0, low_closed=False)
    block_size = max(k, smallest)
    if max_products is None:
        max_products = 100 * block_size
    max_products = check_integer(owner, "max_products", max_products, block_size)
    rng = np.random.default_rng(seed)
    space = _KrylovSpace(matvec, size, owner)
    block = rng.standard_normal((size, block_size))
    while True:
        space.extend(block, rng)
        dimension = space.dimension
        # Ascending order of the projection's eigenvalues: the k largest
        # (descending), then the smallest (ascending).
        indices = np.r_[
            np.arange(dimension - 1, dimension - 1 - k, -1), np.arange(smallest)
        ]
        values, vectors, residuals, scale = space.ritz_pairs(indices)
        converged = dimension == size or bool(np.all(residuals <= tolerance * scale))
        width = min(block_size, size - dimension)
        if converged or dimension + width > max_products:
            break
        block = space.next_block(width)
    if not converged:
        warnings.warn(
            f"{owner}: not converged after {dimension} products: the relative "
            f"residuals are {[float(f'{r:.2g}') for r in residuals / scale]}, above "
            f"tolerance={tolerance}; raise max_products (now {max_products}) or "
            "tolerance.",
            RuntimeWarning,
            stacklevel=2,
        )
    top, bottom = slice(0, k), slice(k, None)
    return Eigenpairs(
        largest=values[top],
        largest_vectors=vectors[:, top],
        largest_residuals=residuals[top],
        smallest=values[bottom],
        smallest_vectors=vectors[:, bottom],
        smallest_residuals=residuals[bottom],
        products=dimension,
        converged=converged,
    )


def _rademacher(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.integers(0, 2, size).astype("float64") * 2.0 - 1.0


def hutchinson_trace(
    matvec: Matvec, size: int, samples: int = 16, *, seed: int = 0
) -> TraceEstimate:
    r"""Hutchinson's estimate of :math:`\operatorname{tr} H`, with its standard
    error.

    For vectors :math:`z` of independent random signs :math:`\pm 1`,
    :math:`\mathbb E[z^\top H z] = \operatorname{tr} H`; the estimate is the
    mean over `samples` vectors (one product each), and its standard error
    the sample standard deviation over :math:`\sqrt{\text{samples}}`, so
    four times the samples halve it. The variance of one sample is
    :math:`2 \sum_{i \ne j} H_{ij}^2`: exact for a diagonal :math:`H`.

    Args:
        matvec: the product :math:`v \mapsto H v` of a symmetric :math:`H`.
        size: the dimension of :math:`H`, >= 1.
        samples: Rademacher vectors, >= 2 (a standard error needs two).
        seed: seed of the vectors.

    Returns:
        The `TraceEstimate`.

    Raises:
        ValueError: for an argument out of range, or a `matvec` returning
            the wrong shape.
        FloatingPointError: when a product is not finite.

    References:
        * M. F. Hutchinson (1990), "A stochastic estimator of the trace of the
          influence matrix for Laplacian smoothing splines", Communications in
          Statistics - Simulation and Computation 19(2), 433-450.
        * H. Avron and S. Toledo (2011), "Randomized algorithms for
          estimating the trace of an implicit symmetric positive
          semi-definite matrix", J. ACM 58(2).

    Example:
        >>> import numpy as np
        >>> from keras_adaptive.curvature import hutchinson_trace
        >>> hessian = np.array([[2.0, 0.5], [0.5, 1.0]])
        >>> estimate = hutchinson_trace(lambda v: hessian @ v, 2, samples=400)
        >>> abs(estimate.trace - 3.0) < 3 * estimate.standard_error
        True
    """
    owner = "hutchinson_trace"
    size = _check_operator(owner, matvec, size)
    samples = check_integer(owner, "samples", samples, 2)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        z = _rademacher(rng, size)
        values.append(float(z @ _product(matvec, z, owner)))
    values = np.asarray(values)
    return TraceEstimate(
        trace=float(values.mean()),
        standard_error=float(values.std(ddof=1) / math.sqrt(samples)),
        samples=samples,
        products=samples,
    )


def spectral_density(
    matvec: Matvec,
    size: int,
    *,
    steps: int = 30,
    samples: int = 1,
    seed: int = 0,
) -> SpectralDensity:
    r"""Stochastic Lanczos quadrature: the density of the eigenvalues.

    For each of `samples` Rademacher vectors :math:`z`, `steps` Lanczos
    steps from :math:`q_1 = z / \sqrt n` give the tridiagonal projection
    :math:`T = Q^\top H Q` with eigenpairs :math:`(\theta_j, y_j)`; the
    Gauss quadrature nodes :math:`\theta_j` get the weights
    :math:`(e_1^\top y_j)^2 / \text{samples}`. Then

    .. math::

        \sum_j w_j\, f(\theta_j) \approx \frac{1}{n}
        \operatorname{tr} f(H) = \int f(t)\, \phi(t)\, dt,

    exact in expectation for polynomials of degree below
    :math:`2 \times` `steps`. `SpectralDensity.density` widens each node
    into a Gaussian for a plot.

    Args:
        matvec: the product :math:`v \mapsto H v` of a symmetric :math:`H`.
        size: the dimension of :math:`H`, >= 1.
        steps: Lanczos steps (products) per run, in [1, size].
        samples: runs, each from its own Rademacher vector, >= 1.
        seed: seed of the vectors.

    Returns:
        The `SpectralDensity`.

    Raises:
        ValueError: for an argument out of range, or a `matvec` returning
            the wrong shape.
        FloatingPointError: when a product is not finite.

    References:
        * L. Lin, Y. Saad and C. Yang (2016), "Approximating spectral densities
          of large matrices", SIAM Review 58(1), 34-65, section 3.2.
        * G. H. Golub and G. Meurant (2010), "Matrices, Moments and
          Quadrature with Applications", Princeton University Press.
        * B. Ghorbani, S. Krishnan and Y. Xiao (2019), "An Investigation into
          Neural Net Optimization via Hessian Eigenvalue Density", ICML.

    Example:
        For a diagonal :math:`H` every Rademacher vector sees every
        eigenvalue with the weight :math:`1/n`:

        >>> import numpy as np
        >>> from keras_adaptive.curvature import spectral_density
        >>> hessian = np.array([1.0, 2.0, 4.0])
        >>> density = spectral_density(lambda v: hessian * v, 3, steps=3)
        >>> density.nodes.round(6).tolist(), density.weights.round(6).tolist()
        ([1.0, 2.0, 4.0], [0.333333, 0.333333, 0.333333])
    """
    owner = "spectral_density"
    size = _check_operator(owner, matvec, size)
    steps = check_integer(owner, "steps", steps, 1, size)
    samples = check_integer(owner, "samples", samples, 1)
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(samples):
        space = _KrylovSpace(matvec, size, owner)
        block = _rademacher(rng, size)[:, None]
        for _ in range(steps):
            space.extend(block, rng)
            block = space.next_block(1)
        values, vectors = np.linalg.eigh(space.projection)
        nodes.append(values)
        weights.append(vectors[0] ** 2 / samples)
    return SpectralDensity(
        nodes=np.concatenate(nodes),
        weights=np.concatenate(weights),
        samples=samples,
        products=samples * steps,
    )
