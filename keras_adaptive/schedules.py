"""Schedules of the iteration count.

* :class:`MomentumRamp`: the lecture's momentum warm-up, for ``momentum`` and
  ``beta_1``;
* :class:`ScaledLearningRate`: a learning-rate schedule (or callable)
  multiplied by a scale, through which the learning-rate policies of
  :mod:`keras_adaptive.callbacks` change a schedule's rate;
* :class:`ExponentialRamp`: the geometric rise of the learning-rate range
  test (:func:`keras_adaptive.find_learning_rate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_adaptive._validation import check_integer, check_range, refuse


@keras.saving.register_keras_serializable(package="keras_adaptive")
class MomentumRamp(LearningRateSchedule):
    """The lecture's momentum warm-up: start small, then raise it smoothly.

    Lecture "The Momentum Method: Behaviour" (Neural Networks II, part 3): at
    the beginning of learning there may be very large gradients, so use a
    small momentum (0.5); once they have disappeared, raise it smoothly to
    its final value (0.9 or even 0.99). With t the iteration count:

        p(t)  = clip((t - start_step) / ramp_steps, 0, 1)
        mu(t) = initial + (final - initial) * (1 - cos(pi * p(t))) / 2

    The half-cosine has zero slope at both ends, so the momentum neither
    jumps when the ramp starts nor when it ends. Pass it as `momentum` to
    `SGD`, `Momentum` or `Nesterov`, or as `beta_1` to `Adam`, `Adamax` or
    `Nadam`; it is evaluated inside the compiled train step, so it runs
    under XLA without retracing.

    Args:
        initial_momentum: mu before the ramp, in [0, 1).
        final_momentum: mu after the ramp, in [0, 1).
        ramp_steps: length of the ramp in iterations, >= 1.
        start_step: iterations at `initial_momentum` before the ramp, >= 0.

    References:
        * G. E. Hinton, "Neural Networks for Machine Learning", lecture 6c
          ("The momentum method": start at 0.5, raise to 0.9 or 0.99).
        * I. Sutskever, J. Martens, G. Dahl and G. Hinton (2013), "On the
          importance of initialization and momentum in deep learning", ICML.

    Example:
        >>> from keras_adaptive.schedules import MomentumRamp
        >>> ramp = MomentumRamp(0.5, 0.9, ramp_steps=100)
        >>> [round(float(ramp(t)), 4) for t in (0, 50, 100, 500)]
        [0.5, 0.7, 0.9, 0.9]
    """

    def __init__(
        self,
        initial_momentum: float = 0.5,
        final_momentum: float = 0.9,
        ramp_steps: int = 1000,
        start_step: int = 0,
    ):
        owner = type(self).__name__
        self.initial_momentum = check_range(
            owner, "initial_momentum", initial_momentum, 0.0, 1.0
        )
        self.final_momentum = check_range(
            owner, "final_momentum", final_momentum, 0.0, 1.0
        )
        self.ramp_steps = check_integer(owner, "ramp_steps", ramp_steps, 1)
        self.start_step = check_integer(owner, "start_step", start_step, 0)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.clip((step - self.start_step) / self.ramp_steps, 0.0, 1.0)
        rise = 0.5 * (1.0 - ops.cos(math.pi * progress))
        return (
            self.initial_momentum + (self.final_momentum - self.initial_momentum) * rise
        )

    def get_config(self) -> dict:
        return {
            "initial_momentum": self.initial_momentum,
            "final_momentum": self.final_momentum,
            "ramp_steps": self.ramp_steps,
            "start_step": self.start_step,
        }


@keras.saving.register_keras_serializable(package="keras_adaptive")
class ScaledLearningRate(LearningRateSchedule):
    """A learning-rate schedule (or callable) whose output is multiplied by a scale.

    ``ScaledLearningRate(schedule, scale)(step) == schedule(step) * scale``.
    The learning-rate policies of :mod:`keras_adaptive.callbacks` wrap a
    schedule or a callable rate in it to cut or raise that rate. The scale is
    a Python float and part of the configuration, so ``model.save`` and
    ``keras.models.load_model`` carry it with the optimizer's configuration
    and the optimizer's variables are exactly those of the optimizer without
    it. A compiled train function holds the scale as a constant: whoever
    changes ``scale`` during training asks the model for a new train function
    (the policies do it, one retrace per change; see "How a policy changes
    the rate" in the documentation of the callbacks).

    Args:
        schedule: a ``LearningRateSchedule`` (called with the step) or a
            callable without arguments (called as is), as accepted by the
            ``learning_rate`` argument of Keras optimizers.
        scale: the factor applied to the schedule's output, a float > 0.

    References:
        G. E. Hinton, "Neural Networks for Machine Learning", lecture 6b
        ("Reducing the learning rate"), the reduction the policies apply to a
        schedule.

    Example:
        >>> import keras
        >>> from keras_adaptive.schedules import ScaledLearningRate
        >>> decay = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
        >>> round(float(ScaledLearningRate(decay, scale=0.1)(10)), 6)
        0.005
    """

    def __init__(
        self,
        schedule: LearningRateSchedule | Callable[[], Any],
        scale: float = 1.0,
    ):
        owner = type(self).__name__
        if not callable(schedule):
            refuse(
                owner,
                "schedule",
                schedule,
                "a LearningRateSchedule or a callable with no arguments",
            )
        self.schedule = schedule
        self.scale = check_range(owner, "scale", scale, 0.0, low_closed=False)

    def __call__(self, step):
        if isinstance(self.schedule, LearningRateSchedule):
            rate = ops.convert_to_tensor(self.schedule(step))
        else:
            rate = ops.convert_to_tensor(self.schedule())
        if not keras.backend.is_float_dtype(rate.dtype):
            rate = ops.cast(rate, keras.backend.floatx())
        return ops.multiply(rate, ops.cast(self.scale, rate.dtype))

    def get_config(self) -> dict[str, Any]:
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "scale": self.scale,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScaledLearningRate:
        config = dict(config)
        # Written by keras_adaptive 0.2.0, whose scale was an optimizer
        # variable at this position; Keras then skips loading that file's
        # optimizer variables, with its own warning.
        config.pop("scale_index", None)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_adaptive")
class ExponentialRamp(keras.optimizers.schedules.LearningRateSchedule):
    """``min_lr * (max_lr / min_lr) ** (step / (num_steps - 1))``, then constant.

    The rate rises geometrically from ``min_lr`` at step 0 to ``max_lr`` at step
    ``num_steps - 1`` and stays there.

    References:
        L. N. Smith (2017), "Cyclical Learning Rates for Training Neural
        Networks", WACV (the learning-rate range test).

    Example:
        >>> from keras_adaptive.schedules import ExponentialRamp
        >>> ramp = ExponentialRamp(1e-4, 1.0, num_steps=5)
        >>> [float(f"{float(ramp(t)):.3g}") for t in range(6)]
        [0.0001, 0.001, 0.01, 0.1, 1.0, 1.0]
    """

    def __init__(self, min_lr: float, max_lr: float, num_steps: int):
        owner = type(self).__name__
        self.min_lr = check_range(owner, "min_lr", min_lr, 0.0, low_closed=False)
        self.max_lr = check_range(owner, "max_lr", max_lr, min_lr, low_closed=False)
        check_integer(owner, "num_steps", num_steps, 2)
        self.num_steps = num_steps

    def rate(self, step: np.ndarray | int) -> np.ndarray:
        """The schedule in float64 NumPy, for reporting."""
        fraction = np.minimum(np.asarray(step, "float64") / (self.num_steps - 1), 1.0)
        return self.min_lr * (self.max_lr / self.min_lr) ** fraction

    def __call__(self, step):
        fraction = ops.minimum(
            ops.cast(step, "float32") / float(self.num_steps - 1), 1.0
        )
        return self.min_lr * ops.exp(fraction * math.log(self.max_lr / self.min_lr))

    def get_config(self) -> dict[str, Any]:
        return {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "num_steps": self.num_steps,
        }


__all__ = [
    "ExponentialRamp",
    "MomentumRamp",
    "ScaledLearningRate",
]
