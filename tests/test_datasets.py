"""keras_adaptive.datasets: pipelines from mocked TFDS, offline sources, errors."""

import hashlib
import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_adaptive import datasets


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, and no Keras cache in the home folder."""
    monkeypatch.setattr(datasets, "_network_reachable", lambda host: False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.fixture
def mocked_tfds(monkeypatch, tmp_path):
    """``tfds.testing.mock_data``: every TFDS source yields random examples.

    The mocked ``download_and_prepare`` does nothing, so the download path is
    made to look online; the mock replaces reading and preparing.
    """
    monkeypatch.setattr(datasets, "_network_reachable", lambda host: True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def mock(num_examples):
        return tfds.testing.mock_data(num_examples=num_examples)

    return mock


def _arrays(ds):
    images, labels = [], []
    for x, y in ds.as_numpy_iterator():
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _digests(images):
    return [hashlib.sha1(image.tobytes()).hexdigest() for image in images]


@pytest.mark.parametrize(
    ("name", "shape"), [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))]
)
def test_mocked_tfds_pipeline_shapes_dtypes_ranges_and_batches(
    mocked_tfds, name, shape
):
    with mocked_tfds(50):
        data = datasets.load(
            name, batch_size=16, validation_fraction=0.2, standardize=False, seed=3
        )
        assert (data.num_train, data.num_validation, data.num_test) == (40, 10, 50)
        assert data.image_shape == shape and data.num_classes == 10
        batches = list(data.train.as_numpy_iterator())
        assert [len(x) for x, _ in batches] == [16, 16, 8]
        for x, y in batches:
            assert x.shape[1:] == shape
            assert x.dtype == np.float32 and y.dtype == np.int32
            assert x.min() >= 0.0 and x.max() <= 1.0
            assert y.min() >= 0 and y.max() <= 9
        images, _ = _arrays(data.train)
        # uint8 pixels scaled by 1/255: every value is a multiple of 1/255
        np.testing.assert_allclose(images * 255.0, np.round(images * 255.0), atol=1e-4)
        assert images.max() > 0.9  # random pixels span the full range
        assert [len(x) for x, _ in data.validation.as_numpy_iterator()] == [10]
        assert [len(x) for x, _ in data.test.as_numpy_iterator()] == [16] * 3 + [2]


def test_validation_split_is_disjoint_from_training(mocked_tfds):
    with mocked_tfds(60):
        raw = datasets.load_raw("mnist")
        data = datasets.build_pipelines(
            raw, batch_size=7, validation_fraction=0.25, shuffle=True, seed=1
        )
        everything, _ = _arrays(raw.train.batch(100))
        train, _ = _arrays(data.train)
        validation, _ = _arrays(data.validation)
    all_ids = _digests(everything.astype(np.float32) / 255.0)
    assert len(set(all_ids)) == 60  # random images: no duplicates to confuse us
    train_ids, validation_ids = _digests(train), _digests(validation)
    assert len(train_ids) == 45 and len(validation_ids) == 15
    assert set(train_ids).isdisjoint(validation_ids)
    assert set(train_ids) | set(validation_ids) == set(all_ids)
    # Keras's convention: the validation examples are the last ones.
    assert validation_ids == all_ids[45:]


def test_training_order_is_reshuffled_each_epoch_and_reproducible(mocked_tfds):
    with mocked_tfds(40):
        raw = datasets.load_raw("mnist")
        first = datasets.build_pipelines(raw, batch_size=40, seed=5)
        second = datasets.build_pipelines(raw, batch_size=40, seed=5)
        epoch_1 = _digests(_arrays(first.train)[0])
        epoch_2 = _digests(_arrays(first.train)[0])
        again_1 = _digests(_arrays(second.train)[0])
    assert epoch_1 != epoch_2 and sorted(epoch_1) == sorted(epoch_2)
    assert epoch_1 == again_1


def _crops_and_flips(image):
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    for dy in range(9):
        for dx in range(9):
            crop = padded[dy : dy + 32, dx : dx + 32]
            yield crop
            yield crop[:, ::-1]


def test_augmentation_changes_only_training_images(mocked_tfds):
    with mocked_tfds(40):
        raw = datasets.load_raw("cifar10")
        kwargs = {"batch_size": 8, "validation_fraction": 0.25, "shuffle": False}
        plain = datasets.build_pipelines(raw, augment=False, **kwargs)
        augmented = datasets.build_pipelines(raw, augment=True, seed=2, **kwargs)
        originals, labels = _arrays(plain.train)
        changed, changed_labels = _arrays(augmented.train)
        for split in ("validation", "test"):
            a, la = _arrays(getattr(plain, split))
            b, lb = _arrays(getattr(augmented, split))
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(labels, changed_labels)
    identical = 0
    for original, image in zip(originals, changed, strict=True):
        assert any(np.array_equal(image, c) for c in _crops_and_flips(original))
        identical += np.array_equal(image, original)
    assert identical < len(originals) // 2


def test_standardize_uses_the_dataset_statistics(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "cifar.npz"
    arrays = {
        "x_train": rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, (12, 1), dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, (4, 1), dtype=np.uint8),
    }
    np.savez(path, **arrays)
    data = datasets.load(
        "cifar10", npz=path, batch_size=4, validation_fraction=0, standardize=True
    )
    images, labels = _arrays(data.test)
    spec = datasets.get_spec("cifar10")
    expected = (arrays["x_test"] / 255.0 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, arrays["y_test"][:, 0])


def _write_mnist_npz(path, n_train=30, n_test=10, **overrides):
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


def test_keras_format_npz_is_loaded(tmp_path):
    arrays = _write_mnist_npz(tmp_path / "mnist.npz")
    data = datasets.load(
        "mnist",
        npz=tmp_path / "mnist.npz",
        batch_size=8,
        validation_fraction=0.2,
        shuffle=False,
        standardize=False,
    )
    assert "npz" in data.source and not data.synthetic
    train, train_labels = _arrays(data.train)
    validation, validation_labels = _arrays(data.validation)
    test, test_labels = _arrays(data.test)
    expected = arrays["x_train"][..., None].astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(train, expected[:24])
    np.testing.assert_array_equal(validation, expected[24:])
    np.testing.assert_array_equal(train_labels, arrays["y_train"][:24])
    np.testing.assert_array_equal(validation_labels, arrays["y_train"][24:])
    assert test.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(test_labels, arrays["y_test"])


def test_prepared_tfds_directory_is_loaded_without_network(tmp_path, offline):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (25, 28, 28, 1), dtype=np.uint8)
    labels = np.arange(25) % 10

    def examples(lo, hi):
        return [
            (i, {"image": images[i], "label": int(labels[i])}) for i in range(lo, hi)
        ]

    reference = tfds.builder("mnist", data_dir=str(tmp_path / "tfds"))
    tfds.dataset_builders.store_as_tfds_dataset(
        name="mnist",
        version=reference.version,
        features=reference.info.features,
        split_datasets={"train": examples(0, 20), "test": examples(20, 25)},
        data_dir=str(tmp_path / "tfds"),
        disable_shuffling=True,
    )
    start = time.perf_counter()
    data = datasets.load(
        "mnist",
        data_dir=tmp_path / "tfds",
        download=False,
        batch_size=5,
        validation_fraction=0.2,
        shuffle=False,
        standardize=False,
    )
    assert time.perf_counter() - start < 20
    assert data.source.startswith("TFDS directory")
    train, train_labels = _arrays(data.train)
    validation, _ = _arrays(data.validation)
    test, test_labels = _arrays(data.test)
    scaled = images.astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(train, scaled[:16])
    np.testing.assert_array_equal(validation, scaled[16:20])
    np.testing.assert_array_equal(test, scaled[20:])
    np.testing.assert_array_equal(train_labels, labels[:16])
    np.testing.assert_array_equal(test_labels, labels[20:])


def test_no_source_gives_one_clear_message_in_seconds(tmp_path, offline):
    start = time.perf_counter()
    with pytest.raises(datasets.DataSourceError) as info:
        datasets.load("mnist", data_dir=tmp_path / "empty")
    assert time.perf_counter() - start < 15
    message = str(info.value)
    for tried in ("TFDS directory", "Keras cache", "storage.googleapis.com"):
        assert tried in message
    for how in ("data_dir", "manual_dir", "npz", "x_train, y_train, x_test, y_test"):
        assert how in message
    assert "Traceback" not in message


def test_no_source_lists_manual_dir_problems(tmp_path, offline):
    manual = tmp_path / "archives"
    manual.mkdir()
    with pytest.raises(datasets.DataSourceError) as info:
        datasets.load(
            "cifar10", data_dir=tmp_path / "empty", manual_dir=manual, download=False
        )
    message = str(info.value)
    assert f"manual_dir {manual}: missing cifar-10-binary.tar.gz" in message
    assert "download: disabled" in message


def test_manual_dir_archive_with_wrong_checksum_is_rejected(tmp_path, offline):
    manual = tmp_path / "archives"
    manual.mkdir()
    (manual / "cifar-10-binary.tar.gz").write_bytes(b"not the official archive")
    with pytest.raises(datasets.DataSourceError) as info:
        datasets.load(
            "cifar10", data_dir=tmp_path / "tfds", manual_dir=manual, download=False
        )
    message = str(info.value)
    assert f"manual_dir {manual}:" in message
    assert "checksum" in message


def test_synthetic_data_has_the_shapes_and_says_it_means_nothing():
    data = datasets.load("cifar10", synthetic=True, synthetic_examples=40, seed=0)
    assert data.synthetic and "means nothing" in data.source
    x, y = next(data.train.as_numpy_iterator())
    assert x.shape == (36, 32, 32, 3) and y.dtype == np.int32
    assert data.num_test == 10


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"name": "imagenet"},
            r"^get_spec: `name` must be one of \('mnist', 'cifar10'\).*; "
            r"received name='imagenet'",
        ),
        (
            {"validation_fraction": 1.0},
            r"^load: `validation_fraction` must be a float in \[0.0, 1.0\); "
            r"received validation_fraction=1\.0",
        ),
        (
            {"validation_fraction": -0.1},
            r"^load: `validation_fraction` .*; received validation_fraction=-0\.1",
        ),
        ({"validation_fraction": "0.1"}, r"validation_fraction='0\.1'"),
        (
            {"batch_size": 0},
            r"^load: `batch_size` must be an integer >= 1; received batch_size=0\.",
        ),
        (
            {"batch_size": 2.5},
            r"^load: `batch_size` must be an integer >= 1; received batch_size=2\.5",
        ),
        (
            {"batch_size": True},
            r"^load: `batch_size` must be an integer >= 1; received batch_size=True",
        ),
        (
            {"augment": True},
            r"^load: `augment` must be False for 'mnist' \(cifar10 only\); "
            r"received augment=True",
        ),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, pattern):
    arguments = {"name": "mnist", "synthetic": True, **kwargs}
    name = arguments.pop("name")
    with pytest.raises(ValueError, match=pattern):
        datasets.load(name, **arguments)


def test_missing_npz_file_is_a_value_error(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(ValueError, match=r"npz=.*absent\.npz.*no such file"):
        datasets.load("mnist", npz=path)


def test_npz_with_wrong_keys_is_a_value_error(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"lacks the arrays x_train, y_train.*images"):
        datasets.load("mnist", npz=path)


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ({"x_train": np.zeros((30, 32, 32, 3), np.uint8)}, r"x_train has shape"),
        ({"y_test": np.zeros(9, np.uint8)}, r"y_test has shape \(9,\)"),
        ({"x_test": np.full((10, 28, 28), 300, np.int32)}, r"x_test.*\[0, 255\]"),
        ({"x_test": np.zeros((10, 28, 28), np.float32)}, r"x_test.*integer pixel"),
        ({"y_train": np.full(30, 10, np.uint8)}, r"y_train.*labels in \[0, 9\]"),
    ],
)
def test_npz_with_wrong_arrays_is_a_value_error(tmp_path, override, pattern):
    _write_mnist_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(ValueError, match=pattern):
        datasets.load("mnist", npz=tmp_path / "bad.npz")


def test_network_probe_answers_quickly_both_ways():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert datasets.network_available("127.0.0.1", port, timeout=2.0)
    finally:
        server.close()
    start = time.perf_counter()
    assert not datasets.network_available("127.0.0.1", port, timeout=2.0)
    assert not datasets.network_available("host.invalid", 443, timeout=2.0)
    assert time.perf_counter() - start < 5


def test_a_broken_tfds_installation_is_reported_not_raised(
    tmp_path, offline, monkeypatch
):
    def broken(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'importlib_resources'")

    monkeypatch.setattr(tfds, "builder", broken)
    with pytest.raises(datasets.DataSourceError) as info:
        datasets.load("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert "TFDS: the mnist builder failed: ModuleNotFoundError" in message
    assert "Keras cache: no file" in message


def test_the_keras_mnist_cache_is_used_when_tfds_has_nothing(
    tmp_path, offline, monkeypatch
):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    arrays = _write_mnist_npz(cache / "mnist.npz", n_train=12, n_test=4)
    data = datasets.load(
        "mnist", data_dir=tmp_path / "tfds", batch_size=4, validation_fraction=0
    )
    assert data.source == f"Keras-format npz file {cache / 'mnist.npz'}"
    _, labels = _arrays(data.test)
    np.testing.assert_array_equal(labels, arrays["y_test"])
