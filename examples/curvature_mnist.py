"""Curvature and the learning rate: the lecture's 1-D picture and MNIST.

The lecture "Choosing the Right Learning Rate" says: if the error is
quadratic, the optimal rate of gradient descent is the inverse of the second
derivative, eta_opt = 1 / E''(w); beyond 2 eta_opt it diverges. This script
measures E'' with `keras_adaptive.curvature` and checks the claim twice.

1. The 1-D picture. E(w) = mean((w x - y)^2) for a one-weight linear model
   is a parabola. `measure_curvature` gives its second derivative lambda and
   eta_opt = 1 / lambda; the model is then trained by gradient descent
   (`keras_adaptive.optimizers.SGD`, the whole data set per step) at 0.5,
   1, 1.5, 2 and 2.2 times eta_opt from the same start, and each run's
   weights are drawn on the parabola: slow, one step, oscillating but
   converging, oscillating for ever, diverging. A sixth panel gives the
   error after a few steps against eta / eta_opt.
2. MNIST. The 784-32-10 tanh network is trained by full-batch gradient
   descent on --samples training images at each rate of --rates, and
   `CurvatureMonitor` measures the top Hessian eigenvalue lambda_max of the
   training loss after every epoch of --steps-per-epoch steps. Where
   lambda_max starts above 2 / eta, training first bounces until it falls
   below; then lambda_max rises and hovers at 2 / eta, the "edge of
   stability" (Cohen et al. 2021), instead of leaving the stable range.
   At the end, the Hessian-vector products that `measure_curvature` needs
   for lambda_max to 1e-3 relative are counted against a run to 1e-6.

    python examples/curvature_mnist.py --npz ../shared/data/mnist-subset.npz

reads MNIST through `keras_adaptive.datasets` (without `--npz`: a prepared
TFDS directory, the Keras cache or a download) and writes to `--out`
(default `curvature_mnist/`): `curvature_quadratic.png`,
`curvature_mnist.png` and `curvature_mnist.csv` (rate, epoch, step, training
loss, lambda_max, 2 / eta).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import _cli
import keras
import numpy as np

from keras_adaptive import datasets, optimizers
from keras_adaptive.callbacks.curvature_monitor import CurvatureMonitor
from keras_adaptive.curvature import measure_curvature

#: The rates of the 1-D picture, as multiples of eta_opt.
QUADRATIC_MULTIPLES = (0.5, 1.0, 1.5, 2.0, 2.2)
QUADRATIC_STEPS = 6


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--npz",
        default=None,
        help="Keras-format MNIST .npz (x_train, y_train, x_test, y_test); "
        "default: the other sources of keras_adaptive.datasets",
    )
    parser.add_argument("--out", default="curvature_mnist", help="output folder")
    parser.add_argument("--samples", type=int, default=2000, help="training images")
    parser.add_argument("--hidden", type=int, default=32, help="hidden tanh units")
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="SGD rates"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=10,
        help="full-batch steps between two measurements",
    )
    parser.add_argument("--seed", type=int, default=0, help="initial weights")
    args = parser.parse_args(argv)
    for name in ("samples", "hidden", "epochs", "steps_per_epoch"):
        if getattr(args, name) < 1:
            flag = name.replace("_", "-")
            parser.error(f"--{flag} must be >= 1; received {getattr(args, name)}")
    for rate in args.rates:
        if not (math.isfinite(rate) and rate > 0):
            parser.error(f"--rates must be positive; received {rate}")
    return args


# -- 1. The lecture's 1-D picture --------------------------------------------


def one_weight_model(weight: float) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_initializer=keras.initializers.Constant(weight),
            ),
        ]
    )
    return model


class WeightRecorder(keras.callbacks.Callback):
    """The single weight after every epoch (one full-batch step)."""

    def __init__(self, weights: list):
        super().__init__()
        self.weights = weights

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(float(self.model.get_weights()[0].item()))


def quadratic_picture(seed: int) -> dict:
    """The probe's curvature of E(w) = mean((w x - y)^2) and gradient descent
    on it at multiples of eta_opt: every run's weights and errors."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 1)).astype("float32")
    y = (1.5 * x + 0.3 * rng.standard_normal((32, 1))).astype("float32")
    best = float(np.sum(x * y) / np.sum(x * x))  # the minimiser
    start = best - 1.0

    probe = one_weight_model(start)
    probe.compile(loss="mse")
    curvature = measure_curvature(probe, x, y)
    eta_opt = curvature.optimal_learning_rate
    print(
        f"1-D quadratic: E''(w) = lambda = {curvature.lambda_max:.4f} "
        f"(exact 2 mean(x^2) = {2 * float(np.mean(x * x)):.4f}), "
        f"eta_opt = {eta_opt:.4f}, diverges above {2 * eta_opt:.4f}"
    )
    runs = {}
    for multiple in QUADRATIC_MULTIPLES:
        model = one_weight_model(start)
        model.compile(optimizer=optimizers.SGD(multiple * eta_opt), loss="mse")
        weights = [start]
        model.fit(
            x,
            y,
            batch_size=len(x),
            epochs=QUADRATIC_STEPS,
            shuffle=False,
            verbose=0,
            callbacks=[WeightRecorder(weights)],
        )
        runs[multiple] = np.asarray(weights)
        print(
            f"  eta = {multiple:.1f} eta_opt: distance to the minimum "
            + " -> ".join(f"{abs(w - best):.3g}" for w in weights)
        )
    return {"x": x, "y": y, "best": best, "eta_opt": eta_opt, "runs": runs}


