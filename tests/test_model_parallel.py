"""Optimizer state under `keras.distribution.ModelParallel` (JAX, 2 devices).

Every slot is created from its weight's reference, so it takes the weight's
layout: with the kernels sharded over two devices, each slot of a kernel is
sharded the same way and the optimizer's per-weight state per device is
about half of a replicated copy. Training gives the weights of one device.
`LBFGS`, whose memory holds whole-model vectors, refuses the distribution
with a message naming it. The run happens in a fresh process
(`tests/model_parallel_case.py`) that starts JAX with two CPU devices.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from optimizer_table import ROWS, row_id

pytestmark = pytest.mark.jax_only

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model_parallel")
    rows, out = folder / "rows.json", folder / "results.json"
    rows.write_text(
        json.dumps(
            [
                {
                    "id": row.id,
                    "module": row.cls.__module__,
                    "name": row.cls.__qualname__,
                    "kwargs": row.kwargs,
                }
                for row in ROWS
            ]
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    completed = subprocess.run(
        [sys.executable, str(TESTS / "model_parallel_case.py"), str(rows), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads(out.read_text())
    for name, result in results.items():
        if "refused" in result:
            print(f"{name}: refused")
            continue
        print(
            f"{name}: optimizer state per device {result['state_bytes_per_device']} "
            f"bytes, {result['state_bytes_replicated']} replicated; weights "
            f"within {result['max_difference']:.2e} of one device"
        )
    return results


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_slots_are_sharded_like_their_weights_and_training_is_exact(row, results):
    result = results[row.id]
    if not row.model_parallel:
        assert "ModelParallel" in result["refused"]
        assert "DataParallel" in result["refused"]
        return
    assert "P(None, 'model')" in result["weights_sharded"]
    assert result["max_difference"] <= 1e-5
    for slot in result["slots"]:
        assert slot["slot_spec"] == slot["weight_spec"], slot
    if row.state == "none":
        assert result["slots"] == []
        return
    assert result["slots"], "an optimizer with state has slots"
    per_device = result["per_weight_bytes_per_device"]
    ratio = per_device / result["per_weight_bytes_replicated"]
    # Kernels (2 x 1024 parameters) halved, biases (80) replicated.
    assert ratio == pytest.approx((1024 + 80) / (2048 + 80))
