"""Train a small VGG-style CNN with batch normalization on CIFAR-10.

Example::

    python examples/cifar10_cnn.py --optimizer nesterov --learning-rate 0.05
    python examples/cifar10_cnn.py --manual-dir ~/archives --epochs 30
    python examples/cifar10_cnn.py --synthetic --epochs 1   # smoke test only

Training images are augmented (random crop after 4-pixel padding, random
horizontal flip) unless ``--no-augment`` is given; validation and test images
never are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import _common


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_common_flags(
        parser, default_dataset="cifar10", default_epochs=10, default_batch_size=128
    )
    parser.add_argument(
        "--optimizer",
        default="Adam",
        help=f"one of {', '.join(_common.LECTURE_OPTIMIZERS)} (any case)",
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
    _common.check_args(args)
    if args.dataset != "cifar10":
        raise ValueError(f"--dataset={args.dataset!r}: this script trains cifar10")
    if args.width < 1:
        raise ValueError(f"--width={args.width} must be a positive integer")
    _common.make_optimizer(args.optimizer, args.learning_rate)
    _common.setup(args)
    data = _common.load_data(args, augment=args.augment)
    model = _common.build_cnn(data.image_shape, data.num_classes, width=args.width)
    result = _common.train(args, data, model, args.optimizer)
    if data.synthetic:
        print(_common.SYNTHETIC_NOTE)
    print(_common.summary_line(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return _common.run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
