"""keras_adaptive: the optimizers and learning-rate policies of the lectures.

>>> from keras_adaptive import optimizers
>>> model.compile(optimizer=optimizers.Adam(), loss=...)
"""

from keras_adaptive import optimizers, schedules
from keras_adaptive.optimizers import *  # noqa: F403
from keras_adaptive.optimizers import __all__ as _optimizer_names

__version__ = "0.1.0"

__all__ = ["optimizers", "schedules", *_optimizer_names]
