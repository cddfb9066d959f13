"""The thin base shared by every optimizer of the package.

`Optimizer` adds to `keras.optimizers.Optimizer` only what every optimizer of
the package needs:

* validation at construction: a hyperparameter outside its valid range, or an
  unknown keyword, raises `ValueError` naming the parameter, the value and the
  valid range;
* hyperparameters that may be a float or a `LearningRateSchedule` of the
  iteration count (`momentum`, `beta_1`), evaluated inside the compiled step;
* coupled L2 weight decay (`l2`): the lecture's G <- G + lambda W, added to
  the gradient before the optimizer's statistics see it, beside Keras's
  decoupled `weight_decay`;
* optimizer state ("slots") optionally stored in a lower precision
  (`state_dtype`), always computed in at least float32;
* sparse gradients (`tf.IndexedSlices`, JAX `BCOO`) with duplicate rows
  summed exactly: row updates where the optimizer's update is zero wherever
  the gradient is, the dense gradient elsewhere
  (`keras_adaptive.optimizers.sparse`);
* optionally, steps with a non-finite gradient skipped (`skip_nonfinite`);
* the order of the per-weight updates (`update_order`, see
  `keras_adaptive.optimizers.update_order`).

Slots are created by Keras's own `add_optimizer_variables`, so they follow
their weight's layout and placement. Backend-specific code (TensorFlow's
eager building and `tf.distribute` handling) lives in
`keras_adaptive.optimizers._backend`.

Everything else (learning-rate schedules, `weight_decay`, clipping, EMA, loss
scaling, gradient accumulation) is Keras's own base class, unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_adaptive._keras_api import KerasOptimizer
from keras_adaptive._validation import (
    check_bool,
    check_choice,
    check_integer,
    check_range,
    refuse,
)
from keras_adaptive.optimizers import _backend, sparse
from keras_adaptive.optimizers import update_order as update_order_module

#: Keyword arguments handled by Keras's base optimizer.
KERAS_OPTIONS = (
    "name",
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)
STATE_DTYPES = ("float32", "bfloat16", "float16")
LOW_PRECISION = ("float16", "bfloat16")
FLOAT32_MAX = 3.4028234663852886e38

Hyperparameter = float | LearningRateSchedule
LearningRate = float | LearningRateSchedule | Callable[[], Any]


def is_disabled(value: Hyperparameter) -> bool:
    """True for a hyperparameter fixed at 0 (a schedule is never disabled)."""
    return isinstance(value, float) and value == 0.0


def compute_dtype(variable) -> str:
    """The dtype the update is computed in: the variable's, at least float32."""
    dtype = keras.backend.standardize_dtype(variable.dtype)
    return "float32" if dtype in LOW_PRECISION else dtype


def one_minus_exp(log_value):
    """1 - exp(log_value), accurate also when the result is near 0.

    Bias corrections 1 - beta^t are computed as one_minus_exp(t * log(beta)):
    in float32, 1 - beta2^t for beta2 = 0.999 and small t would otherwise lose
    four of its seven significant digits.
    """
    return -ops.expm1(log_value)


