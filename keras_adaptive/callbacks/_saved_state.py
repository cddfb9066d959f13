"""A policy's state, saved and loaded with the model's weights.

A policy decides on the host from Python numbers (best value, counters, the
reference loss) and may keep host copies of weights (the best epoch's, or
the state a rejected step returns to). :class:`PolicyState` holds them and
is saved with the optimizer: Keras's weight saving (``save_weights``, hence
``keras.callbacks.BackupAndRestore``) writes it and ``load_weights`` reads
it back at the same moment as the weights and the optimizer's variables, so
a resumed run continues from a consistent state
(:func:`keras_adaptive._keras_api.save_with_optimizer` says which Keras
behaviour this relies on; `tests/test_keras_api.py` checks it).

The state is deliberately not made of optimizer variables (as optax keeps its
plateau counters): Keras skips loading *every* variable of an optimizer
whose variable count differs from the saved one, so a model saved with a
policy could then not be reloaded into a plain model. ``load_model`` builds a
new optimizer without the state and ignores it: a reloaded model continues
with a fresh policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_adaptive._keras_api import save_with_optimizer


class _Box:
    """Holds Python data without Keras's attribute tracking wrapping it."""

    def __init__(self, value: Any):
        self.value = value


class PolicyState(keras.layers.Layer):
    """Named Python numbers and a list of NumPy arrays, saved with the weights.

    Args:
        values: the initial values, names to ints or floats; `reset` returns
            to them.
        name: the name under which the state is saved with the optimizer.
    """

    def __init__(self, values: dict[str, Any], name: str):
        super().__init__(name=name)
        self._initial = _Box(dict(values))
        self._values = _Box(dict(values))
        self._arrays = _Box([])
        self._on_load = _Box(None)
        #: True once `load_own_variables` has read a saved state (cleared by
        #: the owner when a new `fit` begins).
        self.loaded = False

    @property
    def values(self) -> dict[str, Any]:
        return self._values.value

    @property
    def arrays(self) -> list[np.ndarray]:
        return self._arrays.value

    @arrays.setter
    def arrays(self, arrays: list[np.ndarray]) -> None:
        """Keeps host copies of `arrays` (the caller may change its own)."""
        self._arrays.value = [np.array(a, copy=True) for a in arrays]

    def reset(self, **values: Any) -> None:
        """Back to the initial values (with `values` overriding), no arrays."""
        self.values.clear()
        self.values.update(self._initial.value, **values)
        self._arrays.value = []

    def attach(
        self, optimizer: keras.optimizers.Optimizer, on_load: Callable[[], None]
    ) -> None:
        """Saves the state with `optimizer`; `on_load` runs after each load."""
        self._on_load.value = on_load
        save_with_optimizer(optimizer, self.name, self)

    def save_own_variables(self, store) -> None:
        for key, value in self.values.items():
            store[f"value_{key}"] = np.asarray(value, dtype="float64")
        store["num_arrays"] = np.asarray(len(self.arrays))
        for i, array in enumerate(self.arrays):
            store[f"array_{i}"] = array

    def load_own_variables(self, store) -> None:
        keys = set(store.keys())
        if not keys:
            return
        for key, initial in self._initial.value.items():
            name = f"value_{key}"
            if name in keys:
                value = float(np.asarray(store[name]))
                self.values[key] = int(value) if isinstance(initial, int) else value
        count = int(np.asarray(store["num_arrays"]))
        self._arrays.value = [np.asarray(store[f"array_{i}"]) for i in range(count)]
        self.loaded = True
        if self._on_load.value is not None:
            self._on_load.value()
