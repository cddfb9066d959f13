"""Gradient descent: plain, with momentum, and with Nesterov momentum."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive._validation import check_bool
from keras_adaptive.optimizers import sparse
from keras_adaptive.optimizers.base import (
    Hyperparameter,
    LearningRate,
    Optimizer,
    compute_dtype,
    is_disabled,
    serialize_hyperparameter,
)


@keras.saving.register_keras_serializable(package="keras_adaptive")
class SGD(Optimizer):
    r"""Gradient descent, optionally with classical or Nesterov momentum.

    Without momentum (lecture "Gradient Descent", Neural Networks II, part 2),
    with learning rate :math:`\eta` and gradient :math:`g`:

    .. math::

        w \leftarrow w - \eta\, g

    Batch, minibatch and stochastic (single-example) gradient descent are the
    same rule; they differ in the data the gradient :math:`g` is computed on,
    which is chosen by `batch_size` in `model.fit` (the full dataset, a
    minibatch, or 1). The lectures' caveat applies: normalise the loss by the
    batch size (Keras's losses average by default) to keep one learning rate
    across batch sizes.

    Classical momentum (lecture "The Momentum Method: Implementation";
    Rumelhart, Hinton & Williams 1986), with the velocity :math:`v` starting
    at 0:

    .. math::

        v &\leftarrow \mu v - \eta\, g \\
        w &\leftarrow w + v

    Nesterov's accelerated gradient in the form of Sutskever, Martens, Dahl &
    Hinton (2013, eq. 3-4), rewritten so that the gradient is taken at the
    stored weights (the look-ahead is folded into the stored point):

    .. math::

        v &\leftarrow \mu v - \eta\, g \\
        w &\leftarrow w + \mu v - \eta\, g

    `momentum` may be a float or a schedule of the iteration count, such as
    `keras_adaptive.schedules.MomentumRamp`: the lecture's advice to start at
    0.5 and raise momentum smoothly to 0.9 or 0.99 once the large initial
    gradients are gone. The schedule is evaluated inside the compiled step.

    Defaults: :math:`\eta = 0.01`, no momentum; the state is one velocity per
    weight when momentum is on, none otherwise.

    Differences from other libraries: the update is the same as Keras's
    `keras.optimizers.SGD`. PyTorch's `torch.optim.SGD` keeps
    :math:`b \leftarrow \mu b + g` and steps :math:`w \leftarrow w - \eta b`,
    which equals this rule only while :math:`\eta` is constant; here a changed
    learning rate affects only new gradients, not the velocity already
    accumulated (the lecture's formulation).

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        momentum: :math:`\mu` in [0, 1), or a schedule. 0 disables momentum
            and its slot variables.
        nesterov: use Nesterov's accelerated gradient.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        * D. E. Rumelhart, G. E. Hinton and R. J. Williams (1986), "Learning
          representations by back-propagating errors", Nature 323, 533-536.
        * I. Sutskever, J. Martens, G. Dahl and G. Hinton (2013), "On the
          importance of initialization and momentum in deep learning", ICML.

    Example:
        Two steps with a constant gradient of 1: the velocity is
        :math:`-0.1`, then :math:`0.9 \cdot (-0.1) - 0.1 = -0.19`.

        >>> import keras
        >>> from keras_adaptive.optimizers import SGD
        >>> w = keras.Variable([1.0, -2.0])
        >>> optimizer = SGD(learning_rate=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     _ = optimizer.apply_gradients([(keras.ops.ones(w.shape), w)])
        >>> print(w.numpy().round(4))
        [ 0.71 -2.29]

        In a model, with full-batch, minibatch or stochastic steps chosen by
        `batch_size`:

        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=SGD(learning_rate=0.01), loss="mse")
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: Hyperparameter = 0.0,
        nesterov: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ):
        momentum = self._check("momentum", momentum, 0.0, 1.0, schedule=True)
        check_bool(type(self).__name__, "nesterov", nesterov)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = momentum
        self.nesterov = nesterov

    @property
    def uses_momentum(self) -> bool:
        return not is_disabled(self.momentum)

    @property
    def sparse_updates(self) -> bool:
        # With momentum the velocity of every row decays at every step.
        return not self.uses_momentum

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._velocities = (
            self.add_slots(variables, "velocity") if self.uses_momentum else []
        )

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        if sparse.is_sparse(gradient):
            rows = sparse.raw_rows(gradient)
            step = lr * ops.cast(rows.values, dtype)
            sparse.add_to_variable_rows(self, variable, rows, -step)
            return
        g = ops.cast(gradient, dtype)
        if not self.uses_momentum:
            self.assign_sub(variable, lr * g)
            return
        mu = self.hyperparameter(self.momentum, dtype)
        velocity = mu * self.slot(self._velocities, variable, dtype) - lr * g
        self.assign(self._velocities[self.variable_index(variable)], velocity)
        if self.nesterov:
            self.assign_add(variable, mu * velocity - lr * g)
        else:
            self.assign_add(variable, velocity)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "momentum": serialize_hyperparameter(self.momentum),
                "nesterov": self.nesterov,
            }
        )
        return config


