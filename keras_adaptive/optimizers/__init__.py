"""The lectures' optimizers as `keras.optimizers.Optimizer` subclasses.

Class and keyword names follow `keras.optimizers` wherever Keras has the same
algorithm, and every other public name of `keras.optimizers` (``AdamW``,
``Lion``, ``Ftrl``, ``LossScaleOptimizer``, ``schedules``, ...) is Keras's own
object, looked up there, so ``from keras_adaptive import optimizers`` can
replace ``from keras import optimizers``. Where the papers and Keras disagree
about a default or an equation, the package's classes follow the papers (each
class's docstring says how). Every class is registered for serialization as
``"keras_adaptive>ClassName"``, which `model.compile` also accepts as a
string once the package is imported.

Example:
    >>> from keras_adaptive import optimizers
    >>> [cls.__name__ for cls in optimizers.ALL_OPTIMIZERS[:4]]
    ['SGD', 'Momentum', 'Nesterov', 'Adagrad']
    >>> import keras
    >>> optimizers.AdamW is keras.optimizers.AdamW
    True
    >>> optimizers.schedules.CosineDecay is keras.optimizers.schedules.CosineDecay
    True
"""

from __future__ import annotations

from typing import Any

import keras

from keras_adaptive.optimizers.adadelta import Adadelta
from keras_adaptive.optimizers.adagrad import Adagrad
from keras_adaptive.optimizers.adam import Adam, Adamax, Nadam
from keras_adaptive.optimizers.base import Optimizer
from keras_adaptive.optimizers.delta_bar_delta import DeltaBarDelta
from keras_adaptive.optimizers.lbfgs import LBFGS
from keras_adaptive.optimizers.rmsprop import RMSprop
from keras_adaptive.optimizers.rprop import Rprop
from keras_adaptive.optimizers.sgd import SGD, Momentum, Nesterov

PACKAGE_PREFIX = "keras_adaptive>"

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


def _package_class(config: dict[str, Any]) -> type[Optimizer] | None:
    """The package's class a serialized optimizer names, or None.

    A registered name ``"keras_adaptive>Adam"`` or a module of this package
    names one of the package's classes; a bare class name (no module) names
    the package's class of that name in any case; a class serialized from
    another module (``"keras.optimizers"``) is left to Keras.
    """
    by_name = {cls.__name__.lower(): cls for cls in ALL_OPTIMIZERS}
    registered = config.get("registered_name") or ""
    name = str(config["class_name"])
    if registered.startswith(PACKAGE_PREFIX):
        return by_name.get(registered[len(PACKAGE_PREFIX) :].lower())
    if name.startswith(PACKAGE_PREFIX):
        return by_name.get(name[len(PACKAGE_PREFIX) :].lower())
    module = config.get("module")
    if module is None or str(module).startswith("keras_adaptive"):
        return by_name.get(name.lower())
    return None


def serialize(optimizer: keras.optimizers.Optimizer) -> dict[str, Any]:
    """The optimizer's configuration as a dict, as `keras.optimizers.serialize`.

    Args:
        optimizer: an optimizer of this package or of Keras.

    Returns:
        A dict with ``class_name``, ``config``, ``module`` and
        ``registered_name``, which `deserialize` turns back into the optimizer.

    Example:
        >>> from keras_adaptive import optimizers
        >>> config = optimizers.serialize(optimizers.Nesterov(learning_rate=0.5))
        >>> config["registered_name"], config["config"]["learning_rate"]
        ('keras_adaptive>Nesterov', 0.5)
    """
    return keras.optimizers.serialize(optimizer)


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> keras.optimizers.Optimizer:
    """An optimizer from its configuration, as `keras.optimizers.deserialize`.

    A configuration that names one of the package's classes (see `serialize`;
    a bare class name such as ``"adam"`` in any case counts) gives the
    package's class; any other is passed to `keras.optimizers.deserialize`, so
    ``"AdamW"`` or a configuration serialized from `keras.optimizers` gives
    Keras's optimizer.

    Args:
        config: a dict with at least ``class_name`` (and usually ``config``).
        custom_objects: passed on to Keras for classes of other packages.

    Returns:
        A new optimizer.

    Raises:
        ValueError: for a configuration that is not a dict with a
            ``class_name``, or that names no known optimizer.

    Example:
        >>> from keras_adaptive import optimizers
        >>> type(optimizers.deserialize({"class_name": "rprop", "config": {}}))
        <class 'keras_adaptive.optimizers.rprop.Rprop'>
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "deserialize: `config` must be a dict with a 'class_name' key; "
            f"received config={config!r}."
        )
    cls = _package_class(config)
    if cls is not None:
        return cls.from_config(dict(config.get("config") or {}))
    try:
        optimizer = keras.optimizers.deserialize(dict(config), custom_objects)
    except (TypeError, ValueError):
        optimizer = None
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            f"deserialize: no optimizer named {config['class_name']!r} in this "
            f"package ({[c.__name__ for c in ALL_OPTIMIZERS]}) or in "
            "keras.optimizers."
        )
    return optimizer


def get(identifier: Any, **kwargs: Any) -> keras.optimizers.Optimizer | None:
    """An optimizer from a name, a configuration or an instance, like Keras's `get`.

    Names and configurations of the package's optimizers give the package's
    classes (``"adam"`` gives `keras_adaptive.optimizers.Adam`); any other name
    falls back to `keras.optimizers` (``"adamw"`` gives Keras's `AdamW`), so
    ``from keras_adaptive import optimizers`` can replace
    ``from keras import optimizers``.

    Args:
        identifier: `None` (returned as is), an optimizer instance (returned
            as is), a configuration dict (see `deserialize`) or a class name.
        **kwargs: with a class name, the keyword arguments of the class.

    Returns:
        The optimizer, or `None` for `None`.

    Raises:
        ValueError: for an identifier of another type, an unknown name, or
            keyword arguments given with something other than a name.

    Example:
        >>> from keras_adaptive import optimizers
        >>> optimizer = optimizers.get("adam", learning_rate=1e-3)
        >>> type(optimizer).__name__, round(float(optimizer.learning_rate), 6)
        ('Adam', 0.001)
        >>> import keras
        >>> isinstance(optimizers.get("adamw"), keras.optimizers.AdamW)
        True
    """
    if kwargs and not isinstance(identifier, str):
        raise ValueError(
            "get: keyword arguments go with an optimizer name; received "
            f"identifier={identifier!r} with {sorted(kwargs)}."
        )
    if identifier is None or isinstance(identifier, keras.optimizers.Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": kwargs})
    raise ValueError(
        "get: `identifier` must be None, an optimizer, a configuration dict or "
        f"a class name; received identifier={identifier!r}."
    )


__all__ = [cls.__name__ for cls in ALL_OPTIMIZERS] + [
    "ALL_OPTIMIZERS",
    "Optimizer",
    "deserialize",
    "get",
    "serialize",
]


def __getattr__(name: str) -> Any:
    """The public names of `keras.optimizers` this package has no class for.

    Looked up in Keras when first used (PEP 562), so that every public name
    of the installed Keras version resolves here to Keras's own object.
    """
    if not name.startswith("_") and hasattr(keras.optimizers, name):
        return getattr(keras.optimizers, name)
    raise AttributeError(
        f"module {__name__!r} has no attribute {name!r}, and keras.optimizers "
        "has none of that name either"
    )


def __dir__() -> list[str]:
    public_keras_names = {n for n in dir(keras.optimizers) if not n.startswith("_")}
    return sorted(set(globals()) | public_keras_names)
