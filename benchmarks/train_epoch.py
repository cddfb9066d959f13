"""Time of one training epoch of the MNIST MLP: this package against Keras.

The lectures' MNIST network (784-1000-1000-10, ReLU, batch 128) is trained
with `model.fit(..., jit_compile=True)` for one epoch at a time, once with
this package's optimizer and once with the Keras built-in, alternating (see
``_timing.py``). Both models start from the same weights and are compiled
and warmed up (two batches) before timing. The data is the real MNIST subset
at ``../shared/data/mnist-subset.npz`` when that file exists (read with
NumPy), otherwise random data of MNIST's shapes (60,000 images); it is cut to
a whole number of batches so that no partial batch triggers a second
compilation. The backend is KERAS_BACKEND's.

    KERAS_BACKEND=tensorflow python benchmarks/train_epoch.py --out tf.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _timing import Comparison, interleave, markdown_table, write_json  # noqa: E402

from keras_adaptive import optimizers as ours  # noqa: E402

DEFAULT_NPZ = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-subset.npz"
)
BATCH_SIZE = 128
RANDOM_SAMPLES = 60_000

#: name -> (ours, Keras's, baseline label)
CASES: dict[str, tuple[Callable, Callable, str]] = {
    "Adam": (ours.Adam, keras.optimizers.Adam, "keras Adam"),
    "Momentum": (
        ours.Momentum,
        lambda: keras.optimizers.SGD(momentum=0.9),
        "keras SGD(momentum=0.9)",
    ),
    "RMSprop": (ours.RMSprop, keras.optimizers.RMSprop, "keras RMSprop"),
}


def load_data(
    npz: Path | None, samples: int | None = None, batch_size: int = BATCH_SIZE
) -> tuple[np.ndarray, np.ndarray, str]:
    """Flattened float32 images in [0, 1], int labels and a description.

    Reads `x_train`/`y_train` from `npz` if it exists, else draws random data
    of MNIST's shapes. At most `samples` examples are kept, cut down to a
    multiple of `batch_size`.
    """
    if npz is not None and npz.exists():
        with np.load(npz) as data:
            x, y = data["x_train"], data["y_train"]
        source = f"MNIST from {npz.name}"
    else:
        rng = np.random.default_rng(0)
        n = samples or RANDOM_SAMPLES
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=(n,))
        source = "random data of MNIST's shapes"
    n = min(len(x), samples or len(x)) // batch_size * batch_size
    if n == 0:
        raise ValueError(f"Fewer examples than one batch of {batch_size}.")
    x = x[:n].reshape(n, -1).astype("float32") / 255.0
    return x, y[:n].astype("int32"), source


def build_model(optimizer: keras.optimizers.Optimizer) -> keras.Model:
    """The 784-1000-1000-10 MLP, compiled for XLA with `optimizer`."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(1000, activation="relu"),
            keras.layers.Dense(1000, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    return model


def make_trainer(
    optimizer: keras.optimizers.Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = BATCH_SIZE,
) -> Callable[[int], None]:
    """A function `run(n)` training a fresh, warmed-up model for n epochs."""
    model = build_model(optimizer)
    model.fit(
        x[: 2 * batch_size], y[: 2 * batch_size], batch_size=batch_size, verbose=0
    )

    def run(n: int) -> None:
        model.fit(x, y, batch_size=batch_size, epochs=n, shuffle=False, verbose=0)

    return run


def run_benchmark(
    names: Sequence[str],
    x: np.ndarray,
    y: np.ndarray,
    repeats: int = 5,
    log: Callable[[str], None] | None = None,
) -> list[Comparison]:
    """Times one epoch per round, `repeats` alternating rounds per case."""
    results = []
    for name in names:
        make_ours, make_keras, baseline = CASES[name]
        run_ours = make_trainer(make_ours(), x, y)
        run_keras = make_trainer(make_keras(), x, y)
        comparison = Comparison(name, baseline, "epoch", 1)
        results.append(interleave(comparison, run_ours, run_keras, repeats))
        if log is not None:
            log(comparison.progress())
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--npz",
        type=Path,
        default=DEFAULT_NPZ,
        help="Keras-format MNIST .npz (random data if the file does not exist)",
    )
    parser.add_argument(
        "--samples", type=int, default=None, help="use at most this many examples"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="alternating epochs per optimizer"
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(CASES), default=list(CASES), metavar="NAME"
    )
    parser.add_argument("--out", metavar="FILE.json", help="write the raw numbers")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark and prints the markdown table."""
    args = parse_args(argv)
    x, y, source = load_data(args.npz, args.samples)
    print(
        f"backend {keras.backend.backend()}, keras {keras.__version__}, "
        f"{len(x):,} examples ({source}), batch {BATCH_SIZE}, "
        f"{args.repeats} repeats",
        file=sys.stderr,
    )
    results = run_benchmark(
        args.only,
        x,
        y,
        args.repeats,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(markdown_table(results))
    if args.out:
        settings = {
            "data": source,
            "examples": len(x),
            "batch_size": BATCH_SIZE,
            "repeats": args.repeats,
        }
        write_json(args.out, settings, results)


if __name__ == "__main__":
    main()
