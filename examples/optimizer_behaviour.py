"""Pictures of the per-weight and quasi-Newton optimizers at work.

Example::

    python examples/optimizer_behaviour.py --out docs/images
    python examples/optimizer_behaviour.py --mnist ../shared/data/mnist-subset.npz

Writes four figures:

* ``optimizer_delta_bar_delta.png``: gradient descent and DeltaBarDelta on the
  long valley 10*theta1^2 + 0.5*theta2^2, and the two per-weight gains: the
  gain of the oscillating steep direction shrinks, the gain of the flat one
  grows.
* ``optimizer_rprop.png``: Rprop's two step sizes on the same valley, and
  logistic regression trained by Rprop on full batches, by Rprop on
  minibatches and by RMSprop on minibatches (the lecture's reason for
  RMSprop).
* ``optimizer_lbfgs.png``: L-BFGS, Adam and SGD on the valley, and full-batch
  logistic regression on real MNIST (skipped, with a note, when the data file
  is absent).
* ``optimizer_weight_decay.png``: coupled ``l2`` against Keras's decoupled
  ``weight_decay`` with zero loss gradient, for Adam and for plain SGD.

Every path is made by the package's optimizer classes moving
``keras.Variable`` objects; matplotlib is imported only when drawing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import _cli
import keras
import numpy as np

from keras_adaptive import datasets, optimizers, plotting

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared/data/mnist-subset.npz"
VALLEY = plotting.get_surface("quadratic")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def trace(optimizer, steps: int, record=None):
    """The optimizer's path on the valley, and `record(optimizer)` per step."""
    theta = [keras.Variable(np.float32(c)) for c in VALLEY.start]
    path, recorded = [tuple(VALLEY.start)], []
    for _ in range(steps):
        x, y = (float(keras.ops.convert_to_numpy(v)) for v in theta)
        grads = [np.float32(g) for g in VALLEY.gradient(x, y)]
        optimizer.apply(grads, theta)
        path.append(tuple(float(keras.ops.convert_to_numpy(v)) for v in theta))
        if record is not None:
            recorded.append(record(optimizer))
    return np.asarray(path), np.asarray(recorded)


def _slot_values(slots):
    return [float(keras.ops.convert_to_numpy(s)) for s in slots]


def plot_delta_bar_delta(out: Path, steps: int = 60) -> Path:
    plt = _pyplot()
    sgd, _ = trace(optimizers.SGD(learning_rate=0.04), steps)
    optimizer = optimizers.DeltaBarDelta(learning_rate=0.04)
    path, gains = trace(optimizer, steps, lambda o: _slot_values(o._gains))
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.6, 4.6), layout="constrained")
    plotting.plot_trajectories(
        VALLEY,
        {"SGD (eta 0.04)": sgd, "DeltaBarDelta (eta 0.04)": path},
        ax=left,
        title=f"long valley: {steps} steps",
    )
    t = np.arange(1, steps + 1)
    right.plot(t, gains[:, 0], label=r"gain of $\theta_1$ (steep)")
    right.plot(t, gains[:, 1], label=r"gain of $\theta_2$ (flat)")
    right.set_xlabel("step")
    right.set_ylabel("gain (per weight)")
    right.set_title("gains: +0.05 while the sign\nholds, ×0.95 on a flip")
    right.grid(True, alpha=0.3)
    right.legend()
    return _save(fig, out / "optimizer_delta_bar_delta.png")


def logistic_data(samples: int = 2000, features: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, features)).astype("float32")
    w = rng.standard_normal(features)
    p = 1.0 / (1.0 + np.exp(-(x @ w)))
    y = (rng.random(samples) < p).astype("float32")
    return x, y


