"""`minimize` and `hessian_vector_product` over chunks: exact for every Keras
loss reduction, with and without sample weights, for chunk sizes that do
and do not divide the data; a clear refusal where a loss cannot be summed.

The reference losses are float64 NumPy: per-sample mean squared error
m_i, sample weights s_i, N samples and the kernel's L2 penalty R:
"sum_over_batch_size" and "none" (whose per-sample losses `minimize`
averages, as `evaluate` reports them) sum_i s_i m_i / N, "sum" sum_i s_i m_i,
"mean_with_sample_weight" sum_i s_i m_i / sum_i s_i (the plain mean without
weights), each plus R once.
"""

import keras
import numpy as np
import pytest

import keras_adaptive as ka

SAMPLES = 64
L2 = 0.01
REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none")


def problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SAMPLES, 3)).astype("float32")
    noise = 0.3 * rng.standard_normal((SAMPLES, 2))  # the optimum is not 0
    y = (x @ rng.standard_normal((3, 2)) + 1.0 + noise).astype("float32")
    weight = rng.uniform(0.2, 3.0, SAMPLES).astype("float32")
    return x, y, weight


START = [
    np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]], "float32"),
    np.array([0.1, -0.1], "float32"),
]


def penalty(reduction):
    """Keras cannot add the per-sample losses of reduction "none" to a
    regulariser: those models have none."""
    return 0.0 if reduction == "none" else L2


def regression(reduction, activity=0.0):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                2,
                kernel_regularizer=keras.regularizers.L2(L2)
                if penalty(reduction)
                else None,
                activity_regularizer=keras.regularizers.L2(activity)
                if activity
                else None,
            ),
        ]
    )
    model.set_weights(START)
    model.compile(loss=keras.losses.MeanSquaredError(reduction=reduction))
    return model


def expected_loss(reduction, x, y, weight):
    kernel, bias = (w.astype(np.float64) for w in START)
    per_sample = np.mean((x.astype(np.float64) @ kernel + bias - y) ** 2, axis=1)
    s = np.ones(SAMPLES) if weight is None else weight.astype(np.float64)
    total = np.sum(s * per_sample)
    if reduction == "sum":
        data = total
    elif reduction == "mean_with_sample_weight":
        data = total / np.sum(s)
    else:
        data = total / SAMPLES
    return data + penalty(reduction) * np.sum(kernel**2)


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_chunked_runs_equal_the_whole_batch_run(reduction, weighted):
    x, y, weight = problem()
    weight = weight if weighted else None
    expected = expected_loss(reduction, x, y, weight)
    runs = {}
    for chunk_size in (None, 16, 24):  # 24 leaves a last chunk of 16
        model = regression(reduction)
        history = ka.minimize(
            model,
            x,
            y,
            sample_weight=weight,
            chunk_size=chunk_size,
            max_iterations=4,
            gtol=0.0,
        )
        runs[chunk_size] = (history, model.get_weights())
        assert history.initial_loss == pytest.approx(expected, rel=1e-6)
    whole, whole_weights = runs[None]
    for chunk_size in (16, 24):
        history, weights = runs[chunk_size]
        np.testing.assert_allclose(
            history.history["loss"], whole.history["loss"], rtol=2e-5
        )
        for ours, reference in zip(weights, whole_weights, strict=True):
            np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)


def test_activity_regularisers_count_as_means_over_the_chunk():
    """Keras divides an activity regulariser by the batch size: the whole
    batch's penalty is the mean over samples of l2 |a_i|^2."""
    x, y, _ = problem()
    activity = 0.05
    outputs = x.astype(np.float64) @ START[0] + START[1]
    expected = expected_loss("sum_over_batch_size", x, y, None)
    expected += activity * np.sum(outputs**2) / SAMPLES
    for chunk_size in (None, 24):
        hvp = ka.hessian_vector_product(
            regression("sum_over_batch_size", activity), x, y, chunk_size=chunk_size
        )
        loss, _ = hvp.loss_and_gradient()
        assert loss == pytest.approx(expected, rel=1e-6)


def test_outputs_with_different_reductions_are_refused_in_chunks():
    inputs = keras.Input((3,))
    model = keras.Model(
        inputs,
        [
            keras.layers.Dense(1, name="a")(inputs),
            keras.layers.Dense(1, name="b")(inputs),
        ],
    )
    model.compile(
        loss=[
            keras.losses.MeanSquaredError(reduction="sum"),
            keras.losses.MeanSquaredError(),
        ]
    )
    x, y, _ = problem()
    targets = [y[:, :1], y[:, 1:]]
    history = ka.minimize(model, x, targets, max_iterations=1)  # one chunk: fine
    assert len(history.epoch) == 1
    with pytest.raises(
        ValueError,
        match=r"reductions must add up over chunks the same way; received "
        r"reductions \['sum', 'sum_over_batch_size'\].*chunk_size=None",
    ):
        ka.minimize(model, x, targets, chunk_size=24)


class SumOfSquares(keras.layers.Layer):
    """Adds the sum (not the mean) of its outputs' squares over the batch."""

    def call(self, inputs):
        self.add_loss(0.01 * keras.ops.sum(inputs**2))
        return inputs


def test_a_loss_that_does_not_add_up_over_chunks_is_refused():
    x, y, _ = problem()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), SumOfSquares()])
    model.compile(loss="mse")
    ka.minimize(model, x, y, max_iterations=1)  # one chunk: fine
    with pytest.raises(
        ValueError, match=r"the loss does not add up over chunks.*chunk_size=None"
    ):
        ka.minimize(model, x, y, chunk_size=24)


class OwnLoss(keras.Sequential):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        return keras.ops.mean((y_pred - y) ** 2)


def test_a_custom_compute_loss_runs_whole_and_is_refused_in_chunks():
    x, y, _ = problem()
    model = OwnLoss([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    history = ka.minimize(model, x, y, max_iterations=2)
    assert history.history["loss"][-1] < history.initial_loss
    with pytest.raises(ValueError, match=r"overrides compute_loss.*received 3 chunks"):
        ka.minimize(model, x, y, chunk_size=24)


def test_unreduced_losses_with_a_regulariser_are_refused():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, kernel_regularizer=keras.regularizers.L2(L2)),
        ]
    )
    model.compile(loss=keras.losses.MeanSquaredError(reduction="none"))
    x, y, _ = problem()
    with pytest.raises(
        ValueError,
        match=r"reduction='none' returns per-sample losses.*received "
        r"reduction='none' with other losses.*sum_over_batch_size",
    ):
        ka.minimize(model, x, y)
