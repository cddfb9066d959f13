"""Names that moved in 0.3.0 still work for one release, with a warning
that names the new place."""

import importlib
import sys

import pytest

import keras_adaptive
from keras_adaptive import callbacks, optimizers, range_test, schedules

MOVED_NAMES = [
    ("ExponentialRamp", schedules.ExponentialRamp, "keras_adaptive.schedules"),
    ("ScaledLearningRate", schedules.ScaledLearningRate, "keras_adaptive.schedules"),
    (
        "LearningRateRangeResult",
        range_test.LearningRateRangeResult,
        "keras_adaptive.range_test",
    ),
    ("find_learning_rate", range_test.find_learning_rate, "keras_adaptive.range_test"),
]


@pytest.mark.parametrize(
    ("name", "obj", "new_module"), MOVED_NAMES, ids=[m[0] for m in MOVED_NAMES]
)
def test_old_callbacks_names_warn_and_are_the_moved_objects(name, obj, new_module):
    with pytest.warns(DeprecationWarning, match=rf"use {new_module}\.{name}"):
        assert getattr(callbacks, name) is obj
    assert name not in callbacks.__all__


MOVED_MODULES = [
    (
        "keras_adaptive.optimizers.gains",
        {"DeltaBarDelta": optimizers.DeltaBarDelta},
        "keras_adaptive.optimizers.delta_bar_delta",
    ),
    (
        "keras_adaptive.callbacks.range_test",
        {
            "ExponentialRamp": schedules.ExponentialRamp,
            "find_learning_rate": range_test.find_learning_rate,
        },
        "keras_adaptive.range_test",
    ),
]


@pytest.mark.parametrize(
    ("module", "names", "new_module"), MOVED_MODULES, ids=[m[0] for m in MOVED_MODULES]
)
def test_old_modules_warn_and_export_the_moved_objects(module, names, new_module):
    sys.modules.pop(module, None)
    expected = rf"{module} is deprecated: use {new_module}.*removed in .*0\.4\.0"
    with pytest.warns(DeprecationWarning, match=expected):
        old = importlib.import_module(module)
    for name, obj in names.items():
        assert getattr(old, name) is obj


def test_unknown_callbacks_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'CoolDown'"):
        callbacks.CoolDown  # noqa: B018


def test_top_level_exports_the_range_test():
    assert keras_adaptive.find_learning_rate is range_test.find_learning_rate
    assert keras_adaptive.LearningRateRangeResult is range_test.LearningRateRangeResult
