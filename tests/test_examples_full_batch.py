"""Smoke tests of `examples/full_batch_mnist.py`, `benchmarks/minimize_step.py`,
`benchmarks/hessian_vector_product.py` and `benchmarks/minimize_newton.py` at
tiny sizes (seconds). Nothing here asserts a speed."""

import csv
import importlib
import json
import math
import re
from pathlib import Path

import keras
import pytest

#: The subject of these tests does not depend on the backend of the pass.
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def load(monkeypatch):
    def load(folder, name):
        monkeypatch.syspath_prepend(str(ROOT / folder))
        return importlib.import_module(name)

    return load


def test_full_batch_example_writes_table_csv_and_figure(
    load, mnist_npz, tmp_path, capsys
):
    example = load("examples", "full_batch_mnist")
    out = tmp_path / "run"
    status = example.main(
        [
            "--npz",
            str(mnist_npz),
            "--samples",
            "256",
            "--hidden",
            "4",
            "--epochs",
            "2",
            "--iterations",
            "4",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    names = ["mini-batch SGD", "momentum", "Adam", "L-BFGS (full batch)"]
    names.append("CG (full batch)")
    row = r"^{}\s+([\d.e+-]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$"
    for name in names:
        assert re.search(row.format(re.escape(name)), printed, re.M), printed

    with open(out / "curves.csv", newline="") as handle:
        curves = list(csv.DictReader(handle))
    by_method = {name: [r for r in curves if r["method"] == name] for name in names}
    for name in names[:3]:  # fit: one point per epoch, from evaluation 0
        points = [float(r["gradient_evaluations"]) for r in by_method[name]]
        assert points == [0.0, 1.0, 2.0]
    for name in names[3:]:  # minimize: cumulative evaluations, loss falls
        rows = by_method[name]
        assert float(rows[0]["gradient_evaluations"]) == 1.0
        assert len(rows) == 5
        losses = [float(r["train_loss"]) for r in rows]
        assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))
    starts = {float(rows[0]["train_loss"]) for rows in by_method.values()}
    assert max(starts) - min(starts) < 1e-3 * max(starts)  # same initial weights
    for row in curves:
        assert math.isfinite(float(row["seconds"])) and float(row["seconds"]) >= 0

    with open(out / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert [r["method"] for r in summary] == names
    assert (out / "full_batch_mnist.png").stat().st_size > 10_000


def test_minimize_benchmark_reports_a_ratio(load, tmp_path):
    benchmark = load("benchmarks", "minimize_step")
    out = tmp_path / "minimize.json"
    argv = ["--synthetic", "--samples", "128", "--hidden", "4", "--iterations", "3"]
    argv += ["--fit-steps", "2", "--rounds", "2", "--out", str(out)]
    assert benchmark.main(argv) == 0
    document = json.loads(out.read_text())
    assert document["environment"]["backend"] == keras.backend.backend()
    assert document["settings"]["data"] == "synthetic"
    assert len(document["rounds"]) == 2
    for result in document["rounds"]:
        assert result["ours"]["evaluations"] >= 2
        assert result["ours"]["per_evaluation_s"] > 0
        assert result["keras"]["per_step_s"] > 0
        assert result["ratio"] == pytest.approx(
            result["ours"]["per_evaluation_s"] / result["keras"]["per_step_s"]
        )
    assert 0 < document["ratio_median"] < math.inf


def test_hessian_vector_product_benchmark_reports_a_ratio(load, tmp_path):
    benchmark = load("benchmarks", "hessian_vector_product")
    out = tmp_path / "hvp.json"
    argv = ["--synthetic", "--samples", "64", "--hidden", "4", "--calls", "2"]
    assert benchmark.main([*argv, "--rounds", "2", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["environment"]["backend"] == keras.backend.backend()
    assert document["settings"]["parameters"] == 784 * 4 + 4 + 4 * 10 + 10
    assert len(document["rounds"]) == 2
    for result in document["rounds"]:
        assert result["ratio"] == pytest.approx(
            result["product_s"] / result["gradient_s"]
        )
    assert 0 < document["ratio_median"] < math.inf


def test_newton_benchmark_writes_every_method(load, tmp_path, capsys):
    benchmark = load("benchmarks", "minimize_newton")
    out = tmp_path / "newton.json"
    argv = ["--synthetic", "--samples", "64", "--hidden", "4"]
    assert benchmark.main([*argv, "--max-iterations", "3", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert set(document["results"]) == set(benchmark.RUNS)
    for result in document["results"].values():
        assert 1 <= result["iterations"] <= 3
        assert set(result["reached"]) == {"0.1", "0.01"}
    printed = capsys.readouterr().out
    assert all(name in printed for name in benchmark.RUNS)
