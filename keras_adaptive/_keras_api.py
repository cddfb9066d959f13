"""Every private part of Keras the package relies on, in one place.

Keras 3 offers no public way to do a few things the package must do: hook
into the step that updates all variables, save a callback's state with the
optimizer's, make the JAX trainer retrace, or write the JAX trainer's
in-flight state back before a callback reads the weights. Each such use is a
function or a hook here, named for what it does, and `tests/test_keras_api.py`
exercises each one, so that a Keras release that renames or changes one fails
there first, naming it, instead of the package misbehaving.

Optimizer members used: ``_backend_update_step``, ``_apply_weight_decay``,
``_distributed_tf_update_step`` (hooks, see `KerasOptimizer`),
``_get_variable_index``, ``_use_weight_decay``, ``_trainable_variables``,
``_variables``, ``_learning_rate``, ``_iterations``,
``_accumulated_gradients`` and, on TensorFlow, ``_distribution_strategy``;
Keras's saver walking an optimizer's attributes; ``Metric._direction``;
the ``CallbackList`` in a calling frame of a callback's hook.
Trainer members used: ``jax_state_sync`` (JAX) and
``make_train_function(force=True)``.
"""

from __future__ import annotations

import sys
from typing import Any

import keras

#: The private members of `keras.optimizers.Optimizer` (on every backend)
#: that the package calls or overrides.
OPTIMIZER_MEMBERS = (
    "_backend_update_step",
    "_apply_weight_decay",
    "_get_variable_index",
    "_use_weight_decay",
)
#: The private attributes of a built Keras optimizer that the package reads.
OPTIMIZER_ATTRIBUTES = ("_trainable_variables", "_variables", "_learning_rate")


class KerasOptimizer(keras.optimizers.Optimizer):
    """`keras.optimizers.Optimizer` with its private hooks under public names.

    Subclasses override `update_variables`, `decay_weights` and
    `distributed_update_step` and call ``super()`` for Keras's behaviour;
    only this class names Keras's private methods.
    """

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        self.update_variables(grads, trainable_variables, learning_rate)

    def update_variables(self, grads, trainable_variables, learning_rate) -> None:
        """One step's update of all variables (Keras: ``_backend_update_step``).

        On TensorFlow, Keras all-reduces the gradients over the replicas here
        and then calls `distributed_update_step`; on JAX and PyTorch it calls
        `update_step` once per variable.
        """
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def _apply_weight_decay(self, variables):
        self.decay_weights(variables)

    def decay_weights(self, variables) -> None:
        """Keras's decoupled weight decay, before the update (Keras:
        ``_apply_weight_decay``)."""
        super()._apply_weight_decay(variables)

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        self.distributed_update_step(distribution, grads_and_vars, learning_rate)

    def distributed_update_step(
        self, distribution, grads_and_vars, learning_rate
    ) -> None:
        """TensorFlow only: the per-variable updates after the all-reduce
        (Keras: ``_distributed_tf_update_step``)."""
        super()._distributed_tf_update_step(distribution, grads_and_vars, learning_rate)

    def variable_index(self, variable) -> int:
        """The position of `variable` among the variables being trained."""
        return self._get_variable_index(variable)


def learning_rate_object(optimizer: keras.optimizers.Optimizer) -> Any:
    """What the optimizer holds as its rate: a float's variable, a schedule
    or a callable (`optimizer.learning_rate` evaluates it instead)."""
    return optimizer._learning_rate


def trainable_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The variables the built optimizer trains, in its slots' order."""
    return optimizer._trainable_variables


def uses_weight_decay(optimizer: keras.optimizers.Optimizer, variable) -> bool:
    """False for variables excluded with `exclude_from_weight_decay`."""
    return optimizer._use_weight_decay(variable)


def creation_strategy(optimizer: keras.optimizers.Optimizer):
    """TensorFlow only: the `tf.distribute` strategy the optimizer was
    created under, which Keras routes every update through."""
    return optimizer._distribution_strategy


