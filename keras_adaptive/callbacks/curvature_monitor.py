r"""`CurvatureMonitor`: the Hessian's top eigenvalue during training, in `logs`.

Gradient descent with rate :math:`\eta` is stable along an eigenvector of the
Hessian only while :math:`\eta \lambda < 2` (lecture "Choosing the Right
Learning Rate"). During full-batch gradient descent on a network,
:math:`\lambda_{\max}` rises until :math:`\eta \lambda_{\max}` reaches 2 and
then hovers there, the "edge of stability" (Cohen et al. 2021); for an
adaptive method the same holds for the preconditioned
:math:`\lambda_{\max}(P^{-1} H)`, which settles near
:math:`(2 + 2\beta_1) / (\eta (1 - \beta_1))` for Adam (Cohen et al. 2022).
The callback writes these numbers into the epoch's `logs`, where `History`,
`CSVLogger` and `TensorBoard` find them.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_adaptive._keras_api import sync_trainer_state
from keras_adaptive._numpy import to_numpy
from keras_adaptive._validation import check_bool, check_integer, check_range, refuse
from keras_adaptive.curvature.preconditioners import (
    SUPPORTED,
    diagonal_preconditioner,
    has_diagonal_preconditioner,
    inner_optimizer,
)
from keras_adaptive.curvature.probe import sample_count
from keras_adaptive.curvature.spectrum import extreme_eigenpairs

#: The keys `CurvatureMonitor` writes into `logs`.
LOG_KEYS = (
    "lambda_max",
    "lr_times_lambda_max",
    "preconditioned_lambda_max",
    "lr_times_preconditioned_lambda_max",
)


class CurvatureMonitor(keras.callbacks.Callback):
    r"""Writes the Hessian's top eigenvalue, and :math:`\eta` times it, into `logs`.

    At the end of epoch 0 and of every `every`-th epoch after it, the largest
    eigenvalue :math:`\lambda_{\max}` of the Hessian of the training
    objective on a fixed probe set (the compiled loss averaged over the
    probe samples plus the regularisation losses, plus the optimizer's
    coupled `l2` if it has one) is measured by block Lanczos on
    Hessian-vector products (`keras_adaptive.curvature.extreme_eigenpairs`),
    and written with :math:`\eta` = the optimizer's learning rate of the
    next step:

    * ``lambda_max``: :math:`\lambda_{\max}(H)`;
    * ``lr_times_lambda_max``: :math:`\eta\, \lambda_{\max}(H)`, which
      gradient descent keeps below 2 (the edge of stability; with heavy-ball
      momentum :math:`\mu` the bound is :math:`2 + 2\mu`);
    * for an optimizer with a diagonal preconditioner :math:`P` (see
      `keras_adaptive.curvature.diagonal_preconditioner`),
      ``preconditioned_lambda_max``, :math:`\lambda_{\max}(P^{-1} H)`
      computed as the top eigenvalue of :math:`P^{-1/2} H P^{-1/2}`, and
      ``lr_times_preconditioned_lambda_max``, :math:`\eta\,
      \lambda_{\max}(P^{-1} H)`, which Adam keeps near
      :math:`(2 + 2\beta_1)/(1 - \beta_1)` (38 for :math:`\beta_1 = 0.9`).

    In the epochs in between, the keys hold NaN, so that `CSVLogger` (which
    fixes its columns at the first epoch) writes every row. List the monitor
    before `CSVLogger` and `TensorBoard` so that they see its keys; `History`
    always does. The measurement uses its own compiled function: the train
    function is not traced again. On JAX the trainer's state is written back
    to the variables first.

    Args:
        x, y: the probe set, as arrays (or dicts, lists or tuples of arrays);
            a fixed batch of a few hundred to a few thousand samples.
        sample_weight: per-sample weights of the probe set.
        every: measure every this many epochs (from epoch 0), >= 1.
        preconditioned: also measure :math:`\lambda_{\max}(P^{-1} H)`: `None`
            (when the optimizer has a diagonal preconditioner), True (refuse
            an optimizer without one) or False.
        tolerance: relative residual at which each eigenvalue stops, in
            (0, 1) (see `extreme_eigenpairs`).
        max_products: the most Hessian-vector products per eigenvalue, >= 1.
        chunk_size: evaluate the probe loss in chunks of this many samples.
        seed: seed of the Lanczos starting vector (the same every time).
        verbose: 1 prints a line per measurement.

    References:
        * J. M. Cohen, S. Kaur, Y. Li, J. Z. Kolter and A. Talwalkar (2021),
          "Gradient Descent on Neural Networks Typically Occurs at the Edge
          of Stability", ICLR.
        * J. M. Cohen, B. Ghorbani, S. Krishnan, N. Agarwal, S. Medapati,
          M. Badura, D. Suo, D. Cardoze, Z. Nado, G. E. Dahl and J. Gilmer
          (2022), "Adaptive Gradient Methods at the Edge of Stability",
          arXiv:2207.14484.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from keras_adaptive import optimizers
        >>> from keras_adaptive.callbacks.curvature_monitor import CurvatureMonitor
        >>> x = np.linspace(-1, 1, 32, dtype="float32").reshape(-1, 1)
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
        >>> history = model.fit(x, 3 * x, batch_size=32, epochs=2, verbose=0,
        ...                     callbacks=[CurvatureMonitor(x, 3 * x)])
        >>> np.round(history.history["lr_times_lambda_max"], 4).tolist()
        [0.2, 0.2]
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        *,
        sample_weight: Any = None,
        every: int = 1,
        preconditioned: bool | None = None,
        tolerance: float = 1e-3,
        max_products: int = 100,
        chunk_size: int | None = None,
        seed: int = 0,
        verbose: int = 0,
    ):
        super().__init__()
        owner = type(self).__name__
        self.every = check_integer(owner, "every", every, 1)
        if preconditioned is not None:
            check_bool(owner, "preconditioned", preconditioned)
        self.preconditioned = preconditioned
        self.tolerance = check_range(
            owner, "tolerance", tolerance, 0.0, 1.0, low_closed=False
        )
        self.max_products = check_integer(owner, "max_products", max_products, 1)
        if chunk_size is not None:
            check_integer(owner, "chunk_size", chunk_size, 1)
        self.chunk_size = chunk_size
        self.seed = check_integer(owner, "seed", seed, 0)
        self.verbose = check_integer(owner, "verbose", verbose, 0, 1)
        self.samples = sample_count(x)
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self._hvp = None

    def on_train_begin(self, logs=None):
        self._hvp = None  # made at the first measurement, for this model
        optimizer = self.model.optimizer
        if self.preconditioned and not has_diagonal_preconditioner(optimizer):
            refuse(
                type(self).__name__,
                "preconditioned",
                True,
                "False or None for an optimizer without a diagonal "
                f"preconditioner ({type(inner_optimizer(optimizer)).__name__}); "
                f"those with one are {SUPPORTED}",
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        values = dict.fromkeys(LOG_KEYS, math.nan)
        if epoch % self.every == 0:
            values.update(self.measure())
        with_preconditioner = self.preconditioned is not False and (
            has_diagonal_preconditioner(self.model.optimizer)
        )
        keys = LOG_KEYS if with_preconditioner else LOG_KEYS[:2]
        logs.update({key: values[key] for key in keys})
        if self.verbose and epoch % self.every == 0:
            shown = ", ".join(f"{key} {values[key]:.4g}" for key in keys)
            print(f"Epoch {epoch + 1}: {shown}")

    def measure(self) -> dict[str, float]:
        r"""Measures :math:`\lambda_{\max}` (and the preconditioned value) at
        the current weights; returns the log entries."""
        from keras_adaptive import hessian_vector_product

        sync_trainer_state(self.model)
        optimizer = self.model.optimizer
        inner = inner_optimizer(optimizer)
        if self._hvp is None:  # it reads the weights at each call
            self._hvp = hessian_vector_product(
                self.model,
                self.x,
                self.y,
                sample_weight=self.sample_weight,
                chunk_size=self.chunk_size,
            )
        hvp = self._hvp
        l2 = float(getattr(inner, "l2", None) or 0.0)
        rate = float(to_numpy(inner.learning_rate))

        def hessian(v: np.ndarray) -> np.ndarray:
            return hvp(v) + l2 * v

        top = self._top_eigenvalue(hessian, hvp.size)
        values = {"lambda_max": top, "lr_times_lambda_max": rate * top}
        if self.preconditioned is not False and has_diagonal_preconditioner(optimizer):
            variables = self.model.trainable_variables
            diagonal = hvp.flatten(diagonal_preconditioner(optimizer, variables))
            scale = 1.0 / np.sqrt(diagonal)
            top = self._top_eigenvalue(lambda v: scale * hessian(scale * v), hvp.size)
            values["preconditioned_lambda_max"] = top
            values["lr_times_preconditioned_lambda_max"] = rate * top
        return values

    def _top_eigenvalue(self, matvec, size: int) -> float:
        pairs = extreme_eigenpairs(
            matvec,
            size,
            tolerance=self.tolerance,
            max_products=min(self.max_products, size),
            seed=self.seed,
        )
        return float(pairs.largest[0])
