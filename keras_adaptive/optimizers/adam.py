"""Adam and its relatives: Adamax and Nadam (Kingma & Ba 2015; Dozat 2016)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

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

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        dtype = self._log_decay_product.dtype
        self.assign_add(
            self._log_decay_product, ops.log(self.first_moment_decay(dtype))
        )
        super()._backend_update_step(grads, trainable_variables, learning_rate)

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
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization",
    ICLR, Algorithm 1).

    Per weight, with m = v = 0 and t counting steps from 1:

        m <- beta_1 * m + (1 - beta_1) * g
        v <- beta_2 * v + (1 - beta_2) * g^2
        m_hat = m / (1 - beta_1^t)
        v_hat = v / (1 - beta_2^t)
        w <- w - eta * m_hat / (sqrt(v_hat) + epsilon)

    With `amsgrad=True` (Reddi, Kale & Kumar 2018, "On the Convergence of
    Adam and Beyond"), v_max <- max(v_max, v) replaces v in v_hat.

    Lectures: "Adaptive Momentum" (Machine Learning in Python) and "Adam"
    (Neural Network Optimization, slides 118-127: momentum plus RMSprop plus
    bias correction). `beta_1` may be a schedule of the iteration count; the
    bias correction then uses the product of the rates actually applied,
    1 - prod_i beta_1(i), which reduces to 1 - beta_1^t for a constant.

    Differences from other libraries: Keras's `keras.optimizers.Adam` uses
    the paper's "efficient" ordering, which adds epsilon to the uncorrected
    sqrt(v), i.e. an effective epsilon of epsilon * sqrt(1 - beta_2^t) that
    is ~30 times smaller at t = 1, and defaults to epsilon = 1e-7. Here
    epsilon = 1e-8 is added to sqrt(v_hat), as in Algorithm 1 and in
    PyTorch's `torch.optim.Adam`.

    Args:
        learning_rate: eta; a float >= 0, a schedule or a callable.
        beta_1: first-moment decay in [0, 1), or a schedule.
        beta_2: second-moment decay in [0, 1).
        epsilon: > 0, added to sqrt(v_hat).
        amsgrad: use the running maximum of v.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: Hyperparameter = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        amsgrad: bool = False,
        name: str = "Adam",
        **kwargs: Any,
    ):
        if not isinstance(amsgrad, bool):
            raise ValueError(
                f"Adam: `amsgrad` must be True or False; received amsgrad={amsgrad!r}."
            )
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
        index = self._get_variable_index(variable)
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
    """AdaMax (Kingma & Ba 2015, section 7.1, Algorithm 2): Adam with the
    infinity norm in place of the L2 norm of past gradients.

        m <- beta_1 * m + (1 - beta_1) * g
        u <- max(beta_2 * u, |g|)
        w <- w - eta / (1 - beta_1^t) * m / (u + epsilon)

    u needs no bias correction. epsilon only guards the division while a
    weight has seen nothing but zero gradients (the paper has none).

    Differences from other libraries: Keras's `keras.optimizers.Adamax`
    defaults to eta = 0.001 and epsilon = 1e-7; here eta = 0.002 as in the
    paper. PyTorch's `torch.optim.Adamax` adds epsilon inside the maximum,
    u <- max(beta_2 * u, |g| + epsilon).

    Args:
        learning_rate: eta; a float >= 0, a schedule or a callable.
        beta_1: first-moment decay in [0, 1), or a schedule.
        beta_2: decay of the infinity norm, in [0, 1).
        epsilon: > 0, added to u.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.002,
        beta_1: Hyperparameter = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        name: str = "Adamax",
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
        index = self._get_variable_index(variable)
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
    """Nadam (Dozat 2016, "Incorporating Nesterov Momentum into Adam", ICLR
    workshop, Algorithm 2): Adam whose momentum step is taken Nesterov-style.

    The momentum follows the paper's warm-up schedule

        mu_t = beta_1 * (1 - 0.5 * 0.96^(t * psi)),   psi = momentum_decay

    and, with m = n = 0 and t counting steps from 1:

        m     <- mu_t * m + (1 - mu_t) * g
        n     <- beta_2 * n + (1 - beta_2) * g^2
        m_bar =  mu_{t+1} * m / (1 - prod_{i<=t+1} mu_i)
                 + (1 - mu_t) * g / (1 - prod_{i<=t} mu_i)
        n_hat =  n / (1 - beta_2^t)
        w     <- w - eta * m_bar / (sqrt(n_hat) + epsilon)

    Lecture "Common Adaptive Strategies" (Machine Learning in Python): "same
    as Adam, but with Nesterov's acceleration". `beta_1` may itself be a
    schedule; mu_t then uses beta_1(t).

    Differences from other libraries: Keras's `keras.optimizers.Nadam`
    computes 0.96^t (psi = 1), a momentum warm-up 250 times faster than the
    paper's, updates m with the constant beta_1 instead of mu_t, and
    defaults to eta = 0.001, epsilon = 1e-7. PyTorch's `torch.optim.NAdam`
    uses the paper's psi = 0.004 but also updates m with the constant beta_1.
    Here the paper's Algorithm 2 is followed, with eta = 0.002.

    Args:
        learning_rate: eta; a float >= 0, a schedule or a callable.
        beta_1: final momentum in [0, 1), or a schedule.
        beta_2: second-moment decay in [0, 1).
        epsilon: > 0, added to sqrt(n_hat).
        momentum_decay: psi >= 0; the momentum reaches beta_1 * (1 - 0.5 /
            e) after t = 1 / (psi * ln(1 / 0.96)) steps (6,124 for 0.004).
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.002,
        beta_1: Hyperparameter = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        momentum_decay: float = 0.004,
        name: str = "Nadam",
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
        index = self._get_variable_index(variable)
        mu = self.first_moment_decay(dtype)
        mu_next = self.first_moment_decay(dtype, offset=1)
        log_product = ops.cast(self._log_decay_product, dtype)

        m = mu * self.slot(self._momentums, variable, dtype) + (1.0 - mu) * g
        n = self.beta_2 * self.slot(self._velocities, variable, dtype)
        n += (1.0 - self.beta_2) * g * g
        self.assign(self._momentums[index], m)
        self.assign(self._velocities[index], n)
        m_bar = mu_next * m / one_minus_exp(log_product + ops.log(mu_next))
        m_bar += (1.0 - mu) * g / one_minus_exp(log_product)
        n_hat = n / self.second_moment_correction(dtype)
        self.assign_sub(variable, lr * m_bar / (ops.sqrt(n_hat) + self.epsilon))

    def get_config(self) -> dict:
        config = super().get_config()
        config["momentum_decay"] = self.momentum_decay
        return config