def plot_quadratic(picture: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y, best = picture["x"], picture["y"], picture["best"]

    def error(w):
        w = np.asarray(w, dtype="float64")[..., None]
        return np.mean((w * x[:, 0] - y[:, 0]) ** 2, axis=-1)

    notes = {
        0.5: "slow, monotone",
        1.0: "one step",
        1.5: "oscillates, converges",
        2.0: "oscillates for ever",
        2.2: "diverges",
    }
    fig, axes = plt.subplots(2, 3, figsize=(12, 7))
    for axis, (multiple, weights) in zip(
        axes.flat, picture["runs"].items(), strict=False
    ):
        span = 1.1 * max(1.5, float(np.max(np.abs(weights - best))))
        grid = np.linspace(best - span, best + span, 200)
        axis.plot(grid, error(grid), color="0.6")
        axis.plot(weights, error(weights), "o-", color="tab:red", markersize=4)
        axis.plot(weights[0], error(weights[0]), "s", color="black")
        axis.set_title(f"$\\eta = {multiple:g}\\,\\eta_{{opt}}$: {notes[multiple]}")
        axis.set_xlabel("w (square: start)")
        axis.set_ylabel("E(w)")
    ratios = np.linspace(0.05, 2.3, 300)
    # The error after the run's steps: (1 - eta lambda)^(2 steps) of the start's.
    excess = (1.0 - ratios) ** (2 * QUADRATIC_STEPS)
    last = axes.flat[-1]
    last.semilogy(ratios, excess, color="tab:blue")
    for multiple, weights in picture["runs"].items():
        ratio = ((weights[-1] - best) / (weights[0] - best)) ** 2
        last.semilogy(multiple, max(ratio, 1e-12), "o", color="tab:red")
    last.axvline(1.0, color="0.5", linestyle=":")
    last.axvline(2.0, color="0.5", linestyle="--")
    last.set_ylim(1e-12, 1e3)
    last.set_xlabel(r"$\eta / \eta_{opt}$")
    last.set_ylabel(f"excess error after {QUADRATIC_STEPS} steps / at start")
    last.set_title("error against the rate (dots: the runs)")
    eta_opt = picture["eta_opt"]
    fig.suptitle(
        f"Gradient descent on E(w) = mean((w x - y)^2): "
        f"$\\eta_{{opt}} = 1/E'' = {eta_opt:.3f}$ measured by measure_curvature"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- 2. The edge of stability on MNIST ------------------------------------------


def load(args: argparse.Namespace):
    """The first --samples MNIST training images, scaled to [0, 1] by
    `keras_adaptive.datasets`, as flat float32 arrays."""
    data = datasets.load(
        "mnist", npz=args.npz, batch_size=70_000, validation_fraction=0, shuffle=False
    )
    x, y = next(data.train.as_numpy_iterator())
    x, y = x[: args.samples], y[: args.samples]
    return x.reshape(len(x), -1), y


def mlp(args: argparse.Namespace, initial: list | None = None) -> keras.Model:
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


def compile_mlp(model: keras.Model, rate: float) -> None:
    model.compile(
        optimizer=optimizers.SGD(learning_rate=rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


def train_at_rate(args, rate, initial, x, y, start: float) -> dict:
    """Full-batch gradient descent at `rate`: lambda_max and the loss after
    every epoch (the data are repeated so that an epoch is
    --steps-per-epoch full-batch steps)."""
    model = mlp(args, initial)
    compile_mlp(model, rate)
    repeats = args.steps_per_epoch
    history = model.fit(
        np.tile(x, (repeats, 1)),
        np.tile(y, repeats),
        batch_size=len(x),
        epochs=args.epochs,
        shuffle=False,
        verbose=0,
        callbacks=[CurvatureMonitor(x, y)],
    ).history
    steps = np.arange(args.epochs + 1) * repeats
    sharpness = np.r_[start, history["lambda_max"]]
    losses = np.r_[np.nan, history["loss"]]
    return {"steps": steps, "lambda_max": sharpness, "loss": losses, "model": model}


def plot_mnist(runs: dict, path: Path, description: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, (rate, run) in enumerate(runs.items()):
        color = f"C{index}"
        left.plot(run["steps"], run["lambda_max"], "o-", color=color, markersize=3)
        left.axhline(
            2 / rate,
            color=color,
            linestyle="--",
            label=f"$2/\\eta$, $\\eta$ = {rate:g}",
        )
        right.plot(run["steps"], run["loss"], color=color, label=f"$\\eta$ = {rate:g}")
    left.set_yscale("log")
    left.set_xlabel("full-batch gradient descent steps")
    left.set_ylabel(r"$\lambda_{\max}$ of the training loss (dots)")
    left.set_title(r"$\lambda_{\max}$ against $2/\eta$ (dashed)")
    left.legend()
    right.set_yscale("log")
    right.set_xlabel("full-batch gradient descent steps")
    right.set_ylabel("training loss (mean over the epoch's steps)")
    right.set_title("training loss")
    right.legend()
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
    fig.suptitle(description)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def products_to_tolerance(model: keras.Model, x, y) -> str:
    """lambda_max to 1e-3 relative and to 1e-6, with the products each took."""
    coarse = measure_curvature(model, x, y, tolerance=1e-3)
    fine = measure_curvature(model, x, y, tolerance=1e-6, max_products=300)
    error = abs(coarse.lambda_max / fine.lambda_max - 1)
    return (
        f"lambda_max {coarse.lambda_max:.5g} in {coarse.products} products "
        f"(tolerance 1e-3), {fine.lambda_max:.7g} in {fine.products} "
        f"(tolerance 1e-6): relative difference {error:.1e}"
    )


def run(args: argparse.Namespace) -> int:
    """Both parts: the figures, the CSV and a summary on the terminal."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _cli.keep_tensorflow_off_gpus()
    print(_cli.describe_device())
    paths = [
        plot_quadratic(quadratic_picture(args.seed), out / "curvature_quadratic.png")
    ]

    x, y = load(args)
    keras.utils.set_random_seed(args.seed)
    initial = mlp(args).get_weights()
    probe = mlp(args, initial)
    compile_mlp(probe, 1.0)
    start = measure_curvature(probe, x, y)
    print(
        f"MNIST, {len(x)} images, 784-{args.hidden}-10 tanh MLP: at the initial "
        f"weights lambda_max = {start.lambda_max:.4g} ({start.products} products), "
        f"so gradient descent is stable for eta < {start.max_stable_learning_rate:.4g}"
    )
    runs = {}
    for rate in args.rates:
        began = time.perf_counter()
        runs[rate] = train_at_rate(args, rate, initial, x, y, start.lambda_max)
        last = runs[rate]["lambda_max"][-1]
        print(
            f"  eta = {rate:g}: lambda_max {start.lambda_max:.3g} -> {last:.3g} "
            f"(2/eta = {2 / rate:.3g}), loss {runs[rate]['loss'][-1]:.4f}, "
            f"{time.perf_counter() - began:.1f} s"
        )
    final = runs[args.rates[-1]]["model"]
    print(f"Products at the end of eta = {args.rates[-1]:g}:")
    print("  " + products_to_tolerance(final, x, y))

    rows = [
        [rate, epoch, step, loss, sharpness, 2 / rate]
        for rate, result in runs.items()
        for epoch, (step, loss, sharpness) in enumerate(
            zip(result["steps"], result["loss"], result["lambda_max"], strict=True)
        )
    ]
    paths.append(
        _cli.write_csv(
            out / "curvature_mnist.csv",
            ["rate", "epoch", "step", "loss", "lambda_max", "two_over_rate"],
            rows,
        )
    )
    description = (
        f"MNIST, {len(x)} images, 784-{args.hidden}-10 tanh MLP, full-batch "
        f"gradient descent, backend {keras.backend.backend()}"
    )
    paths.append(plot_mnist(runs, out / "curvature_mnist.png", description))
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _cli.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
