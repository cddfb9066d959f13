"""Adam and its relatives: Adamax and Nadam (Kingma & Ba 2015; Dozat 2016)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_adaptive._validation import check_bool
from keras_adaptive.optimizers.base import (
    Hyperparameter,
    LearningRate,
    Optimizer,
    compute_dtype,
    one_minus_exp,
    serialize_hyperparameter,
)


def _log(value: float) -> float:
    return math.log(value) if value > 0 else -math.inf


class _FirstMomentOptimizer(Optimizer):
    """Shared by the Adam family: `beta_1`, `beta_2`, `epsilon` and the
    running log-product of the first-moment decay rates.

    The first moment m is an average of past gradients with weights summing
    to 1 - prod_i beta_1(i); that product is kept (as a sum of logarithms) in
    one scalar variable so that `beta_1` may be a schedule and the bias
    correction stays exact.
    """

    def __init__(self, learning_rate, beta_1, beta_2, epsilon, **kwargs):
        beta_1 = self._check("beta_1", beta_1, 0.0, 1.0, schedule=True)
        beta_2 = self._check("beta_2", beta_2, 0.0, 1.0)
        epsilon = self._check("epsilon", epsilon, 0.0, low_closed=False)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, variables):
        super().build(variables)
        self._log_decay_product = self.add_variable(
            shape=(), dtype=keras.backend.floatx(), name="log_decay_product"
        )

    def first_moment_decay(self, dtype: str, offset: int = 0):
        """The first-moment decay rate of step `iterations + 1 + offset`."""
        return self.hyperparameter(self.beta_1, dtype, offset)

    def update_variables(self, grads, trainable_variables, learning_rate):
        dtype = self._log_decay_product.dtype
        self.assign_add(
            self._log_decay_product, ops.log(self.first_moment_decay(dtype))
        )
        super().update_variables(grads, trainable_variables, learning_rate)

    def first_moment_correction(self, dtype: str):
        """1 - prod_{i <= t} beta_1(i)."""
        return one_minus_exp(ops.cast(self._log_decay_product, dtype))

    def second_moment_correction(self, dtype: str):
        """1 - beta_2^t."""
        step = ops.cast(self.iterations + 1, dtype)
        return one_minus_exp(step * _log(self.beta_2))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "beta_1": serialize_hyperparameter(self.beta_1),
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Adam(_FirstMomentOptimizer):
    r"""Adam: bias-corrected first and second moments of the gradient.

    Per weight, with :math:`m = v = 0` and :math:`t` counting steps from 1
    (Kingma & Ba 2015, Algorithm 1):

    .. math::

        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \hat m &= \frac{m}{1 - \beta_1^t}, \qquad
        \hat v = \frac{v}{1 - \beta_2^t} \\
        w &\leftarrow w - \eta\, \frac{\hat m}{\sqrt{\hat v} + \epsilon}

    With `amsgrad=True` (Reddi, Kale & Kumar 2018),
    :math:`v_{\max} \leftarrow \max(v_{\max}, v)` replaces :math:`v` in
    :math:`\hat v`.

    Lectures: "Adaptive Momentum" (Machine Learning in Python) and "Adam"
    (Neural Network Optimization: momentum plus RMSprop plus bias correction).
    `beta_1` may be a schedule of the iteration count; the bias correction then
    uses the product of the rates actually applied,
    :math:`1 - \prod_{i \le t} \beta_1(i)`, which reduces to
    :math:`1 - \beta_1^t` for a constant. Both corrections are computed as
    :math:`-\mathrm{expm1}(t \log \beta)`, which keeps :math:`1 - 0.999^t`
    accurate to float32 precision at small :math:`t`.

    Defaults: :math:`\eta = 0.001`, :math:`\beta_1 = 0.9`,
    :math:`\beta_2 = 0.999`, :math:`\epsilon = 10^{-8}`, as in the paper; two
    slots per weight (three with `amsgrad`).

    Differences from other libraries: Keras's `keras.optimizers.Adam` uses the
    paper's "efficient" ordering, which adds :math:`\epsilon` to the
    uncorrected :math:`\sqrt{v}`, i.e. an effective epsilon of
    :math:`\epsilon \sqrt{1 - \beta_2^t}`, about 30 times smaller at
    :math:`t = 1`, and defaults to :math:`\epsilon = 10^{-7}`. With
    :math:`\epsilon = 0.01` and a gradient of 0.01, the first step of this
    class is :math:`0.5\,\eta` (Algorithm 1), Keras's :math:`0.031\,\eta`.
    Here :math:`\epsilon = 10^{-8}` is added to :math:`\sqrt{\hat v}`, as in
    Algorithm 1 and in PyTorch's `torch.optim.Adam`. Keras's `weight_decay`
    with this class is AdamW's decoupled decay (see the weight-decay page for
    how Keras's factor maps to AdamW's :math:`\lambda`).

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        beta_1: first-moment decay in [0, 1), or a schedule.
        beta_2: second-moment decay in [0, 1).
        epsilon: > 0, added to :math:`\sqrt{\hat v}`.
        amsgrad: use the running maximum of :math:`v`.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        * D. P. Kingma and J. Ba (2015), "Adam: A Method for Stochastic
          Optimization", ICLR, Algorithm 1.
        * S. J. Reddi, S. Kale and S. Kumar (2018), "On the Convergence of Adam
          and Beyond", ICLR.

    Example:
        The first step has the size :math:`\eta` in every coordinate
        (:math:`\hat m / \sqrt{\hat v} = \operatorname{sign} g`):

        >>> import keras
        >>> from keras_adaptive.optimizers import Adam
        >>> w = keras.Variable([1.0, -2.0])
        >>> optimizer = Adam(learning_rate=0.1)
        >>> g = keras.ops.convert_to_tensor([0.5, -0.001])
        >>> _ = optimizer.apply_gradients([(g, w)])
        >>> print(w.numpy().round(4))
        [ 0.9 -1.9]
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: Hyperparameter = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        amsgrad: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ):
        check_bool(type(self).__name__, "amsgrad", amsgrad)
        super().__init__(learning_rate, beta_1, beta_2, epsilon, name=name, **kwargs)
        self.amsgrad = amsgrad

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_slots(variables, "momentum")
        self._velocities = self.add_slots(variables, "velocity")
        self._velocity_maxima = (
            self.add_slots(variables, "velocity_max") if self.amsgrad else []
        )

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = self.variable_index(variable)
        beta_1 = self.first_moment_decay(dtype)

        m = beta_1 * self.slot(self._momentums, variable, dtype) + (1.0 - beta_1) * g
        v = self.beta_2 * self.slot(self._velocities, variable, dtype)
        v += (1.0 - self.beta_2) * g * g
        self.assign(self._momentums[index], m)
        self.assign(self._velocities[index], v)
        if self.amsgrad:
            v = ops.maximum(self.slot(self._velocity_maxima, variable, dtype), v)
            self.assign(self._velocity_maxima[index], v)
        # m_hat / (sqrt(v_hat) + eps), with both corrections folded into
        # scalars: one division per weight instead of three.
        step_size = lr / self.first_moment_correction(dtype)
        root_correction = ops.rsqrt(self.second_moment_correction(dtype))
        self.assign_sub(
            variable,
            step_size * m / (ops.sqrt(v) * root_correction + self.epsilon),
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config["amsgrad"] = self.amsgrad
        return config


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Adamax(_FirstMomentOptimizer):
    r"""AdaMax: Adam with the infinity norm of past gradients.

    Kingma & Ba (2015), section 7.1, Algorithm 2: the L2 norm of Adam's
    second moment is replaced by the infinity norm.

    .. math::

        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g \\
        u &\leftarrow \max(\beta_2 u, |g|) \\
        w &\leftarrow w - \frac{\eta}{1 - \beta_1^t}\, \frac{m}{u + \epsilon}

    :math:`u` needs no bias correction. :math:`\epsilon` only guards the
    division while a weight has seen nothing but zero gradients (the paper has
    none). Since :math:`|m| \le u`, a step is at most
    :math:`\eta / (1 - \beta_1^t)`.

    Defaults: :math:`\eta = 0.002`, :math:`\beta_1 = 0.9`,
    :math:`\beta_2 = 0.999` as in the paper, :math:`\epsilon = 10^{-8}`; two
    slots per weight.

    Differences from other libraries: Keras's `keras.optimizers.Adamax`
    defaults to :math:`\eta = 0.001` and :math:`\epsilon = 10^{-7}`. PyTorch's
    `torch.optim.Adamax` adds :math:`\epsilon` inside the maximum,
    :math:`u \leftarrow \max(\beta_2 u, |g| + \epsilon)`.

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        beta_1: first-moment decay in [0, 1), or a schedule.
        beta_2: decay of the infinity norm, in [0, 1).
        epsilon: > 0, added to :math:`u`.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        D. P. Kingma and J. Ba (2015), "Adam: A Method for Stochastic
        Optimization", ICLR, section 7.1 and Algorithm 2.

    Example:
        The first step is :math:`\eta\, m / (u (1 - \beta_1)) = \eta`:

        >>> import keras
        >>> from keras_adaptive.optimizers import Adamax
        >>> w = keras.Variable([1.0])
        >>> optimizer = Adamax()
        >>> _ = optimizer.apply_gradients([(keras.ops.ones(w.shape), w)])
        >>> print(w.numpy().round(4))
        [0.998]
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.002,
        beta_1: Hyperparameter = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, name=name, **kwargs)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_slots(variables, "momentum")
        self._norms = self.add_slots(variables, "norm")

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = self.variable_index(variable)
        beta_1 = self.first_moment_decay(dtype)

        m = beta_1 * self.slot(self._momentums, variable, dtype) + (1.0 - beta_1) * g
        u = ops.maximum(
            self.beta_2 * self.slot(self._norms, variable, dtype), ops.abs(g)
        )
        self.assign(self._momentums[index], m)
        self.assign(self._norms[index], u)
        step_size = lr / self.first_moment_correction(dtype)
        self.assign_sub(variable, step_size * m / (u + self.epsilon))


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Nadam(_FirstMomentOptimizer):
    r"""Nadam: Adam whose momentum step is taken Nesterov-style.

    Dozat (2016), Algorithm 2. The momentum follows the paper's warm-up
    schedule, with :math:`\psi` = `momentum_decay`,

    .. math::

        \mu_t = \beta_1 \left(1 - \tfrac{1}{2}\, 0.96^{t \psi}\right)

    and, with :math:`m = n = 0` and :math:`t` counting steps from 1:

    .. math::

        m &\leftarrow \mu_t m + (1 - \mu_t)\, g \\
        n &\leftarrow \beta_2 n + (1 - \beta_2)\, g^2 \\
        \bar m &= \frac{\mu_{t+1}\, m}{1 - \prod_{i \le t+1} \mu_i}
                 + \frac{(1 - \mu_t)\, g}{1 - \prod_{i \le t} \mu_i} \\
        \hat n &= \frac{n}{1 - \beta_2^t} \\
        w &\leftarrow w - \eta\, \frac{\bar m}{\sqrt{\hat n} + \epsilon}

    Lecture "Common Adaptive Strategies" (Machine Learning in Python): "same as
    Adam, but with Nesterov's acceleration". `beta_1` may itself be a schedule;
    :math:`\mu_t` then uses :math:`\beta_1(t)`. The momentum reaches
    :math:`\beta_1 (1 - 0.5 / e)` after :math:`t = 1 / (\psi \ln(1 / 0.96))`
    steps (6,124 for :math:`\psi = 0.004`).

    Defaults: :math:`\eta = 0.002`, :math:`\beta_1 = 0.9`,
    :math:`\beta_2 = 0.999`, :math:`\epsilon = 10^{-8}`, :math:`\psi = 0.004`,
    as in the paper; two slots per weight.

    Differences from other libraries: Keras's `keras.optimizers.Nadam`
    computes :math:`0.96^t` (:math:`\psi = 1`), a momentum warm-up 250 times
    faster than the paper's, updates :math:`m` with the constant
    :math:`\beta_1` instead of :math:`\mu_t`, and defaults to
    :math:`\eta = 0.001`, :math:`\epsilon = 10^{-7}`. PyTorch's
    `torch.optim.NAdam` uses the paper's :math:`\psi = 0.004` but also updates
    :math:`m` with the constant :math:`\beta_1`. Here the paper's Algorithm 2
    is followed.

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        beta_1: final momentum in [0, 1), or a schedule.
        beta_2: second-moment decay in [0, 1).
        epsilon: > 0, added to :math:`\sqrt{\hat n}`.
        momentum_decay: :math:`\psi` >= 0, the speed of the momentum warm-up.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        T. Dozat (2016), "Incorporating Nesterov Momentum into Adam", ICLR
        workshop track, Algorithm 2.

    Example:
        With a constant gradient, :math:`\bar m` adds the bias-corrected
    momentum and the current gradient's own share, so the first steps are
    larger than :math:`\eta` (0.0131, 0.0108, 0.0103 for
    :math:`\eta = 0.01`):

    >>> import keras
    >>> from keras_adaptive.optimizers import Nadam
    >>> w = keras.Variable([1.0])
    >>> optimizer = Nadam(learning_rate=0.01)
    >>> for _ in range(3):
    ...     _ = optimizer.apply_gradients([(keras.ops.ones(w.shape), w)])
    >>> print(w.numpy().round(4))
    [0.9657]
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.002,
        beta_1: Hyperparameter = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        momentum_decay: float = 0.004,
        name: str | None = None,
        **kwargs: Any,
    ):
        momentum_decay = self._check("momentum_decay", momentum_decay, 0.0)
        super().__init__(learning_rate, beta_1, beta_2, epsilon, name=name, **kwargs)
        self.momentum_decay = momentum_decay

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_slots(variables, "momentum")
        self._velocities = self.add_slots(variables, "velocity")

    def first_moment_decay(self, dtype: str, offset: int = 0):
        """mu_{t + offset} = beta_1 * (1 - 0.5 * 0.96^((t + offset) * psi))."""
        step = ops.cast(self.iterations + 1 + offset, dtype)
        warm_up = 1.0 - 0.5 * ops.power(
            ops.cast(0.96, dtype), step * self.momentum_decay
        )
        return self.hyperparameter(self.beta_1, dtype, offset) * warm_up

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = self.variable_index(variable)
        mu = self.first_moment_decay(dtype)
        mu_next = self.first_moment_decay(dtype, offset=1)
        log_product = ops.cast(self._log_decay_product, dtype)

        m = mu * self.slot(self._momentums, variable, dtype) + (1.0 - mu) * g
        n = self.beta_2 * self.slot(self._velocities, variable, dtype)
        n += (1.0 - self.beta_2) * g * g
        self.assign(self._momentums[index], m)
        self.assign(self._velocities[index], n)
        # The bias corrections folded into scalars, as in Adam: one division
        # per weight instead of four (TensorFlow's XLA keeps a division by a
        # run-time scalar as a division).
        m_scale = mu_next / one_minus_exp(log_product + ops.log(mu_next))
        g_scale = (1.0 - mu) / one_minus_exp(log_product)
        root_correction = ops.rsqrt(self.second_moment_correction(dtype))
        m_bar = m_scale * m + g_scale * g
        self.assign_sub(
            variable,
            lr * m_bar / (ops.sqrt(n) * root_correction + self.epsilon),
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config["momentum_decay"] = self.momentum_decay
        return config
