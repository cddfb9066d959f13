"""AdaGrad: per-weight rates from the sum of all squared gradients."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive.optimizers.base import LearningRate, Optimizer, compute_dtype


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Adagrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for
    Online Learning and Stochastic Optimization", JMLR 12).

    Per weight, with the accumulator G starting at `initial_accumulator_value`
    (0, as in the lecture):

        G <- G + g * g
        w <- w - eta * g / sqrt(G + epsilon)

    Lecture "Common Adaptive Strategies" (Machine Learning in Python,
    Optimizing Neural Networks) and "Adagrad" (Neural Network Optimization):
    weights in steep regions accumulate a large G and slow down, weights on
    plateaus keep large steps. G never decays, so the effective rate only
    shrinks; RMSprop and Adadelta fix that.

    Differences from other libraries: Keras's `keras.optimizers.Adagrad`
    starts G at 0.1 and defaults to eta = 0.001, which damps the first steps
    by a factor sqrt(1 + 0.1/g^2); here G starts at 0 and eta = 0.01.
    PyTorch's `torch.optim.Adagrad` also starts at 0 but adds epsilon (1e-10)
    outside the square root: g / (sqrt(G) + epsilon). The lecture's placement
    inside the root is kept here.

    Args:
        learning_rate: eta; a float >= 0, a schedule or a callable.
        initial_accumulator_value: G at step 0, >= 0.
        epsilon: > 0, added to G under the square root.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        initial_accumulator_value: float = 0.0,
        epsilon: float = 1e-7,
        name: str = "Adagrad",
        **kwargs: Any,
    ):
        initial_accumulator_value = self._check(
            "initial_accumulator_value", initial_accumulator_value, 0.0
        )
        epsilon = self._check("epsilon", epsilon, 0.0, low_closed=False)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._accumulators = self.add_slots(
            variables,
            "accumulator",
            initializer=keras.initializers.Constant(self.initial_accumulator_value),
        )

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        accumulator = self.slot(self._accumulators, variable, dtype) + g * g
        self.assign(self._accumulators[self._get_variable_index(variable)], accumulator)
        self.assign_sub(variable, lr * g * ops.rsqrt(accumulator + self.epsilon))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon,
            }
        )
        return config
