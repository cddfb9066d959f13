"""Adam with a fixed learning rate against Adam with CoolDownOnPlateau, on real MNIST.

Both runs start from the same weights and get the same epoch budget. The
cool-down run holds out the same validation images, reduces the learning rate
by 10 when the validation loss plateaus (at most three times), then stops and
restores its best weights. The script prints the test accuracy and the epochs
used by each run, draws the loss and learning rate against epochs, and the
learning-rate range test of the same model.

    python examples/cooldown_mnist.py --data ../shared/data/mnist-subset.npz \\
        --out docs/images

Works with ``KERAS_BACKEND=tensorflow`` or ``jax``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_adaptive import datasets, find_learning_rate
from keras_adaptive.callbacks import CoolDownOnPlateau

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-subset.npz"
)


def load(path: Path, n_train: int | None = None, n_test: int | None = None):
    """Images scaled to [0, 1] and flattened; the last 10% of train validate.

    `keras_adaptive.datasets` reads and checks the Keras-format file and
    scales the pixels.
    """
    if keras.backend.backend() != "tensorflow":  # TensorFlow only reads the data
        with contextlib.suppress(RuntimeError):  # its devices are already set up
            tf.config.set_visible_devices([], "GPU")
    data = datasets.load(  # MNIST has 70,000 images: each split in a single batch
        "mnist", npz=path, batch_size=70_000, validation_fraction=0, shuffle=False
    )
    (x, y), (x_test, y_test) = (
        next(split.as_numpy_iterator()) for split in (data.train, data.test)
    )
    x, y = x[:n_train].reshape(-1, 784), y[:n_train]
    x_test, y_test = x_test[:n_test].reshape(-1, 784), y_test[:n_test]
    n_val = len(x) // 10
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:]), (x_test, y_test)


def build_model(seed: int, learning_rate: float) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    return model


def run(
    data_path: Path = DEFAULT_DATA,
    epochs: int = 40,
    n_train: int | None = None,
    n_test: int | None = None,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    patience: int = 2,
    seed: int = 0,
    out_dir: Path | None = None,
    range_steps: int = 120,
    verbose: int = 0,
) -> dict:
    """Train both runs; return their histories, test accuracies and epochs used."""
    train, val, test = load(data_path, n_train, n_test)
    results = {}
    initial = build_model(seed, learning_rate).get_weights()
    for name in ("fixed", "cooldown"):
        model = build_model(seed, learning_rate)
        model.set_weights(initial)
        callbacks = []
        if name == "cooldown":
            policy = CoolDownOnPlateau(
                monitor="val_loss", patience=patience, max_reductions=3, verbose=verbose
            )
            callbacks.append(policy)
        start = time.perf_counter()
        history = model.fit(
            *train,
            validation_data=val,
            epochs=epochs,
            batch_size=batch_size,
            callbacks=callbacks,
            verbose=verbose,
        )
        seconds = time.perf_counter() - start
        _, accuracy = model.evaluate(*test, batch_size=1000, verbose=0)
        logged = history.history
        if "learning_rate" not in logged:
            logged["learning_rate"] = [learning_rate] * len(logged["loss"])
        results[name] = {
            "history": logged,
            "test_accuracy": float(accuracy),
            "epochs": len(logged["loss"]),
            "seconds": seconds,
        }
        if name == "cooldown":
            results[name]["best_epoch"] = policy.best_epoch
            results[name]["reductions"] = policy.reductions
    results["range_test"] = find_learning_rate(
        build_model(seed, learning_rate),
        *train,
        batch_size=batch_size,
        min_lr=1e-5,
        max_lr=1.0,
        num_steps=range_steps,
        plot=out_dir is not None,
    )
    if out_dir is not None:
        plot(results, Path(out_dir))
    return results


def plot(results: dict, out_dir: Path) -> list[Path]:
    """Loss and learning rate against epochs; the range test curve."""
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(7.5, 6.5), layout="constrained")
    loss_ax, rate_ax = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    styles = {
        "fixed": ("tab:blue", "Adam, fixed rate"),
        "cooldown": ("tab:orange", "Adam + CoolDownOnPlateau"),
    }
    for name, (color, label) in styles.items():
        history = results[name]["history"]
        epochs = np.arange(1, len(history["loss"]) + 1)
        loss_ax.plot(
            epochs,
            history["loss"],
            color=color,
            linestyle="--",
            label=f"{label}: training loss",
        )
        loss_ax.plot(
            epochs, history["val_loss"], color=color, label=f"{label}: validation loss"
        )
        rate_ax.step(
            epochs, history["learning_rate"], where="mid", color=color, label=label
        )
    best = results["cooldown"].get("best_epoch")
    if best is not None:
        for ax in (loss_ax, rate_ax):
            ax.axvline(
                best + 1,
                color="grey",
                linestyle=":",
                label="best epoch (restored)" if ax is loss_ax else None,
            )
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("cross-entropy loss (log scale)")
    loss_ax.set_title("MNIST, MLP 784-256-10: cool down on plateau vs fixed rate")
    loss_ax.legend(fontsize="small")
    loss_ax.grid(True, alpha=0.3)
    rate_ax.set_yscale("log")
    rate_ax.set_xlabel("epoch")
    rate_ax.set_ylabel("learning rate (log scale)")
    rate_ax.legend(fontsize="small")
    rate_ax.grid(True, which="both", alpha=0.3)
    paths = [out_dir / "callbacks_mnist_loss_lr.png"]
    figure.savefig(paths[0], dpi=110)
    range_figure = results["range_test"].figure
    if range_figure is not None:
        range_figure.axes[0].set_title("Learning-rate range test: MNIST MLP, Adam")
        paths.append(out_dir / "callbacks_range_test.png")
        range_figure.savefig(paths[1], dpi=110)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()
    results = run(args.data, epochs=args.epochs, out_dir=args.out, verbose=args.verbose)
    for name in ("fixed", "cooldown"):
        result = results[name]
        print(
            f"{name:>8}: test accuracy {result['test_accuracy']:.4f}, "
            f"{result['epochs']} of {args.epochs} epochs, {result['seconds']:.1f} s"
        )
    cooldown = results["cooldown"]
    print(
        f"cooldown: {cooldown['reductions']} reductions, best epoch "
        f"{cooldown['best_epoch'] + 1}"
    )
    print(
        "range test: suggested learning rate "
        f"{results['range_test'].suggested_learning_rate:.3g}"
    )


if __name__ == "__main__":
    main()
