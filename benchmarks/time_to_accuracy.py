"""Time to accuracy on real MNIST: optimizers at their defaults, and the
learning-rate policies against the Keras recipe.

Two parts, each over several seeds (mean and standard deviation):

* ``optimizers``: every optimizer of the package with its default
  hyperparameters (the papers' values) trains the MLP 784-256-10 (ReLU) and
  logistic regression 784-10 for a fixed number of epochs, batch 128 (the
  full-batch methods `Rprop` and `LBFGS` with the whole training set as one
  batch, as their documentation asks). Recorded per epoch: the training cost
  (mean cross-entropy of the epoch's batches, the quantity of Kingma & Ba
  2015, Figure 2) and the test accuracy; reported: the final test accuracy
  and the first epoch at which the MLP reaches 97 % test accuracy.
* ``policies``: `Momentum` and `Adam` on the MLP and on a small CNN (3x3
  convolutions with 8 and 16 channels, each followed by 2x2 max pooling,
  then 10 outputs) with the same epoch budget under five policies: a fixed
  rate; Keras's recipe, ``ReduceLROnPlateau(factor=0.1, patience=p)`` with
  ``EarlyStopping(patience=2p, restore_best_weights=True)``;
  ``keras_adaptive.callbacks.CoolDownOnPlateau(patience=p)`` (at most 3
  reductions, its default); ``BoldDriver()`` (per epoch, on the training
  loss); cosine decay of the rate to 0 over the budget. The monitors watch
  the validation loss of the last 10 % of the training images; the test set
  is used only for the reported accuracy. Reported: test accuracy and epochs
  used.

The data is ``../shared/data/mnist-subset.npz`` (19,690 training and 10,000
test images), read, checked and scaled to [0, 1] by
``keras_adaptive.datasets`` (as in ``examples/cooldown_mnist.py``). The
backend is KERAS_BACKEND's (JAX is the fastest on CPU).

    KERAS_BACKEND=jax python benchmarks/time_to_accuracy.py --part optimizers \\
        --out benchmarks/results/time_to_accuracy_optimizers_jax.json
    KERAS_BACKEND=jax python benchmarks/time_to_accuracy.py --part policies \\
        --out benchmarks/results/time_to_accuracy_policies_jax.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import environment  # noqa: E402

from keras_adaptive import datasets  # noqa: E402
from keras_adaptive import optimizers as ours  # noqa: E402
from keras_adaptive.callbacks import BoldDriver, CoolDownOnPlateau  # noqa: E402

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-subset.npz"
)
#: Optimizers trained on the whole training set as one batch.
FULL_BATCH = ("Rprop", "LBFGS")
#: Test accuracy whose first epoch is reported for the MLP.
TARGET_ACCURACY = 0.97
POLICIES = ("fixed", "keras_recipe", "cool_down", "bold_driver", "cosine")
POLICY_OPTIMIZERS = ("Momentum", "Adam")
BATCH = 128


def load(path: Path, n_train: int | None = None, n_test: int | None = None):
    """(x_train, y_train), (x_test, y_test): `keras_adaptive.datasets` reads
    and checks the Keras-format file and scales the images to [0, 1]."""
    data = datasets.load(  # MNIST has 70,000 images: each split in a single batch
        "mnist", npz=path, batch_size=70_000, validation_fraction=0, shuffle=False
    )
    (x, y), (x_test, y_test) = (
        next(split.as_numpy_iterator()) for split in (data.train, data.test)
    )
    return (x[:n_train], y[:n_train]), (x_test[:n_test], y_test[:n_test])


def build_model(kind: str, seed: int) -> keras.Model:
    """ "mlp" (784-256-10), "logreg" (784-10) or "cnn", seeded."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((28, 28, 1))]
    if kind == "cnn":
        layers += [
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
        ]
    else:
        layers.append(keras.layers.Flatten())
        if kind == "mlp":
            layers.append(keras.layers.Dense(256, activation="relu"))
        elif kind != "logreg":
            raise ValueError(f"Unknown model {kind!r}; mlp, logreg or cnn.")
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)


def compile_model(model: keras.Model, optimizer) -> None:
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def _test_accuracy(model, x_test, y_test) -> float:
    return float(model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1])


