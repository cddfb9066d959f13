"""Mini-batch, momentum and adaptive training against full-batch L-BFGS and CG.

The comparison of the lecture notebook "Optimizing Neural Networks"
(Machine Learning in Python) on real MNIST: the same 784-32-10 tanh network,
from the same initial weights, trained

* with mini-batch SGD, SGD with momentum and Adam through `model.fit`, and
* with full-batch L-BFGS and conjugate gradients (Polak-Ribiere+) through
  `keras_adaptive.minimize`, each with a strong-Wolfe line search.

The training cost (mean cross-entropy over all training images) is drawn
against the number of gradient evaluations and against wall time, in one
figure with two panels. A full-batch method evaluates the whole training set
once per function evaluation. A mini-batch gradient on B of the N images is
counted as B / N of a full evaluation, so one epoch of `fit` counts as one
gradient evaluation whatever the batch size. For `fit`, the full training
cost is measured after every epoch with `model.evaluate`; that measurement is
left out of the wall time. Wall times include XLA compilation.

    python examples/full_batch_mnist.py --npz ../shared/data/mnist-subset.npz

reads MNIST through `keras_adaptive.datasets` (without `--npz`: a prepared
TFDS directory, the Keras cache or a download) and writes to `--out`
(default `full_batch_mnist/`): `full_batch_mnist.png` (the figure),
`curves.csv` (one row per method and point: gradient evaluations, seconds,
training cost) and `summary.csv` (the table printed at the end: final
training cost, gradient evaluations, seconds, test accuracy).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import _cli
import keras

import keras_adaptive as ka
from keras_adaptive import datasets

FIT_METHODS = {
    "sgd": ("mini-batch SGD", lambda: keras.optimizers.SGD(learning_rate=0.1)),
    "momentum": (
        "momentum",
        lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
    ),
    "adam": ("Adam", lambda: keras.optimizers.Adam(learning_rate=1e-3)),
}
FULL_BATCH_METHODS = {"lbfgs": "L-BFGS (full batch)", "cg": "CG (full batch)"}


@dataclass
class Curve:
    """Training cost of one method against gradient evaluations and time."""

    name: str
    evaluations: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    test_accuracy: float = math.nan


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--npz",
        default=None,
        help="Keras-format MNIST .npz (x_train, y_train, x_test, y_test); "
        "default: the other sources of keras_adaptive.datasets (a TFDS "
        "directory, the Keras cache, a download)",
    )
    parser.add_argument("--out", default="full_batch_mnist", help="output folder")
    parser.add_argument(
        "--samples", type=int, default=None, help="training images (default: all)"
    )
    parser.add_argument("--hidden", type=int, default=32, help="hidden tanh units")
    parser.add_argument(
        "--epochs", type=int, default=50, help="epochs of the mini-batch methods"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--iterations",
        type=int,
        default=200,
        help="iterations of the full-batch methods (at most)",
    )
    parser.add_argument("--seed", type=int, default=0, help="initial weights")
    args = parser.parse_args(argv)
    for name in ("samples", "hidden", "epochs", "batch_size", "iterations"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1; received {value}")
    return args


def load(args: argparse.Namespace):
    """The first --samples MNIST training images and the test images, read and
    scaled to [0, 1] by `keras_adaptive.datasets`, as flat float32 arrays."""
    data = datasets.load(  # MNIST has 70,000 images: each split in a single batch
        "mnist", npz=args.npz, batch_size=70_000, validation_fraction=0, shuffle=False
    )
    (x, y), (x_test, y_test) = (
        next(split.as_numpy_iterator()) for split in (data.train, data.test)
    )
    x, y = x[: args.samples], y[: args.samples]
    return (x.reshape(len(x), -1), y), (x_test.reshape(len(x_test), -1), y_test)


def build(args: argparse.Namespace, initial: list | None = None) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(args.hidden, activation="tanh"),
            keras.layers.Dense(10),
        ]
    )
    if initial is not None:
        model.set_weights(initial)
    return model


def compile_model(model: keras.Model, optimizer="sgd") -> None:
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


class FitRecorder(keras.callbacks.Callback):
    """After each epoch: the full training cost, and the training time so
    far with this measurement left out."""

    def __init__(self, curve: Curve, x, y, start_loss: float):
        super().__init__()
        self.curve, self.x, self.y = curve, x, y
        curve.evaluations.append(0.0)
        curve.seconds.append(0.0)
        curve.loss.append(start_loss)
        self.measuring = 0.0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        begin = time.perf_counter()
        loss = self.model.evaluate(
            self.x, self.y, batch_size=len(self.x), verbose=0, return_dict=True
        )["loss"]
        self.curve.evaluations.append(float(epoch + 1))
        self.curve.seconds.append(begin - self.start - self.measuring)
        self.curve.loss.append(float(loss))
        self.measuring += time.perf_counter() - begin


class MinimizeRecorder(keras.callbacks.Callback):
    """After each iteration: the function evaluations and the time so far."""

    def __init__(self, curve: Curve):
        super().__init__()
        self.curve = curve
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.curve.evaluations.append(float(logs["evaluations"]))
        self.curve.seconds.append(time.perf_counter() - self.start)
        self.curve.loss.append(float(logs["loss"]))


def run_fit(args, key, initial, train, test, start_loss) -> Curve:
    name, make_optimizer = FIT_METHODS[key]
    curve = Curve(name)
    model = build(args, initial)
    compile_model(model, make_optimizer())
    keras.utils.set_random_seed(args.seed)  # the same batch order for each
    model.fit(
        *train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
        callbacks=[FitRecorder(curve, *train, start_loss)],
    )
    curve.test_accuracy = model.evaluate(*test, verbose=0, return_dict=True)["accuracy"]
    return curve


def run_minimize(args, method, initial, train, test, start_loss) -> Curve:
    curve = Curve(FULL_BATCH_METHODS[method])
    model = build(args, initial)
    compile_model(model)
    recorder = MinimizeRecorder(curve)
    history = ka.minimize(
        model,
        *train,
        method=method,
        max_iterations=args.iterations,
        callbacks=[recorder],
    )
    curve.evaluations.insert(0, 1.0)  # the evaluation at the initial weights
    curve.seconds.insert(0, 0.0)
    curve.loss.insert(0, history.initial_loss)
    if not math.isclose(history.initial_loss, start_loss, rel_tol=1e-4):
        raise RuntimeError(
            f"{method}: initial loss {history.initial_loss} differs from "
            f"evaluate's {start_loss}"
        )
    curve.test_accuracy = model.evaluate(*test, verbose=0, return_dict=True)["accuracy"]
    print(f"{curve.name}: stopped by {history.stop_reason} ({history.message})")
    return curve


def table(curves: Sequence[Curve]) -> str:
    header = ("method", "train cost", "gradient evals", "time [s]", "test acc")
    rows = [
        (
            c.name,
            f"{c.loss[-1]:.4g}",
            f"{c.evaluations[-1]:.0f}",
            f"{c.seconds[-1]:.1f}",
            f"{c.test_accuracy:.4f}",
        )
        for c in curves
    ]
    return _cli.text_table(header, rows)


def write_csv(curves: Sequence[Curve], out: Path) -> list[Path]:
    points = [  # one row per method and point of its curve
        [c.name, *row]
        for c in curves
        for row in zip(c.evaluations, c.seconds, c.loss, strict=True)
    ]
    summary = [
        [c.name, c.loss[-1], c.evaluations[-1], c.seconds[-1], c.test_accuracy]
        for c in curves
    ]
    return [
        _cli.write_csv(
            out / "curves.csv",
            ["method", "gradient_evaluations", "seconds", "train_loss"],
            points,
        ),
        _cli.write_csv(
            out / "summary.csv",
            ["method", "train_loss", "gradient_evaluations", "seconds"]
            + ["test_accuracy"],
            summary,
        ),
    ]


def plot(curves: Sequence[Curve], path: Path, description: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for c in curves:
        style = "-" if c.name in FULL_BATCH_METHODS.values() else "--"
        left.plot(c.evaluations, c.loss, style, label=c.name)
        right.plot(c.seconds, c.loss, style, label=c.name)
    left.set_xlabel("gradient evaluations (one epoch of fit = 1)")
    right.set_xlabel("wall time [s]")
    left.set_ylabel("training cost (cross-entropy)")
    for axis in (left, right):
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    left.legend()
    fig.suptitle(description)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    """Train with every method, print the table, write the CSV and figure."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _cli.keep_tensorflow_off_gpus()
    train, test = load(args)
    keras.utils.set_random_seed(args.seed)
    initial = build(args).get_weights()
    probe = build(args, initial)
    compile_model(probe)
    start_loss = probe.evaluate(
        *train, batch_size=len(train[0]), verbose=0, return_dict=True
    )["loss"]
    print(
        f"backend {keras.backend.backend()}; {len(train[0])} training images, "
        f"784-{args.hidden}-10 tanh MLP, initial cost {start_loss:.4f}"
    )

    curves = []
    for key, (name, _) in FIT_METHODS.items():
        curves.append(run_fit(args, key, initial, train, test, start_loss))
        print(f"{name}: cost {curves[-1].loss[-1]:.4g} after {args.epochs} epochs")
    for method in FULL_BATCH_METHODS:
        curves.append(run_minimize(args, method, initial, train, test, start_loss))

    print()
    print(table(curves))
    description = (
        f"MNIST, {len(train[0])} images, 784-{args.hidden}-10 tanh MLP, "
        f"batch {args.batch_size}, backend {keras.backend.backend()}"
    )
    paths = write_csv(curves, out)
    paths.append(plot(curves, out / "full_batch_mnist.png", description))
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _cli.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
