"""`keras_adaptive.minimize`: full-batch L-BFGS, CG and steepest descent with
a strong-Wolfe line search.

Every reference value is computed independently of the code under test: the
objectives are rewritten in float64 NumPy (softmax cross-entropy, L2 penalty,
the tanh MLP and their gradients by hand), the optima come from
`scipy.optimize.minimize(method="L-BFGS-B")`, the Wolfe conditions are
checked in NumPy on the weights the callbacks saw. Every run checks that the
loss never increased from one iteration to the next.

Initial weights are drawn with NumPy (Glorot-uniform kernels, zero biases),
so that all three backends start from the same point.
"""

import csv
import doctest
import functools
import importlib
import math

import keras
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse

import keras_adaptive as ka
from keras_adaptive.full_batch import STOP_REASONS

BACKEND = keras.backend.backend()
MODULE = importlib.import_module("keras_adaptive.full_batch.minimization")
L2 = 1e-3


# ---------------------------------------------------------------------------
# Data, models and float64 NumPy references


@functools.cache
def mnist(path, samples):
    with np.load(path) as data:
        x = data["x_train"][:samples].reshape(-1, 784).astype("float32") / 255.0
        y = data["y_train"][:samples].astype("int32")
    assert len(x) == samples
    return x, y


def glorot(rng, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype("float32")


def softmax_regression(inputs=784, classes=10, l2=L2):
    """Dense(classes) with the softmax in the loss (from_logits=True), which
    avoids the probability clipping at 1e-7 of a softmax output layer."""
    model = keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(
                classes,
                kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
            ),
        ]
    )
    model.set_weights(
        [np.zeros((inputs, classes), "float32"), np.zeros(classes, "float32")]
    )
    compile_model(model)
    return model


def mlp(seed, inputs=784, hidden=32, classes=10):
    """The 784-32-10 tanh MLP of the issue, with NumPy initial weights."""
    model = keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(classes),
        ]
    )
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            glorot(rng, inputs, hidden),
            np.zeros(hidden, "float32"),
            glorot(rng, hidden, classes),
            np.zeros(classes, "float32"),
        ]
    )
    return model


def compile_model(model, **kwargs):
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), **kwargs
    )


def weights64(model):
    return [np.asarray(w, np.float64) for w in model.get_weights()]


def cross_entropy(logits, y, sample_weight=None):
    """Mean softmax cross-entropy and its gradient w.r.t. the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    losses = np.log(total[:, 0]) - shifted[rows, y]
    weight = np.ones(len(y)) if sample_weight is None else sample_weight
    dlogits = exp / total
    dlogits[rows, y] -= 1.0
    return np.mean(weight * losses), dlogits * weight[:, None] / len(y)


def regression_loss(params, x, y, l2=L2, sample_weight=None):
    """Softmax regression loss + l2 * ||W||^2 and its gradient, float64."""
    kernel, bias = params
    loss, dlogits = cross_entropy(x @ kernel + bias, y, sample_weight)
    grads = [x.T @ dlogits + 2.0 * l2 * kernel, dlogits.sum(axis=0)]
    return loss + l2 * np.sum(kernel**2), grads


def mlp_loss(params, x, y):
    """The tanh MLP's loss and gradient, float64."""
    w1, b1, w2, b2 = params
    hidden = np.tanh(x @ w1 + b1)
    loss, dlogits = cross_entropy(hidden @ w2 + b2, y)
    dhidden = (dlogits @ w2.T) * (1.0 - hidden**2)
    return loss, [x.T @ dhidden, dhidden.sum(0), hidden.T @ dlogits, dlogits.sum(0)]


class Flat:
    """Flattens a list of arrays for SciPy and counts the evaluations."""

    def __init__(self, loss, params, *args):
        self.loss, self.args = loss, args
        self.shapes = [p.shape for p in params]
        self.x0 = np.concatenate([p.ravel() for p in params])
        self.evaluations = 0

    def unflatten(self, flat):
        pieces, offset = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            pieces.append(flat[offset : offset + size].reshape(shape))
            offset += size
        return pieces

    def __call__(self, flat):
        self.evaluations += 1
        loss, grads = self.loss(self.unflatten(flat), *self.args)
        return loss, np.concatenate([g.ravel() for g in grads])


def scipy_lbfgs(objective, **options):
    return scipy.optimize.minimize(
        objective, objective.x0, jac=True, method="L-BFGS-B", options=options
    )


