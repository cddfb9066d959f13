r"""The curvature of a compiled model's loss and the learning rates it implies.

`measure_curvature` applies the algorithms of
`keras_adaptive.curvature.spectrum` to the Hessian-vector product of the
model's training objective (`keras_adaptive.hessian_vector_product`: the
compiled loss averaged over the samples plus the regularisation losses, at
the current weights) and names the quantities of the lecture "Choosing the
Right Learning Rate": for a quadratic error the optimal rate of gradient
descent is the inverse of the second derivative,
:math:`\eta_{\text{opt}} = 1 / \lambda_{\max}`, and a rate above
:math:`2 / \lambda_{\max}` diverges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_adaptive._validation import check_integer, check_range, refuse
from keras_adaptive.curvature.spectrum import extreme_eigenpairs, hutchinson_trace


@dataclass(frozen=True)
class CurvatureResult:
    r"""The curvature of a model's loss at its current weights.

    Attributes:
        eigenvalues: the `k` largest Hessian eigenvalues, descending.
        residuals: :math:`\|H u_i - \lambda_i u_i\|` of each; every
            eigenvalue lies within its residual of an exact one.
        eigenvectors: their unit eigenvectors, one per column, over the
            flattened ``model.trainable_variables`` (in that order).
        smallest_eigenvalues: the `smallest` smallest eigenvalues,
            ascending; a negative one is a direction of negative curvature.
        smallest_residuals: their residuals.
        smallest_eigenvectors: their unit eigenvectors, one per column.
        trace: Hutchinson's estimate of :math:`\operatorname{tr} H` (`None`
            without `trace_samples`).
        trace_standard_error: its standard error (`None` without it).
        products: Hessian-vector products computed in all.
        converged: the eigenvalues met the tolerance (see
            `extreme_eigenpairs`).
        samples: the number of samples the Hessian averages over.
        full_data: True when those are all the data given, False for a
            random probe batch of them (`probe_samples`).

    Properties give the lecture's quantities: `lambda_max`,
    `optimal_learning_rate` :math:`= 1/\lambda_{\max}` and
    `max_stable_learning_rate` :math:`= 2/\lambda_{\max}`.

    References:
        Y. LeCun, L. Bottou, G. B. Orr and K.-R. Mueller (1998), "Efficient
        BackProp", Neural Networks: Tricks of the Trade, section 5 (the
        optimal rate and divergence above twice it).

    Example:
        >>> import numpy as np
        >>> from keras_adaptive.curvature import CurvatureResult
        >>> empty = np.zeros(0)
        >>> result = CurvatureResult(
        ...     np.array([4.0]), np.array([0.0]), np.ones((1, 1)), empty, empty,
        ...     np.zeros((1, 0)), None, None, 1, True, 8, True)
        >>> result.optimal_learning_rate, result.max_stable_learning_rate
        (0.25, 0.5)
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    eigenvectors: np.ndarray
    smallest_eigenvalues: np.ndarray
    smallest_residuals: np.ndarray
    smallest_eigenvectors: np.ndarray
    trace: float | None
    trace_standard_error: float | None
    products: int
    converged: bool
    samples: int
    full_data: bool

    @property
    def lambda_max(self) -> float:
        r""":math:`\lambda_{\max}`, the largest eigenvalue of the Hessian."""
        return float(self.eigenvalues[0])

    @property
    def optimal_learning_rate(self) -> float:
        r""":math:`\eta_{\text{opt}} = 1 / \lambda_{\max}`: gradient descent
        on a quadratic with this curvature reaches the minimum along the top
        eigenvector in one step. Infinite when :math:`\lambda_{\max} \le 0`
        (no direction curves upwards)."""
        return 1.0 / self.lambda_max if self.lambda_max > 0 else math.inf

    @property
    def max_stable_learning_rate(self) -> float:
        r""":math:`2 / \lambda_{\max}`: above it, gradient descent on a
        quadratic with this curvature oscillates with a growing amplitude
        along the top eigenvector (the edge of stability). Infinite when
        :math:`\lambda_{\max} \le 0`."""
        return 2.0 * self.optimal_learning_rate


def sample_count(x: Any) -> int:
    """The number of samples in arrays (or a dict, list or tuple of them),
    all of the same length."""
    lengths = {
        int(np.shape(leaf)[0]) if np.ndim(leaf) else -1
        for leaf in keras.tree.flatten(x)
    }
    if len(lengths) != 1 or -1 in lengths:
        refuse(
            "measure_curvature",
            "x",
            type(x).__name__,
            "arrays (or a dict, list or tuple of arrays) of one first dimension, "
            "the samples",
        )
    return lengths.pop()


def probe_batch(x, y, sample_weight, probe_samples: int | None, seed: int):
    """`x`, `y` and `sample_weight` restricted to `probe_samples` of their
    samples drawn at random (sorted), with the sample count and whether
    that is all of them."""
    samples = sample_count(x)
    if probe_samples is None or probe_samples == samples:
        return x, y, sample_weight, samples, True
    probe_samples = check_integer(
        "measure_curvature", "probe_samples", probe_samples, 1, samples
    )
    rows = np.sort(np.random.default_rng(seed).choice(samples, probe_samples, False))

    def take(data):
        if data is None:
            return None
        return keras.tree.map_structure(lambda leaf: np.asarray(leaf)[rows], data)

    return take(x), take(y), take(sample_weight), probe_samples, False


