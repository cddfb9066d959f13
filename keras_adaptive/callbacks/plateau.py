"""Cool down on plateau: cut the learning rate by 10 a few times, then stop."""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras

from keras_adaptive._keras_api import fit_callbacks, metric_direction
from keras_adaptive._numpy import to_numpy
from keras_adaptive._validation import (
    check_bool,
    check_choice,
    check_integer,
    check_range,
    refuse,
)
from keras_adaptive.callbacks.policy import (
    EPOCHS_BEFORE_VALIDATION_WARNING,
    LearningRatePolicy,
)

_DEFAULT_MONITORS = ("val_loss", "loss")
_RATE_TOLERANCE = 1e-5


class CoolDownOnPlateau(LearningRatePolicy):
    """Reduce the learning rate by 10 when training has converged, 1-3 times, then stop.

    The policy of the lecture "Reducing the Learning Rate": once training has
    converged, reduce the learning rate by a factor of 10 and continue for a
    few epochs; do this 1-3 times, then stop training. Reducing the rate damps
    the fluctuations of the error caused by the different gradients of
    different mini-batches, but do not turn it down too soon: progress is much
    slower afterwards (hence ``start_from_epoch``). It is also the "cooling"
    strategy of the optimization lecture: start with a large step and cool it
    down as training goes on.

    Every epoch from ``start_from_epoch`` on, the monitored value is compared
    with the best seen so far. An epoch *improves* when it beats the best by
    more than ``max(min_delta, min_rel_delta * |best|)``. After ``patience``
    consecutive epochs without improvement (``patience=0`` acts like 1) the
    monitored value has *plateaued*:

    * if fewer than ``max_reductions`` reductions were made, the rate is
      above ``min_lr`` and (with ``stop_on_futile_reduction``) the last
      reduction was followed by an improvement, the learning rate is
      multiplied by ``factor`` (never going below ``min_lr``); for
      ``cooldown`` epochs afterwards, epochs without improvement are not
      counted;
    * otherwise training stops (``model.stop_training``) and, with
      ``restore_best_weights``, the weights of the best epoch are restored.

    With ``restore_best_weights`` the best epoch's weights are also restored
    when ``fit`` ends its epoch budget without a stop (in ``on_train_end``),
    as Keras's ``EarlyStopping(restore_best_weights=True)`` does. A restore at
    the end of training is always said in one line, whatever ``verbose``, so
    that weights saved at the last epoch (``ModelCheckpoint``) are not taken
    for the model's. With ``EarlyStopping(restore_best_weights=True)`` in the
    same ``fit``, in either order, ``EarlyStopping`` has the last word: this
    callback does not restore in that ``fit`` and warns once when it starts.

    Every epoch, ``logs["learning_rate"]`` receives the learning rate in effect
    at the end of the epoch, before any reduction (so ``History``,
    ``CSVLogger`` and ``TensorBoard`` record the rate the epoch was trained
    with).

    The learning rate may be a float, a ``LearningRateSchedule`` or a callable,
    with Keras's optimizers, this package's and ``LossScaleOptimizer``. No
    variable is added to the optimizer: a float rate is assigned; a
    schedule's output is multiplied by the float scale of a
    :class:`~keras_adaptive.schedules.ScaledLearningRate` (the effective rate
    is ``schedule(step) * scale``), and each reduction of it retraces the
    compiled train function once (see "How a policy changes the rate" in
    the policies documentation).

    The state (best value and weights, counters, the schedule's scale) is
    saved with the model's weights, so a run interrupted and resumed with
    ``keras.callbacks.BackupAndRestore``, listed before or after this
    callback, makes the same decisions as one never interrupted (the
    monitored value is recorded at the epoch's last batch, or at the end of
    its validation, before any backup; see
    :class:`~keras_adaptive.callbacks.LearningRatePolicy`). Each ``fit``
    starts the state afresh (its epochs are numbered by Keras from
    ``initial_epoch``), as Keras's ``EarlyStopping`` does; the rate carries
    over. One learning-rate policy per optimizer: a second one in the same
    ``fit``, or a Keras callback that changes the same rate, raises an error.

    Differences from other implementations:

    * Keras ``ReduceLROnPlateau`` raises ``TypeError`` for a schedule, never
      stops training, cannot restore the best weights, reduces without limit
      and resets its counters at each ``fit`` (losing them on resumption);
    * PyTorch ``ReduceLROnPlateau`` (``threshold_mode="rel"``) and optax
      ``contrib.reduce_on_plateau`` compare with ``best * (1 - rtol)``, which
      for a negative metric lies *above* the best, so a flat negative value
      always counts as an improvement and the rate is never reduced; here the
      relative threshold is ``min_rel_delta * |best|``. PyTorch's ``patience``
      counts the bad epochs tolerated (it acts at ``patience + 1``); here, as
      in Keras, the reduction happens at the ``patience``-th bad epoch.

    Args:
        monitor: the value to watch in the epoch logs. ``None`` (default)
            watches ``"val_loss"`` from the first epoch that validates, or
            ``"loss"``, with one warning, when neither of a fit's first two
            epochs validated. Epochs without validation
            (``fit(validation_freq=n)``) are not counted on a ``val_``
            monitor; a value missing from logs that should hold it raises
            ``ValueError``.
        mode: ``"min"``, ``"max"`` or ``"auto"``: as Keras's ``EarlyStopping``,
            a loss is minimised and any other value takes the direction of
            the compiled metric of that name; ``ValueError`` when Keras knows
            none.
        factor: multiplier of the learning rate at each reduction, in (0, 1).
        patience: epochs without improvement that make a plateau, >= 0.
        min_delta: absolute improvement required, >= 0.
        min_rel_delta: improvement required relative to ``|best|``, >= 0.
        cooldown: epochs after a reduction during which epochs without
            improvement are not counted, >= 0.
        min_lr: lower bound of the learning rate, >= 0. A plateau with the rate
            already at ``min_lr`` stops training.
        max_reductions: reductions before the final plateau stops training,
            >= 1.
        start_from_epoch: epochs of warm-up (0-based index of the first epoch
            monitored), >= 0.
        restore_best_weights: restore the best epoch's weights when stopping,
            and at the end of ``fit`` when the last epoch was not the best
            (left to ``EarlyStopping(restore_best_weights=True)`` when it is
            in the same ``fit``).
        restore_best_on_reduce: also go back to the best epoch's weights (not
            the optimizer's slots) at each reduction.
        stop_on_futile_reduction: stop at a plateau that follows a reduction
            without any improvement since: cooling further is not helping.
            The lecture's "1-3 times" is then decided by the data, up to
            ``max_reductions``, and training ends ``2 * patience`` epochs
            after the best epoch, as with Keras's ``ReduceLROnPlateau`` and
            ``EarlyStopping(patience=2 * patience)``.
        verbose: 0 only the line of a restore at the end of training, 1 one
            line per reduction and per stop.

    References:
        * G. E. Hinton, "Neural Networks for Machine Learning", lecture 6b
          ("Reducing the learning rate": turn it down by 10 once training has
          converged, a few times, then stop).
        * Y. LeCun, L. Bottou, G. Orr and K.-R. Mueller (1998), "Efficient
          BackProp", in Neural Networks: Tricks of the Trade, Springer.

    Example:
        A loss that cannot improve (it is 0 from the start): every epoch after
        the first is a plateau. The rate is cut once; the cut brings no
        improvement, so training stops (with ``stop_on_futile_reduction=False``
        it would be cut ``max_reductions`` times first). The restore of the
        best weights is said even at ``verbose=0``.

        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive.callbacks import CoolDownOnPlateau
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        >>> model.set_weights([np.zeros((1, 1)), np.zeros(1)])
        >>> zeros = np.zeros((4, 1), "float32")
        >>> policy = CoolDownOnPlateau(monitor="loss", patience=1, max_reductions=2)
        >>> history = model.fit(zeros, zeros, epochs=10, verbose=0, callbacks=[policy])
        <BLANKLINE>
        Epoch 3: CoolDownOnPlateau: loss has not improved on 0 (epoch 1) for 1
        epochs after 1 of 2 reductions and the last reduction brought no
        improvement; stopping training and restoring the weights of epoch 1.
        >>> policy.reductions, len(history.history["loss"])
        (1, 3)
        >>> [round(rate, 6) for rate in history.history["learning_rate"]]
        [0.1, 0.1, 0.01]
    """

    def __init__(
        self,
        monitor: str | None = None,
        mode: str = "auto",
        factor: float = 0.1,
        patience: int = 5,
        min_delta: float = 0.0,
        min_rel_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        max_reductions: int = 3,
        start_from_epoch: int = 0,
        restore_best_weights: bool = True,
        restore_best_on_reduce: bool = False,
        stop_on_futile_reduction: bool = True,
        verbose: int = 0,
    ):
        owner = type(self).__name__
        if monitor is not None and (not isinstance(monitor, str) or not monitor):
            refuse(owner, "monitor", monitor, "a non-empty string or None")
        check_choice(owner, "mode", mode, ("auto", "min", "max"))
        factor = check_range(owner, "factor", factor, 0.0, 1.0, low_closed=False)
        check_integer(owner, "patience", patience, 0)
        min_delta = check_range(owner, "min_delta", min_delta, 0.0)
        min_rel_delta = check_range(owner, "min_rel_delta", min_rel_delta, 0.0)
        check_integer(owner, "cooldown", cooldown, 0)
        min_lr = check_range(owner, "min_lr", min_lr, 0.0)
        check_integer(owner, "max_reductions", max_reductions, 1)
        check_integer(owner, "start_from_epoch", start_from_epoch, 0)
        check_bool(owner, "restore_best_weights", restore_best_weights)
        check_bool(owner, "restore_best_on_reduce", restore_best_on_reduce)
        check_bool(owner, "stop_on_futile_reduction", stop_on_futile_reduction)
        check_integer(owner, "verbose", verbose, 0, 2)
        self.monitor = monitor
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.min_delta = min_delta
        self.min_rel_delta = min_rel_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.max_reductions = max_reductions
        self.start_from_epoch = start_from_epoch
        self.restore_best_weights = restore_best_weights
        self.restore_best_on_reduce = restore_best_on_reduce
        self.stop_on_futile_reduction = stop_on_futile_reduction
        self.verbose = verbose
        self._early_stopping_restores = False
        super().__init__(
            {
                "best": math.nan,
                "best_epoch": -1,
                "wait": 0,
                "cooldown_counter": 0,
                "reductions": 0,
                "improved_since_reduction": 1,
                "stopped_epoch": -1,
                "monitor_choice": -1,
            },
            name="cool_down_on_plateau",
        )

    # Read-only views of the state.
    @property
    def best(self) -> float | None:
        """Best monitored value so far (``None`` before the first)."""
        best = self.state["best"]
        return None if math.isnan(best) else best

    @property
    def best_epoch(self) -> int | None:
        """0-based epoch of the best value."""
        epoch = self.state["best_epoch"]
        return None if epoch < 0 else epoch

    @property
    def wait(self) -> int:
        """Consecutive epochs without improvement counted so far."""
        return self.state["wait"]

    @property
    def reductions(self) -> int:
        """Reductions made so far."""
        return self.state["reductions"]

    @property
    def stopped_epoch(self) -> int | None:
        """0-based epoch at which this callback last stopped training."""
        epoch = self.state["stopped_epoch"]
        return None if epoch < 0 else epoch

    @property
    def best_weights(self) -> list | None:
        """Copy of the weights of the best epoch, when they are kept."""
        return list(self.saved_arrays) or None

    def get_config(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "min_rel_delta": self.min_rel_delta,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "max_reductions": self.max_reductions,
            "start_from_epoch": self.start_from_epoch,
            "restore_best_weights": self.restore_best_weights,
            "restore_best_on_reduce": self.restore_best_on_reduce,
            "stop_on_futile_reduction": self.stop_on_futile_reduction,
            "verbose": self.verbose,
        }

    @property
    def _keep_weights(self) -> bool:
        return self.restore_best_weights or self.restore_best_on_reduce

    def monitor_name(self, logs: dict[str, Any] | None) -> str | None:
        if self.monitor is not None:
            return self.monitor
        values = self.state
        if values["monitor_choice"] < 0 and logs is not None:
            if self.validated() or _DEFAULT_MONITORS[0] in logs:
                values["monitor_choice"] = 0
            elif values["fit_epochs"] >= EPOCHS_BEFORE_VALIDATION_WARNING:
                values["monitor_choice"] = 1
                warnings.warn(
                    f"CoolDownOnPlateau: the first "
                    f"{EPOCHS_BEFORE_VALIDATION_WARNING} epochs of this fit ran "
                    "no validation (no validation data, or validation_freq > "
                    f"{EPOCHS_BEFORE_VALIDATION_WARNING}), so `loss` is "
                    "monitored; pass `monitor=` to choose explicitly.",
                    stacklevel=4,
                )
        choice = values["monitor_choice"]
        if choice < 0:  # not known yet: record the validation loss meanwhile
            return None if logs is not None else _DEFAULT_MONITORS[0]
        return _DEFAULT_MONITORS[choice]

    def _mode(self, monitor: str) -> str:
        if self.mode != "auto":
            return self.mode
        direction = metric_direction(self.model, monitor)
        if direction is None:
            raise ValueError(
                f"CoolDownOnPlateau: `mode='auto'` cannot tell whether "
                f"`{monitor}` improves by falling or by rising: it is not a "
                "loss, and the model has no compiled metric of that name whose "
                "direction Keras knows. Pass mode='min' or mode='max'."
            )
        return direction

    def _improves(self, current: float, monitor: str) -> bool:
        best = self.state["best"]
        if math.isnan(current):
            return False
        mode = self._mode(monitor)
        if math.isnan(best):
            return True
        threshold = max(self.min_delta, self.min_rel_delta * abs(best))
        if mode == "min":
            return current < best - threshold
        return current > best + threshold

    def _say(self, epoch: int, message: str, always: bool = False) -> None:
        if self.verbose or always:
            print(f"\nEpoch {epoch + 1}: CoolDownOnPlateau: {message}")

    def begin_fit(self) -> None:
        """Leaves the final weights to an ``EarlyStopping`` that restores."""
        self._early_stopping_restores = any(
            isinstance(callback, keras.callbacks.EarlyStopping)
            and callback.restore_best_weights
            for callback in fit_callbacks(self) or []
        )
        if self._early_stopping_restores and self.restore_best_weights:
            warnings.warn(
                "CoolDownOnPlateau: keras.callbacks.EarlyStopping("
                "restore_best_weights=True) restores its best weights at the "
                "end of this fit, so CoolDownOnPlateau does not restore its "
                "own (restore_best_weights=True applies to fits without it). "
                "Pass restore_best_weights=False to either callback to choose.",
                stacklevel=4,
            )

    @property
    def _restores_at_the_end(self) -> bool:
        return self.restore_best_weights and not self._early_stopping_restores

    def end_fit(self, epoch: int) -> None:
        """At the end of the fit, go back to the best weights (as
        `keras.callbacks.EarlyStopping(restore_best_weights=True)` does), and
        say so in one line at every verbosity."""
        values = self.state
        if (
            self._restores_at_the_end
            and values["stopped_epoch"] != epoch  # restored when it stopped
            and 0 <= values["best_epoch"] < epoch
            and (restored := self._restore_best())
        ):
            best = f"{self._monitored()} {values['best']:.6g}"
            self._say(
                epoch,
                f"end of training; restored the weights of epoch {restored}, "
                f"the best ({best}).",
                always=True,
            )

    def _monitored(self) -> str:
        choice = self.state["monitor_choice"]
        return self.monitor or _DEFAULT_MONITORS[max(choice, 0)]

    def decide(self, epoch: int, monitor: str, current: float) -> None:
        rate = self.learning_rate
        if epoch < self.start_from_epoch:
            return
        values = self.state
        improved = self._improves(current, monitor)
        if improved:
            values["best"] = current
            values["best_epoch"] = epoch
            values["wait"] = 0
            values["improved_since_reduction"] = 1
            if self._keep_weights:
                self.saved_arrays = [to_numpy(w) for w in self.model.weights]
        if values["cooldown_counter"] > 0:
            values["cooldown_counter"] -= 1
            values["wait"] = 0
            return
        if improved:
            return
        values["wait"] += 1
        if values["wait"] < max(self.patience, 1):
            return
        waited = values["wait"]
        values["wait"] = 0
        plateau = (
            f"{monitor} has not improved on {values['best']:.6g} "
            f"(epoch {values['best_epoch'] + 1}) for {waited} epochs"
        )
        at_min = rate <= self.min_lr * (1.0 + _RATE_TOLERANCE)
        futile = (
            self.stop_on_futile_reduction
            and values["reductions"] > 0
            and not values["improved_since_reduction"]
        )
        if values["reductions"] < self.max_reductions and not (at_min or futile):
            old, new = self.multiply_learning_rate(self.factor, min_lr=self.min_lr)
            values["reductions"] += 1
            values["improved_since_reduction"] = 0
            values["cooldown_counter"] = self.cooldown
            message = (
                f"{plateau}; learning rate {old:.6g} -> {new:.6g} "
                f"(reduction {values['reductions']} of {self.max_reductions})."
            )
            if self.restore_best_on_reduce and (restored := self._restore_best()):
                message += f" Restored the weights of epoch {restored}."
            self._say(epoch, message)
            return
        values["stopped_epoch"] = epoch
        self.model.stop_training = True
        if futile:
            reason = "the last reduction brought no improvement"
        elif at_min and values["reductions"] < self.max_reductions:
            reason = f"the learning rate {rate:.6g} is at min_lr={self.min_lr:.6g}"
        else:
            reason = "no reduction is left"
        message = (
            f"{plateau} after {values['reductions']} of {self.max_reductions} "
            f"reductions and {reason}; stopping training"
        )
        restored = self._restores_at_the_end and self._restore_best()
        if restored:
            message += f" and restoring the weights of epoch {restored}"
        self._say(epoch, message + ".", always=bool(restored))

    def _restore_best(self) -> int | None:
        """Sets the best epoch's weights, if kept; returns that epoch, 1-based."""
        if not self.saved_arrays:
            return None
        for weight, value in zip(self.model.weights, self.saved_arrays, strict=True):
            weight.assign(value)
        return self.state["best_epoch"] + 1
