"""Command-line plumbing of the example scripts; not an example, not the package.

The three training scripts (``mnist_mlp.py``, ``cifar10_cnn.py``,
``compare_optimizers.py``) share these flags; every script prints the backend
and device it uses and reports bad input in one ``error:`` line with exit
status 2. The models, the data loading, the optimizers and the training loops
are written out in the scripts themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import keras

from keras_adaptive import datasets, optimizers
from keras_adaptive.callbacks import CoolDownOnPlateau

#: The lectures' nine optimizers, the default of --optimizers.
LECTURE_OPTIMIZERS = ("SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adadelta")
LECTURE_OPTIMIZERS += ("Adam", "Adamax", "Nadam")
SYNTHETIC_NOTE = (
    "NOTE: --synthetic trains on random data of the dataset's shapes; "
    "the accuracies below mean nothing."
)
DECAY = "constant rate, or cosine decay to 0 over the run"
SOURCE_FLAGS = (
    "On the command line: --data-dir DIR (TFDS directory), --manual-dir DIR "
    "(official archives), --npz FILE (Keras-format arrays)."
)


def add_training_flags(
    parser: argparse.ArgumentParser,
    *,
    dataset: str,
    epochs: int,
    batch_size: int,
    out_help: str = "folder for TensorBoard logs",
) -> None:
    """The flags of the training scripts (docs/examples.md lists them);
    ``out_help`` says what the script writes into ``--out``."""
    add, on = parser.add_argument, argparse.BooleanOptionalAction
    names = " or ".join(datasets.DATASET_NAMES)
    add("--dataset", default=dataset, help=f"{names} (default %(default)s)")
    add("--learning-rate", type=float, help="default: each optimizer's paper default")
    add("--schedule", choices=("constant", "cosine"), default="constant", help=DECAY)
    add("--standardize", action=on, default=True, help="per-channel, on by default")
    add("--epochs", type=int, default=epochs)
    add("--batch-size", type=int, default=batch_size)
    add("--validation-fraction", type=float, default=0.1, help="of train, held out")
    add("--plateau", action="store_true", help="CoolDownOnPlateau on val_loss")
    add("--jit", action=on, default=True, help="XLA train step, on by default")
    add("--mixed-precision", action="store_true", help="float16 on GPU, else bf16")
    add("--data-dir", help="TFDS data directory")
    add("--manual-dir", help="folder with the official archive files")
    add("--npz", help="Keras-format .npz (x_train, y_train, x_test, y_test)")
    add("--offline", action="store_true", help="never download; local sources only")
    add("--out", help=out_help)
    add("--tensorboard", action=on, default=True, help="in --out, on by default")
    add("--seed", type=int, default=0, help="weights, shuffling, augmentation")
    add("--synthetic", action="store_true", help="random data, for smoke tests only")
    add("--synthetic-examples", type=int, default=2048, help="with --synthetic")
    add("--verbose", type=int, choices=(0, 1, 2), default=1, help="fit's verbose")


def check_flags(args: argparse.Namespace, optimizer_names: Sequence[str]) -> None:
    """Reject bad flags and unknown optimizers before anything is loaded."""
    if args.dataset.lower() not in datasets.DATASET_NAMES:
        raise ValueError(
            f"--dataset: name={args.dataset!r} is not a supported dataset; "
            f"choose one of {', '.join(datasets.DATASET_NAMES)}"
        )
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: batch_size={args.batch_size} must be >= 1")
    if not 0 <= args.validation_fraction < 1:
        raise ValueError(
            "--validation-fraction: "
            f"validation_fraction={args.validation_fraction} must lie in [0, 1)"
        )
    if args.epochs < 1:
        raise ValueError(f"--epochs={args.epochs} must be a positive integer")
    rate = args.learning_rate
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"--learning-rate={rate} must be positive")
    if args.plateau and args.schedule != "constant":
        raise ValueError(
            "--plateau adjusts the learning rate itself; it cannot be combined "
            f"with --schedule={args.schedule}"
        )
    if args.plateau and args.validation_fraction == 0:
        raise ValueError("--plateau monitors val_loss: needs --validation-fraction > 0")
    if not optimizer_names:
        raise ValueError("--optimizers: give at least one optimizer name")
    for name in optimizer_names:
        make_optimizer(name, rate)


def data_sources(args: argparse.Namespace) -> dict:
    """The keyword arguments of `datasets.load` and `datasets.load_raw` that
    say where the images come from."""
    return dict(
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        npz=args.npz,
        download=not args.offline,
        synthetic=args.synthetic,
        synthetic_examples=args.synthetic_examples,
    )


def make_optimizer(
    name: str, learning_rate: float | None, schedule: str = "constant", steps: int = 1
) -> keras.optimizers.Optimizer:
    """`optimizers.get(name)` at the given rate or the paper's; ``"cosine"``
    decays that rate to 0 over ``steps`` iterations."""
    kwargs = {} if learning_rate is None else {"learning_rate": learning_rate}
    optimizer = optimizers.get(name, **kwargs)
    if schedule == "cosine":
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        decay = keras.optimizers.schedules.CosineDecay(rate, max(steps, 1))
        optimizer = optimizers.get(name, learning_rate=decay)
    return optimizer


def training_callbacks(args: argparse.Namespace, run: str) -> list:
    """``--plateau``: CoolDownOnPlateau; ``--out``: TensorBoard logs of ``run``."""
    callbacks = []
    if args.plateau:
        callbacks.append(CoolDownOnPlateau(monitor="val_loss", verbose=1))
    if args.out is not None and args.tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            print("TensorBoard logs skipped: the tensorboard package is not installed")
        else:
            log_dir = Path(args.out) / "tensorboard" / run
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
    return callbacks


def run_main(body: Callable[[argparse.Namespace], int], args) -> int:
    """``body(args)``, with bad input or missing data reported in one line."""
    try:
        return body(args)
    except datasets.DataSourceError as err:
        print(f"error: {err}\n{SOURCE_FLAGS}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def devices() -> tuple[list[str], list[str]]:
    """The backend's devices and, of them, the GPUs (`keras.distribution`
    does not cover PyTorch)."""
    if keras.backend.backend() == "torch":
        import torch

        found = [f"cuda:{i}" for i in range(torch.cuda.device_count())] + ["cpu:0"]
    else:
        found = keras.distribution.list_devices()
    return found, [d for d in found if d.lower().startswith(("gpu", "cuda"))]


def describe_device() -> str:
    """One line naming the backend and the device the scripts will use."""
    found, gpus = devices()
    kind = "GPU" if gpus else "CPU (no GPU visible)"
    return (
        f"backend {keras.backend.backend()}, device {(gpus or found)[0]}: {kind}; "
        f"all devices: {', '.join(found)}"
    )


def keep_tensorflow_off_gpus() -> None:
    """On another backend TensorFlow only runs `keras_adaptive.datasets`'s
    tf.data pipelines: keep it from taking the memory of the backend's GPUs."""
    if keras.backend.backend() != "tensorflow":
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # its devices are already set up
            tf.config.set_visible_devices([], "GPU")


