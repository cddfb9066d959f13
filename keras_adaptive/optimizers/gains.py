"""Deprecated module: `DeltaBarDelta` moved to `optimizers.delta_bar_delta`."""

from keras_adaptive._deprecation import warn_moved
from keras_adaptive.optimizers.delta_bar_delta import DeltaBarDelta

warn_moved(__name__, "keras_adaptive.optimizers.delta_bar_delta")

__all__ = ["DeltaBarDelta"]
