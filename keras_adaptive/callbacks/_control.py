"""Run-time control of an optimizer's learning rate, shared by the callbacks.

A callback that changes the learning rate between steps has to do it in a way
that reaches the compiled train function without retracing it:

* a float learning rate is already a ``keras.Variable`` tracked by the
  optimizer, so it is assigned directly;
* a ``LearningRateSchedule`` or a callable cannot be assigned, so it is wrapped
  once in :class:`ScaledLearningRate`, which multiplies its output by a scalar
  variable created with ``optimizer.add_variable``. Being one of
  ``optimizer.variables``, the scale is part of the state that the JAX trainer
  passes explicitly to the jitted step, and a captured variable of the
  TensorFlow graph; a plain ``keras.Variable`` outside the optimizer would be
  frozen as a constant by ``jax.jit``.

The wrapping happens in ``Callback.set_model``, which ``fit`` calls before the
train function is first traced (and before any ``on_train_begin``, so before
``BackupAndRestore`` loads a checkpoint that includes the scale).

The scale is created after the optimizer's other variables and its position
is recorded in the ``ScaledLearningRate``; this package's optimizers create it
again at that position when loaded, so ``keras.models.load_model`` restores
every variable. Keras's own optimizers skip loading all their variables when
the saved number differs and offer no hook to add one first, so a policy that
wraps their schedule warns that ``load_model`` will not restore them.

The callbacks' own state (best value, counters, best weights) lives in a
:class:`_CallbackState` attached to the optimizer as an attribute, not in
optimizer variables (as optax keeps its plateau counters): Keras's weight
saving walks the optimizer's attributes, so ``model.save_weights`` and
therefore ``BackupAndRestore`` save and restore that state together with the
weights, at the same moment, while the optimizer's variable count, on which
reloading depends, stays that of a plain optimizer (plus the scale). The
decisions are host computations on Python floats, with no device round trip.
:class:`LearningRatePolicy` explains how a decision survives a backup taken
before it (a policy listed after ``BackupAndRestore``) and how a second
controller of the same rate is detected.
"""

from __future__ import annotations

import contextlib
import math
import warnings
import weakref
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_adaptive._keras_api import (
    learning_rate_object,
    rebuild_train_function,
)
from keras_adaptive.schedules import ScaledLearningRate, add_scale_variable


def innermost_optimizer(optimizer: keras.optimizers.Optimizer):
    """The optimizer that owns the learning rate (unwraps ``LossScaleOptimizer``)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


class LearningRateControl:
    """Reads and multiplies the learning rate in effect, whatever its kind.

    Created by :func:`attach`; see the module docstring for the mechanism.
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer):
        self.optimizer = optimizer
        self.inner = innermost_optimizer(optimizer)
        self.scale = None
        self.wrapped = False
        rate = learning_rate_object(self.inner)
        if isinstance(rate, keras.Variable):
            self.variable = rate
            return
        self.variable = None
        if isinstance(rate, ScaledLearningRate) and isinstance(
            rate.scale, keras.Variable
        ):
            if any(v is rate.scale for v in self.inner.variables):
                self.scale = rate.scale
                return
            initial = float(ops.convert_to_numpy(rate.scale.value))
            rate = rate.schedule
        elif isinstance(rate, ScaledLearningRate):
            initial = float(rate.scale)
            rate = rate.schedule
        else:
            initial = 1.0
        index = len(self.inner.variables)
        self.scale = add_scale_variable(self.inner, initial)
        self.inner.learning_rate = ScaledLearningRate(rate, self.scale, index)
        self.wrapped = True

    def key(self) -> tuple[int, float]:
        """What identifies the rate in effect: the rate object and its value.

        The value is the learning-rate variable's (float rate) or the scale's
        (schedule); it changes only when someone assigns it.
        """
        holder = self.variable if self.variable is not None else self.scale
        value = float(ops.convert_to_numpy(holder.value))
        return id(learning_rate_object(self.inner)), value

    @property
    def value(self) -> float:
        """The learning rate of the next step (a schedule is read at ``iterations``)."""
        rate = self.inner.learning_rate  # the variable itself for a float rate
        return float(ops.convert_to_numpy(getattr(rate, "value", rate)))

    @property
    def scale_value(self) -> float:
        """The factor applied to the schedule (1.0 for a float learning rate)."""
        if self.scale is None:
            return 1.0
        return float(ops.convert_to_numpy(self.scale.value))

    def multiply(
        self, factor: float, min_lr: float = 0.0, max_lr: float = float("inf")
    ) -> tuple[float, float]:
        """Multiply the rate in effect by ``factor``, clipped to ``[min_lr, max_lr]``.

        For a schedule the scale is multiplied, so the schedule's later outputs
        are scaled by the same amount. Returns ``(old, new)`` rates.
        """
        old = self.value
        new = float(np.clip(old * factor, min_lr, max_lr))
        if self.variable is not None:
            self.variable.assign(new)
        elif old > 0.0:
            self.scale.assign(self.scale_value * new / old)
        return old, self.value


