"""`LearningRatePolicy` is enough to write a policy: a third one, written here
in a few lines as `docs/callbacks.md` describes, gets the learning-rate log,
exact resumption with `BackupAndRestore` in either callback order, and the
one-policy-per-rate rule from the base alone."""

import math

import keras
import numpy as np
import pytest
from models import Interrupt, dense_model, numpy_values, regression_data

from keras_adaptive import optimizers
from keras_adaptive.callbacks import CoolDownOnPlateau, LearningRatePolicy

EPOCHS = 6
RATE = 1.0


class HalveWhenWorse(LearningRatePolicy):
    """Halve the learning rate whenever the monitored loss rose."""

    def __init__(self, monitor="loss"):
        super().__init__({"previous": math.nan}, name="halve_when_worse")
        self.monitor = monitor

    def decide(self, epoch, monitor, value):
        if value > self.state["previous"]:
            self.multiply_learning_rate(0.5)
        self.state["previous"] = value


def train(callbacks, epochs=EPOCHS, model=None):
    """Momentum at a rate high enough for the loss to rise now and then."""
    x, y = regression_data()
    if model is None:
        model = dense_model()
        model.compile(optimizers.Momentum(learning_rate=RATE), "mse")
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        validation_data=(x[:16], y[:16]),
        callbacks=callbacks,
    )
    return model, history


@pytest.mark.parametrize("monitor", ["loss", "val_loss"])
def test_a_policy_written_on_the_base_logs_and_decides(monitor):
    model, history = train([HalveWhenWorse(monitor)])
    losses = history.history[monitor]
    rates = history.history["learning_rate"]
    expected = [RATE, RATE]  # the rates of epochs 0 and 1: nothing to compare
    for before, after in zip(losses[:-2], losses[1:-1], strict=True):
        expected.append(expected[-1] * (0.5 if after > before else 1.0))
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert np.all(np.isfinite(losses))
    assert min(rates) < RATE, "the test problem must make the policy act"


@pytest.mark.parametrize("order", ["backup_first", "policy_first"])
def test_a_policy_written_on_the_base_resumes_exactly(order, tmp_path):
    uninterrupted, _ = train([HalveWhenWorse()])

    def callbacks(*extra):
        pair = [keras.callbacks.BackupAndRestore(str(tmp_path)), HalveWhenWorse()]
        return [*(pair if order == "backup_first" else pair[::-1]), *extra]

    model = dense_model()
    model.compile(optimizers.Momentum(learning_rate=RATE), "mse")
    with pytest.raises(RuntimeError, match="interrupted"):
        train(callbacks(Interrupt(at_epoch=3)), model=model)
    resumed = dense_model(seed=99)
    resumed.compile(optimizers.Momentum(learning_rate=RATE), "mse")
    train(callbacks(), model=resumed)
    for got, want in zip(
        numpy_values(resumed.trainable_variables),
        numpy_values(uninterrupted.trainable_variables),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)


def test_a_policy_written_on_the_base_refuses_a_second_policy():
    with pytest.raises(ValueError, match="both control the learning rate"):
        train([HalveWhenWorse(), CoolDownOnPlateau(monitor="loss")], epochs=1)
