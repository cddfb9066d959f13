"""Reading and multiplying an optimizer's learning rate, whatever its kind.

A policy changes the rate between steps of a compiled train function, and
must never change the optimizer's variables (their number and order are what
``keras.models.load_model`` matches when it restores them):

* a float learning rate is already a ``keras.Variable`` of the optimizer: it
  is assigned, and the compiled step reads the new value (on JAX it is part
  of the optimizer state the trainer passes to the jitted step);
* a ``LearningRateSchedule`` or a callable cannot be assigned. It is wrapped
  once in :class:`~keras_adaptive.schedules.ScaledLearningRate`, whose scale
  is a Python float in the optimizer's configuration, so ``model.save`` and
  ``load_model`` carry it and no variable is added. A compiled step holds the
  scale as a constant, so each change of the scale asks the model for a new
  train function, traced at the next step
  (:func:`keras_adaptive._keras_api.rebuild_train_function`).

A live scale would need a place that the compiled step reads as state: on
JAX that is only the model's and the optimizer's variables (any other
``keras.Variable`` is frozen into the ``jax.jit`` trace as a constant), and
an added optimizer variable is exactly what makes Keras's optimizers skip
loading all of their variables. One retrace per change of a schedule's
scale is the price; a float rate costs nothing.

With a ``LossScaleOptimizer`` the inner optimizer's rate is the one read and
changed.
"""

from __future__ import annotations

import math

import keras

from keras_adaptive._keras_api import (
    learning_rate_object,
    rebuild_train_function,
    step_bookkeeping,
)
from keras_adaptive._numpy import to_numpy
from keras_adaptive.schedules import ScaledLearningRate


def innermost_optimizer(
    optimizer: keras.optimizers.Optimizer,
) -> keras.optimizers.Optimizer:
    """The optimizer that owns the learning rate (unwraps ``LossScaleOptimizer``)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


class LearningRateControl:
    """Reads and multiplies the learning rate of ``model.optimizer``.

    A schedule or callable rate is wrapped in a ``ScaledLearningRate`` (scale
    1) when the control is created; the model's train function, if it has
    one, is rebuilt then, and after every change of the scale.
    """

    def __init__(self, model: keras.Model):
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "The model has no optimizer; compile it before training with a "
                "learning-rate policy."
            )
        self.model = model
        self.inner = innermost_optimizer(optimizer)
        rate = learning_rate_object(self.inner)
        self.variable = rate if isinstance(rate, keras.Variable) else None
        self.scaled = None
        if self.variable is None:
            if not isinstance(rate, ScaledLearningRate):
                rate = ScaledLearningRate(rate)
                self.inner.learning_rate = rate
                rebuild_train_function(model)
            self.scaled = rate

    @property
    def value(self) -> float:
        """The learning rate of the next step (a schedule is read at the
        optimizer's step count)."""
        rate = self.inner.learning_rate
        return float(to_numpy(rate))

    @property
    def scale(self) -> float:
        """The factor applied to a schedule (1.0 for a float rate)."""
        return 1.0 if self.scaled is None else self.scaled.scale

    def set_scale(self, scale: float) -> None:
        """Sets a schedule's scale; the train function is rebuilt if it changed."""
        if self.scaled is not None and scale != self.scaled.scale:
            self.scaled.scale = scale
            rebuild_train_function(self.model)

    def slot_variables(self) -> list[keras.Variable]:
        """The optimizer's variables that hold what training learned
        (momenta, accumulators, ...): all but the step counter, the gradients
        accumulated towards the next update, the ``skipped_steps`` counter of
        this package's optimizers and the learning rate."""
        counters = (getattr(self.inner, "skipped_steps", None), self.variable)
        skip = {id(v) for v in step_bookkeeping(self.inner)}
        skip.update(id(v) for v in counters if v is not None)
        return [v for v in self.inner.variables if id(v) not in skip]

    def key(self) -> tuple[int, float]:
        """What identifies the rate in effect: the rate object and the float
        a policy sets (the rate variable's value, or the scale)."""
        if self.variable is not None:
            return id(self.variable), float(to_numpy(self.variable))
        return id(learning_rate_object(self.inner)), self.scaled.scale

    def multiply(
        self, factor: float, min_lr: float = 0.0, max_lr: float = math.inf
    ) -> tuple[float, float]:
        """Multiplies the rate in effect by ``factor``, clipped to
        ``[min_lr, max_lr]``; returns the old and the new rate.

        For a schedule the scale is multiplied, so its later outputs are
        scaled by the same factor (the bounds hold at the current step).
        """
        old = self.value
        new = min(max(old * factor, min_lr), max_lr)
        if self.variable is not None:
            self.variable.assign(new)
        elif old > 0.0:
            self.set_scale(self.scale * new / old)
        else:  # the schedule is at 0 now: scale its later outputs
            self.set_scale(self.scale * factor)
        return old, self.value
