"""Learning-rate policies of the lectures as Keras callbacks.

* :class:`CoolDownOnPlateau`: reduce the rate by 10 once training has
  converged, 1-3 times, then stop and restore the best weights;
* :class:`BoldDriver`: grow the rate while the loss falls, halve it and undo
  the steps when it does not;
* :func:`find_learning_rate`: the learning-rate range test (training loss
  against the learning rate).

All work with float rates, ``LearningRateSchedule`` objects and callables,
under ``jit_compile=True`` without retracing. ``ScaledLearningRate`` (the
schedule wrapper the policies use) is defined in
:mod:`keras_adaptive.schedules` and re-exported here.
"""

from keras_adaptive.callbacks.bold_driver import BoldDriver
from keras_adaptive.callbacks.plateau import CoolDownOnPlateau
from keras_adaptive.callbacks.range_test import (
    ExponentialRamp,
    LearningRateRangeResult,
    find_learning_rate,
)
from keras_adaptive.schedules import ScaledLearningRate

__all__ = [
    "BoldDriver",
    "CoolDownOnPlateau",
    "ExponentialRamp",
    "LearningRateRangeResult",
    "ScaledLearningRate",
    "find_learning_rate",
]
