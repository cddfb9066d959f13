"""Delta-bar-delta: a separate, adaptive gain for every weight."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive.optimizers import _backend
from keras_adaptive.optimizers.base import (
    Hyperparameter,
    LearningRate,
    Optimizer,
    compute_dtype,
    is_disabled,
    serialize_hyperparameter,
)


@keras.saving.register_keras_serializable(package="keras_adaptive")
class DeltaBarDelta(Optimizer):
    r"""Per-weight gains adapted by the sign agreement of successive gradients.

    Every weight :math:`w` has its own gain :math:`c`, a multiplier of the
    global rate :math:`\eta`, starting at 1. Without momentum, with :math:`g`
    the current and :math:`g'` the previous gradient of that weight
    (:math:`g' = 0` before the first step):

    .. math::

        c &\leftarrow \begin{cases}
            c + \kappa & \text{if } g\, g' > 0 \text{ (the sign holds)} \\
            c\, \phi & \text{if } g\, g' < 0 \text{ (the sign flipped)} \\
            c & \text{if } g\, g' = 0
        \end{cases} \\
        c &\leftarrow \operatorname{clip}(c, c_{\min}, c_{\max}) \\
        w &\leftarrow w - \eta\, c\, g

    with :math:`\kappa` = `increment`, :math:`\phi` = `decay`,
    :math:`c_{\min}` = `min_gain`, :math:`c_{\max}` = `max_gain`. Gains grow
    additively and shrink multiplicatively, so they rise slowly along a
    consistent slope and collapse quickly when the weight starts to oscillate.
    With `momentum` :math:`\mu > 0` the sign test is made against the velocity
    :math:`v`, the direction the weight has been moving in, instead of the
    previous gradient, as Jacobs and Hinton recommend ("use agreement in sign
    between the current gradient for a weight and the velocity for that
    weight"):

    .. math::

        c &\leftarrow c + \kappa \ \text{ if } -g\, v > 0, \qquad
        c \leftarrow c\, \phi \ \text{ if } -g\, v < 0 \\
        c &\leftarrow \operatorname{clip}(c, c_{\min}, c_{\max}) \\
        v &\leftarrow \mu v - \eta\, c\, g \\
        w &\leftarrow w + v

    A zero product (the first step, or a zero gradient) leaves the gain
    unchanged, as in Jacobs's rule. The new gain is used in the same step.
    `momentum` may be a schedule (e.g. `keras_adaptive.schedules.MomentumRamp`).
    The state is two slots per weight: the gain, and the previous gradient or
    the velocity.

    Lecture "Separate, Adaptive Learning Rates" (Neural Networks II, lecture
    XII, part 3): in a multilayer net the right learning rate differs widely
    between weights (gradients of the early layers are often tiny), so
    :math:`\Delta w_{ij} = -\eta\, g_{ij}\, \partial E / \partial w_{ij}`,
    with :math:`g_{ij}(t) = g_{ij}(t-1) + 0.05` if
    :math:`\frac{\partial E}{\partial w_{ij}}(t)\,
    \frac{\partial E}{\partial w_{ij}}(t-1) > 0`, else
    :math:`g_{ij}(t-1) \cdot 0.95`. Hinton's lecture 6d adds the limits
    [0.1, 10] (or [0.01, 100]) on the gains and advises full batches or large
    minibatches, so that sign changes are not mere sampling noise.

    Defaults: :math:`\eta = 0.01`, :math:`\kappa = 0.05`, :math:`\phi = 0.95`,
    gains in [0.1, 10], no momentum.

    Differences from the papers and other libraries: Jacobs's
    delta-bar-delta compares :math:`g` with an exponential average of past
    gradients (the "bar delta") and changes a per-weight rate, decreasing it by
    a fraction of itself; here, as in the lecture, the comparison is with the
    previous gradient (or the velocity) and the gains multiply a global rate
    :math:`\eta`. Neither Keras nor PyTorch ships this optimizer.

    Args:
        learning_rate: :math:`\eta`, the global rate the gains multiply; a float
            >= 0, a schedule or a callable.
        increment: :math:`\kappa`, added to a gain when the sign holds; >= 0.
        decay: :math:`\phi`, multiplies a gain when the sign flips; in (0, 1].
        min_gain: lower limit of the gains, > 0.
        max_gain: upper limit of the gains, >= min_gain.
        momentum: :math:`\mu` in [0, 1), or a schedule. 0 (the default)
            disables the velocity and compares successive gradients.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        * R. A. Jacobs (1988), "Increased rates of convergence through learning
          rate adaptation", Neural Networks 1(4), 295-307.
        * G. Hinton, Coursera "Neural Networks for Machine Learning", lecture
          6d, "A separate, adaptive learning rate for each connection".

    Example:
        While the sign of the gradient holds, the gain grows by 0.05 a step
        (steps of 0.01, then 0.0105, then 0.011):

        >>> import keras
        >>> from keras_adaptive.optimizers import DeltaBarDelta
        >>> w = keras.Variable([1.0])
        >>> optimizer = DeltaBarDelta(learning_rate=0.01)
        >>> for _ in range(3):
        ...     _ = optimizer.apply_gradients([(keras.ops.ones(w.shape), w)])
        >>> print(w.numpy().round(4))
        [0.9685]

        With a velocity sign test instead:

        >>> optimizer = DeltaBarDelta(learning_rate=0.01, momentum=0.9)
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        increment: float = 0.05,
        decay: float = 0.95,
        min_gain: float = 0.1,
        max_gain: float = 10.0,
        momentum: Hyperparameter = 0.0,
        name: str | None = None,
        **kwargs: Any,
    ):
        increment = self._check("increment", increment, 0.0)
        decay = self._check(
            "decay", decay, 0.0, 1.0, low_closed=False, high_closed=True
        )
        min_gain = self._check("min_gain", min_gain, 0.0, low_closed=False)
        max_gain = self._check("max_gain", max_gain, min_gain)
        momentum = self._check("momentum", momentum, 0.0, 1.0, schedule=True)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.increment = increment
        self.decay = decay
        self.min_gain = min_gain
        self.max_gain = max_gain
        self.momentum = momentum

    @property
    def uses_momentum(self) -> bool:
        return not is_disabled(self.momentum)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._gains = self.add_slots(variables, "gain", initializer="ones")
        # The previous gradient, or the velocity with momentum.
        self._directions = self.add_slots(
            variables, "velocity" if self.uses_momentum else "previous_gradient"
        )

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = self.variable_index(variable)
        previous = self.slot(self._directions, variable, dtype)

        agreement = g * previous
        if self.uses_momentum:
            agreement = -agreement
        gain = self.slot(self._gains, variable, dtype)
        gain = ops.where(agreement > 0, gain + self.increment, gain)
        gain = ops.where(agreement < 0, gain * self.decay, gain)
        gain = ops.clip(gain, self.min_gain, self.max_gain)

        # Weights first, from the old state; then gains, then the previous
        # gradient or velocity. Each term 0 * x (exact for finite values)
        # makes an update read the array written before it, so XLA computes
        # them in that order and overwrites the old state in place, with no
        # copies.
        ordered = not _backend.is_torch()
        if self.uses_momentum:
            # (XLA keeps the velocity in one temporary array here.)
            mu = self.hyperparameter(self.momentum, dtype)
            direction = mu * previous - lr * gain * g
            self.assign_add(variable, direction)
        else:
            self.assign_sub(variable, lr * gain * g)
            direction = g
        if ordered:
            gain += 0.0 * ops.cast(variable, dtype)
            direction += 0.0 * gain
        self.assign(self._gains[index], gain)
        self.assign(self._directions[index], direction)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "increment": self.increment,
                "decay": self.decay,
                "min_gain": self.min_gain,
                "max_gain": self.max_gain,
                "momentum": serialize_hyperparameter(self.momentum),
            }
        )
        return config
