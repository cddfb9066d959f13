"""Backend-specific parts of the optimizers, kept out of the shared base.

TensorFlow: eager building, densifying `tf.IndexedSlices`, the checks and
the per-replica decisions of `tf.distribute`; PyTorch: converting NumPy
gradients and the rounding of decoupled weight decay; JAX and PyTorch: the
select-based skip of a non-finite step; JAX and TensorFlow on CPU: the
order of the per-variable updates. Keras's private members are reached only through
`keras_adaptive._keras_api`.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_adaptive import _keras_api


def is_tensorflow() -> bool:
    return keras.backend.backend() == "tensorflow"


def is_torch() -> bool:
    return keras.backend.backend() == "torch"


#: The number of parameters from which `sequences_updates` orders a step.
SEQUENCE_MIN_PARAMETERS = 2**22


def sequences_updates(variables) -> bool:
    """Whether the update of each variable is ordered after the previous one.

    True on CPU, on JAX without a `keras.distribution` and on TensorFlow
    without a `tf.distribute` strategy, for a step over at least
    `SEQUENCE_MIN_PARAMETERS` parameters. XLA's CPU backend compiles an
    element-wise update into one loop per array written, each loop reading
    the arrays it needs, and schedules the loops of one kind for all
    variables in a row (every first moment, then every second moment, then
    every weight). Once one kind of array over all variables no longer fits
    in the processor's cache, each re-read of a gradient or of a freshly
    written slot comes from memory; ordered variable by variable, it comes
    from the cache. At 10 million parameters in 4 MB tensors this makes
    `Adam`'s step 1.15 (JAX) and 1.22 (TensorFlow) times faster than in
    Keras's order, `Nadam`'s 1.29 and 1.37; at 3 million parameters the
    arrays stay in a 32 MB cache in either order, and the order only takes
    from XLA the freedom to run independent loops side by side, hence the
    threshold (`benchmarks/README.md`). On GPUs XLA fuses the loops of a
    variable itself and may batch small variables together, which an order
    would prevent; under a distribution the dependency could cross devices.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if keras.distribution.distribution() or jax.default_backend() != "cpu":
            return False
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() or tf.config.list_logical_devices("GPU"):
            return False
    else:
        return False
    size = sum(math.prod(variable.shape) for variable in variables)
    return size >= SEQUENCE_MIN_PARAMETERS


def sequence_token(values):
    """A scalar -0.0 that depends on one element of each array of `values`.

    Adding it to the next variable's gradient changes no value (x + (-0.0)
    is x for every x, -0.0, infinities and NaN included) but makes every
    loop reading that gradient wait for the loops that wrote `values`.
    Computed from one element per array (never a reduction over it), it
    costs a few scalar operations.
    """
    # -0.0 made by an operation: TensorFlow caches the tensors of Python
    # numbers by value, and -0.0 == 0.0 would fetch a cached +0.0.
    negative_zero = ops.negative(ops.zeros((), "float32"))
    token = negative_zero
    for value in values:
        if math.prod(value.shape) == 0:
            continue
        element = ops.cast(ops.reshape(value, (-1,))[0], "float32")
        # -0.0 * |element| is -0.0 for every finite element; the select
        # keeps it -0.0 for an infinite or NaN one.
        token = token + ops.where(
            ops.isfinite(element), negative_zero * ops.abs(element), negative_zero
        )
    return token


def prepare_apply(optimizer, grads, trainable_variables):
    """TensorFlow: checks the strategy, builds eagerly, densifies sparse grads.

    Elsewhere converts gradients given as NumPy arrays to tensors (Keras's
    PyTorch optimizer cannot combine them with its tensors).
    """
    if not is_tensorflow():
        grads = [g if g is None else ops.convert_to_tensor(g) for g in grads]
        return grads, trainable_variables
    check_strategy(optimizer)
    if trainable_variables is not None:
        trainable_variables = list(trainable_variables)
        if not optimizer.built:
            build_outside_trace(optimizer, trainable_variables)
    variables = (
        _keras_api.trainable_variables(optimizer)
        if trainable_variables is None
        else trainable_variables
    )
    if variables:
        grads = [densify(g, v) for g, v in zip(grads, variables, strict=True)]
    return grads, trainable_variables


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


def densify(gradient, variable):
    """Sums a `tf.IndexedSlices` gradient into the dense gradient it stands for."""
    import tensorflow as tf

    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    return tf.math.unsorted_segment_sum(
        gradient.values, gradient.indices, num_segments=variable.shape[0]
    )


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

    if sequences_updates([variable for _, variable in grads_and_vars]):
        optimizer._update_in_order(grads_and_vars, update_one)
        return
    for gradient, variable in grads_and_vars:
        update_one(gradient, variable)
