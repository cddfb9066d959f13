"""The lectures' optimizers as `keras.optimizers.Optimizer` subclasses.

Class and keyword names follow `keras.optimizers` wherever Keras has the same
algorithm, so ``from keras_adaptive import optimizers`` can replace
``from keras import optimizers``. Every class is registered for
serialization as ``"keras_adaptive>ClassName"``, which `model.compile` also
accepts as a string once the package is imported.

Example:
    >>> from keras_adaptive import optimizers
    >>> [cls.__name__ for cls in optimizers.ALL_OPTIMIZERS[:4]]
    ['SGD', 'Momentum', 'Nesterov', 'Adagrad']
"""

from __future__ import annotations

from typing import Any

from keras_adaptive.optimizers.adadelta import Adadelta
from keras_adaptive.optimizers.adagrad import Adagrad
from keras_adaptive.optimizers.adam import Adam, Adamax, Nadam
from keras_adaptive.optimizers.base import Optimizer
from keras_adaptive.optimizers.gains import DeltaBarDelta
from keras_adaptive.optimizers.lbfgs import LBFGS
from keras_adaptive.optimizers.rmsprop import RMSprop
from keras_adaptive.optimizers.rprop import Rprop
from keras_adaptive.optimizers.sgd import SGD, Momentum, Nesterov

#: Every optimizer class of the package, in the order of the lectures.
ALL_OPTIMIZERS = (
    SGD,
    Momentum,
    Nesterov,
    Adagrad,
    RMSprop,
    Adadelta,
    Adam,
    Adamax,
    Nadam,
    DeltaBarDelta,
    Rprop,
    LBFGS,
)


def get(name: str, **kwargs: Any) -> Optimizer:
    """A new optimizer from its class name, matched case-insensitively.

    Args:
        name: the class name of one of `ALL_OPTIMIZERS`, in any case.
        **kwargs: the keyword arguments of that class.

    Returns:
        A new instance of the class.

    Raises:
        ValueError: for a name that is not one of the package's optimizers; the
            message lists the valid names.

    Example:
        >>> from keras_adaptive import optimizers
        >>> optimizer = optimizers.get("adam", learning_rate=1e-3)
        >>> type(optimizer).__name__, round(float(optimizer.learning_rate), 6)
        ('Adam', 0.001)
    """
    by_name = {cls.__name__.lower(): cls for cls in ALL_OPTIMIZERS}
    cls = by_name.get(str(name).lower())
    if cls is None:
        raise ValueError(
            f"Unknown optimizer name={name!r}; valid names are "
            f"{[c.__name__ for c in ALL_OPTIMIZERS]}."
        )
    return cls(**kwargs)


__all__ = [cls.__name__ for cls in ALL_OPTIMIZERS] + [
    "ALL_OPTIMIZERS",
    "Optimizer",
    "get",
]
