"""Time per function evaluation of `keras_adaptive.minimize` against one
`fit` step on the same full batch.

The model is the 784-32-10 tanh MLP on MNIST (the first `--samples` images
of `--npz`, or random images of MNIST's shape with `--synthetic`). One round
times, in alternating order:

* ours: one `minimize(method="lbfgs")` run of `--iterations` iterations
  (200; tolerances 0, so that only a failed line search ends it earlier).
  The time per evaluation is the time between `on_train_begin` (after the
  first evaluation, which includes compiling the value-and-gradient
  function) and `on_train_end`, divided by the evaluations in between: the
  steady cost of an evaluation with the line search and the L-BFGS
  recursion around it. The whole run, compilation included, is reported
  too.
* keras: `--fit-steps` epochs of `model.fit` with `batch_size` equal to the
  number of samples (one step per epoch) and Keras's SGD, after one warm-up
  epoch: the cost of one full-batch training step as `fit` runs it.

A short untimed `minimize` run first takes the process's one-off costs
(JAX compiles each eager operation at its first use) out of the rounds.

The ratio ours / keras is taken within each round, in wall-clock and in
process CPU time; the medians over the rounds are printed and, with
`--out`, written as JSON with every raw timing.

    KERAS_BACKEND=jax python benchmarks/minimize_step.py \\
        --npz ../shared/data/mnist-subset.npz \\
        --out benchmarks/results/minimize_jax.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _timing import environment  # noqa: E402

import keras_adaptive as ka  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--npz", help="Keras-format MNIST .npz")
    source.add_argument(
        "--synthetic", action="store_true", help="random images of MNIST's shape"
    )
    parser.add_argument("--samples", type=int, default=19690)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--fit-steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    for name in ("samples", "hidden", "iterations", "fit_steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.synthetic:
        rng = np.random.default_rng(0)
        x = rng.random((args.samples, 784), dtype=np.float32)
        y = rng.integers(0, 10, args.samples).astype("int32")
        return x, y
    with np.load(args.npz) as data:
        x = data["x_train"][: args.samples].reshape(-1, 784).astype("float32")
        y = data["y_train"][: args.samples].astype("int32")
    return x / 255.0, y


def build(hidden: int, initial: list | None = None) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(10),
        ]
    )
    if initial is not None:
        model.set_weights(initial)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


class _Clock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.begin = (time.perf_counter(), time.process_time())

    def on_train_end(self, logs=None):
        self.end = (time.perf_counter(), time.process_time())


def time_minimize(args, initial, x, y) -> dict:
    """One minimize run: seconds per evaluation after the first, and totals."""
    model = build(args.hidden, initial)
    clock = _Clock()
    wall, cpu = time.perf_counter(), time.process_time()
    history = ka.minimize(
        model,
        x,
        y,
        max_iterations=args.iterations,
        gtol=0.0,
        ftol=0.0,
        callbacks=[clock],
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    evaluations = int(history.history["evaluations"][-1])
    steady = evaluations - 1
    return {
        "iterations": len(history.epoch),
        "evaluations": evaluations,
        "stop_reason": history.stop_reason,
        "final_loss": history.history["loss"][-1],
        "total_s": wall,
        "per_evaluation_s": (clock.end[0] - clock.begin[0]) / steady,
        "per_evaluation_cpu_s": (clock.end[1] - clock.begin[1]) / steady,
    }


def time_fit(args, initial, x, y) -> dict:
    """Seconds per full-batch fit step, after one warm-up step."""
    model = build(args.hidden, initial)
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=len(x), epochs=args.fit_steps, shuffle=False, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"per_step_s": wall / args.fit_steps, "per_step_cpu_s": cpu / args.fit_steps}


def run_benchmark(args: argparse.Namespace) -> dict:
    x, y = load(args)
    keras.utils.set_random_seed(0)
    initial = build(args.hidden).get_weights()
    # The first eager operations of a process compile (JAX) or initialise
    # kernels; a short untimed run takes that one-off cost out of the rounds.
    ka.minimize(build(args.hidden, initial), x, y, max_iterations=3)
    rounds = []
    for r in range(args.rounds):
        order = ["ours", "keras"] if r % 2 == 0 else ["keras", "ours"]
        result = {}
        for side in order:
            timer = time_minimize if side == "ours" else time_fit
            result[side] = timer(args, initial, x, y)
        result["ratio"] = (
            result["ours"]["per_evaluation_s"] / (result["keras"]["per_step_s"])
        )
        result["cpu_ratio"] = (
            result["ours"]["per_evaluation_cpu_s"] / (result["keras"]["per_step_cpu_s"])
        )
        print(
            f"round {r + 1}: {result['ours']['per_evaluation_s'] * 1e3:.2f} ms per "
            f"evaluation ({result['ours']['evaluations']} evaluations, "
            f"{result['ours']['iterations']} iterations), fit step "
            f"{result['keras']['per_step_s'] * 1e3:.2f} ms: ratio "
            f"{result['ratio']:.3f} (CPU {result['cpu_ratio']:.3f})",
            file=sys.stderr,
        )
        rounds.append(result)
    return {
        "environment": environment(),
        "settings": {
            key: getattr(args, key)
            for key in ("samples", "hidden", "iterations", "fit_steps", "rounds")
        }
        | {"data": "synthetic" if args.synthetic else "mnist"},
        "rounds": rounds,
        "ratio_median": float(np.median([r["ratio"] for r in rounds])),
        "cpu_ratio_median": float(np.median([r["cpu_ratio"] for r in rounds])),
        "ours_per_evaluation_ms_median": 1e3
        * float(np.median([r["ours"]["per_evaluation_s"] for r in rounds])),
        "fit_step_ms_median": 1e3
        * float(np.median([r["keras"]["per_step_s"] for r in rounds])),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    document = run_benchmark(args)
    print(
        f"backend {document['environment']['backend']}: minimize "
        f"{document['ours_per_evaluation_ms_median']:.2f} ms per evaluation, fit "
        f"{document['fit_step_ms_median']:.2f} ms per full-batch step; median "
        f"ratio {document['ratio_median']:.3f} (CPU time "
        f"{document['cpu_ratio_median']:.3f}; target <= 1.5)"
    )
    if args.out is not None:
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
