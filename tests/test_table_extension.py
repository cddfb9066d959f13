"""Adding an optimizer takes one module-level class and one table row.

This module defines a toy optimizer, `SignedMomentumToy`, and its row,
`TOY_ROW`, exactly as `optimizer_table.py` tells a contributor to (its
float64 reference and its invalid values included). The test runs pytest in
a subprocess with this module loaded as a plugin (``-p test_table_extension``):
its `pytest_configure` appends the row to the table before the test modules
are collected, its `pytest_collection_modifyitems` records every collected
item (which table row it is parametrized by, if any, and whether a marker
skips it) and keeps only the toy row's items, and its
`pytest_runtest_logreport` records their outcomes. Every generic test, one
with at least one item parametrized by a row, must then have passed on the
toy row, unless it is skipped on this backend for every row.

The hooks are called only when this module is loaded as a plugin; collected
as a test module, as in a normal run, it only defines the class, the row and
the test.
"""

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import BACKEND, REPO_ROOT
from keras import ops
from optimizer_table import RAMP, ROWS, OptimizerInfo, Reference
from references import constant, ramp, record_branches

from keras_adaptive import optimizers
from keras_adaptive.optimizers.base import compute_dtype, serialize_hyperparameter
from keras_adaptive.schedules import MomentumRamp

#: The subject of these tests does not depend on the backend of the pass.
pytestmark = pytest.mark.once

TESTS = Path(__file__).resolve().parent
#: Where the plugin writes its record of the subprocess's items.
REPORT = "KERAS_ADAPTIVE_TABLE_EXTENSION_REPORT"


