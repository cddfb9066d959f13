"""Update steps of this checkout against an earlier version of the package.

The earlier version is imported under another name, so that both run in one
process, interleaved (see ``_timing.py``), each with the memory-traffic floor
of ``update_step.py`` in the same rounds. To make such a copy of commit REV:

    mkdir -p /tmp/old && git archive REV keras_adaptive | tar -x -C /tmp/old
    mv /tmp/old/keras_adaptive /tmp/old/keras_adaptive_old
    grep -rl keras_adaptive /tmp/old/keras_adaptive_old \\
        | xargs sed -i 's/keras_adaptive/keras_adaptive_old/g'

then, from the repository root:

    KERAS_BACKEND=jax python benchmarks/versions.py --old /tmp/old --label REV \\
        --params 10000000 --only Adadelta Rprop DeltaBarDelta LBFGS

The "ours" columns are this checkout, the "keras" columns the earlier version.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import update_step as u
from _timing import Comparison, interleave, markdown_table, write_json

from keras_adaptive import optimizers as new


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="folder holding the copy")
    parser.add_argument("--label", default="earlier version")
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--tensors", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--round-seconds", type=float, default=0.1)
    parser.add_argument("--only", nargs="+", required=True, metavar="NAME")
    parser.add_argument("--out", metavar="FILE.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, args.old)
    old = importlib.import_module("keras_adaptive_old.optimizers")
    shapes = u.tensor_shapes(args.params, args.tensors)
    results = []
    for name in args.only:
        built: list = []
        run_new = u.make_stepper(getattr(new, name)(), shapes, built)
        run_old = u.make_stepper(getattr(old, name)(), shapes)
        counts = u.traffic(built[0], shapes)
        run_floor = u.make_floor(shapes, counts) if counts else None
        for run in (run_new, run_old, run_floor):
            if run is not None:
                run(2)
        slowest = max(
            min(u.seconds_per_unit(run, 3) for _ in range(2))
            for run in (run_new, run_old)
        )
        steps = max(1, round(args.round_seconds / slowest))
        comparison = Comparison(name, f"{name} at {args.label}", "step", steps)
        if counts is not None:
            comparison.floor_bytes = u.floor_bytes(shapes, counts)
        results.append(interleave(comparison, run_new, run_old, args.rounds, run_floor))
        print(results[-1].progress(), file=sys.stderr, flush=True)
    print(markdown_table(results))
    if args.out:
        settings = {
            "parameters": u.parameter_count(shapes),
            "tensors": args.tensors,
            "rounds": args.rounds,
            "earlier_version": args.label,
        }
        write_json(args.out, settings, results)


if __name__ == "__main__":
    main()
