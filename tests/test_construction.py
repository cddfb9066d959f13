"""Construction: bad input is refused with a clear message; lookup by name;
configs round-trip."""

import inspect
import math
import re
import sys

import hypothesis
import hypothesis.strategies as st
import keras
import numpy as np
import pytest
from optimizer_table import ROWS, STATE_KINDS, row_id

import keras_adaptive
from keras_adaptive import optimizers
from keras_adaptive.schedules import MomentumRamp

KERAS_BASE_KEYWORDS = {
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "ema_momentum",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "ema_overwrite_frequency",
    "l2",
    "state_dtype",
    "update_order",
}


def keywords(cls):
    own = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    return own | KERAS_BASE_KEYWORDS


def invalid_cases():
    for row in ROWS:
        for name, (values, valid) in row.all_invalid.items():
            for value in values:
                yield pytest.param(
                    row, name, value, valid, id=f"{row.id}-{name}={value!r}"
                )


@pytest.mark.parametrize("row, name, value, valid", list(invalid_cases()))
def test_invalid_value_is_refused_with_its_range(row, name, value, valid):
    kwargs = {**row.kwargs, name: value}
    if name == "ema_overwrite_frequency":
        kwargs["use_ema"] = True
    with pytest.raises(ValueError) as error:
        row.cls(**kwargs)
    message = str(error.value)
    assert f"`{name}`" in message
    assert f"{name}={value!r}" in message
    assert valid in message
    assert row.id in message


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_unknown_keyword_is_refused(row):
    with pytest.raises(ValueError, match=r"unknown keyword argument\(s\) \['lr'\]"):
        row.cls(lr=0.1)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_every_hyperparameter_has_an_invalid_case(row):
    """Each float, integer and boolean hyperparameter of the class has invalid
    values in its row, and the row lists no keyword the class does not take."""
    for name, parameter in inspect.signature(row.cls.__init__).parameters.items():
        if isinstance(parameter.default, (float, int)):
            assert name in row.all_invalid, f"{row.id}.{name} has no invalid values"
    assert set(row.all_invalid) <= keywords(row.cls)
    assert row.state in STATE_KINDS


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_boundary_values_are_accepted(row):
    accepted = {
        "learning_rate": 0.0,
        "momentum": 0.0,
        "rho": 0.0,
        "beta_1": 0.0,
        "beta_2": 0.0,
        "initial_accumulator_value": 0.0,
        "momentum_decay": 0.0,
    }
    names = keywords(row.cls)
    given = {k: v for k, v in accepted.items() if k in names}
    optimizer = row.cls(**given)
    for name, value in given.items():
        stored = getattr(optimizer, name)
        if name == "learning_rate":
            stored = float(keras.ops.convert_to_numpy(stored))
        assert stored == value and type(stored) is float, name
    # An int rate is a float rate.
    rate = row.cls(learning_rate=3).learning_rate
    assert float(keras.ops.convert_to_numpy(rate)) == 3.0


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_schedules_are_accepted_where_documented(row):
    for name in row.schedulable:
        optimizer = row.cls(**{name: MomentumRamp()})
        assert isinstance(getattr(optimizer, name), MomentumRamp)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert row.cls(learning_rate=schedule)._learning_rate is schedule


@pytest.mark.parametrize(
    "row", [row for row in ROWS if not row.rate_is_initial_step], ids=row_id
)
def test_callable_learning_rate_is_read_at_every_step(row):
    rate = {"value": 0.0}
    optimizer = row.make(learning_rate=lambda: rate["value"])
    variable = keras.Variable(np.ones(3, "float32"))
    gradient = np.array([0.5, -1.0, 2.0], "float32")
    optimizer.apply([gradient], [variable])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), np.ones(3))
    rate["value"] = 0.01
    optimizer.apply([gradient], [variable])
    assert not np.allclose(keras.ops.convert_to_numpy(variable), np.ones(3))


def test_rprop_reads_a_callable_rate_as_its_initial_step():
    """Rprop's rate is the initial step size, taken at the first step only."""
    optimizer = optimizers.Rprop(learning_rate=lambda: 0.05)
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer.apply([np.array([0.5, -1.0, 2.0], "float32")], [variable])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(variable), [0.95, 1.05, 0.95], rtol=1e-6
    )


