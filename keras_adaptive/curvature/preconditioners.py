r"""The diagonal preconditioner of an adaptive optimizer, read from its state.

An adaptive step has the form :math:`w \leftarrow w - \eta\, P^{-1} u`, with
:math:`u` the gradient or its (bias-corrected) momentum and :math:`P` a
positive diagonal built from the optimizer's statistics. Near a minimum the
step is stable while :math:`\eta\, \lambda_{\max}(P^{-1} H)` stays below the
method's threshold (Cohen et al. 2022), so `keras_adaptive.curvature`
measures :math:`\lambda_{\max}(P^{-1} H)` as the top eigenvalue of the
symmetric :math:`P^{-1/2} H P^{-1/2}`.

The diagonals, with :math:`t` = ``optimizer.iterations`` (the steps taken)
and the statistics as the last step left them:

* this package's `Adam` and `Nadam`:
  :math:`P = \sqrt{v / (1 - \beta_2^t)} + \epsilon` (with `amsgrad`, the
  running maximum of :math:`v` in place of :math:`v`);
* `Adamax`: :math:`P = u + \epsilon`;
* `Adagrad`, this package's and Keras's: :math:`P = \sqrt{G + \epsilon}`;
* `RMSprop`, this package's and Keras's: :math:`P = \sqrt{s + \epsilon}`,
  or :math:`\sqrt{s - a^2 + \epsilon}` when centred;
* `Adadelta`: :math:`P = \sqrt{E[g^2] + \epsilon} / \sqrt{E[\Delta x^2] +
  \epsilon}`;
* `keras.optimizers.Adam` and `AdamW`:
  :math:`P = (\sqrt{v} + \epsilon) / \sqrt{1 - \beta_2^t}`.

Keras's Adam adds :math:`\epsilon` before its bias correction (see
`keras_adaptive.optimizers.Adam`), hence its different :math:`P`. A
`keras.optimizers.LossScaleOptimizer` is looked through to the optimizer it
wraps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from keras_adaptive import _keras_api
from keras_adaptive import optimizers as ours
from keras_adaptive._numpy import to_numpy

__all__ = ["PRECONDITIONERS", "diagonal_preconditioner", "has_diagonal_preconditioner"]


def _values(optimizer, attribute: str, variable) -> np.ndarray:
    return to_numpy(
        _keras_api.optimizer_slot(optimizer, attribute, variable), "float64"
    )


def _steps(optimizer) -> int:
    return int(to_numpy(optimizer.iterations))


def _bias_correction(optimizer) -> float:
    """1 - beta_2^t, refused before the first step (0 / 0)."""
    steps = _steps(optimizer)
    if steps == 0:
        raise ValueError(
            f"{type(optimizer).__name__} has taken no step yet: its "
            "preconditioner sqrt(v / (1 - beta_2^t)) is 0/0 at t=0; measure it "
            "after training has begun."
        )
    return 1.0 - optimizer.beta_2**steps


def _adam(optimizer, variable) -> np.ndarray:
    attribute = "_velocity_maxima" if optimizer.amsgrad else "_velocities"
    velocity = _values(optimizer, attribute, variable)
    return np.sqrt(velocity / _bias_correction(optimizer)) + optimizer.epsilon


def _nadam(optimizer, variable) -> np.ndarray:
    velocity = _values(optimizer, "_velocities", variable)
    return np.sqrt(velocity / _bias_correction(optimizer)) + optimizer.epsilon


def _adamax(optimizer, variable) -> np.ndarray:
    return _values(optimizer, "_norms", variable) + optimizer.epsilon


def _adagrad(optimizer, variable) -> np.ndarray:
    return np.sqrt(_values(optimizer, "_accumulators", variable) + optimizer.epsilon)


def _rmsprop(optimizer, variable, squares: str, means: str) -> np.ndarray:
    denominator = _values(optimizer, squares, variable) + optimizer.epsilon
    if optimizer.centered:
        denominator -= _values(optimizer, means, variable) ** 2
    return np.sqrt(denominator)


def _adadelta(optimizer, variable) -> np.ndarray:
    gradients = _values(optimizer, "_mean_square_gradients", variable)
    steps = _values(optimizer, "_mean_square_steps", variable)
    return np.sqrt(gradients + optimizer.epsilon) / np.sqrt(steps + optimizer.epsilon)


def _keras_adam(optimizer, variable) -> np.ndarray:
    attribute = "_velocity_hats" if optimizer.amsgrad else "_velocities"
    velocity = _values(optimizer, attribute, variable)
    return (np.sqrt(velocity) + optimizer.epsilon) / np.sqrt(
        _bias_correction(optimizer)
    )


#: The diagonal P of each supported optimizer class, for one variable.
PRECONDITIONERS: dict[type, Callable] = {
    ours.Adam: _adam,
    ours.Nadam: _nadam,
    ours.Adamax: _adamax,
    ours.Adagrad: _adagrad,
    ours.RMSprop: lambda o, v: _rmsprop(o, v, "_mean_squares", "_mean_gradients"),
    ours.Adadelta: _adadelta,
    keras.optimizers.Adam: _keras_adam,
    keras.optimizers.AdamW: _keras_adam,
    keras.optimizers.Adagrad: _adagrad,
    keras.optimizers.RMSprop: lambda o, v: _rmsprop(
        o, v, "_velocities", "_average_gradients"
    ),
}


#: The supported classes, by name, for error messages.
SUPPORTED = sorted(
    f"{cls.__module__.split('.')[0]}.{cls.__name__}" for cls in PRECONDITIONERS
)


def inner_optimizer(optimizer: keras.optimizers.Optimizer):
    """The optimizer a `keras.optimizers.LossScaleOptimizer` wraps, or
    `optimizer` itself."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def has_diagonal_preconditioner(optimizer: keras.optimizers.Optimizer) -> bool:
    """True when `diagonal_preconditioner` knows the optimizer's class.

    Example:
        >>> import keras
        >>> from keras_adaptive import optimizers
        >>> from keras_adaptive.curvature import has_diagonal_preconditioner
        >>> has_diagonal_preconditioner(optimizers.Adam())
        True
        >>> has_diagonal_preconditioner(optimizers.SGD(0.1))
        False

    References:
        J. Cohen, B. Ghorbani, S. Krishnan, N. Agarwal, S. Medapati,
        M. Badura, D. Suo, D. Cardoze, Z. Nado, G. E. Dahl and J. Gilmer
        (2022), "Adaptive Gradient Methods at the Edge of Stability",
        arXiv:2207.14484.
    """
    return _rule(optimizer) is not None


