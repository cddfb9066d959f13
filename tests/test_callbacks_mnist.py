"""The real-MNIST demonstration runs end to end (a small subset, few epochs).

The full-size comparison and the figures of docs/callbacks.md come from
``python examples/cooldown_mnist.py --out docs/images``.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

#: A comparison of methods on real data: its subject does not depend on the
#: backend of the pass (each backend's arithmetic is checked by the exactness
#: tests).
pytestmark = pytest.mark.once

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_example():
    path = REPO_ROOT / "examples" / "cooldown_mnist.py"
    spec = importlib.util.spec_from_file_location("cooldown_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cooldown_against_fixed_rate_on_real_mnist(mnist_npz, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the demonstration draws its figures")
    example = load_example()
    results = example.run(
        mnist_npz,
        epochs=6,
        n_train=2500,
        n_test=1000,
        learning_rate=5e-3,
        patience=1,
        out_dir=tmp_path,
        range_steps=20,
    )
    for name in ("fixed", "cooldown"):
        result = results[name]
        accuracy, epochs = result["test_accuracy"], result["epochs"]
        with capsys.disabled():  # the figures belong in every test log
            print(f"\n{name}: test accuracy {accuracy:.4f}, epochs {epochs}")
        assert 0.8 < result["test_accuracy"] <= 1.0
    assert results["fixed"]["epochs"] == 6
    cooldown = results["cooldown"]
    assert 1 <= cooldown["epochs"] <= 6
    rates = cooldown["history"]["learning_rate"]
    assert rates[0] == pytest.approx(5e-3, rel=1e-6)
    ratios = np.asarray(rates[1:]) / np.asarray(rates[:-1])
    cuts = np.isclose(ratios, 0.1, rtol=1e-5)
    assert np.all(cuts | np.isclose(ratios, 1.0, rtol=1e-6))
    assert cuts.sum() <= cooldown["reductions"] <= 3
    assert (tmp_path / "callbacks_mnist_loss_lr.png").stat().st_size > 10_000
    assert (tmp_path / "callbacks_range_test.png").stat().st_size > 10_000
