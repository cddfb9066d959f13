"""Does a timing difference follow the compiled step or the arrays? (JAX)

`Nesterov` compiles to the same HLO as Keras's `SGD(momentum=0.9,
nesterov=True)` (the same fusions reading the same arrays) and its variables
have the same structure, so either compiled step can update either
optimizer's arrays. Three rows, interleaved rounds as in `update_step.py`:

* **same arrays, the two steps**: ours and Keras's compiled step take turns
  on one set of arrays (Keras's). A ratio away from 1 is the code's.
* **same step, the two sets of arrays**: Keras's compiled step on the arrays
  of ours and on those of Keras's, each set left where it was allocated, as
  `update_step.py` did before it moved the arrays every round. A ratio away
  from 1 is where the arrays lie in memory, nothing else.
* **the same, arrays moved before every round**: as the row above, with both
  sets copied to fresh memory (in turn first) before each round, as
  `update_step.py` now does.

    KERAS_BACKEND=jax python benchmarks/placement.py --rounds 60 \\
        --out benchmarks/results/update_step_10m_placement_jax.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import keras
import update_step as u
from _timing import Comparison, interleave, markdown_table, write_json

from keras_adaptive import optimizers


def _compiled_step(optimizer: keras.optimizers.Optimizer, shapes):
    """`optimizer` built on fresh variables, its jitted step and its arrays."""
    import jax.numpy as jnp

    variables = [keras.Variable(w) for w in u._arrays(shapes, seed=1, scale=0.05)]
    optimizer.build(variables)
    state = {
        "optimizer": [jnp.array(v.value, copy=True) for v in optimizer.variables],
        "trainable": [jnp.array(v.value, copy=True) for v in variables],
    }
    return u.jax_step(optimizer), state


def _moving(runs):
    def before_round(r: int) -> None:
        for run in runs[r % 2 :] + runs[: r % 2]:
            run.relocate()

    return before_round


def run_placement(params: int, tensors: int, rounds: int) -> list[Comparison]:
    """The three rows described in the module docstring."""
    import jax.numpy as jnp

    if keras.backend.backend() != "jax":
        raise RuntimeError(
            "placement.py measures JAX's donated arrays: KERAS_BACKEND=jax"
        )
    shapes = u.tensor_shapes(params, tensors)
    grads = [jnp.asarray(g) for g in u._arrays(shapes, seed=2, scale=0.01)]
    ours_step, ours_state = _compiled_step(optimizers.Nesterov(), shapes)
    keras_step, keras_state = _compiled_step(
        keras.optimizers.SGD(momentum=0.9, nesterov=True), shapes
    )
    rows = [
        (
            "Nesterov: same arrays (Keras's), ours / Keras's step",
            "Keras's compiled step on the same arrays",
            u.jax_runner(ours_step, keras_state, grads),
            u.jax_runner(keras_step, keras_state, grads),
            False,
        ),
        (
            "Nesterov: Keras's step, arrays of ours / of Keras's, in place",
            "the same step on Keras's arrays",
            u.jax_runner(keras_step, ours_state, grads),
            u.jax_runner(keras_step, keras_state, grads),
            False,
        ),
        (
            "Nesterov: Keras's step, arrays of ours / of Keras's, moved",
            "the same step on Keras's arrays",
            u.jax_runner(keras_step, ours_state, grads),
            u.jax_runner(keras_step, keras_state, grads),
            True,
        ),
    ]
    results = []
    for name, baseline, run_a, run_b, move in rows:
        run_a(2)
        run_b(2)
        slowest = max(
            min(u.seconds_per_unit(run, 3) for _ in range(3)) for run in (run_a, run_b)
        )
        steps = max(1, round(0.1 / slowest))
        comparison = Comparison(name, baseline, "step", steps)
        before_round = _moving([run_a, run_b]) if move else None
        results.append(interleave(comparison, run_a, run_b, rounds, None, before_round))
        print(results[-1].progress(), file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--tensors", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results = run_placement(args.params, args.tensors, args.rounds)
    print(markdown_table(results))
    if args.out is not None:
        settings = {"parameters": args.params, "tensors": args.tensors}
        write_json(args.out, {**settings, "rounds": args.rounds}, results)


if __name__ == "__main__":
    main()
