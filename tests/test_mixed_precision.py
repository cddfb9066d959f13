"""Mixed precision: every optimizer trains under `mixed_float16` (float32
variables, float16 compute, loss scaling by `LossScaleOptimizer`) and with
bfloat16 variables (slots in bfloat16, updates computed in float32)."""

import keras
import numpy as np
import pytest
from models import batch_size, dense_model, regression_data
from optimizer_table import ROWS, row_id


def fit_under(policy, row):
    keras.mixed_precision.set_dtype_policy(policy)
    model = dense_model()
    model.compile(optimizer=row.make(), loss="mse", jit_compile=True)
    x, y = regression_data()
    history = model.fit(
        x, y, batch_size=batch_size(row), epochs=6, shuffle=False, verbose=0
    )
    return model, history.history["loss"]


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_trains_under_mixed_float16_with_loss_scaling(row):
    model, losses = fit_under("mixed_float16", row)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert type(model.optimizer.inner_optimizer) is row.cls
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    assert all(w.dtype == "float32" for w in model.get_weights())
    assert int(model.optimizer.inner_optimizer.iterations) > 0


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_trains_with_bfloat16_variables(row):
    model, losses = fit_under("bfloat16", row)
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    assert all(
        keras.backend.standardize_dtype(v.dtype) == "bfloat16"
        for v in model.trainable_variables
    )
    # Every non-scalar optimizer variable is state kept per weight: it takes
    # the variables' dtype. A row of state "none" keeps none.
    state = [v for v in model.optimizer.variables if len(v.shape) > 0]
    assert bool(state) == (row.state != "none")
    assert all(keras.backend.standardize_dtype(v.dtype) == "bfloat16" for v in state)
