"""Train a small VGG-style CNN with batch normalization on CIFAR-10.

Example::

    python examples/cifar10_cnn.py --optimizer nesterov --learning-rate 0.05
    python examples/cifar10_cnn.py --manual-dir ~/archives --epochs 30
    python examples/cifar10_cnn.py --synthetic --epochs 1   # smoke test only

Training images are augmented (random crop after 4-pixel padding, random
horizontal flip) unless ``--no-augment`` is given; validation and test images
never are. The data come from `keras_adaptive.datasets`; the flags shared with
the other training scripts are defined in ``_cli.py`` (see ``--help``).
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


def build_cnn(
    input_shape: Sequence[int], num_classes: int, width: int = 32
) -> keras.Model:
    """A small VGG-style network: three blocks of two 3x3 convolutions.

    Each convolution is followed by batch normalization and ReLU; each block
    ends with 2x2 max pooling; global average pooling feeds the classifier.
    """
    layers = [keras.Input(shape=tuple(input_shape))]
    for block in range(3):
        for _ in range(2):
            filters = width * 2**block
            layers += [
                keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
                keras.layers.BatchNormalization(),
                keras.layers.Activation("relu"),
            ]
        layers.append(keras.layers.MaxPooling2D(2))
    layers += [
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes),
        # float32 probabilities also under a mixed-precision policy
        keras.layers.Activation("softmax", dtype="float32"),
    ]
    return keras.Sequential(layers, name="vgg_small")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _cli.add_training_flags(parser, dataset="cifar10", epochs=10, batch_size=128)
    parser.add_argument(
        "--optimizer",
        default="Adam",
        help=f"one of {', '.join(_cli.LECTURE_OPTIMIZERS)} (any case)",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random crop and flip of the training images (default: on)",
    )
    parser.add_argument(
        "--width", type=int, default=32, help="filters of the first block"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Train once and print the summary line; returns the exit status."""
    _cli.check_flags(args, [args.optimizer])
    if args.dataset != "cifar10":
        raise ValueError(f"--dataset={args.dataset!r}: this script trains cifar10")
    if args.width < 1:
        raise ValueError(f"--width={args.width} must be a positive integer")
    _cli.setup(args)
    data = datasets.load(
        "cifar10",
        batch_size=args.batch_size,
        validation_fraction=args.validation_fraction,
        augment=args.augment,
        standardize=args.standardize,
        seed=args.seed,
        **_cli.data_sources(args),
    )
    _cli.print_source(data)
    print(
        f"{data.num_train} training, {data.num_validation} validation, "
        f"{data.num_test} test examples"
    )
    model = build_cnn(data.image_shape, data.num_classes, width=args.width)

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
