"""L-BFGS: a limited-memory quasi-Newton method over all trainable weights."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_adaptive import _keras_api
from keras_adaptive._validation import check_integer
from keras_adaptive.optimizers import _backend
from keras_adaptive.optimizers.base import (
    LearningRate,
    Optimizer,
    compute_dtype,
)


@keras.saving.register_keras_serializable(package="keras_adaptive")
class LBFGS(Optimizer):
    r"""Limited-memory BFGS over all trainable weights, for full-batch training.

    Liu & Nocedal (1989); Nocedal & Wright (2006), Algorithms 7.4 and 7.5, with a
    fixed step length instead of a line search. All trainable variables are
    treated as one vector :math:`w` of length :math:`n`, and :math:`g` is the
    gradient of the whole model. The last :math:`m` = `history_size` curvature
    pairs

    .. math::

        s_k &= w_{k+1} - w_k \qquad \text{(the step taken)} \\
        y_k &= g_{k+1} - g_k \qquad \text{(the change of the gradient it caused)}

    are kept in fixed :math:`(m, n)` buffers written round-robin (a circular
    index and a pair count, so every shape is static). At each step the pair of
    the previous step is formed first and stored only if it shows positive
    curvature, :math:`s^\top y > \varepsilon\, y^\top y` with
    :math:`\varepsilon` = `curvature_epsilon` (otherwise, e.g. on a non-convex
    region, it is skipped and the memory is unchanged). Then the two-loop
    recursion computes :math:`d = -H g`, with :math:`H` the L-BFGS inverse
    Hessian approximation built from the stored pairs and
    :math:`\rho_i = 1 / s_i^\top y_i`:

    .. math::

        & q \leftarrow g \\
        & \text{for } i = \text{newest}, \dots, \text{oldest}: \quad
          a_i \leftarrow \rho_i\, s_i^\top q, \quad q \leftarrow q - a_i\, y_i \\
        & r \leftarrow \gamma\, q, \quad
          \gamma = s^\top y / y^\top y \ \text{of the newest pair} \\
        & \text{for } i = \text{oldest}, \dots, \text{newest}: \quad
          b \leftarrow \rho_i\, y_i^\top r, \quad r \leftarrow r + (a_i - b)\, s_i \\
        & w \leftarrow w - \eta\, r

    with :math:`\eta` = `learning_rate` (1 by default: the quasi-Newton step).
    While the memory is empty (the first step, or every pair so far skipped) the
    step is scaled steepest descent,
    :math:`-\eta \min(1, 1 / \|g\|_1)\, g`, as PyTorch takes its first step:
    there is no curvature information yet to set its length. Every division is
    guarded, so an empty memory, :math:`y = 0` or a pair whose curvature
    rounding made non-positive never produces NaN.

    Lecture "Optimizing Neural Networks" (Machine Learning in Python): the
    notebook's comparison of mini-batch gradient descent, momentum, adaptive
    learning rates and L-BFGS. A quasi-Newton method builds a model of the
    curvature from the gradients it has seen and takes Newton-like steps,
    which on a smooth, full-batch problem needs fewer iterations than
    first-order methods.

    When to use it: full-batch (or very-large-batch) training of small models
    and convex or nearly convex problems (logistic regression, small regression
    networks, fine-tuning a last layer), with `batch_size` equal to the
    dataset. A Keras optimizer sees one gradient per step and cannot evaluate
    the loss again, so there is no line search: a step that increases the loss
    is not undone (`keras_adaptive.minimize` has one). Minibatch gradients make
    :math:`y_k` mostly sampling noise and the curvature pairs meaningless. A
    `learning_rate` below 1 damps the steps when the loss is far from quadratic;
    `history_size` 5 to 20 is typical. The state is :math:`2mn + 2n` numbers,
    :math:`2m` copies of the model (173k numbers for the 7,850 weights of MNIST
    logistic regression and :math:`m = 10`); the recursion costs about
    :math:`4mn` operations per step.

    Defaults: :math:`\eta = 1`, :math:`m = 10`,
    :math:`\varepsilon = 10^{-10}`.

    Differences from other libraries: one step equals one iteration of
    `torch.optim.LBFGS(params, lr, max_iter=1, history_size=m,
    line_search_fn=None)` (whose :math:`s_k` is likewise the step taken),
    except that PyTorch keeps a pair when :math:`s^\top y > 10^{-10}` (an
    absolute threshold, here relative to :math:`y^\top y`), scales only its
    very first step by :math:`\min(1, 1 / \|g\|_1)`, and returns without a step
    when the gradient or the directional derivative falls below its
    tolerances. PyTorch's LBFGS re-evaluates a closure up to `max_iter` times
    per step, with an optional strong-Wolfe line search; that is not possible
    inside `model.fit`. Keras has no L-BFGS; outside a training loop
    ``scipy.optimize.minimize(method="L-BFGS-B")`` (with a line search) is the
    usual tool.

    Options: coupled `l2` is added to the gradient before the pair is formed,
    so the curvature of the regularised loss is learnt (the natural way to
    regularise L-BFGS). With Keras's decoupled `weight_decay` the weights shrink
    outside the step and :math:`s_k` remains the step taken by the recursion;
    with a large :math:`\eta \cdot` `weight_decay` prefer `l2`. `state_dtype`
    stores the history buffers and the previous gradient and step in that dtype
    (by default, the variables' dtype; a bfloat16 memory adds a relative error
    of about 0.4% to every pair); all arithmetic is in float32 or the variables'
    wider dtype. The update is written with `keras.ops` only and unrolled over
    the static :math:`m`, so it compiles with XLA on TensorFlow and JAX.
    Variables without a gradient in a step are not moved (their part of
    :math:`g` and of the step is zero). Under a multi-replica
    `tf.distribute` strategy `build` raises a `ValueError` (the replicas
    would each update the memory from their own gradient); under JAX's
    `keras.distribution.DataParallel` the gradient is global and the step is
    that of one device.

    Args:
        learning_rate: :math:`\eta`, the step length along the quasi-Newton
            direction; a float >= 0, a schedule or a callable. 1 is the full
            step.
        history_size: :math:`m`, the number of curvature pairs kept; an integer
            >= 1.
        curvature_epsilon: :math:`\varepsilon`; a pair is stored only if
            :math:`s^\top y > \varepsilon\, y^\top y`; >= 0.
        name: the optimizer's name.
        **kwargs: `l2`, `state_dtype` and Keras's base-optimizer options.

    References:
        * D. C. Liu and J. Nocedal (1989), "On the limited memory BFGS method
          for large scale optimization", Mathematical Programming 45, 503-528.
        * J. Nocedal and S. J. Wright (2006), "Numerical Optimization", 2nd ed.,
          Springer, Algorithms 7.4 (two-loop recursion) and 7.5 (L-BFGS).

    Example:
        On the lecture's valley :math:`10\theta_1^2 + 0.5\theta_2^2` (gradient
        :math:`(20\theta_1, \theta_2)`), a few steps find the minimum, once the
        memory holds the curvature of both directions:

        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive.optimizers import LBFGS
        >>> w = keras.Variable([-0.9, -2.8])
        >>> optimizer = LBFGS()
        >>> curvature = np.array([20.0, 1.0], "float32")
        >>> for _ in range(10):
        ...     g = keras.ops.convert_to_tensor(curvature * w.numpy())
        ...     _ = optimizer.apply_gradients([(g, w)])
        >>> print(np.abs(w.numpy()).max() < 1e-6)
        True

        In a model, train on full batches:

        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=LBFGS(), loss="mse")
    """

    def __init__(
        self,
        learning_rate: LearningRate = 1.0,
        history_size: int = 10,
        curvature_epsilon: float = 1e-10,
        name: str | None = None,
        **kwargs: Any,
    ):
        history_size = check_integer(
            type(self).__name__, "history_size", history_size, 1
        )
        curvature_epsilon = self._check("curvature_epsilon", curvature_epsilon, 0.0)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.history_size = history_size
        self.curvature_epsilon = curvature_epsilon

    def build(self, variables):
        if self.built:
            return
        replicas = _backend.replicas_in_sync(self)
        if replicas > 1:
            raise ValueError(
                f"{type(self).__name__} cannot run under a tf.distribute "
                f"strategy with {replicas} replicas: its step couples all "
                "weights through one curvature memory, which the replicas "
                "would update from their own gradients and let drift apart. "
                "Train it on one device (outside `strategy.scope()`), or with "
                "`keras.distribution.DataParallel` on the JAX backend, where "
                "the gradient is global."
            )
        distribution = keras.distribution.distribution()
        if isinstance(distribution, keras.distribution.ModelParallel):
            raise ValueError(
                f"{type(self).__name__} cannot run under "
                f"keras.distribution.ModelParallel: its curvature memory holds "
                "whole-model vectors (all weights flattened into one), which "
                "cannot be laid out like the sharded weights. Train it under "
                "keras.distribution.DataParallel (or without a distribution), "
                "or use a per-weight optimizer of this package, whose state is "
                "sharded like its weights."
            )
        overwritten = [v.path for v in variables if _overwrites_with_gradient(v)]
        if overwritten:
            raise ValueError(
                f"{type(self).__name__} cannot train variables with "
                f"`overwrite_with_gradient=True` ({overwritten}): Keras replaces "
                "them by their gradient outside the optimizer's step, while "
                "L-BFGS's memory couples every weight. Use another optimizer "
                "for such a model (for example one with float8 training)."
            )
        super().build(variables)
        self._sizes = [math.prod(variable.shape) for variable in variables]
        self._compute_dtype = keras.backend.result_type(
            *[compute_dtype(variable) for variable in variables]
        )
        state = self.state_dtype or keras.backend.result_type(
            *[variable.dtype for variable in variables]
        )
        n = sum(self._sizes)
        m = self.history_size
        self._s_history = self.add_variable((m, n), dtype=state, name="s_history")
        self._y_history = self.add_variable((m, n), dtype=state, name="y_history")
        self._previous_gradient = self.add_variable(
            (n,), dtype=state, name="previous_gradient"
        )
        self._previous_step = self.add_variable((n,), dtype=state, name="previous_step")
        # Number of stored pairs (<= m) and the row the next pair goes to.
        self._pairs = self.add_variable((), dtype="int32", name="pairs")
        self._next_row = self.add_variable((), dtype="int32", name="next_row")
        # s_i^T y_i and y_i^T y_i of the pair in each row, written with the
        # pair, so that a step does not recompute them over the whole history
        # (scalars in the compute dtype: float16 could not hold them).
        self._curvatures = [
            self.add_variable((), dtype=self._compute_dtype, name=f"curvature_{i}")
            for i in range(m)
        ]
        self._y_norms = [
            self.add_variable((), dtype=self._compute_dtype, name=f"y_norm_{i}")
            for i in range(m)
        ]

    def _flat_gradient(self, grads, variables, dtype):
        """The whole model's gradient as one vector; zeros where none."""
        given = {
            self.variable_index(variable): gradient
            for gradient, variable in zip(grads, variables, strict=True)
        }
        pieces = []
        for index, size in enumerate(self._sizes):
            if index in given:
                pieces.append(ops.reshape(ops.cast(given[index], dtype), (size,)))
            else:
                pieces.append(ops.zeros((size,), dtype))
        return ops.concatenate(pieces), given

    def update_variables(self, grads, trainable_variables, learning_rate):
        grads = self.coupled_gradients(grads, trainable_variables)
        dtype = self._compute_dtype
        m = self.history_size
        g, given = self._flat_gradient(grads, trainable_variables, dtype)

        # Form the pair of the previous step; keep it if its curvature is
        # positive (s = 0 before the first step, so that pair is skipped).
        s = ops.cast(self._previous_step, dtype)
        y = g - ops.cast(self._previous_gradient, dtype)
        accept = ops.sum(s * y) > self.curvature_epsilon * ops.sum(y * y)
        row = ops.cast(self._next_row, "int32")
        s_history = _write_row(self._s_history, row, s, accept)
        y_history = _write_row(self._y_history, row, y, accept)
        # The scalars of the pair as stored (rounded to the history's dtype).
        s_kept = ops.cast(ops.cast(s, self._s_history.dtype), dtype)
        y_kept = ops.cast(ops.cast(y, self._y_history.dtype), dtype)
        curvatures = self._write_scalars(
            self._curvatures, row, ops.sum(s_kept * y_kept), accept
        )
        y_norms = self._write_scalars(
            self._y_norms, row, ops.sum(y_kept * y_kept), accept
        )
        accepted = ops.cast(accept, "int32")
        pairs = ops.minimum(ops.cast(self._pairs, "int32") + accepted, m)
        next_row = (row + accepted) % m
        self.assign(self._s_history, s_history)
        self.assign(self._y_history, y_history)
        self.assign(self._pairs, pairs)
        self.assign(self._next_row, next_row)

        direction = -self._two_loop(
            g, s_history, y_history, curvatures, y_norms, pairs, next_row
        )
        scale = ops.where(
            pairs > 0,
            ops.ones((), dtype),
            1.0 / ops.maximum(ops.sum(ops.abs(g)), ops.ones((), dtype)),
        )
        step = ops.cast(learning_rate, dtype) * scale * direction

        pieces, offset = [], 0
        for index, (size, variable) in enumerate(
            zip(self._sizes, _keras_api.trainable_variables(self), strict=True)
        ):
            if index in given:
                piece = step[offset : offset + size]
                update = ops.reshape(piece, variable.shape)
                self.assign_add(variable, ops.cast(update, variable.dtype))
            else:
                piece = ops.zeros((size,), dtype)
            pieces.append(piece)
            offset += size
        self.assign(self._previous_step, ops.concatenate(pieces))
        self.assign(self._previous_gradient, g)

    def _write_scalars(self, variables, row, value, accept):
        """Writes `value` to `variables[row]` if `accept`; all m values, stacked."""
        values = []
        for i, variable in enumerate(variables):
            write = ops.logical_and(accept, ops.equal(row, i))
            new = ops.where(write, value, ops.cast(variable, value.dtype))
            self.assign(variable, new)
            values.append(new)
        return ops.stack(values)

    def _two_loop(self, g, s_history, y_history, curvatures, y_norms, pairs, next_row):
        """H g by `two_loop_recursion` over the stored pairs, newest first.

        Unrolled over the static history size; slots not (yet) holding a
        pair, or holding one whose curvature rounding made non-positive, are
        masked out with rho = 0.
        """
        m = self.history_size
        zero = ops.zeros((), g.dtype)
        one = ops.ones((), g.dtype)
        memory = []
        for age in range(m):
            row = (next_row - 1 - age) % m
            s = ops.cast(ops.take(s_history, row, axis=0), g.dtype)
            y = ops.cast(ops.take(y_history, row, axis=0), g.dtype)
            curvature = ops.take(curvatures, row)
            valid = ops.logical_and(age < pairs, curvature > 0)
            rho = ops.where(valid, one / ops.where(valid, curvature, one), zero)
            memory.append((s, y, rho))
            if age == 0:
                newest_curvature, newest_valid = curvature, valid
                y_norm = ops.take(y_norms, row)
        has_scale = ops.logical_and(newest_valid, y_norm > 0)
        gamma = ops.where(
            has_scale,
            newest_curvature / ops.where(has_scale, y_norm, one),
            one,
        )
        return two_loop_recursion(g, memory, gamma)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "history_size": self.history_size,
                "curvature_epsilon": self.curvature_epsilon,
            }
        )
        return config


