"""The full-batch objective of a compiled model: value, gradient and
Hessian-vector products, compiled once per call, summed exactly over chunks.

f(w) is `model.compute_loss` over the whole data set with the model's
trainable weights set to the flat vector w: the compiled loss (a mean over
the samples for Keras's default reduction) plus the regularisation losses.
Over chunks c = 1..K of n_c of the N samples, each chunk's loss is computed
in three parts, the compiled loss L_c (what `compute_loss` returns, less the
two others), the losses layers add in `call` A_c (activity regularisers:
means over the chunk) and the weight regularisers R (the same in every
chunk), and f is the sum over the chunks of

    phi_c L_c + (n_c / N) A_c + R / K

with phi_c set by the compiled loss's reduction: n_c / N for a mean
(`"sum_over_batch_size"`, `"mean"`, `"none"`: the per-sample losses'
mean, as `evaluate` reports it), 1 for `"sum"`, and the chunk's share of
the sample weights for `"mean_with_sample_weight"`. Each part enters as
`coefficients @ (compute_loss, A_c, R)`; one chunk has coefficients
(1, 0, 0), which is `compute_loss` itself.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive.full_batch.data import Batch, read_batches, slice_batch

__all__ = ["HessianVectorProduct", "hessian_vector_product"]

Array = Any

#: The loss reductions by how a chunk's loss enters the sum over chunks.
_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "none", None)
_SUM_REDUCTIONS = ("sum",)
_WEIGHTED_MEAN_REDUCTIONS = ("mean_with_sample_weight",)


class Layout:
    """Maps the model's trainable variables to one flat vector and back."""

    def __init__(self, variables: list) -> None:
        self.variables = variables
        self.shapes = [tuple(v.shape) for v in variables]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.size = sum(self.sizes)
        self.dtype = _widest([v.dtype for v in variables])

    def read(self) -> Array:
        """The variables' current values as one vector."""
        return ops.concatenate(
            [ops.reshape(ops.cast(v.value, self.dtype), (-1,)) for v in self.variables]
        )

    def unflatten(self, w: Array) -> list:
        values, offset = [], 0
        for variable, shape, size in zip(
            self.variables, self.shapes, self.sizes, strict=True
        ):
            piece = ops.reshape(w[offset : offset + size], shape)
            values.append(ops.cast(piece, variable.dtype))
            offset += size
        return values

    def write(self, w: Array) -> None:
        for variable, value in zip(self.variables, self.unflatten(w), strict=True):
            variable.assign(value)


_FLOATS = ("float16", "bfloat16", "float32", "float64")


def _widest(dtypes: list) -> str:
    """The widest float dtype of `dtypes` (float64 stays float64, where
    `keras.backend.result_type` maps it to float32 off TensorFlow)."""
    names = {keras.backend.standardize_dtype(dtype) for dtype in dtypes}
    return max(names, key=lambda name: _FLOATS.index(name) if name in _FLOATS else -1)


# ---------------------------------------------------------------------------
# Per-backend compilation: the only backend-specific part

LossFunction = Callable[..., Array]


def _compile_value_and_gradient(loss_of: LossFunction) -> Callable:
    """`(w, *data) -> (f, df/dw)`, compiled on TensorFlow and JAX."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def value_and_gradient(w, *data):
            with tf.GradientTape() as tape:
                tape.watch(w)
                loss = loss_of(w, *data)
            return loss, tape.gradient(loss, w)

        return value_and_gradient
    if backend == "jax":
        import jax

        return jax.jit(jax.value_and_grad(loss_of))
    import torch

    def value_and_gradient(w, *data):
        w = w.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = loss_of(w, *data)
            (gradient,) = torch.autograd.grad(loss, w)
        return loss.detach(), gradient

    return value_and_gradient


def _compile_hessian_vector_product(loss_of: LossFunction) -> Callable:
    """`(w, v, *data) -> H(w) v`: forward-over-reverse on JAX (the forward
    derivative of the gradient along v), reverse-over-reverse on TensorFlow
    and PyTorch (the gradient of g(w)^T v); compiled on TensorFlow and JAX.

    On TensorFlow, nested tapes under XLA cost 1.3-1.6 gradient evaluations
    per product on the MNIST MLP of `benchmarks/hessian_vector_product.py`,
    `tf.autodiff.ForwardAccumulator` over a tape 3.4-3.7 (1.9-2.3 without
    XLA)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def product(w, v, *data):
            with tf.GradientTape() as outer:
                outer.watch(w)
                with tf.GradientTape() as inner:
                    inner.watch(w)
                    loss = loss_of(w, *data)
                directional = tf.reduce_sum(inner.gradient(loss, w) * v)
            return outer.gradient(directional, w)

        return product
    if backend == "jax":
        import jax

        gradient = jax.grad(loss_of)

        def product(w, v, *data):
            return jax.jvp(lambda u: gradient(u, *data), (w,), (v,))[1]

        return jax.jit(product)
    import torch

    def product(w, v, *data):
        w = w.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = loss_of(w, *data)
            (gradient,) = torch.autograd.grad(loss, w, create_graph=True)
            (result,) = torch.autograd.grad(gradient, w, grad_outputs=v)
        return result.detach()

    return product


