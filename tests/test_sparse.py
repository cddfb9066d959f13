"""Sparse gradients: `tf.IndexedSlices` (TensorFlow) and JAX `BCOO`.

Every optimizer gives the result of the dense gradient a sparse one stands
for, duplicate indices included: bit for bit, or, for a step linear in the
gradient that scatters each duplicate's step (the rows with
``sparse_bitwise=False``), up to one rounding per duplicate. Where the
update of a weight row is zero wherever its gradient is (the rows with
`sparse_rows` in the table), the weight update is a scatter into the
gradient's rows, as Keras's own optimizers do it: on TensorFlow the
optimizer's `assign*` receives a `tf.IndexedSlices` for the weight (the
check of Keras's own sparse test); on JAX the new weight is a
``scatter-add`` of the old one (read in the step's jaxpr).

Keras's built-in Adagrad squares each duplicate slice separately, so its
sparse and dense results differ; the last test shows it.
"""

from unittest import mock

import keras
import numpy as np
import pytest
from optimizer_table import ROWS, row_id

from keras_adaptive import optimizers

pytestmark = pytest.mark.sparse

BACKEND = keras.backend.backend()
ROWS_IN_TABLE, WIDTH = 12, 4
# Every step touches some rows twice and some not at all.
INDICES = [[1, 3, 3, 7, 0], [3, 1, 1, 9, 11], [5, 5, 2, 2, 8], [0, 0, 11, 4, 4]]


def sparse_gradient(values, indices, shape=(ROWS_IN_TABLE, WIDTH)):
    """The backend's sparse gradient with `values` in rows `indices`."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.IndexedSlices(
            tf.constant(values),
            tf.constant(indices, dtype="int64"),
            dense_shape=tf.constant(shape, dtype="int64"),
        )
    from jax.experimental import sparse as jax_sparse

    return jax_sparse.BCOO(
        (values, np.asarray(indices, "int32")[:, None]), shape=tuple(shape)
    )


def sparse_and_dense_gradients(seed=0):
    rng = np.random.default_rng(seed)
    for indices in INDICES * 3:
        values = rng.standard_normal((len(indices), WIDTH)).astype("float32")
        dense = np.zeros((ROWS_IN_TABLE, WIDTH), "float32")
        np.add.at(dense, indices, values)  # at most two terms per row: exact
        yield sparse_gradient(values, indices), dense


def run(optimizer, sparse):
    table = np.random.default_rng(1).standard_normal((ROWS_IN_TABLE, WIDTH))
    variable = keras.Variable(table.astype("float32"))
    for sparse_gradient_, dense_gradient in sparse_and_dense_gradients():
        optimizer.apply([sparse_gradient_ if sparse else dense_gradient], [variable])
    return keras.ops.convert_to_numpy(variable)


def assert_same_result(row, sparse_result, dense_result):
    if row.sparse_bitwise:
        np.testing.assert_array_equal(sparse_result, dense_result)
    else:
        # One rounding per duplicate row (at most two here) per step.
        np.testing.assert_allclose(sparse_result, dense_result, rtol=2e-7, atol=1e-7)
        assert not np.array_equal(sparse_result, dense_result), (
            "no rounding difference: does the sparse path still add each "
            "duplicate's step? Then the row's sparse_bitwise is True."
        )


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_sparse_equals_dense(row):
    assert_same_result(row, run(row.make(), sparse=True), run(row.make(), sparse=False))


@pytest.mark.parametrize("row", ROWS, ids=row_id)
@pytest.mark.parametrize("state_dtype", [None, "bfloat16"])
def test_sparse_equals_dense_with_options(row, state_dtype):
    options = {**(row.sparse_rows or {}), "state_dtype": state_dtype}
    assert_same_result(
        row,
        run(row.make(**options), sparse=True),
        run(row.make(**options), sparse=False),
    )


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_the_table_says_which_optimizers_update_rows(row):
    assert row.make().sparse_updates == (row.sparse_rows is not None)
    if row.sparse_rows:
        assert row.make(**row.sparse_rows).sparse_updates
    # A dense coupled L2 term makes every row change.
    assert not row.make(l2=1e-3)._keeps_sparse_gradients()


def _weight_receives_indexed_slices(optimizer, variable, gradient):
    """Applies `gradient` with the optimizer's `assign*` mocked (as Keras's
    own sparse test does) and the variable's own `assign*` forbidden; True
    if the weight was given a `tf.IndexedSlices`."""
    import tensorflow as tf

    received = []

    def record(target, value):
        if target is variable or target is variable.value:
            received.append(isinstance(value, tf.IndexedSlices))

    def forbidden(target, value, *args, **kwargs):
        if len(target.shape):
            pytest.fail("the step assigned a variable directly")

    variable_class = type(variable.value)
    optimizer.build([variable])
    with (
        mock.patch.object(optimizer, "assign", side_effect=record),
        mock.patch.object(optimizer, "assign_add", side_effect=record),
        mock.patch.object(optimizer, "assign_sub", side_effect=record),
        mock.patch.object(variable_class, "assign", forbidden),
        mock.patch.object(variable_class, "assign_add", forbidden),
        mock.patch.object(variable_class, "assign_sub", forbidden),
    ):
        optimizer.apply([gradient], [variable])
    assert received, "the weight was not updated"
    return all(received)


def _inlined_equations(jaxpr):
    """The equations of a jaxpr with every nested call (pjit, ...) inlined,
    variables renamed to the caller's."""
    import jax.extend

    equations = []

    def visit(inner, inputs):
        names = dict(zip(inner.invars, inputs, strict=True))
        names.update({var: var for var in inner.constvars})

        def name(var):
            if isinstance(var, jax.extend.core.Literal):
                return var
            return names.get(var, var)

        for equation in inner.eqns:
            called = equation.params.get("jaxpr")
            if equation.primitive.name in ("pjit", "jit") and called is not None:
                outputs = visit(called.jaxpr, [name(v) for v in equation.invars])
                names.update(zip(equation.outvars, outputs, strict=True))
                continue
            inputs = [name(v) for v in equation.invars]
            equations.append((equation.primitive.name, inputs, equation.outvars))
        return [name(var) for var in inner.outvars]

    outputs = visit(jaxpr.jaxpr, list(jaxpr.jaxpr.invars))
    return equations, outputs


