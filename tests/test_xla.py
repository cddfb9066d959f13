"""XLA: the compiled train step gives the same weights as the uncompiled one,
and is traced once per fit, also with schedules for the rate and momentum.

Runs on TensorFlow (`tf.function` with `jit_compile=True`) and JAX
(`jax.jit`); the PyTorch backend runs these steps eagerly, which the rest of
the suite covers.
"""

import keras
import numpy as np
import pytest
from models import batch_size, dense_model, regression_data
from optimizer_table import ROWS, row_id, rows_of_state

from keras_adaptive.schedules import MomentumRamp

pytestmark = pytest.mark.compiled

EPOCHS = 3


def count_traces(model):
    """Wraps `model.train_step`: its Python body runs once per trace."""
    traces = []
    train_step = model.train_step

    def counted(*args, **kwargs):
        traces.append(1)
        return train_step(*args, **kwargs)

    model.train_step = counted
    return traces


def fit(row, jit_compile, optimizer=None):
    x, y = regression_data()
    model = dense_model()
    model.compile(
        optimizer=optimizer or row.make(),
        loss="mse",
        jit_compile=jit_compile,
    )
    traces = count_traces(model)
    history = model.fit(
        x, y, batch_size=batch_size(row), epochs=EPOCHS, shuffle=False, verbose=0
    )
    return model, traces, history.history["loss"]


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_jit_and_no_jit_give_the_same_weights(row):
    compiled, traces, losses = fit(row, jit_compile=True)
    plain, _, _ = fit(row, jit_compile=False)
    assert len(traces) == 1, f"train step traced {len(traces)} times"
    assert losses[-1] < losses[0], "the model must train"
    for a, b in zip(compiled.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(compiled.optimizer.iterations) == int(plain.optimizer.iterations)


def schedule_driven(row):
    kwargs = {
        "learning_rate": keras.optimizers.schedules.ExponentialDecay(
            row.make().learning_rate.numpy().item(), decay_steps=4, decay_rate=0.7
        )
    }
    for name in row.schedulable:
        kwargs[name] = MomentumRamp(0.5, 0.95, ramp_steps=8)
    return row.make(**kwargs)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_schedules_trace_once_and_match_eager(row):
    compiled, traces, _ = fit(row, True, optimizer=schedule_driven(row))
    plain, _, _ = fit(row, False, optimizer=schedule_driven(row))
    assert len(traces) == 1, f"train step traced {len(traces)} times"
    for a, b in zip(compiled.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_momentum_schedule_changes_the_trajectory_inside_the_compiled_step():
    """A schedule evaluated at trace time only would act as a constant: the
    ramp must give different weights from both of its end values."""
    row = next(r for r in rows_of_state("velocity") if "momentum" in r.schedulable)
    results = []
    for momentum in (0.5, MomentumRamp(0.5, 0.95, ramp_steps=8), 0.95):
        model, _, _ = fit(row, True, optimizer=row.make(momentum=momentum))
        results.append(model.get_weights()[0])
    assert not np.allclose(results[1], results[0], rtol=1e-4)
    assert not np.allclose(results[1], results[2], rtol=1e-4)
