"""`keras_adaptive.hessian_vector_product`: exact products with the Hessian
of a compiled model's loss.

The reference Hessian is built independently of the code under test: the
4-6-3 tanh network with softmax cross-entropy and an L2 kernel penalty is
rewritten in float64 NumPy with its gradient by hand, and the Hessian is the
central difference of that gradient, column by column (truncation error
of order h^2 = 1e-10, rounding of order eps / h = 1e-11), symmetrised.
"""

import keras
import numpy as np
import pytest

import keras_adaptive as ka

L2 = 0.01
SAMPLES = 20


@pytest.fixture
def float64():
    """Layers created in the test compute and store float64 (on JAX, with
    64-bit types enabled for the test)."""
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    if keras.backend.backend() == "jax":
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield
    keras.config.set_floatx(previous)


def network(dtype, seed=0):
    model = keras.Sequential(
        [
            keras.Input((4,), dtype=dtype),
            keras.layers.Dense(
                6,
                activation="tanh",
                kernel_regularizer=keras.regularizers.L2(L2),
                dtype=dtype,
            ),
            keras.layers.Dense(
                3, kernel_regularizer=keras.regularizers.L2(L2), dtype=dtype
            ),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0.0, 0.7, w.shape).astype(dtype) for w in model.get_weights()]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def data(dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SAMPLES, 4)).astype(dtype)
    y = rng.integers(0, 3, SAMPLES).astype("int32")
    weight = rng.uniform(0.5, 2.0, SAMPLES).astype(dtype)
    return x, y, weight


def loss_and_gradient(params, x, y, weight):
    """The loss mean_i w_i CE_i + L2 (|W1|^2 + |W2|^2) and its gradient,
    float64, by hand."""
    w1, b1, w2, b2 = params
    hidden = np.tanh(x @ w1 + b1)
    logits = hidden @ w2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    cross_entropy = np.log(total[:, 0]) - shifted[rows, y]
    loss = np.mean(weight * cross_entropy) + L2 * (np.sum(w1**2) + np.sum(w2**2))
    dlogits = exp / total
    dlogits[rows, y] -= 1.0
    dlogits *= weight[:, None] / len(y)
    dhidden = (dlogits @ w2.T) * (1.0 - hidden**2)
    grads = [
        x.T @ dhidden + 2 * L2 * w1,
        dhidden.sum(axis=0),
        hidden.T @ dlogits + 2 * L2 * w2,
        dlogits.sum(axis=0),
    ]
    return loss, np.concatenate([g.ravel() for g in grads])


def unflatten(flat, shapes):
    pieces, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        pieces.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return pieces


def reference_hessian(model, x, y, weight):
    shapes = [w.shape for w in model.get_weights()]
    theta = np.concatenate(
        [np.asarray(w, np.float64).ravel() for w in model.get_weights()]
    )
    x, weight = x.astype(np.float64), weight.astype(np.float64)

    def gradient(t):
        return loss_and_gradient(unflatten(t, shapes), x, y, weight)[1]

    step = 1e-5
    columns = []
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = step
        columns.append((gradient(theta + e) - gradient(theta - e)) / (2 * step))
    hessian = np.stack(columns, axis=1)
    return 0.5 * (hessian + hessian.T), theta, shapes


def relative_error(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-6), ("float32", 1e-4)])
def test_products_equal_the_explicit_hessian(request, dtype, tolerance, capsys):
    if dtype == "float64":
        request.getfixturevalue("float64")
    x, y, weight = data(dtype)
    model = network(dtype)
    hessian, theta, shapes = reference_hessian(model, x, y, weight)
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((3, theta.size))
    errors = {}
    for chunk_size in (None, 7):  # 20 samples: chunks of 7, 7 and 6
        hvp = ka.hessian_vector_product(
            model, x, y, sample_weight=weight, chunk_size=chunk_size
        )
        assert hvp.size == theta.size == 51
        for v in vectors:
            product = hvp(v.astype(dtype))
            assert product.dtype == np.float64 and product.shape == (51,)
            errors[chunk_size] = max(
                errors.get(chunk_size, 0.0), relative_error(product, hessian @ v)
            )
        assert hvp.products == 3
        loss, gradient = hvp.loss_and_gradient()
        expected_loss, expected_gradient = loss_and_gradient(
            unflatten(theta, shapes), x.astype(np.float64), y, weight.astype(np.float64)
        )
        assert loss == pytest.approx(expected_loss, rel=tolerance)
        assert relative_error(gradient, expected_gradient) <= tolerance
    with capsys.disabled():
        print(
            f"\n{keras.backend.backend()} {dtype}: relative error of H v, "
            f"whole {errors[None]:.1e}, chunks of 7 {errors[7]:.1e}"
        )
    assert max(errors.values()) <= tolerance
    if dtype == "float64" and keras.backend.backend() == "tensorflow":
        # Only TensorFlow computes a float64 model in float64 throughout:
        # off it, Keras 3.15's ops.tanh (JAX) and ops.matmul (PyTorch) return
        # float32 for float64 inputs, which limits every backend-computed
        # derivative to float32 rounding (about 3e-7 here).
        assert max(errors.values()) <= 1e-8


def test_products_follow_the_weights_of_the_model():
    x, y, weight = data("float32")
    model = network("float32")
    hvp = ka.hessian_vector_product(model, x, y, sample_weight=weight)
    v = np.random.default_rng(3).standard_normal(hvp.size)
    before = hvp(v)
    model.set_weights(network("float32", seed=5).get_weights())
    hessian, _, _ = reference_hessian(model, x, y, weight)
    after = hvp(v)
    assert relative_error(after, hessian @ v) <= 1e-4
    assert relative_error(after, before) > 1e-2


def test_flatten_and_unflatten_follow_the_trainable_variables():
    x, y, _ = data("float32")
    model = network("float32")
    hvp = ka.hessian_vector_product(model, x, y)
    weights = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    flat = hvp.flatten(weights)
    assert flat.dtype == np.float64 and flat.shape == (51,)
    np.testing.assert_array_equal(flat[:24], weights[0].ravel())
    np.testing.assert_array_equal(flat[-3:], weights[3])
    back = hvp.unflatten(flat)
    assert [w.shape for w in back] == [(4, 6), (6,), (6, 3), (3,)]
    for a, b in zip(back, weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda hvp: hvp(np.ones(50)), r"`v` must be a 1-D float array of length 51"),
        (lambda hvp: hvp(np.ones((51, 1))), r"received an array of shape \(51, 1\)"),
        (lambda hvp: hvp(np.ones(51, "int32")), r"dtype int32"),
        (lambda hvp: hvp.unflatten(np.ones(3)), r"`v` must be 1-D of length 51"),
        (lambda hvp: hvp.flatten([np.ones(3)]), r"one array per trainable variable"),
        (
            lambda hvp: hvp.flatten(
                [np.ones((6, 4)), *[np.ones(s) for s in (6, (6, 3), 3)]]
            ),
            r"received shape \(6, 4\) where \(4, 6\) belongs",
        ),
    ],
)
def test_bad_vectors_raise_naming_the_parameter(call, message):
    x, y, _ = data("float32")
    hvp = ka.hessian_vector_product(network("float32"), x, y)
    with pytest.raises(ValueError, match=message):
        call(hvp)
