"""Small deterministic models and data shared by the generic optimizer tests."""

import keras
import numpy as np

SAMPLES = 64


def regression_data(samples=SAMPLES, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 5)).astype("float32")
    y = (x @ rng.standard_normal((5, 3)) + 0.1).astype("float32")
    return x, y


def dense_model(seed=7):
    """5 -> 8 (tanh) -> 3, with weights fixed by `seed`."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(3),
        ]
    )


def batch_size(row):
    """Full-batch methods see the whole data set at every step."""
    return SAMPLES if row.full_batch else 16


def numpy_values(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


class Interrupt(keras.callbacks.Callback):
    """Stops `fit` with an exception when epoch `at_epoch` (0-based) begins,
    as a crash would, for the tests that resume with `BackupAndRestore`."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


# Trace counting for the tests that train with a compiled step.

#: Compile the train step, except on PyTorch, whose jit_compile is
#: torch.compile (it recompiles and falls back to eager): the trace count is
#: checked where the step is compiled.
JIT = keras.backend.backend() != "torch"
#: One entry per trace of `CountingSequential.train_step`; clear it first.
TRACES = []


class CountingSequential(keras.Sequential):
    """Counts how often the train step is traced (Python runs only then)."""

    def train_step(self, *args, **kwargs):
        TRACES.append(1)
        return super().train_step(*args, **kwargs)


def assert_traced_once():
    if JIT:
        assert len(TRACES) == 1


def optimizer_of_kind(name, kind, learning_rate):
    """The optimizer `name` of this package (kind "ours"), of Keras ("keras"),
    or Keras's under `LossScaleOptimizer` ("loss_scale")."""
    from keras_adaptive import optimizers

    if kind == "ours":
        return getattr(optimizers, name)(learning_rate)
    optimizer = getattr(keras.optimizers, name)(learning_rate)
    if kind == "loss_scale":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_optimizer(model):
    """Builds `model`'s optimizer before `fit`. On TensorFlow, Keras builds an
    unbuilt optimizer inside the first trace of the train function, and
    `tf.function` then traces a second time because variables were created;
    built first, every trace counted comes from `fit` itself."""
    model.optimizer.build(model.trainable_variables)


def assert_traces(count):
    """Where the step is compiled: `train_step` was traced `count` times
    (once, plus once per change of a schedule's scale by a policy)."""
    if JIT:
        assert len(TRACES) == count


class Inject(keras.callbacks.Callback):
    """Replaces the training loss the policies read, at each epoch's last
    batch, by `losses[epoch]` (a scripted decision on real training)."""

    def __init__(self, losses):
        super().__init__()
        self.losses = losses
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.params["steps"]:
            logs["loss"] = self.losses[self.epoch]


def scripted_policies():
    """Every learning-rate policy of the package, each with the training
    losses (for `Inject`, one per epoch) that make it change the rate after
    epoch 1, the second: name -> (policy factory, losses). The reload and
    resume tests run each; a new policy adds its entry here."""
    from keras_adaptive.callbacks import BoldDriver, CoolDownOnPlateau

    return {
        # Epoch 1 does not improve on epoch 0: the rate is halved.
        "cooldown": (
            lambda: CoolDownOnPlateau(monitor="loss", patience=1, factor=0.5),
            [1.0, 1.0, 0.5],
        ),
        # Epoch 1 raises the loss: the rate is halved and the epoch undone;
        # epoch 2 is accepted (x1.05).
        "bold_driver": (lambda: BoldDriver(), [1.0, 2.0, 0.5]),
    }
