"""Time of one optimizer update step: this package against Keras's built-ins.

Only the update is timed: the gradients are given (fixed random tensors), no
model runs forward or backward. The variables have the shapes of a
784-1000-1000-10 MLP and a small CNN (3.1 million parameters at
``--params-scale 1``), and the step is compiled the way Keras's trainers
compile it:

* TensorFlow: ``tf.function(jit_compile=True)`` around
  ``optimizer.apply(grads, variables)``;
* JAX: ``jax.jit`` around ``optimizer.stateless_apply(opt_vars, grads,
  train_vars)``, with the optimizer and model state donated and returned in
  argument order, as ``model.fit`` does: XLA then updates them in place.

Both optimizers of a row are built and compiled first, then timed in
alternating rounds (see ``_timing.py``). The backend is KERAS_BACKEND's.

    KERAS_BACKEND=tensorflow python benchmarks/update_step.py --out tf.json
    KERAS_BACKEND=jax python benchmarks/update_step.py --quick
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _timing import (  # noqa: E402
    Comparison,
    interleave,
    markdown_table,
    seconds_per_unit,
    write_json,
)

from keras_adaptive import optimizers as ours  # noqa: E402

Shape = tuple[int, ...]

#: Baseline label of the package-only optimizers, which Keras does not ship.
SGD_BASELINE = "keras SGD (baseline only, not the same algorithm)"
#: Steps timed (best of three) to choose the steps per round.
CALIBRATION_STEPS = 3
#: The rows `--quick` times (those present in the package).
QUICK_CASES = ("SGD", "Momentum", "Adam", "Rprop")


@dataclass(frozen=True)
class Case:
    """One row: a factory for ours, one for the Keras baseline, and labels."""

    name: str
    #: Takes the package's keyword arguments (``update_order``).
    make_ours: Callable[..., keras.optimizers.Optimizer]
    make_keras: Callable[[], keras.optimizers.Optimizer]
    baseline: str


def state_cases(state_dtype: str) -> list[Case]:
    """Every optimizer of the package with `state_dtype` state against itself
    with float32 state (the "keras" side of these rows)."""
    rows = []
    for cls in ours.ALL_OPTIMIZERS:
        rows.append(
            Case(
                cls.__name__,
                lambda cls=cls, **kw: cls(state_dtype=state_dtype, **kw),
                lambda cls=cls: cls(state_dtype="float32"),
                f"{cls.__name__}(state_dtype='float32')",
            )
        )
    return rows


def _package_only(name: str) -> list[Case]:
    cls = getattr(ours, name, None)
    if cls is None:
        return []
    return [Case(name, cls, keras.optimizers.SGD, SGD_BASELINE)]


def cases() -> list[Case]:
    """Every comparison: the nine shared algorithms (two with a variant), then
    the package-only optimizers against Keras's plain SGD where present."""
    k = keras.optimizers
    shared = [
        Case("SGD", ours.SGD, k.SGD, "keras SGD"),
        Case(
            "Momentum",
            ours.Momentum,
            lambda: k.SGD(momentum=0.9),
            "keras SGD(momentum=0.9)",
        ),
        Case(
            "Nesterov",
            ours.Nesterov,
            lambda: k.SGD(momentum=0.9, nesterov=True),
            "keras SGD(momentum=0.9, nesterov=True)",
        ),
        Case("Adagrad", ours.Adagrad, k.Adagrad, "keras Adagrad"),
        Case("RMSprop", ours.RMSprop, k.RMSprop, "keras RMSprop"),
        Case(
            "RMSprop (centered, momentum)",
            lambda **kw: ours.RMSprop(centered=True, momentum=0.9, **kw),
            lambda: k.RMSprop(centered=True, momentum=0.9),
            "keras RMSprop(centered=True, momentum=0.9)",
        ),
        Case("Adadelta", ours.Adadelta, k.Adadelta, "keras Adadelta"),
        Case("Adam", ours.Adam, k.Adam, "keras Adam"),
        Case(
            "Adam (amsgrad)",
            lambda **kw: ours.Adam(amsgrad=True, **kw),
            lambda: k.Adam(amsgrad=True),
            "keras Adam(amsgrad=True)",
        ),
        Case("Adamax", ours.Adamax, k.Adamax, "keras Adamax"),
        Case("Nadam", ours.Nadam, k.Nadam, "keras Nadam"),
    ]
    extra = [
        case
        for name in ("DeltaBarDelta", "Rprop", "LBFGS")
        for case in _package_only(name)
    ]
    return shared + extra


