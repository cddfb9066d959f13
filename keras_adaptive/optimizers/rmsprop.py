"""RMSprop: divide the gradient by a running average of its magnitude."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive._validation import check_bool
from keras_adaptive.optimizers import sparse
from keras_adaptive.optimizers.base import LearningRate, Optimizer, compute_dtype


@keras.saving.register_keras_serializable(package="keras_adaptive")
class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running average of its magnitude.

    Per weight, with every state starting at 0 (:math:`s` is the lecture's
    MeanSq, :math:`a` the running mean used only if `centered`):

    .. math::

        s &\leftarrow \rho s + (1 - \rho)\, g^2 \\
        a &\leftarrow \rho a + (1 - \rho)\, g \\
        u &= \frac{\eta\, g}{\sqrt{d}}, \qquad
        d = s + \epsilon \ \text{ or, if centered, } \ d = s - a^2 + \epsilon

    and then :math:`w \leftarrow w - u`, or with momentum
    :math:`m \leftarrow \mu m + u,\ w \leftarrow w - m`.

    Lecture "Better Adaptation: RMSProp" (Neural Networks II, part 3):
    :math:`\mathrm{MeanSq}(w, t) = 0.9\, \mathrm{MeanSq}(w, t-1) + 0.1\,
    g(t)^2`, and the gradient is divided by
    :math:`\sqrt{\mathrm{MeanSq}(w, t)}`. It is the minibatch generalisation
    of using only the sign of the gradient (Rprop), which fails on minibatches.
    `centered` divides by an estimate of the gradient's variance instead of its
    second moment (Graves 2013, eq. 38-41).

    Defaults: :math:`\eta = 0.001`, :math:`\rho = 0.9`,
    :math:`\epsilon = 10^{-7}`, no momentum, not centred; one to three slots per
    weight.

    Differences from other libraries: the equations and defaults equal
    Keras's `keras.optimizers.RMSprop` (epsilon under the square root).
    PyTorch's `torch.optim.RMSprop` defaults to :math:`\rho` (`alpha`) = 0.99
    and adds :math:`\epsilon = 10^{-8}` outside the square root.

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        rho: decay of the running averages, in [0, 1).
        momentum: :math:`\mu` in [0, 1); 0 disables the momentum slot.
        epsilon: > 0, added under the square root.
        centered: normalise by the centred second moment (the variance).
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        * T. Tieleman and G. Hinton (2012), Coursera "Neural Networks for
          Machine Learning", lecture 6e, "rmsprop: Divide the gradient by a
          running average of its recent magnitude".
        * A. Graves (2013), "Generating Sequences With Recurrent Neural
          Networks", arXiv:1308.0850.

    Example:
        The first step is :math:`\eta\, g / \sqrt{0.1\, g^2} = \eta
        \sqrt{10}` for any gradient much larger than :math:`\sqrt{\epsilon}`:

        >>> import keras
        >>> from keras_adaptive.optimizers import RMSprop
        >>> w = keras.Variable([1.0])
        >>> optimizer = RMSprop(learning_rate=0.01)
        >>> _ = optimizer.apply_gradients([(keras.ops.ones(w.shape), w)])
        >>> print(w.numpy().round(4))
        [0.9684]
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ):
        rho = self._check("rho", rho, 0.0, 1.0)
        momentum = self._check("momentum", momentum, 0.0, 1.0)
        epsilon = self._check("epsilon", epsilon, 0.0, low_closed=False)
        check_bool(type(self).__name__, "centered", centered)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._mean_squares = self.add_slots(variables, "mean_square")
        self._mean_gradients = (
            self.add_slots(variables, "mean_gradient") if self.centered else []
        )
        self._momentums = (
            self.add_slots(variables, "momentum") if self.momentum > 0 else []
        )

    @property
    def sparse_updates(self) -> bool:
        # The moving averages decay everywhere, but without momentum the
        # weight changes only where the gradient is nonzero.
        return self.momentum == 0

    def update_step(self, gradient, variable, learning_rate):
        if sparse.is_sparse(gradient):
            self._sparse_update_step(gradient, variable, learning_rate)
            return
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = self.variable_index(variable)
        rho = self.rho

        mean_square = rho * self.slot(self._mean_squares, variable, dtype)
        mean_square += (1.0 - rho) * g * g
        self.assign(self._mean_squares[index], mean_square)
        denominator = mean_square + self.epsilon
        if self.centered:
            mean_gradient = rho * self.slot(self._mean_gradients, variable, dtype)
            mean_gradient += (1.0 - rho) * g
            self.assign(self._mean_gradients[index], mean_gradient)
            denominator -= mean_gradient * mean_gradient
        step = lr * g / ops.sqrt(denominator)
        if self.momentum > 0:
            step += self.momentum * self.slot(self._momentums, variable, dtype)
            self.assign(self._momentums[index], step)
        self.assign_sub(variable, step)

    def _sparse_update_step(self, gradient, variable, learning_rate):
        """The same step for a sparse gradient (no momentum): the averages
        decay densely, the weight changes in the gradient's rows only."""
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        rows = sparse.unique_rows(gradient)
        g = ops.cast(rows.values, dtype)
        index = self.variable_index(variable)
        rho = self.rho

        mean_square = rho * self.slot(self._mean_squares, variable, dtype)
        mean_square = sparse.add_to_rows(mean_square, rows.indices, (1.0 - rho) * g * g)
        self.assign(self._mean_squares[index], mean_square)
        denominator = sparse.take_rows(mean_square, rows.indices) + self.epsilon
        if self.centered:
            mean_gradient = rho * self.slot(self._mean_gradients, variable, dtype)
            mean_gradient = sparse.add_to_rows(
                mean_gradient, rows.indices, (1.0 - rho) * g
            )
            self.assign(self._mean_gradients[index], mean_gradient)
            mean_gradient = sparse.take_rows(mean_gradient, rows.indices)
            denominator -= mean_gradient * mean_gradient
        step = lr * g / ops.sqrt(denominator)
        sparse.add_to_variable_rows(self, variable, rows, -step)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return config
