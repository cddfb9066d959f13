"""`minimize`: deterministic full-batch minimisation of a compiled Keras
model's loss, with a strong-Wolfe line search or a trust region.

The outer iteration, the stopping rules and the callbacks are here; the
objective (`objective.py`), the search directions (`directions.py`) and the
line search (`line_search.py`) are in their own modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive._validation import check_choice, check_integer, check_range
from keras_adaptive.full_batch.data import (
    Batch,
    read_batches,
    validation_batches,
)
from keras_adaptive.full_batch.directions import (
    GradientDirection,
    LBFGSDirection,
    NewtonCGDirection,
    dot,
    steepest_descent_step,
    steihaug,
)
from keras_adaptive.full_batch.line_search import ALPHA_MAX, strong_wolfe
from keras_adaptive.full_batch.objective import Objective

__all__ = ["METHODS", "STOP_REASONS", "minimize"]

#: The methods of `minimize`.
METHODS = ("lbfgs", "cg", "gd", "newton-cg", "trust-ncg")
_NEWTON_METHODS = ("newton-cg", "trust-ncg")
#: The reasons `minimize` stops, as `History.stop_reason` reports them.
STOP_REASONS = {
    "gtol": "the largest gradient component fell to gtol or below",
    "ftol": "the relative loss decrease of an iteration fell to ftol or below",
    "max_iterations": "max_iterations iterations were run",
    "max_evaluations": "max_evaluations function evaluations were spent",
    "line_search": (
        "the line search found no lower loss along the steepest-descent "
        "direction (the loss no longer changes at the weights' precision)"
    ),
    "trust_region": (
        "the trust region shrank to the weights' precision without a lower "
        "loss (the loss no longer changes at the weights' precision)"
    ),
    "callback": "a callback set model.stop_training (e.g. EarlyStopping)",
}
_OWNER = "minimize"
#: The trust-region radius update of SciPy's `trust-ncg` (and Nocedal &
#: Wright 2006, Algorithm 4.1): shrink by 1/4 when the model predicted the
#: decrease badly (ratio below 1/4), double it up to the maximum when well
#: (above 3/4) on the boundary, take the step if the ratio exceeds 0.15.
_SHRINK_BELOW, _GROW_ABOVE, _ACCEPT_ABOVE = 0.25, 0.75, 0.15

Array = Any


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
    max_cg_iterations: int | None = None,
    initial_trust_radius: float | None = None,
    max_trust_radius: float | None = None,
    chunk_size: int | None = None,
    steps: int | None = None,
    validation_data: tuple | None = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    verbose: int = 0,
) -> keras.callbacks.History:
    r"""Minimises a compiled model's full-batch loss with a line-search or
    trust-region method.

    The objective is the loss `fit` minimises, over the whole data set at
    once: :math:`f(w)` = `model.compute_loss(x, y, model(x, training=False),
    sample_weight)`, i.e. the compiled loss (a mean over all samples for
    Keras's default reduction) plus the layers' regularisation losses, as a
    function of the vector :math:`w` of all trainable weights. The model is
    called with `training=False`, so that :math:`f` is deterministic: Dropout
    is off and BatchNormalization uses (and keeps) its moving statistics.
    For a loss with `reduction="none"`, :math:`f` is the mean of the
    per-sample losses (what `evaluate` reports). Each iteration :math:`k`
    chooses a descent direction :math:`d_k` and a step length
    :math:`\alpha_k`, and sets :math:`w_{k+1} = w_k + \alpha_k d_k`:

    * `"lbfgs"` (Liu & Nocedal 1989; Nocedal & Wright 2006, Algorithm 7.4):
      :math:`d_k = -H_k g_k` by the two-loop recursion (the one the `LBFGS`
      optimizer uses) over the last :math:`m` = `history_size` pairs
      :math:`s_i = w_{i+1} - w_i`, :math:`y_i = g_{i+1} - g_i`, with
      :math:`H_k^0 = \gamma I`, :math:`\gamma = s^\top y / y^\top y` of the
      newest pair. A pair is kept only if
      :math:`s^\top y > \varepsilon\, y^\top y` (`curvature_epsilon`), as in
      `LBFGS`. The first trial step is 1, and :math:`1 / \|g\|_2` along
      :math:`-g` while the memory is empty, as in SciPy's L-BFGS-B (the
      `LBFGS` optimizer, which has no line search, takes
      :math:`\min(1, 1 / \|g\|_1)` there, as PyTorch does).
    * `"cg"`, nonlinear conjugate gradients, Polak-Ribière+ (Nocedal &
      Wright 2006, eq. 5.45): :math:`d_k = -g_k + \beta_k d_{k-1}`,
      :math:`\beta_k = \max(0, g_k^\top (g_k - g_{k-1}) / g_{k-1}^\top
      g_{k-1})`; restarted with :math:`-g_k` when :math:`d_k` is not a
      descent direction and every `restart_every` iterations if set.
    * `"gd"`: steepest descent, :math:`d_k = -g_k`.
    * `"newton-cg"`, truncated Newton (Nocedal & Wright 2006, Algorithm
      7.1): :math:`d_k` solves :math:`\nabla^2 f(w_k)\, d = -g_k` by linear
      conjugate gradients on exact Hessian-vector products (see
      `hessian_vector_product`), stopped when the residual falls to
      :math:`\eta_k \|g_k\|` with :math:`\eta_k = \min(0.5,
      \sqrt{\|g_k\|})`, or when CG meets non-positive curvature (then its
      last iterate; :math:`-g_k` at its first step); first trial step 1.
    * `"trust-ncg"`, Newton-CG in a trust region (Nocedal & Wright 2006,
      Algorithms 7.2 and 4.1): the step minimises the quadratic model
      :math:`g^\top p + \tfrac12 p^\top \nabla^2 f\, p` within
      :math:`\|p\| \le \Delta_k` by CG-Steihaug (same stopping rule, to the
      boundary on leaving it or on non-positive curvature); it is taken if
      the actual decrease is more than 0.15 times the predicted one (else
      the radius shrinks and the step is recomputed), and :math:`\Delta`
      shrinks by 4 when that ratio is below 1/4 and doubles (up to
      `max_trust_radius`) when it is above 3/4 on the boundary, as in
      SciPy's `trust-ncg`. There is no line search.

    For `"cg"` and `"gd"` the first trial step is :math:`\alpha_{k-1}
    g_{k-1}^\top d_{k-1} / g_k^\top d_k` (Nocedal & Wright 2006, eq. 3.60),
    :math:`1 / \|g\|_2` at the first iteration.

    The step length satisfies the strong Wolfe conditions
    (`keras_adaptive.full_batch.strong_wolfe`) with :math:`\phi(\alpha) =
    f(w_k + \alpha d_k)`:

    .. math::

        \phi(\alpha) &\le \phi(0) + c_1 \alpha \phi'(0)
            \qquad \text{(sufficient decrease)} \\
        |\phi'(\alpha)| &\le c_2 |\phi'(0)| \qquad \text{(curvature)}

    at most `max_line_search` evaluations per iteration. If the search runs
    out of evaluations or its interval shrinks to the weights' precision,
    the lowest point found is taken when it satisfies sufficient decrease;
    otherwise the iteration retries along :math:`-g` (L-BFGS forgetting its
    pairs, CG restarting), and if that fails too, `minimize` stops with
    reason `"line_search"` (or `"max_evaluations"` if the evaluations ran
    out). A trial point with a non-finite loss or gradient counts as a step
    too long. Every accepted step (line search or trust region) lowers the
    loss strictly, so the loss never increases from one iteration to the
    next.

    Stopping (checked after every iteration; the reason is
    `history.stop_reason`, one of `STOP_REASONS`):
    :math:`\max_i |g_i| \le` `gtol` (SciPy's pgtol);
    :math:`(f_k - f_{k+1}) / \max(|f_k|, |f_{k+1}|, 1) \le` `ftol` (SciPy's
    factr times machine epsilon); `max_iterations`; `max_evaluations`; a
    callback setting `model.stop_training`; a failed line search or a trust
    region shrunk to nothing. In float32 the loss can stop changing before
    the `ftol` default (SciPy's, for float64) is met, so a converged run
    often ends with `"line_search"` rather than `"ftol"`.

    The weights and all vector arithmetic stay in the dtype of the model's
    trainable variables (float32 by default); the loss is summed in float64
    on the host.

    Data: arrays (a NumPy array or tensor, or a list, tuple or dict of them,
    as `fit` takes them) are cut into chunks of `chunk_size` samples (one
    chunk with `chunk_size=None`); a `tf.data.Dataset`, a
    `keras.utils.PyDataset`, a generator or another finite iterable of
    batches (yielding `(x, y)` or `(x, y, sample_weight)`, as `fit` takes
    them) is read once into memory, and its batches are the chunks. The loss
    and gradient are summed exactly over the chunks: a chunk's compiled loss
    is weighted by its share of the samples for a mean reduction
    (`"sum_over_batch_size"`, `"none"`), by 1 for `"sum"`, and by its share
    of the sample weights for `"mean_with_sample_weight"`; the weight
    regularisers count once, and losses that layers add in `call` (activity
    regularisers) as means over the chunk's samples. Data that cannot be
    summed that way (outputs with different kinds of reduction, a custom
    `compute_loss`, a loss that is not a sum or mean over samples, which a
    check on the first samples detects) are refused with a `ValueError`
    unless they come as one chunk. One function is compiled per distinct
    chunk shape and traced once.

    Like `fit`, one epoch is one iteration for `callbacks` (so `CSVLogger`,
    `TensorBoard` and `EarlyStopping` work) and for the progress bar
    (`verbose=1`; one line per iteration with `verbose=2`). The weights are
    written into the model after every iteration, before the callbacks'
    `on_epoch_end`, and stay there at the end (after `on_train_end`, so
    `EarlyStopping(restore_best_weights=True)` has the last word).
    Compiled metrics other than the loss cost one extra forward pass over
    the data per iteration (`model.evaluate`), as does `validation_data`.

    Args:
        model: a built or buildable, compiled `keras.Model` (the compiled
            optimizer is not used).
        x: the inputs: arrays (or a list, tuple or dict of them) with the
            samples on the first axis, a `tf.data.Dataset`, a
            `keras.utils.PyDataset` or a finite generator of batches.
        y: the targets, with as many samples as `x`; None for a data set
            (which yields them) or a model whose `compute_loss` needs none.
        method: one of `METHODS`: `"lbfgs"`, `"cg"`, `"gd"`, `"newton-cg"`
            or `"trust-ncg"`.
        sample_weight: optional per-sample weights, as in `fit` (arrays
            only).
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
        c2: curvature constant, in (c1, 1); `None` gives 0.9, and 0.1 for
            `"cg"` (Nocedal & Wright 2006, §3.1).
        max_line_search: function evaluations per line search at most; an
            integer >= 1.
        restart_every: restart CG with steepest descent every this many
            iterations; an integer >= 1, or `None` (restart only when the
            direction is not a descent direction). Only for `"cg"`.
        max_cg_iterations: Hessian-vector products per inner CG solve at
            most; an integer >= 1, or `None` for the number of weights (CG's
            finite termination; SciPy's `Newton-CG` allows 20 times that).
            Only for `"newton-cg"` and `"trust-ncg"`.
        initial_trust_radius: the first trust-region radius; a float > 0,
            or `None` for 1 (SciPy's default). Only for `"trust-ncg"`.
        max_trust_radius: the largest trust-region radius; a float >=
            `initial_trust_radius`, or `None` for 1000 (SciPy's default).
            Only for `"trust-ncg"`.
        chunk_size: samples per chunk of the loss and gradient (arrays
            only); an integer >= 1, or `None` for one chunk of all samples.
        steps: batches to read from a data set or generator; an integer >=
            1, or `None` to read until it ends (an infinite
            `tf.data.Dataset` or a `PyDataset` without `num_batches` then
            raises).
        validation_data: `(x_val, y_val)` or `(x_val, y_val,
            sample_weight_val)` arrays; evaluated after every iteration,
            logged with the prefix `val_`.
        callbacks: `keras.callbacks.Callback` instances.
        verbose: 0 (silent), 1 (progress bar) or 2 (one line per iteration).

    Returns:
        The `keras.callbacks.History` of the run (also `model.history`):
        `history.history` holds, per iteration, `loss` (at the new weights),
        the compiled metrics, `evaluations` (value-and-gradient evaluations
        so far, cumulative, including the one at the initial weights),
        `step_length` (:math:`\alpha_k`; not for `"trust-ncg"`), for the
        Newton methods `hessian_vector_products` (cumulative) and for
        `"trust-ncg"` `trust_radius` (the radius for the next iteration),
        and the `val_` entries. `history.stop_reason` is the key of
        `STOP_REASONS` that ended the run, `history.message` its
        explanation, `history.initial_loss` the loss at the initial weights.
        The final weights are in the model.

    Raises:
        ValueError: for an argument outside its valid range (naming it, its
            value and the range), an uncompiled model or one without a loss,
            data that is not as `fit` takes it (ragged, of different lengths,
            `y=None` for a loss that needs targets, an infinite data set),
            a loss that cannot be summed over the chunks given, or a loss
            that is not finite at the initial weights.

    References:
        Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed.,
        Springer: Algorithms 3.5 and 3.6 (line search), 4.1 (trust region),
        5.4 and eq. 5.45 (PR+), 7.1 (Newton-CG), 7.2 (CG-Steihaug), 7.4 and
        7.5 (L-BFGS).
        Liu, D. C. & Nocedal, J. (1989). On the limited memory BFGS method
        for large scale optimization. Mathematical Programming 45, 503-528.
        Polak, E. & Ribière, G. (1969). Note sur la convergence de méthodes
        de directions conjuguées. Revue française d'informatique et de
        recherche opérationnelle 3(16), 35-43.
        Steihaug, T. (1983). The conjugate gradient method and trust regions
        in large scale optimization. SIAM Journal on Numerical Analysis
        20(3), 626-637.

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
        max_cg_iterations=max_cg_iterations,
        initial_trust_radius=initial_trust_radius,
        max_trust_radius=max_trust_radius,
        verbose=verbose,
    )
    batches = read_batches(_OWNER, x, y, sample_weight, chunk_size, steps)
    validation = validation_batches(_OWNER, validation_data)
    objective = Objective(_OWNER, model, batches)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=max_iterations,
        steps=1,
    )
    metrics = _MetricLogger(model, batches, validation)
    return _Run(objective, settings, callback_list, metrics).start()


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
    max_cg_iterations: int | None
    initial_trust_radius: float
    max_trust_radius: float


def _check_only_for(name: str, value: Any, method: str, methods: tuple) -> None:
    if value is not None and method not in methods:
        allowed = " or ".join(f"method={m!r}" for m in methods)
        raise ValueError(
            f"{_OWNER}: `{name}` applies only to {allowed}; received "
            f"{name}={value!r} with method={method!r}."
        )


def _check_arguments(**kw: Any) -> _Settings:
    method = kw["method"]
    check_choice(_OWNER, "method", method, METHODS)
    max_evaluations = kw["max_evaluations"]
    if max_evaluations is not None:
        check_integer(_OWNER, "max_evaluations", max_evaluations, 1)
    restart_every = kw["restart_every"]
    if restart_every is not None:
        check_integer(_OWNER, "restart_every", restart_every, 1)
    _check_only_for("restart_every", restart_every, method, ("cg",))
    max_cg_iterations = kw["max_cg_iterations"]
    if max_cg_iterations is not None:
        check_integer(_OWNER, "max_cg_iterations", max_cg_iterations, 1)
    _check_only_for("max_cg_iterations", max_cg_iterations, method, _NEWTON_METHODS)
    for name in ("initial_trust_radius", "max_trust_radius"):
        _check_only_for(name, kw[name], method, ("trust-ncg",))
    radius = kw["initial_trust_radius"]
    radius = 1.0 if radius is None else radius
    radius = check_range(_OWNER, "initial_trust_radius", radius, 0.0, low_closed=False)
    largest = kw["max_trust_radius"]
    largest = max(1000.0, radius) if largest is None else largest
    largest = check_range(_OWNER, "max_trust_radius", largest, radius)
    check_integer(_OWNER, "verbose", kw["verbose"], 0, 2)
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
        max_cg_iterations=max_cg_iterations,
        initial_trust_radius=radius,
        max_trust_radius=largest,
    )


# ---------------------------------------------------------------------------
# Metrics and validation, through model.evaluate


class _BatchList(keras.utils.PyDataset):
    """The chunks, for `model.evaluate`."""

    def __init__(self, batches: list[Batch]) -> None:
        super().__init__()
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple:
        batch = self.batches[index]
        if batch.sample_weight is not None:
            data = batch.x, batch.y, batch.sample_weight
        elif batch.y is not None:
            data = batch.x, batch.y
        else:
            data = (batch.x,)
        # TensorFlow's generator signature takes tuples, not lists.
        return keras.tree.lists_to_tuples(data)


class _MetricLogger:
    """Compiled metrics on the training data and the `val_` entries."""

    def __init__(self, model, batches, validation) -> None:
        self.model = model
        self.train = batches
        self.validation = validation
        self.train_metrics = None  # decided at the first iteration

    def _evaluate(self, batches: list[Batch]) -> dict:
        return self.model.evaluate(_BatchList(batches), verbose=0, return_dict=True)

    def logs(self) -> dict:
        logs = {}
        if self.train_metrics is None:
            self.train_metrics = len(self.model.metrics) > 1
        if self.train_metrics:
            values = self._evaluate(self.train)
            logs.update({k: float(v) for k, v in values.items() if k != "loss"})
        if self.validation is not None:
            values = self._evaluate(self.validation)
            logs.update({f"val_{k}": float(v) for k, v in values.items()})
        return logs


# ---------------------------------------------------------------------------
# The outer iteration


@dataclass
class _Point:
    """An iterate: the weights w, f(w) and the gradient g there."""

    w: Array
    f: float
    g: Array


def _max_abs(a: Array) -> float:
    return float(ops.convert_to_numpy(ops.max(ops.abs(a))))


class _Run:
    """The outer iteration, the callbacks and the stopping rules."""

    def __init__(self, objective, settings, callback_list, metrics):
        self.objective = objective
        self.settings = settings
        self.callbacks = callback_list
        self.metrics = metrics
        self.model = callback_list.model
        dtype = keras.backend.standardize_dtype(objective.layout.dtype)
        self.xtol = float(np.finfo(dtype).eps)
        self.max_products = settings.max_cg_iterations or objective.layout.size
        self.radius = settings.initial_trust_radius
        self.direction = self._direction_for(settings.method)

    def _direction_for(self, method: str):
        s = self.settings
        if method == "lbfgs":
            return LBFGSDirection(s.history_size, s.curvature_epsilon)
        if method in ("cg", "gd"):
            return GradientDirection(method == "cg", s.restart_every)
        if method == "newton-cg":
            return NewtonCGDirection(self._product_at, self.max_products)
        return None  # trust-ncg has no line search

    def _product_at(self, w: Array):
        return lambda v: self.objective.hessian_vector_product(w, v)

    def _budget(self) -> float:
        limit = self.settings.max_evaluations
        return math.inf if limit is None else limit - self.objective.evaluations

    def start(self) -> keras.callbacks.History:
        w = self.objective.layout.read()
        f, g = self.objective(w)
        if not math.isfinite(f):
            raise ValueError(
                f"{_OWNER}: the loss at the initial weights must be finite; "
                f"received loss={f!r}. Check the data and the model's outputs."
            )
        self.model.stop_training = False
        self.callbacks.on_train_begin()
        reason = self._iterate(_Point(w, f, g))
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
            if s.method == "trust-ncg":
                new_point, step_log = self._trust_region_step(point)
            else:
                new_point, step_log = self._line_search_step(point, iteration)
            if new_point is None:
                if self._budget() <= 0:
                    return "max_evaluations"
                return "trust_region" if s.method == "trust-ncg" else "line_search"
            f_old, point = point.f, new_point
            self.objective.layout.write(point.w)
            logs = {
                "loss": point.f,
                **self.metrics.logs(),
                "evaluations": self.objective.evaluations,
                **step_log,
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

    def _products_log(self) -> dict:
        if self.settings.method in _NEWTON_METHODS:
            return {"hessian_vector_products": self.objective.products}
        return {}

    def _line_search_step(self, point: _Point, iteration: int):
        """Direction and line search; along -g again (the direction's memory
        cleared) if that search finds no lower loss."""
        proposal = self.direction.propose(point.w, point.g, iteration)
        found = None
        if proposal is not None:
            direction, alpha = proposal
            slope = dot(point.g, direction)
            if slope < 0.0:
                found = self._search(point, direction, slope, alpha)
        if found is None and self._budget() > 0:
            self.direction.reset()
            direction, slope = -point.g, -dot(point.g, point.g)
            found = self._search(
                point, direction, slope, steepest_descent_step(point.g)
            )
        if found is None:
            return None, {}
        new_point, alpha = found
        self.direction.accepted(
            point.w, point.g, new_point.w, new_point.g, direction, alpha, slope
        )
        return new_point, {"step_length": alpha, **self._products_log()}

    def _search(self, point: _Point, direction: Array, slope: float, alpha: float):
        """The strong-Wolfe point along `direction` and its step length, or
        None."""
        evaluations = min(self.settings.max_line_search, self._budget())
        if evaluations <= 0:
            return None
        trials = {}

        def phi(step: float) -> tuple[float, float]:
            w = point.w + ops.cast(step, direction.dtype) * direction
            f, g = self.objective(w)
            trials[step] = (w, g)
            return f, dot(g, direction) if math.isfinite(f) else math.nan

        found = strong_wolfe(
            phi,
            point.f,
            slope,
            min(alpha, ALPHA_MAX),
            c1=self.settings.c1,
            c2=self.settings.c2,
            max_evaluations=int(evaluations),
            xtol=self.xtol,
        )
        if found is None:
            return None
        w, g = trials[found.alpha]
        return _Point(w, found.value, g), found.alpha

    def _trust_region_step(self, point: _Point):
        """CG-Steihaug steps within the trust region, shrinking it, until
        one lowers the loss enough."""
        product = self._product_at(point.w)
        norm_w = math.sqrt(dot(point.w, point.w))
        while self._budget() > 0 and self.radius > self.xtol * max(norm_w, 1.0):
            step = steihaug(point.g, product, self.radius, self.max_products)
            w = point.w + step.p
            f, g = self.objective(w)
            predicted = -step.model_change
            ratio = (point.f - f) / predicted if predicted > 0.0 else -math.inf
            if not math.isfinite(f):
                ratio = -math.inf
            if ratio < _SHRINK_BELOW:
                self.radius *= 0.25
            elif ratio > _GROW_ABOVE and step.boundary:
                self.radius = min(2.0 * self.radius, self.settings.max_trust_radius)
            if ratio > _ACCEPT_ABOVE and f < point.f:
                log = {"trust_radius": self.radius, **self._products_log()}
                return _Point(w, f, g), log
        return None, {}
