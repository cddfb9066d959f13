"""Sphinx configuration of the keras_adaptive documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
after ``pip install -e ".[docs]"``. The build reads no network: MathJax is
served from the site itself and there is no intersphinx.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
# Importing the package for autodoc must not look for an accelerator or
# print TensorFlow's start-up chatter into the build log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras_adaptive  # noqa: E402

project = "keras_adaptive"
author = "keras_adaptive contributors"
copyright = "the keras_adaptive contributors"
release = keras_adaptive.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    # Ships MathJax 3 and points mathjax_path at the copy in _static.
    "sphinx-mathjax-offline",
    # The lecture lab's paths (lab.md), computed by the package's optimizers.
    "lecture_lab",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Single backquotes in docstrings name code: render them as code, linked
# where the name is documented here.
default_role = "py:obj"

# MyST: $...$ and $$...$$ math, definition lists, anchors for headings.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc and napoleon: Google-style docstrings, signatures without the
# annotations' long union types, members in source order.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
add_module_names = False
python_display_short_literal_types = True


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _plain_text_docstrings(app, what, name, obj, options, lines):
    """Renders docstrings written for the terminal as they read there.

    Some docstrings write formulas as an indented block after a paragraph
    ending in a colon, and absolute values as |x|. In reStructuredText the
    first is a block quote whose lines run together, the second a
    substitution. Such a block becomes a plain-text code block, and a bar
    outside code, math and literal blocks is escaped. Docstrings with
    ``.. math::`` blocks and roles are left as they are.
    """
    result = []
    protected_indent = None  # indent of the line that opened a literal block
    for i, line in enumerate(lines):
        stripped = line.strip()
        if protected_indent is not None:
            if not stripped or _indent(line) > protected_indent:
                result.append(line)
                continue
            protected_indent = None
        if stripped.startswith(">>>"):
            result.append(line)
            continue
        if "|" in line and not stripped.startswith(".."):
            line = _escape_bars(line)
        result.append(line)
        if stripped.endswith("::"):
            protected_indent = _indent(line)
        elif (
            stripped.endswith(":")
            and not stripped.startswith((":", ".."))
            and _next_block_is_indented(lines, i)
        ):
            result += ["", " " * _indent(line) + ".. code-block:: text"]
            protected_indent = _indent(line)
    lines[:] = result


def _next_block_is_indented(lines, i) -> bool:
    j = i + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j == i + 1 or j >= len(lines):
        return False
    nxt = lines[j].strip()
    return _indent(lines[j]) > _indent(lines[i]) and not nxt.startswith(
        (">>>", "..", "* ", "- ")
    )


_CODE_SPAN = re.compile(r"(``.+?``|:\w+:`[^`]*`|`[^`]*`)")


def _escape_bars(line: str) -> str:
    """Escapes | outside inline literals, roles and interpreted text."""
    parts = _CODE_SPAN.split(line)
    for k in range(0, len(parts), 2):
        parts[k] = parts[k].replace("|", "\\|")
    return "".join(parts)


def setup(app):
    app.connect("autodoc-process-docstring", _plain_text_docstrings)


html_theme = "furo"
html_title = f"keras_adaptive {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
pygments_style = "friendly"
# Code blocks without a language (console output, logs) are plain text.
highlight_language = "text"