def assert_monotone(history):
    """The loss never increased from one iteration to the next."""
    losses = [history.initial_loss, *history.history.get("loss", [])]
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert history.stop_reason in STOP_REASONS


@functools.cache
def scipy_regression_optimum(path):
    x, y = mnist(path, 5000)
    start = [np.zeros((784, 10)), np.zeros(10)]
    objective = Flat(regression_loss, start, x.astype(np.float64), y)
    # f - f* is about g^T H^-1 g / 2: at max |g_i| <= 1e-7 (7,850 weights, the
    # L2 term keeps the kernel's curvature >= 2e-3) it is of order 1e-8, far
    # below the 1e-5 relative tolerance of the test.
    result = scipy_lbfgs(objective, maxiter=5000, maxfun=10000, ftol=0.0, gtol=1e-7)
    assert np.max(np.abs(result.jac)) <= 1e-7, result.message
    return result.fun


def regression_data(samples=300, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, features)).astype("float32")
    y = np.argmax(x @ rng.standard_normal((features, classes)), axis=1)
    flip = rng.random(samples) < 0.2  # label noise: the optimum is finite
    y[flip] = rng.integers(0, classes, flip.sum())
    return x, y.astype("int32")


# ---------------------------------------------------------------------------
# Convex: softmax regression on 5,000 MNIST images, against SciPy


@pytest.mark.parametrize(
    ("method", "tolerance"),
    [("lbfgs", 1e-5), ("cg", 1e-4), ("newton-cg", 1e-6), ("trust-ncg", 1e-6)],
)
def test_convex_loss_reaches_the_scipy_optimum(mnist_npz, capsys, method, tolerance):
    """The float64 loss of the final weights against SciPy's L-BFGS-B
    optimum. Newton's steps end closer to it than float32 line searches
    along quasi-Newton or CG directions can resolve."""
    x, y = mnist(mnist_npz, 5000)
    optimum = scipy_regression_optimum(mnist_npz)
    model = softmax_regression()

    history = ka.minimize(model, x, y, method=method, max_iterations=3000)

    assert_monotone(history)
    ours, _ = regression_loss(weights64(model), x.astype(np.float64), y)
    relative = (ours - optimum) / optimum
    with capsys.disabled():
        print(
            f"\nconvex {method}: {ours:.8f} vs SciPy {optimum:.8f} "
            f"(relative {relative:.2e}), {len(history.epoch)} iterations, "
            f"{history.history['evaluations'][-1]} evaluations, "
            f"{history.history.get('hessian_vector_products', [0])[-1]} "
            f"Hessian-vector products, stop {history.stop_reason}"
        )
    assert abs(relative) <= tolerance
    # The loss minimize reports is the float64 loss of the weights it wrote.
    assert history.history["loss"][-1] == pytest.approx(ours, rel=1e-5)


# ---------------------------------------------------------------------------
# Non-convex: the tanh MLP on 19,690 images, evaluations against SciPy


class StopBelow(keras.callbacks.Callback):
    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold

    def on_epoch_end(self, epoch, logs=None):
        if logs["loss"] < self.threshold:
            self.model.stop_training = True


def evaluations_to_reach(losses, evaluations, threshold):
    for loss, count in zip(losses, evaluations, strict=True):
        if loss < threshold:
            return count
    return math.inf


