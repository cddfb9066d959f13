"""Smoke test of `benchmarks/update_step.py`: its quick run, made smaller still,
completes on the current backend and reports well-formed numbers.

Nothing here asserts a speed: timings belong to the benchmark's tables, not
to tests.
"""

import importlib
import json
import math
from pathlib import Path

import keras
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
NAMES = ["SGD", "Adam"]
ROUNDS = 2


@pytest.fixture
def update_step(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("update_step")


def test_quick_flags_select_a_small_run(update_step):
    args = update_step.parse_args(["--quick"])
    names = {case.name for case in update_step.cases()}
    assert args.only and set(args.only) <= names
    assert args.rounds <= 3 and args.params_scale < 1


def test_every_counterpart_and_package_only_optimizer_has_a_row(update_step):
    names = [case.name for case in update_step.cases()]
    assert len(names) == len(set(names))
    for name in ("SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adadelta"):
        assert name in names
    for name in ("Adam", "Adam (amsgrad)", "Adamax", "Nadam"):
        assert name in names


def test_run_reports_positive_finite_times_one_row_per_optimizer(update_step, tmp_path):
    results = update_step.run_benchmark(
        NAMES, params_scale=0.001, rounds=ROUNDS, steps=1
    )

    assert [result.name for result in results] == NAMES
    for result in results:
        assert result.unit == "step" and result.units_per_round == 1
        assert len(result.ours) == len(result.keras) == ROUNDS
        for seconds in result.ours + result.keras:
            assert math.isfinite(seconds) and seconds > 0
        summary = result.summary()
        assert 0 < summary["ratio_q25"] <= summary["ratio_median"]
        assert summary["ratio_median"] <= summary["ratio_q75"] < math.inf
        assert summary["verdict"] in ("slower", "same", "faster")

    table = update_step.markdown_table(results).splitlines()
    assert len(table) == 2 + len(NAMES)
    for line, name in zip(table[2:], NAMES, strict=True):
        assert line.startswith(f"| {name} | ")

    out = tmp_path / "update_step.json"
    update_step.write_json(out, {"rounds": ROUNDS}, results)
    document = json.loads(out.read_text())
    assert document["environment"]["backend"] == keras.backend.backend()
    assert [row["name"] for row in document["results"]] == NAMES
    assert all(len(row["ours"]) == ROUNDS for row in document["results"])