# ---------------------------------------------------------------------------
# The objective


class Objective:
    """f(w), its gradient and H(w) v over all batches, counting the calls.

    Args:
        owner: the public function, for error messages.
        model: a compiled `keras.Model`.
        batches: the data, from `read_batches`.
    """

    def __init__(self, owner: str, model: keras.Model, batches: list[Batch]) -> None:
        self.owner = owner
        self.model = model
        _check_model(owner, model, batches)
        first = batches[0]
        _build(owner, model, first)
        self.layout = Layout(list(model.trainable_variables))
        if not self.layout.variables:
            raise ValueError(
                f"{owner}: `model` must have trainable weights; received a "
                "model with none."
            )
        coefficients = _chunk_coefficients(owner, model, batches)
        self.chunks = [
            (
                _tensors(batch),
                ops.convert_to_tensor(np.asarray(row), dtype=self.layout.dtype),
            )
            for batch, row in zip(batches, coefficients, strict=True)
        ]
        if len(batches) > 1:
            self._check_chunks_add_up(first)
        self._value_and_gradient = _per_signature(
            _compile_value_and_gradient, self.loss_of
        )
        self._product = _per_signature(_compile_hessian_vector_product, self.loss_of)
        self.evaluations = 0
        self.products = 0

    def loss_of(self, w, x, y, sample_weight, coefficients):
        """coefficients . (compute_loss, losses added in call, weight
        regularisers) with the model's trainable weights set to w."""
        model, layout = self.model, self.layout
        mapping = list(zip(layout.variables, layout.unflatten(w), strict=True))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            y_pred = model(x, training=False)
            total = _compute_loss(model, x, y, y_pred, sample_weight)
            added = [ops.sum(loss) for loss in scope.losses]
            regularisers = [
                variable.regularizer(scope.get_current_value(variable))
                for variable in model.trainable_weights
                if getattr(variable, "regularizer", None) is not None
            ]
        parts = [
            ops.mean(ops.cast(total, layout.dtype)),  # "none": per-sample losses
            _sum(added, layout.dtype),
            _sum(regularisers, layout.dtype),
        ]
        return ops.sum(coefficients * ops.stack(parts))

    def __call__(self, w: Array) -> tuple[float, Array]:
        """The loss (a Python float, summed over chunks in float64) and the
        gradient (in the weights' dtype)."""
        self.evaluations += 1
        total, gradient = 0.0, None
        for data, coefficients in self.chunks:
            loss, part = self._value_and_gradient(data)(w, *data, coefficients)
            total += float(ops.convert_to_numpy(loss))
            gradient = part if gradient is None else gradient + part
        return total, gradient

    def hessian_vector_product(self, w: Array, v: Array) -> Array:
        """H(w) v (in the weights' dtype)."""
        self.products += 1
        result = None
        for data, coefficients in self.chunks:
            part = self._product(data)(w, v, *data, coefficients)
            result = part if result is None else result + part
        return result

    def _check_chunks_add_up(self, first: Batch) -> None:
        """On the first samples of the first chunk, the sum over two chunks
        (one sample, the rest) equals the loss of all of them: catches a
        loss whose chunk parts the rules above do not describe (an output
        mask under a mean, a layer adding a sum over its batch, a custom
        `compute_loss`). Eager, at the initial weights."""
        samples = min(first.samples, 5)
        if samples < 2:
            return
        whole = slice_batch(first, 0, samples)
        split = [slice_batch(first, 0, 1), slice_batch(first, 1, samples)]
        parts = [whole, *split]
        rows = _chunk_coefficients(self.owner, self.model, [whole])
        rows += _chunk_coefficients(self.owner, self.model, split)
        w = self.layout.read()
        values = [
            float(
                ops.convert_to_numpy(
                    self.loss_of(
                        w,
                        *_tensors(batch),
                        ops.convert_to_tensor(np.asarray(row), self.layout.dtype),
                    )
                )
            )
            for batch, row in zip(parts, rows, strict=True)
        ]
        # Keras computes float64 in float32 off TensorFlow (its result_type
        # maps 64 to 32 bits), and mixed precision in float16: allow the
        # rounding of the narrower of float32 and the compute dtype.
        compute = _widest([self.model.compute_dtype])
        eps = float(np.finfo(min(compute, "float32", key=_FLOATS.index)).eps)
        scale = sum(abs(value) for value in values)
        if abs(values[0] - values[1] - values[2]) > 50 * eps * max(scale, 1e-30):
            raise ValueError(
                f"{self.owner}: the loss does not add up over chunks: on the "
                f"first {samples} samples it is {values[0]!r}, and over chunks "
                f"of 1 and {samples - 1} samples {values[1] + values[2]!r}. The "
                "model's loss is not a sum or mean over samples as its "
                "reduction says (an output mask under a mean reduction, a "
                "layer that adds a sum over its batch with add_loss, or a "
                "custom compute_loss). Pass the data as one chunk "
                "(chunk_size=None, or a data set of one batch)."
            )


