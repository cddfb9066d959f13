"""Every private part of Keras the package relies on, in one place.

Keras 3 offers no public way to do a few things the package must do: hook
into the step that updates all variables, change where a learning-rate
variable sits among the optimizer's variables, or write the JAX trainer's
in-flight state back before a callback reads the weights. Each such use is a
function or a hook here, named for what it does, and `tests/test_keras_api.py`
exercises each one, so that a Keras release that renames or changes one fails
there first, naming it, instead of the package misbehaving.

Optimizer members used: ``_backend_update_step``, ``_apply_weight_decay``,
``_distributed_tf_update_step`` (hooks, see `KerasOptimizer`),
``_get_variable_index``, ``_use_weight_decay``, ``_trainable_variables``,
``_variables``, ``_learning_rate`` and, on TensorFlow,
``_distribution_strategy``. Trainer members used: ``jax_state_sync`` (JAX) and
``make_train_function(force=True)``.
"""

from __future__ import annotations

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


def move_last_variable(optimizer: keras.optimizers.Optimizer, index: int) -> None:
    """Moves the optimizer's most recently added variable to position `index`
    of `optimizer.variables` (the order in which they are saved)."""
    variables = optimizer._variables
    variables.insert(index, variables.pop())


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
    """Makes `fit` trace its train function again (the optimizer's variables
    changed), if it has one already."""
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)


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
