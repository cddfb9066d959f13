"""Keras's base-optimizer options on every optimizer of the package.

Each option must act exactly as Keras's base class defines it: the option on
the optimizer equals the plain optimizer fed with gradients (or weights)
transformed by the option's algebra, written here in NumPy. For plain SGD the
option is also compared with `keras.optimizers.SGD` itself.
"""

import keras
import numpy as np
import pytest
from models import numpy_values
from optimizer_table import ROWS, row_id

from keras_adaptive import optimizers

SHAPES = [(3,), (4, 2)]
STEPS = 6


def problem(seed=0):
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(s).astype("float32") for s in SHAPES]
    gradients = [
        [(2.0 * rng.standard_normal(s)).astype("float32") for s in SHAPES]
        for _ in range(STEPS)
    ]
    return initial, gradients


def run(optimizer, gradients, initial, before_step=None):
    variables = [keras.Variable(w) for w in initial]
    trajectory = []
    for step in gradients:
        if before_step is not None:
            before_step(optimizer, variables)
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step], variables)
        trajectory.append(numpy_values(variables))
    return variables, trajectory


def assert_same(a, b, rtol=1e-6):
    for x, y in zip(numpy_values(a), numpy_values(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-7)


def clip_norm(g, c):
    return g * c / max(np.linalg.norm(g), c)


def clip_global_norm(gs, c):
    norm = np.sqrt(sum(np.sum(g.astype("float64") ** 2) for g in gs))
    return [g * (c / max(norm, c)) for g in gs]


@pytest.mark.parametrize("row", ROWS, ids=row_id)
@pytest.mark.parametrize(
    "option, transform",
    [
        ("clipnorm", lambda gs: [clip_norm(g, 1.0) for g in gs]),
        ("clipvalue", lambda gs: [np.clip(g, -1.0, 1.0) for g in gs]),
        ("global_clipnorm", lambda gs: clip_global_norm(gs, 1.0)),
    ],
)
def test_clipping_acts_on_the_gradient(row, option, transform):
    initial, gradients = problem()
    clipped, _ = run(row.make(**{option: 1.0}), gradients, initial)
    expected, _ = run(row.make(), [transform(gs) for gs in gradients], initial)
    # Keras and NumPy sum the squares for the norm in different orders (one
    # float32 ulp apart); L-BFGS's recursion amplifies that 20-fold.
    assert_same(clipped, expected, rtol=1e-5 if row.full_batch else 1e-6)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_loss_scale_factor_unscales_the_gradient(row):
    initial, gradients = problem()
    scaled = [[1024.0 * g for g in gs] for gs in gradients]
    result, _ = run(row.make(loss_scale_factor=1024.0), scaled, initial)
    expected, _ = run(row.make(), gradients, initial)
    assert_same(result, expected)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_gradient_accumulation_averages_and_steps_every_n(row):
    initial, gradients = problem()
    optimizer = row.make(gradient_accumulation_steps=2)
    accumulated, trajectory = run(optimizer, gradients, initial)
    for w0, w in zip(initial, trajectory[0], strict=True):
        np.testing.assert_array_equal(w, w0)  # no update after one micro-step
    averaged = [
        [(a + b) / 2 for a, b in zip(g1, g2, strict=True)]
        for g1, g2 in zip(gradients[::2], gradients[1::2], strict=True)
    ]
    expected, _ = run(row.make(), averaged, initial)
    assert_same(accumulated, expected, rtol=2e-6)
    assert int(optimizer.iterations) == STEPS // 2


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_decoupled_weight_decay_shrinks_weights_before_the_update(row):
    initial, gradients = problem()
    wd = 0.1
    decayed, _ = run(row.make(weight_decay=wd), gradients, initial)

    def decay(optimizer, variables):
        lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        for v in variables:
            v.assign(v - lr * wd * v)

    expected, _ = run(row.make(), gradients, initial, before_step=decay)
    assert_same(decayed, expected)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_ema_tracks_the_weights_and_finalizes(row):
    initial, gradients = problem()
    momentum = 0.8
    optimizer = row.make(use_ema=True, ema_momentum=momentum)
    variables, _ = run(optimizer, gradients, initial)
    _, trajectory = run(row.make(), gradients, initial)
    # Keras: the average starts at the first updated weights, then
    # average <- momentum * average + (1 - momentum) * weights.
    average = [w.astype("float64") for w in trajectory[0]]
    for weights in trajectory[1:]:
        average = [
            momentum * a + (1 - momentum) * w
            for a, w in zip(average, weights, strict=True)
        ]
    optimizer.finalize_variable_values(variables)
    for got, want in zip(numpy_values(variables), average, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_ema_overwrite_frequency(row):
    initial, gradients = problem()
    optimizer = row.make(use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3)
    _, trajectory = run(optimizer, gradients, initial)
    averages = numpy_values(optimizer._model_variables_moving_average)
    # After step 6 (a multiple of 3) the weights were overwritten by the EMA.
    for w, a in zip(trajectory[-1], averages, strict=True):
        np.testing.assert_array_equal(w, a)


@pytest.mark.parametrize(
    "option",
    [
        {"clipnorm": 1.0},
        {"clipvalue": 0.5},
        {"global_clipnorm": 1.0},
        {"weight_decay": 0.1},
        {"gradient_accumulation_steps": 2},
        {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 2},
        {"loss_scale_factor": 8.0},
    ],
    ids=lambda option: "-".join(option),
)
def test_sgd_options_equal_keras_sgd(option):
    initial, gradients = problem()
    if "loss_scale_factor" in option:
        gradients = [[8.0 * g for g in gs] for gs in gradients]
    for momentum in (0.0, 0.9):
        ours, _ = run(
            optimizers.SGD(0.1, momentum=momentum, **option), gradients, initial
        )
        keras_sgd = keras.optimizers.SGD(0.1, momentum=momentum, **option)
        theirs, _ = run(keras_sgd, gradients, initial)
        assert_same(ours, theirs)
