"""Sparse gradients: a `tf.IndexedSlices` gradient, duplicate indices
included, gives exactly the result of the dense gradient it stands for.

Keras's built-in Adam, Adagrad and RMSprop square each duplicate slice
separately, so their sparse and dense results differ; the last test shows it.
"""

import keras
import numpy as np
import pytest
from optimizer_table import ROWS, row_id

from keras_adaptive import optimizers

pytestmark = pytest.mark.tensorflow_only

ROWS_IN_TABLE, WIDTH = 12, 4
# Every step touches some rows twice and some not at all.
INDICES = [[1, 3, 3, 7, 0], [3, 1, 1, 9, 11], [5, 5, 2, 2, 8], [0, 0, 11, 4, 4]]


def sparse_and_dense_gradients(seed=0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for indices in INDICES * 3:
        values = rng.standard_normal((len(indices), WIDTH)).astype("float32")
        dense = np.zeros((ROWS_IN_TABLE, WIDTH), "float32")
        np.add.at(dense, indices, values)  # at most two terms per row: exact
        sparse = tf.IndexedSlices(
            tf.constant(values),
            tf.constant(indices, dtype="int64"),
            dense_shape=tf.constant([ROWS_IN_TABLE, WIDTH], dtype="int64"),
        )
        yield sparse, dense


def run(optimizer, sparse):
    table = np.random.default_rng(1).standard_normal((ROWS_IN_TABLE, WIDTH))
    variable = keras.Variable(table.astype("float32"))
    for sparse_gradient, dense_gradient in sparse_and_dense_gradients():
        optimizer.apply([sparse_gradient if sparse else dense_gradient], [variable])
    return keras.ops.convert_to_numpy(variable)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_sparse_equals_dense_exactly(row):
    np.testing.assert_array_equal(
        run(row.make(), sparse=True), run(row.make(), sparse=False)
    )


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


def test_embedding_gradient_is_indexed_slices_with_duplicates():
    import tensorflow as tf

    layer = keras.layers.Embedding(6, 3)
    layer.build((None, 4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant([[1, 1, 2, 1]])))
    (gradient,) = tape.gradient(loss, layer.trainable_variables)
    assert isinstance(gradient, tf.IndexedSlices)
    assert sorted(gradient.indices.numpy().tolist()) == [1, 1, 1, 2]


def test_keras_builtin_adagrad_differs_on_duplicates():
    """The contrast: Keras's Adagrad squares duplicate slices one by one."""
    sparse_result = run(keras.optimizers.Adagrad(learning_rate=0.1), sparse=True)
    dense_result = run(keras.optimizers.Adagrad(learning_rate=0.1), sparse=False)
    assert not np.allclose(sparse_result, dense_result, rtol=1e-4)
    ours = [run(optimizers.Adagrad(learning_rate=0.1), sparse=s) for s in (True, False)]
    np.testing.assert_array_equal(*ours)
