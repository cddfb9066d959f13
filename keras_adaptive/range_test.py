"""The learning-rate range test: training loss against an exponentially rising rate.

`find_learning_rate` trains a copy of the model for a few hundred steps while
the rate rises geometrically (`keras_adaptive.schedules.ExponentialRamp`) and
returns the loss curve with a suggested rate (`LearningRateRangeResult`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from keras_adaptive._validation import check_range
from keras_adaptive.schedules import ExponentialRamp


@dataclass
class LearningRateRangeResult:
    """The curve of a learning-rate range test.

    Attributes:
        learning_rates: rate used at each step.
        losses: training loss of each step's batch, computed before the step's
            update (so at the weights reached with the previous rates).
        smoothed_losses: bias-corrected exponential moving average of
            ``losses``.
        suggested_learning_rate: the rate where the smoothed loss falls
            fastest against ``log(rate)``, before its minimum.
        min_loss_learning_rate: the rate at the minimum of the smoothed loss
            (a common alternative suggestion is a tenth of it).
        stopped_early: the loss diverged before the last step.
        figure: a ``matplotlib.figure.Figure`` of the curve, when plotted.

    References:
        L. N. Smith (2017), "Cyclical Learning Rates for Training Neural
        Networks", WACV.

    Example:
        >>> import numpy as np
        >>> from keras_adaptive import LearningRateRangeResult
        >>> rates = np.geomspace(1e-3, 1.0, 4)
        >>> result = LearningRateRangeResult(
        ...     rates, np.array([1.0, 0.5, 0.4, 9.0]), np.array([1.0, 0.6, 0.5, 3.0]),
        ...     suggested_learning_rate=0.01, min_loss_learning_rate=0.1,
        ...     stopped_early=True,
        ... )
        >>> result.suggested_learning_rate < result.min_loss_learning_rate
        True
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggested_learning_rate: float
    min_loss_learning_rate: float
    stopped_early: bool
    figure: Any = field(default=None, repr=False)

    def plot(self, ax: Any = None) -> Any:
        """Draw the loss against the learning rate (log scale); returns the axes.

        Without ``ax`` a new ``matplotlib.figure.Figure`` is created (no pyplot
        state), stored in ``self.figure``.
        """
        if ax is None:
            from matplotlib.figure import Figure

            self.figure = Figure(figsize=(6.4, 4.2), layout="constrained")
            ax = self.figure.add_subplot()
        ax.semilogx(
            self.learning_rates, self.losses, ".", alpha=0.35, label="loss per step"
        )
        ax.semilogx(self.learning_rates, self.smoothed_losses, label="smoothed loss")
        ax.axvline(
            self.suggested_learning_rate,
            color="tab:red",
            linestyle="--",
            label=f"suggested rate {self.suggested_learning_rate:.2g}",
        )
        finite = self.losses[np.isfinite(self.losses)]
        if finite.size:
            lowest = int(np.nanargmin(self.smoothed_losses))
            top = 1.15 * float(np.nanmax(self.smoothed_losses[: lowest + 1]))
            ax.set_ylim(0.9 * float(finite.min()), max(top, 1.1 * float(finite.min())))
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        ax.set_title("Learning-rate range test")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        return ax


class _Recorder(keras.callbacks.Callback):
    def __init__(self, ramp: ExponentialRamp, smoothing: float, divergence: float):
        super().__init__()
        self.ramp = ramp
        self.smoothing = smoothing
        self.divergence = divergence
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._average = 0.0
        self.stopped_early = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float(logs["loss"])
        self.losses.append(loss)
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** len(self.losses))
        self.smoothed.append(smoothed)
        best = min(self.smoothed)
        if not math.isfinite(smoothed) or smoothed > self.divergence * best:
            self.stopped_early = epoch + 1 < self.ramp.num_steps
            self.model.stop_training = True


def _copy_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, str):
        return keras.optimizers.get(optimizer)
    return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))


