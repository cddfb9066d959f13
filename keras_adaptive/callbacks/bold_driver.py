"""The bold driver: grow the step while the cost falls, halve it and undo otherwise."""

from __future__ import annotations

import math
from typing import Any

import keras

from keras_adaptive._numpy import to_numpy
from keras_adaptive._validation import (
    check_bool,
    check_integer,
    check_range,
    refuse,
)
from keras_adaptive.callbacks.policy import LearningRatePolicy


class BoldDriver(LearningRatePolicy):
    """Adapt the learning rate to whether the last steps decreased the cost.

    The "other adaptive strategy" of the optimization lecture: start with an
    arbitrary step size and decrease it only when successive iterations do not
    decrease the cost. After each epoch (or every ``update_freq`` batches) the
    cost is compared with the cost of the last accepted state:

    * lower (by more than ``min_delta``): the steps are accepted and the
      learning rate is multiplied by ``increase``;
    * otherwise: the learning rate is multiplied by ``decrease`` and, with
      ``revert=True``, the model's weights and the optimizer's slot variables
      (momenta, accumulators, ...) go back to their values before those
      steps. The step counters are never touched: ``iterations``, the
      ``skipped_steps`` of this package's optimizers, the loss-scaling state
      of a ``LossScaleOptimizer`` and, with ``gradient_accumulation_steps``,
      Keras's count of micro-batches and the gradients accumulated towards
      the next update: an update in progress when the decision falls between
      two updates is applied when its last micro-batch comes, so
      ``iterations`` advances exactly as without the policy;
    * NaN or infinite: a *failed* step. The rate is multiplied by
      ``decrease`` and, with ``revert=True``, the steps are undone, but the
      value never becomes the reference. After ``max_failures`` failures in a
      row training stops (``model.stop_training``).

    Both sides of a comparison measure the same thing. With
    ``update_freq="epoch"`` the cost is the epoch's log entry ``monitor``
    (``"loss"``, the mean training loss over the whole epoch, or a
    validation value such as ``"val_loss"``). With an integer
    ``update_freq`` it is the loss of the compiled loss function on the fixed
    ``probe_data``, measured with the current weights after every
    ``update_freq`` batches (and at the epoch's last batch): the running
    training loss of different batches would compare different samples, and
    its noise alone rejects about half of the windows of a converging run,
    driving the rate towards zero.

    The rate stays within ``[min_lr, max_lr]``. It may be a float, a
    ``LearningRateSchedule`` (whose output is then scaled) or a callable, with
    any Keras optimizer, this package's optimizers or a ``LossScaleOptimizer``,
    under ``jit_compile=True``. A float rate is assigned at no cost; every
    change of a schedule's scale retraces the train function once, which at
    a change per decision costs a compile per epoch (or window): prefer a
    float rate (see "How a policy changes the rate" in the policies
    documentation).
    ``logs["learning_rate"]`` receives the rate the epoch's last steps were
    trained with, before the epoch's (or the last window's) decision. A
    ``val_`` monitor is judged only at the epochs that validate
    (``fit(validation_freq=n)``); a value missing from logs that should hold
    it raises ``ValueError``. When the decision that ends a fit undoes steps,
    it is said in one line, whatever ``verbose``.

    The reference cost, the counters and the state to return to are saved
    with the model's weights, so a run resumed with ``BackupAndRestore``
    (listed before or after this callback) decides the same way at epoch
    boundaries. Each ``fit`` starts afresh: its first cost is the reference.

    Args:
        monitor: the epoch log entry compared with ``update_freq="epoch"``.
        increase: factor applied after an accepted epoch/window, > 1.
        decrease: factor applied after a rejected or failed one, in (0, 1).
        revert: undo the rejected steps.
        update_freq: ``"epoch"`` or a number of batches >= 1.
        min_lr: lower bound of the learning rate, >= 0.
        max_lr: upper bound of the learning rate, > ``min_lr``.
        min_delta: decrease of the cost required to accept, >= 0.
        probe_data: ``(x, y)`` on which the cost is measured; required with an
            integer ``update_freq``, and only used then. A few batches are
            enough; they are evaluated eagerly at every decision.
        max_failures: NaN or infinite costs in a row that stop training, >= 1.
        verbose: 0 silent, 1 a line per rejection or failure, 2 a line per
            decision.

    References:
        * R. Battiti (1989), "Accelerated backpropagation learning: two
          optimization methods", Complex Systems 3, 331-342 (the bold driver).
        * T. P. Vogl, J. K. Mangis, A. K. Rigler, W. T. Zink and D. L. Alkon
          (1988), "Accelerating the convergence of the back-propagation
          method", Biological Cybernetics 59, 257-263.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive.callbacks import BoldDriver
        >>> keras.utils.set_random_seed(0)
        >>> x = np.linspace(-1, 1, 32, dtype="float32").reshape(-1, 1)
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        >>> driver = BoldDriver()
        >>> history = model.fit(
        ...     x, 3 * x, batch_size=32, epochs=5, verbose=0, callbacks=[driver]
        ... )
        >>> driver.increases, driver.decreases  # the loss fell every epoch
        (4, 0)
        >>> round(history.history["learning_rate"][-1] / 0.05, 4)  # 1.05 ** 3
        1.1576
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
        probe_data: tuple[Any, Any] | None = None,
        max_failures: int = 5,
        verbose: int = 0,
    ):
        owner = type(self).__name__
        if not isinstance(monitor, str) or not monitor:
            refuse(owner, "monitor", monitor, "a non-empty string")
        increase = check_range(owner, "increase", increase, 1.0, low_closed=False)
        decrease = check_range(owner, "decrease", decrease, 0.0, 1.0, low_closed=False)
        check_bool(owner, "revert", revert)
        min_lr = check_range(owner, "min_lr", min_lr, 0.0)
        max_lr = check_range(
            owner, "max_lr", max_lr, min_lr, low_closed=False, high_closed=True
        )
        min_delta = check_range(owner, "min_delta", min_delta, 0.0)
        check_integer(owner, "max_failures", max_failures, 1)
        check_integer(owner, "verbose", verbose, 0, 2)
        if update_freq != "epoch":
            check_integer(owner, "update_freq", update_freq, 1)
            if probe_data is None:
                refuse(
                    owner,
                    "probe_data",
                    probe_data,
                    f"an (x, y) pair when update_freq={update_freq!r} (a number "
                    "of batches): the mean losses of different batches are not "
                    "comparable",
                )
            if monitor != "loss":
                refuse(
                    owner,
                    "monitor",
                    monitor,
                    f"'loss' when update_freq={update_freq!r} (a number of "
                    "batches): the loss on `probe_data` is compared",
                )
        if probe_data is not None:
            if update_freq == "epoch":
                raise ValueError(
                    f"{owner}: `probe_data` is used only with an integer "
                    "`update_freq`; received probe_data with update_freq='epoch', "
                    "where the epoch's `monitor` is compared."
                )
            if not isinstance(probe_data, tuple) or len(probe_data) != 2:
                raise ValueError(
                    f"{owner}: `probe_data` must be a tuple (x, y); received a "
                    f"{type(probe_data).__name__}."
                )
        self.monitor = monitor
        self.increase = increase
        self.decrease = decrease
        self.revert = revert
        self.update_freq = update_freq
        self.min_lr = min_lr
        self.max_lr = max_lr
        self.min_delta = min_delta
        self.probe_data = probe_data
        self.max_failures = max_failures
        self.verbose = verbose
        self._loss_fn = None
        super().__init__(
            {"reference": math.nan, "increases": 0, "decreases": 0, "failures": 0},
            name="bold_driver",
        )

    @property
    def reference(self) -> float | None:
        """Cost of the last accepted state (``None`` before the first)."""
        value = self.state["reference"]
        return None if math.isnan(value) else value

    @property
    def increases(self) -> int:
        """Accepted epochs/windows so far."""
        return self.state["increases"]

    @property
    def decreases(self) -> int:
        """Rejected or failed epochs/windows so far."""
        return self.state["decreases"]

    @property
    def failures(self) -> int:
        """Failed (NaN or infinite) epochs/windows in a row."""
        return self.state["failures"]

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
            "probe_data": self.probe_data,
            "max_failures": self.max_failures,
            "verbose": self.verbose,
        }

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if self.probe_data is None or getattr(model, "optimizer", None) is None:
            return
        loss = getattr(model, "loss", None)
        if loss is None or isinstance(loss, list | tuple | dict):
            raise ValueError(
                "BoldDriver with `probe_data` needs a model compiled with a "
                f"single loss; received loss={loss!r}"
            )
        self._loss_fn = keras.losses.get(loss)

    def begin_epoch(self, epoch: int) -> None:
        if self.revert and not self.saved_arrays:
            self._take_snapshot()
        if self.probe_data is not None and self.reference is None:
            loss = self._probe_loss()
            if math.isfinite(loss):
                self.state["reference"] = loss

    def decide(self, epoch: int, monitor: str, value: float) -> None:
        final = self.is_last_epoch(epoch)
        self._judge(value, f"Epoch {epoch + 1}", final)

    def decide_within_epoch(self, epoch: int, batches: int | None) -> None:
        where = f"Epoch {epoch + 1}"
        if batches is not None:
            where += f", batch {batches}"
        final = self.is_last_epoch(epoch) and (
            batches is None or batches == self.params.get("steps")
        )
        self._judge(self._probe_loss(), where, final)

    def _take_snapshot(self) -> None:
        """The accepted state, to return to: saved with the weights."""
        if self.revert:
            self.saved_arrays = [to_numpy(v) for v in self.training_state_variables()]

    def _probe_loss(self) -> float:
        x, y = self.probe_data
        loss = self._loss_fn(y, self.model(x, training=False))
        return float(to_numpy(keras.ops.mean(loss)))

    def _say(self, level: int, message: str, always: bool = False) -> None:
        if self.verbose >= level or always:
            print(f"\n{message}.")

    def _judge(self, loss: float, where: str, final: bool) -> None:
        """Accepts or rejects the steps since the last accepted state;
        `final`: the last decision of the fit (an undo is then always said)."""
        values = self.state
        reference = values["reference"]
        what = "probe loss" if self.probe_data is not None else self.monitor
        if not math.isfinite(loss):
            old, new = self._multiply(self.decrease)
            values["decreases"] += 1
            values["failures"] += 1
            message = (
                f"{where}: BoldDriver: {what} is {loss}; learning rate "
                f"{old:.6g} -> {new:.6g}"
            )
            undone = self._undo()
            message += undone
            if values["failures"] >= self.max_failures:
                self.model.stop_training = True
                message += (
                    f"; {values['failures']} non-finite values in a row "
                    f"(max_failures={self.max_failures}), stopping training"
                )
            self._say(1, message, always=final and bool(undone))
            return
        values["failures"] = 0
        if math.isnan(reference):
            values["reference"] = loss
            self._take_snapshot()
            return
        if loss < reference - self.min_delta:
            old, new = self._multiply(self.increase)
            values["reference"] = loss
            values["increases"] += 1
            self._take_snapshot()
            self._say(
                2,
                f"{where}: BoldDriver: {what} {loss:.6g} < {reference:.6g}; "
                f"learning rate {old:.6g} -> {new:.6g}",
            )
            return
        old, new = self._multiply(self.decrease)
        values["decreases"] += 1
        message = (
            f"{where}: BoldDriver: {what} {loss:.6g} did not decrease from "
            f"{reference:.6g}; learning rate {old:.6g} -> {new:.6g}"
        )
        undone = self._undo()
        if not self.revert:
            values["reference"] = loss
        self._say(1, message + undone, always=final and bool(undone))

    def _multiply(self, factor: float) -> tuple[float, float]:
        return self.multiply_learning_rate(factor, self.min_lr, self.max_lr)

    def _undo(self) -> str:
        """Returns the weights and slots to the accepted state, if kept."""
        if not self.revert or not self.saved_arrays:
            return ""
        variables = self.training_state_variables()
        for variable, value in zip(variables, self.saved_arrays, strict=True):
            variable.assign(value)
        return ", steps undone"
