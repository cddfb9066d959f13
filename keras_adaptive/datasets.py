"""MNIST and CIFAR-10 as ``tf.data`` pipelines, online or offline.

The images come from one of these sources, tried in this order:

1. ``synthetic=True``: random arrays of the dataset's shapes (smoke tests only;
   accuracies on them mean nothing);
2. ``npz=PATH``: a Keras-format ``.npz`` file with the arrays ``x_train``,
   ``y_train``, ``x_test`` and ``y_test`` (the format of the ``keras.datasets``
   caches); when given, it is the only source used;
3. a TFDS directory (``data_dir``, default ``~/tensorflow_datasets``) in which
   the dataset is already prepared;
4. ``manual_dir``: a folder holding the official archive files copied by hand
   (TFDS verifies their checksums and prepares the dataset into ``data_dir``);
5. for MNIST, the ``keras.datasets`` cache ``~/.keras/datasets/mnist.npz``;
6. a download by TFDS, attempted only when the download host answers within a
   few seconds (offline, TFDS would otherwise retry for minutes).

When none of them works, :class:`DataSourceError` says which sources were
tried, why each failed and how to provide one.

The pipelines need TensorFlow, and the TFDS sources tensorflow-datasets:
both come with ``pip install "keras-adaptive[datasets]"``. Without TensorFlow,
importing this module raises an `ImportError` that says so; the rest of the
package needs neither. ``tensorflow_datasets`` is imported only when a TFDS
source is tried.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import tensorflow as tf
except ImportError as err:
    raise ImportError(
        "keras_adaptive.datasets builds tf.data pipelines and needs TensorFlow, "
        f"which could not be imported ({err}). Install it with the datasets "
        'extra: pip install "keras-adaptive[datasets]"'
    ) from err

from keras_adaptive._validation import check_integer, check_range, refuse

DATASET_NAMES = ("mnist", "cifar10")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NETWORK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one supported dataset.

    Attributes:
        name: ``"mnist"`` or ``"cifar10"``.
        image_shape: shape of one image, channels last.
        num_classes: number of label classes.
        mean: per-channel mean of the training images scaled to [0, 1], used by
            ``standardize=True``.
        std: per-channel standard deviation of the same.
        download_host: the host TFDS downloads from; probed before a download.
        archive_files: the official archive files a ``manual_dir`` must hold.

    References:
        * Y. LeCun, L. Bottou, Y. Bengio and P. Haffner (1998), "Gradient-based
          learning applied to document recognition", Proceedings of the IEEE
          86(11), 2278-2324 (MNIST).
        * A. Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny
          Images", technical report, University of Toronto (CIFAR-10).

    Example:
        >>> from keras_adaptive import datasets
        >>> spec = datasets.get_spec("cifar10")
        >>> spec.image_shape, spec.num_classes
        ((32, 32, 3), 10)
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    download_host: str
    archive_files: tuple[str, ...]


SPECS = {
    "mnist": DatasetSpec(
        name="mnist",
        image_shape=(28, 28, 1),
        num_classes=10,
        mean=(0.1307,),
        std=(0.3081,),
        download_host="storage.googleapis.com",
        archive_files=(
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ),
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        image_shape=(32, 32, 3),
        num_classes=10,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        download_host="www.cs.toronto.edu",
        archive_files=("cifar-10-binary.tar.gz",),
    ),
}


class DataSourceError(RuntimeError):
    """No source could provide the dataset.

    The message lists every source tried, why it failed, and how to provide
    each kind of source (a prepared TFDS directory, the official archives, a
    Keras-format ``.npz`` file).

    Example:
        Offline, with an empty data directory and downloads disabled:

        >>> import tempfile
        >>> from keras_adaptive import datasets
        >>> try:
        ...     datasets.load("cifar10", data_dir=tempfile.mkdtemp(), download=False)
        ... except datasets.DataSourceError as error:
        ...     print(str(error).splitlines()[0])
        no source could provide the cifar10 dataset. Tried:
    """


@dataclass
class RawData:
    """Unbatched examples of one dataset before any preprocessing.

    ``train`` and ``test`` yield ``(image, label)`` pairs: ``uint8`` images of
    shape ``spec.image_shape`` and ``int32`` labels, in a fixed order.

    Attributes:
        spec: the dataset's `DatasetSpec`.
        train: the training split as a ``tf.data.Dataset``.
        test: the test split.
        num_train: number of training examples.
        num_test: number of test examples.
        source: where the examples came from, in words.
        synthetic: whether they are random (`synthetic_raw`).

    Example:
        >>> from keras_adaptive import datasets
        >>> raw = datasets.synthetic_raw("mnist", 8, seed=0)
        >>> raw.num_train, raw.num_test, raw.synthetic
        (8, 2, True)
    """

    spec: DatasetSpec
    train: tf.data.Dataset
    test: tf.data.Dataset
    num_train: int
    num_test: int
    source: str
    synthetic: bool = False


@dataclass
class Datasets:
    """Batched, prefetched pipelines ready for ``model.fit``.

    ``validation`` is ``None`` when ``validation_fraction`` was 0. The
    validation examples are the last ``num_validation`` examples of the
    training split and never appear in ``train``.

    Attributes:
        train: batches of ``(images, labels)``, reshuffled every epoch.
        validation: batches of the held-out examples, or ``None``.
        test: batches of the test split.
        spec: the dataset's `DatasetSpec`.
        num_train: training examples (after the validation split).
        num_validation: validation examples.
        num_test: test examples.
        batch_size: examples per batch.
        source: where the examples came from, in words.
        synthetic: whether they are random.

    Example:
        >>> from keras_adaptive import datasets
        >>> data = datasets.load("mnist", synthetic=True, synthetic_examples=64,
        ...                      batch_size=16, seed=0)
        >>> data.num_train, data.num_validation, data.image_shape
        (58, 6, (28, 28, 1))
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    spec: DatasetSpec
    num_train: int
    num_validation: int
    num_test: int
    batch_size: int
    source: str
    synthetic: bool = False

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one image, channels last."""
        return self.spec.image_shape

    @property
    def num_classes(self) -> int:
        """Number of label classes."""
        return self.spec.num_classes


def get_spec(name: str) -> DatasetSpec:
    """Return the `DatasetSpec` of ``name`` (``"mnist"`` or ``"cifar10"``).

    Args:
        name: the dataset's name, in any case.

    Returns:
        Its `DatasetSpec`.

    Raises:
        ValueError: for a dataset the package does not support.

    References:
        * Y. LeCun, L. Bottou, Y. Bengio and P. Haffner (1998), "Gradient-based
          learning applied to document recognition", Proceedings of the IEEE
          86(11), 2278-2324 (MNIST).
        * A. Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny
          Images", technical report, University of Toronto (CIFAR-10).

    Example:
        >>> from keras_adaptive import datasets
        >>> datasets.get_spec("MNIST").mean
        (0.1307,)
    """
    if not isinstance(name, str) or name.lower() not in SPECS:
        refuse("get_spec", "name", name, f"one of {DATASET_NAMES} (any case)")
    return SPECS[name.lower()]


def load(
    name: str,
    *,
    batch_size: int = 128,
    validation_fraction: float = 0.1,
    augment: bool = False,
    standardize: bool = False,
    shuffle: bool = True,
    seed: int | None = None,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    npz: str | os.PathLike | None = None,
    download: bool = True,
    synthetic: bool = False,
    synthetic_examples: int = 2048,
) -> Datasets:
    """Load ``name`` from the first working source and build its pipelines.

    The sources are tried in the order the module docstring gives; without
    network, pass ``npz``, ``data_dir`` or ``manual_dir`` (see the datasets
    page of the documentation).

    Args:
        name: ``"mnist"`` or ``"cifar10"``.
        batch_size: examples per batch (positive integer).
        validation_fraction: fraction in ``[0, 1)`` of the training split held
            out, from its end, as the validation set.
        augment: random crop with 4-pixel zero padding and random horizontal
            flip of the training images (CIFAR-10 only).
        standardize: subtract the dataset's per-channel mean and divide by its
            standard deviation after scaling to ``[0, 1]``.
        shuffle: reshuffle the training examples every epoch.
        seed: seed of the shuffling and augmentation.
        data_dir: TFDS data directory (default ``~/tensorflow_datasets``).
        manual_dir: folder with the official archive files.
        npz: Keras-format ``.npz`` file; when given, the only source used.
        download: allow TFDS to download when the host is reachable.
        synthetic: random data of the dataset's shapes (smoke tests only).
        synthetic_examples: size of the synthetic training split.

    Returns:
        The `Datasets` with ``train``, ``validation`` and ``test``.

    Raises:
        ValueError: for a bad argument or a malformed ``.npz`` file.
        DataSourceError: when no source can provide the data.

    References:
        * Y. LeCun, L. Bottou, Y. Bengio and P. Haffner (1998), "Gradient-based
          learning applied to document recognition", Proceedings of the IEEE
          86(11), 2278-2324 (MNIST).
        * A. Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny
          Images", technical report, University of Toronto (CIFAR-10).

    Example:
        >>> import keras
        >>> from keras_adaptive import datasets, optimizers
        >>> data = datasets.load("mnist", synthetic=True, synthetic_examples=64,
        ...                      batch_size=32, seed=0)
        >>> model = keras.Sequential([keras.Input(data.image_shape),
        ...                           keras.layers.Flatten(),
        ...                           keras.layers.Dense(data.num_classes)])
        >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        >>> model.compile(optimizer=optimizers.Adam(), loss=loss)
        >>> history = model.fit(data.train, validation_data=data.validation,
        ...                     epochs=1, verbose=0)
        >>> sorted(history.history)
        ['loss', 'val_loss']
    """
    check_batch_size(batch_size, owner="load")
    check_validation_fraction(validation_fraction, owner="load")
    spec = get_spec(name)
    if augment and spec.name != "cifar10":
        refuse("load", "augment", augment, f"False for {spec.name!r} (cifar10 only)")
    raw = load_raw(
        spec.name,
        data_dir=data_dir,
        manual_dir=manual_dir,
        npz=npz,
        download=download,
        synthetic=synthetic,
        synthetic_examples=synthetic_examples,
        seed=seed,
    )
    return build_pipelines(
        raw,
        batch_size=batch_size,
        validation_fraction=validation_fraction,
        augment=augment,
        standardize=standardize,
        shuffle=shuffle,
        seed=seed,
    )


def load_raw(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    npz: str | os.PathLike | None = None,
    download: bool = True,
    synthetic: bool = False,
    synthetic_examples: int = 2048,
    seed: int | None = None,
) -> RawData:
    """Return the unbatched ``uint8`` examples of ``name`` from the first source.

    The sources are tried in the order the module docstring gives; `load`
    describes the arguments.

    Args:
        name: ``"mnist"`` or ``"cifar10"``.
        data_dir: TFDS data directory (default ``~/tensorflow_datasets``).
        manual_dir: folder with the official archive files.
        npz: Keras-format ``.npz`` file; when given, the only source used.
        download: allow TFDS to download when the host is reachable.
        synthetic: random data of the dataset's shapes (smoke tests only).
        synthetic_examples: size of the synthetic training split.
        seed: seed of the synthetic data.

    Returns:
        The `RawData`.

    Raises:
        ValueError: for a bad argument or a malformed ``.npz`` file.
        DataSourceError: when no source can provide the data.

    References:
        * Y. LeCun, L. Bottou, Y. Bengio and P. Haffner (1998), "Gradient-based
          learning applied to document recognition", Proceedings of the IEEE
          86(11), 2278-2324 (MNIST).
        * A. Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny
          Images", technical report, University of Toronto (CIFAR-10).

    Example:
        >>> from keras_adaptive import datasets
        >>> raw = datasets.load_raw("cifar10", synthetic=True, synthetic_examples=8)
        >>> image, label = next(iter(raw.train))
        >>> tuple(image.shape), image.dtype.name, label.dtype.name
        ((32, 32, 3), 'uint8', 'int32')
    """
    spec = get_spec(name)
    if synthetic:
        return synthetic_raw(spec.name, synthetic_examples, seed=seed)
    if npz is not None:
        return load_npz(spec.name, npz)
    failures: list[str] = []
    raw = _load_tfds(spec, data_dir, manual_dir, download, failures)
    if raw is None:
        raise DataSourceError(_no_source_message(spec, failures))
    return raw


def build_pipelines(
    raw: RawData,
    *,
    batch_size: int = 128,
    validation_fraction: float = 0.1,
    augment: bool = False,
    standardize: bool = False,
    shuffle: bool = True,
    seed: int | None = None,
) -> Datasets:
    """Scale, split, shuffle, augment, batch and prefetch ``raw``.

    Images become ``float32`` in ``[0, 1]`` (or standardised), labels stay
    ``int32``. The validation examples are the last ``validation_fraction`` of
    the training split. Shuffling and augmentation apply to the training split
    only.

    Args:
        raw: the examples, from `load_raw`, `load_npz` or `synthetic_raw`.
        batch_size: examples per batch (positive integer).
        validation_fraction: fraction in ``[0, 1)`` of the training split held
            out, from its end, as the validation set.
        augment: random crop with 4-pixel zero padding and random horizontal
            flip of the training images.
        standardize: subtract the dataset's per-channel mean and divide by its
            standard deviation after scaling to ``[0, 1]``.
        shuffle: reshuffle the training examples every epoch.
        seed: seed of the shuffling and augmentation.

    Returns:
        The `Datasets`.

    Raises:
        ValueError: for a bad argument, or a fraction that leaves no training
            examples.

    References:
        K. He, X. Zhang, S. Ren and J. Sun (2016), "Deep Residual Learning for
        Image Recognition", CVPR, section 4.2 (the CIFAR-10 augmentation: 4-pixel
        padding, random 32x32 crops and horizontal flips).

    Example:
        >>> from keras_adaptive import datasets
        >>> raw = datasets.synthetic_raw("mnist", 40, seed=0)
        >>> data = datasets.build_pipelines(raw, batch_size=8, validation_fraction=0.25)
        >>> images, labels = next(iter(data.train))
        >>> tuple(images.shape), images.dtype.name, data.num_validation
        ((8, 28, 28, 1), 'float32', 10)
    """
    check_batch_size(batch_size, owner="build_pipelines")
    check_validation_fraction(validation_fraction, owner="build_pipelines")
    num_val = int(round(validation_fraction * raw.num_train))
    if validation_fraction > 0 and num_val == 0:
        num_val = 1
    num_train = raw.num_train - num_val
    if num_train < 1:
        refuse(
            "build_pipelines",
            "validation_fraction",
            validation_fraction,
            f"a fraction in [0, 1) that leaves training examples out of "
            f"{raw.num_train}",
        )
    scale = _scaler(raw.spec, standardize)
    train = raw.train.take(num_train).cache()
    if shuffle:
        train = train.shuffle(num_train, seed=seed, reshuffle_each_iteration=True)
    train = train.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        train = _augment(train, raw.spec, seed)
    train = train.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def evaluation(ds: tf.data.Dataset) -> tf.data.Dataset:
        ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE).cache()
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    validation = evaluation(raw.train.skip(num_train)) if num_val else None
    return Datasets(
        train=train,
        validation=validation,
        test=evaluation(raw.test),
        spec=raw.spec,
        num_train=num_train,
        num_validation=num_val,
        num_test=raw.num_test,
        batch_size=batch_size,
        source=raw.source,
        synthetic=raw.synthetic,
    )


def load_npz(name: str, path: str | os.PathLike) -> RawData:
    """Read a Keras-format ``.npz`` file (``x_train, y_train, x_test, y_test``).

    Images may omit a single channel axis (MNIST's ``(N, 28, 28)``); labels
    may be ``(N,)`` or ``(N, 1)``. Pixel values must be integers in
    ``[0, 255]``. This is the format of the ``keras.datasets`` caches, e.g.
    ``~/.keras/datasets/mnist.npz``.

    Args:
        name: ``"mnist"`` or ``"cifar10"``: the shapes the arrays must have.
        path: the ``.npz`` file.

    Returns:
        The `RawData`.

    Raises:
        ValueError: for a missing or unreadable file, missing arrays, or arrays
            of the wrong shape, type or range; the message names the array.

    References:
        * Y. LeCun, L. Bottou, Y. Bengio and P. Haffner (1998), "Gradient-based
          learning applied to document recognition", Proceedings of the IEEE
          86(11), 2278-2324 (MNIST).
        * A. Krizhevsky (2009), "Learning Multiple Layers of Features from Tiny
          Images", technical report, University of Toronto (CIFAR-10).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from keras_adaptive import datasets
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.npz")
        >>> np.savez(path, x_train=np.zeros((4, 28, 28), "uint8"), y_train=np.arange(4),
        ...          x_test=np.zeros((2, 28, 28), "uint8"), y_test=np.arange(2))
        >>> raw = datasets.load_npz("mnist", path)
        >>> raw.num_train, raw.num_test
        (4, 2)
    """
    spec = get_spec(name)
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"npz={str(path)!r}: no such file")
    try:
        with np.load(file, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise ValueError(
                    f"npz={str(path)!r} lacks the arrays {', '.join(missing)}; "
                    f"a Keras-format file holds {', '.join(NPZ_KEYS)} "
                    f"(found: {', '.join(archive.files) or 'none'})"
                )
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except (OSError, EOFError) as err:
        raise ValueError(
            f"npz={str(path)!r} is not a readable .npz file: {err}"
        ) from err
    x_train, y_train = _check_arrays(spec, path, "train", *_pair(arrays, "train"))
    x_test, y_test = _check_arrays(spec, path, "test", *_pair(arrays, "test"))
    return RawData(
        spec=spec,
        train=tf.data.Dataset.from_tensor_slices((x_train, y_train)),
        test=tf.data.Dataset.from_tensor_slices((x_test, y_test)),
        num_train=len(x_train),
        num_test=len(x_test),
        source=f"Keras-format npz file {file}",
    )


def synthetic_raw(
    name: str, num_examples: int = 2048, *, seed: int | None = None
) -> RawData:
    """Random ``uint8`` images and labels of ``name``'s shapes.

    For smoke tests only: the labels are independent of the images, so any
    accuracy above chance is an accident.

    Args:
        name: ``"mnist"`` or ``"cifar10"``.
        num_examples: training examples, an integer >= 4; the test split gets a
            quarter as many.
        seed: seed of the random arrays.

    Returns:
        The `RawData`, with ``synthetic=True``.

    Raises:
        ValueError: for a bad ``num_examples``.

    Example:
        >>> from keras_adaptive import datasets
        >>> raw = datasets.synthetic_raw("cifar10", 16, seed=1)
        >>> raw.num_train, raw.num_test, raw.source
        (16, 4, 'synthetic random data (accuracy means nothing)')
    """
    spec = get_spec(name)
    check_integer("synthetic_raw", "synthetic_examples", num_examples, 4)
    rng = np.random.default_rng(seed)
    num_test = max(num_examples // 4, 1)

    def arrays(n: int) -> tuple[np.ndarray, np.ndarray]:
        images = rng.integers(0, 256, size=(n, *spec.image_shape), dtype=np.uint8)
        labels = rng.integers(0, spec.num_classes, size=n).astype(np.int32)
        return images, labels

    return RawData(
        spec=spec,
        train=tf.data.Dataset.from_tensor_slices(arrays(num_examples)),
        test=tf.data.Dataset.from_tensor_slices(arrays(num_test)),
        num_train=num_examples,
        num_test=num_test,
        source="synthetic random data (accuracy means nothing)",
        synthetic=True,
    )


def network_available(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` s.

    The name lookup runs in a daemon thread, so a resolver that hangs cannot
    stall the caller for longer than ``timeout``. `load` probes the download
    host this way before it lets TFDS download.

    Args:
        host: host name or address.
        port: TCP port.
        timeout: seconds to wait at most.

    Returns:
        ``True`` if the connection opened in time.

    Example:
        >>> from keras_adaptive import datasets
        >>> datasets.network_available("127.0.0.1", port=9, timeout=0.5)
        False
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def check_batch_size(batch_size: object, owner: str = "check_batch_size") -> None:
    """Raise ``ValueError`` unless ``batch_size`` is a positive integer.

    Args:
        batch_size: the value to check (a NumPy integer counts).
        owner: the function named in the message.

    Raises:
        ValueError: naming the owner, the parameter, the value and the range.

    Example:
        >>> from keras_adaptive import datasets
        >>> datasets.check_batch_size(32)
        >>> datasets.check_batch_size(0)
        Traceback (most recent call last):
        ...
        ValueError: check_batch_size: `batch_size` must be an integer >= 1; received batch_size=0.
    """  # noqa: E501
    if isinstance(batch_size, np.integer):
        batch_size = int(batch_size)
    check_integer(owner, "batch_size", batch_size, 1)


def check_validation_fraction(
    fraction: object, owner: str = "check_validation_fraction"
) -> None:
    """Raise ``ValueError`` unless ``fraction`` is a number in ``[0, 1)``.

    Args:
        fraction: the value to check.
        owner: the function named in the message.

    Raises:
        ValueError: naming the owner, the parameter, the value and the range.

    Example:
        >>> from keras_adaptive import datasets
        >>> datasets.check_validation_fraction(0.1)
        >>> datasets.check_validation_fraction(1.0)
        Traceback (most recent call last):
        ...
        ValueError: check_validation_fraction: `validation_fraction` must be a float in [0.0, 1.0); received validation_fraction=1.0.
    """  # noqa: E501
    check_range(owner, "validation_fraction", fraction, 0.0, 1.0)


def _pair(arrays: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, ...]:
    return arrays[f"x_{split}"], arrays[f"y_{split}"]


def _check_arrays(
    spec: DatasetSpec,
    path: str | os.PathLike,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one split of an npz file and bring it to the canonical form."""
    where = f"npz={str(path)!r}"
    if images.ndim == 3 and spec.image_shape[-1] == 1:
        images = images[..., np.newaxis]
    if images.shape[1:] != spec.image_shape:
        raise ValueError(
            f"{where}: x_{split} has shape {images.shape}; {spec.name} images "
            f"must be (N, {', '.join(map(str, spec.image_shape))})"
        )
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    if labels.shape != (len(images),):
        raise ValueError(
            f"{where}: y_{split} has shape {labels.shape}; expected "
            f"({len(images)},) labels to match x_{split}"
        )
    if not np.issubdtype(images.dtype, np.integer) or (
        images.size and (images.min() < 0 or images.max() > 255)
    ):
        raise ValueError(
            f"{where}: x_{split} must hold integer pixel values in [0, 255] "
            f"(dtype {images.dtype})"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (
        labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes)
    ):
        raise ValueError(
            f"{where}: y_{split} must hold integer labels in "
            f"[0, {spec.num_classes - 1}]"
        )
    return images.astype(np.uint8), labels.astype(np.int32)


def _scaler(
    spec: DatasetSpec, standardize: bool
) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    mean = tf.constant(spec.mean, tf.float32)
    std = tf.constant(spec.std, tf.float32)

    def scale(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.cast(image, tf.float32) / 255.0
        if standardize:
            image = (image - mean) / std
        return image, label

    return scale


def _augment(
    ds: tf.data.Dataset, spec: DatasetSpec, seed: int | None
) -> tf.data.Dataset:
    """Random crop after 4-pixel zero padding, and random horizontal flip."""
    height, width, channels = spec.image_shape
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    seeds = seeds.batch(4, drop_remainder=True)

    def transform(example, seed_pair):
        image, label = example
        padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
        image = tf.image.stateless_random_crop(
            padded, (height, width, channels), seed=seed_pair[:2]
        )
        image = tf.image.stateless_random_flip_left_right(image, seed=seed_pair[2:])
        return image, label

    return tf.data.Dataset.zip((ds, seeds)).map(
        transform, num_parallel_calls=tf.data.AUTOTUNE
    )


def _load_tfds(
    spec: DatasetSpec,
    data_dir: str | os.PathLike | None,
    manual_dir: str | os.PathLike | None,
    download: bool,
    failures: list[str],
) -> RawData | None:
    """Try the TFDS directory, ``manual_dir``, the Keras cache and a download."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        failures.append(
            f"tensorflow-datasets could not be imported ({err}); it comes with "
            'pip install "keras-adaptive[datasets]"'
        )
        return _load_keras_cache(spec, failures)

    directory = str(Path(data_dir).expanduser()) if data_dir is not None else None
    try:
        builder = tfds.builder(spec.name, data_dir=directory)
        prepared = builder.is_prepared()
    except Exception as err:
        failures.append(f"TFDS: the {spec.name} builder failed: {_first_line(err)}")
        return _load_keras_cache(spec, failures)
    if prepared:
        return _from_builder(builder, spec, f"TFDS directory {builder.data_dir}")
    failures.append(
        f"TFDS directory: {spec.name} is not prepared in {builder.data_dir}"
    )

    if manual_dir is not None:
        manual = Path(manual_dir).expanduser()
        missing = [name for name in spec.archive_files if not (manual / name).is_file()]
        if missing:
            failures.append(f"manual_dir {manual}: missing {', '.join(missing)}")
        else:
            config = tfds.download.DownloadConfig(
                manual_dir=str(manual), try_download_gcs=False
            )
            try:
                builder.download_and_prepare(download_config=config)
            except Exception as err:
                failures.append(f"manual_dir {manual}: {_first_line(err)}")
            else:
                return _from_builder(
                    builder, spec, f"archives in {manual}, prepared into TFDS"
                )

    cached = _load_keras_cache(spec, failures)
    if cached is not None:
        return cached

    if not download:
        failures.append("download: disabled (download=False)")
        return None
    if not _network_reachable(spec.download_host):
        failures.append(
            f"download: {spec.download_host} did not answer within "
            f"{NETWORK_TIMEOUT_S:g} s (no network?)"
        )
        return None
    try:
        builder.download_and_prepare()
    except Exception as err:
        failures.append(f"download: {_first_line(err)}")
        return None
    return _from_builder(builder, spec, f"TFDS download into {builder.data_dir}")


def _network_reachable(host: str) -> bool:
    return network_available(host, timeout=NETWORK_TIMEOUT_S)


def _load_keras_cache(spec: DatasetSpec, failures: list[str]) -> RawData | None:
    """The ``keras.datasets`` MNIST cache, which is in the npz format."""
    if spec.name != "mnist":
        return None
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    path = home / "datasets" / "mnist.npz"
    if not path.is_file():
        failures.append(f"Keras cache: no file {path}")
        return None
    try:
        return load_npz(spec.name, path)
    except ValueError as err:
        failures.append(f"Keras cache: {err}")
        return None


def _from_builder(builder, spec: DatasetSpec, source: str) -> RawData:
    def supervised(ds: tf.data.Dataset) -> tf.data.Dataset:
        def cast(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.ensure_shape(image, spec.image_shape), tf.cast(label, tf.int32)

        return ds.map(cast, num_parallel_calls=tf.data.AUTOTUNE)

    def size(ds: tf.data.Dataset, split: str) -> int:
        count = int(ds.cardinality())
        return count if count >= 0 else builder.info.splits[split].num_examples

    kwargs = {"as_supervised": True, "shuffle_files": False}
    train = builder.as_dataset(split="train", **kwargs)
    test = builder.as_dataset(split="test", **kwargs)
    return RawData(
        spec=spec,
        train=supervised(train),
        test=supervised(test),
        num_train=size(train, "train"),
        num_test=size(test, "test"),
        source=source,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _no_source_message(spec: DatasetSpec, failures: list[str]) -> str:
    tried = "\n".join(f"  - {line}" for line in failures)
    files = ", ".join(spec.archive_files)
    return (
        f"no source could provide the {spec.name} dataset. Tried:\n{tried}\n"
        "Provide one of:\n"
        f"  - a TFDS directory in which {spec.name} is prepared: run "
        f"`tfds build {spec.name}` (or tfds.load) on a machine with network "
        "and copy its data_dir here, then pass data_dir;\n"
        f"  - manual_dir: a folder with the official archives ({files}); "
        "TFDS checks their checksums and prepares the dataset into data_dir;\n"
        "  - npz: a Keras-format .npz file with x_train, y_train, x_test, y_test "
        f"(e.g. keras.datasets.{spec.name}.load_data() saved with numpy.savez);\n"
        f"  - network access to {spec.download_host} for a TFDS download."
    )


__all__ = [
    "DataSourceError",
    "DatasetSpec",
    "Datasets",
    "RawData",
    "build_pipelines",
    "check_batch_size",
    "check_validation_fraction",
    "get_spec",
    "load",
    "load_npz",
    "load_raw",
    "network_available",
    "synthetic_raw",
]
