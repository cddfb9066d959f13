"""Full-batch training of a compiled Keras model: `minimize` (L-BFGS,
conjugate gradients, steepest descent and Newton-CG with a strong-Wolfe line
search, or Newton-CG in a trust region), `hessian_vector_product` (exact
products with the Hessian of the same loss) and the line search
`strong_wolfe` on any scalar function.

`keras_adaptive.minimize` and `keras_adaptive.hessian_vector_product` are
these functions.
"""

from keras_adaptive.full_batch import minimization
from keras_adaptive.full_batch.line_search import (
    WolfeStep,
    cubic_minimizer,
    strong_wolfe,
)
from keras_adaptive.full_batch.minimization import minimize
from keras_adaptive.full_batch.objective import (
    HessianVectorProduct,
    hessian_vector_product,
)

#: The methods of `minimize`: ``"lbfgs"``, ``"cg"``, ``"gd"``,
#: ``"newton-cg"`` and ``"trust-ncg"``.
METHODS = minimization.METHODS
#: The reasons `minimize` stops (`History.stop_reason`), each with the
#: explanation `History.message` gives.
STOP_REASONS = minimization.STOP_REASONS

__all__ = [
    "METHODS",
    "STOP_REASONS",
    "HessianVectorProduct",
    "WolfeStep",
    "cubic_minimizer",
    "hessian_vector_product",
    "minimize",
    "strong_wolfe",
]
