"""The example scripts, run in-process through their ``main(argv)``."""

import csv
import importlib
import math
import re
from pathlib import Path

import keras
import pytest
from PIL import Image

from keras_adaptive import datasets

#: The subject of these tests does not depend on the backend of the pass.
pytestmark = pytest.mark.once

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def script(monkeypatch):
    """Import an example script by name, with ``examples/`` on the path."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name):
        return importlib.import_module(name)

    return load


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, and no Keras cache in the home folder."""
    monkeypatch.setattr(datasets, "_network_reachable", lambda host: False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def _image_size(path):
    with Image.open(path) as image:
        image.load()
        return image.size


@pytest.mark.slow
def test_compare_optimizers_on_real_mnist(script, mnist_npz, tmp_path, capsys):
    compare = script("compare_optimizers")
    out = tmp_path / "run"
    status = compare.main(
        [
            "--npz",
            str(mnist_npz),
            "--optimizers",
            "adam",
            "sgd",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--verbose",
            "0",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "device cpu" in printed or "device gpu" in printed
    header = r"^optimizer\s+train loss\s+test acc\s+best val epoch\s+time \[s\]$"
    assert re.search(header, printed, re.M)
    row = r"^(Adam|SGD)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)$"
    rows = re.findall(row, printed, re.M)
    assert [row[0] for row in rows] == ["Adam", "SGD"]
    accuracy = {name: float(acc) for name, _, acc, _, _ in rows}
    assert accuracy["Adam"] > 0.9 and accuracy["SGD"] > 0.8

    with open(out / "histories.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    assert [(r["optimizer"], r["epoch"]) for r in history] == [
        ("Adam", "1"),
        ("SGD", "1"),
    ]
    for row in history:
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert math.isfinite(float(row[key]))
    with open(out / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert [r["optimizer"] for r in summary] == ["Adam", "SGD"]
    assert all(math.isfinite(float(r["test_accuracy"])) for r in summary)

    for name in ("compare_mnist_train_loss.png", "compare_mnist_val_accuracy.png"):
        width, height = _image_size(out / name)
        assert width >= 600 and height >= 400


@pytest.mark.slow
def test_mnist_mlp_with_adam_reaches_95_percent_in_one_epoch(script, mnist_npz, capsys):
    mlp = script("mnist_mlp")
    status = mlp.main(
        [
            "--npz",
            str(mnist_npz),
            "--optimizer",
            "adam",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--schedule",
            "cosine",
            "--validation-fraction",
            "0",
            "--verbose",
            "0",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    accuracy = float(re.search(r"Adam: .*test accuracy ([\d.]+)", printed).group(1))
    assert accuracy >= 0.95


def test_cifar10_cnn_synthetic_smoke_run(script, capsys):
    cnn = script("cifar10_cnn")
    # XLA compilation of the CNN takes TensorFlow ~10 s on two CPU cores; the
    # jitted path is covered by the comparison test.
    jit = "--no-jit" if keras.backend.backend() == "tensorflow" else "--jit"
    status = cnn.main(
        [
            jit,
            "--synthetic",
            "--synthetic-examples",
            "64",
            "--validation-fraction",
            "0",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--width",
            "8",
            "--verbose",
            "0",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "accuracies below mean nothing" in printed
    summary = r"^Adam: final train loss [\d.]+, test accuracy [\d.]+"
    assert re.search(summary, printed, re.M)


def test_mixed_precision_synthetic_run(script, capsys):
    mlp = script("mnist_mlp")
    status = mlp.main(
        [
            "--synthetic",
            "--synthetic-examples",
            "64",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--mixed-precision",
            "--verbose",
            "0",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert re.search(r"dtype policy mixed_(b)?float16", printed)


def test_unknown_optimizer_is_reported_without_traceback(script, capsys):
    compare = script("compare_optimizers")
    status = compare.main(["--synthetic", "--optimizers", "adam,adamw2"])
    err = capsys.readouterr().err
    assert status == 2
    assert "adamw2" in err and "Nadam" in err
    assert "Traceback" not in err


def test_missing_data_is_one_message_and_exit_status_2(
    script, tmp_path, offline, capsys
):
    compare = script("compare_optimizers")
    status = compare.main(
        ["--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: no source could provide the mnist dataset")
    assert "npz: a Keras-format .npz file" in err and "--npz FILE" in err
    assert "Traceback" not in err


def test_help_promises_only_what_each_script_writes(script, capsys):
    # mnist_mlp.py writes TensorBoard logs into --out; compare_optimizers.py
    # also its plots and CSV files (test_compare_optimizers_on_real_mnist).
    for name, promised in (
        ("mnist_mlp", "folder for TensorBoard logs"),
        ("compare_optimizers", "folder for plots, CSV and TensorBoard logs"),
    ):
        with pytest.raises(SystemExit) as stop:
            script(name).parse_args(["--help"])
        assert stop.value.code == 0
        usage = " ".join(capsys.readouterr().out.split())
        assert f"--out OUT {promised}" in usage, usage
        if name == "mnist_mlp":
            assert "plots" not in usage and "CSV" not in usage


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--validation-fraction", "1.5"], r"validation_fraction=1\.5"),
        (["--batch-size", "0"], r"batch_size=0"),
        (["--epochs", "0"], r"--epochs=0"),
        (["--dataset", "svhn"], r"name='svhn'.*mnist, cifar10"),
        (["--npz", "absent.npz"], r"npz='absent\.npz'.*no such file"),
        (["--plateau", "--schedule", "cosine"], r"--plateau.*--schedule=cosine"),
    ],
)
def test_bad_flags_exit_with_status_2(script, offline, argv, pattern, capsys):
    mlp = script("mnist_mlp")
    status = mlp.main(["--epochs", "1", *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert re.search(pattern, err), err


def test_plot_trajectories_writes_pngs_and_gifs(script, tmp_path, capsys):
    trajectories = script("plot_trajectories")
    status = trajectories.main(
        [
            "--surfaces",
            "quadratic",
            "saddle",
            "--optimizers",
            "sgd,momentum,adam",
            "--steps",
            "6",
            "--out",
            str(tmp_path),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    for name in ("quadratic", "saddle"):
        width, height = _image_size(tmp_path / f"trajectory_{name}.png")
        assert width > 600 and height > 400
        with Image.open(tmp_path / f"trajectory_{name}.gif") as gif:
            assert gif.n_frames == 7
    assert _image_size(tmp_path / "trajectory_learning_rates.png")[0] > 400
    assert "quadratic: SGD (lr=0.09): 6 steps" in printed