def _per_signature(compile_function, loss_of) -> Callable:
    """One compiled function per distinct shape and dtype of the data."""
    functions: dict[tuple, Callable] = {}

    def function_for(data):
        key = tuple(
            (tuple(leaf.shape), str(leaf.dtype))
            for leaf in keras.tree.flatten(data)
            if leaf is not None
        )
        if key not in functions:
            functions[key] = compile_function(loss_of)
        return functions[key]

    return function_for


def _sum(values: list, dtype: str) -> Array:
    result = ops.zeros((), dtype)
    for value in values:
        result = result + ops.cast(value, dtype)
    return result


def _compute_loss(model, x, y, y_pred, sample_weight):
    if "training" in inspect.signature(model.compute_loss).parameters:
        return model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
        )
    return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)


def _tensors(batch: Batch) -> tuple:
    def convert(part):
        if part is None:
            return None
        return keras.tree.map_structure(ops.convert_to_tensor, part)

    return convert(batch.x), convert(batch.y), convert(batch.sample_weight)


# ---------------------------------------------------------------------------
# The model's loss: checks and chunk rules


def _overrides_compute_loss(model: keras.Model) -> bool:
    return type(model).compute_loss is not keras.Model.compute_loss


def _compiled_losses(model: keras.Model) -> list:
    """The losses given to `compile` (None entries dropped)."""
    loss = getattr(model, "loss", None)
    if loss is None:
        return []
    return [leaf for leaf in keras.tree.flatten(loss) if leaf is not None]


def _reduction(loss: Any) -> str | None:
    """A compiled loss's reduction; strings and functions get Keras's
    default."""
    if isinstance(loss, keras.losses.Loss):
        return loss.reduction
    return "sum_over_batch_size"


def _check_model(owner: str, model: keras.Model, batches: list[Batch]) -> None:
    if not getattr(model, "compiled", False):
        raise ValueError(
            f"{owner}: `model` must be compiled with a loss "
            "(model.compile(loss=...)); received an uncompiled "
            f"{type(model).__name__}."
        )
    if (
        _compiled_losses(model)
        and not _overrides_compute_loss(model)
        and any(batch.y is None for batch in batches)
    ):
        raise ValueError(
            f"{owner}: `y` must hold the targets of the compiled loss "
            f"({_loss_names(model)}), which compares the model's outputs with "
            "targets; received y=None. Pass y=..., or a data set that yields "
            "(x, y) pairs."
        )


def _loss_names(model: keras.Model) -> str:
    names = [
        loss
        if isinstance(loss, str)
        else getattr(loss, "name", None) or getattr(loss, "__name__", repr(loss))
        for loss in _compiled_losses(model)
    ]
    return ", ".join(str(name) for name in names)


def _build(owner: str, model: keras.Model, batch: Batch) -> None:
    """Builds the model, its compiled loss and its trackers eagerly on one
    sample, so that no variable is created while tracing, after checking
    that there is a loss Keras can compute."""
    x, y, sample_weight = _tensors(slice_batch(batch, 0, 1))
    y_pred = model(x, training=False)
    with keras.StatelessScope(collect_losses=True) as scope:
        model(x, training=False)
    added = bool(scope.losses)
    _check_losses(owner, model, added)
    _compute_loss(model, x, y, y_pred, sample_weight)


