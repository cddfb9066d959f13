"""The documentation's promises: runnable examples, and no public name left out.

* Every `>>>` example in the docstrings of the package's modules runs as a
  doctest on the current backend.
* Every public name has a docstring of its own (a `#:` comment for data).
* Every public name is rendered by an autodoc directive in `docs/api/`.
* Every public docstring has an `Example:` and a `References:` section
  (helpers with nothing to cite are listed below).

Public names are `__all__` where a module defines it, and otherwise the
classes and functions a module defines without a leading underscore.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
API_DIR = REPO_ROOT / "docs" / "api"

PUBLIC_MODULES = [
    "keras_adaptive",
    "keras_adaptive.optimizers",
    "keras_adaptive.callbacks",
    "keras_adaptive.range_test",
    "keras_adaptive.schedules",
    "keras_adaptive.datasets",
    "keras_adaptive.plotting",
    "keras_adaptive.full_batch",
    "keras_adaptive.curvature",
]

#: Modules whose docstrings hold doctests: the public ones and the modules
#: that define what they export.
DOCTEST_MODULES = PUBLIC_MODULES + [
    "keras_adaptive.optimizers.base",
    "keras_adaptive.optimizers.sgd",
    "keras_adaptive.optimizers.adagrad",
    "keras_adaptive.optimizers.rmsprop",
    "keras_adaptive.optimizers.adadelta",
    "keras_adaptive.optimizers.adam",
    "keras_adaptive.optimizers.delta_bar_delta",
    "keras_adaptive.optimizers.rprop",
    "keras_adaptive.callbacks.policy",
    "keras_adaptive.callbacks.curvature_monitor",
    "keras_adaptive.full_batch.line_search",
    "keras_adaptive.full_batch.minimization",
    "keras_adaptive.full_batch.objective",
    "keras_adaptive.curvature.probe",
    "keras_adaptive.curvature.spectrum",
    "keras_adaptive.curvature.preconditioners",
    "keras_adaptive.callbacks.bold_driver",
    "keras_adaptive.callbacks.plateau",
]

#: Helpers with nothing to cite: no `References:` section required.
WITHOUT_REFERENCES = {
    "keras_adaptive.datasets.DataSourceError",
    "keras_adaptive.datasets.Datasets",
    "keras_adaptive.datasets.RawData",
    "keras_adaptive.datasets.check_batch_size",
    "keras_adaptive.datasets.check_validation_fraction",
    "keras_adaptive.datasets.network_available",
    "keras_adaptive.datasets.synthetic_raw",
    "keras_adaptive.optimizers.deserialize",
    "keras_adaptive.optimizers.get",
    "keras_adaptive.optimizers.serialize",
}


def public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module_name
    )


PUBLIC = [
    (module_name, name)
    for module_name in PUBLIC_MODULES
    for name in public_names(module_name)
]
PUBLIC_IDS = [f"{module}.{name}" for module, name in PUBLIC]


def resolve(dotted: str):
    """The object a dotted name in an autodoc directive stands for."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


def documented_objects() -> list:
    """Every object an autodoc directive of docs/api/ renders."""
    directive = re.compile(
        r"^\.\. auto(module|class|function|data|exception)::\s*(\S+)"
        r"((?:\n[ \t]+:[\w-]+:.*)*)",
        re.M,
    )
    objects = []
    for page in sorted(API_DIR.glob("*.md")):
        for kind, target, options in directive.findall(page.read_text()):
            if kind == "module":
                module = importlib.import_module(target)
                objects.append(module)
                if ":members:" in options:
                    objects += [getattr(module, n) for n in public_names(target)]
            else:
                objects.append(resolve(target))
    return objects


def own_docstring(obj) -> str:
    if inspect.ismodule(obj) or inspect.isfunction(obj):
        return obj.__doc__ or ""
    if inspect.isclass(obj):
        return obj.__dict__.get("__doc__") or ""
    return ""


def doc_comment(module_name: str, name: str) -> str:
    """The `#:` comment above a module-level assignment of `name`."""
    module = importlib.import_module(module_name)
    source = Path(inspect.getsourcefile(module)).read_text()
    lines = source.splitlines()
    for node in ast.parse(source).body:
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            comment = []
            row = node.lineno - 2
            while row >= 0 and lines[row].lstrip().startswith("#:"):
                comment.insert(0, lines[row].lstrip()[2:].strip())
                row -= 1
            return " ".join(comment)
    return ""


def docstring_of(module_name: str, name: str) -> str:
    obj = getattr(importlib.import_module(module_name), name)
    if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj):
        return own_docstring(obj)
    # Data: documented where it is defined, or where it is re-exported from.
    for candidate in [module_name, *PUBLIC_MODULES]:
        module = importlib.import_module(candidate)
        if getattr(module, name, None) is obj:
            comment = doc_comment(candidate, name)
            if comment:
                return comment
    return ""


@pytest.mark.parametrize("module_name", DOCTEST_MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    report = []
    failed = sum(runner.run(test, out=report.append).failed for test in tests)
    assert failed == 0, "".join(report)


@pytest.mark.parametrize("module_name, name", PUBLIC, ids=PUBLIC_IDS)
def test_public_name_has_a_docstring(module_name, name):
    assert docstring_of(module_name, name).strip(), (
        f"{module_name}.{name} has no docstring of its own"
    )


def test_every_public_name_is_in_the_api_reference():
    documented = {id(obj) for obj in documented_objects()}
    missing = [
        f"{module_name}.{name}"
        for module_name, name in PUBLIC
        if id(getattr(importlib.import_module(module_name), name)) not in documented
    ]
    assert not missing, (
        f"no autodoc directive in docs/api/ renders {missing}; add an "
        "autoclass, autofunction, autodata or automodule for each"
    )


def test_api_reference_names_only_existing_objects():
    # resolve() raises for a directive whose target no longer exists.
    assert documented_objects()


def sections_missing(section: str, exempt: set[str]) -> list[str]:
    missing = set()
    for module_name, name in PUBLIC:
        obj = getattr(importlib.import_module(module_name), name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        defined = f"{obj.__module__}.{obj.__qualname__}"
        if f"{section}:" not in own_docstring(obj) and defined not in exempt:
            missing.add(defined)
    return sorted(missing)


def test_public_docstrings_have_an_example():
    missing = sections_missing("Example", set())
    assert not missing, f"no Example: section in the docstrings of {missing}"


def test_public_docstrings_have_references():
    missing = sections_missing("References", WITHOUT_REFERENCES)
    assert not missing, f"no References: section in the docstrings of {missing}"
