"""Data-parallel training gives the weights of one device.

TensorFlow: `tf.distribute.MirroredStrategy` over the two logical CPU devices
that `conftest.py` creates. JAX: `keras.distribution.DataParallel` over two
host devices, in a subprocess (the device count must be set before JAX is
imported). Every optimizer row runs with coupled l2, decoupled weight decay,
a momentum schedule where it takes one, an Embedding layer (a sparse gradient
on TensorFlow) and a learning-rate policy; one row per kind of state once
more with bfloat16 state. A row that cannot run on several replicas must
refuse `MirroredStrategy` with a clear error.
The PyTorch backend has no data-parallel `fit`.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKEND
from distributed_cases import CASES, case_id, data, model, relative_difference, train
from optimizer_table import ROWS, rows_of_state

from keras_adaptive import optimizers

# bfloat16 state keeps 8 significant bits: a float32 rounding difference of
# the all-reduced gradient (about 1e-7) can move a state element to the
# neighbouring bfloat16 value, so those runs agree to 1e-3, not 1e-5.
TOLERANCE = {None: 1e-5, "bfloat16": 1e-3}
TESTS = Path(__file__).resolve().parent


def mirrored_strategy():
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) >= 2, f"conftest.py should create two CPU devices: {devices}"
    return tf.distribute.MirroredStrategy(devices[:2])


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "index, row, state_dtype",
    [(i, row, dtype) for i, (row, dtype) in enumerate(CASES)],
    ids=[case_id(row, dtype) for row, dtype in CASES],
)
def test_mirrored_strategy_equals_one_device(index, row, state_dtype):
    strategy = mirrored_strategy()
    if not row.multi_replica:
        with pytest.raises(ValueError, match="cannot run under a tf.distribute"):
            train(row, index, state_dtype, strategy=strategy)
        return
    single = train(row, index, state_dtype)
    mirrored = train(row, index, state_dtype, strategy=strategy)
    assert relative_difference(mirrored, single) <= TOLERANCE[state_dtype]


@pytest.mark.tensorflow_only
def test_l2_is_added_once_not_once_per_replica():
    """With l2 counted per replica, two replicas would act like l2 doubled."""
    row = rows_of_state("velocity")[0]
    strategy = mirrored_strategy()
    mirrored = train(row, 0, strategy=strategy)
    doubled = dataclasses.replace(row, kwargs={**row.kwargs, "l2": 2e-2})
    single_doubled = train(doubled, 0)
    single = train(row, 0)
    assert relative_difference(mirrored, single) <= 1e-5
    assert relative_difference(single_doubled, single) > 1e-3


@pytest.mark.tensorflow_only
def test_optimizer_made_outside_the_strategy_scope_is_refused():
    strategy = mirrored_strategy()
    optimizer = optimizers.Adam(learning_rate=0.01)
    with strategy.scope():
        net = model()
        net.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    x, y = data()
    with pytest.raises(ValueError, match="created under _DefaultDistributionStrategy"):
        net.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert int(optimizer.iterations) == 0


@pytest.mark.skipif(BACKEND != "jax", reason=f"JAX only; this run uses {BACKEND}")
def test_jax_data_parallel_equals_one_device():
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, str(TESTS / "distributed_cases.py")],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # One JSON record per line; other lines are what training prints (a
    # policy says when it restores weights, whatever `verbose`).
    records = [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")
    ]
    assert [r["case"] for r in records] == [case_id(r, d) for r, d in CASES]
    failures = {
        r["case"]: r["relative_difference"]
        for r in records
        if not r["relative_difference"] <= TOLERANCE[r["state_dtype"]]
    }
    assert all(r["devices"] == 2 for r in records)
    assert not failures, failures


def test_weights_are_finite_and_trained():
    """The comparison above is not vacuous: training moves every weight."""
    initial = [np.asarray(w) for w in model().get_weights()]
    final = train(ROWS[0], 0)
    for a, b in zip(initial, final, strict=True):
        assert np.all(np.isfinite(b))
        assert np.max(np.abs(a - b)) > 1e-3
