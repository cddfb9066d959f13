"""`skip_nonfinite=True`: a step with a NaN or Inf gradient is skipped whole.

The reference for every test is the run in which the bad step never
happened: the same gradients (or batches) with the bad one left out. The
skipping run must end with exactly those weights and optimizer variables,
for every optimizer row, alone and with clipping, EMA, gradient accumulation
and `LossScaleOptimizer`, in eager steps and inside the compiled `fit` step.
"""

import math

import keras
import numpy as np
import pytest
from conftest import BACKEND
from models import batch_size, dense_model, numpy_values, regression_data
from optimizer_table import ROWS, one_row_per_state, row_id

from keras_adaptive import optimizers

SHAPES = [(3,), (4, 2)]
STEPS, BAD_STEP = 8, 3
OPTIONS = {
    "plain": {},
    "global_clipnorm": {"global_clipnorm": 1.0},
    "clipnorm": {"clipnorm": 0.5},
    "ema": {"use_ema": True, "ema_momentum": 0.9},
    "accumulation": {"gradient_accumulation_steps": 2},
}


def gradients(bad_value, seed=0):
    """STEPS gradient lists; at BAD_STEP one element of one gradient is bad."""
    rng = np.random.default_rng(seed)
    steps = [
        [rng.standard_normal(s).astype("float32") for s in SHAPES] for _ in range(STEPS)
    ]
    steps[BAD_STEP][1][2, 1] = bad_value
    return steps


def run(optimizer, steps):
    rng = np.random.default_rng(1)
    variables = [
        keras.Variable(rng.standard_normal(s).astype("float32")) for s in SHAPES
    ]
    for step in steps:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step], variables)
    return variables


def state_without_counter(optimizer):
    return [
        keras.ops.convert_to_numpy(v)
        for v in optimizer.variables
        if v is not optimizer.skipped_steps
    ]


BAD_VALUES = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("option", OPTIONS, ids=list(OPTIONS))
@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_skipped_step_equals_the_run_without_it(row, option):
    # NaN, +Inf and -Inf in turn over the rows and options.
    bad_value = BAD_VALUES[(ROWS.index(row) + list(OPTIONS).index(option)) % 3]
    steps = gradients(bad_value)
    skipping = row.make(skip_nonfinite=True, **OPTIONS[option])
    weights = run(skipping, steps)

    reference = row.make(**OPTIONS[option])
    expected = run(reference, steps[:BAD_STEP] + steps[BAD_STEP + 1 :])

    for a, b in zip(numpy_values(weights), numpy_values(expected), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        state_without_counter(skipping), numpy_values(reference.variables), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert int(skipping.iterations) == int(reference.iterations)
    assert int(skipping.skipped_steps) == 1


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_without_the_option_the_bad_step_is_taken(row):
    """Keras's behaviour, kept as the default: the bad step is not skipped.
    Its NaN reaches the weights, except where the update uses only the
    gradient's sign and the backend's sign(NaN) is 0 (PyTorch)."""
    steps = gradients(math.nan)
    weights = numpy_values(run(row.make(), steps))[1]
    without = numpy_values(run(row.make(), steps[:BAD_STEP] + steps[BAD_STEP + 1 :]))
    if row.sign_only and BACKEND == "torch":
        assert np.all(np.isfinite(weights))
        assert not np.array_equal(weights, without[1])
    else:
        assert not np.all(np.isfinite(weights))


# Every row alone; under LossScaleOptimizer one row per kind of state (a
# velocity, two moments, sign-based steps, a curvature memory), each compiled
# case costing two XLA compilations.
LOSS_SCALE_STATES = ("velocity", "moments", "sign steps", "curvature memory")
FIT_CASES = [(row, False) for row in ROWS] + [
    (row, True) for row in one_row_per_state(*LOSS_SCALE_STATES)
]


@pytest.mark.parametrize(
    "row, loss_scale",
    FIT_CASES,
    ids=[
        f"{row.id}-{'loss_scale' if scaled else 'plain'}" for row, scaled in FIT_CASES
    ],
)
def test_skipping_inside_the_compiled_fit_step(row, loss_scale):
    """One batch with a NaN input: `fit` (XLA on TensorFlow and JAX, eager on
    PyTorch) ends with the weights of the run on the other batches, to the
    last bit of float32. Wrapped in a `LossScaleOptimizer`, the wrapper skips
    the step itself and halves its scale (a power of two, so the unscaled
    gradients of later steps are exact) and the inner optimizer is left as
    without the bad batch."""
    x, y = regression_data()
    size = batch_size(row)
    bad = x.copy()
    # In the second batch; for full-batch rows the data set is doubled and its
    # second copy holds the NaN.
    bad[1 if row.full_batch else size + 1, 2] = np.nan
    if row.full_batch:
        bad_x, bad_y = np.concatenate([x, bad]), np.concatenate([y, y])
    else:
        bad_x, bad_y = bad, y
    keep = np.ones(len(bad_x), bool)
    keep[size : 2 * size] = False  # the batch holding the NaN

    def fit(inputs, targets, **kwargs):
        model = dense_model()
        optimizer = row.make(**kwargs)
        if loss_scale:
            optimizer = keras.optimizers.LossScaleOptimizer(
                optimizer, initial_scale=2.0**4
            )
        model.compile(optimizer=optimizer, loss="mse", jit_compile=BACKEND != "torch")
        model.fit(inputs, targets, batch_size=size, epochs=2, shuffle=False, verbose=0)
        return model

    skipping = fit(bad_x, bad_y, skip_nonfinite=True)
    reference = fit(bad_x[keep], bad_y[keep])
    # The guarded step is another XLA program than the plain one; fusion may
    # round the last bit differently.
    for a, b in zip(skipping.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    inner = getattr(skipping.optimizer, "inner_optimizer", skipping.optimizer)
    assert int(inner.skipped_steps) == (0 if loss_scale else 2)
    assert int(inner.iterations) == int(reference.optimizer.iterations)
    if loss_scale:
        assert float(skipping.optimizer.dynamic_scale) == 2.0**2


def test_counter_is_saved_and_restored(tmp_path):
    x, y = regression_data()
    x[3, 0] = np.nan
    model = dense_model()
    model.compile(optimizer=optimizers.Adam(skip_nonfinite=True), loss="mse")
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert int(model.optimizer.skipped_steps) == 3
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.optimizer.skip_nonfinite is True
    assert int(loaded.optimizer.skipped_steps) == 3
    for a, b in zip(
        numpy_values(loaded.optimizer.variables),
        numpy_values(model.optimizer.variables),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_counter_is_absent_without_the_option():
    optimizer = optimizers.SGD()
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    assert optimizer.skipped_steps is None
    assert optimizer.get_config()["skip_nonfinite"] is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_bad_skip_nonfinite_is_refused(value):
    with pytest.raises(ValueError, match=r"`skip_nonfinite` must be True or False"):
        optimizers.SGD(skip_nonfinite=value)
