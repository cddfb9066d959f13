"""The curvature page and docstrings run as written, on the current backend.

Every ```python block of docs/curvature.md runs in a fresh namespace (in a
temporary folder: one writes a CSV file), and every `>>>` example of the
curvature modules runs as a doctest.
"""

import re
from pathlib import Path

import pytest
from test_docs import test_docstring_examples_run as run_doctests

PAGE = Path(__file__).resolve().parents[1] / "docs" / "curvature.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(), re.M | re.S)
MODULES = [
    "keras_adaptive.curvature",
    "keras_adaptive.curvature.spectrum",
    "keras_adaptive.curvature.probe",
    "keras_adaptive.curvature.preconditioners",
    "keras_adaptive.callbacks.curvature_monitor",
]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_page_block_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"{PAGE.name} block {index + 1}", "exec"), {})
    assert capsys.readouterr().out  # each block prints its result


@pytest.mark.parametrize("module_name", MODULES)
def test_curvature_docstring_examples_run(module_name):
    run_doctests(module_name)
