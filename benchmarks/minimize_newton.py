"""Newton-CG on the 784-32-10 tanh MLP: gradient evaluations and
Hessian-vector products to a training loss below 0.1 and 0.01.

All runs start from the same Keras-initialised weights (seed 0) and minimise
the same float32 objective, the mean softmax cross-entropy over the first
`--samples` images of `--npz` (or random images with `--synthetic`):

* `minimize(method="newton-cg")` and `minimize(method="trust-ncg")`;
* SciPy's `minimize(method="Newton-CG")` given this package's products:
  `jac` and `hessp` call `keras_adaptive.hessian_vector_product` on the
  same model, with SciPy's float64 iterate written into its weights;
* `minimize(method="lbfgs")`, which uses no products.

An iterate counts when its loss is below the threshold; the counts are the
evaluations (value and gradient) and products spent up to and including
that iteration. Every run of this package is checked to lower the loss at
every iteration. The table is printed and, with `--out`, written as JSON.

    KERAS_BACKEND=jax python benchmarks/minimize_newton.py \\
        --npz ../shared/data/mnist-subset.npz \\
        --out benchmarks/results/minimize_newton_jax.json
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
import scipy.optimize  # noqa: E402
from _timing import environment  # noqa: E402
from minimize_step import build, load  # noqa: E402

import keras_adaptive as ka  # noqa: E402

THRESHOLDS = (0.1, 0.01)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--npz", help="Keras-format MNIST .npz")
    source.add_argument(
        "--synthetic", action="store_true", help="random images of MNIST's shape"
    )
    parser.add_argument("--samples", type=int, default=19690)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--max-iterations", type=int, default=500)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    for name in ("samples", "hidden", "max_iterations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


class StopBelow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if logs["loss"] < THRESHOLDS[-1]:
            self.model.stop_training = True


def ours(method: str, model: keras.Model, x, y, max_iterations: int) -> dict:
    start = time.perf_counter()
    history = ka.minimize(
        model,
        x,
        y,
        method=method,
        max_iterations=max_iterations,
        callbacks=[StopBelow()],
    )
    seconds = time.perf_counter() - start
    logs = history.history
    losses = [history.initial_loss, *logs["loss"]]
    if any(b > a for a, b in zip(losses, losses[1:], strict=False)):
        raise AssertionError(f"{method}: the loss increased: {losses}")
    products = logs.get("hessian_vector_products", [0] * len(logs["loss"]))
    reached = {}
    for loss, evaluations, count in zip(
        logs["loss"], logs["evaluations"], products, strict=True
    ):
        for threshold in THRESHOLDS:
            if loss < threshold and threshold not in reached:
                reached[threshold] = (int(evaluations), int(count))
    return {
        "reached": {str(t): reached.get(t) for t in THRESHOLDS},
        "iterations": len(history.epoch),
        "final_loss": losses[-1],
        "stop_reason": history.stop_reason,
        "seconds": seconds,
    }


def scipy_newton_cg(model: keras.Model, x, y, max_iterations: int) -> dict:
    hvp = ka.hessian_vector_product(model, x, y)
    counts = {"evaluations": 0, "products": 0}
    reached = {}

    def write(theta):
        model.set_weights([a.astype("float32") for a in hvp.unflatten(theta)])

    def fun(theta):
        write(theta)
        counts["evaluations"] += 1
        return hvp.loss_and_gradient()

    def hessp(theta, p):
        write(theta)
        counts["products"] += 1
        return hvp(p)

    def record(intermediate_result):
        for threshold in THRESHOLDS:
            if intermediate_result.fun < threshold and threshold not in reached:
                reached[threshold] = (counts["evaluations"], counts["products"])
        if THRESHOLDS[-1] in reached:
            raise StopIteration

    start = time.perf_counter()
    weights = [w.astype(np.float64) for w in model.get_weights()]
    result = scipy.optimize.minimize(
        fun,
        hvp.flatten(weights),
        jac=True,
        hessp=hessp,
        method="Newton-CG",
        callback=record,
        options={"maxiter": max_iterations},
    )
    return {
        "reached": {str(t): reached.get(t) for t in THRESHOLDS},
        "iterations": int(result.nit),
        "final_loss": float(result.fun),
        "stop_reason": str(result.message),
        "seconds": time.perf_counter() - start,
    }


RUNS = {
    "minimize newton-cg": lambda m, x, y, n: ours("newton-cg", m, x, y, n),
    "minimize trust-ncg": lambda m, x, y, n: ours("trust-ncg", m, x, y, n),
    "SciPy Newton-CG (these products)": scipy_newton_cg,
    "minimize lbfgs": lambda m, x, y, n: ours("lbfgs", m, x, y, n),
}


def cell(reached) -> str:
    return "-" if reached is None else f"{reached[0]} / {reached[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    x, y = load(args)
    keras.utils.set_random_seed(0)
    initial = build(args.hidden).get_weights()
    results = {}
    for name, run in RUNS.items():
        results[name] = run(build(args.hidden, initial), x, y, args.max_iterations)
        print(f"{name}: {results[name]}", file=sys.stderr)
    header = "evaluations / products to loss"
    print(f"{'method':34s} {header + ' < 0.1':>36s} {'< 0.01':>12s}  seconds")
    for name, result in results.items():
        reached = result["reached"]
        print(
            f"{name:34s} {cell(reached['0.1']):>36s} {cell(reached['0.01']):>12s}"
            f"  {result['seconds']:7.1f}"
        )
    if args.out is not None:
        document = {
            "environment": environment(),
            "settings": {
                "samples": args.samples,
                "hidden": args.hidden,
                "max_iterations": args.max_iterations,
                "data": "synthetic" if args.synthetic else "mnist",
                "thresholds": list(THRESHOLDS),
            },
            "results": results,
        }
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
