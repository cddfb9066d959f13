"""Cost of one Hessian-vector product against one gradient evaluation.

`keras_adaptive.hessian_vector_product` on the 784-32-10 tanh MLP over the
first `--samples` MNIST images of `--npz` (or random images of MNIST's shape
with `--synthetic`), the objective `minimize` uses. After both compiled
functions have run once, every round times `--calls` gradient evaluations
(`hvp.loss_and_gradient()`) and `--calls` products (`hvp(v)`, a fresh random
v each), in alternating order, and forms the ratio product / gradient
within the round, in wall-clock and in process CPU time. Both calls include
reading the weights from the model and returning float64 NumPy arrays. The
medians over the rounds are printed and, with `--out`, written as JSON with
every raw timing. A product by forward-over-reverse differentiation costs
about two to three gradients in theory.

    KERAS_BACKEND=jax python benchmarks/hessian_vector_product.py \\
        --npz ../shared/data/mnist-subset.npz \\
        --out benchmarks/results/hessian_vector_product_jax.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _timing import environment  # noqa: E402
from minimize_step import build, load  # noqa: E402

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
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    for name in ("samples", "hidden", "calls", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def timed(call: Callable[[int], None], calls: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(calls):
        call(index)
    return (
        (time.perf_counter() - wall) / calls,
        (time.process_time() - cpu) / calls,
    )


def run_benchmark(args: argparse.Namespace) -> dict:
    x, y = load(args)
    keras.utils.set_random_seed(0)
    hvp = ka.hessian_vector_product(build(args.hidden), x, y)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.calls, hvp.size)).astype("float32")
    hvp.loss_and_gradient()  # compile both functions, outside the rounds
    hvp(vectors[0])
    sides = {
        "gradient": lambda index: hvp.loss_and_gradient(),
        "product": lambda index: hvp(vectors[index]),
    }
    rounds = []
    for r in range(args.rounds):
        order = ["gradient", "product"] if r % 2 == 0 else ["product", "gradient"]
        result = {side: timed(sides[side], args.calls) for side in order}
        entry = {
            "gradient_s": result["gradient"][0],
            "gradient_cpu_s": result["gradient"][1],
            "product_s": result["product"][0],
            "product_cpu_s": result["product"][1],
            "ratio": result["product"][0] / result["gradient"][0],
            "cpu_ratio": result["product"][1] / result["gradient"][1],
        }
        print(
            f"round {r + 1}: gradient {entry['gradient_s'] * 1e3:.2f} ms, product "
            f"{entry['product_s'] * 1e3:.2f} ms: ratio {entry['ratio']:.2f} "
            f"(CPU {entry['cpu_ratio']:.2f})",
            file=sys.stderr,
        )
        rounds.append(entry)
    return {
        "environment": environment(),
        "settings": {
            key: getattr(args, key) for key in ("samples", "hidden", "calls", "rounds")
        }
        | {"data": "synthetic" if args.synthetic else "mnist", "parameters": hvp.size},
        "rounds": rounds,
        "gradient_ms_median": 1e3 * float(np.median([r["gradient_s"] for r in rounds])),
        "product_ms_median": 1e3 * float(np.median([r["product_s"] for r in rounds])),
        "ratio_median": float(np.median([r["ratio"] for r in rounds])),
        "cpu_ratio_median": float(np.median([r["cpu_ratio"] for r in rounds])),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    document = run_benchmark(args)
    print(
        f"backend {document['environment']['backend']}: gradient "
        f"{document['gradient_ms_median']:.2f} ms, Hessian-vector product "
        f"{document['product_ms_median']:.2f} ms; median ratio "
        f"{document['ratio_median']:.2f} (CPU time {document['cpu_ratio_median']:.2f}; "
        "target <= 3)"
    )
    if args.out is not None:
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