@pytest.mark.slow
def test_nonconvex_lbfgs_needs_at_most_1_3_times_the_scipy_evaluations(
    mnist_npz, capsys
):
    """SciPy runs on a float64 NumPy reimplementation of the MLP: L-BFGS-B
    computes in float64 internally, and an exact float64 objective is its
    best case (a float32 objective shows its line search rounding noise).
    Its evaluations are counted by a wrapper around the objective; an
    iteration counts when its iterate's loss is below the threshold, as for
    ours (loss at the accepted weights, cumulative evaluations)."""
    x, y = mnist(mnist_npz, 19690)
    model = mlp(seed=0)
    # MNIST images are 81 % zeros: a sparse float64 copy computes the same
    # products with 40 % less CPU time.
    x_sparse = scipy.sparse.csr_array(x.astype(np.float64))
    objective = Flat(mlp_loss, weights64(model), x_sparse, y)
    reached = {}

    def record(intermediate_result):
        for threshold in (0.1, 0.01):
            if intermediate_result.fun < threshold:
                reached.setdefault(threshold, objective.evaluations)
        if 0.01 in reached:
            raise StopIteration

    scipy.optimize.minimize(
        objective,
        objective.x0,
        jac=True,
        method="L-BFGS-B",
        callback=record,
        options={"maxiter": 1000, "ftol": 0.0, "gtol": 0.0},
    )
    compile_model(model)
    history = ka.minimize(model, x, y, callbacks=[StopBelow(0.01)])

    assert_monotone(history)
    losses, counts = history.history["loss"], history.history["evaluations"]
    ours = {t: evaluations_to_reach(losses, counts, t) for t in (0.1, 0.01)}
    with capsys.disabled():
        print(
            f"\nnon-convex MLP, {len(x)} images, evaluations to reach loss "
            f"0.1 / 0.01: ours {ours[0.1]} / {ours[0.01]}, "
            f"SciPy {reached.get(0.1)} / {reached.get(0.01)}"
        )
    assert set(reached) == {0.1, 0.01}
    for threshold in (0.1, 0.01):
        assert ours[threshold] <= 1.3 * reached[threshold]
    assert history.stop_reason == "callback"


# ---------------------------------------------------------------------------
# The divergent fixed-step case


#: Initial weights (NumPy seeds of `mlp`) for which the fixed-step `LBFGS`
#: optimizer, measured on each backend, blew up within 100 full-batch steps
#: on the first 2,000 images. It first converges to a loss near 1e-9, where
#: the curvature pairs are float32 rounding noise, then takes a huge step
#: (after 70 to 98 steps). Which initialisations do so depends on the
#: backend's rounding: seeds 5, 8, 14 and 16 of 0-16 blow up on JAX; 16,
#: 18 and 20 do on TensorFlow, 18 and 47 on PyTorch, but 18 not on JAX and
#: 47 not on TensorFlow. The test takes the first seed of its backend's list
#: that blows up (the later ones only guard against a change of rounding).
DIVERGENT_SEEDS = {"tensorflow": (18, 16, 20), "torch": (18, 47), "jax": (5, 8, 14)}


