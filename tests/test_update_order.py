"""The order of the per-variable updates (`update_order`).

With ``update_order="always"`` (and with ``"auto"`` for large steps on a
CPU) each variable's update is compiled to run after the previous
variable's, through a -0.0 added to the next gradient. The -0.0 changes no
value, so every optimizer gives the weights and state of ``"off"`` (Keras's
order) up to float32 rounding (XLA may contract a multiply-add into a fused
one in one order and not in the other: one unit in the last place), keeps
its own variables only, and the compiled step really runs the variables one
after the other.
"""

import re

import keras
import numpy as np
import pytest
from keras import ops
from models import batch_size, dense_model, numpy_values, regression_data
from optimizer_table import ROWS, row_id

from keras_adaptive import optimizers
from keras_adaptive.optimizers import update_order

SPECIAL = np.array(
    [-0.0, 0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, -3e38], dtype="float32"
)
# Not among them: a subnormal number, which XLA's CPU code flushes to zero in
# any arithmetic, the optimizers' own included (the bitwise comparison of
# every optimizer below covers it).
ON_JAX = keras.backend.backend() == "jax"
ORDERED_BACKEND = keras.backend.backend() in ("jax", "tensorflow")


def tensor(values):
    return ops.convert_to_tensor(np.asarray(values, dtype="float32"))


@pytest.fixture(autouse=True)
def cached_positive_zero():
    """TensorFlow caches the tensors of Python numbers by value, and -0.0 ==
    0.0: a +0.0 converted before must not turn the token into +0.0."""
    ops.convert_to_tensor(0.0, "float32")


def test_token_is_negative_zero_whatever_the_values_it_depends_on():
    values = [*SPECIAL, 1e-45]
    arrays = [tensor([value, 1.0]) for value in values] + [tensor(np.zeros((0,)))]
    token = np.asarray(ops.convert_to_numpy(update_order.order_token(arrays)))
    assert token == 0.0 and np.signbit(token)


@pytest.mark.parametrize("first", SPECIAL, ids=str)
def test_adding_the_token_changes_no_bit_of_a_gradient(first):
    token = update_order.order_token([tensor([[first, 2.0], [3.0, 4.0]])])
    shifted = np.asarray(ops.convert_to_numpy(tensor(SPECIAL) + token))
    np.testing.assert_array_equal(shifted.view("uint32"), SPECIAL.view("uint32"))


def train(row, order):
    x, y = regression_data()
    model = dense_model()
    model.compile(
        optimizer=row.make(update_order=order),
        loss="mse",
        jit_compile=ORDERED_BACKEND,
    )
    model.fit(x, y, batch_size=batch_size(row), epochs=3, shuffle=False, verbose=0)
    shapes = [(tuple(v.shape), v.dtype) for v in model.optimizer.variables]
    return model, shapes


def test_auto_orders_steps_on_cpu_from_the_threshold_on():
    small = [np.zeros((4, 4), "float32")]
    large = [np.zeros((2, update_order.MIN_PARAMETERS // 2), "int8")]
    assert not update_order.is_ordered("auto", small)
    assert update_order.is_ordered("auto", large) == ORDERED_BACKEND
    assert update_order.is_ordered("always", small) == ORDERED_BACKEND
    assert not update_order.is_ordered("off", large)


def test_update_order_is_validated_and_serialized():
    with pytest.raises(ValueError, match="update_order.*one of.*'sometimes'"):
        optimizers.Adam(update_order="sometimes")
    optimizer = optimizers.Adam(update_order="off")
    assert optimizers.Adam.from_config(optimizer.get_config()).update_order == "off"
    assert optimizers.Adam().update_order == "auto"


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_ordered_updates_give_the_values_of_kerass_order(row):
    ordered, ordered_shapes = train(row, "always")
    plain, plain_shapes = train(row, "off")
    assert ordered_shapes == plain_shapes, "the optimizer must keep its own variables"
    pairs = zip(
        ordered.get_weights() + numpy_values(ordered.optimizer.variables),
        plain.get_weights() + numpy_values(plain.optimizer.variables),
        strict=True,
    )
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("order", ["always", "off"])
def test_a_fit_takes_the_path_the_switch_chooses(order, monkeypatch):
    tokens = []
    order_token = update_order.order_token

    def counted(arrays):
        tokens.append(len(arrays))
        return order_token(arrays)

    monkeypatch.setattr(update_order, "order_token", counted)
    x, y = regression_data()
    model = dense_model()
    model.compile(
        optimizer=optimizers.Adam(update_order=order),
        loss="mse",
        jit_compile=ORDERED_BACKEND,
    )
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    if order == "off" or not ORDERED_BACKEND:
        assert tokens == []
        return
    # One token per variable (traced once), from its weights and two moments.
    assert tokens == [3] * len(model.trainable_variables)


def test_compiled_step_updates_one_variable_after_the_other():
    if not ON_JAX:
        # Read in JAX's optimized HLO; TensorFlow's step is checked by value.
        ordered = update_order.is_ordered("always", dense_model().trainable_variables)
        assert ordered == ORDERED_BACKEND
        return
    import jax

    shapes = [(64, 32)] * 3
    variables = [keras.Variable(np.ones(shape, "float32")) for shape in shapes]
    optimizer = optimizers.Adam(update_order="always")
    optimizer.build(variables)

    def step(optimizer_values, grads, weights):
        return optimizer.stateless_apply(optimizer_values, grads, weights)

    hlo = (
        jax.jit(step)
        .lower(
            [v.value for v in optimizer.variables],
            [np.ones(shape, "float32") for shape in shapes],
            [v.value for v in variables],
        )
        .compile()
        .as_text()
    )
    entry = hlo[hlo.index("\nENTRY") :].splitlines()

    def lines_reading(parameter):
        pattern = re.compile(rf"fusion\([^)]*%{parameter}_\.\d+\b")
        found = [i for i, line in enumerate(entry) if pattern.search(line)]
        assert found, f"no fusion reads {parameter}"
        return found

    for i in range(len(shapes) - 1):
        # The last loop of variable i (its weights) before the first loop
        # reading the next gradient.
        assert max(lines_reading(f"weights_{i}")) < min(lines_reading(f"grads_{i + 1}"))
