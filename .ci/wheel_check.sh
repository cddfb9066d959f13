#!/usr/bin/env bash
# Builds the sdist and the wheel, checks their metadata with twine, installs
# the wheel (not the checkout) into a fresh virtual environment and uses it
# as a user would: import it, compare keras_adaptive.__version__ with the
# wheel's version, check that the wheel's dependencies are satisfied, and
# train examples/mnist_mlp.py for three epochs on the MNIST subset.
#
# The environment sees the system's site-packages, so TensorFlow, Keras and
# the other dependencies are not downloaded again; the package itself is
# installed from the wheel and must be imported from the environment, not
# from this checkout (asserted below).
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
echo "+ fresh virtual environment, pip install --no-deps $(basename "$wheel")"
python -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-deps --no-index \
  --force-reinstall "$wheel"

# From an empty directory, so that neither the checkout nor its examples
# folder is on sys.path when the package is imported.
mkdir "$work/run"
cd "$work/run"
"$work/venv/bin/python" - "$wheel" "$work/venv" "$repo" "$npz" <<'PY'
import importlib.metadata
import os
import runpy
import sys
from pathlib import Path

from packaging.requirements import Requirement

wheel, venv, repo, npz = sys.argv[1:]
wheel_version = Path(wheel).name.split("-")[1]

import keras_adaptive  # noqa: E402

location = Path(keras_adaptive.__file__).resolve()
print(f"keras_adaptive {keras_adaptive.__version__} from {location}")
assert Path(venv).resolve() in location.parents, (
    f"keras_adaptive was imported from {location}, not from the wheel in {venv}"
)
assert keras_adaptive.__version__ == wheel_version, (
    keras_adaptive.__version__,
    wheel_version,
)
installed = importlib.metadata.version("keras-adaptive")
assert installed == wheel_version, (installed, wheel_version)
print(f"wheel {Path(wheel).name}: version {wheel_version}, metadata {installed}")

for line in importlib.metadata.requires("keras-adaptive") or []:
    requirement = Requirement(line)
    if requirement.marker is not None and not requirement.marker.evaluate(
        {"extra": ""}
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
