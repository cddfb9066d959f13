"""The bold driver: grow the step while the cost falls, halve it and undo otherwise."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_adaptive.callbacks._control import (
    LearningRateControl,
    _CallbackState,
    attach,
    attach_state,
    sync_model_state,
)
from keras_adaptive.callbacks._validation import check_range


class BoldDriver(keras.callbacks.Callback):
    """Adapt the learning rate to whether the last steps decreased the cost.

    The "other adaptive strategy" of the optimization lecture: start with an
    arbitrary step size and decrease it only when successive iterations do not
    decrease the cost. After each epoch (or every ``update_freq`` batches) the
    monitored loss is compared with the loss of the last accepted state:

    * lower (by more than ``min_delta``): the steps are accepted and the
      learning rate is multiplied by ``increase``;
    * otherwise (or NaN): the learning rate is multiplied by ``decrease`` and,
      with ``revert=True``, the model's weights and the optimizer's slot
      variables (momenta, accumulators, ...) go back to their values before
      those steps. The optimizer's step counter is not reverted, and neither
      is the loss-scaling state of a ``LossScaleOptimizer``.

    The rate stays within ``[min_lr, max_lr]``. It may be a float, a
    ``LearningRateSchedule`` (whose output is then scaled) or a callable, with
    any Keras optimizer, this package's optimizers or a ``LossScaleOptimizer``,
    under ``jit_compile=True`` on TensorFlow and JAX without retracing (see
    :class:`~keras_adaptive.callbacks.CoolDownOnPlateau` for the mechanism).
    ``logs["learning_rate"]`` receives the rate in effect at the end of each
    epoch, before the epoch's decision.

    With ``update_freq="epoch"`` the monitored value is the epoch's log entry
    (``"loss"``, the mean training loss over the epoch, or a validation value
    such as ``"val_loss"``). With an integer ``update_freq`` it is the mean
    training loss over the last ``update_freq`` batches (derived from the
    running mean that Keras logs, exact for equal batch sizes); a last,
    shorter window is judged at the end of the epoch. The reference loss and
    the counters are saved with the model's weights, so runs resumed with
    ``BackupAndRestore`` (listed after this callback) decide the same way.

    Args:
        monitor: the loss to watch; a training metric when ``update_freq`` is
            an integer.
        increase: factor applied after an accepted epoch/window, > 1.
        decrease: factor applied after a rejected one, in (0, 1).
        revert: undo the rejected steps.
        update_freq: ``"epoch"`` or a number of batches >= 1.
        min_lr: lower bound of the learning rate, >= 0.
        max_lr: upper bound of the learning rate, > ``min_lr``.
        min_delta: decrease of the loss required to accept, >= 0.
        verbose: 0 silent, 1 a line per rejection, 2 a line per decision.
    """

    def __init__(
        self,
        monitor: str = "loss",
        increase: float = 1.05,
        decrease: float = 0.5,
        revert: bool = True,
        update_freq: str | int = "epoch",
        min_lr: float = 0.0,
        max_lr: float = math.inf,
        min_delta: float = 0.0,
        verbose: int = 0,
    ):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                f"`monitor` must be a non-empty string; received {monitor!r}"
            )
        check_range("increase", increase, 1.0, low_open=True)
        check_range("decrease", decrease, 0.0, 1.0, low_open=True, high_open=True)
        check_range("min_lr", min_lr, 0.0)
        check_range("max_lr", max_lr, min_lr, low_open=True)
        check_range("min_delta", min_delta, 0.0)
        check_range("verbose", verbose, 0, 2, integer=True)
        if update_freq != "epoch":
            check_range("update_freq", update_freq, 1, integer=True)
            if monitor.startswith("val_"):
                raise ValueError(
                    f"`monitor` must be a training metric when `update_freq` is "
                    f"a number of batches; received monitor={monitor!r}, "
                    f"update_freq={update_freq!r}"
                )
        self.monitor = monitor
        self.increase = float(increase)
        self.decrease = float(decrease)
        self.revert = bool(revert)
        self.update_freq = update_freq
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        self.min_delta = float(min_delta)
        self.verbose = verbose
        self._control: LearningRateControl | None = None
        self._snapshot: list[tuple[keras.Variable, np.ndarray]] | None = None
        self._window_start = 0
        self._window_start_mean = 0.0
        self._seen = 0
        self._state = _CallbackState(
            {"reference": math.nan, "increases": 0, "decreases": 0},
            name="bold_driver",
        )

    @property
    def reference(self) -> float | None:
        """Loss of the last accepted state (``None`` before the first)."""
        value = self._state.values["reference"]
        return None if math.isnan(value) else value

    @property
    def increases(self) -> int:
        """Accepted epochs/windows so far."""
        return self._state.values["increases"]

    @property
    def decreases(self) -> int:
        """Rejected epochs/windows so far."""
        return self._state.values["decreases"]

    def get_config(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "increase": self.increase,
            "decrease": self.decrease,
            "revert": self.revert,
            "update_freq": self.update_freq,
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "min_delta": self.min_delta,
            "verbose": self.verbose,
        }

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if getattr(model, "optimizer", None) is None:
            return
        self._control = attach(model)
        attach_state(model, self._state)

    def _reverted_variables(self) -> list[keras.Variable]:
        control = self._control
        skip = {id(control.inner.iterations), id(control.variable), id(control.scale)}
        slots = [v for v in control.inner.variables if id(v) not in skip]
        return list(self.model.weights) + slots

    def _take_snapshot(self) -> None:
        if self.revert:
            self._snapshot = [
                (v, np.array(keras.ops.convert_to_numpy(v), copy=True))
                for v in self._reverted_variables()
            ]

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._snapshot = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._window_start = 0
        self._window_start_mean = 0.0
        self._seen = 0
        if self._snapshot is None:
            self._take_snapshot()

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if self.update_freq == "epoch" or logs is None:
            return
        seen = self._seen = batch + 1
        if seen - self._window_start >= self.update_freq:
            self._judge_window(seen, float(logs[self.monitor]), f"batch {seen}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            logs = {}
        logs["learning_rate"] = self._control.value
        if self.monitor not in logs:
            raise ValueError(
                f"BoldDriver monitors `{self.monitor}`, which is not in the logs "
                f"(available: {', '.join(sorted(logs))})"
            )
        if self.update_freq == "epoch":
            self._decide(float(logs[self.monitor]), f"Epoch {epoch + 1}")
            return
        if self._seen > self._window_start:
            self._judge_window(
                self._seen, float(logs[self.monitor]), f"Epoch {epoch + 1}"
            )

    def _judge_window(self, seen: int, running_mean: float, where: str) -> None:
        start, start_mean = self._window_start, self._window_start_mean
        window_mean = (seen * running_mean - start * start_mean) / (seen - start)
        self._window_start, self._window_start_mean = seen, running_mean
        sync_model_state(self.model)
        self._decide(window_mean, where)

    def _decide(self, loss: float, where: str) -> None:
        values = self._state.values
        reference = values["reference"]
        if math.isnan(reference):
            if not math.isnan(loss):
                values["reference"] = loss
                self._take_snapshot()
            return
        if loss < reference - self.min_delta:
            old, new = self._control.multiply(self.increase, self.min_lr, self.max_lr)
            values["reference"] = loss
            values["increases"] += 1
            self._take_snapshot()
            if self.verbose > 1:
                print(
                    f"\n{where}: BoldDriver: {self.monitor} {loss:.6g} < "
                    f"{reference:.6g}; learning rate {old:.6g} -> {new:.6g}."
                )
            return
        old, new = self._control.multiply(self.decrease, self.min_lr, self.max_lr)
        values["decreases"] += 1
        message = (
            f"\n{where}: BoldDriver: {self.monitor} {loss:.6g} did not decrease "
            f"from {reference:.6g}; learning rate {old:.6g} -> {new:.6g}"
        )
        if self.revert and self._snapshot is not None:
            for variable, value in self._snapshot:
                variable.assign(value)
            message += ", steps undone"
        else:
            values["reference"] = loss
            self._take_snapshot()
        if self.verbose:
            print(message + ".")
