"""Schedules of the iteration count for hyperparameters other than the rate."""

from __future__ import annotations

import math

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_adaptive.optimizers.base import check_integer, check_range


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
    """

    def __init__(
        self,
        initial_momentum: float = 0.5,
        final_momentum: float = 0.9,
        ramp_steps: int = 1000,
        start_step: int = 0,
    ):
        owner = "MomentumRamp"
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
