"""The table of optimizers that drives every generic test.

One `OptimizerInfo` row per optimizer class, in `ROWS`, in the order of the
lectures (that of `keras_adaptive.optimizers.ALL_OPTIMIZERS`). A generic test
is parametrized over the rows (``@pytest.mark.parametrize("row", ROWS,
ids=row_id)``) and reads what it needs from them: the arguments that train
the small test models, the float64 NumPy references, the invalid values, and
the capability flags. No generic test names an optimizer: where one class
behaves differently, a flag of its row says so.

Adding an optimizer:

1. **Its module.** ``keras_adaptive/optimizers/NAME.py``, a subclass of
   `keras_adaptive.optimizers.Optimizer` registered with
   ``@keras.saving.register_keras_serializable(package="keras_adaptive")``,
   listed in ``ALL_OPTIMIZERS`` (see ``docs/contributing.md``).
2. **Its reference.** A function in ``tests/references.py`` that returns the
   float64 NumPy step rule, written from the paper's equations and not from
   the package's code.
3. **Its row.** An `OptimizerInfo` in `ROWS`, at the class's place in
   ``ALL_OPTIMIZERS``:

   * ``cls``, ``kwargs``: the class and the arguments that train the small
     test models of ``tests/models.py`` well in a few steps;
   * ``state``: the kind of per-weight state its `kwargs` give it, one of
     `STATE_KINDS` (add a new kind there); where CI time allows only a
     subset, a test runs one row per kind (`one_row_per_state`);
   * ``references``: one `Reference` per exactness case (the defaults, then
     every option changed): an id suffix, the constructor arguments, the
     reference rule, and the branches the case must take;
   * ``invalid``: for each of the class's own hyperparameters, invalid values
     and the valid range the error message must state (`SHARED_INVALID`
     holds those of the keywords every class takes);
   * the flags, where they differ from the defaults: ``schedulable``,
     ``full_batch``, ``rate_is_initial_step``, ``sign_only``,
     ``multi_replica``, ``model_parallel``, ``sparse_rows``,
     ``sparse_bitwise``.

   Every generic test then covers it; `test_exactness.py` fails for a class
   of ``ALL_OPTIMIZERS`` without a row, or a row without a reference case.
4. **Its docs row.** A page ``docs/optimizers/NAME.md`` and a row in the
   table of ``docs/optimizers.md`` (and ``README.md``).

``tests/test_table_extension.py`` runs every generic test on a toy row
appended to this table (one module-level class and one row), which checks
that these steps are all a new optimizer needs.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from references import (
    adadelta,
    adagrad,
    adam,
    adamax,
    constant,
    delta_bar_delta,
    lbfgs,
    nadam,
    ramp,
    rmsprop,
    rprop,
    sgd,
)

from keras_adaptive import optimizers
from keras_adaptive.schedules import MomentumRamp

#: The kinds of per-weight state of the rows, from the simplest.
STATE_KINDS = (
    "none",  # plain gradient descent
    "velocity",  # one running sum of steps
    "squared-gradient sum",
    "squared-gradient average",
    "squared-gradient and step averages",
    "moments",  # first and second moments of the gradient
    "gains",  # a gain per weight, from gradient sign agreement
    "sign steps",  # a step size per weight, from gradient signs
    "curvature memory",  # pairs of steps and gradient changes
)


@dataclass(frozen=True)
class Reference:
    """One exactness case: `cls(**kwargs)` against the float64 `rule`."""

    #: Appended to the row's id: ``"momentum"`` gives ``SGD-momentum``; ""
    #: for the case with the row's id itself.
    suffix: str
    kwargs: dict
    rule: Callable
    #: Branches the rule must record in ``state["hits"]`` on its problem.
    branches: frozenset = frozenset()


@dataclass(frozen=True, eq=False)
class OptimizerInfo:
    """What the generic tests know of one optimizer class."""

    cls: type
    #: Arguments that train the small test models well in a few steps.
    kwargs: dict
    #: The kind of per-weight state with `kwargs`: one of `STATE_KINDS`.
    state: str
    #: The float64 exactness cases; at least one.
    references: tuple
    #: The class's own invalid values: keyword -> (values, the valid range
    #: stated by the message); an interval such as "[0.0, 1.0)" for a float.
    invalid: dict = field(default_factory=dict)
    #: Hyperparameters that may be a schedule of the iteration count.
    schedulable: tuple = ()
    #: Trains only on full batches (sign-based and quasi-Newton methods).
    full_batch: bool = False
    #: The learning rate is read once, as the initial step size, not at
    #: every step.
    rate_is_initial_step: bool = False
    #: The update uses only the gradient's sign: on PyTorch sign(NaN) = 0, so
    #: a NaN gradient does not reach the weights.
    sign_only: bool = False
    #: Runs under a `tf.distribute` strategy with several replicas; if not,
    #: it raises ValueError "cannot run under a tf.distribute" there.
    multi_replica: bool = True
    #: Runs under `keras.distribution.ModelParallel` with its state sharded
    #: like the weights; if not, it raises ValueError naming ModelParallel.
    model_parallel: bool = True
    #: Keyword arguments with which a sparse gradient updates only its rows
    #: of the weight (by a scatter); `None` where the update is always dense.
    sparse_rows: dict | None = None
    #: A sparse gradient gives the dense gradient's result bit for bit; if
    #: not (a step linear in the gradient, which scatters each duplicate
    #: row's step), up to the rounding of one addition per duplicate.
    sparse_bitwise: bool = True

    @property
    def id(self) -> str:
        return self.cls.__name__

    def make(self, **overrides):
        return self.cls(**{**self.kwargs, **overrides})

    @property
    def all_invalid(self) -> dict:
        """The invalid values of every keyword the class takes."""
        return {**SHARED_INVALID, **self.invalid}

    def cases(self):
        """(id, reference) of each exactness case."""
        return [
            ("-".join(filter(None, (self.id, reference.suffix))), reference)
            for reference in self.references
        ]


def row_id(value):
    """The pytest id of a parameter: a row's id; pytest's own for others."""
    return value.id if isinstance(value, OptimizerInfo) else None


def one_row_per_state(*kinds):
    """The first row of each kind of state, in the table's order: the subset
    for tests too costly to run on every row."""
    firsts = {}
    for row in ROWS:
        firsts.setdefault(row.state, row)
    missing = set(kinds) - set(firsts)
    assert not missing, f"no row keeps the state {sorted(missing)}"
    return [row for kind, row in firsts.items() if kind in kinds]


def rows_of_state(kind):
    """Every row with this kind of state, in the table's order."""
    rows = [row for row in ROWS if row.state == kind]
    assert rows, f"no row keeps the state {kind!r}"
    return rows