def two_loop_recursion(g, pairs, gamma):
    r"""H g, the L-BFGS inverse-Hessian approximation times g.

    Nocedal & Wright (2006), Algorithm 7.4, in `keras.ops`, so that it runs
    inside a compiled update step (`LBFGS`) and on the host's flat weight
    vector (`keras_adaptive.minimize`) alike:

    .. math::

        & q \leftarrow g; \quad \text{for } i = \text{newest}, \dots,
          \text{oldest}: \ a_i \leftarrow \rho_i s_i^\top q, \
          q \leftarrow q - a_i y_i \\
        & r \leftarrow \gamma q; \quad \text{for } i = \text{oldest},
          \dots, \text{newest}: \ b \leftarrow \rho_i y_i^\top r, \
          r \leftarrow r + (a_i - b) s_i

    Args:
        g: the vector.
        pairs: (s_i, y_i, rho_i) newest first, with rho_i = 1 / s_i^T y_i;
            a pair with rho_i = 0 changes nothing (a masked slot).
        gamma: the scale of the initial matrix H^0 = gamma I.

    Returns:
        H g, with the dtype of g.
    """
    q = g
    alphas = []
    for s, y, rho in pairs:
        alpha = rho * ops.sum(s * q)
        q = q - alpha * y
        alphas.append(alpha)
    r = gamma * q
    for (s, y, rho), alpha in zip(reversed(pairs), reversed(alphas), strict=True):
        beta = rho * ops.sum(y * r)
        r = r + (alpha - beta) * s
    return r


def _write_row(history, row, value, accept):
    """`history` with row `row` replaced by `value` where `accept` holds.

    Only that row is written (`slice_update`): rewriting the whole (m, n)
    history with a mask would copy it at every step.
    """
    history = ops.convert_to_tensor(history)
    kept = ops.cast(ops.take(history, row, axis=0), value.dtype)
    new_row = ops.cast(ops.where(accept, value, kept), history.dtype)
    return ops.slice_update(history, (row, 0), ops.expand_dims(new_row, 0))


def _overwrites_with_gradient(variable) -> bool:
    return bool(getattr(variable, "overwrite_with_gradient", False))
