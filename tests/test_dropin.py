"""`keras_adaptive.optimizers` can replace `keras.optimizers` in any script.

Every public name of the installed `keras.optimizers` resolves in
`keras_adaptive.optimizers`: to the package's own class or function where it
has one, and otherwise to Keras's object itself.
"""

import inspect

import keras
import pytest

from keras_adaptive import optimizers

#: The names of `keras.optimizers` for which the package has its own object.
OWN = {
    "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "Adamax", "Nadam",
    "Optimizer", "get", "serialize", "deserialize",
}  # fmt: skip

KERAS_NAMES = sorted(n for n in dir(keras.optimizers) if not n.startswith("_"))


def test_keras_names_include_the_ones_users_reach_for():
    # A guard on the enumeration itself: these are in every Keras 3 release.
    assert {"AdamW", "Lion", "Ftrl", "LossScaleOptimizer", "schedules"} <= set(
        KERAS_NAMES
    )
    assert set(KERAS_NAMES) >= OWN


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_every_public_name_of_keras_optimizers_resolves(name):
    ours = getattr(optimizers, name)
    theirs = getattr(keras.optimizers, name)
    if name not in OWN:
        assert ours is theirs
        assert name in dir(optimizers)
    elif inspect.isclass(theirs):
        assert ours is not theirs and issubclass(ours, keras.optimizers.Optimizer)
        assert ours.__module__.startswith("keras_adaptive.optimizers")
    else:
        assert ours is not theirs and callable(ours)


def test_from_import_and_a_keras_script_run_unchanged():
    from keras_adaptive.optimizers import AdamW, schedules

    decay = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    variable = keras.Variable([1.0, -2.0])
    optimizer = AdamW(learning_rate=decay, weight_decay=0.0)
    optimizer.apply([keras.ops.convert_to_tensor([1.0, 1.0])], [variable])
    # Adam's first step moves each weight by the rate against the gradient
    # (up to Keras's epsilon and float32's rounding of 1 - beta_2 = 1e-3).
    assert keras.ops.convert_to_numpy(variable).tolist() == pytest.approx(
        [0.9, -2.1], abs=2e-6
    )
    assert isinstance(optimizers.get("lion"), keras.optimizers.Lion)


def test_an_unknown_name_raises_attribute_error_naming_both_modules():
    with pytest.raises(AttributeError, match="'AdamX'.*keras.optimizers"):
        optimizers.AdamX  # noqa: B018
    with pytest.raises(AttributeError):
        optimizers._private_name  # noqa: B018