NAN = math.nan

#: Invalid values of the keywords every class takes (the base class's and
#: Keras's), with the range the error message must state.
SHARED_INVALID = {
    "learning_rate": ([-0.1, NAN, "0.1", None], "[0.0, inf)"),
    "l2": ([-1e-4, NAN], "[0.0, inf)"),
    "weight_decay": ([-1e-4, NAN], "[0.0, inf)"),
    "clipnorm": ([0.0, -1.0], "(0.0, inf)"),
    "clipvalue": ([0.0, -1.0], "(0.0, inf)"),
    "global_clipnorm": ([0.0, -1.0], "(0.0, inf)"),
    "ema_momentum": ([-0.1, 1.5], "[0.0, 1.0]"),
    "loss_scale_factor": ([0.0, -2.0], "(0.0, inf)"),
    "gradient_accumulation_steps": ([1, 0, 2.5], "integer >= 2"),
    "ema_overwrite_frequency": ([0, 1.5], "integer >= 1"),
    "state_dtype": (["float64", "int8"], "one of"),
    "update_order": (["sometimes", True], "one of"),
}

# Invalid values shared by several classes' own hyperparameters.
MOMENTUM = ([-0.1, 1.0, 1.5, NAN], "[0.0, 1.0)")
DECAY_RATE = ([-0.1, 1.0, NAN], "[0.0, 1.0)")
EPSILON = ([0.0, -1e-8, NAN], "(0.0, inf)")
BOOLEAN = (["yes", 1], "True or False")
ADAM_FAMILY = {"beta_1": DECAY_RATE, "beta_2": DECAY_RATE, "epsilon": EPSILON}

#: The momentum ramp of the exactness cases: 0.5 raised to 0.99 in 20 steps.
RAMP = (0.5, 0.99, 20)

