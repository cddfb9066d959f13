"""Sparse gradients: `tf.IndexedSlices` (TensorFlow) and JAX's `BCOO`.

The gradient of an embedding lookup holds one row per looked-up id, the
same id as often as it occurs. A sparse gradient stands for the dense
gradient in which duplicate rows are summed; every optimizer of the package
computes exactly that dense gradient's update:

* optimizers whose update of a weight row is zero wherever the row's
  gradient is (`Optimizer.sparse_updates`) sum the duplicates
  (`unique_rows`, with static shapes, so under XLA too) and write only the
  touched rows of the weight, by a scatter (`add_to_variable_rows`), as
  Keras's own
  optimizers do; their state is updated row-wise too where its update is
  also zero elsewhere (`Adagrad`), and densely where it decays everywhere
  (`RMSprop`, `Adadelta`);
* every other optimizer, and every optimizer with an option that makes the
  gradient dense (`l2`, clipping, ...), receives the dense gradient
  (`to_dense`).

Keras's own optimizers treat each duplicate row as a separate gradient, so
that statistics of squares (`Adagrad`, `RMSprop`, `Adam`) count
``g1**2 + g2**2`` where the dense gradient has ``(g1 + g2)**2``.
A `BCOO` gradient is row-sparse when it has one sparse dimension, the first,
and no batch dimensions; any other `BCOO` is made dense.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
from keras import ops


def _indexed_slices_type():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.IndexedSlices


def _bcoo_type():
    if keras.backend.backend() != "jax":
        return None
    from jax.experimental import sparse as jax_sparse

    return jax_sparse.BCOO


def is_sparse(gradient) -> bool:
    """True for a `tf.IndexedSlices` or a JAX `BCOO` gradient."""
    kinds = tuple(kind for kind in (_indexed_slices_type(), _bcoo_type()) if kind)
    return bool(kinds) and isinstance(gradient, kinds)


def _is_row_sparse_bcoo(gradient) -> bool:
    return gradient.n_batch == 0 and gradient.n_sparse == 1


def to_dense(gradient):
    """The dense gradient a sparse one stands for (duplicates summed);
    any other value unchanged."""
    if gradient is None or not is_sparse(gradient):
        return gradient
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.math.unsorted_segment_sum(
            gradient.values,
            gradient.indices,
            num_segments=tf.cast(gradient.dense_shape[0], gradient.indices.dtype),
        )
    return gradient.todense()


def rows_and_values(gradient):
    """The row indices (1-D) and the rows (one per index) of a sparse gradient.

    Raises `ValueError` for a `BCOO` that is not row-sparse; such a gradient
    is made dense by `Optimizer.apply` before it reaches a step.
    """
    if keras.backend.backend() == "tensorflow":
        return gradient.indices, gradient.values
    if not _is_row_sparse_bcoo(gradient):
        raise ValueError(
            "A row update needs a row-sparse BCOO gradient (no batch "
            "dimensions, one sparse dimension); received one with "
            f"n_batch={gradient.n_batch}, n_sparse={gradient.n_sparse}."
        )
    return gradient.indices[:, 0], gradient.data


class Rows(NamedTuple):
    """A sparse gradient with each touched row once (see `unique_rows`)."""

    #: Row indices: each touched row once (on JAX, padded to the static
    #: length of the gradient by repeats of the first row).
    indices: Any
    #: The summed gradient of each row; zero in the repeats.
    values: Any
    #: True at the positions of distinct rows, False at the repeats (None
    #: for `raw_rows`).
    distinct: Any


def raw_rows(gradient) -> Rows:
    """The sparse gradient's rows as they are, duplicates included.

    Enough for an update that is a sum over the rows (`SGD`): adding each
    duplicate's step to the weight adds their sum, up to the rounding of one
    addition per duplicate, with no operation to find the duplicates.
    """
    indices, values = rows_and_values(gradient)
    return Rows(indices, values, None)


def unique_rows(gradient) -> Rows:
    """The sparse gradient with each touched row once, its duplicates summed.

    On TensorFlow by `tf.unique` and a segment sum (XLA compiles both, with
    a bounded dynamic length). On JAX the result keeps the static length n
    of the gradient's index list: sorting and a segment sum with a fixed
    number of segments keep every shape static; the distinct rows come
    first, in increasing order, and the remaining positions repeat the
    smallest row with a zero gradient, so that adding them
    (`add_to_variable_rows`) changes nothing and writing them
    (`set_variable_rows`) repeats the first row's write.
    """
    indices, values = rows_and_values(gradient)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        rows, positions = tf.unique(indices)
        summed = tf.math.unsorted_segment_sum(values, positions, tf.size(rows))
        return Rows(rows, summed, tf.ones_like(rows, dtype="bool"))
    count = indices.shape[0]
    order = ops.argsort(indices)
    sorted_rows = ops.take(indices, order)
    sorted_values = ops.take(values, order, axis=0)
    starts = ops.concatenate(
        [
            ops.ones((1,), "bool"),
            ops.not_equal(sorted_rows[1:], sorted_rows[:-1]),
        ]
    )
    segments = ops.cumsum(ops.cast(starts, "int32")) - 1
    summed = ops.segment_sum(sorted_values, segments, num_segments=count)
    rows = ops.segment_max(sorted_rows, segments, num_segments=count)
    distinct = ops.arange(count) < segments[-1] + 1
    rows = ops.where(distinct, rows, sorted_rows[0])
    return Rows(ops.cast(rows, "int32"), summed, distinct)


def take_rows(array, rows):
    """The rows `rows` of `array` (a tensor or a variable)."""
    return ops.take(ops.convert_to_tensor(array), rows, axis=0)


def add_to_rows(tensor, rows, values):
    """`tensor` with `values` added to its rows `rows` (repeats add up)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.tensor_scatter_nd_add(tensor, rows[:, None], values)
    return ops.convert_to_tensor(tensor).at[rows].add(values)


def add_to_variable_rows(optimizer, variable, rows: Rows, values) -> None:
    """Adds `values` (one per position of `rows`) to those rows of
    `variable`, by a scatter, in the variable's dtype as `assign_add` adds.

    On TensorFlow through the optimizer's `assign_add` with a
    `tf.IndexedSlices`, which Keras turns into the variable's
    ``scatter_add``; on JAX a ``scatter-add`` of the variable's value,
    written back with `assign` (XLA updates a donated buffer in place).
    """
    values = ops.cast(values, variable.dtype)
    if keras.backend.backend() == "tensorflow":
        optimizer.assign_add(variable, _indexed_slices(variable, rows, values))
        return
    optimizer.assign(variable, add_to_rows(variable, rows.indices, values))


def set_variable_rows(optimizer, variable, rows: Rows, values) -> None:
    """Writes `values` (one per position of `rows`) into those rows of
    `variable`, by a scatter; a repeated position (JAX) writes the first
    row's value again, so the result does not depend on the order of the
    writes."""
    values = ops.cast(values, variable.dtype)
    if keras.backend.backend() == "tensorflow":
        optimizer.assign(variable, _indexed_slices(variable, rows, values))
        return
    mask = ops.reshape(rows.distinct, (-1,) + (1,) * (len(values.shape) - 1))
    values = ops.where(mask, values, values[:1])
    tensor = ops.convert_to_tensor(variable)
    optimizer.assign(variable, tensor.at[rows.indices].set(values))


def _indexed_slices(variable, rows: Rows, values):
    import tensorflow as tf

    dense_shape = tf.constant([int(d) for d in variable.shape], dtype="int64")
    return tf.IndexedSlices(values, rows.indices, dense_shape)
