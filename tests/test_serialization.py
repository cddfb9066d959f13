"""Saving and resuming: `model.save` then `keras.models.load_model` (no
`custom_objects`) restores each optimizer's class, hyperparameters, iteration
count and slots, and training continued after loading is bit-identical to
training that was never interrupted."""

import dataclasses

import keras
import numpy as np
import pytest
from models import batch_size, dense_model, numpy_values, regression_data
from optimizer_table import ROWS, row_id, rows_of_state

from keras_adaptive.schedules import MomentumRamp


def with_schedules(row, learning_rate, ramp, **kwargs):
    """The row with a schedule for its rate and for every hyperparameter
    that may be one."""
    scheduled = {"learning_rate": learning_rate, **kwargs}
    for name in row.schedulable:
        scheduled[name] = ramp
    return dataclasses.replace(row, kwargs=scheduled)


# The last row of a velocity and of two moments, the most elaborate of its
# kind (Nesterov's look-ahead; Nadam's warm-up reads beta_1 one step ahead).
VELOCITY, MOMENTS = (rows_of_state(kind)[-1] for kind in ("velocity", "moments"))
SCHEDULED = [
    with_schedules(
        VELOCITY,
        keras.optimizers.schedules.ExponentialDecay(0.05, 5, 0.8),
        MomentumRamp(0.5, 0.95, ramp_steps=10),
    ),
    with_schedules(
        MOMENTS,
        keras.optimizers.schedules.CosineDecay(0.01, 20),
        MomentumRamp(0.6, 0.9, ramp_steps=10),
        l2=1e-3,
        weight_decay=1e-2,
    ),
]


def compiled_model(row):
    model = dense_model()
    model.compile(optimizer=row.make(), loss="mse")
    return model


def train(model, row, epochs):
    x, y = regression_data()
    model.fit(x, y, batch_size=batch_size(row), epochs=epochs, shuffle=False, verbose=0)


@pytest.mark.parametrize(
    "row",
    [*ROWS, *(pytest.param(r, id=f"{r.id}-schedules") for r in SCHEDULED)],
    ids=row_id,
)
def test_save_load_and_resume_is_bit_identical(row, tmp_path):
    uninterrupted = compiled_model(row)
    train(uninterrupted, row, epochs=4)

    interrupted = compiled_model(row)
    train(interrupted, row, epochs=2)
    path = tmp_path / "model.keras"
    interrupted.save(path)
    loaded = keras.models.load_model(path)

    saved, restored = interrupted.optimizer, loaded.optimizer
    assert type(restored) is row.cls
    assert restored.get_config() == saved.get_config()
    assert int(restored.iterations) == int(saved.iterations) > 0
    assert len(restored.variables) == len(saved.variables)
    for a, b in zip(
        numpy_values(restored.variables), numpy_values(saved.variables), strict=True
    ):
        np.testing.assert_array_equal(a, b)

    train(loaded, row, epochs=2)
    for a, b in zip(loaded.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(loaded.optimizer.iterations) == int(uninterrupted.optimizer.iterations)
