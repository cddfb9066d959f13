"""Train Kingma & Ba's 784-1000-1000-10 ReLU network on MNIST.

Example::

    python examples/mnist_mlp.py --optimizer adam --epochs 5
    python examples/mnist_mlp.py --npz ../data/mnist.npz --optimizer nesterov

The data come from TFDS, a TFDS directory (``--data-dir``), the official
archives (``--manual-dir``) or a Keras-format ``.npz`` file (``--npz``).
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
        parser, default_dataset="mnist", default_epochs=5, default_batch_size=128
    )
    parser.add_argument(
        "--optimizer",
        default="Adam",
        help=f"one of {', '.join(_common.LECTURE_OPTIMIZERS)} (any case)",
    )
    parser.add_argument(
        "--dropout", type=float, default=0.0, help="dropout after each hidden layer"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Train once and print the summary line; returns the exit status."""
    _common.check_args(args)
    _common.make_optimizer(args.optimizer, args.learning_rate)
    _common.setup(args)
    data = _common.load_data(args)
    model = _common.build_mlp(data.image_shape, data.num_classes, dropout=args.dropout)
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