ROWS = [
    OptimizerInfo(
        optimizers.SGD,
        {"learning_rate": 0.1},
        state="none",
        references=(
            Reference("", {"learning_rate": 0.1}, sgd()),
            Reference(
                "momentum", {"learning_rate": 0.05, "momentum": 0.9}, sgd(constant(0.9))
            ),
            Reference(
                "nesterov",
                {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True},
                sgd(constant(0.8), nesterov=True),
            ),
        ),
        invalid={"momentum": MOMENTUM, "nesterov": BOOLEAN},
        schedulable=("momentum",),
        sparse_rows={},
        sparse_bitwise=False,
    ),
    OptimizerInfo(
        optimizers.Momentum,
        {"learning_rate": 0.05},
        state="velocity",
        references=(
            Reference("", {"learning_rate": 0.05}, sgd(constant(0.9))),
            Reference(
                "ramp",
                {"learning_rate": 0.05, "momentum": MomentumRamp(*RAMP)},
                sgd(ramp(*RAMP)),
            ),
        ),
        invalid={"momentum": MOMENTUM},
        schedulable=("momentum",),
    ),
    OptimizerInfo(
        optimizers.Nesterov,
        {"learning_rate": 0.05},
        state="velocity",
        references=(
            Reference("", {"learning_rate": 0.05}, sgd(constant(0.9), nesterov=True)),
            Reference(
                "ramp",
                {"learning_rate": 0.05, "momentum": MomentumRamp(*RAMP)},
                sgd(ramp(*RAMP), nesterov=True),
            ),
        ),
        invalid={"momentum": MOMENTUM},
        schedulable=("momentum",),
    ),
    OptimizerInfo(
        optimizers.Adagrad,
        {"learning_rate": 0.1},
        state="squared-gradient sum",
        references=(
            Reference("", {"learning_rate": 0.1}, adagrad()),
            Reference(
                "initial-epsilon",
                {
                    "learning_rate": 0.1,
                    "initial_accumulator_value": 0.1,
                    "epsilon": 1e-3,
                },
                adagrad(0.1, 1e-3),
            ),
        ),
        invalid={
            "epsilon": EPSILON,
            "initial_accumulator_value": ([-0.1, NAN], "[0.0, inf)"),
        },
        sparse_rows={},
    ),
    # The momentum of RMSprop is a float only: it is not schedulable.
    OptimizerInfo(
        optimizers.RMSprop,
        {"learning_rate": 0.01},
        state="squared-gradient average",
        references=(
            Reference("", {"learning_rate": 0.01}, rmsprop()),
            Reference(
                "momentum",
                {"learning_rate": 0.01, "momentum": 0.9},
                rmsprop(momentum=0.9),
            ),
            Reference(
                "centered",
                {"learning_rate": 0.01, "centered": True},
                rmsprop(centered=True),
            ),
            Reference(
                "centered-momentum-epsilon",
                {
                    "learning_rate": 0.01,
                    "rho": 0.5,
                    "momentum": 0.5,
                    "centered": True,
                    "epsilon": 1e-3,
                },
                rmsprop(rho=0.5, momentum=0.5, centered=True, epsilon=1e-3),
            ),
        ),
        invalid={
            "momentum": MOMENTUM,
            "rho": DECAY_RATE,
            "epsilon": EPSILON,
            "centered": BOOLEAN,
        },
        sparse_rows={"centered": True},
    ),
    OptimizerInfo(
        optimizers.Adadelta,
        {"learning_rate": 1.0},
        state="squared-gradient and step averages",
        references=(
            Reference("", {}, adadelta()),
            Reference(
                "rho-epsilon",
                {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-3},
                adadelta(0.9, 1e-3),
            ),
        ),
        invalid={"rho": DECAY_RATE, "epsilon": EPSILON},
        sparse_rows={},
    ),
    OptimizerInfo(
        optimizers.Adam,
        {"learning_rate": 0.01},
        state="moments",
        references=(
            Reference("", {"learning_rate": 0.01}, adam()),
            Reference(
                "amsgrad",
                {"learning_rate": 0.01, "amsgrad": True},
                adam(amsgrad=True),
            ),
            Reference(
                "epsilon",
                {"learning_rate": 0.01, "epsilon": 1e-2, "beta_2": 0.99},
                adam(beta_2=0.99, epsilon=1e-2),
            ),
            Reference(
                "beta1-ramp",
                {"learning_rate": 0.01, "beta_1": MomentumRamp(*RAMP)},
                adam(beta_1=ramp(*RAMP)),
            ),
        ),
        invalid={**ADAM_FAMILY, "amsgrad": BOOLEAN},
        schedulable=("beta_1",),
    ),
    OptimizerInfo(
        optimizers.Adamax,
        {"learning_rate": 0.02},
        state="moments",
        references=(
            Reference("", {}, adamax()),
            Reference(
                "epsilon-ramp",
                {"learning_rate": 0.2, "epsilon": 1e-2, "beta_1": MomentumRamp(*RAMP)},
                adamax(beta_1=ramp(*RAMP), epsilon=1e-2),
            ),
        ),
        invalid=ADAM_FAMILY,
        schedulable=("beta_1",),
    ),
    OptimizerInfo(
        optimizers.Nadam,
        {"learning_rate": 0.01},
        state="moments",
        references=(
            Reference("", {"learning_rate": 0.01}, nadam()),
            Reference(
                "fast-warmup",
                {"learning_rate": 0.01, "momentum_decay": 0.5, "epsilon": 1e-3},
                nadam(psi=0.5, epsilon=1e-3),
            ),
            Reference(
                "beta1-ramp",
                {"learning_rate": 0.01, "beta_1": MomentumRamp(*RAMP)},
                nadam(beta_1=ramp(*RAMP)),
            ),
        ),
        invalid={**ADAM_FAMILY, "momentum_decay": ([-0.004, NAN], "[0.0, inf)")},
        schedulable=("beta_1",),
    ),
    OptimizerInfo(
        optimizers.DeltaBarDelta,
        {"learning_rate": 0.05},
        state="gains",
        references=(
            Reference(
                "",
                {"learning_rate": 0.1},
                delta_bar_delta(),
                frozenset({"grow", "shrink"}),
            ),
            Reference(
                "clipped",
                {
                    "learning_rate": 0.1,
                    "increment": 0.1,
                    "decay": 0.7,
                    "min_gain": 0.6,
                    "max_gain": 1.25,
                },
                delta_bar_delta(increment=0.1, decay=0.7, min_gain=0.6, max_gain=1.25),
                frozenset({"grow", "shrink", "max", "min"}),
            ),
            Reference(
                "momentum-clipped",
                {
                    "learning_rate": 0.05,
                    "momentum": 0.8,
                    "min_gain": 0.8,
                    "max_gain": 1.1,
                },
                delta_bar_delta(min_gain=0.8, max_gain=1.1, momentum=constant(0.8)),
                frozenset({"grow", "shrink", "max", "min"}),
            ),
            Reference(
                "momentum-ramp",
                {"learning_rate": 0.05, "momentum": MomentumRamp(*RAMP)},
                delta_bar_delta(momentum=ramp(*RAMP)),
                frozenset({"grow", "shrink"}),
            ),
        ),
        invalid={
            "momentum": MOMENTUM,
            "increment": ([-0.05, NAN], "[0.0, inf)"),
            "decay": ([0.0, -0.5, 1.5, NAN], "(0.0, 1.0]"),
            "min_gain": ([0.0, -0.1, NAN], "(0.0, inf)"),
            "max_gain": ([0.05, -1.0, NAN], "[0.1, inf)"),
        },
        schedulable=("momentum",),
    ),
    OptimizerInfo(
        optimizers.Rprop,
        {"learning_rate": 0.01},
        state="sign steps",
        references=(
            Reference(
                "", {"learning_rate": 0.01}, rprop(), frozenset({"grow", "shrink"})
            ),
            Reference(
                "clipped",
                {
                    "learning_rate": 0.01,
                    "eta_minus": 0.4,
                    "eta_plus": 1.3,
                    "min_step": 0.004,
                    "max_step": 0.015,
                },
                rprop(eta_minus=0.4, eta_plus=1.3, min_step=0.004, max_step=0.015),
                frozenset({"grow", "shrink", "max", "min"}),
            ),
        ),
        invalid={
            "eta_minus": ([0.0, 1.0, NAN], "(0.0, 1.0)"),
            "eta_plus": ([1.0, 0.5, NAN], "(1.0, inf)"),
            "min_step": ([0.0, -1e-6, NAN], "(0.0, inf)"),
            "max_step": ([1e-7, -1.0, NAN], "[1e-06, inf)"),
        },
        full_batch=True,
        rate_is_initial_step=True,
        sign_only=True,
    ),
    OptimizerInfo(
        optimizers.LBFGS,
        {"learning_rate": 1.0},
        state="curvature memory",
        references=(
            Reference(
                "", {"learning_rate": 0.5}, lbfgs(), frozenset({"accept", "wrap"})
            ),
            Reference(
                "history-5",
                {"learning_rate": 0.5, "history_size": 5, "curvature_epsilon": 0.2},
                lbfgs(history_size=5, curvature_epsilon=0.2),
                frozenset({"accept", "skip", "wrap"}),
            ),
        ),
        invalid={
            "curvature_epsilon": ([-1e-10, NAN], "[0.0, inf)"),
            "history_size": ([0, 2.5, True], "integer >= 1"),
        },
        full_batch=True,
        multi_replica=False,
        model_parallel=False,
    ),
]
