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
#: One panel per family, titled by its members; paths of one family often
#: run on top of each other, and the panel tells them apart by line style.
FAMILIES = (
    ("SGD", "Momentum", "Nesterov"),
    ("Adagrad", "RMSprop", "Adadelta"),
    ("Adam", "Adamax", "Nadam"),
)
OTHER_FAMILY = "other per-weight rates"


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
    # Fonts sized for a documentation page and a phone (plotting.PAGE_STYLE).
    with plt.rc_context(plotting.PAGE_STYLE):
        for surface in surfaces:
            draw_surface(args, surface, colors, out)
        if args.sweep:
            draw_sweep(out)
    return 0


def family_of(name: str) -> str:
    """The panel of optimizer `name`: its family's members, or the others'."""
    for family in FAMILIES:
        if name.lower() in (member.lower() for member in family):
            return ", ".join(family)
    return OTHER_FAMILY


def draw_surface(args: argparse.Namespace, surface, colors, out: Path) -> None:
    """Trace every optimizer on `surface`; one panel per family, one legend."""
    import matplotlib.pyplot as plt

    steps = args.steps or STEPS[surface.name]
    paths, families, label_colors = {}, {}, {}
    for name in args.optimizers:
        rate = learning_rate_for(args, surface.name, name)
        optimizer = optimizers.get(name, learning_rate=rate)
        label = f"{type(optimizer).__name__} (lr={rate:g})"
        paths[label] = plotting.trace_optimizer(optimizer, surface, steps)
        label_colors[label] = colors[name.lower()]
        families.setdefault(family_of(name), {})[label] = paths[label]
        end = paths[label][-1]
        print(
            f"{surface.name}: {label}: {len(paths[label]) - 1} steps, "
            f"ends at ({end[0]:.4g}, {end[1]:.4g}), "
            f"f = {float(surface.value(end[0], end[1])):.3g}"
        )
    png = out / f"trajectory_{surface.name}.png"
    # Two panels a row: gradient descent and momentum on the left, the
    # adaptive families on the right, the legend in the bottom-left cell.
    rows = len(families) // 2 + 1
    fig, axes = plt.subplots(
        rows, 2, figsize=(6.6, 0.4 + 3.3 * rows), layout="constrained", squeeze=False
    )
    legend_cell = axes[-1, 0]
    cells = [ax for ax in axes.flat if ax is not legend_cell]
    order = [", ".join(family) for family in FAMILIES] + [OTHER_FAMILY]
    groups = sorted(families.items(), key=lambda item: order.index(item[0]))
    for ax, (family, group) in zip(cells, groups, strict=False):
        plotting.plot_trajectories(
            surface, group, title=family, colors=label_colors, legend=False, ax=ax
        )
    for ax in cells[len(groups) :]:
        ax.set_axis_off()
    legend_cell.set_axis_off()
    legend_cell.legend(
        *legend_entries(cells[: len(groups)]), loc="center", frameon=False
    )
    fig.suptitle(f"{surface.title}: {steps} steps from the same start")
    fig.savefig(png)
    plt.close(fig)
    print(f"wrote {png}")
    if args.gif:
        gif = out / f"trajectory_{surface.name}.gif"
        title = f"{surface.title}, {steps} steps"
        if plotting.animate_trajectories(surface, paths, gif, title=title):
            print(f"wrote {gif}")
        else:
            print("GIF skipped: Pillow is not installed")


def draw_sweep(out: Path) -> None:
    """Gradient descent on the valley with learning rates from small to too large."""
    import matplotlib.pyplot as plt

    surface = plotting.get_surface("quadratic")
    fig, axes = plt.subplots(2, 2, figsize=(6.6, 8.4), layout="constrained")
    for ax, (rate, verdict) in zip(axes.flat, SWEEP_RATES, strict=True):
        optimizer = optimizers.SGD(learning_rate=rate)
        path = plotting.trace_optimizer(optimizer, surface, SWEEP_STEPS, bound=3.5)
        plotting.plot_trajectories(
            surface,
            {"gradient descent": path},
            title=f"lr={rate:g}: {verdict}",
            legend=False,
            ax=ax,
        )
    fig.legend(
        *legend_entries(axes.flat[:1]),
        loc="outside lower center",
        ncols=3,
        frameon=False,
    )
    fig.suptitle(
        f"gradient descent on {surface.title}, {SWEEP_STEPS} steps;\n"
        "stable for learning rates below 2/20 = 0.1"
    )
    png = out / "trajectory_learning_rates.png"
    fig.savefig(png)
    plt.close(fig)
    print(f"wrote {png}")


def legend_entries(axes) -> tuple[list, list[str]]:
    """The handles and labels of all `axes`, each label once, markers last."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    labels = sorted(handles, key=lambda label: label in ("start", "minimum"))
    return [handles[label] for label in labels], labels


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _cli.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
