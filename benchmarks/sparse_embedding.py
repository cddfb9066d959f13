"""Update step of an embedding table with a sparse gradient, against Keras.

One step of `optimizer.apply` on an ``Embedding(1_000_000, 64)`` table
(256 MB in float32) with the sparse gradient of a batch of 256 looked-up ids
(a `tf.IndexedSlices` on TensorFlow, a row-sparse `BCOO` on JAX; the ids
drawn with repeats), compiled as `fit` compiles it (`tf.function` with
``jit_compile=True``; `jax.jit` of `stateless_apply` with the state donated).
For `SGD`, `Adagrad`, `RMSprop` and `Adadelta` three competitors are timed
in interleaved rounds:

* ours: this package's optimizer, which sums duplicate ids and updates only
  the touched rows of the weights (and of Adagrad's accumulator);
* keras: Keras's optimizer of the same name on the gradient Keras's trainer
  gives it: the same `tf.IndexedSlices` on TensorFlow, the dense gradient on
  JAX (JAX differentiates a lookup into a dense array, and Keras's JAX
  Adagrad cannot take a `BCOO` under `jax.jit`);
* dense: this package's optimizer given the dense gradient (the sparse one
  summed into a 1,000,000 x 64 array), the update every step made before
  sparse gradients were kept sparse.

The table reports ours / keras and dense / keras per step (median of the
per-round ratios). RMSprop and Adadelta keep running averages that decay
every row at every step, so their steps stay proportional to the table for
everyone; SGD and Adagrad touch 256 rows. Usage::

    KERAS_BACKEND=tensorflow python benchmarks/sparse_embedding.py --rounds 15
    KERAS_BACKEND=jax python benchmarks/sparse_embedding.py --rounds 15
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import (  # noqa: E402
    Comparison,
    markdown_table,
    seconds_per_unit,
    write_json,
)
from update_step import jax_runner, jax_step  # noqa: E402

from keras_adaptive import optimizers  # noqa: E402
from keras_adaptive.optimizers import sparse  # noqa: E402

ROWS, WIDTH, BATCH = 1_000_000, 64, 256
NAMES = ("SGD", "Adagrad", "RMSprop", "Adadelta")


def table_and_gradient(seed: int = 0):
    """The initial table and the batch's sparse gradient (ids with repeats)."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((ROWS, WIDTH), dtype="float32") * 0.05
    ids = rng.integers(0, ROWS // 1000, size=BATCH) * 997  # about 20 repeats
    values = rng.standard_normal((BATCH, WIDTH), dtype="float32") * 0.01
    return table, ids.astype("int32"), values


def sparse_gradient(ids, values):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.IndexedSlices(
            tf.constant(values),
            tf.constant(ids, "int64"),
            tf.constant([ROWS, WIDTH], "int64"),
        )
    from jax.experimental import sparse as jax_sparse

    return jax_sparse.BCOO((values, ids[:, None]), shape=(ROWS, WIDTH))


def make_stepper(optimizer, table, gradient, xla=True) -> Callable[[int], None]:
    """`run(n)`: n compiled steps of `optimizer` on its own copy of `table`."""
    variable = keras.Variable(table.copy(), name="embeddings")
    optimizer.build([variable])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=xla)
        def step(gradient):
            optimizer.apply([gradient], [variable])
            return optimizer.iterations.value

        def run(n: int) -> None:
            for _ in range(n):
                done = step(gradient)
            done.numpy()

        return run
    import jax.numpy as jnp

    state = {
        "optimizer": [jnp.array(v.value, copy=True) for v in optimizer.variables],
        "trainable": [jnp.array(variable.value, copy=True)],
    }
    return jax_runner(jax_step(optimizer), state, [gradient])


def compare(name: str, rounds: int, steps: int | None) -> tuple[Comparison, ...]:
    table, ids, values = table_and_gradient()
    gradient = sparse_gradient(ids, values)
    dense_gradient = sparse.to_dense(gradient)
    # Keras's JAX trainer differentiates an embedding lookup into a dense
    # gradient (and Keras's JAX Adagrad cannot take a BCOO under jit): its
    # baseline there is the dense gradient that `fit` gives it.
    on_jax = keras.backend.backend() == "jax"
    keras_gradient = dense_gradient if on_jax else gradient
    runs = {
        "ours": make_stepper(getattr(optimizers, name)(), table, gradient),
        "keras": make_stepper(getattr(keras.optimizers, name)(), table, keras_gradient),
        "dense": make_stepper(getattr(optimizers, name)(), table, dense_gradient),
    }
    baseline = f"keras {name}" + (" (dense gradient)" if on_jax else "")
    try:
        runs["keras"](2)
    except Exception as error:
        if on_jax or "xla" not in str(error).lower():
            raise
        # XLA cannot compile Keras's step; a tf.function without XLA runs it.
        runs["keras"] = make_stepper(
            getattr(keras.optimizers, name)(), table, keras_gradient, xla=False
        )
        baseline += " (without XLA, which fails on its step)"
    for run in runs.values():
        run(2)
    if steps is None:
        slowest = max(
            min(seconds_per_unit(run, 3) for _ in range(3)) for run in runs.values()
        )
        steps = max(1, round(0.2 / slowest))
    ours = Comparison(name, baseline, "step", steps)
    dense = Comparison(f"{name} (dense gradient)", baseline, "step", steps)
    sides = [("ours", ours, "ours"), ("keras", None, "keras"), ("dense", dense, "ours")]
    for r in range(rounds):
        # The three in rotating order: none always follows the same one.
        timed = {}
        for key, _, _ in sides[r % 3 :] + sides[: r % 3]:
            wall, cpu = time.perf_counter(), time.process_time()
            runs[key](steps)
            timed[key] = (
                (time.perf_counter() - wall) / steps,
                (time.process_time() - cpu) / steps,
            )
        for key, comparison, side in sides:
            if comparison is None:
                continue
            for target, (wall, cpu) in ((side, timed[key]), ("keras", timed["keras"])):
                getattr(comparison, target).append(wall)
                getattr(comparison, f"{target}_cpu").append(cpu)
    return ours, dense


def run_benchmark(
    names: Sequence[str] = NAMES, rounds: int = 15, steps: int | None = None
) -> list[Comparison]:
    results = []
    for name in names:
        for comparison in compare(name, rounds, steps):
            print(comparison.progress(), flush=True)
            results.append(comparison)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="*", default=list(NAMES), choices=NAMES)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = run_benchmark(args.names, args.rounds, args.steps)
    print(markdown_table(results))
    if args.json is not None:
        settings = {"rows": ROWS, "width": WIDTH, "batch": BATCH, "rounds": args.rounds}
        write_json(args.json, settings, results)


if __name__ == "__main__":
    main()
