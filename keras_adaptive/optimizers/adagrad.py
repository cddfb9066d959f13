"""AdaGrad: per-weight rates from the sum of all squared gradients."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_adaptive.optimizers import sparse
from keras_adaptive.optimizers.base import LearningRate, Optimizer, compute_dtype


@keras.saving.register_keras_serializable(package="keras_adaptive")
class Adagrad(Optimizer):
    r"""AdaGrad: per-weight rates from the sum of all squared gradients.

    Per weight, with the accumulator :math:`G` starting at
    `initial_accumulator_value` (0, as in the lecture):

    .. math::

        G &\leftarrow G + g^2 \\
        w &\leftarrow w - \eta\, \frac{g}{\sqrt{G + \epsilon}}

    Lecture "Common Adaptive Strategies" (Machine Learning in Python,
    Optimizing Neural Networks) and "Adagrad" (Neural Network Optimization):
    weights in steep regions accumulate a large :math:`G` and slow down,
    weights on plateaus keep large steps. :math:`G` never decays, so the
    effective rate only shrinks; RMSprop and Adadelta fix that.

    Defaults: :math:`\eta = 0.01`, :math:`G_0 = 0`, :math:`\epsilon = 10^{-7}`;
    one accumulator per weight.

    Differences from other libraries: Keras's `keras.optimizers.Adagrad`
    starts :math:`G` at 0.1 and defaults to :math:`\eta = 0.001`, which damps
    the first steps by a factor :math:`\sqrt{1 + 0.1/g^2}`; here :math:`G`
    starts at 0 and :math:`\eta = 0.01`. PyTorch's `torch.optim.Adagrad` also
    starts at 0 but adds :math:`\epsilon` (:math:`10^{-10}`) outside the square
    root, :math:`g / (\sqrt{G} + \epsilon)`. The lecture's placement inside the
    root is kept here.

    Args:
        learning_rate: :math:`\eta`; a float >= 0, a schedule or a callable.
        initial_accumulator_value: :math:`G` at step 0, >= 0.
        epsilon: > 0, added to :math:`G` under the square root.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        J. Duchi, E. Hazan and Y. Singer (2011), "Adaptive Subgradient Methods
        for Online Learning and Stochastic Optimization", JMLR 12, 2121-2159.

    Example:
        The first step is :math:`\eta\, g / |g|`, whatever the gradient's size:

        >>> import keras
        >>> from keras_adaptive.optimizers import Adagrad
        >>> w = keras.Variable([1.0, 1.0])
        >>> optimizer = Adagrad(learning_rate=0.1)
        >>> g = keras.ops.convert_to_tensor([100.0, 0.01])
        >>> _ = optimizer.apply_gradients([(g, w)])
        >>> print(w.numpy().round(3))
        [0.9 0.9]
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        initial_accumulator_value: float = 0.0,
        epsilon: float = 1e-7,
        name: str | None = None,
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

    @property
    def sparse_updates(self) -> bool:
        return True

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        lr = ops.cast(learning_rate, dtype)
        slot = self._accumulators[self.variable_index(variable)]
        if sparse.is_sparse(gradient):
            # Only the touched rows of the accumulator and the weight change.
            rows = sparse.unique_rows(gradient)
            g = ops.cast(rows.values, dtype)
            old = ops.cast(sparse.take_rows(slot, rows.indices), dtype)
            accumulator = old + g * g
            sparse.set_variable_rows(self, slot, rows, accumulator)
            step = lr * g / ops.sqrt(accumulator + self.epsilon)
            sparse.add_to_variable_rows(self, variable, rows, -step)
            return
        g = ops.cast(gradient, dtype)
        accumulator = ops.cast(slot, dtype) + g * g
        self.assign(slot, accumulator)
        self.assign_sub(variable, lr * g / ops.sqrt(accumulator + self.epsilon))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon,
            }
        )
        return config
