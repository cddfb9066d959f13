#!/usr/bin/env bash
# Builds the documentation site from scratch with every warning an error:
# an unresolved reference, a docstring that is not valid reStructuredText, a
# missing page or image fails the build. Needs the docs extra
# (pip install -e ".[docs]"); reads no network.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
rm -rf docs/_build/html docs/_build/doctrees
sphinx-build -W --keep-going -b html docs docs/_build/html
