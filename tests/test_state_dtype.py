"""Low-precision optimizer state (`state_dtype`), on every optimizer.

The slot variables are stored in bfloat16 or float16 while the model's
variables stay float32 and every update is computed in float32 (as optax's
`mu_dtype` does for Adam's first moment). The state then takes half the
bytes, and a small model still trains under XLA.
"""

import keras
import numpy as np
import pytest
from models import batch_size, dense_model, regression_data
from optimizer_table import ROWS, row_id

LOW = ("bfloat16", "float16")
CASES = [
    pytest.param(row, dtype, id=f"{row.id}-{dtype}") for row in ROWS for dtype in LOW
]


def dtype_of(variable) -> str:
    return keras.backend.standardize_dtype(variable.dtype)


def state_variables(optimizer):
    """The optimizer's per-weight state: every non-scalar variable (scalars
    are the iteration count, the rate and bookkeeping such as Adam's
    log-product of decay rates or L-BFGS's memory counters)."""
    return [v for v in optimizer.variables if len(v.shape) > 0]


def state_bytes(optimizer) -> int:
    return sum(
        int(np.prod(v.shape))
        * np.dtype(dtype_of(v).replace("bfloat16", "float16")).itemsize
        for v in state_variables(optimizer)
    )


def fit(optimizer, row):
    model = dense_model()
    model.compile(optimizer=optimizer, loss="mse", jit_compile=True)
    x, y = regression_data()
    history = model.fit(
        x, y, batch_size=batch_size(row), epochs=6, shuffle=False, verbose=0
    )
    return model, history.history["loss"]


FLOAT32_LOSSES = {}


def float32_losses(row):
    """The losses of the same training with float32 state, computed once."""
    if row.id not in FLOAT32_LOSSES:
        FLOAT32_LOSSES[row.id] = fit(row.make(), row)[1]
    return FLOAT32_LOSSES[row.id]


@pytest.mark.parametrize("row, dtype", CASES)
def test_slots_have_the_requested_dtype_and_the_model_trains(row, dtype):
    model, losses = fit(row.make(state_dtype=dtype), row)
    optimizer = model.optimizer
    state = state_variables(optimizer)
    assert all(dtype_of(v) == dtype for v in state), [
        (v.path, dtype_of(v)) for v in state if dtype_of(v) != dtype
    ]
    assert all(dtype_of(w) == "float32" for w in model.trainable_variables)
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
    for value in model.get_weights():
        assert value.dtype == np.float32
        assert np.all(np.isfinite(value))
    # The same training as with float32 state, within the rounding of the
    # state. A curvature memory used without a line search (L-BFGS) can,
    # once rounded, change which steps overshoot: there the best loss
    # reached is compared.
    if row.state == "curvature memory":
        assert min(losses) == pytest.approx(min(float32_losses(row)), rel=0.05)
    else:
        np.testing.assert_allclose(losses, float32_losses(row), rtol=0.05)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_low_precision_state_halves_the_bytes(row):
    variables = [
        keras.Variable(np.ones(shape, "float32")) for shape in ((5, 8), (8,), (3,))
    ]
    full, half = row.make(), row.make(state_dtype="bfloat16")
    full.build(variables)
    half.build(variables)
    assert state_bytes(half) * 2 == state_bytes(full)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_default_state_follows_the_variables(row):
    optimizer = row.make()
    optimizer.build([keras.Variable(np.ones((3, 2), "float32"))])
    assert all(dtype_of(v) == "float32" for v in state_variables(optimizer))
    optimizer = row.make()
    optimizer.build([keras.Variable(np.ones((3, 2), "bfloat16"))])
    assert all(dtype_of(v) == "bfloat16" for v in state_variables(optimizer))
    optimizer = row.make(state_dtype="float32")
    optimizer.build([keras.Variable(np.ones((3, 2), "bfloat16"))])
    assert all(dtype_of(v) == "float32" for v in state_variables(optimizer))