class _PresetSGD(SGD):
    """`SGD` with momentum 0.9 by default and `nesterov` fixed by the class."""

    nesterov_preset: bool

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: Hyperparameter = 0.9,
        name: str | None = None,
        **kwargs: Any,
    ):
        if "nesterov" in kwargs:
            raise ValueError(
                f"{type(self).__name__}: `nesterov` is fixed to "
                f"{self.nesterov_preset}; received nesterov={kwargs['nesterov']!r}. "
                "Use SGD(momentum=..., nesterov=...) to choose it."
            )
        super().__init__(
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=self.nesterov_preset,
            name=name,
            **kwargs,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["nesterov"]
        return config


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Momentum(_PresetSGD):
    r"""Classical momentum: `SGD(momentum=0.9)`.

    .. math::

        v &\leftarrow \mu v - \eta\, g \\
        w &\leftarrow w + v

    Lecture "The Momentum Method" (Neural Networks II, part 3): at a constant
    gradient the velocity reaches :math:`-\eta g / (1 - \mu)`, ten times plain
    gradient descent's step for :math:`\mu = 0.9`. `momentum` may be a schedule
    such as `keras_adaptive.schedules.MomentumRamp`, the lecture's warm-up from
    0.5 to 0.9 or 0.99. Keras's `keras.optimizers.SGD(momentum=0.9)` performs the
    same update; for PyTorch see `SGD`. Passing `nesterov` raises a
    `ValueError`: use `SGD(momentum=..., nesterov=...)` to choose it.

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        momentum: :math:`\mu` in [0, 1), or a schedule.
        name: the optimizer's name (default: a unique snake_case name such as
            ``"momentum_1"``, given by Keras).
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        D. E. Rumelhart, G. E. Hinton and R. J. Williams (1986), "Learning
        representations by back-propagating errors", Nature 323, 533-536.

    Example:
        The lecture's momentum warm-up, as a schedule of the iteration count:

        >>> import keras
        >>> from keras_adaptive import optimizers, schedules
        >>> ramp = schedules.MomentumRamp(0.5, 0.99, ramp_steps=2000)
        >>> optimizer = optimizers.Momentum(learning_rate=0.01, momentum=ramp)
        >>> w = keras.Variable([1.0])
        >>> _ = optimizer.apply_gradients([(keras.ops.ones(w.shape), w)])
        >>> print(w.numpy().round(4))
        [0.99]
    """

    nesterov_preset = False


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Nesterov(_PresetSGD):
    r"""Nesterov's accelerated gradient: `SGD(momentum=0.9, nesterov=True)`.

    .. math::

        v &\leftarrow \mu v - \eta\, g \\
        w &\leftarrow w + \mu v - \eta\, g

    Sutskever et al. (2013): the gradient is, in effect, evaluated after the
    momentum step ("step twice" in the lecture's NAG slide), which corrects a
    velocity that overshoots sooner than classical momentum does. Keras's
    `keras.optimizers.SGD(momentum=0.9, nesterov=True)` performs the same
    update; for PyTorch see `SGD`.

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        momentum: :math:`\mu` in [0, 1), or a schedule.
        name: the optimizer's name (default: a unique snake_case name such as
            ``"nesterov_1"``, given by Keras).
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        I. Sutskever, J. Martens, G. Dahl and G. Hinton (2013), "On the
        importance of initialization and momentum in deep learning", ICML.

    Example:
        The first step is :math:`\mu v - \eta g = 0.9 \cdot (-0.1) - 0.1`:

        >>> import keras
        >>> from keras_adaptive.optimizers import Nesterov
        >>> w = keras.Variable([1.0])
        >>> optimizer = Nesterov(learning_rate=0.1)
        >>> _ = optimizer.apply_gradients([(keras.ops.ones(w.shape), w)])
        >>> print(w.numpy().round(4))
        [0.81]
    """

    nesterov_preset = True