def sync_trainer_state(model: keras.Model) -> None:
    """Writes the JAX trainer's in-flight state back into the variables.

    During `fit` on JAX the variables' values live outside the variables; a
    callback that reads or assigns variables between batches syncs first, and
    the trainer re-reads them before its next step. A no-op elsewhere.
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def rebuild_train_function(model: keras.Model) -> None:
    """Makes `fit` trace its train function again, if it has one already.

    Call it after changing a Python value that the traced step reads (the
    scale of a `ScaledLearningRate`): the compiled step holds it as a
    constant. Keras's ``make_train_function(force=True)`` builds a new
    function, but on JAX that alone is not enough: ``jax.jit`` caches the
    trace of the bound method ``model.train_step``, and bound methods of the
    same model compare equal, so while the old train function is still
    referenced anywhere the new one reuses its trace, old constants included.
    On JAX the new function is therefore built from a fresh wrapper of
    ``train_step``, which no cache has seen. (Under ``keras.config``'s nnx
    mode Keras jits a fresh function each time already.)
    """
    if getattr(model, "train_function", None) is None:
        return
    if keras.backend.backend() != "jax":
        model.make_train_function(force=True)
        return
    train_step = model.train_step

    def fresh_train_step(state, data):
        return train_step(state, data)

    model.train_step = fresh_train_step
    try:
        model.make_train_function(force=True)
    finally:
        del model.train_step


def save_with_optimizer(
    optimizer: keras.optimizers.Optimizer, name: str, saveable: Any
) -> None:
    """Saves and loads `saveable` with `optimizer`'s variables.

    Keras's weight saving (``save_weights``/``load_weights``, so
    ``BackupAndRestore``, and ``model.save``) walks the attributes of every
    object it saves and calls ``save_own_variables``/``load_own_variables``
    of each Keras object (a ``keras.layers.Layer``) it finds there. An object
    set as an optimizer attribute that is not a ``keras.Variable`` is not
    tracked as an optimizer variable, so the optimizer's variable count, on
    which reloading depends, does not change. ``load_model`` builds a new
    optimizer without the attribute and ignores what was saved under it.
    """
    setattr(optimizer, f"_keras_adaptive_{name}", saveable)


def step_bookkeeping(optimizer: keras.optimizers.Optimizer) -> list[keras.Variable]:
    """The optimizer variables that track its steps, not the trained state:
    Keras's iteration counter and, with ``gradient_accumulation_steps``, the
    gradients accumulated towards the next update (``optimizer.iterations``
    is then a tensor computed from the counter, not the counter)."""
    accumulators = getattr(optimizer, "_accumulated_gradients", None) or []
    return [optimizer._iterations] + [v for v in accumulators if v is not None]


def metric_direction(model: keras.Model, monitor: str) -> str | None:
    """``"min"`` or ``"max"`` for the epoch-log entry `monitor`, decided as
    Keras's ``MonitorCallback`` (``EarlyStopping``) decides it: ``loss`` is
    minimised, any other name takes the direction of the compiled metric of
    that name (Keras's private ``Metric._direction``, ``"up"`` or
    ``"down"``); ``None`` when that is unknown."""
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    metrics = []
    for metric in getattr(model, "metrics", []):
        metrics.extend(getattr(metric, "metrics", None) or [metric])
    for metric in metrics:
        if metric.name == name and hasattr(metric, "_direction"):
            return "max" if metric._direction == "up" else "min"
    return None


#: How far up `fit_callbacks` looks for the `CallbackList`.
_FRAMES_TO_SEARCH = 8


def fit_callbacks(callback: keras.callbacks.Callback) -> list | None:
    """The callbacks of the `fit` whose hook `callback` is running, or ``None``.

    Keras passes no list of its siblings to a callback, but its
    ``CallbackList`` calls each callback's hook from its own method of the
    same name: the list is the ``self`` of a calling frame. ``None`` when the
    hook was called otherwise (directly, in a test).
    """
    frame = sys._getframe(1)
    for _ in range(_FRAMES_TO_SEARCH):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(
            c is callback for c in owner.callbacks
        ):
            return list(owner.callbacks)
        frame = frame.f_back
    return None


#: The slot lists of Keras's own optimizers that
#: `keras_adaptive.curvature` reads for their diagonal preconditioners.
KERAS_SLOT_ATTRIBUTES = {
    "Adam": ("_velocities", "_velocity_hats"),
    "RMSprop": ("_velocities", "_average_gradients"),
    "Adagrad": ("_accumulators",),
}


def optimizer_slot(optimizer: keras.optimizers.Optimizer, attribute: str, variable):
    """The slot variable of `variable` in the built optimizer's slot list
    `attribute` (for Keras's Adam, ``"_velocities"``)."""
    return getattr(optimizer, attribute)[optimizer._get_variable_index(variable)]