def setup(args: argparse.Namespace) -> None:
    """Seed, dtype policy and the device line."""
    keep_tensorflow_off_gpus()
    keras.utils.set_random_seed(args.seed)
    print(describe_device())
    policy = "float32"
    if args.mixed_precision:
        policy = "mixed_float16" if devices()[1] else "mixed_bfloat16"
        print(f"dtype policy {policy}")
    keras.mixed_precision.set_dtype_policy(policy)


def print_source(data: datasets.RawData | datasets.Datasets) -> None:
    """Where the images came from, with a warning for random ones."""
    print(f"{data.spec.name} from {data.source}")
    if data.synthetic:
        print(SYNTHETIC_NOTE)


def best_epoch(history: dict) -> int | None:
    """1-based epoch of the highest validation accuracy, if validated."""
    values = history.get("val_accuracy")
    if not values:
        return None
    values = [v if math.isfinite(v) else -math.inf for v in values]
    return max(range(len(values)), key=values.__getitem__) + 1


def summary_line(name: str, history: dict, test_accuracy: float, seconds: float) -> str:
    """The line printed after each training run."""
    return (
        f"{name}: final train loss {history['loss'][-1]:.4f}, "
        f"test accuracy {test_accuracy:.4f}, "
        f"best validation epoch {best_epoch(history) or '-'}, {seconds:.1f} s"
    )


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A fixed-width table: the first column left-aligned, the others right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([cells[0].ljust(widths[0]), *rest])

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write ``header`` and ``rows`` to the CSV file ``path``; return ``path``."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
