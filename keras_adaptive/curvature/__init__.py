r"""Curvature of the loss: Hessian eigenvalues, trace and spectral density.

The lecture "Choosing the Right Learning Rate" answers "what is the optimal
learning rate?" with the second derivative: for a quadratic error,
:math:`\eta_{\text{opt}} = 1 / \lambda_{\max}`, and gradient descent diverges
above :math:`2 / \lambda_{\max}`. `measure_curvature` measures
:math:`\lambda_{\max}` (and more of the spectrum) of a compiled model's loss
from Hessian-vector products, without forming the Hessian;
`keras_adaptive.callbacks.curvature_monitor.CurvatureMonitor` does it during
training.

* `measure_curvature` and its `CurvatureResult`: the model-level probe;
* `extreme_eigenpairs`, `hutchinson_trace`, `spectral_density`: the
  algorithms, on any symmetric operator given by its product;
* `diagonal_preconditioner`: the :math:`P` of an adaptive optimizer's step
  :math:`w \leftarrow w - \eta P^{-1} u`, for :math:`\lambda_{\max}(P^{-1} H)`.
"""

from keras_adaptive.curvature.preconditioners import (
    diagonal_preconditioner,
    has_diagonal_preconditioner,
)
from keras_adaptive.curvature.probe import CurvatureResult, measure_curvature
from keras_adaptive.curvature.spectrum import (
    Eigenpairs,
    SpectralDensity,
    TraceEstimate,
    extreme_eigenpairs,
    hutchinson_trace,
    spectral_density,
)

__all__ = [
    "CurvatureResult",
    "Eigenpairs",
    "SpectralDensity",
    "TraceEstimate",
    "diagonal_preconditioner",
    "extreme_eigenpairs",
    "has_diagonal_preconditioner",
    "hutchinson_trace",
    "measure_curvature",
    "spectral_density",
]
