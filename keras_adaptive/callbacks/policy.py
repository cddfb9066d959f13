"""The base of the learning-rate policies: :class:`LearningRatePolicy`.

A policy is a Keras callback that decides, from a monitored value, to
multiply the optimizer's learning rate (and perhaps to stop training or to
set weights). The base owns everything that is not the decision: the rate
of any kind (``keras_adaptive.callbacks._rate_control``), the state saved
with the weights (``keras_adaptive.callbacks._saved_state``), the epoch
bookkeeping of each ``fit``, the ``learning_rate`` log entry, exact
resumption with ``BackupAndRestore`` in either callback order, and the rule
of one policy per learning rate.
"""

from __future__ import annotations

import math
import warnings
import weakref
from typing import Any

import keras
import numpy as np

from keras_adaptive._keras_api import sync_trainer_state
from keras_adaptive.callbacks._rate_control import LearningRateControl
from keras_adaptive.callbacks._saved_state import PolicyState

#: State the base keeps for every policy, reset at each `fit` (see
#: :class:`LearningRatePolicy`, "Resuming in any callback order").
_BASE_STATE = {
    "started": -1,  # epoch last begun
    "handled": -1,  # epoch last decided (or found with nothing to decide)
    "fit_epochs": 0,  # epochs begun in this fit
    "fit_decided": 0,  # epochs of this fit whose monitored value was found
    # Flags written by different hooks (the batch hook may run in Keras's
    # callback thread while validation runs), so never one shared word.
    "trained": 0,  # the epoch reached its last batch
    "validated": 0,  # the epoch ran its validation pass
    "has_train": 0,  # journal_train holds this epoch's training value
    "has_val": 0,  # journal_val holds this epoch's validation value
    "journal_train": math.nan,
    "journal_val": math.nan,
    "lr_scale": 1.0,  # the schedule's scale (1.0 for a float rate)
}
_FLAGS = ("trained", "validated", "has_train", "has_val")
#: Epochs of a fit without validation after which a `val_` monitor warns.
EPOCHS_BEFORE_VALIDATION_WARNING = 2


