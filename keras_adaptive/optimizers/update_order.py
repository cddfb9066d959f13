"""The order of the per-variable updates of a step: Keras's, or one by one.

Every optimizer of the package takes ``update_order``:

* ``"auto"`` (the default): on a CPU, without a `keras.distribution` (JAX)
  or `tf.distribute` strategy (TensorFlow), a step over at least
  `MIN_PARAMETERS` parameters updates each weight after the previous
  weight's update has written its slots and the weight; otherwise as
  ``"off"``;
* ``"always"``: that order for every step, whatever the device and size;
* ``"off"``: Keras's order (XLA schedules the updates of all weights freely).

Why an order helps on a CPU: XLA's CPU backend compiles an element-wise
update into one loop per array written and schedules the loops of one kind
for all weights in a row (every first moment, then every second moment,
then every weight). Once one kind of array over all weights no longer fits
in the processor's cache, each re-read of a gradient or of a freshly written
slot comes from memory; ordered weight by weight, it comes from the cache.
At 10 million parameters in 4 MB tensors this makes `Adam`'s step about
1.15 (JAX) and 1.2 (TensorFlow) times faster than in Keras's order
(``benchmarks/update_step.py``); at 3 million parameters the arrays stay in
a 32 MB cache in either order, and the order only takes from XLA the
freedom to run independent loops side by side, hence the threshold. On GPUs
XLA fuses the loops of a weight itself and may batch small weights
together, which an order would prevent; under a distribution the dependency
could cross devices. PyTorch runs eagerly: there is nothing to order.

The order is made by data, not by control: after a weight's update, a
scalar ``-0.0`` computed from one element of each array it wrote (the
weight and `Optimizer.slots_of` it) is added to the next weight's gradient.
``x + (-0.0)`` is ``x`` for every ``x`` (signed zeros, infinities and NaN
included), so no value changes, but every loop reading that gradient waits
for the loops that wrote those arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
from keras import ops

#: The values of the ``update_order`` argument.
MODES = ("auto", "always", "off")

#: The number of parameters from which ``"auto"`` orders a step on a CPU.
MIN_PARAMETERS = 2**22


def is_ordered(mode: str, variables: Sequence) -> bool:
    """Whether a step over `variables` is ordered under `mode` (see above)."""
    if mode == "always":
        return keras.backend.backend() != "torch"
    if mode == "off" or not _on_cpu_without_distribution():
        return False
    return sum(math.prod(variable.shape) for variable in variables) >= MIN_PARAMETERS


def update(optimizer, pairs: Sequence[tuple], update_one: Callable) -> None:
    """Calls ``update_one(gradient, weight)`` for each pair, in the
    optimizer's `update_order`."""
    if not is_ordered(optimizer.update_order, [weight for _, weight in pairs]):
        for gradient, weight in pairs:
            update_one(gradient, weight)
        return
    token = None
    for gradient, weight in pairs:
        if token is not None:
            gradient = gradient + ops.cast(token, gradient.dtype)
        update_one(gradient, weight)
        slots = optimizer.slots_of(weight)
        # A step that writes only the weight has nothing to gain from an order.
        token = order_token([weight, *slots]) if slots else None


def order_token(arrays: Sequence):
    """A scalar -0.0 that depends on one element of each of `arrays`.

    Computed from one element per array (never a reduction over it), it
    costs a few scalar operations.
    """
    # -0.0 made by an operation: TensorFlow caches the tensors of Python
    # numbers by value, and -0.0 == 0.0 would fetch a cached +0.0.
    negative_zero = ops.negative(ops.zeros((), "float32"))
    token = negative_zero
    for array in arrays:
        if math.prod(array.shape) == 0:
            continue
        value = ops.convert_to_tensor(array)
        element = ops.cast(ops.reshape(value, (-1,))[0], "float32")
        # -0.0 * |element| is -0.0 for every finite element; the select
        # keeps it -0.0 for an infinite or NaN one.
        token = token + ops.where(
            ops.isfinite(element), negative_zero * ops.abs(element), negative_zero
        )
    return token


def _on_cpu_without_distribution() -> bool:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return keras.distribution.distribution() is None and (
            jax.default_backend() == "cpu"
        )
    if backend == "tensorflow":
        import tensorflow as tf

        return not (
            tf.distribute.has_strategy() or tf.config.list_logical_devices("GPU")
        )
    return False