def variable_shapes(params_scale: float = 1.0) -> list[Shape]:
    """Kernel and bias shapes of a 784-1000-1000-10 MLP and a small CNN.

    The CNN is four 3x3 convolutions (3 -> 32 -> 64 -> 128 -> 128 channels)
    on a 4x4 final map, a 512-unit dense layer and 10 outputs. Hidden widths
    are multiplied by sqrt(params_scale), so the parameter count scales
    roughly by `params_scale` (3.1 million at 1).
    """
    if params_scale <= 0:
        raise ValueError(f"params_scale must be > 0; received {params_scale}.")

    def width(n: int) -> int:
        return max(1, round(n * math.sqrt(params_scale)))

    hidden = width(1000)
    mlp = [(784, hidden), (hidden,), (hidden, hidden), (hidden,), (hidden, 10), (10,)]
    channels = [3, width(32), width(64), width(128), width(128)]
    cnn: list[Shape] = []
    for c_in, c_out in zip(channels, channels[1:], strict=False):
        cnn += [(3, 3, c_in, c_out), (c_out,)]
    dense = width(512)
    cnn += [(channels[-1] * 16, dense), (dense,), (dense, 10), (10,)]
    return mlp + cnn


def tensor_shapes(params: int, tensors: int = 10) -> list[Shape]:
    """`tensors` matrices of 1000 rows holding about `params` parameters."""
    if params < tensors:
        raise ValueError(f"params must be >= tensors; received {params}.")
    per = params // tensors
    if per % 1000 == 0:
        return [(1000, per // 1000)] * tensors
    return [(per,)] * tensors


def traffic(optimizer: keras.optimizers.Optimizer, shapes: Sequence[Shape]):
    """Arrays of the model's size one update step must read and write.

    Per parameter a step reads the weight, the gradient and every state slot
    and writes the weight and every slot: reads = 2 + S, writes = 1 + S, with
    S the slots (the optimizer's non-scalar variables, in units of the model's
    size). Returns (reads, writes, slots, slot_itemsize), or None for
    `LBFGS`, whose two-loop recursion reads its (m, n) history twice.
    """
    if type(optimizer).__name__ == "LBFGS":
        return None
    n = parameter_count(shapes)
    slots = [v for v in optimizer.variables if len(v.shape) > 0]
    count = sum(math.prod(v.shape) for v in slots) / n
    itemsize = 4
    if slots:
        dtype = keras.backend.standardize_dtype(slots[0].dtype)
        itemsize = 2 if dtype in ("bfloat16", "float16") else 4
    return 2 + count, 1 + count, count, itemsize


def floor_bytes(shapes: Sequence[Shape], counts) -> int:
    """Bytes moved by the floor kernel: weights and gradients in float32, the
    slots in their own dtype."""
    reads, writes, slots, itemsize = counts
    n = parameter_count(shapes)
    return int(n * (3 * 4 + 2 * slots * itemsize))


def make_floor(shapes: Sequence[Shape], counts) -> Callable[[int], None]:
    """A compiled kernel moving exactly the bytes an update step must move.

    Per variable it updates the weights in place by an axpy with the
    gradient, w <- w - 0.001 g (two reads, one write), and negates every
    slot array in place (one read and one write each): 2 + S arrays read,
    1 + S written, each once, with the slots in their dtype. It is the
    memory-traffic floor of the step: no update can read and write less.
    Compiled and run like the update step (TensorFlow: XLA-compiled function
    on variables; JAX: jitted function with the written arrays donated;
    PyTorch: eager in-place operations).
    """
    _, _, slots, itemsize = counts
    slot_dtype = "float32" if itemsize == 4 else "bfloat16"
    slots = round(slots)
    rng = np.random.default_rng(3)
    # Per variable: the weights, then its slots; and its gradient.
    written, read = [], []
    for shape in shapes:
        written.append(("float32", rng.standard_normal(shape).astype("float32")))
        for _ in range(slots):
            written.append((slot_dtype, rng.standard_normal(shape).astype("float32")))
        read.append(rng.standard_normal(shape).astype("float32"))
    group = 1 + slots
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        state = {
            "written": [jnp.asarray(a, dtype=d) for d, a in written],
            "read": [jnp.asarray(a) for a in read],
        }

        def kernel(written, read):
            return [
                a - 0.001 * read[i // group] if i % group == 0 else -a
                for i, a in enumerate(written)
            ]

        step = jax.jit(kernel, donate_argnums=(0,))

        def run(n: int) -> None:
            for _ in range(n):
                state["written"] = step(state["written"], state["read"])
            jax.block_until_ready(state["written"])

        run.relocate = _relocator(state)
        return run
    if backend == "tensorflow":
        import tensorflow as tf

        variables = [tf.Variable(tf.cast(a, d)) for d, a in written]
        tensors = [tf.constant(a) for a in read]

        @tf.function(jit_compile=True)
        def kernel(tensors):
            for i, v in enumerate(variables):
                if i % group == 0:
                    v.assign_sub(0.001 * tensors[i // group])
                else:
                    v.assign(-v)
            return tf.constant(0)

        def run(n: int) -> None:
            for _ in range(n):
                done = kernel(tensors)
            done.numpy()

        return run
    if backend == "torch":
        import torch

        device = keras.ops.convert_to_tensor(0.0).device
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
        arrays = [torch.tensor(a, device=device, dtype=dtypes[d]) for d, a in written]
        tensors = [torch.tensor(a, device=device) for a in read]

        def run(n: int) -> None:
            with torch.no_grad():
                for _ in range(n):
                    for i, a in enumerate(arrays):
                        if i % group == 0:
                            a.sub_(tensors[i // group], alpha=0.001)
                        else:
                            a.neg_()
            if torch.cuda.is_available():
                torch.cuda.synchronize()

        return run
    raise RuntimeError(f"Backend {backend!r} has no floor kernel.")


def parameter_count(shapes: Sequence[Shape]) -> int:
    """Total number of parameters in `shapes`."""
    return sum(math.prod(shape) for shape in shapes)


def _arrays(shapes: Sequence[Shape], seed: int, scale: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal(shape)).astype("float32") for shape in shapes]


def make_stepper(
    optimizer: keras.optimizers.Optimizer,
    shapes: Sequence[Shape],
    built: list | None = None,
) -> Callable[[int], None]:
    """A function `run(n)` applying n compiled update steps of `optimizer`.

    The optimizer gets its own variables (same initial values for every
    optimizer) and is built before compilation; `run` returns once the n-th
    step's results exist.
    """
    weights = _arrays(shapes, seed=1, scale=0.05)
    gradients = _arrays(shapes, seed=2, scale=0.01)
    variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    optimizer.build(variables)
    if built is not None:
        built.append(optimizer)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_stepper(optimizer, variables, gradients)
    if backend == "jax":
        return _jax_stepper(optimizer, variables, gradients)
    if backend == "torch":
        return _torch_stepper(optimizer, variables, gradients)
    raise RuntimeError(
        f"Backend {backend!r} is not benchmarked (tensorflow, jax, torch)."
    )


def _tensorflow_stepper(optimizer, variables, gradients):
    import tensorflow as tf

    grads = [tf.constant(g) for g in gradients]

    @tf.function(jit_compile=True)
    def step(grads):
        optimizer.apply(grads, variables)
        return optimizer.iterations.value

    def run(n: int) -> None:
        for _ in range(n):
            done = step(grads)
        done.numpy()

    return run


def _jax_stepper(optimizer, variables, gradients):
    import jax.numpy as jnp

    grads = [jnp.asarray(g) for g in gradients]
    state = {
        "optimizer": [jnp.array(v.value, copy=True) for v in optimizer.variables],
        "trainable": [jnp.array(v.value, copy=True) for v in variables],
    }
    return jax_runner(jax_step(optimizer), state, grads)


def jax_step(optimizer: keras.optimizers.Optimizer):
    """`optimizer`'s update step, jitted as `fit` does, the state donated.

    Takes and returns `(optimizer_values, trainable_values)` (with the
    gradients in between in the arguments), in the order of the donated
    arguments, so that XLA pairs each output with the input buffer it
    replaces instead of copying.
    """
    import jax

    def apply(optimizer_values, grads, trainable_values):
        trainable_values, optimizer_values = optimizer.stateless_apply(
            optimizer_values, grads, trainable_values
        )
        return optimizer_values, trainable_values

    return jax.jit(apply, donate_argnums=(0, 2))


def jax_runner(step, state: dict, grads) -> Callable[[int], None]:
    """`run(n)`: n calls of `step` on `state` ("optimizer" and "trainable"
    arrays, replaced by each step's outputs); `run.relocate()` moves them."""
    import jax

    def run(n: int) -> None:
        for _ in range(n):
            state["optimizer"], state["trainable"] = step(
                state["optimizer"], grads, state["trainable"]
            )
        jax.block_until_ready(state["trainable"])

    run.relocate = _relocator(state)
    return run


def _relocator(state: dict) -> Callable[[], None]:
    """A function moving every array of `state` to freshly allocated memory.

    On JAX the donated arrays keep their addresses from step to step, and
    where an array lies (its alignment, its pages) changes the time of the
    same compiled step by a few per cent. Moving every competitor's arrays
    before each round spreads that effect over the rounds instead of
    leaving it on one side.
    """
    import jax
    import jax.numpy as jnp

    def relocate() -> None:
        for key, arrays in state.items():
            state[key] = [jnp.array(a, copy=True) for a in arrays]
        jax.block_until_ready(state)

    return relocate


def _torch_stepper(optimizer, variables, gradients):
    """Eager steps (Keras's PyTorch optimizers are not compiled by `fit`)."""
    import torch

    grads = [keras.ops.convert_to_tensor(g) for g in gradients]

    def run(n: int) -> None:
        with torch.no_grad():
            for _ in range(n):
                optimizer.apply(grads, variables)
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return run


def compare(
    case: Case,
    shapes: Sequence[Shape],
    rounds: int,
    steps: int | None = None,
    round_seconds: float = 0.1,
    floor: bool = True,
    update_order: str = "auto",
) -> Comparison:
    """Builds and compiles both optimizers of `case`, then times them.

    Args:
        case: the row to time.
        shapes: the variables' shapes.
        rounds: alternating rounds (each times both optimizers).
        steps: update steps per round and optimizer; None chooses the number
            that takes about `round_seconds` for the slower of the two, from
            the best of three timings of `CALIBRATION_STEPS` steps each.
        round_seconds: target duration of one side of a round when `steps` is
            None.
        floor: also time the memory-traffic floor of ours (`make_floor`) in
            every round, where it is defined.
        update_order: the `update_order` of ours.
    """
    built: list = []
    run_ours = make_stepper(case.make_ours(update_order=update_order), shapes, built)
    run_keras = make_stepper(case.make_keras(), shapes)
    counts = traffic(built[0], shapes) if floor else None
    run_floor = make_floor(shapes, counts) if counts is not None else None
    for run in (run_ours, run_keras, run_floor):
        if run is not None:
            run(2)
    if steps is None:
        slowest = max(
            min(seconds_per_unit(run, CALIBRATION_STEPS) for _ in range(3))
            for run in (run_ours, run_keras)
        )
        steps = max(1, round(round_seconds / slowest))
    comparison = Comparison(case.name, case.baseline, "step", steps)
    if counts is not None:
        comparison.floor_bytes = floor_bytes(shapes, counts)
    runs = [run for run in (run_ours, run_keras, run_floor) if run is not None]

    def relocate(r: int) -> None:
        for run in runs[r % len(runs) :] + runs[: r % len(runs)]:
            getattr(run, "relocate", lambda: None)()

    return interleave(comparison, run_ours, run_keras, rounds, run_floor, relocate)


def run_benchmark(
    names: Sequence[str] | None = None,
    params_scale: float = 1.0,
    rounds: int = 30,
    steps: int | None = None,
    round_seconds: float = 0.1,
    log: Callable[[str], None] | None = None,
    shapes: Sequence[Shape] | None = None,
    state_dtype: str | None = None,
    floor: bool = True,
    update_order: str = "auto",
) -> list[Comparison]:
    """Times every case (or those named in `names`) and returns the results.

    `shapes` replaces the MLP-and-CNN shapes of `params_scale`; with
    `state_dtype` the rows are the package's optimizers with that state
    against themselves with float32 state (`state_cases`).

    Raises:
        ValueError: if a name in `names` is not a case.
    """
    selected = state_cases(state_dtype) if state_dtype else cases()
    if names is not None:
        by_name = {case.name: case for case in selected}
        unknown = sorted(set(names) - set(by_name))
        if unknown:
            raise ValueError(f"Unknown case(s) {unknown}; valid: {list(by_name)}.")
        selected = [by_name[name] for name in names]
    if shapes is None:
        shapes = variable_shapes(params_scale)
    results = []
    for case in selected:
        results.append(
            compare(case, shapes, rounds, steps, round_seconds, floor, update_order)
        )
        if log is not None:
            log(results[-1].progress())
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--params-scale",
        type=float,
        default=1.0,
        help="multiply the parameter count (3.1 million at 1) by about this",
    )
    parser.add_argument(
        "--params",
        type=int,
        default=None,
        help="instead of the MLP and CNN shapes: this many parameters in "
        "--tensors equal matrices (e.g. 10000000)",
    )
    parser.add_argument(
        "--tensors", type=int, default=10, help="tensors for --params (10)"
    )
    parser.add_argument(
        "--state-dtype",
        choices=("bfloat16", "float16"),
        help="rows: every optimizer of the package with this state dtype "
        "against itself with float32 state",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="do not time the floor kernel"
    )
    parser.add_argument(
        "--update-order",
        choices=("auto", "always", "off"),
        default="auto",
        help="the update_order of the package's optimizers (default: auto)",
    )
    parser.add_argument("--rounds", type=int, default=30, help="alternating rounds")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps per round and optimizer (default: ~--round-seconds' worth)",
    )
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=0.1,
        help="target duration of one side of a round when --steps is not given",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="time only these rows, by name"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: rows {', '.join(QUICK_CASES)} only, --params-scale "
        "0.05, 3 rounds of about 0.01 s",
    )
    parser.add_argument("--out", metavar="FILE.json", help="write the raw numbers")
    args = parser.parse_args(argv)
    if args.quick and args.state_dtype is None:
        available = {case.name for case in cases()}
        args.only = [name for name in QUICK_CASES if name in available]
        args.params_scale, args.rounds, args.round_seconds = 0.05, 3, 0.01
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark and prints the markdown table."""
    args = parse_args(argv)
    if args.params is not None:
        shapes = tensor_shapes(args.params, args.tensors)
    else:
        shapes = variable_shapes(args.params_scale)
    print(
        f"backend {keras.backend.backend()}, keras {keras.__version__}, "
        f"{parameter_count(shapes):,} parameters in {len(shapes)} variables, "
        f"{args.rounds} rounds",
        file=sys.stderr,
    )
    results = run_benchmark(
        args.only,
        args.params_scale,
        args.rounds,
        args.steps,
        args.round_seconds,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        shapes=shapes,
        state_dtype=args.state_dtype,
        floor=not args.no_floor,
        update_order=args.update_order,
    )
    print(markdown_table(results))
    if args.out:
        settings = {
            "params_scale": args.params_scale,
            "params": args.params,
            "tensors": args.tensors if args.params is not None else None,
            "state_dtype": args.state_dtype,
            "floor": not args.no_floor,
            "update_order": args.update_order,
            "parameters": parameter_count(shapes),
            "shapes": [list(shape) for shape in shapes],
            "rounds": args.rounds,
            "steps": args.steps,
            "round_seconds": args.round_seconds,
        }
        write_json(args.out, settings, results)


if __name__ == "__main__":
    main()