def _check_losses(owner: str, model: keras.Model, added: bool) -> None:
    """A model compiled without a loss has nothing to minimise (on JAX,
    Keras's `compute_loss` returns 0 instead of raising); per-sample losses
    (reduction "none") cannot be added to other losses by Keras."""
    regularised = any(
        getattr(variable, "regularizer", None) is not None
        for variable in model.trainable_weights
    )
    if _overrides_compute_loss(model):
        return
    compiled = _compiled_losses(model)
    if not compiled and not added and not regularised:
        raise ValueError(
            f"{owner}: `model` must be compiled with a loss "
            "(model.compile(loss=...)), or add losses of its own (add_loss, "
            "regularisers, or a compute_loss override); received a model "
            f"compiled with loss={getattr(model, 'loss', None)!r}."
        )
    unreduced = [loss for loss in compiled if _reduction(loss) in ("none", None)]
    if unreduced and (added or regularised or len(compiled) > 1):
        raise ValueError(
            f"{owner}: a compiled loss with reduction='none' returns per-sample "
            "losses, which Keras's compute_loss cannot add to the model's "
            "other losses (regularisers, add_loss, other outputs; `fit` fails "
            f"the same way); received reduction={_reduction(unreduced[0])!r} "
            "with other losses. Use reduction='sum_over_batch_size' (the mean "
            "of the same per-sample losses, which minimize takes for 'none')."
        )


def _chunk_coefficients(
    owner: str, model: keras.Model, batches: Sequence[Batch]
) -> list[tuple[float, float, float]]:
    """Per chunk, the coefficients of (compute_loss, losses added in call,
    weight regularisers) whose sum over chunks is the loss of all samples."""
    if len(batches) == 1:
        return [(1.0, 0.0, 0.0)]
    if _overrides_compute_loss(model):
        raise ValueError(
            f"{owner}: `model` overrides compute_loss, and minimize cannot tell "
            "how its value adds up over chunks; received "
            f"{len(batches)} chunks. Pass the data as one chunk "
            "(chunk_size=None, or a data set of one batch)."
        )
    reductions = {_reduction(loss) for loss in _compiled_losses(model)}
    weighted = any(batch.sample_weight is not None for batch in batches)
    rules = set()
    for reduction in reductions:
        if reduction in _SUM_REDUCTIONS:
            rules.add("sum")
        elif reduction in _WEIGHTED_MEAN_REDUCTIONS and weighted:
            rules.add("weights")
        elif reduction in _MEAN_REDUCTIONS + _WEIGHTED_MEAN_REDUCTIONS:
            rules.add("samples")
        else:
            known = _MEAN_REDUCTIONS[:-1] + _SUM_REDUCTIONS + _WEIGHTED_MEAN_REDUCTIONS
            raise ValueError(
                f"{owner}: the compiled loss's reduction must be one of {known} "
                f"to be summed over chunks; received reduction={reduction!r}. "
                "Pass the data as one chunk (chunk_size=None)."
            )
    if len(rules) > 1:
        raise ValueError(
            f"{owner}: the compiled losses' reductions must add up over chunks "
            f"the same way; received reductions {sorted(map(str, reductions))}, "
            "whose chunk sums differ (a sum adds, a mean weighs by samples, "
            "mean_with_sample_weight by sample weights). Use one kind of "
            "reduction for every output, or pass the data as one chunk "
            "(chunk_size=None)."
        )
    samples = np.array([batch.samples for batch in batches], dtype=np.float64)
    sample_share = samples / samples.sum()
    rule = rules.pop() if rules else "samples"
    if rule == "sum":
        share = np.ones_like(sample_share)
    elif rule == "weights":
        share = _weight_share(owner, batches)
    else:
        share = sample_share
        _check_same_trailing_shapes(owner, batches)
    chunks = len(batches)
    return [
        (float(phi), float(n - phi), float(1.0 / chunks - phi))
        for phi, n in zip(share, sample_share, strict=True)
    ]