class Optimizer(KerasOptimizer):
    """Base class of the package's optimizers.

    A subclass writes `build` (its slot variables, through `add_slots`),
    `update_step` (one variable's update, in `keras.ops`) and `get_config`,
    as Keras's own optimizers do. The base adds, for every subclass, the
    coupled L2 term

    .. math::

        g \\leftarrow g + \\lambda w

    (added once, to the gradient summed over replicas under `tf.distribute`),
    low-precision slots and the skipping of non-finite steps.

    Args:
        learning_rate: a float >= 0, a `LearningRateSchedule`, or a callable
            with no arguments returning the rate, as in Keras.
        l2: coupled L2 weight decay lambda >= 0, or `None`. The gradient of
            every variable becomes g + lambda * w before the update step sees
            it (after Keras's clipping), exactly as if lambda/2 * ||w||^2 were
            added to the loss. Contrast with Keras's `weight_decay`, which
            shrinks the weights outside the adaptive update (Loshchilov &
            Hutter, 2019, "Decoupled Weight Decay Regularization").
        state_dtype: dtype of the optimizer's slot variables: `None` (the
            variable's own dtype), `"float32"`, `"bfloat16"` or `"float16"`.
            Updates are always computed in at least float32; a low-precision
            state halves the bytes each step reads and writes.
        update_order: ``"auto"``, ``"always"`` or ``"off"``: whether each
            weight's update runs after the previous weight's (faster for large
            models on a CPU; see `keras_adaptive.optimizers.update_order`).
            No value changes with it.
        skip_nonfinite: skip every step in which any gradient element is NaN
            or infinite: the weights, the optimizer's state (slots, EMA,
            accumulators) and `iterations` stay as they were, as
            `keras.optimizers.LossScaleOptimizer` skips such steps, and
            `skipped_steps` counts them. Decided inside the compiled step
            (no host round trip). Off by default, as in Keras, where one NaN
            gradient element poisons its weight for good.
        **kwargs: the options of Keras's base optimizer: `name`,
            `weight_decay`, `clipnorm`, `clipvalue`, `global_clipnorm`,
            `use_ema`, `ema_momentum`, `ema_overwrite_frequency`,
            `loss_scale_factor`, `gradient_accumulation_steps`.

    References:
        * G. E. Hinton, "Neural Networks for Machine Learning", lecture 9
          (weight penalties: the gradient of lambda/2 ||w||^2 is lambda w).
        * I. Loshchilov and F. Hutter (2019), "Decoupled Weight Decay
          Regularization", ICLR.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive import optimizers
        >>> optimizer = optimizers.SGD(learning_rate=0.1, l2=0.5, skip_nonfinite=True)
        >>> w = keras.Variable(np.array([1.0, 2.0], "float32"))
        >>> optimizer.apply([np.array([0.0, 0.0], "float32")], [w])
        >>> keras.ops.convert_to_numpy(w).tolist()  # w - 0.1 * (0 + 0.5 w)
        [0.949999988079071, 1.899999976158142]
        >>> optimizer.apply([np.array([np.nan, 0.0], "float32")], [w])
        >>> int(optimizer.skipped_steps), int(optimizer.iterations)
        (1, 1)
    """

    def __init__(
        self,
        learning_rate: LearningRate,
        l2: float | None = None,
        state_dtype: str | None = None,
        skip_nonfinite: bool = False,
        update_order: str = "auto",
        **kwargs: Any,
    ):
        owner = type(self).__name__
        unknown = sorted(set(kwargs) - set(KERAS_OPTIONS))
        if unknown:
            raise ValueError(
                f"{owner}: unknown keyword argument(s) {unknown}; valid keywords "
                f"are the class's own and {list(KERAS_OPTIONS)}."
            )
        if not callable(learning_rate):
            learning_rate = check_range(owner, "learning_rate", learning_rate, 0.0)
            if learning_rate > FLOAT32_MAX:
                refuse(
                    owner,
                    "learning_rate",
                    learning_rate,
                    f"a float in [0.0, inf) that float32 can hold (at most "
                    f"{FLOAT32_MAX:.4g})",
                )
        _check_keras_options(owner, kwargs)
        if l2 is not None:
            l2 = check_range(owner, "l2", l2, 0.0)
        check_choice(owner, "state_dtype", state_dtype, (None, *STATE_DTYPES))
        check_bool(owner, "skip_nonfinite", skip_nonfinite)
        check_choice(owner, "update_order", update_order, update_order_module.MODES)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.l2 = l2
        self.state_dtype = state_dtype
        self.skip_nonfinite = skip_nonfinite
        self.update_order = update_order

    def _check(self, name: str, value: Any, low: float, high: float = math.inf, **kw):
        return check_range(type(self).__name__, name, value, low, high, **kw)

    def add_slots(self, variables, name: str, initializer: Any = "zeros") -> list:
        """One slot variable per weight, in `state_dtype` if set.

        Keras's `add_optimizer_variables`: each slot is created from its
        weight's reference (`add_variable_from_reference`), so it takes the
        weight's shape, layout under `keras.distribution.ModelParallel` and
        colocation under `tf.distribute`; a weight with
        `overwrite_with_gradient` gets `None`. Only the dtype differs, when
        `state_dtype` asks for another. `slots_of` returns a weight's slots.
        """
        self._slot_dtype = self.state_dtype
        try:
            slots = self.add_optimizer_variables(variables, name, initializer)
        finally:
            self._slot_dtype = None
        self._slot_lists.append(slots)
        return slots

    def add_variable(
        self,
        shape,
        initializer="zeros",
        dtype=None,
        aggregation="none",
        layout=None,
        name=None,
    ):
        # Keras's `add_variable_from_reference` gives a slot its weight's
        # dtype; inside `add_slots` the `state_dtype` replaces it.
        if getattr(self, "_slot_dtype", None) is not None:
            dtype = self._slot_dtype
        return super().add_variable(
            shape=shape,
            initializer=initializer,
            dtype=dtype,
            aggregation=aggregation,
            layout=layout,
            name=name,
        )

    def slots_of(self, variable) -> list:
        """The slot variables of one weight, in the order they were added."""
        index = self.variable_index(variable)
        return [slots[index] for slots in self._slot_lists if slots[index] is not None]

    def slot(self, slots: list, variable, dtype: str):
        """The slot of `variable` in `slots`, as a tensor of `dtype`."""
        return ops.cast(slots[self.variable_index(variable)], dtype)

    def hyperparameter(self, value: Hyperparameter, dtype: str, offset: int = 0):
        """A float, or a schedule evaluated at `iterations + offset`."""
        if isinstance(value, LearningRateSchedule):
            value = value(self.iterations + offset)
        return ops.cast(value, dtype)

    def build(self, variables):
        if _backend.is_tensorflow():
            # Before the slots are colocated with their weights.
            _backend.check_strategy(self)
        self._slot_lists = []
        super().build(variables)
        if self.skip_nonfinite:
            self._skipped_steps = self.add_variable(
                (),
                initializer="zeros",
                dtype="int32",
                aggregation="only_first_replica",
                name="skipped_steps",
            )

    @property
    def skipped_steps(self):
        """Steps skipped for a non-finite gradient (with `skip_nonfinite`).

        A scalar int32 variable, saved with the optimizer; `None` without
        `skip_nonfinite`.
        """
        return getattr(self, "_skipped_steps", None)

    @property
    def sparse_updates(self) -> bool:
        """Whether a step with a sparse gradient updates only its rows.

        True where the update of a weight row is zero wherever the row's
        gradient is (`SGD` without momentum, `Adagrad`, `RMSprop` without
        momentum, `Adadelta`); the optimizer's `update_step` then receives
        the `tf.IndexedSlices` or JAX `BCOO` gradient. Elsewhere, and with
        `l2` (whose term is dense) or any option that transforms the
        gradient first (clipping, loss scaling, accumulation,
        `skip_nonfinite`), the gradient is made dense before the step.
        """
        return False

    def _keeps_sparse_gradients(self) -> bool:
        transforms = (
            self.l2,
            self.clipnorm,
            self.clipvalue,
            self.global_clipnorm,
            self.loss_scale_factor,
            self.gradient_accumulation_steps,
            self.skip_nonfinite,
        )
        return self.sparse_updates and not any(transforms)

    def apply(self, grads, trainable_variables=None):
        grads, trainable_variables = _backend.prepare_apply(
            self, grads, trainable_variables
        )
        if not self._keeps_sparse_gradients():
            grads = [sparse.to_dense(g) for g in grads]
        if not self.skip_nonfinite or not grads:
            return super().apply(grads, trainable_variables)
        if not self.built:
            # Builds here, not inside the guarded step.
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
        _backend.apply_if_finite(
            self, super().apply, grads, trainable_variables, self._skipped_steps
        )

    def coupled_gradients(self, grads, variables) -> list:
        """The gradients with the coupled L2 term: g + l2 * w (if l2 is set)."""
        if not self.l2:
            return list(grads)
        return [
            g + ops.cast(self.l2, g.dtype) * ops.cast(v, g.dtype)
            for g, v in zip(grads, variables, strict=True)
        ]

    def update_variables(self, grads, trainable_variables, learning_rate):
        # On TensorFlow, Keras's override all-reduces the gradients over the
        # replicas and then calls `distributed_update_step` (below), where
        # the L2 term is added once to the summed gradient.
        if _backend.is_tensorflow():
            super().update_variables(grads, trainable_variables, learning_rate)
            return
        grads = self.coupled_gradients(grads, trainable_variables)
        update_order_module.update(
            self,
            list(zip(grads, trainable_variables, strict=True)),
            lambda gradient, variable: self.update_step(
                gradient, variable, learning_rate
            ),
        )

    def decay_weights(self, variables):
        if self.weight_decay is not None and _backend.is_torch():
            _backend.torch_apply_weight_decay(self, variables)
            return
        super().decay_weights(variables)

    def distributed_update_step(self, distribution, grads_and_vars, learning_rate):
        _backend.distributed_update_step(
            self, distribution, grads_and_vars, learning_rate
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "l2": self.l2,
                "state_dtype": self.state_dtype,
                "skip_nonfinite": self.skip_nonfinite,
                "update_order": self.update_order,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = {
            key: (
                keras.saving.deserialize_keras_object(value, custom_objects)
                if isinstance(value, dict) and "class_name" in value
                else value
            )
            for key, value in config.items()
        }
        return cls(**config)


def serialize_hyperparameter(value: Hyperparameter):
    """A config entry for a float-or-schedule hyperparameter."""
    if isinstance(value, LearningRateSchedule):
        return keras.optimizers.schedules.serialize(value)
    return value


def _check_keras_options(owner: str, options: dict) -> None:
    positive = ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor")
    for name in positive:
        if options.get(name) is not None:
            check_range(owner, name, options[name], 0.0, low_closed=False)
    if options.get("weight_decay") is not None:
        check_range(owner, "weight_decay", options["weight_decay"], 0.0)
    if options.get("ema_momentum") is not None:
        check_range(
            owner, "ema_momentum", options["ema_momentum"], 0.0, 1.0, high_closed=True
        )
    if options.get("ema_overwrite_frequency") is not None:
        check_integer(
            owner, "ema_overwrite_frequency", options["ema_overwrite_frequency"], 1
        )
    if options.get("gradient_accumulation_steps") is not None:
        check_integer(
            owner,
            "gradient_accumulation_steps",
            options["gradient_accumulation_steps"],
            2,
        )