@pytest.mark.parametrize("cls", [optimizers.Momentum, optimizers.Nesterov])
def test_presets_refuse_nesterov(cls):
    with pytest.raises(ValueError, match="`nesterov` is fixed to"):
        cls(nesterov=True)


def test_rmsprop_momentum_is_a_float_only():
    with pytest.raises(ValueError, match="`momentum` must be a float in"):
        optimizers.RMSprop(momentum=MomentumRamp())


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_lookup_by_registered_name_and_by_get(row):
    registered = keras.saving.get_registered_name(row.cls)
    assert registered.endswith(f">{row.id}")
    assert type(keras.optimizers.get(registered)) is row.cls
    assert type(optimizers.get(registered)) is row.cls


def test_package_classes_are_found_by_their_names():
    """The package's classes: registered as ``keras_adaptive>Name``, found by
    their bare lower-case name, exported at the top level."""
    for cls in optimizers.ALL_OPTIMIZERS:
        name = cls.__name__
        assert keras.saving.get_registered_name(cls) == f"keras_adaptive>{name}"
        assert type(keras.optimizers.get(f"keras_adaptive>{name}")) is cls
        assert type(optimizers.get(name.lower())) is cls
        assert getattr(keras_adaptive, name) is cls


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_serialize_deserialize_and_get_round_trip(row):
    optimizer = row.make(l2=1e-3)
    config = optimizers.serialize(optimizer)
    assert config == keras.optimizers.serialize(optimizer)
    for restored in (
        optimizers.deserialize(config),
        optimizers.get(config),
        keras.optimizers.deserialize(config),
    ):
        assert type(restored) is row.cls
        assert restored.get_config() == optimizer.get_config()
    assert optimizers.get(optimizer) is optimizer


def test_get_follows_keras_for_everything_else():
    assert optimizers.get(None) is None
    # (On PyTorch Keras returns backend subclasses of its classes.)
    assert isinstance(optimizers.get("adamw"), keras.optimizers.AdamW)
    assert isinstance(optimizers.get("Lion"), keras.optimizers.Lion)
    keras_adam = keras.optimizers.serialize(keras.optimizers.Adam(learning_rate=0.5))
    restored = optimizers.get(keras_adam)
    assert isinstance(restored, keras.optimizers.Adam)
    assert not isinstance(restored, optimizers.Optimizer)
    assert float(restored.learning_rate) == 0.5
    # A bare name that both define gives the package's class.
    assert type(optimizers.get("adam")) is optimizers.Adam
    assert type(optimizers.get("rmsprop", rho=0.8)) is optimizers.RMSprop


@pytest.mark.parametrize(
    "identifier, message",
    [
        ("nonexistent", "no optimizer named 'nonexistent'"),
        (3, "`identifier` must be None, an optimizer"),
        ({"config": {}}, "must be a dict with a 'class_name'"),
    ],
)
def test_get_refuses_what_it_cannot_interpret(identifier, message):
    with pytest.raises(ValueError, match=message):
        optimizers.get(identifier)


def test_get_refuses_keywords_without_a_name():
    with pytest.raises(ValueError, match="keyword arguments go with an optimizer"):
        optimizers.get(optimizers.SGD(), learning_rate=0.1)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_config_round_trip(row):
    optimizer = row.make(
        weight_decay=0.01,
        clipnorm=1.5,
        use_ema=True,
        ema_momentum=0.95,
        gradient_accumulation_steps=3,
        l2=0.002,
        state_dtype="bfloat16",
        name="custom",
    )
    config = optimizer.get_config()
    restored = row.cls.from_config(config)
    assert type(restored) is row.cls
    assert restored.get_config() == config
    for key in ("weight_decay", "clipnorm", "ema_momentum", "l2", "state_dtype"):
        assert config[key] == getattr(optimizer, key)
    serialized = keras.optimizers.serialize(optimizer)
    assert keras.saving.get_registered_object(serialized["registered_name"]) is row.cls
    assert keras.optimizers.deserialize(serialized).get_config() == config


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_config_round_trip_with_schedules(row):
    kwargs = {
        "learning_rate": keras.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
    }
    for name in row.schedulable:
        kwargs[name] = MomentumRamp(0.5, 0.99, ramp_steps=50, start_step=5)
    config = keras.optimizers.serialize(row.make(**kwargs))
    restored = keras.optimizers.deserialize(config)
    steps = keras.ops.convert_to_tensor([0, 7, 30, 200])
    for name in kwargs:
        original = kwargs[name]
        value = getattr(restored, name if name != "learning_rate" else "_learning_rate")
        assert type(value) is type(original)
        assert keras.ops.all(keras.ops.isclose(value(steps), original(steps)))


