"""The data of a full-batch objective, as `fit` takes it, in batches.

Arrays (NumPy arrays or tensors; a list, tuple or dict of them) are cut into
chunks of `chunk_size` samples; a `tf.data.Dataset`, a
`keras.utils.PyDataset`, a generator or another iterable of batches is read
once, and its batches are the chunks. Every chunk holds NumPy arrays (views
of the caller's arrays where possible).
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_adaptive._validation import check_integer


@dataclass(frozen=True)
class Batch:
    """One chunk of the data: inputs, targets and sample weights (each
    None, an array or a structure of arrays) and its number of samples."""

    x: Any
    y: Any
    sample_weight: Any
    samples: int


def read_batches(
    owner: str,
    x: Any,
    y: Any,
    sample_weight: Any,
    chunk_size: int | None,
    steps: int | None,
) -> list[Batch]:
    """The chunks of the data, checked: equal sample counts within each
    chunk, at least one sample, arrays with a sample axis."""
    if chunk_size is not None:
        check_integer(owner, "chunk_size", chunk_size, 1)
    if steps is not None:
        check_integer(owner, "steps", steps, 1)
    if _is_batch_source(x):
        batches = _read_source(owner, x, y, sample_weight, chunk_size, steps)
    else:
        if steps is not None:
            raise ValueError(
                f"{owner}: `steps` applies only to a tf.data.Dataset, a "
                "keras.utils.PyDataset or a generator (how many batches to "
                f"read); received steps={steps!r} with `x` of type "
                f"{type(x).__name__}. Leave it None for arrays."
            )
        batches = _cut_arrays(owner, x, y, sample_weight, chunk_size)
    if not batches or sum(batch.samples for batch in batches) < 1:
        raise ValueError(f"{owner}: `x` must hold at least one sample; received none.")
    return batches


def validation_batches(owner: str, validation_data: Any) -> list[Batch] | None:
    """`validation_data` as one chunk, or None."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, tuple | list) or len(validation_data) not in (
        2,
        3,
    ):
        raise ValueError(
            f"{owner}: `validation_data` must be a tuple (x_val, y_val) or "
            "(x_val, y_val, sample_weight_val); received "
            f"{type(validation_data).__name__}."
        )
    x, y, *weight = validation_data
    names = ("x_val", "y_val", "sample_weight_val")
    return _cut_arrays(owner, x, y, weight[0] if weight else None, None, names)


# ---------------------------------------------------------------------------
# Arrays


NAMES = ("x", "y", "sample_weight")


def _cut_arrays(owner, x, y, sample_weight, chunk_size, names=NAMES):
    data = {
        name: _arrays(owner, name, part)
        for name, part in zip(names, (x, y, sample_weight), strict=True)
    }
    whole = Batch(*data.values(), _count_samples(owner, data))
    size = max(whole.samples if chunk_size is None else chunk_size, 1)
    return [
        slice_batch(whole, start, min(start + size, whole.samples))
        for start in range(0, whole.samples, size)
    ]


def slice_batch(batch: Batch, start: int, stop: int) -> Batch:
    """Samples `start` to `stop` of `batch`."""

    def cut(part):
        if part is None:
            return None
        return keras.tree.map_structure(lambda a: a[start:stop], part)

    return Batch(cut(batch.x), cut(batch.y), cut(batch.sample_weight), stop - start)


def _arrays(owner: str, name: str, data: Any) -> Any:
    """`data` with every leaf a NumPy array that has a sample axis."""
    if data is None:
        return None

    def convert(leaf):
        if leaf is None:
            return None
        try:
            array = np.asarray(leaf)
        except ValueError as error:
            raise ValueError(
                f"{owner}: `{name}` must hold arrays of one shape each; "
                f"received an element that NumPy cannot stack ({error}). A "
                "ragged list of lists has no array form: pad it to one "
                "length, or give one array per sample length."
            ) from None
        if array.ndim == 0 or array.dtype == object:
            raise ValueError(
                f"{owner}: `{name}` must be an array, tensor, or a list, tuple "
                "or dict of them, with the samples on the first axis (as `fit` "
                f"takes it); received {type(data).__name__} holding "
                f"{type(leaf).__name__} elements. A list of Python lists is "
                f"not an array: pass numpy.asarray({name})."
            )
        return array

    return keras.tree.map_structure(convert, data)


