"""The package's import-time and packaging promises."""

import configparser
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[1]

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ImportError(f"{{name}} is blocked")

    sys.meta_path.insert(0, Block())
    """
)

BLOCKED_IMPORT = BLOCKER.format(blocked=("matplotlib", "tensorflow_datasets")) + (
    textwrap.dedent(
        """
        import keras_adaptive
        import keras_adaptive.callbacks, keras_adaptive.datasets
        import keras_adaptive.plotting, keras_adaptive.schedules
        print(sorted(keras_adaptive.__all__))
        """
    )
)

# As if TensorFlow were not installed: `import tensorflow` raises
# ModuleNotFoundError and importlib.util.find_spec("tensorflow") is None (which
# PyTorch's start-up asks).
WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import sys
    sys.modules["tensorflow"] = sys.modules["tensorflow_datasets"] = None
    """
) + (
    textwrap.dedent(
        """
        import keras, numpy as np
        import keras_adaptive as ka
        import keras_adaptive.callbacks, keras_adaptive.plotting
        import keras_adaptive.range_test, keras_adaptive.schedules

        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=ka.Adam(0.1), loss="mse")
        history = model.fit(np.ones((8, 3)), np.zeros((8, 1)), epochs=2, verbose=0,
                            callbacks=[ka.callbacks.CoolDownOnPlateau(monitor="loss")])
        print("trained", keras.backend.backend(), len(history.history["loss"]))
        loaded = [n for n, m in sys.modules.items() if m and n.startswith("tensorflow")]
        assert not loaded, loaded
        try:
            import keras_adaptive.datasets
        except ImportError as err:
            print("ImportError:", err)
        """
    )
)


def run_python(code: str, backend: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "KERAS_BACKEND": backend},
    )


def test_library_imports_without_matplotlib_or_tensorflow_datasets():
    result = run_python(BLOCKED_IMPORT, keras.backend.backend())
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'Adam'" in result.stdout
    assert "'find_learning_rate'" in result.stdout


def test_core_trains_without_tensorflow_and_datasets_names_the_extra():
    # TensorFlow is optional: on JAX and PyTorch nothing but
    # keras_adaptive.datasets needs it. (The TensorFlow backend needs it
    # for Keras itself, so this runs on JAX there.)
    backend = keras.backend.backend()
    backend = "jax" if backend == "tensorflow" else backend
    result = run_python(WITHOUT_TENSORFLOW, backend)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"trained {backend} 2" in result.stdout
    assert "ImportError: keras_adaptive.datasets" in result.stdout
    assert 'pip install "keras-adaptive[datasets]"' in result.stdout


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    return config


def requirement_names(text: str) -> set[str]:
    return {Requirement(line).name for line in text.split("\n") if line.strip()}


def test_core_depends_on_keras_and_numpy_only():
    config = setup_cfg()
    assert requirement_names(config["options"]["install_requires"]) == {
        "keras",
        "numpy",
    }
    extras = config["options.extras_require"]
    assert requirement_names(extras["datasets"]) == {
        "tensorflow",
        "tensorflow-datasets",
    }
    # The example scripts, the docs build and the tests load data.
    for extra in ("examples", "docs", "test"):
        assert "keras-adaptive[datasets]" in extras[extra].split("\n"), extra


def test_the_package_is_marked_typed_and_ships_the_marker():
    assert (REPO_ROOT / "keras_adaptive" / "py.typed").is_file()
    assert setup_cfg()["options.package_data"]["keras_adaptive"].strip() == "py.typed"
