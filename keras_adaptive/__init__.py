"""keras_adaptive: the optimizers and learning-rate policies of the lectures.

>>> import keras_adaptive as ka
>>> model.compile(optimizer=ka.Adam(), loss="sparse_categorical_crossentropy")
>>> model.fit(x, y, callbacks=[ka.callbacks.CoolDownOnPlateau()])

`keras_adaptive.datasets` (MNIST and CIFAR-10 pipelines) is imported on
demand: it needs TensorFlow and, for downloads, tensorflow-datasets.
"""

from keras_adaptive import callbacks, optimizers, schedules
from keras_adaptive.callbacks import find_learning_rate
from keras_adaptive.minimize import minimize
from keras_adaptive.optimizers import *  # noqa: F403
from keras_adaptive.optimizers import __all__ as _optimizer_names

__version__ = "0.2.0"

__all__ = [
    "callbacks",
    "find_learning_rate",
    "minimize",
    "optimizers",
    "schedules",
    *_optimizer_names,
]
