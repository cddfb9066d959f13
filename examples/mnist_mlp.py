"""Train Kingma & Ba's 784-1000-1000-10 ReLU network on MNIST.

Example::

    python examples/mnist_mlp.py --optimizer adam --epochs 5
    python examples/mnist_mlp.py --npz ../data/mnist.npz --optimizer nesterov

The data come from `keras_adaptive.datasets`: TFDS, a TFDS directory
(``--data-dir``), the official archives (``--manual-dir``) or a Keras-format
``.npz`` file (``--npz``). The flags shared with the other training scripts
(learning rate, schedule, plateau, XLA, mixed precision, ...) are defined in
``_cli.py``; ``python examples/mnist_mlp.py --help`` lists them.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import _cli
import keras

from keras_adaptive import datasets


def build_mlp(
    input_shape: Sequence[int],
    num_classes: int,
    hidden: Sequence[int] = (1000, 1000),
    dropout: float = 0.0,
) -> keras.Model:
    """Kingma & Ba's MNIST network: 784-1000-1000-10 with ReLU units."""
    layers = [keras.Input(shape=tuple(input_shape)), keras.layers.Flatten()]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(num_classes))
    # float32 probabilities also under a mixed-precision policy
    layers.append(keras.layers.Activation("softmax", dtype="float32"))
    return keras.Sequential(layers, name="mlp")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _cli.add_training_flags(parser, dataset="mnist", epochs=5, batch_size=128)
    parser.add_argument(
        "--optimizer",
        default="Adam",
        help=f"one of {', '.join(_cli.LECTURE_OPTIMIZERS)} (any case)",
    )
    parser.add_argument(
        "--dropout", type=float, default=0.0, help="dropout after each hidden layer"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Train once and print the summary line; returns the exit status."""
    _cli.check_flags(args, [args.optimizer])
    _cli.setup(args)
    data = datasets.load(
        args.dataset,
        batch_size=args.batch_size,
        validation_fraction=args.validation_fraction,
        standardize=args.standardize,
        seed=args.seed,
        **_cli.data_sources(args),
    )
    _cli.print_source(data)
    print(
        f"{data.num_train} training, {data.num_validation} validation, "
        f"{data.num_test} test examples"
    )
    model = build_mlp(data.image_shape, data.num_classes, dropout=args.dropout)

    steps = math.ceil(data.num_train / data.batch_size) * args.epochs
    optimizer = _cli.make_optimizer(
        args.optimizer, args.learning_rate, args.schedule, steps
    )
    name = type(optimizer).__name__
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=args.jit,
    )
    start = time.perf_counter()
    history = model.fit(
        data.train,
        validation_data=data.validation,
        epochs=args.epochs,
        shuffle=False,  # the tf.data pipeline shuffles
        callbacks=_cli.training_callbacks(args, name),
        verbose=args.verbose,
    ).history
    _, test_accuracy = model.evaluate(data.test, verbose=0)
    seconds = time.perf_counter() - start

    if data.synthetic:
        print(_cli.SYNTHETIC_NOTE)
    print(_cli.summary_line(name, history, test_accuracy, seconds))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _cli.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
