"""One message convention for every refused argument of the package:
``Owner: `name` must be <valid>; received name=<value>.``, with the owner
taken from the class that received the argument (a user's subclass too)."""

import re

import keras
import pytest

import keras_adaptive as ka
from keras_adaptive import callbacks, optimizers, schedules

CONVENTION = r"^{owner}: `{name}` must be .+; received {name}={value}\.$"


def expect(owner, name, value):
    return CONVENTION.format(
        owner=re.escape(owner), name=re.escape(name), value=re.escape(repr(value))
    )


class MyAdam(optimizers.Adam):
    pass


class MyCoolDown(callbacks.CoolDownOnPlateau):
    pass


CASES = [
    (MyAdam, {"beta_2": 1.0}, "MyAdam", "beta_2"),
    (MyAdam, {"amsgrad": 1}, "MyAdam", "amsgrad"),
    (MyAdam, {"state_dtype": "int8"}, "MyAdam", "state_dtype"),
    (MyAdam, {"skip_nonfinite": "yes"}, "MyAdam", "skip_nonfinite"),
    (MyAdam, {"learning_rate": 1e39}, "MyAdam", "learning_rate"),
    (MyCoolDown, {"patience": -1}, "MyCoolDown", "patience"),
    (MyCoolDown, {"restore_best_weights": "no"}, "MyCoolDown", "restore_best_weights"),
    (callbacks.BoldDriver, {"revert": 0}, "BoldDriver", "revert"),
    (callbacks.BoldDriver, {"max_lr": float("nan")}, "BoldDriver", "max_lr"),
    (schedules.MomentumRamp, {"final_momentum": 1.0}, "MomentumRamp", "final_momentum"),
    (schedules.MomentumRamp, {"ramp_steps": 0}, "MomentumRamp", "ramp_steps"),
    (
        schedules.ScaledLearningRate,
        {"schedule": 0.1},
        "ScaledLearningRate",
        "schedule",
    ),
    (
        schedules.ExponentialRamp,
        {"min_lr": 1e-4, "max_lr": 1.0, "num_steps": 1},
        "ExponentialRamp",
        "num_steps",
    ),
]


@pytest.mark.parametrize(
    ("factory", "kwargs", "owner", "name"),
    CASES,
    ids=[f"{owner}-{name}" for _, _, owner, name in CASES],
)
def test_refused_argument_names_owner_parameter_value_and_range(
    factory, kwargs, owner, name
):
    with pytest.raises(ValueError, match=expect(owner, name, kwargs[name])):
        factory(**kwargs)


def test_bold_driver_accepts_an_unbounded_max_lr():
    assert callbacks.BoldDriver(max_lr=float("inf")).max_lr == float("inf")


def test_minimize_names_itself():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    with pytest.raises(ValueError, match=expect("minimize", "method", "newton")):
        ka.minimize(model, [[0.0]], [[0.0]], method="newton")
