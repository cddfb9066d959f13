"""Shared test configuration.

The suite runs once per Keras backend: ``KERAS_BACKEND=tensorflow`` and
``KERAS_BACKEND=jax`` and ``KERAS_BACKEND=torch`` (see the README's test
command). Tests marked
``tensorflow_only`` exercise TensorFlow-specific objects (``IndexedSlices``,
``tf.function(jit_compile=True)``, ``tf.data``) and are skipped, with that
reason, on the other backends, and so is the one ``browser`` test (the
lecture lab in headless Chromium), which needs to run only once; tests
marked ``jax_only`` (``keras.distribution`` on several devices,
``jax.distributed``) run only on JAX, and so do those marked ``once``: the
checks whose subject does not depend on the backend of the pass (the
example and benchmark scripts run end to end, the optimizer table's
self-test, the package's import hygiene in fresh interpreters); tests marked ``sparse``
(``tf.IndexedSlices``, JAX ``BCOO``) are skipped where Keras has no sparse
tensors (PyTorch). Under TensorFlow the CPU is split into two logical
devices for the ``MirroredStrategy`` tests.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_NPZ = REPO_ROOT.parent / "shared" / "data" / "mnist-subset.npz"
BACKEND = keras.backend.backend()

if BACKEND == "jax":
    # JAX's persistent compilation cache: the suite compiles the same small
    # models and update steps many times (a new Keras model is a new jitted
    # function), and identical programs are then compiled once. It changes
    # no result (an entry is keyed by the program and the versions).
    import jax

    jax.config.update(
        "jax_compilation_cache_dir",
        str(Path(tempfile.gettempdir()) / "keras_adaptive_jax_compilation_cache"),
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

if BACKEND == "tensorflow":
    # Two logical CPU devices for the MirroredStrategy tests; they must be
    # configured before TensorFlow first uses a device.
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}"


def pytest_collection_modifyitems(config, items):
    skips = {}
    if BACKEND != "tensorflow":
        skips["tensorflow_only"] = pytest.mark.skip(
            reason=f"needs the TensorFlow backend; this run uses {BACKEND}"
        )
        skips["browser"] = pytest.mark.skip(
            reason="the browser test runs once, in the TensorFlow pass"
        )
    if BACKEND == "torch":
        skips["compiled"] = pytest.mark.skip(
            reason="counts traces of a compiled step; the PyTorch backend runs "
            "eagerly here (jit_compile=True recompiles and falls back to eager)"
        )
    if BACKEND != "jax":
        skips["jax_only"] = pytest.mark.skip(
            reason=f"needs the JAX backend; this run uses {BACKEND}"
        )
        skips["once"] = pytest.mark.skip(
            reason="backend-independent: runs once, in the JAX pass"
        )
    if BACKEND not in ("tensorflow", "jax"):
        skips["sparse"] = pytest.mark.skip(
            reason=f"Keras has no sparse tensors on the {BACKEND} backend"
        )
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def mnist_npz():
    """Path of the real-MNIST subset beside the repository, or a skip."""
    if not MNIST_NPZ.exists():
        pytest.skip(f"real MNIST data not found at {MNIST_NPZ}")
    return MNIST_NPZ


@pytest.fixture(autouse=True)
def _seed_and_policy():
    """Every test starts from the same seeds and the float32 policy."""
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_dtype_policy("float32")