def run_optimizer(name, kind, seed, epochs, train, test) -> dict:
    """One optimizer at its defaults on one model: per-epoch cost and accuracy."""
    (x, y), (x_test, y_test) = train, test
    model = build_model(kind, seed)
    compile_model(model, getattr(ours, name)())
    batch = len(x) if name in FULL_BATCH else BATCH
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        batch_size=batch,
        epochs=epochs,
        validation_data=(x_test, y_test),
        validation_batch_size=1000,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    accuracy = [float(a) for a in history.history["val_accuracy"]]
    reached = [i + 1 for i, a in enumerate(accuracy) if a >= TARGET_ACCURACY]
    return {
        "optimizer": name,
        "model": kind,
        "seed": seed,
        "batch_size": batch,
        "iterations_per_epoch": math.ceil(len(x) / batch),
        "train_loss": [float(v) for v in history.history["loss"]],
        "test_accuracy_per_epoch": accuracy,
        "test_accuracy": accuracy[-1],
        "epochs_to_target": reached[0] if reached else None,
        "seconds": seconds,
    }


def policy_setup(policy: str, optimizer_name: str, epochs: int, steps: int, p: int):
    """The optimizer and callbacks of one policy (rates at the defaults)."""
    cls = getattr(ours, optimizer_name)
    rate = cls().learning_rate
    rate = float(keras.ops.convert_to_numpy(rate))
    callbacks: list = []
    if policy == "cosine":
        optimizer = cls(
            learning_rate=keras.optimizers.schedules.CosineDecay(rate, epochs * steps)
        )
    else:
        optimizer = cls(learning_rate=rate)
    if policy == "keras_recipe":
        callbacks = [
            keras.callbacks.ReduceLROnPlateau(factor=0.1, patience=p),
            keras.callbacks.EarlyStopping(patience=2 * p, restore_best_weights=True),
        ]
    elif policy == "cool_down":
        callbacks = [CoolDownOnPlateau(monitor="val_loss", patience=p)]
    elif policy == "bold_driver":
        callbacks = [BoldDriver()]
    elif policy not in ("fixed", "cosine"):
        raise ValueError(f"Unknown policy {policy!r}; one of {POLICIES}.")
    return optimizer, callbacks


