"""NumPy copies of backend tensors and Keras variables, on every backend."""

from __future__ import annotations

import numpy as np


def to_numpy(value, dtype: str | None = None) -> np.ndarray:
    """A NumPy copy of a tensor or a `keras.Variable`'s value.

    Read through the backend tensor's own conversion: ``np.array`` of a
    TensorFlow variable or of a PyTorch tensor goes through an ``__array__``
    without NumPy 2's ``copy`` keyword, which NumPy reports with a
    ``DeprecationWarning`` at every read (so does
    ``keras.ops.convert_to_numpy`` of a variable). A PyTorch tensor is
    detached from autograd first.
    """
    value = getattr(value, "value", value)
    if hasattr(value, "detach"):  # PyTorch
        value = value.detach().cpu()
    if hasattr(value, "numpy"):  # TensorFlow and PyTorch
        value = value.numpy()
    return np.array(value, dtype=dtype)