def attach(model: keras.Model) -> LearningRateControl:
    """Make ``model.optimizer``'s learning rate controllable without retracing.

    Builds the optimizer first when the model is built (so that the scale
    variable is created after the slots, the same order every run), wraps a
    schedule (inside the model's ``tf.distribute`` strategy scope, if any),
    and asks ``fit`` for a fresh (untraced) train function when the
    optimizer's variables changed.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(
            "The model has no optimizer; compile it before training with a "
            "learning-rate callback."
        )
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if not optimizer.built and model.built:
            optimizer.build(model.trainable_variables)
        control = LearningRateControl(optimizer)
    if control.wrapped:
        rebuild_train_function(model)
    return control


class _Box:
    """Holds the state without Keras's attribute tracking wrapping it."""

    def __init__(self, values: dict[str, Any]):
        self.values = values


class _CallbackState(keras.layers.Layer):
    """A callback's state, saved and loaded with the model's weights.

    ``values`` maps names to floats or ints; ``arrays`` is a list of numpy
    arrays (best weights, or the state a rejected step returns to). Attached
    to the optimizer, it is written by ``model.save_weights`` and read back by
    ``model.load_weights``.
    """

    def __init__(self, values: dict[str, Any], **kwargs):
        super().__init__(**kwargs)
        self._box = _Box(dict(values))
        self._arrays = _Box({"list": []})

    @property
    def values(self) -> dict[str, Any]:
        return self._box.values

    @property
    def arrays(self) -> list[np.ndarray]:
        return self._arrays.values["list"]

    @arrays.setter
    def arrays(self, arrays: list[np.ndarray]) -> None:
        self._arrays.values["list"] = [np.array(a, copy=True) for a in arrays]

    def share(self, arrays: list[np.ndarray]) -> None:
        """Keep ``arrays`` themselves (host copies the caller does not change)."""
        self._arrays.values["list"] = list(arrays)

    def save_own_variables(self, store) -> None:
        for key, value in self.values.items():
            store[f"value_{key}"] = np.asarray(value, dtype="float64")
        store["num_arrays"] = np.asarray(len(self.arrays))
        for i, array in enumerate(self.arrays):
            store[f"array_{i}"] = array

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if not keys:
            return
        for key in self.values:
            name = f"value_{key}"
            if name in keys:
                value = float(np.asarray(store[name]))
                self.values[key] = (
                    int(value) if isinstance(self.values[key], int) else value
                )
        count = int(np.asarray(store["num_arrays"]))
        self.arrays = [np.asarray(store[f"array_{i}"]) for i in range(count)]


def attach_state(model: keras.Model, state: _CallbackState) -> None:
    """Attach ``state`` to ``model.optimizer`` so that it is saved with it."""
    setattr(model.optimizer, f"_keras_adaptive_{state.name}", state)


#: State every policy keeps to resume in any callback order (see
#: :class:`LearningRatePolicy`).
_JOURNAL = {
    "started": -1,  # epoch (of its fit) last begun
    "handled": -1,  # epoch last decided (or found without the monitor)
    # Flags written by different hooks (the batch hook may run in Keras's
    # callback thread while validation runs), so never one shared word.
    "trained": 0,  # the epoch reached its last batch
    "has_train": 0,  # journal_train holds this epoch's training value
    "has_val": 0,  # journal_val holds this epoch's validation value
    "journal_train": math.nan,
    "journal_val": math.nan,
}
_FLAGS = ("trained", "has_train", "has_val")


def _package_optimizer_name(optimizer: keras.optimizers.Optimizer) -> str:
    import keras_adaptive.optimizers as ours

    name = type(optimizer).__name__
    if isinstance(getattr(ours, name, None), type):
        return f"keras_adaptive.optimizers.{name}"
    return "one of keras_adaptive.optimizers"


