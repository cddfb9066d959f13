"""A/A and swapped-order checks of update-step timings (JAX or TensorFlow).

For rows whose compiled HLO is the same as Keras's (`Nesterov`, `Nadam`),
times the same optimizer against itself, and Keras's against ours with
Keras's built (its arrays allocated) first, at 10 million parameters in 10
tensors. A ratio away from 1 in these rows comes from the order in which the
arrays were allocated, not from the update's code.

    KERAS_BACKEND=jax python benchmarks/allocation_order.py 60 \\
        benchmarks/results/update_step_10m_allocation_order_jax.json
"""

import sys

import keras
import update_step as u
from _timing import Comparison, interleave, markdown_table, write_json

from keras_adaptive import optimizers as ours

shapes = u.tensor_shapes(10_000_000, 10)
k = keras.optimizers
rows = {
    "Nesterov A/A (ours vs ours)": (ours.Nesterov, ours.Nesterov),
    "Nesterov, Keras built first": (
        lambda: k.SGD(momentum=0.9, nesterov=True),
        ours.Nesterov,
    ),
    "Nadam A/A (ours vs ours)": (ours.Nadam, ours.Nadam),
    "Nadam, Keras built first": (k.Nadam, ours.Nadam),
}
NOTE = (
    "'ours' columns: the optimizer built (allocated) first; "
    "'keras' columns: the one built second"
)


def main() -> None:
    rounds, out = int(sys.argv[1]), sys.argv[2]
    results = []
    for name, (first, second) in rows.items():
        run_a = u.make_stepper(first(), shapes)
        run_b = u.make_stepper(second(), shapes)
        run_a(2)
        run_b(2)
        slowest = max(
            min(u.seconds_per_unit(run, 3) for _ in range(3)) for run in (run_a, run_b)
        )
        steps = max(1, round(0.1 / slowest))
        comparison = Comparison(name, "the second-built optimizer", "step", steps)
        results.append(interleave(comparison, run_a, run_b, rounds))
        print(results[-1].progress(), file=sys.stderr, flush=True)
    print(markdown_table(results))
    settings = {"parameters": 10_000_000, "rounds": rounds, "note": NOTE}
    write_json(out, settings, results)


if __name__ == "__main__":
    main()
