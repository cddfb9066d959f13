"""Training runs compared between one device and data-parallel replicas.

Shared by `test_distributed.py` (TensorFlow's `MirroredStrategy`, in process)
and by the JAX `keras.distribution.DataParallel` run, which must set the
number of host devices before JAX is imported and so runs this module as a
script in a subprocess: `python distributed_cases.py` prints one JSON line
per case with the largest relative difference from one device.
"""

import contextlib
import json

import keras
import numpy as np
from optimizer_table import ROWS, one_row_per_state

from keras_adaptive import callbacks
from keras_adaptive.schedules import MomentumRamp

SAMPLES, TOKENS, VOCABULARY = 64, 5, 12
EPOCHS = 4


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCABULARY, size=(SAMPLES, TOKENS)).astype("int32")
    y = rng.standard_normal((SAMPLES, 3)).astype("float32")
    return x, y


def model(seed=3):
    """Embedding (sparse gradient on TensorFlow) -> Dense (tanh) -> Dense."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((TOKENS,), dtype="int32"),
            keras.layers.Embedding(VOCABULARY, 4),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(3),
        ]
    )


def options(row, state_dtype=None):
    """The row's arguments with every generic option that data parallelism
    could get wrong: coupled l2 (added once, after the all-reduce), decoupled
    weight decay, a momentum schedule where the class takes one, and
    optionally low-precision state."""
    kwargs = {"l2": 1e-2, "weight_decay": 1e-3, **row.kwargs}
    for name in row.schedulable:
        kwargs[name] = MomentumRamp(0.5, 0.9, ramp_steps=10)
    if state_dtype is not None:
        kwargs["state_dtype"] = state_dtype
    return kwargs


def policy(index):
    """The two learning-rate policies, alternating over the rows, set to
    decide every epoch."""
    if index % 2 == 0:
        return callbacks.CoolDownOnPlateau(
            monitor="loss", patience=1, min_rel_delta=0.5, max_reductions=3
        )
    return callbacks.BoldDriver(monitor="loss", increase=1.1, decrease=0.5)


def train(row, index, state_dtype=None, strategy=None):
    """Final weights after `EPOCHS` epochs on the same global batches; with a
    `tf.distribute` strategy, the model and optimizer are made in its scope."""
    batch = SAMPLES if row.full_batch else 16
    x, y = data()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        net = model()
        optimizer = row.cls(**options(row, state_dtype))
        net.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    net.fit(
        x,
        y,
        batch_size=batch,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[policy(index)],
    )
    return [np.asarray(w, dtype="float64") for w in net.get_weights()]


def relative_difference(a, b):
    """Largest difference relative to the largest magnitude, over all tensors."""
    return max(
        float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30))
        for x, y in zip(a, b, strict=True)
    )


# Every row in float32; bfloat16 state for one row per kind of state (a
# velocity, two moments, a gain per weight, sign-based steps).
BFLOAT16_STATES = ("velocity", "moments", "gains", "sign steps")
CASES = [(row, None) for row in ROWS] + [
    (row, "bfloat16") for row in one_row_per_state(*BFLOAT16_STATES)
]


def case_id(row, state_dtype):
    return row.id if state_dtype is None else f"{row.id}-{state_dtype}"


def jax_data_parallel_main():
    """Every case on one device, then under `DataParallel` over all devices."""
    import jax

    devices = jax.devices()
    assert len(devices) >= 2, f"expected several host devices, got {devices}"
    for index, (row, state_dtype) in enumerate(CASES):
        keras.distribution.set_distribution(None)
        single = train(row, index, state_dtype)
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices)
        )
        parallel = train(row, index, state_dtype)
        keras.distribution.set_distribution(None)
        record = {
            "case": case_id(row, state_dtype),
            "devices": len(devices),
            "state_dtype": state_dtype,
            "relative_difference": relative_difference(parallel, single),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    jax_data_parallel_main()