def _new_weight_is_a_scatter_of_the_old(optimizer, variable, gradient):
    """In the jaxpr of the stateless step, the new weight is produced by a
    scatter-add whose operand is the old weight."""
    import jax

    optimizer.build([variable])

    def step(optimizer_values, grads, weights):
        return optimizer.stateless_apply(optimizer_values, grads, weights)

    closed = jax.make_jaxpr(step)(
        [v.value for v in optimizer.variables], [gradient], [variable.value]
    )
    equations, outputs = _inlined_equations(closed)
    old_weight = closed.jaxpr.invars[len(optimizer.variables) + _leaves(gradient)]
    producer = {out: (name, inputs) for name, inputs, outs in equations for out in outs}
    name, inputs = producer[outputs[0]]
    return name == "scatter-add" and inputs[0] is old_weight


def _leaves(gradient):
    import jax

    return len(jax.tree_util.tree_leaves(gradient))


def _weight_update_is_a_scatter(optimizer, variable, gradient):
    if BACKEND == "tensorflow":
        return _weight_receives_indexed_slices(optimizer, variable, gradient)
    return _new_weight_is_a_scatter_of_the_old(optimizer, variable, gradient)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_the_weight_update_is_a_scatter_where_the_table_says(row):
    """A scatter for the rows with `sparse_rows` (with their options too), a
    dense update for the others (which shows that the check can fail)."""
    gradient = sparse_gradient(np.full((3, WIDTH), 0.5, "float32"), [0, 4, 4])
    cases = [{}] if row.sparse_rows is None else [{}, row.sparse_rows]
    for options in cases:
        variable = keras.Variable(np.ones((ROWS_IN_TABLE, WIDTH), "float32"))
        scatter = _weight_update_is_a_scatter(row.make(**options), variable, gradient)
        assert scatter == (row.sparse_rows is not None), options


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_embedding_model_under_xla_matches_eager(row):
    """An Embedding layer's gradient is an IndexedSlices inside the compiled
    train step; the compiled and eager runs agree."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 6, size=(32, 5))  # many repeated indices per batch
    y = rng.standard_normal((32, 1)).astype("float32")
    weights = []
    for jit_compile in (True, False):
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [
                keras.Input((5,), dtype="int32"),
                keras.layers.Embedding(6, 3),
                keras.layers.Flatten(),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer=row.make(), loss="mse", jit_compile=jit_compile)
        batch = 32 if row.full_batch else 8
        model.fit(x, y, batch_size=batch, epochs=3, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow_only
def test_embedding_gradient_is_indexed_slices_with_duplicates():
    import tensorflow as tf

    layer = keras.layers.Embedding(6, 3)
    layer.build((None, 4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant([[1, 1, 2, 1]])))
    (gradient,) = tape.gradient(loss, layer.trainable_variables)
    assert isinstance(gradient, tf.IndexedSlices)
    assert sorted(gradient.indices.numpy().tolist()) == [1, 1, 1, 2]


@pytest.mark.tensorflow_only
def test_keras_builtin_adagrad_differs_on_duplicates():
    """The contrast: Keras's Adagrad squares duplicate slices one by one."""
    sparse_result = run(keras.optimizers.Adagrad(learning_rate=0.1), sparse=True)
    dense_result = run(keras.optimizers.Adagrad(learning_rate=0.1), sparse=False)
    assert not np.allclose(sparse_result, dense_result, rtol=1e-4)
    ours = [run(optimizers.Adagrad(learning_rate=0.1), sparse=s) for s in (True, False)]
    np.testing.assert_array_equal(*ours)
