"""Trains optimizers under `keras.distribution.ModelParallel` on two JAX CPU
devices and on one device; writes a JSON report.

Run by `tests/test_model_parallel.py` in a fresh process, because the number
of JAX CPU devices is fixed when JAX starts (``XLA_FLAGS`` is set below,
before JAX is imported). Usage: ``python model_parallel_case.py ROWS.json
OUT.json``, where ROWS.json lists the table rows to run as ``{"id",
"module", "name", "kwargs"}`` (the class by module and name).
"""

import importlib
import json
import os
import sys
from types import SimpleNamespace

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

SAMPLES, INPUTS, HIDDEN, OUTPUTS, EPOCHS = 32, 16, 64, 16, 3


def distribution():
    mesh = keras.distribution.DeviceMesh((1, 2), ("batch", "model"), jax.devices())
    layout_map = keras.distribution.LayoutMap(mesh)
    # The kernels are sharded over the "model" axis; the biases replicated.
    layout_map[".*hidden/kernel"] = (None, "model")
    layout_map[".*output/kernel"] = ("model", None)
    return keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, INPUTS)).astype("float32")
    y = (x @ rng.standard_normal((INPUTS, OUTPUTS)) / 4).astype("float32")
    return x, y


def train(row, under):
    """The trained model, created and trained under `under` (or no distribution)."""
    keras.utils.set_random_seed(1)
    keras.distribution.set_distribution(under)
    try:
        model = keras.Sequential(
            [
                keras.Input((INPUTS,)),
                keras.layers.Dense(HIDDEN, activation="tanh", name="hidden"),
                keras.layers.Dense(OUTPUTS, name="output"),
            ]
        )
        model.compile(optimizer=row.cls(**row.kwargs), loss="mse")
        x, y = data()
        model.fit(x, y, batch_size=SAMPLES, epochs=EPOCHS, shuffle=False, verbose=0)
        return model
    finally:
        keras.distribution.set_distribution(None)


def spec(variable):
    return str(variable.value.sharding.spec)


def bytes_on_first_device(variables):
    return sum(v.value.addressable_shards[0].data.nbytes for v in variables)


def report(row):
    try:
        sharded = train(row, distribution())
    except ValueError as error:
        return {"refused": str(error)}
    single = train(row, None)
    optimizer = sharded.optimizer
    slots = [
        {"weight": w.path, "weight_spec": spec(w), "slot_spec": spec(s)}
        for w in sharded.trainable_variables
        for s in optimizer.slots_of(w)
    ]
    per_weight = [s for w in sharded.trainable_variables for s in optimizer.slots_of(w)]
    return {
        "slots": slots,
        "weights_sharded": [spec(w) for w in sharded.trainable_variables],
        "state_bytes_per_device": bytes_on_first_device(optimizer.variables),
        "state_bytes_replicated": sum(v.value.nbytes for v in optimizer.variables),
        "per_weight_bytes_per_device": bytes_on_first_device(per_weight),
        "per_weight_bytes_replicated": sum(v.value.nbytes for v in per_weight),
        "max_difference": max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(sharded.get_weights(), single.get_weights(), strict=True)
        ),
    }


def load_rows(path):
    rows = []
    with open(path) as file:
        entries = json.load(file)
    for entry in entries:
        module = importlib.import_module(entry["module"])
        cls = getattr(module, entry["name"])
        rows.append(SimpleNamespace(id=entry["id"], cls=cls, kwargs=entry["kwargs"]))
    return rows


if __name__ == "__main__":
    assert len(jax.devices()) == 2, jax.devices()
    results = {row.id: report(row) for row in load_rows(sys.argv[1])}
    with open(sys.argv[2], "w") as file:
        json.dump(results, file, indent=1)