def _weight_share(owner: str, batches: Sequence[Batch]) -> np.ndarray:
    """Each chunk's share of the sum of the sample weights; the same for
    every output."""
    sums = np.array(
        [
            [
                np.sum(leaf, dtype=np.float64)
                for leaf in keras.tree.flatten(batch.sample_weight)
            ]
            for batch in batches
        ]
    )
    totals = sums.sum(axis=0)
    shares = np.divide(sums, totals, out=np.zeros_like(sums), where=totals != 0)
    if not np.allclose(shares, shares[:, :1], rtol=1e-12, atol=0.0):
        raise ValueError(
            f"{owner}: with reduction='mean_with_sample_weight', every output's "
            "sample weights must be split over the chunks in the same "
            "proportion; received per-output sample weights whose chunk "
            "shares differ. Pass the data as one chunk (chunk_size=None)."
        )
    return shares[:, 0]


def _check_same_trailing_shapes(owner: str, batches: Sequence[Batch]) -> None:
    """A mean over all loss entries weighs a chunk by its samples only if
    every sample has as many entries in every chunk."""
    shapes = {
        tuple(tuple(leaf.shape[1:]) for leaf in keras.tree.flatten((batch.x, batch.y)))
        for batch in batches
    }
    if len(shapes) > 1:
        raise ValueError(
            f"{owner}: with a mean reduction, every chunk's arrays must have the "
            "same shape after the sample axis (a mean over all entries weighs "
            "a chunk by its samples only then); received chunks with shapes "
            f"{sorted(shapes)[:3]}. Pad the batches to one shape, or pass the "
            "data as one chunk."
        )


# ---------------------------------------------------------------------------
# The public Hessian-vector product


