"""Multi-process data parallelism gives the weights of one process.

Two processes (`multiprocess_worker.py`) each train on their half of the
same global batch; the test process trains the same model on the whole
batch and compares. TensorFlow: `MultiWorkerMirroredStrategy` and a custom
loop calling `optimizer.apply` inside `strategy.run`. JAX:
`jax.distributed.initialize` with gloo CPU collectives and `model.fit` under
`keras.distribution.DataParallel`.

The workers run in a network namespace of their own whose only interface
is loopback (`multiprocess_launcher.py` under `unshare`), since TensorFlow's
gRPC servers listen on every interface whatever address they are given, and
gloo on the address of the host name: nothing they open can be reached from
outside the namespace. Where no such namespace can be made, the tests skip.
Each run is bounded by `TIMEOUT_S`, after which the launcher kills the
workers; the launcher's process group, workers included, is killed whatever
happens, and a worker also ends itself after `worker.LIFETIME_S`, should
both the test and the launcher die first.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import multiprocess_launcher as launcher
import multiprocess_worker as worker
import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
LAUNCHER = TESTS / "multiprocess_launcher.py"
TIMEOUT_S = 120  # below worker.LIFETIME_S
#: Seconds the launcher is given, after `TIMEOUT_S`, to kill its workers.
KILL_MARGIN_S = 10
TOLERANCE = 1e-5


def child_environment(backend):
    """CPU only, one device per process, the package under test importable."""
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "CUDA_VISIBLE_DEVICES": "",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    env.pop("TF_CONFIG", None)
    return env


@pytest.fixture
def loopback_namespace():
    """The command prefix that runs a command in new user, network and UTS
    namespaces, or a skip naming what this machine lacks."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux's `unshare` to isolate the workers' network")
    command = [unshare, "--user", "--map-root-user", "--net", "--uts"]
    check = subprocess.run(
        [*command, sys.executable, str(LAUNCHER), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    refused = check.returncode == launcher.NOT_PERMITTED or (
        check.returncode != 0 and check.stderr.startswith("unshare:")
    )
    if refused:
        pytest.skip(
            "needs a user and network namespace to isolate the workers' network; "
            f"`unshare` here: {check.stderr.strip()}"
        )
    assert check.returncode == 0, check.stderr
    return command


def run_processes(backend, out_dir, namespace, ports):
    """Runs the launcher in `namespace` (a command prefix) to its end, or
    kills its process group after `TIMEOUT_S` and a margin; the workers get
    `ports` free ports. Fails with the end of the logs unless every worker
    exited with 0."""
    timed_out = False
    with open(out_dir / "launcher.log", "w") as log:
        process = subprocess.Popen(
            [*namespace, sys.executable, str(LAUNCHER), str(out_dir)]
            + [str(TIMEOUT_S), str(worker.PROCESSES), str(ports)],
            cwd=TESTS,
            env=child_environment(backend),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=TIMEOUT_S + KILL_MARGIN_S)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    logs = ["launcher.log"] + [f"process{i}.log" for i in range(worker.PROCESSES)]
    tails = "\n".join(
        f"--- {name}:\n" + (out_dir / name).read_text()[-3000:]
        for name in logs
        if (out_dir / name).exists()
    )
    assert not timed_out, (
        f"the launcher ran past {TIMEOUT_S + KILL_MARGIN_S} s:\n{tails}"
    )
    assert process.returncode == 0, tails


def results(out_dir, process_id):
    """The weights (by optimizer) and refusals one worker wrote."""
    saved = np.load(out_dir / f"process{process_id}.npz")
    weights = {}
    for key in saved.files:
        name, index = key.split("/")
        weights.setdefault(name, {})[int(index)] = saved[key]
    weights = {
        name: [by_index[i] for i in sorted(by_index)]
        for name, by_index in weights.items()
    }
    refusals = json.loads((out_dir / f"process{process_id}-refusals.json").read_text())
    return weights, refusals


def max_difference(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def compare_with_one_process(out_dir, trained):
    """Both processes hold the same weights, within `TOLERANCE` of one
    process on the whole batch, for every optimizer in `trained` (and no
    other); returns the first process's weights and refusals."""
    (first, first_refusals), (second, second_refusals) = (
        results(out_dir, i) for i in range(worker.PROCESSES)
    )
    assert sorted(first) == sorted(second) == sorted(trained)
    assert first_refusals == second_refusals
    initial = worker.final_weights(worker.make_model())
    differences = {}
    for name in trained:
        for a, b in zip(first[name], second[name], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: processes differ")
        reference = worker.train_one_process(name)
        # Not vacuous: training moves every weight tensor.
        moved = [np.max(np.abs(w - r)) for w, r in zip(initial, reference, strict=True)]
        assert min(moved) > 1e-2, f"{name} left a weight tensor unchanged: {moved}"
        differences[name] = max_difference(first[name], reference)
    print(f"max abs difference from one process: {differences}")
    assert all(d <= TOLERANCE for d in differences.values()), differences
    return first, first_refusals


@pytest.mark.tensorflow_only
def test_tensorflow_multi_worker_equals_one_process(tmp_path, loopback_namespace):
    import tensorflow as tf

    run_processes("tensorflow", tmp_path, loopback_namespace, ports=worker.PROCESSES)
    trained = ["Momentum", "Adam", "Rprop"]
    weights, refusals = compare_with_one_process(tmp_path, trained)

    # LBFGS's curvature memory would be updated per replica: refused.
    assert list(refusals) == ["LBFGS"]
    message = refusals["LBFGS"]
    assert "LBFGS cannot run under a tf.distribute strategy with 2" in message
    assert "Train it on one device" in message

    # What the comparison catches: a worker that trained on its half without
    # the all-reduce, and l2 added on every worker before the all-reduce
    # (as if doubled).
    x, y = worker.data()
    alone = worker.train_tensorflow(
        "Momentum",
        worker.local_half(x, 0),
        worker.local_half(y, 0),
        tf.distribute.get_strategy(),
    )
    l2 = worker.OPTIMIZERS["Momentum"][1]["l2"]
    doubled_l2 = worker.train_one_process("Momentum", l2=2 * l2)
    assert max_difference(alone, weights["Momentum"]) > 1e-2
    assert max_difference(doubled_l2, weights["Momentum"]) > 1e-2


@pytest.mark.jax_only
def test_jax_multi_process_equals_one_process(tmp_path, loopback_namespace):
    run_processes("jax", tmp_path, loopback_namespace, ports=1)
    weights, refusals = compare_with_one_process(tmp_path, list(worker.OPTIMIZERS))
    assert refusals == {}

    # What the comparison catches: a process that trained on its half only.
    x, y = worker.data()
    alone = worker.train_fit(
        "Momentum", worker.local_half(x, 0), worker.local_half(y, 0)
    )
    assert max_difference(alone, weights["Momentum"]) > 1e-2