@keras.saving.register_keras_serializable(package="keras_adaptive_tests")
class SignedMomentumToy(optimizers.Optimizer):
    """Momentum on the gradient's sign: v <- mu v - eta sign(g); w <- w + v."""

    def __init__(self, learning_rate=0.01, momentum=0.9, name=None, **kwargs):
        momentum = self._check("momentum", momentum, 0.0, 1.0, schedule=True)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = momentum

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._velocities = self.add_slots(variables, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        dtype = compute_dtype(variable)
        mu = self.hyperparameter(self.momentum, dtype)
        step = ops.cast(learning_rate, dtype) * ops.sign(ops.cast(gradient, dtype))
        velocity = mu * self.slot(self._velocities, variable, dtype) - step
        self.assign(self._velocities[self.variable_index(variable)], velocity)
        self.assign(variable, ops.cast(variable, dtype) + velocity)

    def get_config(self):
        config = super().get_config()
        config["momentum"] = serialize_hyperparameter(self.momentum)
        return config


def signed_momentum(momentum=0.9):
    """v <- mu v - eta sign(g); w <- w + v, in float64, with mu a float or a
    function of the step count. Records a zero gradient (sign 0) and a
    velocity that reverses its sign."""
    mu = momentum if callable(momentum) else constant(momentum)

    def step(s, w, g, lr, t):
        previous = s.get("v", np.zeros_like(w))
        s["v"] = mu(t - 1) * previous - lr * np.sign(g)
        record_branches(s, zero=g == 0, reverse=previous * s["v"] < 0)
        return w + s["v"]

    return step


TOY_ROW = OptimizerInfo(
    SignedMomentumToy,
    {"learning_rate": 0.005},
    state="velocity",
    references=(
        Reference(
            "",
            {"learning_rate": 0.01},
            signed_momentum(),
            frozenset({"zero", "reverse"}),
        ),
        Reference(
            "ramp",
            {"learning_rate": 0.01, "momentum": MomentumRamp(*RAMP)},
            signed_momentum(ramp(*RAMP)),
        ),
    ),
    invalid={"momentum": ([-0.1, 1.0, float("nan")], "[0.0, 1.0)")},
    schedulable=("momentum",),
    sign_only=True,
)


# --- the plugin's hooks (called only under ``-p test_table_extension``) ----

RECORDS = {}


def pytest_configure(config):
    taken = {row.id for row in ROWS}
    assert TOY_ROW.id not in taken, f"{TOY_ROW.id} is already a row of the table"
    ROWS.append(TOY_ROW)


def row_of(item):
    """The id of the table row the item is parametrized by, or None."""
    params = item.callspec.params.values() if hasattr(item, "callspec") else ()
    rows = [value.id for value in params if isinstance(value, OptimizerInfo)]
    return rows[0] if rows else None


def skip_marked(item):
    """Whether a `skip` marker, or a `skipif` marker with a true (non-string)
    condition, skips the item: conftest.py's backend-only skips, for one."""
    if item.get_closest_marker("skip") is not None:
        return True
    return any(
        not isinstance(condition, str) and bool(condition)
        for mark in item.iter_markers("skipif")
        for condition in (*mark.args, mark.kwargs.get("condition", False))
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if REPORT not in os.environ:
        return
    for item in items:
        RECORDS[item.nodeid] = {
            "function": item.nodeid.split("[")[0],
            "row": row_of(item),
            "skip_marked": skip_marked(item),
            "outcome": None,
        }
    kept = [item for item in items if RECORDS[item.nodeid]["row"] == TOY_ROW.id]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def pytest_runtest_logreport(report):
    record = RECORDS.get(report.nodeid)
    if record is None:
        return
    if report.failed:
        record["outcome"] = "failed" if report.when == "call" else "error"
    elif record["outcome"] is None and (report.skipped or report.when == "call"):
        record["outcome"] = report.outcome


def pytest_sessionfinish(session):
    if REPORT in os.environ:
        Path(os.environ[REPORT]).write_text(json.dumps(RECORDS, indent=1))


# --- the test ----------------------------------------------------------------


def test_every_generic_test_passes_on_a_new_row(tmp_path):
    report = tmp_path / "items.json"
    env = {
        **os.environ,
        "KERAS_BACKEND": BACKEND,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])
        ),
        REPORT: str(report),
    }
    if BACKEND == "torch":
        # Eager steps, as the suite's own run takes after its first few
        # compilations (see conftest.py); compiling from cold in a fresh
        # process would cost this test a minute and a half.
        env["TORCHDYNAMO_DISABLE"] = "1"
    command = [sys.executable, "-m", "pytest", "-p", "test_table_extension"]
    start = time.perf_counter()
    result = subprocess.run(
        [*command, "-p", "no:cacheprovider", "-q", "-rfEs", str(TESTS)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    elapsed = time.perf_counter() - start
    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    records = json.loads(report.read_text())

    by_function = defaultdict(list)
    for nodeid, record in records.items():
        by_function[record["function"]].append({"nodeid": nodeid, **record})
    generic = {
        function: items
        for function, items in by_function.items()
        if any(item["row"] for item in items)
    }
    # Not vacuous: every test module that reads the table has generic tests.
    readers = {
        path.name
        for path in TESTS.glob("test_*.py")
        if "from optimizer_table import" in path.read_text()
        and path.name != Path(__file__).name
    }
    assert readers <= {function.split("::")[0].split("/")[-1] for function in generic}

    without = [
        function
        for function, items in generic.items()
        if all(item["row"] != TOY_ROW.id for item in items)
    ]
    assert not without, f"generic tests without an item for the new row: {without}"
    not_passed = {}
    for items in generic.values():
        others_skipped = all(
            item["skip_marked"]
            for item in items
            if item["row"] not in (None, TOY_ROW.id)
        )
        for item in items:
            if item["row"] != TOY_ROW.id or item["outcome"] == "passed":
                continue
            if item["outcome"] == "skipped" and others_skipped:
                continue
            not_passed[item["nodeid"]] = item["outcome"]
    assert not not_passed, (not_passed, output)
    print(f"{len(generic)} generic tests on the new row in {elapsed:.0f} s")
