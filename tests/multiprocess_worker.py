"""One process of a multi-process data-parallel run, and the one-process run.

`multiprocess_launcher.py` starts this module as a script twice, as
process 0 and 1 of a two-process job on 127.0.0.1 in a network namespace
whose only interface is loopback; `test_multiprocess.py` also imports it to
train the same model in one process on the whole global batch:

    python multiprocess_worker.py PROCESS_ID OUT_DIR ADDRESS [ADDRESS]

`KERAS_BACKEND` picks the engine. TensorFlow: `MultiWorkerMirroredStrategy`
with the two worker `ADDRESS`es, trained by a custom loop that calls
`optimizer.apply` inside `strategy.run` (Keras's `fit` raises under that
strategy). JAX: `jax.distributed.initialize` with the coordinator at the
one `ADDRESS` and CPU collectives over gloo, then `model.fit` under
`keras.distribution.DataParallel` over both processes' devices. Each
process trains on its half of every global batch and writes the final
weights of every optimizer to `OUT_DIR/process<ID>.npz` (keys
`<optimizer>/<index>`), and the message of every optimizer that
refused to run to `OUT_DIR/process<ID>-refusals.json`. A worker ends itself
after `LIFETIME_S` seconds, whatever it is doing.
"""

import json
import os
import signal
import sys
from pathlib import Path

import keras
import numpy as np

from keras_adaptive import optimizers

GLOBAL_BATCH, FEATURES, PROCESSES, STEPS = 32, 4, 2, 5
#: Seconds after which a worker process ends itself, whatever it is doing.
LIFETIME_S = 180

#: The optimizers compared, with the arguments they are made with; LBFGS
#: trains on the full batch, which every step here is.
OPTIMIZERS = {
    "Momentum": (optimizers.Momentum, {"learning_rate": 0.05, "l2": 0.1}),
    "Adam": (optimizers.Adam, {"learning_rate": 0.02}),
    "Rprop": (optimizers.Rprop, {"learning_rate": 0.02}),
    "LBFGS": (optimizers.LBFGS, {"learning_rate": 0.5, "history_size": 3}),
}


def data():
    """The global batch: every step trains on all of it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((GLOBAL_BATCH, FEATURES)).astype("float32")
    y = np.sin(x.sum(axis=1, keepdims=True)).astype("float32")
    return x, y


def local_half(array, process_id):
    """The part of the global batch that process `process_id` trains on."""
    size = GLOBAL_BATCH // PROCESSES
    return array[process_id * size : (process_id + 1) * size]


def make_model():
    """Dense(8, tanh) -> Dense(1), with the same initial weights everywhere.

    The seed is set first: under JAX's multi-process `DataParallel` every
    process must create each replicated variable from the same value."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    rng = np.random.default_rng(1)
    model.set_weights(
        [0.5 * rng.standard_normal(w.shape).astype("float32") for w in model.weights]
    )
    return model


def final_weights(model):
    """The weights as NumPy arrays, read without a DeprecationWarning: with
    NumPy 2.4, `np.array` of a Keras variable or of a TensorFlow tensor warns
    (neither takes NumPy's `copy` argument), and `get_weights` uses the
    first on JAX, TensorFlow's own `numpy()` on TensorFlow."""
    if keras.backend.backend() == "tensorflow":
        return model.get_weights()
    return [np.asarray(w.value) for w in model.weights]


def make_optimizer(name, **overrides):
    cls, kwargs = OPTIMIZERS[name]
    return cls(**{**kwargs, **overrides})


def train_tensorflow(name, x, y, strategy, **overrides):
    """A custom training loop under `strategy`; `x`, `y` are this worker's
    part of the global batch. The loss is summed over the part and divided
    by the global batch size, so that the gradients the strategy sums over
    the replicas are those of the mean loss over the global batch."""
    import tensorflow as tf

    with strategy.scope():
        model = make_model()
        optimizer = make_optimizer(name, **overrides)
        optimizer.build(model.trainable_variables)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            prediction = model(x, training=True)
            loss = tf.reduce_sum(tf.square(prediction - y)) / GLOBAL_BATCH
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)

    @tf.function
    def step(x, y):
        strategy.run(replica_step, args=(x, y))

    for _ in range(STEPS):
        step(x, y)
    return final_weights(model)


def train_fit(name, x, y, **overrides):
    """Keras's `fit`, one step per epoch on the batch `x`, `y` (this
    process's part of the global batch under a multi-process distribution)."""
    model = make_model()
    model.compile(optimizer=make_optimizer(name, **overrides), loss="mse")
    model.fit(x, y, batch_size=len(x), epochs=STEPS, shuffle=False, verbose=0)
    return final_weights(model)


def train_one_process(name, **overrides):
    """The reference: one process on the whole global batch, with the
    training loop the multi-process run uses on the current backend."""
    x, y = data()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return train_tensorflow(name, x, y, tf.distribute.get_strategy(), **overrides)
    return train_fit(name, x, y, **overrides)


def start_tensorflow(process_id, addresses):
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": addresses},
            "task": {"type": "worker", "index": process_id},
        }
    )
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == PROCESSES, strategy.num_replicas_in_sync
    return lambda name, x, y: train_tensorflow(name, x, y, strategy)


def start_jax(process_id, addresses):
    import jax

    # Gloo listens on the address of the host name, which the launcher sets
    # to `localhost` in the workers' namespace.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    (coordinator,) = addresses
    jax.distributed.initialize(
        coordinator_address=coordinator,
        coordinator_bind_address=coordinator,
        num_processes=PROCESSES,
        process_id=process_id,
        initialization_timeout=60,
    )
    devices = jax.devices()
    assert len(devices) == PROCESSES, devices
    assert jax.process_index() == process_id, jax.process_index()
    # Each process passes its own half of the global batch to `fit`.
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    )
    return train_fit


def main(process_id, out_dir, addresses):
    # Ends this process even if the test that started it is killed first
    # (SIGALRM's default action terminates it).
    signal.alarm(LIFETIME_S)
    backend = keras.backend.backend()
    start = start_tensorflow if backend == "tensorflow" else start_jax
    train = start(process_id, addresses)
    x, y = data()
    x, y = local_half(x, process_id), local_half(y, process_id)
    weights, refusals = {}, {}
    for name in OPTIMIZERS:
        try:
            final = train(name, x, y)
        except ValueError as error:
            refusals[name] = str(error)
            continue
        for index, value in enumerate(final):
            weights[f"{name}/{index}"] = value
    np.savez(out_dir / f"process{process_id}.npz", **weights)
    (out_dir / f"process{process_id}-refusals.json").write_text(json.dumps(refusals))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
