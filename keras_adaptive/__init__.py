"""keras_adaptive: the optimizers and learning-rate policies of the lectures.

The optimizers (`keras_adaptive.optimizers`, re-exported here) are
`keras.optimizers.Optimizer` subclasses for `model.compile`; the policies
(`keras_adaptive.callbacks`) are `keras.callbacks.Callback` objects for
`model.fit`; `find_learning_rate` is the learning-rate range test and
`minimize` trains a model on its full-batch loss with a line search.
`keras_adaptive.datasets` (MNIST and CIFAR-10 pipelines) and
`keras_adaptive.plotting` are imported on demand: the first needs
TensorFlow and, for downloads, tensorflow-datasets, the second matplotlib.

Example:
    >>> import keras
    >>> import numpy as np
    >>> import keras_adaptive as ka
    >>> x = np.linspace(-1, 1, 32, dtype="float32").reshape(-1, 1)
    >>> y = (x > 0).astype("int32").ravel()
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    >>> model.compile(optimizer=ka.Adam(learning_rate=0.1),
    ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> history = model.fit(x, y, epochs=3, verbose=0,
    ...                     callbacks=[ka.callbacks.CoolDownOnPlateau(monitor="loss")])
    >>> len(history.history["loss"])
    3
"""

from keras_adaptive import callbacks, optimizers, schedules
from keras_adaptive.full_batch import hessian_vector_product, minimize
from keras_adaptive.optimizers import *  # noqa: F403
from keras_adaptive.optimizers import __all__ as _optimizer_names
from keras_adaptive.range_test import LearningRateRangeResult, find_learning_rate

__version__ = "0.2.0"

__all__ = [
    "LearningRateRangeResult",
    "callbacks",
    "find_learning_rate",
    "hessian_vector_product",
    "minimize",
    "optimizers",
    "schedules",
    *_optimizer_names,
]