def run_policy(policy, optimizer_name, kind, seed, epochs, patience, train, test):
    """One policy: test accuracy of the final (or restored best) weights."""
    (x, y), (x_test, y_test) = train, test
    n_val = len(x) // 10
    x_fit, y_fit, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    steps = math.ceil(len(x_fit) / BATCH)
    model = build_model(kind, seed)
    optimizer, callbacks = policy_setup(policy, optimizer_name, epochs, steps, patience)
    compile_model(model, optimizer)
    start = time.perf_counter()
    history = model.fit(
        x_fit,
        y_fit,
        batch_size=BATCH,
        epochs=epochs,
        validation_data=(x_val, y_val),
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    return {
        "policy": policy,
        "optimizer": optimizer_name,
        "model": kind,
        "seed": seed,
        "epochs_used": len(history.history["loss"]),
        "val_loss": [float(v) for v in history.history["val_loss"]],
        "test_accuracy": _test_accuracy(model, x_test, y_test),
        "seconds": seconds,
    }


def _mean_std(values: Sequence[float]) -> str:
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if values.size == 0:
        return "–"
    return f"{values.mean():.4f} ± {values.std(ddof=1) if values.size > 1 else 0:.4f}"


def optimizers_table(runs: Sequence[dict]) -> str:
    """Mean ± std over seeds: final test accuracy, training cost, epochs to 97 %."""
    lines = [
        "| optimizer | batch | MLP test acc. | MLP final train cost | MLP epochs "
        "to 97 % (runs reaching it) | logreg test acc. | logreg final train cost |",
        "|---|---:|---|---|---|---|---|",
    ]
    names = list(dict.fromkeys(run["optimizer"] for run in runs))
    for name in names:
        cells = [name]
        mlp = [r for r in runs if r["optimizer"] == name and r["model"] == "mlp"]
        log = [r for r in runs if r["optimizer"] == name and r["model"] == "logreg"]
        cells.append(str((mlp or log)[0]["batch_size"]))
        for group, with_epochs in ((mlp, True), (log, False)):
            cells.append(_mean_std([r["test_accuracy"] for r in group]))
            cells.append(_mean_std([r["train_loss"][-1] for r in group]))
            if with_epochs:
                reached = [r["epochs_to_target"] for r in group]
                hits = [e for e in reached if e is not None]
                spread = np.std(hits, ddof=1) if len(hits) > 1 else 0.0
                text = f"{np.mean(hits):.1f} ± {spread:.1f}" if hits else "–"
                cells.append(f"{text} ({len(hits)}/{len(group)})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def policies_table(runs: Sequence[dict]) -> str:
    """Mean ± std over seeds of test accuracy and epochs used, per policy."""
    lines = [
        "| model | optimizer | policy | test accuracy | epochs used |",
        "|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((r["model"], r["optimizer"], r["policy"]) for r in runs))
    for kind, name, policy in keys:
        group = [
            r
            for r in runs
            if (r["model"], r["optimizer"], r["policy"]) == (kind, name, policy)
        ]
        epochs = [r["epochs_used"] for r in group]
        spread = np.std(epochs, ddof=1) if len(epochs) > 1 else 0.0
        lines.append(
            f"| {kind} | {name} | {policy} "
            f"| {_mean_std([r['test_accuracy'] for r in group])} "
            f"| {np.mean(epochs):.1f} ± {spread:.1f} |"
        )
    return "\n".join(lines)


def plot_costs(runs: Sequence[dict], path: str | Path) -> None:
    """Training cost against passes over the training set, mean over seeds, as
    in Kingma & Ba (2015), Figure 2 (full-batch methods dashed: one iteration
    per pass, against 154 of batch 128). One panel per model, stacked, and a
    marker per optimizer, so that the lines read on a narrow screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("mlp", "logreg") if any(r["model"] == k for r in runs)]
    fig, axes = plt.subplots(
        len(kinds),
        1,
        figsize=(6.4, 4.2 * len(kinds) + 1.0),
        squeeze=False,
        layout="constrained",
    )
    titles = {"logreg": "logistic regression 784-10", "mlp": "MLP 784-256-10"}
    names = list(dict.fromkeys(r["optimizer"] for r in runs))
    colors = plt.cm.tab10(np.arange(len(names)) % 10)
    markers = "osD^v<>phX*P"
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        for i, name in enumerate(names):
            group = [r for r in runs if r["model"] == kind and r["optimizer"] == name]
            if not group:
                continue
            losses = np.mean([r["train_loss"] for r in group], axis=0)
            epochs = np.arange(1, len(losses) + 1)
            style = "--" if name in FULL_BATCH else "-"
            ax.plot(
                epochs,
                losses,
                style,
                marker=markers[i % len(markers)],
                markersize=4,
                label=name,
                color=colors[i],
            )
        ax.set_yscale("log")
        ax.set_ylabel("training cost", fontsize=11)
        ax.set_title(titles[kind], fontsize=12)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("passes over the training set (epochs)", fontsize=11)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("optimizers", "policies"), required=True)
    parser.add_argument("--npz", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--samples", type=int, default=None, help="train images")
    parser.add_argument("--test-samples", type=int, default=None)
    parser.add_argument("--only", nargs="+", help="optimizers (part optimizers)")
    parser.add_argument(
        "--models", nargs="+", help="models (default: mlp logreg, or mlp cnn)"
    )
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--out", metavar="FILE.json")
    parser.add_argument("--figure", metavar="FILE.png", help="training-cost plot")
    args = parser.parse_args(argv)

    if keras.backend.backend() != "tensorflow":  # TensorFlow only reads the data
        with contextlib.suppress(RuntimeError):  # its devices are already set up
            tf.config.set_visible_devices([], "GPU")
    train, test = load(args.npz, args.samples, args.test_samples)
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    runs = []
    if args.part == "optimizers":
        names = args.only or [cls.__name__ for cls in ours.ALL_OPTIMIZERS]
        for kind in args.models or ["mlp", "logreg"]:
            for name in names:
                for seed in range(args.seeds):
                    runs.append(
                        run_optimizer(name, kind, seed, args.epochs, train, test)
                    )
                    r = runs[-1]
                    log(
                        f"{kind} {name} seed {seed}: test {r['test_accuracy']:.4f}, "
                        f"97% at {r['epochs_to_target']}, {r['seconds']:.0f}s"
                    )
                    save(args, runs)
        table = optimizers_table(runs)
        if args.figure:
            plot_costs(runs, args.figure)
    else:
        for kind in args.models or ["mlp", "cnn"]:
            for name in POLICY_OPTIMIZERS:
                for policy in args.policies:
                    for seed in range(args.seeds):
                        runs.append(
                            run_policy(
                                policy,
                                name,
                                kind,
                                seed,
                                args.epochs,
                                args.patience,
                                train,
                                test,
                            )
                        )
                        r = runs[-1]
                        log(
                            f"{kind} {name} {policy} seed {seed}: test "
                            f"{r['test_accuracy']:.4f} in {r['epochs_used']} "
                            f"epochs, {r['seconds']:.0f}s"
                        )
                        save(args, runs)
        table = policies_table(runs)
    print(table)
    save(args, runs)


def save(args: argparse.Namespace, runs: Sequence[dict]) -> None:
    """Writes the settings and every run so far to `args.out`, if given."""
    if not args.out:
        return
    document = {
        "environment": environment(),
        "settings": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
        },
        "runs": list(runs),
    }
    Path(args.out).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
