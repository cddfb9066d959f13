"""Run-time control of an optimizer's learning rate, shared by the callbacks.

A callback that changes the learning rate between steps has to do it in a way
that reaches the compiled train function without retracing it:

* a float learning rate is already a ``keras.Variable`` tracked by the
  optimizer (``optimizer._learning_rate``), so it is assigned directly;
* a ``LearningRateSchedule`` or a callable cannot be assigned, so it is wrapped
  once in :class:`ScaledLearningRate`, which multiplies its output by a scalar
  variable created with ``optimizer.add_variable``. Being one of
  ``optimizer.variables``, the scale is part of the state that the JAX trainer
  passes explicitly to the jitted step, and a captured variable of the
  TensorFlow graph; a plain ``keras.Variable`` outside the optimizer would be
  frozen as a constant by ``jax.jit``.

The wrapping happens in ``Callback.set_model``, which ``fit`` calls before the
train function is first traced (and before any ``on_train_begin``, so before
``BackupAndRestore`` loads a checkpoint that includes the scale).

The callbacks' own state (best value, counters, best weights) lives in a
:class:`_CallbackState` attached to the optimizer as an attribute. Keras's
weight saving walks the optimizer's attributes, so ``model.save_weights`` and
therefore ``BackupAndRestore`` save and restore that state together with the
weights, at the same moment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

Schedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="keras_adaptive")
class ScaledLearningRate(Schedule):
    """A learning rate schedule (or callable) whose output is multiplied by a scale.

    ``ScaledLearningRate(schedule, scale)(step) == schedule(step) * scale``. The
    scale is normally a scalar ``keras.Variable`` owned by the optimizer, so it
    can be changed between steps without retracing the train function; after
    deserialization it is the float value it had when saved.

    Args:
        schedule: a ``LearningRateSchedule`` (called with the step) or a
            callable without arguments (called as is), as accepted by the
            ``learning_rate`` argument of Keras optimizers.
        scale: float or scalar ``keras.Variable`` multiplying the output.
    """

    def __init__(self, schedule: Schedule | Callable[[], Any], scale: Any = 1.0):
        if not callable(schedule):
            raise ValueError(
                "ScaledLearningRate needs a LearningRateSchedule or a callable; "
                f"received schedule={schedule!r}"
            )
        self.schedule = schedule
        self.scale = scale

    def __call__(self, step):
        if isinstance(self.schedule, Schedule):
            rate = ops.convert_to_tensor(self.schedule(step))
        else:
            rate = ops.convert_to_tensor(self.schedule())
        if not keras.backend.is_float_dtype(rate.dtype):
            rate = ops.cast(rate, keras.backend.floatx())
        return ops.multiply(rate, ops.cast(self.scale, rate.dtype))

    def get_config(self) -> dict[str, Any]:
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "scale": float(ops.convert_to_numpy(self.scale)),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScaledLearningRate:
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def innermost_optimizer(optimizer: keras.optimizers.Optimizer):
    """The optimizer that owns the learning rate (unwraps ``LossScaleOptimizer``)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def sync_model_state(model: keras.Model) -> None:
    """Write the JAX trainer's in-flight state back into the variables.

    Under JAX, ``fit`` keeps the variables' values outside the variables during
    an epoch; a callback that reads or assigns variables between batches has
    to sync first. After the sync the trainer re-reads the variables before its
    next step, so assignments made by the callback take effect. Elsewhere this
    is a no-op.
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


class LearningRateControl:
    """Reads and multiplies the learning rate in effect, whatever its kind.

    Created by :func:`attach`; see the module docstring for the mechanism.
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer):
        self.optimizer = optimizer
        self.inner = innermost_optimizer(optimizer)
        self.scale = None
        self.wrapped = False
        rate = self.inner._learning_rate
        if isinstance(rate, keras.Variable):
            self.variable = rate
            return
        self.variable = None
        if isinstance(rate, ScaledLearningRate) and isinstance(
            rate.scale, keras.Variable
        ):
            if any(v is rate.scale for v in self.inner.variables):
                self.scale = rate.scale
                return
            initial = float(ops.convert_to_numpy(rate.scale))
            rate = rate.schedule
        elif isinstance(rate, ScaledLearningRate):
            initial = float(rate.scale)
            rate = rate.schedule
        else:
            initial = 1.0
        self.scale = self.inner.add_variable(
            (), initializer=keras.initializers.Constant(initial), name="lr_scale"
        )
        self.inner.learning_rate = ScaledLearningRate(rate, self.scale)
        self.wrapped = True

    @property
    def value(self) -> float:
        """The learning rate of the next step (a schedule is read at ``iterations``)."""
        return float(ops.convert_to_numpy(self.inner.learning_rate))

    @property
    def scale_value(self) -> float:
        """The factor applied to the schedule (1.0 for a float learning rate)."""
        if self.scale is None:
            return 1.0
        return float(ops.convert_to_numpy(self.scale))

    def multiply(
        self, factor: float, min_lr: float = 0.0, max_lr: float = float("inf")
    ) -> tuple[float, float]:
        """Multiply the rate in effect by ``factor``, clipped to ``[min_lr, max_lr]``.

        For a schedule the scale is multiplied, so the schedule's later outputs
        are scaled by the same amount. Returns ``(old, new)`` rates.
        """
        old = self.value
        new = float(np.clip(old * factor, min_lr, max_lr))
        if self.variable is not None:
            self.variable.assign(new)
        elif old > 0.0:
            self.scale.assign(self.scale_value * new / old)
        return old, self.value