class LearningRatePolicy(keras.callbacks.Callback):
    """The mechanics shared by the learning-rate policies.

    **Writing a policy.** A subclass passes its initial state (a dict of
    Python numbers) and a name to ``__init__``, sets ``monitor`` (a log name
    such as ``"loss"`` or ``"val_loss"``) and writes
    ``decide(epoch, monitor, value)``: it reads and writes ``self.state``,
    changes the rate with ``multiply_learning_rate`` and may stop training
    (``self.model.stop_training``). Optional hooks:

    * ``update_freq``: ``"epoch"`` (default) or a number of batches ``n``;
      with ``n`` the base calls ``decide_within_epoch(epoch, batches)``
      instead of ``decide``, every ``n`` batches and at the epoch's end, with
      the trainer's state synced so that weights can be read and assigned;
    * ``begin_fit()``: at the start of each ``fit``, after the state was
      reset (or loaded by ``BackupAndRestore`` listed before the policy);
    * ``begin_epoch(epoch)``: after the base's checks at each epoch's start;
    * ``end_fit(epoch)``: in ``on_train_end``, when the fit's last epoch was
      ``epoch``;
    * ``monitor_name(logs)``: the monitored name, when it is chosen at run
      time (``None``: nothing to decide this epoch);
    * ``saved_arrays``: NumPy arrays saved with the state (weights to return
      to).

    **The monitored value.** A training value (``loss``, a training metric)
    must be in each epoch's logs; a validation value (``val_...``) in those
    of each epoch that ran validation. A missing value raises
    ``ValueError`` naming what the logs hold. An epoch without validation
    (``validation_freq`` > 1) is not decided on a ``val_`` monitor; when the
    first two epochs of a ``fit`` run no validation (no validation data), a
    warning says that only validated epochs count.

    **Each fit is a run.** The state (with its epoch numbers, which Keras
    counts from ``initial_epoch`` in every ``fit``) starts afresh at each
    ``fit``, as Keras's ``EarlyStopping`` and ``ReduceLROnPlateau`` do;
    the learning rate is the optimizer's and carries over. The state loaded
    by ``BackupAndRestore`` replaces the fresh one: a resumed run continues.

    **Where the state lives.** ``self.state`` and ``saved_arrays`` are saved
    with the optimizer's variables, at the same moment, by ``save_weights``
    (and so by ``BackupAndRestore``); see
    ``keras_adaptive.callbacks._saved_state``. The decisions are host
    computations on Python floats, with no device round trip.

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

    #: The log entry the decisions read (``"val_..."`` for a validation value).
    monitor: str | None = "loss"
    #: ``"epoch"``: `decide` after each epoch; an int n: `decide_within_epoch`
    #: every n batches.
    update_freq: str | int = "epoch"

    def __init__(self, values: dict[str, Any], name: str):
        super().__init__()
        self._control: LearningRateControl | None = None
        self._state = PolicyState({**_BASE_STATE, **values}, name=name)
        self._fitting = False
        self._first_epoch = False
        self._expected: tuple[int, float] | None = None
        self._epoch = 0
        self._window_start = 0
        self._seen = 0
        self._trained_rate = math.nan
        self._last_epoch: int | None = None

    # -- Subclass interface -------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        """The policy's state, saved with the weights (``BackupAndRestore``)."""
        return self._state.values

    @property
    def saved_arrays(self) -> list[np.ndarray]:
        """NumPy arrays saved with the state (empty at the start of a fit)."""
        return self._state.arrays

    @saved_arrays.setter
    def saved_arrays(self, arrays: list[np.ndarray]) -> None:
        self._state.arrays = arrays

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
        rates = self._control.multiply(factor, min_lr, max_lr)
        self.state["lr_scale"] = self._control.scale
        self._expected = self._control.key()
        return rates

    def decide(self, epoch: int, monitor: str, value: float) -> None:
        """The decision after epoch ``epoch`` (0-based) on ``value``, the
        epoch's value of ``monitor`` (``update_freq="epoch"``)."""
        raise NotImplementedError

    def decide_within_epoch(self, epoch: int, batches: int) -> None:
        """The decision after ``batches`` batches of epoch ``epoch`` (an
        integer ``update_freq``)."""
        raise NotImplementedError

    def begin_fit(self) -> None:
        """Called at the start of each fit, once the state is in place."""

    def begin_epoch(self, epoch: int) -> None:
        """Called at the start of each epoch, after the base's checks."""

    def end_fit(self, epoch: int) -> None:
        """Called at the end of a fit whose last epoch was ``epoch``."""

    def monitor_name(self, logs: dict[str, Any] | None) -> str | None:
        """The log entry the decision reads: ``logs`` are the epoch's logs at
        a decision (``{}`` when replayed), ``None`` while the epoch runs
        (``None`` returned at a decision: nothing to decide)."""
        return self.monitor

    def journaled(self, monitor: str) -> float | None:
        """The value of ``monitor`` recorded this epoch, or ``None``."""
        values = self.state
        kind = "val" if monitor.startswith("val_") else "train"
        if not values[f"has_{kind}"]:
            return None
        return values[f"journal_{kind}"]

    def validated(self) -> bool:
        """Whether the current epoch ran its validation pass (so far)."""
        return bool(self.state["validated"])

    def training_state_variables(self) -> list[keras.Variable]:
        """The model's weights and the optimizer's slots: what a step changes,
        without the step counters, the gradients accumulated towards the next
        update (``gradient_accumulation_steps``) and the learning rate."""
        return list(self.model.weights) + self._control.slot_variables()

    def is_last_epoch(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` is the last of this fit's ``epochs``."""
        epochs = (self.params or {}).get("epochs")
        return epochs is not None and epoch + 1 >= epochs

    @property
    def async_safe(self) -> bool:
        """Per-epoch decisions only record values in the batch hook; every
        variable access happens in the epoch hooks (after Keras's flush)."""
        return self.update_freq == "epoch"

    # -- Keras hooks --------------------------------------------------------

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if getattr(model, "optimizer", None) is None:
            return
        self._control = LearningRateControl(model)
        self._state.attach(model.optimizer, self._apply_loaded_state)
        self._state.loaded = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._claim_rate()
        if not self._state.loaded:  # BackupAndRestore listed before loads first
            self._state.reset(lr_scale=self._control.scale)
        self._fitting = True
        self._first_epoch = True
        self._last_epoch = None
        self._expected = None
        self.begin_fit()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = self.state
        self._epoch = epoch
        self._window_start = self._seen = 0
        self._trained_rate = math.nan
        if self._first_epoch:
            self._first_epoch = False
            self._replay_missed_decision(epoch)
        self._check_rate(f"before epoch {epoch + 1}")
        values["started"] = epoch
        values["fit_epochs"] += 1
        self._clear_journal()
        self.begin_epoch(epoch)

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        last = self._is_last_batch(batch)
        if self.update_freq == "epoch":
            if last:
                self.state["trained"] = 1
                name = self._journal_name()
                if logs and name is not None and name in logs:
                    self._journal("train", logs[name])
            return
        seen = self._seen = batch + 1
        if last or seen - self._window_start >= self.update_freq:
            self._decide_window(seen)
            if last:
                self.state["trained"] = 1
                self.state["handled"] = self._epoch

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._fitting:
            return
        self.state["validated"] = 1
        name = self._journal_name()
        if logs and name is not None and name in logs:
            self._journal("val", logs[name])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            logs = {}
        values = self.state
        self._check_rate(f"during epoch {epoch + 1}")
        if self.update_freq == "epoch":
            self._trained_rate = self.learning_rate
            monitor = self.monitor_name(logs)
            self._decide_epoch(epoch, monitor, logs)
            self._warn_without_validation(monitor)
        elif self._seen > self._window_start:  # the epoch's length is unknown
            self._decide_window(None)
        logs["learning_rate"] = self._trained_rate
        values["handled"] = epoch
        self._clear_journal()
        self._expected = self._control.key()
        self._last_epoch = epoch

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._fitting = False
        if self._last_epoch is not None:
            self.end_fit(self._last_epoch)

    # -- Mechanics ----------------------------------------------------------

    def _claim_rate(self) -> None:
        """Refuses a second policy on the same rate in one fit."""
        inner = self._control.inner
        claim = getattr(inner, "_keras_adaptive_rate_policy", None)
        other = claim() if claim is not None else None
        if other is not None and other is not self and other.params is self.params:
            raise ValueError(
                f"{type(other).__name__} and {type(self).__name__} both control "
                f"the learning rate of optimizer '{inner.name}' in this fit, and "
                "their decisions would compound; use one learning-rate policy "
                "per optimizer."
            )
        inner._keras_adaptive_rate_policy = weakref.ref(self)

    def _apply_loaded_state(self) -> None:
        """After a load: the schedule's scale is the one saved."""
        self._control.set_scale(self.state["lr_scale"])

    def _journal_name(self) -> str | None:
        """The name, without ``val_``, of the value recorded in the training
        and validation logs of each epoch (whichever the decision reads)."""
        monitor = self.monitor_name(None)
        return None if monitor is None else monitor.removeprefix("val_")

    def _journal(self, kind: str, value: Any) -> None:
        values = self.state
        values[f"journal_{kind}"] = float(value)
        values[f"has_{kind}"] = 1

    def _clear_journal(self) -> None:
        values = self.state
        for flag in _FLAGS:
            values[flag] = 0
        values["journal_train"] = values["journal_val"] = math.nan

    def _is_last_batch(self, batch: int) -> bool:
        steps = (self.params or {}).get("steps")
        return steps is not None and batch + 1 == steps

    def _decide_epoch(
        self, epoch: int, monitor: str | None, logs: dict[str, Any]
    ) -> None:
        if monitor is None:
            return
        value = self.journaled(monitor)
        if value is None and monitor in logs:
            value = float(logs[monitor])
        if value is not None:
            self.state["fit_decided"] += 1
            self.decide(epoch, monitor, value)
        elif not monitor.startswith("val_") or self.validated():
            where = "validation" if monitor.startswith("val_") else "epoch"
            raise ValueError(
                f"{type(self).__name__}: `monitor={monitor!r}` is not in the "
                f"{where} logs of epoch {epoch + 1} (available: "
                f"{', '.join(sorted(logs)) or 'none'}). Pass the name of a "
                "logged value; a value that another callback adds to the logs "
                "must come from a callback listed before this one."
            )

    def _decide_window(self, seen: int | None) -> None:
        """A within-epoch decision after `seen` batches (None: the epoch's end)."""
        if seen is not None:
            self._window_start = seen
        sync_trainer_state(self.model)
        self._trained_rate = self.learning_rate
        self.decide_within_epoch(self._epoch, seen)

    def _warn_without_validation(self, monitor: str | None) -> None:
        values = self.state
        if (
            monitor is not None
            and monitor.startswith("val_")
            and values["fit_decided"] == 0
            and values["fit_epochs"] == EPOCHS_BEFORE_VALIDATION_WARNING
        ):
            warnings.warn(
                f"{type(self).__name__}: `{monitor}` is monitored, but the "
                f"first {EPOCHS_BEFORE_VALIDATION_WARNING} epochs of this fit "
                f"had no `{monitor}` (no validation data, or validation_freq > "
                f"{EPOCHS_BEFORE_VALIDATION_WARNING}); only epochs that have "
                "it are decided on.",
                stacklevel=3,
            )

    def _replay_missed_decision(self, epoch: int) -> None:
        """Makes the decision a backup taken before it missed (resumed runs)."""
        values = self.state
        started, handled = values["started"], values["handled"]
        if not handled < started < epoch:
            return
        if not (values["trained"] and self._replay(started)):
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

    def _replay(self, epoch: int) -> bool:
        """Makes epoch ``epoch``'s decision from the journal; ``False`` if it
        cannot."""
        if self.update_freq != "epoch":
            return False
        monitor = self.monitor_name({})
        if monitor is None:
            return True
        value = self.journaled(monitor)
        if value is not None:
            self.state["fit_decided"] += 1
            self.decide(epoch, monitor, value)
            return True
        return monitor.startswith("val_") and not self.validated()

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
