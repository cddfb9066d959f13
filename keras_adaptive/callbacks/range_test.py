"""Deprecated module: the range test is `keras_adaptive.range_test`, its ramp
`keras_adaptive.schedules.ExponentialRamp`."""

from keras_adaptive._deprecation import warn_moved
from keras_adaptive.range_test import LearningRateRangeResult, find_learning_rate
from keras_adaptive.schedules import ExponentialRamp

warn_moved(__name__, "keras_adaptive.range_test and keras_adaptive.schedules")

__all__ = ["ExponentialRamp", "LearningRateRangeResult", "find_learning_rate"]