def fixed_step_loss(seed, x, y):
    """Loss after 100 full-batch steps of LBFGS(learning_rate=0.5)."""
    fixed = mlp(seed)
    fixed.compile(
        optimizer=ka.LBFGS(learning_rate=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    fixed.fit(x, y, batch_size=len(x), epochs=100, shuffle=False, verbose=0)
    loss, _ = mlp_loss(weights64(fixed), x.astype(np.float64), y)
    return loss


def test_converges_where_the_fixed_step_lbfgs_optimizer_diverges(mnist_npz, capsys):
    x, y = mnist(mnist_npz, 2000)
    for seed in DIVERGENT_SEEDS[BACKEND]:
        fixed_loss = fixed_step_loss(seed, x, y)
        if not fixed_loss < 2.3:  # diverged (ln 10 = 2.30 at the start), or NaN
            break
    else:
        pytest.fail(
            f"LBFGS(0.5) no longer diverges from seeds {DIVERGENT_SEEDS[BACKEND]} "
            f"on {BACKEND}; the rounding changed, measure new seeds"
        )

    model = mlp(seed)
    compile_model(model)
    history = ka.minimize(model, x, y, max_iterations=100)

    assert_monotone(history)
    ours, _ = mlp_loss(weights64(model), x.astype(np.float64), y)
    with capsys.disabled():
        print(
            f"\nfirst 2,000 images, seed {seed}, 100 iterations: fixed-step "
            f"LBFGS(0.5) {fixed_loss:.4g}, minimize {ours:.4g} "
            f"({len(history.epoch)} iterations, stop {history.stop_reason})"
        )
    assert ours < 1e-3


# ---------------------------------------------------------------------------
# The line search


@pytest.mark.parametrize(("method", "c2"), [("lbfgs", 0.9), ("cg", 0.1), ("gd", 0.5)])
def test_every_step_satisfies_the_strong_wolfe_conditions(method, c2):
    """Checked in float64 NumPy on the weights the callback saw; near the
    optimum, where float32 rounding decides, steps are not checked."""
    x, y = regression_data()
    x64 = x.astype(np.float64)
    saved = []
    model = softmax_regression(inputs=6, classes=3, l2=0.01)
    saved.append(weights64(model))
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: saved.append(weights64(model))
    )
    history = ka.minimize(
        model, x, y, method=method, c2=c2, max_iterations=15, gtol=0.0, callbacks=[keep]
    )
    assert_monotone(history)
    c1 = 1e-4
    checked = 0
    for before, after, alpha in zip(
        saved, saved[1:], history.history["step_length"], strict=False
    ):
        f0, g0 = regression_loss(before, x64, y, 0.01)
        f1, g1 = regression_loss(after, x64, y, 0.01)
        step = np.concatenate(
            [(a - b).ravel() for a, b in zip(after, before, strict=True)]
        )
        g0 = np.concatenate([g.ravel() for g in g0])
        g1 = np.concatenate([g.ravel() for g in g1])
        slope0 = g0 @ step / alpha
        if -slope0 < 1e-6:  # float32 rounding dominates near the optimum
            continue
        assert f1 <= f0 + c1 * alpha * slope0 + 1e-7
        assert abs(g1 @ step / alpha) <= c2 * abs(slope0) * (1 + 1e-3) + 1e-7
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("method", ["lbfgs", "cg", "gd"])
def test_every_method_lowers_the_loss_to_the_scipy_optimum(method):
    x, y = regression_data()
    start = [np.zeros((6, 3)), np.zeros(3)]
    objective = Flat(regression_loss, start, x.astype(np.float64), y, 0.01)
    optimum = scipy_lbfgs(objective, ftol=1e-15, gtol=1e-10).fun
    model = softmax_regression(inputs=6, classes=3, l2=0.01)
    history = ka.minimize(model, x, y, method=method, max_iterations=500)
    assert_monotone(history)
    ours, _ = regression_loss(weights64(model), x.astype(np.float64), y, 0.01)
    assert ours == pytest.approx(optimum, rel=1e-5)
    assert history.history["loss"][-1] == pytest.approx(ours, rel=1e-6)
    assert history.initial_loss == pytest.approx(math.log(3), rel=1e-6)


# ---------------------------------------------------------------------------
# Compilation: one trace per compiled function and call


def _is_traced(tensor):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    import jax

    return isinstance(tensor, jax.core.Tracer)


@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch runs eagerly, no tracing")
@pytest.mark.parametrize(("chunk_size", "functions"), [(None, 1), (120, 2)])
def test_each_compiled_function_is_traced_once_per_call(
    monkeypatch, chunk_size, functions
):
    x, y = regression_data(samples=300)
    model = softmax_regression(inputs=6, classes=3)
    original = model.compute_loss
    traced = []

    def counting(*args, **kwargs):
        traced.append(_is_traced(kwargs["y_pred"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "compute_loss", counting)
    for _ in range(2):
        traced.clear()
        model.set_weights([np.zeros((6, 3), "float32"), np.zeros(3, "float32")])
        history = ka.minimize(
            model, x, y, max_iterations=8, gtol=0.0, chunk_size=chunk_size
        )
        assert_monotone(history)
        # 300 samples in chunks of 120: lengths 120 and 60, two functions.
        assert history.history["evaluations"][-1] >= 8
        assert sum(traced) == functions


# ---------------------------------------------------------------------------
# Chunks, sample weights and regularisation


def test_chunks_give_the_full_batch_loss_and_trajectory():
    x, y = regression_data(samples=301)
    weight = np.random.default_rng(1).uniform(0.5, 2.0, len(x)).astype("float32")
    runs = {}
    for chunk_size in (None, 100, 1000):
        model = softmax_regression(inputs=6, classes=3, l2=0.05)
        model.set_weights([np.full((6, 3), 0.1, "float32"), np.zeros(3, "float32")])
        runs[chunk_size] = ka.minimize(
            model, x, y, sample_weight=weight, max_iterations=6, chunk_size=chunk_size
        )
        assert_monotone(runs[chunk_size])
    start = [np.full((6, 3), 0.1), np.zeros(3)]
    expected, _ = regression_loss(start, x.astype(np.float64), y, 0.05, weight)
    for history in runs.values():
        assert history.initial_loss == pytest.approx(expected, rel=1e-6)
        np.testing.assert_allclose(
            history.history["loss"], runs[None].history["loss"], rtol=1e-5
        )


# ---------------------------------------------------------------------------
# Stopping


def small_problem(**kwargs):
    x, y = regression_data()
    model = softmax_regression(inputs=6, classes=3, l2=0.01)
    history = ka.minimize(model, x, y, **kwargs)
    assert_monotone(history)
    return model, x, y, history


def test_stops_after_max_iterations():
    _, _, _, history = small_problem(max_iterations=3, gtol=0.0, ftol=0.0)
    assert history.stop_reason == "max_iterations"
    assert history.epoch == [0, 1, 2]
    assert_monotone(history)


def test_stops_after_max_evaluations():
    _, _, _, history = small_problem(max_evaluations=5, gtol=0.0, ftol=0.0)
    assert history.stop_reason == "max_evaluations"
    assert history.history["evaluations"][-1] == 5
    assert_monotone(history)


def test_stops_at_the_gradient_tolerance():
    model, x, y, history = small_problem(gtol=1e-3)
    assert history.stop_reason == "gtol"
    _, grads = regression_loss(weights64(model), x.astype(np.float64), y, 0.01)
    largest = max(np.max(np.abs(g)) for g in grads)
    assert 0.0 < largest <= 1e-3 * (1 + 1e-3)
    assert_monotone(history)


def test_stops_at_the_loss_tolerance():
    _, _, _, history = small_problem(ftol=1e-3, gtol=0.0)
    assert history.stop_reason == "ftol"
    losses = [history.initial_loss, *history.history["loss"]]
    decrease = [
        (a - b) / max(abs(a), abs(b), 1.0)
        for a, b in zip(losses[:-1], losses[1:], strict=True)
    ]
    assert decrease[-1] <= 1e-3 and min(decrease[:-1]) > 1e-3
    assert_monotone(history)


def test_a_converged_float32_run_ends_when_the_line_search_finds_no_decrease():
    _, _, _, history = small_problem(gtol=0.0, ftol=0.0, max_iterations=2000)
    assert history.stop_reason == "line_search"
    assert len(history.epoch) < 2000
    assert_monotone(history)


def test_no_iteration_when_the_start_already_meets_gtol():
    model, x, y, history = small_problem(gtol=10.0)
    assert history.stop_reason == "gtol" and history.epoch == []
    np.testing.assert_array_equal(model.get_weights()[0], np.zeros((6, 3)))


# ---------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"method": "newton"}, r"`method` must be one of .*method='newton'"),
        ({"max_iterations": 0}, r"`max_iterations` must be an integer >= 1.*=0"),
        ({"max_iterations": 2.5}, r"`max_iterations` must be an integer >= 1.*=2.5"),
        ({"max_evaluations": 0}, r"`max_evaluations` must be an integer >= 1.*=0"),
        ({"gtol": -1.0}, r"`gtol` must be a float in \[0.0, inf\).*gtol=-1.0"),
        ({"ftol": float("nan")}, r"`ftol` must be a float in \[0.0, inf\).*nan"),
        ({"chunk_size": 0}, r"`chunk_size` must be an integer >= 1.*chunk_size=0"),
        ({"history_size": 0}, r"`history_size` must be an integer >= 1.*=0"),
        ({"curvature_epsilon": -1e-3}, r"`curvature_epsilon` must be a float in"),
        ({"c1": 0.0}, r"`c1` must be a float in \(0.0, 1.0\).*c1=0.0"),
        ({"c2": 1e-5}, r"`c2` must be a float in \(0.0001, 1.0\).*c2=1e-05"),
        ({"max_line_search": 0}, r"`max_line_search` must be an integer >= 1"),
        ({"restart_every": 5}, r"`restart_every` applies only to method='cg'"),
        (
            {"verbose": 3},
            r"`verbose` must be an integer in \[0, 2\]; received verbose=3",
        ),
        ({"validation_data": [1]}, r"`validation_data` must be a tuple"),
    ],
)
def test_bad_arguments_raise_naming_parameter_value_and_range(kwargs, expected):
    x, y = regression_data(samples=20)
    model = softmax_regression(inputs=6, classes=3)
    with pytest.raises(ValueError, match=expected):
        ka.minimize(model, x, y, **kwargs)


def test_bad_data_and_models_raise():
    x, y = regression_data(samples=20)
    model = softmax_regression(inputs=6, classes=3)
    with pytest.raises(ValueError, match=r"`y` must have as many samples as `x` \(20"):
        ka.minimize(model, x, y[:10])
    uncompiled = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="`model` must be compiled"):
        ka.minimize(uncompiled, x, y)
    x_bad = x.copy()
    x_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="loss at the initial weights must be finite"):
        ka.minimize(model, x_bad, y)


