"""`examples/curvature_mnist.py`: the 1-D picture's numbers, and a tiny run of
the whole script on real MNIST (seconds)."""

import csv
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

#: The subject of these tests does not depend on the backend of the pass.
pytestmark = pytest.mark.once

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("curvature_mnist")


def test_quadratic_picture_follows_the_lecture(example):
    picture = example.quadratic_picture(seed=0)
    x = picture["x"].astype("float64")
    assert 1 / picture["eta_opt"] == pytest.approx(2 * np.mean(x * x), rel=1e-5)
    distance = {m: w - picture["best"] for m, w in picture["runs"].items()}
    assert abs(distance[1.0][1]) < 1e-5 * abs(distance[1.0][0])  # one step
    for multiple, factor in [(0.5, 0.5), (1.5, -0.5), (2.0, -1.0), (2.2, -1.2)]:
        steps = np.arange(len(distance[multiple]))
        np.testing.assert_allclose(
            distance[multiple], distance[multiple][0] * factor**steps, rtol=1e-4
        )


def test_script_writes_figures_and_csv(example, mnist_npz, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--npz", str(mnist_npz), "--samples", "128", "--hidden", "4"]
    argv += ["--rates", "0.5", "2", "--epochs", "2", "--steps-per-epoch", "2"]
    assert example.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(
        r"eta = 1\.0 eta_opt: distance to the minimum 1 -> [0-9.e-]+", printed
    )
    products = re.search(
        r"lambda_max \S+ in (\d+) products \(tolerance 1e-3\)", printed
    )
    assert products and int(products.group(1)) <= 30

    with open(out / "curvature_mnist.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["rate"], r["step"]) for r in rows] == [
        (rate, step) for rate in ("0.5", "2.0") for step in ("0", "2", "4")
    ]
    for row in rows:
        assert float(row["lambda_max"]) > 0
        assert float(row["two_over_rate"]) == 2 / float(row["rate"])
    for name in ("curvature_quadratic.png", "curvature_mnist.png"):
        assert (out / name).stat().st_size > 10_000
