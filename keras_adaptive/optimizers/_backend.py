"""Backend-specific parts of the optimizers, kept out of the shared base.

TensorFlow: eager building, the checks and the per-replica decisions of
`tf.distribute`; PyTorch: converting NumPy gradients and the rounding of
decoupled weight decay; JAX and PyTorch: the select-based skip of a
non-finite step. Keras's private members are reached only through
`keras_adaptive._keras_api`.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_adaptive import _keras_api
from keras_adaptive.optimizers import sparse, update_order


def is_tensorflow() -> bool:
    return keras.backend.backend() == "tensorflow"


def is_torch() -> bool:
    return keras.backend.backend() == "torch"


def prepare_apply(optimizer, grads, trainable_variables):
    """TensorFlow: checks the strategy and builds eagerly.

    Elsewhere converts gradients given as NumPy arrays to tensors (Keras's
    PyTorch optimizer cannot combine them with its tensors).
    """
    if not is_tensorflow():
        grads = [
            g if g is None or sparse.is_sparse(g) else ops.convert_to_tensor(g)
            for g in grads
        ]
        return grads, trainable_variables
    check_strategy(optimizer)
    if trainable_variables is not None:
        trainable_variables = list(trainable_variables)
        if not optimizer.built:
            build_outside_trace(optimizer, trainable_variables)
    return list(grads), trainable_variables


def torch_apply_weight_decay(optimizer, variables) -> None:
    """Decoupled weight decay as Keras's base class computes it, w - w wd eta.

    Keras's PyTorch optimizer multiplies by the float32 factor 1 - wd eta
    instead, whose rounding error repeats every step (a relative drift of
    about 1e-7 per step, 3e-6 after 30 steps of wd eta = 5e-4): the package
    keeps the other backends' rounding, so that all three agree.
    """
    for variable in variables:
        if _keras_api.uses_weight_decay(optimizer, variable):
            rate = ops.cast(optimizer.learning_rate, variable.dtype)
            decay = ops.cast(optimizer.weight_decay, variable.dtype)
            variable.assign(variable - variable * decay * rate)


def check_strategy(optimizer) -> None:
    """Raises if `optimizer` is used under another `tf.distribute` strategy.

    Keras's TensorFlow optimizer records the strategy in effect when it was
    created and routes every update through it. Used under a different one
    (typically: created outside `strategy.scope()`, the model inside), the
    updates would run once per replica on unmirrored state.
    """
    import tensorflow as tf

    created = _keras_api.creation_strategy(optimizer)
    current = tf.distribute.get_strategy()
    if current is not created:
        raise ValueError(
            f"{type(optimizer).__name__} was created under "
            f"{type(created).__name__} but is applied under "
            f"{type(current).__name__}. Create the optimizer inside the same "
            "`strategy.scope()` as the model (for example pass it to "
            "`model.compile` inside the scope), so that its state is mirrored "
            "like the model's weights."
        )


def replicas_in_sync(optimizer) -> int:
    """Replicas of the `tf.distribute` strategy `optimizer` runs under (1 elsewhere)."""
    if not is_tensorflow():
        return 1
    return _keras_api.creation_strategy(optimizer).num_replicas_in_sync


def build_outside_trace(optimizer, variables) -> None:
    """Creates the optimizer's variables eagerly, even inside a `tf.function`.

    Keras's TensorFlow trainer builds the optimizer during the first trace of
    the train function; `tf.function` then traces the function a second time,
    because variables were created in the first. Building under
    `tf.init_scope()`, with `tf.Variable`'s `experimental_enable_variable_lifting`
    turned off so that `tf.function` does not capture the new variables,
    creates ordinary eager variables: the train function is traced once.
    """
    import tensorflow as tf

    def eager_variable(next_creator, **kwargs):
        kwargs["experimental_enable_variable_lifting"] = False
        return next_creator(**kwargs)

    with (
        tf.init_scope(),
        tf.variable_creator_scope(eager_variable),
        keras.name_scope(optimizer.name, caller=optimizer),
    ):
        optimizer.build(variables)


def all_finite(optimizer, grads):
    """A boolean scalar: every element of every gradient is finite.

    Under a multi-replica `tf.distribute` strategy (called in replica
    context) the count of non-finite elements is summed over the replicas,
    so that every replica takes the same decision about the all-reduced
    gradient.
    """
    bad = ops.zeros((), "float32")
    for gradient in grads:
        if gradient is not None:
            flags = ops.logical_not(ops.isfinite(gradient))
            bad = bad + ops.sum(ops.cast(flags, "float32"))
    if replicas_in_sync(optimizer) > 1:
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        bad = context.all_reduce(tf.distribute.ReduceOp.SUM, bad)
    return ops.equal(bad, 0.0)


def apply_if_finite(optimizer, apply, grads, trainable_variables, counter) -> None:
    """Runs `apply(grads, trainable_variables)` only if every gradient is finite.

    A skipped step leaves every variable the step would write unchanged (the
    weights, every optimizer variable including `iterations`, EMA and
    accumulators) and adds 1 to `counter`. It is decided inside the compiled
    step, without host round trips: on TensorFlow by a `tf.cond` around the
    update (taken in cross-replica context under a multi-replica strategy,
    as Keras's `LossScaleOptimizer` does); on JAX and PyTorch the step is
    computed and then selected away element by element
    (`where(finite, new, old)`), as Keras's JAX optimizer handles gradient
    accumulation.
    """
    finite = all_finite(optimizer, grads)
    if is_tensorflow():
        _tensorflow_apply_if_finite(
            optimizer, apply, grads, trainable_variables, finite
        )
    else:
        variables = (
            _keras_api.trainable_variables(optimizer)
            if trainable_variables is None
            else list(trainable_variables)
        )
        guarded = [v for v in optimizer.variables if v is not counter] + variables
        # Copies: PyTorch variables are updated in place.
        before = [ops.copy(v.value) for v in guarded]
        apply(grads, trainable_variables)
        for variable, old in zip(guarded, before, strict=True):
            variable.assign(ops.where(finite, variable.value, old))
    counter.assign_add(ops.cast(ops.logical_not(finite), counter.dtype))


def _tensorflow_apply_if_finite(optimizer, apply, grads, trainable_variables, finite):
    import tensorflow as tf

    def update():
        apply(grads, trainable_variables)
        return tf.constant(True)

    def skip():
        return tf.constant(False)

    if replicas_in_sync(optimizer) == 1:
        tf.cond(finite, update, skip)
        return

    def cross_replica(distribution, grads, trainable_variables, finite):
        # `finite` was all-reduced: every replica holds the same value.
        decision = distribution.experimental_local_results(finite)[0]

        def update_replicas():
            distribution.extended.call_for_each_replica(
                apply, args=(grads, trainable_variables)
            )
            return tf.constant(True)

        tf.cond(decision, update_replicas, skip)

    tf.distribute.get_replica_context().merge_call(
        cross_replica, args=(grads, trainable_variables, finite)
    )


def distributed_update_step(optimizer, distribution, grads_and_vars, learning_rate):
    """TensorFlow's per-variable update, after the gradients were all-reduced.

    Replaces Keras's distributed update step so that the coupled L2
    term is added once, to the summed gradient, inside each replica's copy of
    the update: added before the all-reduce it would count once per replica.
    """

    def update(variable, gradient, learning_rate):
        gradient = optimizer.coupled_gradients([gradient], [variable])[0]
        return optimizer.update_step(gradient, variable, learning_rate)

    def update_one(gradient, variable):
        distribution.extended.update(
            variable, update, args=(gradient, learning_rate), group=False
        )

    update_order.update(optimizer, grads_and_vars, update_one)
