"""Smoke tests of every entry point in `benchmarks/`: each runs on tiny sizes,
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

#: The subject of these tests does not depend on the backend of the pass.
pytestmark = pytest.mark.once

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


def test_floor_is_timed_in_every_round_and_counts_the_bytes(update_step):
    shapes = update_step.tensor_shapes(20_000, tensors=2)
    assert update_step.parameter_count(shapes) == 20_000
    results = update_step.run_benchmark(
        ["Adam", "LBFGS"], rounds=ROUNDS, steps=1, shapes=shapes
    )
    adam, lbfgs = results
    assert len(adam.floor) == len(adam.floor_cpu) == ROUNDS
    # Weights and gradients (4 bytes) and two float32 slots, read and written.
    assert adam.floor_bytes == 20_000 * (3 * 4 + 2 * 2 * 4)
    summary = adam.summary()
    assert 0 < summary["ours_over_floor_q25"] <= summary["ours_over_floor_median"]
    assert not lbfgs.floor and "ours_over_floor_median" not in lbfgs.summary()
    table = update_step.markdown_table(results).splitlines()
    assert "ours/floor" in table[0] and table[-1].endswith("| – | – | – | – |")


def test_state_dtype_rows_compare_each_optimizer_with_its_float32_state(
    update_step,
):
    (row,) = update_step.run_benchmark(
        ["Adam"],
        rounds=ROUNDS,
        steps=1,
        shapes=update_step.tensor_shapes(2_000, tensors=2),
        state_dtype="bfloat16",
    )
    assert row.baseline == "Adam(state_dtype='float32')"
    assert row.floor_bytes == 2_000 * (3 * 4 + 2 * 2 * 2)
    names = {case.name for case in update_step.state_cases("bfloat16")}
    assert {"Adadelta", "Rprop", "LBFGS"} <= names


def test_command_line_writes_the_json(update_step, tmp_path):
    out = tmp_path / "u.json"
    update_step.main(
        ["--params", "4000", "--tensors", "2", "--rounds", "1", "--steps", "1"]
        + ["--only", "SGD", "--out", str(out)]
    )
    document = json.loads(out.read_text())
    assert document["settings"]["params"] == 4000
    assert document["results"][0]["floor_bytes"] == 4000 * 3 * 4


@pytest.fixture
def tiny_mnist(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (256, 28, 28), dtype="uint8"),
        y_train=rng.integers(0, 10, 256, dtype="uint8"),
        x_test=rng.integers(0, 256, (32, 28, 28), dtype="uint8"),
        y_test=rng.integers(0, 10, 32, dtype="uint8"),
    )
    return path


@pytest.fixture
def time_to_accuracy(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("time_to_accuracy")


def test_time_to_accuracy_optimizers_part(time_to_accuracy, tiny_mnist, tmp_path):
    out, figure = tmp_path / "o.json", tmp_path / "o.png"
    time_to_accuracy.main(
        ["--part", "optimizers", "--npz", str(tiny_mnist), "--seeds", "2"]
        + ["--epochs", "2", "--only", "Adam", "Rprop", "--out", str(out)]
        + ["--figure", str(figure)]
    )
    runs = json.loads(out.read_text())["runs"]
    assert len(runs) == 2 * 2 * 2 and figure.stat().st_size > 0
    for run in runs:
        assert len(run["train_loss"]) == len(run["test_accuracy_per_epoch"]) == 2
        assert run["batch_size"] == (256 if run["optimizer"] == "Rprop" else 128)
    assert "Adam" in time_to_accuracy.optimizers_table(runs)


def test_time_to_accuracy_policies_part(time_to_accuracy, tiny_mnist, tmp_path):
    out = tmp_path / "p.json"
    time_to_accuracy.main(
        ["--part", "policies", "--npz", str(tiny_mnist), "--seeds", "1"]
        + ["--epochs", "2", "--patience", "1", "--models", "mlp"]
        + ["--out", str(out)]
    )
    runs = json.loads(out.read_text())["runs"]
    policies = {run["policy"] for run in runs}
    assert policies == set(time_to_accuracy.POLICIES)
    assert all(1 <= run["epochs_used"] <= 2 for run in runs)


def test_train_epoch_and_minimize_step_run_on_tiny_inputs(monkeypatch, tiny_mnist):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    train_epoch = importlib.import_module("train_epoch")
    train_epoch.main(
        ["--npz", str(tiny_mnist), "--samples", "256", "--repeats", "1"]
        + ["--only", "Adam"]
    )
    minimize_step = importlib.import_module("minimize_step")
    minimize_step.main(
        ["--synthetic", "--samples", "64", "--hidden", "4", "--iterations", "2"]
        + ["--fit-steps", "2", "--rounds", "1"]
    )


def test_interleave_calls_before_round_untimed_before_every_round():
    from _timing import Comparison, interleave

    calls = []
    comparison = Comparison("row", "baseline", "step", 1)
    interleave(
        comparison,
        lambda n: calls.append("ours"),
        lambda n: calls.append("keras"),
        rounds=3,
        before_round=lambda r: calls.append(f"before {r}"),
    )
    assert calls == [
        "before 0", "ours", "keras",
        "before 1", "keras", "ours",
        "before 2", "ours", "keras",
    ]  # fmt: skip
    assert len(comparison.ours) == len(comparison.keras) == 3


def test_jax_steppers_move_their_arrays_and_keep_their_values(update_step):
    run = update_step.make_stepper(
        keras.optimizers.SGD(), update_step.tensor_shapes(2_000, 2)
    )
    if keras.backend.backend() != "jax":
        # Only JAX's donated arrays keep their addresses from step to step.
        assert not hasattr(run, "relocate")
        return
    import jax.numpy as jnp
    import numpy as np

    assert callable(run.relocate)
    state = {"optimizer": [jnp.arange(6.0)], "trainable": [jnp.ones((2, 3))]}
    before = {key: list(arrays) for key, arrays in state.items()}
    update_step._relocator(state)()
    for key, arrays in state.items():
        for old, new in zip(before[key], arrays, strict=True):
            assert new.unsafe_buffer_pointer() != old.unsafe_buffer_pointer()
            np.testing.assert_array_equal(np.asarray(new), np.asarray(old))


@pytest.fixture
def plot_results(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("plot_results")


def test_plot_results_draws_both_figures(plot_results, tmp_path, capsys):
    plot_results.main(["--out", str(tmp_path)])
    for name in ("benchmarks_floor.png", "benchmarks_training_cost.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_results.summary_table() in capsys.readouterr().out


def test_the_benchmarks_page_shows_the_summary_of_the_result_files(plot_results):
    table = plot_results.summary_table()
    rows = table.splitlines()[2:]
    # A row per update-step row of the result files, counterparts and
    # package-only optimizers alike.
    assert [row.split(" | ")[0] for row in rows[:2]] == ["| `SGD`", "| `Momentum`"]
    assert sum("no counterpart" in row for row in rows) == 3
    page = (BENCHMARKS.parent / "docs" / "benchmarks.md").read_text()
    assert table in page, (
        "docs/benchmarks.md does not show the summary of benchmarks/results/: "
        "paste the table python benchmarks/plot_results.py prints"
    )