def _rule(optimizer) -> Callable | None:
    """The rule of the optimizer's class or of its nearest base in the table
    (Keras's optimizers are backend subclasses of the public classes)."""
    for cls in type(inner_optimizer(optimizer)).__mro__:
        if cls in PRECONDITIONERS:
            return PRECONDITIONERS[cls]
    return None


def diagonal_preconditioner(
    optimizer: keras.optimizers.Optimizer, variables: Sequence
) -> list[np.ndarray]:
    r"""The diagonal :math:`P` of the optimizer's step, one array per variable.

    The step is :math:`w \leftarrow w - \eta\, P^{-1} u`; the module's table
    gives :math:`P` for each supported class. The optimizer must be built
    (it has trained `variables`); on JAX during `fit`, call
    ``keras_adaptive._keras_api.sync_trainer_state(model)`` first.

    Args:
        optimizer: a built optimizer of a class in `PRECONDITIONERS`, or a
            `keras.optimizers.LossScaleOptimizer` around one.
        variables: the variables it trains, in the order wanted (for a
            model, ``model.trainable_variables``).

    Returns:
        One float64 array of each variable's shape.

    Raises:
        ValueError: for an optimizer without a diagonal preconditioner, or an
            Adam-type optimizer before its first step.

    References:
        * J. Cohen, B. Ghorbani, S. Krishnan, N. Agarwal, S. Medapati,
          M. Badura, D. Suo, D. Cardoze, Z. Nado, G. E. Dahl and J. Gilmer
          (2022), "Adaptive Gradient Methods at the Edge of Stability",
          arXiv:2207.14484.
        * D. P. Kingma and J. Ba (2015), "Adam: A Method for Stochastic
          Optimization", ICLR.

    Example:
        After one Adagrad step with the gradient 3,
        :math:`P = \sqrt{9 + 10^{-7}}`:

        >>> import keras
        >>> from keras_adaptive import optimizers
        >>> from keras_adaptive.curvature import diagonal_preconditioner
        >>> w = keras.Variable([0.0])
        >>> optimizer = optimizers.Adagrad()
        >>> _ = optimizer.apply_gradients([(keras.ops.convert_to_tensor([3.0]), w)])
        >>> diagonal_preconditioner(optimizer, [w])[0].round(6)
        array([3.])
    """
    inner = inner_optimizer(optimizer)
    rule = _rule(inner)
    if rule is None:
        raise ValueError(
            f"diagonal_preconditioner: `optimizer` must have a diagonal "
            f"preconditioner, one of {SUPPORTED}; received optimizer="
            f"{type(inner).__name__} (its step is not g / P for a diagonal P "
            "read from its state)."
        )
    return [rule(inner, variable) for variable in variables]