class LearningRatePolicy(keras.callbacks.Callback):
    """The mechanics shared by the learning-rate policies.

    **Where the state lives.** A policy's decisions are made on the host from
    Python floats (best value, counters, the reference loss) and may keep host
    copies of weights; that state is a :class:`_CallbackState` attached to the
    optimizer, so ``save_weights`` (and ``BackupAndRestore``) store it with
    the weights and the optimizer's variables at the same moment. It is
    deliberately *not* made of optimizer variables, as optax keeps its plateau
    counters: extra optimizer variables change the optimizer's variable count,
    and Keras skips loading *every* variable of an optimizer whose count
    differs from the saved one, so a model saved with a policy could then not
    be reloaded into a plain model, whatever its learning rate (the one
    variable a policy must add, the scale of a schedule, is re-created on
    loading by this package's optimizers). Host state also costs no device
    round trip per decision.

    **Resuming in any callback order.** ``BackupAndRestore`` saves in its
    ``on_epoch_end``; a policy listed after it decides later in the same
    hook, after the backup. So the input of each decision is recorded in the
    state (the *journal*) as soon as it is known, before any ``on_epoch_end``:
    a training value at the epoch's last batch (``on_train_batch_end`` with
    ``batch + 1 == params["steps"]``), a validation value in the
    ``on_test_end`` of ``fit``'s validation pass. The decision itself is still
    made in ``on_epoch_end`` (after validation, so the logs and the weights
    evaluated are those of every other Keras callback); a backup taken between
    the two holds the journal, and the resumed run replays the decision in
    its first ``on_epoch_begin``, after ``BackupAndRestore`` has restored the
    weights. When the value cannot be journaled (the epoch's length is
    unknown, or the value is put into the epoch logs by another callback) the
    decision is made from the epoch logs, and a resumed run that finds it
    missing raises an error asking for the policy to be listed before
    ``BackupAndRestore``.

    **One policy per learning rate.** Two policies in one ``fit`` on one
    optimizer raise ``ValueError`` in ``on_train_begin``; a rate changed by
    anyone else (``ReduceLROnPlateau``, ``LearningRateScheduler``, a user)
    during ``fit`` raises ``RuntimeError`` at the next epoch boundary.

    **Writing a policy.** A subclass passes its initial state (a dict of
    Python numbers, saved with the weights) and a name to ``__init__``, sets
    ``monitor`` (a log name such as ``"loss"`` or ``"val_loss"``) and writes
    ``decide(epoch, monitor, value)``, reading and writing ``self.state`` and
    changing the rate with ``multiply_learning_rate``. The base writes
    ``logs["learning_rate"]`` after each epoch, replays a decision a backup
    missed, and refuses a second controller of the rate. (`BoldDriver`, which
    also decides within epochs, overrides the epoch hooks themselves.)

    Args:
        values: the policy's initial state: names to ints or floats.
        name: the name under which the state is saved with the optimizer.

    References:
        G. E. Hinton, "Neural Networks for Machine Learning", lecture 6 (turn
        the learning rate down when the error stops falling).

    Example:
        A third policy in a few lines: halve the rate whenever the loss rose.

        >>> import math
        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive.callbacks import LearningRatePolicy
        >>> class HalveWhenWorse(LearningRatePolicy):
        ...     def __init__(self, monitor="loss"):
        ...         super().__init__({"previous": math.nan}, name="halve_when_worse")
        ...         self.monitor = monitor
        ...
        ...     def decide(self, epoch, monitor, value):
        ...         if value > self.state["previous"]:
        ...             self.multiply_learning_rate(0.5)
        ...         self.state["previous"] = value
        >>> layer = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
        >>> model = keras.Sequential([keras.Input((1,)), layer])
        >>> model.compile(optimizer=keras.optimizers.SGD(1.5), loss="mse")
        >>> x = np.ones((8, 1), "float32")  # loss (w - 2)^2, one step an epoch
        >>> history = model.fit(x, 2 * x, epochs=4, verbose=0,
        ...                     callbacks=[HalveWhenWorse()])
        >>> history.history["loss"]  # w = 0, 6, -6, 6: too large a rate
        [4.0, 16.0, 64.0, 16.0]
        >>> history.history["learning_rate"]  # the rate each epoch trained with
        [1.5, 1.5, 0.75, 0.375]
    """

    #: The journal is written from the batch hook only; the decision and every
    #: variable access happen in the epoch hooks (after Keras's flush).
    async_safe = True

    #: The log entry the decisions read (``"val_..."`` for a validation value).
    monitor: str | None = "loss"

    def __init__(self, values: dict[str, Any], name: str):
        super().__init__()
        self._control: LearningRateControl | None = None
        self._state = _CallbackState({**_JOURNAL, **values}, name=name)
        self._fitting = False
        self._first_epoch = False
        self._expected: tuple[int, float] | None = None
        self._epoch = 0
        self._missing_warned = False

    # -- Subclass interface -------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        """The policy's state, saved with the weights (``BackupAndRestore``)."""
        return self._state.values

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step."""
        return self._control.value

    def multiply_learning_rate(
        self, factor: float, min_lr: float = 0.0, max_lr: float = math.inf
    ) -> tuple[float, float]:
        """Multiplies the rate in effect by ``factor``, clipped to
        ``[min_lr, max_lr]`` (a schedule's later outputs too); returns the
        old and the new rate."""
        return self._control.multiply(factor, min_lr, max_lr)

    def decide(self, epoch: int, monitor: str, value: float) -> None:
        """The policy's decision after epoch ``epoch`` (0-based) on ``value``,
        the epoch's value of ``monitor``."""
        raise NotImplementedError

    def monitor_name(self, logs: dict[str, Any] | None) -> str | None:
        """The log entry the next decision reads (``None``: not known yet)."""
        return self.monitor

    def _journal_names(self) -> tuple[str | None, str | None]:
        """(training-log name, validation-log name) the next decision reads."""
        monitor = self.monitor_name(None)
        if monitor is None:
            return None, None
        if monitor.startswith("val_"):
            return None, monitor.removeprefix("val_")
        return monitor, None

    def _replay(self, epoch: int) -> bool:
        """Make epoch ``epoch``'s decision from the journal; ``False`` if it cannot."""
        monitor = self.monitor_name(None)
        current = None if monitor is None else self.journaled(monitor)
        if current is None:
            # Nothing to decide when the epoch ran no validation; otherwise
            # the value was not journaled and the decision is lost.
            return monitor is not None and (
                monitor.startswith("val_") and self.validation_skipped()
            )
        self.decide(epoch, monitor, current)
        return True

    def _on_journal(self) -> None:
        """Called after a value is journaled (keep what a replay needs)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._begin_epoch(epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            logs = {}
        self._check_rate(f"during epoch {epoch + 1}")
        logs["learning_rate"] = self.learning_rate
        monitor = self.monitor_name(logs)
        current = None if monitor is None else self.journaled(monitor)
        if current is None and monitor in logs:
            current = float(logs[monitor])
        if current is not None:
            self.decide(epoch, monitor, current)
        elif not self._missing_warned:
            self._missing_warned = True
            warnings.warn(
                f"{type(self).__name__}: `{monitor or 'val_loss'}` is not in "
                f"the logs (available: {', '.join(sorted(logs))}); epochs "
                "without it are not counted.",
                stacklevel=2,
            )
        self._end_epoch(epoch)

    # -- Keras hooks --------------------------------------------------------

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if getattr(model, "optimizer", None) is None:
            return
        self._control = attach(model)
        attach_state(model, self._state)
        self._warn_if_not_reloadable()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        inner = self._control.inner
        claim = getattr(inner, "_keras_adaptive_rate_policy", None)
        other = claim() if claim is not None else None
        same_fit = self.params is not None and other is not None
        if same_fit and other is not self and other.params is self.params:
            raise ValueError(
                f"{type(other).__name__} and {type(self).__name__} both control "
                f"the learning rate of optimizer '{inner.name}' in this fit, and "
                "their decisions would compound; use one learning-rate policy "
                "per optimizer."
            )
        inner._keras_adaptive_rate_policy = weakref.ref(self)
        self._fitting = True
        self._first_epoch = True
        self._expected = None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._fitting = False

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        name = self._journal_names()[1]
        if self._fitting and logs and name is not None and name in logs:
            self._journal("val", logs[name])

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if self._is_last_batch(batch):
            self._state.values["trained"] = 1
            name = self._journal_names()[0]
            if logs and name is not None and name in logs:
                self._journal("train", logs[name])

    # -- Helpers ------------------------------------------------------------

    def _is_last_batch(self, batch: int) -> bool:
        steps = (self.params or {}).get("steps")
        return steps is not None and batch + 1 == steps

    def _journal(self, kind: str, value: Any) -> None:
        values = self._state.values
        values[f"journal_{kind}"] = float(value)
        values[f"has_{kind}"] = 1
        self._on_journal()

    def journaled(self, monitor: str) -> float | None:
        """The value of ``monitor`` journaled this epoch, or ``None``."""
        values = self._state.values
        kind = "val" if monitor.startswith("val_") else "train"
        if not values[f"has_{kind}"]:
            return None
        return values[f"journal_{kind}"]

    def validation_skipped(self) -> bool:
        """The epoch trained to its end and ran no validation (so far)."""
        values = self._state.values
        return bool(values["trained"]) and not values["has_val"]

    def _begin_epoch(self, epoch: int) -> None:
        """Replay a decision a backup missed; check the rate; start the journal."""
        values = self._state.values
        self._epoch = epoch
        if self._first_epoch:
            self._first_epoch = False
            started, handled = values["started"], values["handled"]
            if handled < started < epoch:
                if not (any(values[f] for f in _FLAGS) and self._replay(started)):
                    raise RuntimeError(
                        f"{type(self).__name__}: training resumes at epoch "
                        f"{epoch + 1}, but the saved state holds no decision "
                        f"for epoch {started + 1}: it was saved (by "
                        "keras.callbacks.BackupAndRestore) before this policy "
                        "decided, and the value it monitors could not be "
                        "recorded earlier (the epoch's length is unknown, or "
                        "the value is added to the epoch logs by a callback). "
                        "List the policy before BackupAndRestore in `callbacks`."
                    )
                values["handled"] = started
        self._check_rate(f"before epoch {epoch + 1}")
        values["started"] = epoch
        for flag in _FLAGS:
            values[flag] = 0
        values["journal_train"] = values["journal_val"] = math.nan

    def _end_epoch(self, epoch: int) -> None:
        """Mark epoch ``epoch`` decided and remember the rate it left."""
        values = self._state.values
        values["handled"] = epoch
        for flag in _FLAGS:
            values[flag] = 0
        self._expected = self._control.key()

    def _check_rate(self, where: str) -> None:
        key = self._control.key()
        if self._expected is not None and key != self._expected:
            inner = self._control.inner
            if key[0] != self._expected[0]:
                change = "was replaced"
            else:
                change = f"changed from {self._expected[1]:.6g} to {key[1]:.6g}"
            raise RuntimeError(
                f"{type(self).__name__}: the learning rate of optimizer "
                f"'{inner.name}' {change} {where}, and not by this policy. "
                "Another callback controls it too, most likely "
                "keras.callbacks.ReduceLROnPlateau or "
                "keras.callbacks.LearningRateScheduler; their changes and this "
                "policy's would compound and would not be resumed exactly. Use "
                "one learning-rate policy per optimizer."
            )
        self._expected = key

    def _rate_changed_by_us(self) -> None:
        self._expected = self._control.key()

    def _warn_if_not_reloadable(self) -> None:
        from keras_adaptive.optimizers.base import Optimizer

        optimizer = self.model.optimizer
        if self._control.scale is None or isinstance(optimizer, Optimizer):
            return
        if getattr(optimizer, "_keras_adaptive_reload_warned", False):
            return
        optimizer._keras_adaptive_reload_warned = True
        inner = self._control.inner
        if isinstance(inner, Optimizer) or inner is not optimizer:
            advice = "a float learning rate"
        else:
            advice = (
                f"{_package_optimizer_name(inner)} (whose variables reload with "
                "the scale) or a float learning rate"
            )
        warnings.warn(
            f"{type(self).__name__} scales the learning-rate schedule of "
            f"{type(optimizer).__name__} '{optimizer.name}' by a variable it "
            "adds to the optimizer. keras.models.load_model (and load_weights "
            "into a model whose optimizer has no such variable) cannot restore "
            "this optimizer: Keras skips loading all of its variables "
            "(iterations, moments, the scale) because their number differs "
            "from the saved one. BackupAndRestore and load_weights into this "
            f"model are not affected. To reload with load_model, use {advice}.",
            stacklevel=3,
        )
