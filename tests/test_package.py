"""The package's import-time promises."""

import subprocess
import sys
import textwrap

BLOCKED_IMPORT = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("matplotlib", "tensorflow_datasets"):
                raise ImportError(f"{name} is blocked")

    sys.meta_path.insert(0, Block())
    import keras_adaptive
    import keras_adaptive.callbacks, keras_adaptive.datasets, keras_adaptive.plotting
    import keras_adaptive.schedules
    print(sorted(keras_adaptive.__all__))
    """
)


def test_library_imports_without_matplotlib_or_tensorflow_datasets():
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'Adam'" in result.stdout
    assert "'find_learning_rate'" in result.stdout