class HessianVectorProduct:
    r"""Products of the Hessian of a compiled model's loss with vectors.

    Returned by `hessian_vector_product`; see there for the objective.
    Vectors are flat, in the order and shapes of
    `model.trainable_variables`; `flatten` and `unflatten` convert.

    Attributes:
        size: the number of trainable parameters n (the length of v).

    The property `products` counts the products computed so far.

    Example:
        A line through the origin fitted to x = (1, 3) by mean squared
        error has the Hessian 2 mean(x^2) = 10:

        >>> import keras, numpy as np
        >>> import keras_adaptive as ka
        >>> line = keras.Sequential(
        ...     [keras.Input((1,)), keras.layers.Dense(1, use_bias=False)]
        ... )
        >>> line.compile(loss="mse")
        >>> x, y = np.array([[1.0], [3.0]]), np.zeros((2, 1))
        >>> hvp = ka.hessian_vector_product(line, x, y)
        >>> product = hvp(hvp.flatten([np.ones((1, 1))]))
        >>> hvp.size, hvp.products, hvp.unflatten(product)[0].tolist()
        (1, 1, [[10.0]])

    References:
        Pearlmutter, B. A. (1994). Fast exact multiplication by the Hessian.
        Neural Computation 6(1), 147-160.
    """

    def __init__(self, objective: Objective) -> None:
        self._objective = objective
        self._layout = objective.layout
        self.size: int = objective.layout.size

    @property
    def products(self) -> int:
        """The number of products computed so far."""
        return self._objective.products

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """H v at the model's current weights, as float64.

        Args:
            v: a 1-D NumPy array of length `size` (float32 or float64).

        Returns:
            H v, a 1-D float64 NumPy array of length `size`.
        """
        v = np.asarray(v)
        if v.shape != (self.size,) or not np.issubdtype(v.dtype, np.floating):
            raise ValueError(
                "hessian_vector_product: `v` must be a 1-D float array of length "
                f"{self.size} (the number of trainable parameters); received an "
                f"array of shape {v.shape} and dtype {v.dtype}."
            )
        v = ops.convert_to_tensor(v, dtype=self._layout.dtype)
        product = self._objective.hessian_vector_product(self._layout.read(), v)
        return np.asarray(ops.convert_to_numpy(product), dtype=np.float64)

    def loss_and_gradient(self) -> tuple[float, np.ndarray]:
        """The loss (float) and its gradient (1-D float64) at the model's
        current weights."""
        loss, gradient = self._objective(self._layout.read())
        return loss, np.asarray(ops.convert_to_numpy(gradient), dtype=np.float64)

    def flatten(self, arrays: Sequence[Any]) -> np.ndarray:
        """One float64 vector of arrays shaped like the trainable variables."""
        if len(arrays) != len(self._layout.shapes):
            raise ValueError(
                "hessian_vector_product: `arrays` must hold one array per "
                f"trainable variable ({len(self._layout.shapes)}); received "
                f"{len(arrays)}."
            )
        pieces = []
        for array, shape in zip(arrays, self._layout.shapes, strict=True):
            array = np.asarray(array, dtype=np.float64)
            if array.shape != shape:
                raise ValueError(
                    "hessian_vector_product: `arrays` must have the trainable "
                    f"variables' shapes {self._layout.shapes}; received shape "
                    f"{array.shape} where {shape} belongs."
                )
            pieces.append(array.reshape(-1))
        return np.concatenate(pieces)

    def unflatten(self, v: np.ndarray) -> list[np.ndarray]:
        """A flat vector as float64 arrays shaped like the trainable
        variables."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.size,):
            raise ValueError(
                f"hessian_vector_product: `v` must be 1-D of length {self.size}; "
                f"received shape {v.shape}."
            )
        offsets = np.cumsum([0, *self._layout.sizes])
        return [
            v[start:stop].reshape(shape)
            for start, stop, shape in zip(
                offsets[:-1], offsets[1:], self._layout.shapes, strict=True
            )
        ]


def hessian_vector_product(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    sample_weight: Any = None,
    chunk_size: int | None = None,
) -> HessianVectorProduct:
    r"""Exact products of the Hessian of a compiled model's loss with vectors.

    The loss is the objective `minimize` minimises,
    :math:`f(w)` = `model.compute_loss` over the whole data set as a function
    of the vector :math:`w` of all trainable weights (the compiled loss, a
    mean over the samples for Keras's default reduction, plus the
    regularisation losses; the model called with `training=False`), summed
    exactly over chunks of `chunk_size` samples. The returned object
    computes

    .. math::

        H(w)\,v = \nabla^2 f(w)\, v
                = \left.\frac{d}{dt}\right|_{t=0} \nabla f(w + t v)

    at the model's current weights (read at every call, so one object serves
    while the weights change), without forming :math:`H`: on JAX as the
    forward derivative of the gradient (`jax.jvp` of `jax.grad`, under
    `jax.jit`), on TensorFlow and PyTorch as the gradient of
    :math:`\nabla f(w)^\top v` (nested `GradientTape`s in a
    `tf.function(jit_compile=True)`; double backward with `torch.autograd`).
    A product costs a small multiple of one gradient evaluation (1.3 to 1.6
    on the MNIST MLP of `benchmarks/hessian_vector_product.py`). The
    functions are compiled once per call of `hessian_vector_product` (one
    per distinct chunk shape). The arithmetic is in the model's dtype
    (float64 when the Keras dtype policy is float64); results are returned
    as float64 NumPy arrays.

    Args:
        model: a compiled `keras.Model`.
        x: the inputs, as `minimize` takes them: arrays (or a list, tuple or
            dict of them), a `tf.data.Dataset`, a `keras.utils.PyDataset` or
            a finite generator of batches.
        y: the targets, with as many samples as `x` (None for a data set).
        sample_weight: optional per-sample weights, as in `fit`.
        chunk_size: samples per chunk; an integer >= 1, or None for one
            chunk of all samples (arrays only).

    Returns:
        A `HessianVectorProduct` `hvp`: `hvp(v)` is :math:`H v`,
        `hvp.size` the number of parameters, `hvp.products` the products
        computed, `hvp.loss_and_gradient()` the loss and gradient,
        `hvp.flatten` / `hvp.unflatten` convert between the trainable
        variables and flat vectors.

    Raises:
        ValueError: as `minimize` for the model and the data.

    Example:
        For a linear model with mean squared error over x = (1, 2), the
        Hessian in (kernel, bias) is 2 [[mean x^2, mean x], [mean x, 1]]
        = [[5, 3], [3, 2]]:

        >>> import keras, numpy as np
        >>> import keras_adaptive as ka
        >>> x = np.array([[1.0], [2.0]], "float32")
        >>> y = np.array([[2.0], [4.0]], "float32")
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(loss="mse")
        >>> hvp = ka.hessian_vector_product(model, x, y)
        >>> print(hvp(np.array([1.0, 0.0])), hvp(np.array([0.0, 1.0])))
        [5. 3.] [3. 2.]

    References:
        Pearlmutter, B. A. (1994). Fast exact multiplication by the Hessian.
        Neural Computation 6(1), 147-160.
        Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed.,
        Springer, §7.1 (Hessian-free Newton methods).
    """
    owner = "hessian_vector_product"
    batches = read_batches(owner, x, y, sample_weight, chunk_size, None)
    return HessianVectorProduct(Objective(owner, model, batches))