def test_momentum_ramp_values():
    ramp = MomentumRamp(0.5, 0.9, ramp_steps=100, start_step=10)
    steps = [0, 10, 35, 60, 110, 1000]
    got = keras.ops.convert_to_numpy(ramp(keras.ops.convert_to_tensor(steps)))
    expected = [0.5, 0.5, 0.5 + 0.4 * (1 - math.cos(math.pi / 4)) / 2, 0.7, 0.9, 0.9]
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initial_momentum": 1.0}, "`initial_momentum` must be a float in [0.0, 1.0)"),
        ({"final_momentum": -0.5}, "`final_momentum` must be a float in [0.0, 1.0)"),
        ({"ramp_steps": 0}, "`ramp_steps` must be an integer >= 1"),
        ({"ramp_steps": 10.5}, "`ramp_steps` must be an integer >= 1"),
        ({"start_step": -1}, "`start_step` must be an integer >= 0"),
    ],
)
def test_momentum_ramp_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError) as error:
        MomentumRamp(**kwargs)
    assert message in str(error.value)


def parse_interval(text):
    """'[0.0, 1.0)' -> a predicate for membership."""
    match = re.fullmatch(r"([\[(])(.+), (.+)([\])])", text)
    opening, low, high, closing = match.groups()
    low, high = float(low), float(high)

    def contains(value):
        above = value >= low if opening == "[" else value > low
        below = value <= high if closing == "]" else value < high
        return above and below

    return contains


# A lower bound is checked against its upper partner: lift the partner.
UPPER_PARTNER = {
    "min_gain": {"max_gain": sys.float_info.max},
    "min_step": {"max_step": sys.float_info.max},
}


def is_interval(text):
    return re.fullmatch(r"[\[(].+, .+[\])]", text) is not None


FUZZ_CASES = [
    pytest.param(row, name, id=f"{row.id}-{name}")
    for row in ROWS
    for name, (_, valid) in row.all_invalid.items()
    if is_interval(valid) and name != "ema_momentum"
]


@pytest.mark.parametrize("row, name", FUZZ_CASES)
@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_is_accepted_exactly_when_in_range(row, name, value):
    interval = row.all_invalid[name][1]
    kwargs = {**row.kwargs, name: value, **UPPER_PARTNER.get(name, {})}
    valid = parse_interval(interval)(value)
    if name == "learning_rate":
        valid = valid and value <= float(np.finfo("float32").max)
    if valid:
        optimizer = row.cls(**kwargs)
        stored = getattr(optimizer, name, None)
        if name == "learning_rate":
            stored = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            value = float(np.float32(value))
        assert stored == value
    else:
        with pytest.raises(ValueError, match=f"`{name}` must be"):
            row.cls(**kwargs)


def snake_case(class_name):
    """Keras's default-name rule: CamelCase to snake_case."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_default_names_are_unique_snake_case_as_keras_gives_them(row):
    first, second = row.cls(), row.cls()
    stem = snake_case(row.cls.__name__)
    assert first.name != second.name
    for optimizer in (first, second):
        assert re.fullmatch(rf"{stem}(_\d+)?", optimizer.name), optimizer.name
    keras_class = getattr(keras.optimizers, row.cls.__name__, None)
    if keras_class is not None:
        assert re.fullmatch(rf"{stem}(_\d+)?", keras_class().name)
    for restored in (
        row.cls.from_config(second.get_config()),
        optimizers.deserialize(optimizers.serialize(second)),
        keras.optimizers.deserialize(keras.optimizers.serialize(second)),
    ):
        assert type(restored) is row.cls
        assert restored.name == second.name