def logistic_losses(optimizer, batch: int, epochs: int, x, y) -> list[float]:
    """Full-data loss after each epoch of logistic regression."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((x.shape[1],)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    model.compile(
        optimizer=optimizer, loss=keras.losses.BinaryCrossentropy(from_logits=True)
    )
    losses = [float(model.evaluate(x, y, batch_size=len(x), verbose=0))]
    for _ in range(epochs):
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0)
        losses.append(float(model.evaluate(x, y, batch_size=len(x), verbose=0)))
    return losses


def plot_rprop(out: Path, steps: int = 60, epochs: int = 30) -> Path:
    plt = _pyplot()
    _, sizes = trace(
        optimizers.Rprop(learning_rate=0.1),
        steps,
        lambda o: _slot_values(o._step_sizes),
    )
    x, y = logistic_data()
    curves = {
        "Rprop, full batch": logistic_losses(
            optimizers.Rprop(0.01), len(x), epochs, x, y
        ),
        "Rprop, minibatch 32": logistic_losses(
            optimizers.Rprop(0.01), 32, epochs, x, y
        ),
        "RMSprop, minibatch 32": logistic_losses(
            optimizers.RMSprop(0.01), 32, epochs, x, y
        ),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.6, 4.6), layout="constrained")
    t = np.arange(1, steps + 1)
    left.semilogy(t, sizes[:, 0], label=r"$\Delta$ of $\theta_1$ (steep)")
    left.semilogy(t, sizes[:, 1], label=r"$\Delta$ of $\theta_2$ (flat)")
    left.set_xlabel("step")
    left.set_ylabel("step size (log scale)")
    left.set_title("long valley: ×1.2 while the sign\nholds, ×0.5 on a flip")
    left.grid(True, which="both", alpha=0.3)
    left.legend(loc="upper right")
    for label, losses in curves.items():
        right.plot(np.arange(len(losses)), losses, marker="o", ms=3, label=label)
    right.set_xlabel("epoch (full batch: one step)")
    right.set_ylabel("training loss (full data)")
    right.set_title("logistic regression,\n2000 samples")
    right.grid(True, alpha=0.3)
    right.legend(loc="upper right")
    return _save(fig, out / "optimizer_rprop.png")


def mnist_losses(optimizer, x, y, steps: int) -> list[float]:
    """Full-batch softmax-regression loss on MNIST before and after each step."""
    model = keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(10, kernel_initializer="zeros")]
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    history = model.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
    final = float(model.evaluate(x, y, batch_size=len(x), verbose=0))
    return history.history["loss"] + [final]


def plot_lbfgs(out: Path, mnist: Path, steps: int = 60) -> Path:
    plt = _pyplot()
    paths = {
        "L-BFGS (eta 1)": trace(optimizers.LBFGS(), 12)[0],
        "Adam (eta 0.1)": trace(optimizers.Adam(0.1), 12)[0],
        "SGD (eta 0.09)": trace(optimizers.SGD(0.09), 12)[0],
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.6, 4.6), layout="constrained")
    plotting.plot_trajectories(VALLEY, paths, ax=left, title="long valley: 12 steps")
    if mnist.exists():
        _cli.keep_tensorflow_off_gpus()
        data = datasets.load(  # scaled to [0, 1]; each split in a single batch
            "mnist", npz=mnist, batch_size=70_000, validation_fraction=0, shuffle=False
        )
        x, y = next(data.train.as_numpy_iterator())
        x = x.reshape(len(x), -1)
        runs = {
            "L-BFGS (eta 1)": optimizers.LBFGS(),
            "Adam (eta 0.1)": optimizers.Adam(0.1),
            "SGD (eta 1)": optimizers.SGD(1.0),
        }
        for label, optimizer in runs.items():
            losses = mnist_losses(optimizer, x, y, steps)
            right.semilogy(np.arange(len(losses)), losses, label=label)
            print(f"MNIST logistic regression, {label}: {losses[-1]:.4f}")
        right.set_title(f"softmax regression,\n{len(x)} MNIST images, full batch")
        right.set_xlabel("step")
        right.set_ylabel("training loss (log scale)")
        right.grid(True, which="both", alpha=0.3)
        right.legend(loc="upper right")
    else:
        print(f"MNIST file {mnist} not found: the right panel is left empty.")
        right.text(0.5, 0.5, "MNIST data not found", ha="center", va="center")
        right.set_axis_off()
    return _save(fig, out / "optimizer_lbfgs.png")


def decay_paths(make, steps: int, w0) -> np.ndarray:
    variable = keras.Variable(np.asarray(w0, "float32"))
    optimizer = make()
    values = [np.asarray(w0, "float64")]
    for _ in range(steps):
        optimizer.apply([np.zeros(len(w0), "float32")], [variable])
        values.append(keras.ops.convert_to_numpy(variable).astype("float64"))
    return np.asarray(values)


def plot_weight_decay(out: Path, steps: int = 300) -> Path:
    plt = _pyplot()
    w0 = [2.0, 0.5]
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 4.6), layout="constrained")
    cases = [  # the legend where no curve is
        ("Adam, eta 0.001", optimizers.Adam, 0.001, 1.0, "center right"),
        ("SGD, eta 0.1", optimizers.SGD, 0.1, 0.05, "upper right"),
    ]
    t = np.arange(steps + 1)
    for ax, (title, cls, eta, lam, legend_place) in zip(axes, cases, strict=True):
        coupled = decay_paths(lambda c=cls, e=eta, a=lam: c(e, l2=a), steps, w0)
        decoupled = decay_paths(
            lambda c=cls, e=eta, a=lam: c(e, weight_decay=a), steps, w0
        )
        for i, start in enumerate(w0):
            color = f"C{i}"
            # Wide solid under narrow dashed: both show where they coincide.
            ax.plot(t, coupled[:, i], "-", color=color, lw=3.4, label=f"w0={start}")
            ax.plot(t, decoupled[:, i], "--", color="black", lw=1.4)
        ax.plot([], [], "--", color="black", lw=1.4, label="weight_decay")
        ax.set_xlabel("step (loss gradient 0)")
        ax.set_ylabel("weight")
        ax.set_title(f"{title}, λ = {lam}:\nl2 (solid), weight_decay (dashed)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc=legend_place)
    return _save(fig, out / "optimizer_weight_decay.png")


def _save(fig, path: Path) -> Path:
    fig.savefig(path)
    _pyplot().close(fig)
    print(f"wrote {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST)
    parser.add_argument(
        "--mnist-steps", type=int, default=60, help="full-batch steps on MNIST"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # Fonts sized for a documentation page and a phone (plotting.PAGE_STYLE).
    with _pyplot().rc_context(plotting.PAGE_STYLE):
        plot_delta_bar_delta(args.out)
        plot_rprop(args.out)
        plot_lbfgs(args.out, args.mnist, args.mnist_steps)
        plot_weight_decay(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