def measure_curvature(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    k: int = 1,
    smallest: int = 0,
    trace_samples: int = 0,
    sample_weight: Any = None,
    probe_samples: int | None = None,
    chunk_size: int | None = None,
    tolerance: float = 1e-3,
    max_products: int | None = None,
    seed: int = 0,
) -> CurvatureResult:
    r"""The Hessian's extreme eigenvalues and trace, and the rates they imply.

    The Hessian :math:`H` is that of the objective `keras_adaptive.minimize`
    minimises: the compiled loss averaged over the samples (weighted by
    `sample_weight`), plus the model's regularisation losses, at the current
    weights. Its eigenvalues come from block Lanczos on Hessian-vector
    products (`extreme_eigenpairs`), its trace from Hutchinson's estimator
    (`hutchinson_trace`); neither forms :math:`H`. The lecture's rates
    follow from :math:`\lambda_{\max}`:

    .. math::

        \eta_{\text{opt}} = \frac{1}{\lambda_{\max}}, \qquad
        \eta < \frac{2}{\lambda_{\max}} \ \text{for gradient descent to
        converge along the top eigenvector.}

    Args:
        model: a compiled Keras model (the loss; the optimizer is not used).
        x, y: the data, as arrays (or dicts, lists or tuples of arrays).
        k: how many of the largest eigenvalues, >= 1.
        smallest: how many of the smallest eigenvalues, >= 0 (negative
            curvature shows there).
        trace_samples: Rademacher vectors for the trace, 0 (no trace) or
            >= 2.
        sample_weight: per-sample weights, as for `fit`.
        probe_samples: measure on this many samples drawn at random (with
            `seed`) instead of all of `x`: cheaper, and noisier.
        chunk_size: evaluate the loss in chunks of this many samples (the
            memory of one chunk's second derivatives at a time).
        tolerance: relative residual at which the eigenvalues stop, in
            (0, 1): each is then within `tolerance` times
            :math:`\max |\lambda|` of an exact eigenvalue.
        max_products: the most products for the eigenvalues (default: 100
            blocks of ``max(k, smallest)``).
        seed: seed of the probe batch, the Lanczos block and the
            Rademacher vectors: the same seed gives the same result.

    Returns:
        A `CurvatureResult`.

    Raises:
        ValueError: for an argument out of range (naming it and what is
            valid), or data that are not arrays.
        FloatingPointError: when a product is not finite.

    References:
        * Y. LeCun, L. Bottou, G. B. Orr and K.-R. Mueller (1998), "Efficient
          BackProp", Neural Networks: Tricks of the Trade, section 5.
        * Z. Yao, A. Gholami, K. Keutzer and M. W. Mahoney (2020), "PyHessian:
          Neural Networks Through the Lens of the Hessian", IEEE BigData.
        * B. A. Pearlmutter (1994), "Fast exact multiplication by the
          Hessian", Neural Computation 6(1), 147-160.

    Example:
        For :math:`E(w) = \text{mean}((w x - y)^2)` the curvature is
        :math:`2\,\text{mean}(x^2)`:

        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive.curvature import measure_curvature
        >>> x = np.array([[1.0], [2.0], [3.0]], "float32")
        >>> model = keras.Sequential(
        ...     [keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
        >>> model.compile(loss="mse")
        >>> result = measure_curvature(model, x, 2 * x)
        >>> round(result.lambda_max, 4), round(result.optimal_learning_rate, 4)
        (9.3333, 0.1071)
    """
    owner = "measure_curvature"
    from keras_adaptive import hessian_vector_product

    trace_samples = check_integer(owner, "trace_samples", trace_samples, 0)
    if trace_samples == 1:
        refuse(owner, "trace_samples", 1, "0 (no trace) or an integer >= 2")
    x, y, sample_weight, samples, full_data = probe_batch(
        x, y, sample_weight, probe_samples, seed
    )
    hvp = hessian_vector_product(
        model, x, y, sample_weight=sample_weight, chunk_size=chunk_size
    )
    k = check_integer(owner, "k", k, 1, hvp.size)
    smallest = check_integer(owner, "smallest", smallest, 0, hvp.size)
    check_range(owner, "tolerance", tolerance, 0.0, 1.0, low_closed=False)
    if max_products is not None:
        check_integer(owner, "max_products", max_products, max(k, smallest))
    pairs = extreme_eigenpairs(
        hvp,
        hvp.size,
        k,
        smallest=smallest,
        tolerance=tolerance,
        max_products=max_products,
        seed=seed,
    )
    trace = (
        hutchinson_trace(hvp, hvp.size, trace_samples, seed=seed)
        if trace_samples
        else None
    )
    return CurvatureResult(
        eigenvalues=pairs.largest,
        residuals=pairs.largest_residuals,
        eigenvectors=pairs.largest_vectors,
        smallest_eigenvalues=pairs.smallest,
        smallest_residuals=pairs.smallest_residuals,
        smallest_eigenvectors=pairs.smallest_vectors,
        trace=None if trace is None else trace.trace,
        trace_standard_error=None if trace is None else trace.standard_error,
        products=pairs.products + (0 if trace is None else trace.products),
        converged=pairs.converged,
        samples=samples,
        full_data=full_data,
    )
