"""Multi-process data parallelism gives the weights of one process.

Two processes on 127.0.0.1 (`multiprocess_worker.py`) each train on their
half of the same global batch; the test process trains the same model on the
whole batch and compares. TensorFlow: `MultiWorkerMirroredStrategy` and a
custom loop calling `optimizer.apply` inside `strategy.run`. JAX:
`jax.distributed.initialize` with gloo CPU collectives and `model.fit` under
`keras.distribution.DataParallel`.

Every port is picked free on 127.0.0.1 and every address is 127.0.0.1: JAX's
coordinator and gloo listen there only; TensorFlow's gRPC servers listen on
their ports on every interface (TensorFlow fixes that bind address). Each
run is bounded by `TIMEOUT_S`, after which both process groups are killed
(as they are whatever happens); a worker also ends itself after
`worker.LIFETIME_S`, should the test process die first.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import multiprocess_worker as worker
import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
TIMEOUT_S = 120  # below worker.LIFETIME_S
TOLERANCE = 1e-5


def free_ports(count):
    """`count` distinct ports free on 127.0.0.1 (bound together, then freed)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


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


def run_processes(backend, out_dir, addresses):
    """Runs the two worker processes to the end, or kills them at the
    deadline; fails with the end of their logs unless both exit with 0."""
    processes, logs = [], []
    timed_out = False
    try:
        for process_id in range(worker.PROCESSES):
            log = open(out_dir / f"process{process_id}.log", "w")  # noqa: SIM115
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(TESTS / "multiprocess_worker.py")]
                    + [str(process_id), str(out_dir), *addresses],
                    cwd=TESTS,
                    env=child_environment(backend),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + TIMEOUT_S
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for log in logs:
            log.close()
    tails = "\n".join(
        f"--- process {i} (exit {p.returncode}):\n"
        + (out_dir / f"process{i}.log").read_text()[-3000:]
        for i, p in enumerate(processes)
    )
    assert not timed_out, f"the processes ran past {TIMEOUT_S} s:\n{tails}"
    assert [p.returncode for p in processes] == [0, 0], tails


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
def test_tensorflow_multi_worker_equals_one_process(tmp_path):
    import tensorflow as tf

    addresses = [f"127.0.0.1:{port}" for port in free_ports(worker.PROCESSES)]
    run_processes("tensorflow", tmp_path, addresses)
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
def test_jax_multi_process_equals_one_process(tmp_path):
    (port,) = free_ports(1)
    run_processes("jax", tmp_path, [f"127.0.0.1:{port}"])
    weights, refusals = compare_with_one_process(tmp_path, list(worker.OPTIMIZERS))
    assert refusals == {}

    # What the comparison catches: a process that trained on its half only.
    x, y = worker.data()
    alone = worker.train_fit(
        "Momentum", worker.local_half(x, 0), worker.local_half(y, 0)
    )
    assert max_difference(alone, weights["Momentum"]) > 1e-2
