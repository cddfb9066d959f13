#!/usr/bin/env bash
# Builds the sdist and the wheel, checks their metadata with twine, and uses
# the wheel (not the checkout) as a user would, in two fresh environments:
#
# 1. "core": a virtual environment of its own (no system packages) with the
#    wheel, its dependencies (Keras and NumPy) and JAX, and no TensorFlow:
#    `pip show` lists the URLs and the licence, the package imports and trains
#    a model on JAX, and `import keras_adaptive.datasets` raises the
#    ImportError that names the "datasets" extra. The versions of Keras, NumPy
#    and JAX are those installed here, so pip's cache or a local index serves
#    them.
# 2. "full": a virtual environment that sees the system's site-packages
#    (TensorFlow, JAX, PyTorch, tensorflow-datasets are not installed again)
#    with the wheel installed without dependencies: the wheel's requirements
#    are satisfied, a model trains on every backend installed, and
#    examples/mnist_mlp.py trains for three epochs on the MNIST subset.
#
# Each environment imports the package from the wheel, never from this
# checkout (asserted: the scripts run from an empty directory).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
npz=${MNIST_NPZ:-$repo/../shared/data/mnist-subset.npz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off TF_CPP_MIN_LOG_LEVEL=3

python -m build --version >/dev/null 2>&1 || python -m pip install --quiet build
python -m twine --version >/dev/null 2>&1 || python -m pip install --quiet twine

echo "+ python -m build --no-isolation --outdir $work/dist"
python -m build --no-isolation --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
ls "$work/dist"
python -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)
if tar tzf "$sdist" | grep -q '/tests/'; then
  echo "the sdist ships tests/ without the files they need" >&2
  exit 1
fi
python -m zipfile -l "$wheel" | grep -q 'keras_adaptive/py.typed' \
  || { echo "the wheel has no keras_adaptive/py.typed" >&2; exit 1; }

# A tiny model trained from the installed package: the loss must fall.
cat >"$work/train.py" <<'PY'
import sys
from pathlib import Path

import keras
import numpy as np

import keras_adaptive as ka

venv = Path(sys.argv[1]).resolve()
location = Path(ka.__file__).resolve()
assert venv in location.parents, f"keras_adaptive imported from {location}"
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 8)).astype("float32")
y = x @ rng.normal(size=(8, 1)).astype("float32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
model.compile(optimizer=ka.Nesterov(learning_rate=0.05), loss="mse")
losses = model.fit(x, y, batch_size=32, epochs=5, verbose=0).history["loss"]
assert losses[-1] < 0.1 * losses[0], losses
print(f"{keras.backend.backend()}: keras_adaptive {ka.__version__} from the "
      f"wheel, loss {losses[0]:.3f} -> {losses[-1]:.4f}")
PY

mkdir "$work/run"
cd "$work/run"
version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }

echo "+ core environment: the wheel, Keras, NumPy and JAX; no TensorFlow"
python -m venv "$work/core"
core=$work/core/bin/python
# A pip that shows the licence expression (PEP 639).
"$core" -m pip install --quiet --upgrade pip
"$core" -m pip install --quiet "$wheel" "keras==$(version keras)" \
  "numpy==$(version numpy)" "jax[cpu]==$(version jax)"
"$core" -m pip check
"$core" -m pip show --verbose keras-adaptive | tee "$work/show.txt"
for field in "License-Expression: Apache-2.0" "Documentation, https://" \
  "Source, https://" "Changelog, https://"; do
  grep -q "$field" "$work/show.txt" \
    || { echo "pip show lists no '$field'" >&2; exit 1; }
done
KERAS_BACKEND=jax "$core" "$work/train.py" "$work/core"
KERAS_BACKEND=jax "$core" - <<'PY'
import importlib.util

assert importlib.util.find_spec("tensorflow") is None, "TensorFlow is installed"
try:
    import keras_adaptive.datasets  # noqa: F401
except ImportError as err:
    assert 'pip install "keras-adaptive[datasets]"' in str(err), err
    print(f"import keras_adaptive.datasets: ImportError: {err}")
else:
    raise AssertionError("keras_adaptive.datasets imported without TensorFlow")
PY

echo "+ full environment: system site-packages, pip install --no-deps the wheel"
python -m venv --system-site-packages "$work/full"
full=$work/full/bin/python
"$full" -m pip install --quiet --no-deps --no-index --force-reinstall "$wheel"
for backend in tensorflow jax torch; do
  if "$full" -c "import importlib.util, sys; sys.exit(not importlib.util.find_spec('$backend'))"; then
    KERAS_BACKEND=$backend "$full" "$work/train.py" "$work/full"
  else
    echo "$backend is not installed: not trained"
  fi
done
"$full" - "$wheel" "$repo" "$npz" <<'PY'
import importlib.metadata
import os
import runpy
import sys
from pathlib import Path

from packaging.requirements import Requirement

import keras_adaptive

wheel, repo, npz = sys.argv[1:]
wheel_version = Path(wheel).name.split("-")[1]
assert keras_adaptive.__version__ == wheel_version, (
    keras_adaptive.__version__,
    wheel_version,
)
installed = importlib.metadata.version("keras-adaptive")
assert installed == wheel_version, (installed, wheel_version)
print(f"wheel {Path(wheel).name}: version {wheel_version}, metadata {installed}")

# The core and what the example scripts need: the examples extra and the
# datasets extra it names.
for line in importlib.metadata.requires("keras-adaptive") or []:
    requirement = Requirement(line)
    marker = requirement.marker
    if requirement.name == "keras-adaptive" or (
        marker is not None
        and not any(marker.evaluate({"extra": e}) for e in ("datasets", "examples"))
    ):
        continue
    version = importlib.metadata.version(requirement.name)
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{requirement} is not satisfied by {requirement.name} {version}"
    )
    print(f"  requires {requirement}: {version}")

script = os.path.join(repo, "examples", "mnist_mlp.py")
sys.path.insert(0, os.path.dirname(script))
sys.argv = [script, "--npz", npz, "--epochs", "3", "--verbose", "2",
            "--no-tensorboard"]
print("+ " + " ".join(["python", *sys.argv]))
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as stop:
    if stop.code not in (0, None):
        raise
assert sys.modules["keras_adaptive"].__file__ == keras_adaptive.__file__
print("wheel check passed")
PY