def find_learning_rate(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = None,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    num_steps: int = 100,
    smoothing: float = 0.9,
    divergence_factor: float = 4.0,
    loss: Any = None,
    optimizer: Any = None,
    plot: bool = True,
    verbose: int = 0,
) -> LearningRateRangeResult:
    """Learning-rate range test: train a copy while raising the rate exponentially.

    The slides' "learning rate vs. training error" as a measurement: a copy of
    ``model`` (``keras.models.clone_model`` with the same weights) is trained
    for up to ``num_steps`` mini-batches with a rate rising geometrically from
    ``min_lr`` to ``max_lr``, and the loss of every batch is recorded. The run
    stops early once the smoothed loss exceeds ``divergence_factor`` times its
    minimum (or is not finite). ``model``, its optimizer and its weights are
    left untouched.

    Args:
        model: a built Keras model, compiled unless ``loss`` and ``optimizer``
            are given.
        x, y, batch_size: training data, as for ``model.fit``.
        min_lr, max_lr: first and last rate, 0 < min_lr < max_lr.
        num_steps: number of steps (batches) of the ramp, >= 2.
        smoothing: factor of the moving average of the loss, in [0, 1).
        divergence_factor: stop when the smoothed loss exceeds this multiple
            of its minimum, > 1.
        loss: loss to use instead of the model's compiled loss.
        optimizer: optimizer (instance, config or name) to copy instead of the
            model's; its learning rate is replaced by the ramp.
        plot: draw the curve into ``result.figure`` when matplotlib is
            installed.
        verbose: passed to ``fit``.

    Returns:
        A :class:`LearningRateRangeResult`.

    References:
        L. N. Smith (2017), "Cyclical Learning Rates for Training Neural
        Networks", WACV (the range test, as "LR range test").

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive import find_learning_rate
        >>> keras.utils.set_random_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> result = find_learning_rate(
        ...     model, x, x.sum(axis=1), batch_size=16, num_steps=16, plot=False
        ... )
        >>> float(f"{result.learning_rates[0]:.3g}"), len(result.losses) <= 16
        (1e-06, True)
        >>> bool(1e-6 <= result.suggested_learning_rate <= 1.0)
        True
    """
    ramp = ExponentialRamp(min_lr, max_lr, num_steps)
    owner = "find_learning_rate"
    check_range(owner, "smoothing", smoothing, 0.0, 1.0)
    check_range(owner, "divergence_factor", divergence_factor, 1.0, low_closed=False)
    if not model.built:
        raise ValueError(
            "find_learning_rate needs a built model; call it on a batch or "
            "build it first."
        )
    loss = loss if loss is not None else getattr(model, "loss", None)
    source = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    if loss is None or source is None:
        raise ValueError(
            "find_learning_rate needs a loss and an optimizer: compile the model "
            "or pass `loss=` and `optimizer=`."
        )
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy_optimizer = _copy_optimizer(source)
    copy_optimizer.learning_rate = ramp
    copy.compile(optimizer=copy_optimizer, loss=loss)
    recorder = _Recorder(ramp, smoothing, divergence_factor)
    copy.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=num_steps,
        steps_per_epoch=1,
        callbacks=[recorder],
        verbose=verbose,
    )
    losses = np.asarray(recorder.losses)
    smoothed = np.asarray(recorder.smoothed)
    rates = ramp.rate(np.arange(losses.size))
    lowest = int(np.nanargmin(smoothed))
    if lowest >= 2:
        slope = np.gradient(smoothed[: lowest + 1], np.log(rates[: lowest + 1]))
        suggested = float(rates[int(np.argmin(slope))])
    else:
        suggested = float(rates[lowest]) / 10.0
    result = LearningRateRangeResult(
        learning_rates=rates,
        losses=losses,
        smoothed_losses=smoothed,
        suggested_learning_rate=suggested,
        min_loss_learning_rate=float(rates[lowest]),
        stopped_early=recorder.stopped_early,
    )
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return result
        result.plot()
    return result


__all__ = [
    "LearningRateRangeResult",
    "find_learning_rate",
]
