"""The lectures' 2-D pictures: optimizer paths on test surfaces.

Example::

    python examples/plot_trajectories.py --out docs/images
    python examples/plot_trajectories.py --surfaces rosenbrock --steps 2000

For each surface (the long valley 10*theta1^2 + 0.5*theta2^2, a saddle point,
Rosenbrock's and Beale's functions) every optimizer starts from the same point
and moves two ``keras.Variable`` parameters with this package's optimizer
classes. The script writes ``trajectory_<surface>.png``, an animated
``trajectory_<surface>.gif`` where Pillow is installed, and
``trajectory_learning_rates.png``: gradient descent on the valley with step
sizes from too small to too large.

The learning rates differ per optimizer and surface (an adaptive method's
step is close to its learning rate, plain gradient descent's is the learning
rate times the gradient); they are chosen so that each path shows the
method's character and are printed in the legend.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import _cli
import keras
import numpy as np

from keras_adaptive import optimizers, plotting

STEPS = {"quadratic": 100, "saddle": 60, "rosenbrock": 1500, "beale": 400}
LEARNING_RATES = {
    "quadratic": {
        "SGD": 0.09,
        "Momentum": 0.01,
        "Nesterov": 0.01,
        "Adagrad": 0.5,
        "RMSprop": 0.05,
        "Adadelta": 10.0,
        "Adam": 0.1,
        "Adamax": 0.1,
        "Nadam": 0.1,
    },
    "saddle": {
        "SGD": 0.05,
        "Momentum": 0.02,
        "Nesterov": 0.02,
        "Adagrad": 0.2,
        "RMSprop": 0.02,
        "Adadelta": 10.0,
        "Adam": 0.05,
        "Adamax": 0.05,
        "Nadam": 0.05,
    },
    "rosenbrock": {
        "SGD": 0.0007,
        "Momentum": 0.0002,
        "Nesterov": 0.0002,
        "Adagrad": 0.2,
        "RMSprop": 0.005,
        "Adadelta": 10.0,
        "Adam": 0.02,
        "Adamax": 0.02,
        "Nadam": 0.02,
    },
    "beale": {
        "SGD": 0.01,
        "Momentum": 0.002,
        "Nesterov": 0.002,
        "Adagrad": 0.5,
        "RMSprop": 0.01,
        "Adadelta": 10.0,
        "Adam": 0.05,
        "Adamax": 0.05,
        "Nadam": 0.05,
    },
}
SWEEP_RATES = (
    (0.01, "too small"),
    (0.05, "about right"),
    (0.09, "oscillates"),
    (0.105, "diverges"),
)
SWEEP_STEPS = 40
MOMENTUM_FAMILY = ("sgd", "momentum", "nesterov")
FAMILY_TITLES = {
    "momentum": "gradient descent and momentum",
    "adaptive": "adaptive learning rates",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--surfaces",
        nargs="+",
        default=["quadratic", "saddle", "rosenbrock"],
        help=f"any of {', '.join(plotting.SURFACES)}",
    )
    parser.add_argument(
        "--optimizers",
        nargs="+",
        default=list(LEARNING_RATES["quadratic"]),
        help="names, space- or comma-separated (default: the lectures' nine)",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per path (default per surface)"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="one learning rate for all (default: a tuned one per optimizer)",
    )
    parser.add_argument(
        "--gif",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write animated GIFs where Pillow is installed (default: on)",
    )
    parser.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also draw gradient descent with several learning rates",
    )
    parser.add_argument("--out", default="trajectories", help="output folder")
    args = parser.parse_args(argv)
    args.optimizers = [n for item in args.optimizers for n in item.split(",") if n]
    return args


def learning_rate_for(args: argparse.Namespace, surface: str, name: str) -> float:
    """The flag's learning rate, or the tuned one for this optimizer."""
    if args.learning_rate is not None:
        return args.learning_rate
    table = LEARNING_RATES[surface]
    for key, value in table.items():
        if key.lower() == name.lower():
            return value
    default = optimizers.get(name).learning_rate
    return float(keras.ops.convert_to_numpy(default))


def run(args: argparse.Namespace) -> int:
    """Trace every optimizer on every surface and save the pictures."""
    surfaces = [plotting.get_surface(name) for name in args.surfaces]
    if not args.optimizers:
        raise ValueError("--optimizers: give at least one optimizer name")
    for name in args.optimizers:
        optimizers.get(name)  # a ValueError for an unknown name
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps={args.steps} must be a positive integer")
    print(_cli.describe_device())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt

    colors = {
        name.lower(): plt.get_cmap("tab10")(i % 10)
        for i, name in enumerate(args.optimizers)
    }
    for surface in surfaces:
        steps = args.steps or STEPS[surface.name]
        paths, families, label_colors = {}, {}, {}
        for name in args.optimizers:
            rate = learning_rate_for(args, surface.name, name)
            optimizer = optimizers.get(name, learning_rate=rate)
            label = f"{type(optimizer).__name__} (lr={rate:g})"
            paths[label] = plotting.trace_optimizer(optimizer, surface, steps)
            label_colors[label] = colors[name.lower()]
            family = "momentum" if name.lower() in MOMENTUM_FAMILY else "adaptive"
            families.setdefault(family, {})[label] = paths[label]
            end = paths[label][-1]
            print(
                f"{surface.name}: {label}: {len(paths[label]) - 1} steps, "
                f"ends at ({end[0]:.4g}, {end[1]:.4g}), "
                f"f = {float(surface.value(end[0], end[1])):.3g}"
            )
        png = out / f"trajectory_{surface.name}.png"
        fig, axes = plt.subplots(
            1, len(families), figsize=(6.5 * len(families), 5.6), layout="constrained"
        )
        axes = np.atleast_1d(axes)
        for ax, (family, group) in zip(axes, families.items(), strict=True):
            plotting.plot_trajectories(
                surface, group, title=FAMILY_TITLES[family], colors=label_colors, ax=ax
            )
        fig.suptitle(f"{surface.title}: {steps} steps from the same start")
        fig.savefig(png, dpi=110)
        plt.close(fig)
        print(f"wrote {png}")
        if args.gif:
            gif = out / f"trajectory_{surface.name}.gif"
            title = f"{surface.title}, {steps} steps"
            if plotting.animate_trajectories(surface, paths, gif, title=title):
                print(f"wrote {gif}")
            else:
                print("GIF skipped: Pillow is not installed")

    if args.sweep:
        surface = plotting.get_surface("quadratic")
        fig, axes = plt.subplots(2, 2, figsize=(11, 9), layout="constrained")
        for ax, (rate, verdict) in zip(axes.flat, SWEEP_RATES, strict=True):
            optimizer = optimizers.SGD(learning_rate=rate)
            path = plotting.trace_optimizer(optimizer, surface, SWEEP_STEPS, bound=3.5)
            plotting.plot_trajectories(
                surface,
                {f"SGD lr={rate:g}": path},
                title=f"learning rate {rate:g}: {verdict}",
                ax=ax,
            )
        fig.suptitle(
            f"gradient descent on {surface.title}, {SWEEP_STEPS} steps; "
            "stable for learning rates below 2/20 = 0.1"
        )
        png = out / "trajectory_learning_rates.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        print(f"wrote {png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _cli.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