# ---------------------------------------------------------------------------
# Behaving like fit: callbacks, metrics, validation, progress bar


def test_csv_logger_writes_one_row_per_iteration(tmp_path):
    path = tmp_path / "log.csv"
    _, _, _, history = small_problem(
        max_iterations=5, gtol=0.0, callbacks=[keras.callbacks.CSVLogger(str(path))]
    )
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3, 4]
    for key in ("loss", "evaluations", "step_length"):
        np.testing.assert_allclose(
            [float(row[key]) for row in rows], history.history[key], rtol=1e-6
        )
    evaluations = [int(float(row["evaluations"])) for row in rows]
    assert evaluations[0] >= 2 and np.all(np.diff(evaluations) >= 1)


def test_tensorboard_logs_one_loss_per_iteration(tmp_path):
    import tensorflow as tf  # TensorBoard's event files, on every backend

    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    _, _, _, history = small_problem(max_iterations=3, gtol=0.0, callbacks=[board])
    losses = []
    for path in sorted((tmp_path / "train").glob("events*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == "epoch_loss":
                    losses.append(float(tf.make_ndarray(value.tensor)))
    np.testing.assert_allclose(losses, history.history["loss"], rtol=1e-6)


def test_early_stopping_ends_the_run_and_restores_the_best_weights():
    stop = keras.callbacks.EarlyStopping(
        monitor="loss", min_delta=0.05, patience=1, restore_best_weights=True
    )
    model, x, y, history = small_problem(max_iterations=200, gtol=0.0, callbacks=[stop])
    assert history.stop_reason == "callback"
    assert 2 <= len(history.epoch) < 200
    losses = [history.initial_loss, *history.history["loss"]]
    assert losses[-2] - losses[-1] < 0.05
    assert_monotone(history)
    # The weights restored at on_train_end are the best epoch's, not the last.
    best = history.history["loss"][stop.best_epoch]
    assert stop.best_epoch < len(history.epoch) - 1
    params = weights64(model)
    restored, _ = regression_loss(params, x.astype(np.float64), y, 0.01)
    assert restored == pytest.approx(best, rel=1e-6)
    assert restored > history.history["loss"][-1]


def test_metrics_and_validation_data_are_logged_per_iteration():
    x, y = regression_data(samples=400)
    model = softmax_regression(inputs=6, classes=3, l2=0.01)
    compile_model(model, metrics=["accuracy"])
    history = ka.minimize(
        model, x[:300], y[:300], max_iterations=4, validation_data=(x[300:], y[300:])
    )
    assert_monotone(history)
    logs = history.history
    assert set(logs) == {
        "loss",
        "accuracy",
        "evaluations",
        "step_length",
        "val_loss",
        "val_accuracy",
    }
    assert all(len(values) == 4 for values in logs.values())
    params = weights64(model)
    x64 = x.astype(np.float64)
    val_loss, _ = regression_loss(params, x64[300:], y[300:], 0.01)
    assert logs["val_loss"][-1] == pytest.approx(val_loss, rel=1e-5)
    for rows, key in ((slice(0, 300), "accuracy"), (slice(300, 400), "val_accuracy")):
        predicted = np.argmax(x64[rows] @ params[0] + params[1], axis=1)
        assert logs[key][-1] == pytest.approx(np.mean(predicted == y[rows]))


def test_verbose_shows_the_progress_bar(capsys):
    small_problem(max_iterations=2, gtol=0.0, verbose=1)
    printed = capsys.readouterr().out
    assert "Epoch 1/2" in printed and "Epoch 2/2" in printed
    assert "loss:" in printed and "step_length:" in printed


def test_final_weights_are_the_models_and_evaluate_agrees():
    model, x, y, history = small_problem(max_iterations=10)
    evaluated = model.evaluate(x, y, batch_size=len(x), verbose=0)
    assert evaluated == pytest.approx(history.history["loss"][-1], rel=1e-6)
    assert model.history is history


def test_docstring_example_runs():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(MODULE.minimize, "minimize", globs={}):
        runner.run(test)
    assert runner.summarize(verbose=False).attempted >= 6
    assert runner.summarize(verbose=False).failed == 0
