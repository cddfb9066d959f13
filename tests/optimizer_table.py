"""The table of optimizers that every generic test runs over.

One row per optimizer class: the keyword arguments that make it train the
small test models well in a few steps. Adding an optimizer to the package
means adding a row here (every generic property is then checked for it), an
exactness row with its NumPy reference in `test_exactness.py`, and its
invalid hyperparameter values in `INVALID_VALUES` below.
"""

import math
from dataclasses import dataclass, field

from keras_adaptive import optimizers


@dataclass(frozen=True)
class Row:
    cls: type
    kwargs: dict = field(default_factory=dict)
    # Trains only on full batches (sign-based and quasi-Newton methods).
    full_batch: bool = False
    # Hyperparameters that may be a schedule of the iteration count.
    schedulable: tuple = ()

    @property
    def id(self) -> str:
        return self.cls.__name__

    def make(self, **overrides):
        return self.cls(**{**self.kwargs, **overrides})


ROWS = [
    Row(optimizers.SGD, schedulable=("momentum",), kwargs={"learning_rate": 0.1}),
    Row(optimizers.Momentum, schedulable=("momentum",), kwargs={"learning_rate": 0.05}),
    Row(optimizers.Nesterov, schedulable=("momentum",), kwargs={"learning_rate": 0.05}),
    Row(optimizers.Adagrad, {"learning_rate": 0.1}),
    Row(optimizers.RMSprop, {"learning_rate": 0.01}),
    Row(optimizers.Adadelta, {"learning_rate": 1.0}),
    Row(optimizers.Adam, schedulable=("beta_1",), kwargs={"learning_rate": 0.01}),
    Row(optimizers.Adamax, schedulable=("beta_1",), kwargs={"learning_rate": 0.02}),
    Row(optimizers.Nadam, schedulable=("beta_1",), kwargs={"learning_rate": 0.01}),
    Row(
        optimizers.DeltaBarDelta,
        schedulable=("momentum",),
        kwargs={"learning_rate": 0.05},
    ),
    Row(optimizers.Rprop, {"learning_rate": 0.01}, full_batch=True),
    Row(optimizers.LBFGS, {"learning_rate": 1.0}, full_batch=True),
]
ROW_IDS = [row.id for row in ROWS]


NAN = math.nan

#: Invalid values of each hyperparameter, keyed by keyword name, with the
#: range the error message must state. Every class taking the keyword is
#: tried with every value.
INVALID_VALUES = {
    "learning_rate": ([-0.1, NAN, "0.1", None], "[0.0, inf)"),
    "momentum": ([-0.1, 1.0, 1.5, NAN], "[0.0, 1.0)"),
    "rho": ([-0.1, 1.0, NAN], "[0.0, 1.0)"),
    "beta_1": ([-0.1, 1.0, NAN], "[0.0, 1.0)"),
    "beta_2": ([-0.1, 1.0, NAN], "[0.0, 1.0)"),
    "epsilon": ([0.0, -1e-8, NAN], "(0.0, inf)"),
    "initial_accumulator_value": ([-0.1, NAN], "[0.0, inf)"),
    "momentum_decay": ([-0.004, NAN], "[0.0, inf)"),
    "l2": ([-1e-4, NAN], "[0.0, inf)"),
    "weight_decay": ([-1e-4, NAN], "[0.0, inf)"),
    "clipnorm": ([0.0, -1.0], "(0.0, inf)"),
    "clipvalue": ([0.0, -1.0], "(0.0, inf)"),
    "global_clipnorm": ([0.0, -1.0], "(0.0, inf)"),
    "ema_momentum": ([-0.1, 1.5], "[0.0, 1.0]"),
    "loss_scale_factor": ([0.0, -2.0], "(0.0, inf)"),
    "increment": ([-0.05, NAN], "[0.0, inf)"),
    "decay": ([0.0, -0.5, 1.5, NAN], "(0.0, 1.0]"),
    "min_gain": ([0.0, -0.1, NAN], "(0.0, inf)"),
    "max_gain": ([0.05, -1.0, NAN], "[0.1, inf)"),
    "eta_minus": ([0.0, 1.0, NAN], "(0.0, 1.0)"),
    "eta_plus": ([1.0, 0.5, NAN], "(1.0, inf)"),
    "min_step": ([0.0, -1e-6, NAN], "(0.0, inf)"),
    "max_step": ([1e-7, -1.0, NAN], "[1e-06, inf)"),
    "curvature_epsilon": ([-1e-10, NAN], "[0.0, inf)"),
}

#: Invalid values of integer and boolean options.
INVALID_CHOICES = {
    "gradient_accumulation_steps": ([1, 0, 2.5], "integer >= 2"),
    "ema_overwrite_frequency": ([0, 1.5], "integer >= 1"),
    "nesterov": (["yes", 1], "True or False"),
    "centered": (["yes", 1], "True or False"),
    "amsgrad": (["yes", 1], "True or False"),
    "state_dtype": (["float64", "int8"], "one of"),
    "history_size": ([0, 2.5, True], "integer >= 1"),
}