def _count_samples(owner: str, data: dict[str, Any]) -> int:
    """The common length of the first axis of every array in `data`."""
    counts = {}
    for name, part in data.items():
        if part is None:
            continue
        lengths = {
            int(leaf.shape[0]) for leaf in keras.tree.flatten(part) if leaf is not None
        }
        if len(lengths) > 1:
            raise ValueError(
                f"{owner}: every array in `{name}` must have the same number "
                f"of samples (first axis); received lengths {sorted(lengths)}."
            )
        if lengths:
            counts[name] = lengths.pop()
    names = list(counts)
    for name in names[1:]:
        if counts[name] != counts[names[0]]:
            raise ValueError(
                f"{owner}: `{name}` must have as many samples as `{names[0]}` "
                f"({counts[names[0]]}); received {counts[name]}."
            )
    return counts[names[0]] if names else 0


# ---------------------------------------------------------------------------
# Data sets, PyDatasets and generators


def _is_tf_dataset(data: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def _is_batch_source(data: Any) -> bool:
    if isinstance(data, keras.utils.PyDataset) or _is_tf_dataset(data):
        return True
    if isinstance(data, str | bytes | dict | list | tuple | np.ndarray):
        return False
    if keras.ops.is_tensor(data) or hasattr(data, "__array__"):
        return False
    return isinstance(data, Iterable)


def _declared_batches(x: Any) -> float | None:
    """The number of batches `x` says it has (math.inf: infinite), or None
    if it does not say."""
    if _is_tf_dataset(x):
        import tensorflow as tf

        cardinality = int(x.cardinality())
        if cardinality == tf.data.INFINITE_CARDINALITY:
            return math.inf
        return None if cardinality < 0 else cardinality
    if isinstance(x, keras.utils.PyDataset):
        try:
            batches = x.num_batches
        except NotImplementedError:
            return math.inf
        return math.inf if batches is None else batches
    return None


def _read_source(owner, x, y, sample_weight, chunk_size, steps) -> list[Batch]:
    kind = type(x).__name__
    for name, value in (
        ("y", y),
        ("sample_weight", sample_weight),
        ("chunk_size", chunk_size),
    ):
        if value is not None:
            raise ValueError(
                f"{owner}: `{name}` must be None when `x` is a {kind} (a source "
                "of batches: it yields (x, y) or (x, y, sample_weight), and its "
                f"batches are the chunks); received {name}={_short(value)}."
            )
    declared = _declared_batches(x)
    if declared == math.inf and steps is None:
        raise ValueError(
            f"{owner}: `x` is an infinite {kind} (it declares no end), and "
            "`minimize` needs the whole data set; received steps=None. Pass "
            "steps=<number of batches> to read that many, or give a finite "
            "data set (without .repeat())."
        )
    iterator = iter(x)
    if steps is not None:
        iterator = itertools.islice(iterator, steps)
    batches = []
    for index, element in enumerate(iterator):
        data = keras.utils.unpack_x_y_sample_weight(element)
        names = tuple(f"{name} (batch {index} of the {kind})" for name in NAMES)
        batches.extend(_cut_arrays(owner, *data, None, names))
    if steps is not None and len(batches) < steps:
        raise ValueError(
            f"{owner}: `steps` must be at most the number of batches in `x`; "
            f"received steps={steps}, and the {kind} ended after "
            f"{len(batches)}."
        )
    return batches


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"<{type(value).__name__}>"
