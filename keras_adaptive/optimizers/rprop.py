"""Rprop: per-weight step sizes driven by the sign of the gradient only."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive.optimizers import _backend
from keras_adaptive.optimizers.base import LearningRate, Optimizer, compute_dtype


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Rprop(Optimizer):
    r"""Resilient backpropagation: per-weight step sizes from gradient signs only.

    Riedmiller & Braun (1993), in the iRprop- form of Igel & Huesken (2000).
    Every weight has its own step size :math:`\Delta`, starting at
    `learning_rate`; the magnitude of the gradient is ignored. With :math:`g`
    the current and :math:`g'` the stored previous gradient of that weight
    (:math:`g' = 0` before the first step):

    .. math::

        \Delta &\leftarrow \begin{cases}
            \eta^+ \Delta & \text{if } g\, g' > 0 \text{ (the sign holds)} \\
            \eta^- \Delta & \text{if } g\, g' < 0 \text{ (a minimum was jumped)} \\
            \Delta & \text{otherwise}
        \end{cases} \\
        \Delta &\leftarrow \operatorname{clip}(\Delta, \Delta_{\min}, \Delta_{\max}) \\
        g &\leftarrow 0 \quad \text{if } g\, g' < 0
            \text{ (no step for this weight now)} \\
        w &\leftarrow w - \operatorname{sign}(g)\, \Delta, \qquad g' \leftarrow g

    with :math:`\eta^+` = `eta_plus`, :math:`\eta^-` = `eta_minus`,
    :math:`\Delta_{\min}` = `min_step`, :math:`\Delta_{\max}` = `max_step`.
    Zeroing :math:`g` after a sign flip skips the step and makes the next
    product 0, so the shrunken :math:`\Delta` is used once before it may grow
    again. The state is two slots per weight (step size and previous gradient).

    Rprop is a full-batch method. Lecture "Better Adaptation: RMSProp" (Neural
    Networks II, lecture XII, part 3): for batch learning the different
    gradient magnitudes of different weights can be handled "by only using the
    sign of the gradient", but this does not carry over to minibatches: sign
    flips caused by sampling noise keep shrinking the step sizes, and (Hinton's
    example, Coursera lecture 6e) a weight that gets +0.1 on nine minibatches
    and -0.9 on the tenth should stay roughly where it is, yet Rprop moves it
    nine steps one way and one step back. RMSprop (divide by a running average
    of the gradient's magnitude) is the minibatch answer. Use Rprop with
    `batch_size` equal to the dataset (or very large batches).

    `learning_rate` is the initial step size :math:`\Delta_0` only: it is read
    at the first step (a schedule or callable is evaluated there); after that,
    the step sizes evolve on their own, and changing the rate (a schedule,
    `ReduceLROnPlateau`, the package's callbacks) has no effect on them. Keras's
    decoupled `weight_decay` still uses the current `learning_rate` as its
    factor.

    Defaults: :math:`\Delta_0 = 0.1`, :math:`\eta^- = 0.5`,
    :math:`\eta^+ = 1.2`, steps in :math:`[10^{-6}, 50]`.

    Differences from other libraries: PyTorch's `torch.optim.Rprop` performs
    the same iRprop- update with the same limits and factors, but defaults to
    :math:`\Delta_0 = 0.01`; here :math:`\Delta_0 = 0.1`, as the paper
    recommends. The original algorithm of Riedmiller & Braun also undoes the
    previous step of a weight whose gradient flips ("weight-backtracking");
    iRprop- does not. Keras has no Rprop.

    Args:
        learning_rate: the initial step size :math:`\Delta_0`; a float >= 0, a
            schedule or a callable (read at the first step only).
        eta_minus: :math:`\eta^-`, shrinks a step size after a sign flip; in
            (0, 1).
        eta_plus: :math:`\eta^+`, grows a step size while the sign holds; > 1.
        min_step: lower limit of the step sizes, > 0.
        max_step: upper limit of the step sizes, >= min_step.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        * M. Riedmiller and H. Braun (1993), "A Direct Adaptive Method for
          Faster Backpropagation Learning: The RPROP Algorithm", IEEE
          International Conference on Neural Networks.
        * C. Igel and M. Huesken (2000), "Improving the Rprop Learning
          Algorithm", Second International Symposium on Neural Computation.

    Example:
        Steps of 0.1, then 0.12 (0.1 times 1.2, since the sign held), whatever
        the gradient's size:

        >>> import keras
        >>> from keras_adaptive.optimizers import Rprop
        >>> w = keras.Variable([1.0, 1.0])
        >>> optimizer = Rprop(learning_rate=0.1)
        >>> g = keras.ops.convert_to_tensor([3.0, 0.001])
        >>> for _ in range(2):
        ...     _ = optimizer.apply_gradients([(g, w)])
        >>> print(w.numpy().round(4))
        [0.78 0.78]

        In a model, train on full batches:

        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=Rprop(learning_rate=0.1), loss="mse")
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.1,
        eta_minus: float = 0.5,
        eta_plus: float = 1.2,
        min_step: float = 1e-6,
        max_step: float = 50.0,
        name: str | None = None,
        **kwargs: Any,
    ):
        eta_minus = self._check("eta_minus", eta_minus, 0.0, 1.0, low_closed=False)
        eta_plus = self._check("eta_plus", eta_plus, 1.0, low_closed=False)
        min_step = self._check("min_step", min_step, 0.0, low_closed=False)
        max_step = self._check("max_step", max_step, min_step)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.eta_minus = eta_minus
        self.eta_plus = eta_plus
        self.min_step = min_step
        self.max_step = max_step

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._step_sizes = self.add_slots(variables, "step_size")
        self._previous_gradients = self.add_slots(variables, "previous_gradient")

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        g = ops.cast(gradient, dtype)
        index = self.variable_index(variable)

        step_size = ops.where(
            ops.equal(self.iterations, 0),
            ops.cast(learning_rate, dtype),
            self.slot(self._step_sizes, variable, dtype),
        )
        product = g * self.slot(self._previous_gradients, variable, dtype)
        flipped = product < 0
        factor = ops.where(
            product > 0,
            ops.cast(self.eta_plus, dtype),
            ops.where(flipped, ops.cast(self.eta_minus, dtype), ops.ones_like(g)),
        )
        step_size = ops.clip(step_size * factor, self.min_step, self.max_step)
        zeros = ops.zeros_like(g)
        self.assign_sub(variable, ops.where(flipped, zeros, ops.sign(g)) * step_size)
        g = ops.where(flipped, zeros, g)
        if not _backend.is_torch():
            # Exact for finite values: each term 0 * x makes an update read
            # the array written before it (weights, then step sizes, then
            # previous gradients), so XLA computes the three in that order
            # from the old state and overwrites it in place, with no copies.
            step_size += 0.0 * ops.cast(variable, dtype)
            g += 0.0 * step_size
        self.assign(self._step_sizes[index], step_size)
        self.assign(self._previous_gradients[index], g)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "eta_minus": self.eta_minus,
                "eta_plus": self.eta_plus,
                "min_step": self.min_step,
                "max_step": self.max_step,
            }
        )
        return config
