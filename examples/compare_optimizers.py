"""Train the same network once per optimizer and compare the runs.

Example (the lectures' nine optimizers on MNIST)::

    python examples/compare_optimizers.py --dataset mnist --epochs 10 --out runs/mnist
    python examples/compare_optimizers.py --npz ~/mnist.npz --optimizers adam sgd

The network is the MLP of ``mnist_mlp.py`` or the CNN of ``cifar10_cnn.py``.
Every run starts from the same initial weights and sees the same batches.
The script prints a one-line summary per optimizer and a final table (final
training loss, test accuracy, epoch of the best validation accuracy, wall
time), and writes to ``--out`` (default ``compare_<dataset>``):

* ``compare_<dataset>_train_loss.png``: training cost against epochs;
* ``compare_<dataset>_val_accuracy.png``: validation accuracy against epochs;
* ``histories.csv`` (one row per optimizer and epoch) and ``summary.csv``;
* ``tensorboard/<optimizer>/``: TensorBoard logs.

The flags shared with the other training scripts are defined in ``_cli.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import _cli
import keras
from cifar10_cnn import build_cnn
from mnist_mlp import build_mlp

from keras_adaptive import datasets, plotting


class Run(NamedTuple):
    """What one training run produced."""

    optimizer: str
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    seconds: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _cli.add_training_flags(
        parser,
        dataset="mnist",
        epochs=5,
        batch_size=128,
        out_help="folder for plots, CSV and TensorBoard logs "
        "(default compare_<dataset>)",
    )
    parser.add_argument(
        "--optimizers",
        "--optimizer",
        nargs="+",
        default=list(_cli.LECTURE_OPTIMIZERS),
        help="names, space- or comma-separated (default: the lectures' nine)",
    )
    parser.add_argument(
        "--model",
        choices=("auto", "mlp", "cnn"),
        default="auto",
        help="auto: the MLP for mnist, the CNN for cifar10",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="augment the CIFAR-10 training images (default: off)",
    )
    args = parser.parse_args(argv)
    args.optimizers = [n for item in args.optimizers for n in item.split(",") if n]
    return args


def run(args: argparse.Namespace) -> int:
    """Train once per optimizer, then print and save the comparison."""
    _cli.check_flags(args, args.optimizers)
    out = Path(args.out if args.out is not None else f"compare_{args.dataset}")
    args.out = str(out)
    _cli.setup(args)
    raw = datasets.load_raw(args.dataset, seed=args.seed, **_cli.data_sources(args))
    _cli.print_source(raw)
    model_kind = args.model
    if model_kind == "auto":
        model_kind = "mlp" if raw.spec.name == "mnist" else "cnn"
    build_model = build_mlp if model_kind == "mlp" else build_cnn
    out.mkdir(parents=True, exist_ok=True)

    results = []
    for name in args.optimizers:
        print(f"--- {name} ---")
        keras.utils.set_random_seed(args.seed)  # same weights, same batches
        data = datasets.build_pipelines(
            raw,
            batch_size=args.batch_size,
            validation_fraction=args.validation_fraction,
            augment=args.augment,
            standardize=args.standardize,
            seed=args.seed,
        )
        model = build_model(data.image_shape, data.num_classes)
        steps = math.ceil(data.num_train / data.batch_size) * args.epochs
        optimizer = _cli.make_optimizer(name, args.learning_rate, args.schedule, steps)
        label = type(optimizer).__name__
        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=args.jit,
        )
        start = time.perf_counter()
        fit = model.fit(
            data.train,
            validation_data=data.validation,
            epochs=args.epochs,
            shuffle=False,  # the tf.data pipeline shuffles
            callbacks=_cli.training_callbacks(args, label),
            verbose=args.verbose,
        )
        test_loss, test_accuracy = model.evaluate(data.test, verbose=0)
        seconds = time.perf_counter() - start
        history = {k: [float(v) for v in vs] for k, vs in fit.history.items()}
        results.append(
            Run(label, history, float(test_loss), float(test_accuracy), seconds)
        )
        print(_cli.summary_line(label, history, test_accuracy, seconds))

    print()
    if data.synthetic:
        print(_cli.SYNTHETIC_NOTE)
    print(results_table(results))
    if model_kind == "mlp":
        model_name = f"MLP {math.prod(data.image_shape)}-1000-1000-10"
    else:
        model_name = "VGG-style CNN"
    description = f"{data.spec.name}, {model_name}, {data.num_train} images"
    for path in save_outputs(results, out, data.spec.name, description, data.synthetic):
        print(f"wrote {path}")
    return 0


def results_table(results: Sequence[Run]) -> str:
    """Final training loss, test accuracy, best validation epoch, time."""
    header = ("optimizer", "train loss", "test acc", "best val epoch", "time [s]")
    rows = [
        (
            r.optimizer,
            f"{r.history['loss'][-1]:.4f}",
            f"{r.test_accuracy:.4f}",
            str(_cli.best_epoch(r.history) or "-"),
            f"{r.seconds:.1f}",
        )
        for r in results
    ]
    return _cli.text_table(header, rows)


def save_outputs(
    results: Sequence[Run], out: Path, dataset: str, description: str, synthetic: bool
) -> list[Path]:
    """Write the CSV files and the two plots; return their paths."""
    import matplotlib.pyplot as plt

    keys = sorted({key for r in results for key in r.history})
    per_epoch = [  # every Keras metric, one row per optimizer and epoch
        [
            r.optimizer,
            epoch + 1,
            *(r.history[k][epoch] if k in r.history else "" for k in keys),
        ]
        for r in results
        for epoch in range(len(r.history["loss"]))
    ]
    summary_header = ["optimizer", "final_train_loss", "test_loss", "test_accuracy"]
    summary_header += ["best_val_epoch", "seconds"]
    summary = [
        [r.optimizer, r.history["loss"][-1], r.test_loss, r.test_accuracy]
        + [_cli.best_epoch(r.history) or "", round(r.seconds, 3)]
        for r in results
    ]
    paths = [
        _cli.write_csv(out / "histories.csv", ["optimizer", "epoch", *keys], per_epoch),
        _cli.write_csv(out / "summary.csv", summary_header, summary),
    ]

    histories = {r.optimizer: r.history for r in results}
    suffix = " (synthetic data: meaningless)" if synthetic else ""
    plots = {  # metric: file name, title, y label
        "loss": ("train_loss", "training cost", "training cost (cross-entropy)"),
    }
    if all("val_accuracy" in h for h in histories.values()):
        plots["val_accuracy"] = ("val_accuracy", "validation accuracy", None)
    for metric, (name, what, ylabel) in plots.items():
        path = out / f"compare_{dataset}_{name}.png"
        figure = plotting.plot_histories(
            histories,
            metric,
            ylabel=ylabel or what,
            title=f"{what} per epoch{suffix}\n{description}",
            log_scale=metric == "loss",
            path=path,
        )
        plt.close(figure)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _cli.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
