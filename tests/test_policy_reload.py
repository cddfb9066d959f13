"""A policy never changes an optimizer's variables: the reload matrix.

For this package's Adam, Momentum and Rprop and Keras's Adam and SGD, with a
float rate, `ExponentialDecay`, `CosineDecay` and a callable, under
`CoolDownOnPlateau` and `BoldDriver`, each forced to change the rate after
the second epoch:

* `keras.models.load_model` of the model saved after the change restores every
  optimizer variable (Keras says nothing: no warning, no log record, no
  printed line), and one more epoch of the loaded model equals one more epoch
  of the model that was saved, bit for bit;
* a run interrupted after the change and resumed with `BackupAndRestore`
  (listed before the policy in half of the cases, after it in the other half)
  ends bit-identical to the run never interrupted, with the same policy state.

A tiny model, two batches an epoch and one run that serves as both the run
never interrupted and the one interrupted (its backup directory is copied as
an interruption would leave it) keep the 40 cases fast. On TensorFlow the
train step is a graph without XLA here (a schedule's scale is a graph constant
either way; the end-to-end tests of each policy run XLA).
"""

import contextlib
import io
import itertools
import logging
import shutil
import warnings

import keras
import numpy as np
import pytest
from models import JIT, Inject, numpy_values, scripted_policies

from keras_adaptive import optimizers as ours

RATE = 0.01


@keras.saving.register_keras_serializable(package="keras_adaptive_tests")
def constant_rate():
    """A callable learning rate that `load_model` can rebuild."""
    return RATE


RATES = {
    "float": lambda: RATE,
    "exponential": lambda: keras.optimizers.schedules.ExponentialDecay(RATE, 3, 0.8),
    "cosine": lambda: keras.optimizers.schedules.CosineDecay(RATE, 20),
    "callable": lambda: constant_rate,
}
OPTIMIZERS = {
    "ours.Adam": ours.Adam,
    "ours.Momentum": ours.Momentum,
    "ours.Rprop": ours.Rprop,
    "keras.Adam": keras.optimizers.Adam,
    "keras.SGD": keras.optimizers.SGD,
}
POLICIES = scripted_policies()
CASES = [
    (optimizer, rate, policy, ("backup_first", "policy_first")[i % 2])
    for i, (optimizer, rate, policy) in enumerate(
        itertools.product(OPTIMIZERS, RATES, POLICIES)
    )
]

X = np.random.default_rng(5).standard_normal((4, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3).astype("float32")
EPOCHS = 3


class CopyBackup(keras.callbacks.Callback):
    """Copies the backup as it stands after epoch `epoch`: what a run
    interrupted when the next epoch begins leaves behind."""

    def __init__(self, source, target, epoch):
        super().__init__()
        self.source, self.target, self.epoch = source, target, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            shutil.copytree(self.source, self.target)


def compiled(optimizer, rate):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    jit_compile = JIT and keras.backend.backend() == "jax"
    model.compile(OPTIMIZERS[optimizer](RATES[rate]()), "mse", jit_compile=jit_compile)
    model.optimizer.build(model.trainable_variables)
    return model


def fit(model, epochs, callbacks=()):
    return model.fit(
        X,
        Y,
        batch_size=2,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    )


def state(model):
    """Every value training changes: weights and optimizer variables."""
    return numpy_values(model.weights) + numpy_values(model.optimizer.variables)


def assert_same(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@contextlib.contextmanager
def everything_said():
    """Records every warning, every log record (any logger, any level) and
    everything printed, filtering nothing."""
    said = {"warnings": [], "logs": [], "printed": io.StringIO()}

    class Keep(logging.Handler):
        def emit(self, record):
            said["logs"].append(record.getMessage())

    root = logging.getLogger()
    handler, level = Keep(logging.NOTSET), root.level
    root.addHandler(handler)
    root.setLevel(logging.NOTSET)
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(said["printed"]),
        ):
            warnings.simplefilter("always")
            yield said
        said["warnings"] = [str(w.message) for w in caught]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize(
    ("optimizer", "rate", "policy", "order"),
    CASES,
    ids=["-".join(case) for case in CASES],
)
def test_reload_and_resume_after_a_policy_changed_the_rate(
    optimizer, rate, policy, order, tmp_path
):
    make_policy, losses = POLICIES[policy]

    def callbacks(policy_, backup, *extra):
        pair = [policy_, keras.callbacks.BackupAndRestore(str(backup)), *extra]
        return pair if order == "policy_first" else [*pair[1:], pair[0]]

    # The run never interrupted, saved after the policy's changes; it leaves
    # the backup of an interruption at epoch 2 (after the change) in "resume".
    uninterrupted = compiled(optimizer, rate)
    plain_count = len(uninterrupted.optimizer.variables)
    full_policy = make_policy()
    backup, resume = tmp_path / "backup", tmp_path / "resume"
    copy = CopyBackup(backup, resume, epoch=1)
    fit(uninterrupted, EPOCHS, [Inject(losses), *callbacks(full_policy, backup, copy)])
    scale = 0.5 * (1.05 if policy == "bold_driver" else 1.0)
    rate_object = uninterrupted.optimizer._learning_rate
    if rate == "float":
        assert float(rate_object.value) == pytest.approx(RATE * scale, rel=1e-6)
    else:
        assert rate_object.scale == pytest.approx(scale, rel=1e-6)
    assert len(uninterrupted.optimizer.variables) == plain_count
    at_save = state(uninterrupted)
    path = tmp_path / "model.keras"
    uninterrupted.save(path)

    # load_model restores every variable, silently, and continues exactly.
    with everything_said() as said:
        loaded = keras.models.load_model(path)
    assert said["warnings"] == [] and said["logs"] == []
    assert said["printed"].getvalue() == ""
    assert_same(state(loaded), at_save)
    fit(uninterrupted, 1)
    fit(loaded, 1)
    assert_same(state(loaded), state(uninterrupted))

    # A new process resumes from the interrupted run's backup.
    resumed, resumed_policy = compiled(optimizer, rate), make_policy()
    fit(resumed, EPOCHS, [Inject(losses), *callbacks(resumed_policy, resume)])
    assert_same(state(resumed), at_save)
    assert resumed_policy.state == full_policy.state