def attach(model: keras.Model) -> LearningRateControl:
    """Make ``model.optimizer``'s learning rate controllable without retracing.

    Builds the optimizer first when the model is built (so that the scale
    variable is created after the slots, the same order every run), wraps a
    schedule (inside the model's ``tf.distribute`` strategy scope, if any),
    and asks ``fit`` for a fresh (untraced) train function when the
    optimizer's variables changed.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(
            "The model has no optimizer; compile it before training with a "
            "learning-rate callback."
        )
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if not optimizer.built and model.built:
            optimizer.build(model.trainable_variables)
        control = LearningRateControl(optimizer)
    if control.wrapped and getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)
    return control


class _Box:
    """Holds the state without Keras's attribute tracking wrapping it."""

    def __init__(self, values: dict[str, Any]):
        self.values = values


class _CallbackState(keras.layers.Layer):
    """A callback's state, saved and loaded with the model's weights.

    ``values`` maps names to floats or ints; ``arrays`` is a list of numpy
    arrays (the best weights). Attached to the optimizer, it is written by
    ``model.save_weights`` and read back by ``model.load_weights``.
    """

    def __init__(self, values: dict[str, Any], **kwargs):
        super().__init__(**kwargs)
        self._box = _Box(dict(values))
        self._arrays = _Box({"list": []})

    @property
    def values(self) -> dict[str, Any]:
        return self._box.values

    @property
    def arrays(self) -> list[np.ndarray]:
        return self._arrays.values["list"]

    @arrays.setter
    def arrays(self, arrays: list[np.ndarray]) -> None:
        self._arrays.values["list"] = [np.array(a, copy=True) for a in arrays]

    def save_own_variables(self, store) -> None:
        for key, value in self.values.items():
            store[f"value_{key}"] = np.asarray(value, dtype="float64")
        store["num_arrays"] = np.asarray(len(self.arrays))
        for i, array in enumerate(self.arrays):
            store[f"array_{i}"] = array

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if not keys:
            return
        for key in self.values:
            name = f"value_{key}"
            if name in keys:
                value = float(np.asarray(store[name]))
                self.values[key] = (
                    int(value) if isinstance(self.values[key], int) else value
                )
        count = int(np.asarray(store["num_arrays"]))
        self.arrays = [np.asarray(store[f"array_{i}"]) for i in range(count)]


def attach_state(model: keras.Model, state: _CallbackState) -> None:
    """Attach ``state`` to ``model.optimizer`` so that it is saved with it."""
    setattr(model.optimizer, f"_keras_adaptive_{state.name}", state)
