"""The lectures' optimizers as `keras.optimizers.Optimizer` subclasses.

Class and keyword names follow `keras.optimizers` wherever Keras has the same
algorithm, so ``from keras_adaptive import optimizers`` can replace
``from keras import optimizers``.
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

    >>> get("adam", learning_rate=1e-3)
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
