"""Deterministic full-batch minimisation of a compiled Keras model's loss.

`minimize(model, x, y, method=...)` runs L-BFGS, nonlinear conjugate
gradients or steepest descent with a strong-Wolfe line search on the model's
loss over the whole data set, the way `scipy.optimize.minimize` and
`torch.optim.LBFGS(line_search_fn="strong_wolfe")` do, and returns a
`keras.callbacks.History` as `fit` does.

The algorithm works on one flat vector w of all trainable weights and is
written once, with `keras.ops`; the loop and the line search's scalar logic
run in Python on the host, one compiled value-and-gradient function being
called per function evaluation. Only that function is backend-specific:
TensorFlow compiles it with `tf.function(jit_compile=True)`, JAX with
`jax.jit(jax.value_and_grad(...))`, PyTorch runs autograd eagerly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive._validation import check_choice, check_integer, check_range

METHODS = ("lbfgs", "cg", "gd")
#: The reasons `minimize` stops, as `History.stop_reason` reports them.
__all__ = ["minimize"]

STOP_REASONS = {
    "gtol": "the largest gradient component fell to gtol or below",
    "ftol": "the relative loss decrease of an iteration fell to ftol or below",
    "max_iterations": "max_iterations iterations were run",
    "max_evaluations": "max_evaluations function evaluations were spent",
    "line_search": (
        "the line search found no lower loss along the steepest-descent "
        "direction (the loss no longer changes at the weights' precision)"
    ),
    "callback": "a callback set model.stop_training (e.g. EarlyStopping)",
}
_OWNER = "minimize"
#: Largest step length the line search tries (SciPy's L-BFGS-B uses 1e10).
_ALPHA_MAX = 1e10

Array = Any
ValueAndGrad = Callable[[Array, Any, Any, Any], tuple[Array, Array]]


def minimize(
    model: keras.Model,
    x: Any,
    y: Any = None,
    method: str = "lbfgs",
    *,
    sample_weight: Any = None,
    max_iterations: int = 1000,
    max_evaluations: int | None = None,
    gtol: float = 1e-5,
    ftol: float = 2.220446049250313e-09,
    history_size: int = 10,
    curvature_epsilon: float = 1e-10,
    c1: float = 1e-4,
    c2: float | None = None,
    max_line_search: int = 20,
    restart_every: int | None = None,
    chunk_size: int | None = None,
    validation_data: tuple | None = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: int = 0,
) -> keras.callbacks.History:
    """Minimises a compiled model's full-batch loss with a line-search method.

    The objective is the loss `fit` minimises, over the whole data set at
    once: f(w) = `model.compute_loss(x, y, model(x, training=False),
    sample_weight)`, i.e. the compiled loss (mean over all samples) plus the
    layers' regularisation losses, as a function of the vector w of all
    trainable weights. The model is called with `training=False`, so that f
    is deterministic: Dropout is off and BatchNormalization uses (and keeps)
    its moving statistics. Each iteration k chooses a descent direction d_k
    and a step length alpha_k, and sets w_{k+1} = w_k + alpha_k d_k:

    * `"lbfgs"` (Liu & Nocedal 1989; Nocedal & Wright 2006, Algorithm 7.4):
      d_k = -H_k g_k by the two-loop recursion over the last m =
      `history_size` pairs s_i = w_{i+1} - w_i, y_i = g_{i+1} - g_i, with
      H_k^0 = gamma I, gamma = s^T y / y^T y of the newest pair. A pair is
      kept only if s^T y > `curvature_epsilon` * y^T y, as in the `LBFGS`
      optimizer. The first trial step is 1 (1 / ||g||_2 while the memory is
      empty, as in SciPy's L-BFGS-B).
    * `"cg"`, nonlinear conjugate gradients, Polak-Ribiere+ (Polak & Ribiere
      1969; Nocedal & Wright 2006, eq. 5.45): d_k = -g_k + beta_k d_{k-1},
      beta_k = max(0, g_k^T (g_k - g_{k-1}) / g_{k-1}^T g_{k-1}); restarted
      with d_k = -g_k when d_k is not a descent direction (g_k^T d_k >= 0)
      and every `restart_every` iterations if that is set.
    * `"gd"`: steepest descent, d_k = -g_k.

    For `"cg"` and `"gd"` the first trial step is alpha_{k-1} g_{k-1}^T
    d_{k-1} / g_k^T d_k (Nocedal & Wright 2006, eq. 3.60), 1 / ||g||_2 at
    the first iteration.

    The step length satisfies the strong Wolfe conditions with
    phi(alpha) = f(w_k + alpha d_k):

        phi(alpha) <= phi(0) + c1 alpha phi'(0)      (sufficient decrease)
        |phi'(alpha)| <= c2 |phi'(0)|                (curvature)

    found by bracketing and zoom with cubic interpolation (Nocedal & Wright
    2006, Algorithms 3.5 and 3.6, eq. 3.59; extrapolation and safeguards as
    in Moré & Thuente 1994), at most `max_line_search` evaluations per
    iteration. If the zoom runs out of evaluations or its interval shrinks
    to the weights' precision, the lowest point found is taken when it
    satisfies sufficient decrease; otherwise L-BFGS and CG retry along -g
    (L-BFGS forgetting its pairs), and if that fails too, `minimize` stops
    with reason `"line_search"` (or `"max_evaluations"` if the evaluations
    ran out). A trial point with a non-finite loss or gradient counts as a
    step too long. Every accepted step lowers the loss strictly, so the loss
    never increases from one iteration to the next.

    Stopping (checked after every iteration; the reason is
    `history.stop_reason`, one of `STOP_REASONS`): max_i |g_i| <= `gtol`
    (SciPy's pgtol); (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= `ftol`
    (SciPy's factr * machine epsilon); `max_iterations`; `max_evaluations`;
    a callback setting `model.stop_training`; a failed line search. In
    float32 the loss can stop changing before the `ftol` default (SciPy's,
    for float64) is met, so a converged run often ends with
    `"line_search"` rather than `"ftol"`.

    The weights and all vector arithmetic stay in the dtype of the model's
    trainable variables (float32 by default); the loss is summed in float64
    on the host. With `chunk_size`, f and g are summed over chunks of at most
    `chunk_size` samples, each chunk's mean loss weighted by its share of
    the samples, which equals the full-batch mean (regularisation losses,
    added once per chunk, also sum to exactly one copy). One function is
    compiled per distinct chunk shape (at most two) and traced once.

    Like `fit`, one epoch is one iteration for `callbacks` (so `CSVLogger`,
    `TensorBoard` and `EarlyStopping` work) and for the progress bar
    (`verbose=1`; one line per iteration with `verbose=2`). The weights are
    written into the model after every iteration, before the callbacks'
    `on_epoch_end`, and stay there at the end (after `on_train_end`, so
    `EarlyStopping(restore_best_weights=True)` has the last word).
    Compiled metrics other than the loss cost one extra forward pass over
    `x` per iteration (`model.evaluate`), as does `validation_data`.

    Args:
        model: a built or buildable, compiled `keras.Model` (the compiled
            optimizer is not used).
        x: the inputs, as `fit` takes them in memory (array, list or dict of
            arrays with the samples on the first axis).
        y: the targets, with as many samples as `x`.
        method: `"lbfgs"`, `"cg"` or `"gd"`.
        sample_weight: optional per-sample weights, as in `fit`.
        max_iterations: iterations at most; an integer >= 1.
        max_evaluations: function (value and gradient) evaluations at most,
            including the first at the initial weights; an integer >= 1, or
            `None` for no limit.
        gtol: stop when the largest absolute gradient component is at most
            `gtol`; a float >= 0.
        ftol: stop when the relative decrease of the loss in an iteration is
            at most `ftol`; a float >= 0.
        history_size: m, the L-BFGS curvature pairs kept; an integer >= 1.
        curvature_epsilon: an L-BFGS pair is kept only if s^T y >
            curvature_epsilon * y^T y; a float >= 0.
        c1: sufficient-decrease constant of the Wolfe conditions, in (0, 1).
        c2: curvature constant, in (c1, 1); `None` gives 0.9 for `"lbfgs"`
            and `"gd"`, 0.1 for `"cg"` (Nocedal & Wright 2006, §3.1).
        max_line_search: function evaluations per line search at most; an
            integer >= 1.
        restart_every: restart CG with steepest descent every this many
            iterations; an integer >= 1, or `None` (restart only when the
            direction is not a descent direction). Only for `"cg"`.
        chunk_size: samples per chunk of the full-batch loss and gradient;
            an integer >= 1, or `None` for one chunk of all samples.
        validation_data: `(x_val, y_val)` or `(x_val, y_val,
            sample_weight_val)`; evaluated after every iteration, logged with
            the prefix `val_`.
        callbacks: `keras.callbacks.Callback` instances.
        verbose: 0 (silent), 1 (progress bar) or 2 (one line per iteration).

    Returns:
        The `keras.callbacks.History` of the run (also `model.history`):
        `history.history` holds, per iteration, `loss` (at the new weights),
        the compiled metrics, `evaluations` (function evaluations so far,
        cumulative, including the one at the initial weights) and
        `step_length` (alpha_k), and the `val_` entries. `history.stop_reason`
        is the key of `STOP_REASONS` that ended the run, `history.message`
        its explanation, `history.initial_loss` the loss at the initial
        weights. The final weights are in the model.

    Raises:
        ValueError: for an argument outside its valid range (naming it, its
            value and the range), an uncompiled model, inputs and targets of
            different lengths, or a loss that is not finite at the initial
            weights.

    References:
        Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed.,
        Springer: Algorithms 3.5 and 3.6 (line search), 5.4 and eq. 5.45
        (PR+), 7.4 and 7.5 (L-BFGS).
        Liu, D. C. & Nocedal, J. (1989). On the limited memory BFGS method
        for large scale optimization. Mathematical Programming 45, 503-528.
        Polak, E. & Ribière, G. (1969). Note sur la convergence de méthodes
        de directions conjuguées. Revue française d'informatique et de
        recherche opérationnelle 3(16), 35-43.
        Moré, J. J. & Thuente, D. J. (1994). Line search algorithms with
        guaranteed sufficient decrease. ACM Transactions on Mathematical
        Software 20(3), 286-307.

    Example:
        >>> import keras, numpy as np
        >>> import keras_adaptive as ka
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((64, 3)).astype("float32")
        >>> y = x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.25
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(loss="mse")
        >>> history = ka.minimize(model, x, y, method="lbfgs")
        >>> history.history["loss"][-1] < 1e-6
        True
        >>> history.stop_reason in ("gtol", "ftol", "line_search")
        True
    """
    settings = _check_arguments(
        method=method,
        max_iterations=max_iterations,
        max_evaluations=max_evaluations,
        gtol=gtol,
        ftol=ftol,
        history_size=history_size,
        curvature_epsilon=curvature_epsilon,
        c1=c1,
        c2=c2,
        max_line_search=max_line_search,
        restart_every=restart_every,
        chunk_size=chunk_size,
        verbose=verbose,
    )
    if not getattr(model, "compiled", False):
        raise ValueError(
            f"{_OWNER}: `model` must be compiled with a loss "
            f"(model.compile(loss=...)); received an uncompiled {type(model).__name__}."
        )
    samples = _num_samples(x, y, sample_weight)
    objective = _Objective(model, x, y, sample_weight, samples, chunk_size)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=max_iterations,
        steps=1,
    )
    metrics = _MetricLogger(model, x, y, sample_weight, validation_data, chunk_size)
    run = _Run(objective, settings, callback_list, metrics)
    return run.start()


# ---------------------------------------------------------------------------
# Arguments


@dataclass(frozen=True)
class _Settings:
    method: str
    max_iterations: int
    max_evaluations: int | None
    gtol: float
    ftol: float
    history_size: int
    curvature_epsilon: float
    c1: float
    c2: float
    max_line_search: int
    restart_every: int | None


def _check_arguments(**kw: Any) -> _Settings:
    method = kw["method"]
    check_choice(_OWNER, "method", method, METHODS)
    max_evaluations = kw["max_evaluations"]
    if max_evaluations is not None:
        check_integer(_OWNER, "max_evaluations", max_evaluations, 1)
    restart_every = kw["restart_every"]
    if restart_every is not None:
        check_integer(_OWNER, "restart_every", restart_every, 1)
        if method != "cg":
            raise ValueError(
                f"{_OWNER}: `restart_every` applies only to method='cg'; received "
                f"restart_every={restart_every!r} with method={method!r}."
            )
    if kw["chunk_size"] is not None:
        check_integer(_OWNER, "chunk_size", kw["chunk_size"], 1)
    verbose = kw["verbose"]
    check_integer(_OWNER, "verbose", verbose, 0, 2)
    c1 = check_range(_OWNER, "c1", kw["c1"], 0.0, 1.0, low_closed=False)
    c2 = kw["c2"]
    if c2 is None:
        c2 = 0.1 if method == "cg" else 0.9
    c2 = check_range(_OWNER, "c2", c2, c1, 1.0, low_closed=False)
    return _Settings(
        method=method,
        max_iterations=check_integer(_OWNER, "max_iterations", kw["max_iterations"], 1),
        max_evaluations=max_evaluations,
        gtol=check_range(_OWNER, "gtol", kw["gtol"], 0.0),
        ftol=check_range(_OWNER, "ftol", kw["ftol"], 0.0),
        history_size=check_integer(_OWNER, "history_size", kw["history_size"], 1),
        curvature_epsilon=check_range(
            _OWNER, "curvature_epsilon", kw["curvature_epsilon"], 0.0
        ),
        c1=c1,
        c2=c2,
        max_line_search=check_integer(
            _OWNER, "max_line_search", kw["max_line_search"], 1
        ),
        restart_every=restart_every,
    )


def _first_dimension(name: str, data: Any) -> int:
    lengths = {int(np.shape(leaf)[0]) for leaf in keras.tree.flatten(data)}
    if len(lengths) != 1:
        raise ValueError(
            f"{_OWNER}: every array in `{name}` must have the same number of "
            f"samples (first axis); received lengths {sorted(lengths)}."
        )
    return lengths.pop()


def _num_samples(x: Any, y: Any, sample_weight: Any) -> int:
    samples = _first_dimension("x", x)
    for name, data in (("y", y), ("sample_weight", sample_weight)):
        if data is not None and _first_dimension(name, data) != samples:
            raise ValueError(
                f"{_OWNER}: `{name}` must have as many samples as `x` ({samples}); "
                f"received {_first_dimension(name, data)}."
            )
    if samples < 1:
        raise ValueError(f"{_OWNER}: `x` must hold at least one sample; received 0.")
    return samples


# ---------------------------------------------------------------------------
# The objective: the only backend-specific part


class _Layout:
    """Maps the model's trainable variables to one flat vector and back."""

    def __init__(self, variables: list) -> None:
        self.variables = variables
        self.shapes = [tuple(v.shape) for v in variables]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.dtype = keras.backend.result_type(*[v.dtype for v in variables])

    def flatten_model(self) -> Array:
        pieces = [
            np.reshape(keras.ops.convert_to_numpy(v.value), (-1,))
            for v in self.variables
        ]
        return ops.convert_to_tensor(np.concatenate(pieces), dtype=self.dtype)

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


def _compile(loss_of: Callable) -> ValueAndGrad:
    """`(w, x, y, sample_weight) -> (loss, dloss/dw)`, compiled on TF and JAX."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def value_and_grad(w, x, y, sample_weight):
            with tf.GradientTape() as tape:
                tape.watch(w)
                loss = loss_of(w, x, y, sample_weight)
            return loss, tape.gradient(loss, w)

        return value_and_grad
    if backend == "jax":
        import jax

        return jax.jit(jax.value_and_grad(loss_of))
    if backend == "torch":
        import torch

        def value_and_grad(w, x, y, sample_weight):
            w = w.detach().requires_grad_(True)
            with torch.enable_grad():
                loss = loss_of(w, x, y, sample_weight)
                (grad,) = torch.autograd.grad(loss, w)
            return loss.detach(), grad

        return value_and_grad
    raise ValueError(
        f"{_OWNER}: the Keras backend must be one of ('tensorflow', 'jax', "
        f"'torch'); received backend={backend!r}."
    )


class _Objective:
    """f(w) and its gradient over all samples, counting the evaluations."""

    def __init__(
        self,
        model: keras.Model,
        x: Any,
        y: Any,
        sample_weight: Any,
        samples: int,
        chunk_size: int | None,
    ) -> None:
        size = samples if chunk_size is None else min(chunk_size, samples)
        bounds = [(i, min(i + size, samples)) for i in range(0, samples, size)]

        def piece(data, start, stop):
            if data is None:
                return None
            return keras.tree.map_structure(
                lambda a: ops.convert_to_tensor(np.asarray(a)[start:stop]), data
            )

        self.chunks = [
            (
                piece(x, start, stop),
                piece(y, start, stop),
                piece(sample_weight, start, stop),
                (stop - start) / samples,
            )
            for start, stop in bounds
        ]
        first_x, first_y, first_weight, _ = self.chunks[0]
        # Build the model, the compiled loss and its trackers eagerly on a
        # single sample, so that no variable is created while tracing.
        one = slice(0, 1)
        small = [
            keras.tree.map_structure(lambda a: a[one], data)
            if data is not None
            else None
            for data in (first_x, first_y, first_weight)
        ]
        model.compute_loss(
            x=small[0],
            y=small[1],
            y_pred=model(small[0], training=False),
            sample_weight=small[2],
            training=False,
        )
        self.layout = _Layout(list(model.trainable_variables))
        if not self.layout.variables:
            raise ValueError(
                f"{_OWNER}: `model` must have trainable weights; received a model "
                "with none."
            )
        layout = self.layout

        def loss_of(w, x, y, sample_weight):
            mapping = list(zip(layout.variables, layout.unflatten(w), strict=True))
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
                y_pred = model(x, training=False)
                loss = model.compute_loss(
                    x=x,
                    y=y,
                    y_pred=y_pred,
                    sample_weight=sample_weight,
                    training=False,
                )
            return ops.cast(loss, layout.dtype)

        # One compiled function per distinct chunk length: each is traced once.
        self._functions: dict[int, ValueAndGrad] = {}
        self._lengths = [stop - start for start, stop in bounds]
        for length in self._lengths:
            if length not in self._functions:
                self._functions[length] = _compile(loss_of)
        self.evaluations = 0

    def __call__(self, w: Array) -> tuple[float, Array]:
        """The loss (a Python float, summed in float64) and the gradient."""
        self.evaluations += 1
        total, grad = 0.0, None
        for (x, y, weight, share), length in zip(
            self.chunks, self._lengths, strict=True
        ):
            loss, chunk_grad = self._functions[length](w, x, y, weight)
            total += share * float(ops.convert_to_numpy(loss))
            if len(self.chunks) > 1:
                chunk_grad = ops.cast(share, chunk_grad.dtype) * chunk_grad
            grad = chunk_grad if grad is None else grad + chunk_grad
        return total, grad


# ---------------------------------------------------------------------------
# Metrics and validation, through model.evaluate


class _MetricLogger:
    """Compiled metrics on the training data and the `val_` entries."""

    def __init__(self, model, x, y, sample_weight, validation_data, chunk_size):
        self.model = model
        self.train = (x, y, sample_weight)
        self.validation = _unpack_validation(validation_data)
        self.chunk_size = chunk_size
        self.train_metrics = None  # decided at the first iteration

    def _evaluate(self, x, y, sample_weight) -> dict:
        samples = _first_dimension("x", x)
        return self.model.evaluate(
            x,
            y,
            sample_weight=sample_weight,
            batch_size=min(self.chunk_size or samples, samples),
            verbose=0,
            return_dict=True,
        )

    def logs(self) -> dict:
        logs = {}
        if self.train_metrics is None:
            self.train_metrics = len(self.model.metrics) > 1
        if self.train_metrics:
            values = self._evaluate(*self.train)
            logs.update({k: float(v) for k, v in values.items() if k != "loss"})
        if self.validation is not None:
            values = self._evaluate(*self.validation)
            logs.update({f"val_{k}": float(v) for k, v in values.items()})
        return logs


def _unpack_validation(validation_data: Any) -> tuple | None:
    if validation_data is None:
        return None
    if not isinstance(validation_data, tuple | list) or len(validation_data) not in (
        2,
        3,
    ):
        raise ValueError(
            f"{_OWNER}: `validation_data` must be a tuple (x_val, y_val) or "
            f"(x_val, y_val, sample_weight_val); received {type(validation_data)}."
        )
    x, y, *weight = validation_data
    _num_samples(x, y, weight[0] if weight else None)
    return x, y, weight[0] if weight else None


# ---------------------------------------------------------------------------
# The algorithm: keras.ops on the flat vector, scalars on the host


def _dot(a: Array, b: Array) -> float:
    return float(ops.convert_to_numpy(ops.sum(a * b)))


def _max_abs(a: Array) -> float:
    return float(ops.convert_to_numpy(ops.max(ops.abs(a))))


@dataclass
class _Point:
    """phi(alpha) = f(w + alpha d), its slope phi'(alpha), and w, g there."""

    alpha: float
    f: float
    slope: float
    w: Array
    g: Array


def cubic_minimizer(
    a: float, fa: float, da: float, b: float, fb: float, db: float
) -> float | None:
    """The minimiser of the cubic through (a, fa) and (b, fb) with slopes da
    and db (Nocedal & Wright 2006, eq. 3.59), or None if it has none."""
    if a == b or not all(map(math.isfinite, (fa, da, fb, db))):
        return None
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    radicand = d1 * d1 - da * db
    if radicand < 0.0:
        return None
    d2 = math.copysign(math.sqrt(radicand), b - a)
    denominator = db - da + 2.0 * d2
    if denominator == 0.0:
        return None
    result = b - (b - a) * (db + d2 - d1) / denominator
    return result if math.isfinite(result) else None


class _LineSearch:
    """Strong-Wolfe step length along d (Nocedal & Wright, Alg. 3.5 and 3.6)."""

    def __init__(self, objective: _Objective, settings: _Settings, budget: Callable):
        self.objective = objective
        self.c1 = settings.c1
        self.c2 = settings.c2
        self.max_evaluations = settings.max_line_search
        self.budget = budget  # evaluations left overall (math.inf: no limit)
        self.xtol = float(np.finfo(objective.layout.dtype).eps)

    def search(self, start: _Point, d: Array, alpha: float) -> _Point | None:
        """The accepted point, or None if no point lowered the loss."""
        self.start, self.d, self.used = start, d, 0
        previous = start
        while self._may_evaluate():
            current = self._phi(alpha)
            if not self._sufficient(current) or (
                previous is not start and current.f >= previous.f
            ):
                return self._zoom(previous, current)
            if abs(current.slope) <= -self.c2 * start.slope:
                return current
            if current.slope >= 0.0:
                return self._zoom(current, previous)
            if alpha >= _ALPHA_MAX:
                return current
            alpha = self._extrapolate(previous, current)
            previous = current
        return previous if previous is not start else None

    def _may_evaluate(self) -> bool:
        return self.used < self.max_evaluations and self.budget() > 0

    def _phi(self, alpha: float) -> _Point:
        self.used += 1
        w = self.start.w + ops.cast(alpha, self.d.dtype) * self.d
        f, g = self.objective(w)
        slope = _dot(g, self.d) if math.isfinite(f) else math.nan
        if not math.isfinite(slope):  # a non-finite loss or gradient
            f = math.inf
        return _Point(alpha, f, slope, w, g)

    def _sufficient(self, point: _Point) -> bool:
        bound = self.start.f + self.c1 * point.alpha * self.start.slope
        return point.f <= bound and point.f < self.start.f

    def _extrapolate(self, previous: _Point, current: _Point) -> float:
        """A longer trial step, from the cubic through the last two points,
        kept within [1.1, 4] times the last increase (Moré & Thuente)."""
        width = current.alpha - previous.alpha
        low, high = current.alpha + 1.1 * width, current.alpha + 4.0 * width
        trial = cubic_minimizer(
            previous.alpha,
            previous.f,
            previous.slope,
            current.alpha,
            current.f,
            current.slope,
        )
        if trial is None or trial <= current.alpha:
            trial = high
        return min(max(trial, low), high, _ALPHA_MAX)

    def _zoom(self, low: _Point, high: _Point) -> _Point | None:
        """Algorithm 3.6: `low` satisfies sufficient decrease with the lowest
        loss so far; the interval between low and high holds a Wolfe point."""
        while self._may_evaluate():
            width = high.alpha - low.alpha
            if abs(width) <= self.xtol * max(abs(low.alpha), abs(high.alpha)):
                break
            alpha = self._interpolate(low, high)
            current = self._phi(alpha)
            if not self._sufficient(current) or current.f >= low.f:
                high = current
                continue
            if abs(current.slope) <= -self.c2 * self.start.slope:
                return current
            if current.slope * (high.alpha - low.alpha) >= 0.0:
                high = low
            low = current
        return low if low is not self.start else None

    @staticmethod
    def _interpolate(low: _Point, high: _Point) -> float:
        """The cubic's minimiser, kept 10 % of the interval away from its
        ends; next to `low` if `high` has no finite loss."""
        width = high.alpha - low.alpha
        near, far = low.alpha + 0.1 * width, high.alpha - 0.1 * width
        if not math.isfinite(high.f):
            return near
        trial = cubic_minimizer(
            low.alpha, low.f, low.slope, high.alpha, high.f, high.slope
        )
        if trial is None:
            return low.alpha + 0.5 * width
        lower, upper = min(near, far), max(near, far)
        return min(max(trial, lower), upper)


class _Run:
    """The outer iteration, the callbacks and the stopping rules."""

    def __init__(self, objective, settings, callback_list, metrics):
        self.objective = objective
        self.settings = settings
        self.callbacks = callback_list
        self.metrics = metrics
        self.model = callback_list.model
        self.line_search = _LineSearch(objective, settings, self._budget)
        # L-BFGS pairs (s, y, 1 / s^T y, s^T y / y^T y), oldest first.
        self.pairs: list[tuple[Array, Array, float, float]] = []
        # CG and GD: g, d, alpha and phi'(0) of the last iteration.
        self.last: tuple[Array, Array, float, float] | None = None

    def _budget(self) -> float:
        limit = self.settings.max_evaluations
        return math.inf if limit is None else limit - self.objective.evaluations

    def start(self) -> keras.callbacks.History:
        layout = self.objective.layout
        w = layout.flatten_model()
        f, g = self.objective(w)
        if not math.isfinite(f):
            raise ValueError(
                f"{_OWNER}: the loss at the initial weights must be finite; "
                f"received loss={f!r}. Check the data and the model's outputs."
            )
        point = _Point(0.0, f, math.nan, w, g)
        self.model.stop_training = False
        self.callbacks.on_train_begin()
        reason = self._iterate(point)
        self.callbacks.on_train_end()
        history = self.model.history
        history.stop_reason = reason
        history.message = STOP_REASONS[reason]
        history.initial_loss = f
        return history

    def _iterate(self, point: _Point) -> str:
        s = self.settings
        if _max_abs(point.g) <= s.gtol:
            return "gtol"
        if self._budget() <= 0:
            return "max_evaluations"
        for iteration in range(s.max_iterations):
            self.callbacks.on_epoch_begin(iteration)
            self.callbacks.on_train_batch_begin(0)
            new_point = self._step(point, iteration)
            if new_point is None:
                return "line_search" if self._budget() > 0 else "max_evaluations"
            f_old, point = point.f, new_point
            self.objective.layout.write(point.w)
            logs = {
                "loss": point.f,
                **self.metrics.logs(),
                "evaluations": self.objective.evaluations,
                "step_length": point.alpha,
            }
            self.callbacks.on_train_batch_end(0, logs)
            self.callbacks.on_epoch_end(iteration, logs)
            if self.model.stop_training:
                return "callback"
            if _max_abs(point.g) <= s.gtol:
                return "gtol"
            if (f_old - point.f) / max(abs(f_old), abs(point.f), 1.0) <= s.ftol:
                return "ftol"
            if self._budget() <= 0:
                return "max_evaluations"
        return "max_iterations"

    def _step(self, point: _Point, iteration: int) -> _Point | None:
        """One iteration: direction, line search, and along -g again (with
        the L-BFGS memory cleared) if that line search fails."""
        direction, alpha = self._direction(point, iteration)
        start = _Point(0.0, point.f, math.nan, point.w, point.g)
        new_point = None
        if direction is not None:
            start.slope = _dot(point.g, direction)
            if start.slope < 0.0:
                new_point = self.line_search.search(start, direction, alpha)
        if new_point is None and self._budget() > 0:
            self.pairs.clear()
            direction = -point.g
            start.slope = -_dot(point.g, point.g)
            new_point = self.line_search.search(
                start, direction, self._first_step(point.g)
            )
        if new_point is None:
            return None
        if self.settings.method == "lbfgs":
            self._remember(point, new_point)
        self.last = (point.g, direction, new_point.alpha, start.slope)
        return new_point

    @staticmethod
    def _first_step(g: Array) -> float:
        return 1.0 / math.sqrt(max(_dot(g, g), 1e-300))

    def _direction(self, point: _Point, iteration: int) -> tuple[Array | None, float]:
        """The search direction and the first trial step; None where the
        iteration starts along -g with the step 1 / ||g||_2."""
        method = self.settings.method
        if method == "lbfgs":
            if not self.pairs:
                return None, 0.0
            return -self._two_loop(point.g), 1.0
        if self.last is None:
            return None, 0.0
        g_old, d_old, alpha_old, slope_old = self.last
        direction = -point.g
        restart = self.settings.restart_every
        if method == "cg" and (restart is None or iteration % restart != 0):
            beta = _dot(point.g, point.g - g_old) / _dot(g_old, g_old)
            if beta > 0.0:
                direction = direction + ops.cast(beta, d_old.dtype) * d_old
        slope = _dot(point.g, direction)
        if slope >= 0.0:  # not a descent direction: restart
            direction, slope = -point.g, -_dot(point.g, point.g)
        return direction, min(alpha_old * slope_old / slope, _ALPHA_MAX)

    def _remember(self, point: _Point, new_point: _Point) -> None:
        s = new_point.w - point.w
        y = new_point.g - point.g
        sy, yy = _dot(s, y), _dot(y, y)
        if sy > self.settings.curvature_epsilon * yy and yy > 0.0:
            self.pairs.append((s, y, 1.0 / sy, sy / yy))
            del self.pairs[: -self.settings.history_size]

    def _two_loop(self, g: Array) -> Array:
        """H g by the two-loop recursion, newest pair first."""
        q = g
        alphas = []
        for s, y, rho, _ in reversed(self.pairs):
            alpha = rho * ops.sum(s * q)
            q = q - alpha * y
            alphas.append(alpha)
        r = ops.cast(self.pairs[-1][3], g.dtype) * q
        for (s, y, rho, _), alpha in zip(self.pairs, reversed(alphas), strict=True):
            beta = rho * ops.sum(y * r)
            r = r + (alpha - beta) * s
        return r
