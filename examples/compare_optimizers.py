"""Train the same network once per optimizer and compare the runs.

Example (the lectures' nine optimizers on MNIST)::

    python examples/compare_optimizers.py --dataset mnist --epochs 10 --out runs/mnist
    python examples/compare_optimizers.py --npz ~/mnist.npz --optimizers adam sgd

Every run starts from the same initial weights and sees the same batches.
The script prints a one-line summary per optimizer and a final table (final
training loss, test accuracy, epoch of the best validation accuracy, wall
time), and writes to ``--out`` (default ``compare_<dataset>``):

* ``compare_<dataset>_train_loss.png``: training cost against epochs;
* ``compare_<dataset>_val_accuracy.png``: validation accuracy against epochs;
* ``histories.csv`` (one row per optimizer and epoch) and ``summary.csv``;
* ``tensorboard/<optimizer>/``: TensorBoard logs.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import _common
import keras

from keras_adaptive import plotting


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_common_flags(
        parser, default_dataset="mnist", default_epochs=5, default_batch_size=128
    )
    parser.add_argument(
        "--optimizers",
        "--optimizer",
        nargs="+",
        default=list(_common.LECTURE_OPTIMIZERS),
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
    _common.check_args(args)
    if not args.optimizers:
        raise ValueError("--optimizers: give at least one optimizer name")
    for name in args.optimizers:
        _common.make_optimizer(name, args.learning_rate)
    out = Path(args.out if args.out is not None else f"compare_{args.dataset}")
    args.out = str(out)
    _common.setup(args)
    raw = _common.load_raw(args)
    model_kind = args.model
    if model_kind == "auto":
        model_kind = "mlp" if raw.spec.name == "mnist" else "cnn"
    out.mkdir(parents=True, exist_ok=True)

    results = []
    for name in args.optimizers:
        print(f"--- {name} ---")
        keras.utils.set_random_seed(args.seed)
        data = _common.pipelines(args, raw, augment=args.augment)
        if model_kind == "mlp":
            model = _common.build_mlp(data.image_shape, data.num_classes)
        else:
            model = _common.build_cnn(data.image_shape, data.num_classes)
        result = _common.train(args, data, model, name)
        results.append(result)
        print(_common.summary_line(result))

    print()
    if data.synthetic:
        print(_common.SYNTHETIC_NOTE)
    print(_common.results_table(results))
    if model_kind == "mlp":
        model_name = f"MLP {math.prod(data.image_shape)}-1000-1000-10"
    else:
        model_name = "VGG-style CNN"
    description = f"{data.spec.name}, {model_name}, {data.num_train} images"
    for path in save_outputs(results, out, data.spec.name, description, data.synthetic):
        print(f"wrote {path}")
    return 0


def save_outputs(
    results: Sequence[_common.RunResult],
    out: Path,
    dataset: str,
    description: str,
    synthetic: bool,
) -> list[Path]:
    """Write the CSV files and the two plots; return their paths."""
    import matplotlib.pyplot as plt

    histories = {r.optimizer: r.history for r in results}
    suffix = " (synthetic data: meaningless)" if synthetic else ""
    paths = [out / "histories.csv", out / "summary.csv"]
    _common.write_histories_csv(results, paths[0])
    _common.write_summary_csv(results, paths[1])

    loss_png = out / f"compare_{dataset}_train_loss.png"
    fig = plotting.plot_histories(
        histories,
        "loss",
        ylabel="training cost (cross-entropy)",
        title=f"training cost per epoch{suffix}\n{description}",
        log_scale=True,
        path=loss_png,
    )
    plt.close(fig)
    paths.append(loss_png)
    if all("val_accuracy" in h for h in histories.values()):
        accuracy_png = out / f"compare_{dataset}_val_accuracy.png"
        fig = plotting.plot_histories(
            histories,
            "val_accuracy",
            ylabel="validation accuracy",
            title=f"validation accuracy per epoch{suffix}\n{description}",
            path=accuracy_png,
        )
        plt.close(fig)
        paths.append(accuracy_png)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _common.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
