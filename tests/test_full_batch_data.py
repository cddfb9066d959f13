"""`minimize` takes data as `fit` does: arrays, dicts, a `tf.data.Dataset`,
a `keras.utils.PyDataset` and finite generators, summed exactly over their
batches; clear errors (naming the parameter, the value and what is valid)
for everything else, and for a model without a loss on every backend.

Every source yields the same 64 samples in batches of 24, 24 and 16; its run
must equal the run on the arrays cut into the same chunks, and the whole
batch's run within float32 rounding. The initial loss is checked against a
float64 NumPy mean squared error.
"""

import keras
import numpy as np
import pytest

import keras_adaptive as ka

SAMPLES, BATCH = 64, 24
START = [
    np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]], "float32"),
    np.array([0.1, -0.1], "float32"),
]


def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, 3)).astype("float32")
    y = (x @ rng.standard_normal((3, 2)) + rng.standard_normal((SAMPLES, 2))).astype(
        "float32"
    )
    weight = rng.uniform(0.2, 3.0, SAMPLES).astype("float32")
    return x, y, weight


def expected_initial_loss(x, y, weight):
    kernel, bias = (w.astype(np.float64) for w in START)
    per_sample = np.mean((x.astype(np.float64) @ kernel + bias - y) ** 2, axis=1)
    return np.sum(weight * per_sample) / len(x)


def regression(named_input=False):
    inputs = keras.Input((3,), name="features")
    model = keras.Model(
        {"features": inputs} if named_input else inputs, keras.layers.Dense(2)(inputs)
    )
    model.set_weights(START)
    model.compile(loss="mse")
    return model


def run(data, model=None, **kwargs):
    model = model or regression()
    history = ka.minimize(model, *data, max_iterations=4, gtol=0.0, **kwargs)
    return history, model.get_weights()


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, weight, batches=None):
        super().__init__()
        self.data = (x, y, weight)
        self.batches = batches

    @property
    def num_batches(self):
        return self.batches

    def __getitem__(self, index):
        rows = slice(index * BATCH, (index + 1) * BATCH)
        return tuple(part[rows] for part in self.data)


def generator(x, y, weight):
    for start in range(0, len(x), BATCH):
        rows = slice(start, start + BATCH)
        yield x[rows], y[rows], weight[rows]


def tf_dataset(x, y, weight):
    tf = pytest.importorskip("tensorflow")
    return tf.data.Dataset.from_tensor_slices((x, y, weight)).batch(BATCH)


SOURCES = {
    "tf.data.Dataset": tf_dataset,
    "PyDataset": lambda x, y, w: Batches(x, y, w, batches=3),
    "generator": generator,
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_a_source_of_batches_equals_the_array_run(source):
    x, y, weight = problem()
    chunked, chunked_weights = run((x, y), sample_weight=weight, chunk_size=BATCH)
    whole, whole_weights = run((x, y), sample_weight=weight)
    history, weights = run((SOURCES[source](x, y, weight),))
    expected = expected_initial_loss(x, y, weight)
    assert history.initial_loss == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(
        history.history["loss"], chunked.history["loss"], rtol=1e-6
    )
    np.testing.assert_allclose(
        history.history["loss"], whole.history["loss"], rtol=2e-5
    )
    for ours, same_chunks, one_chunk in zip(
        weights, chunked_weights, whole_weights, strict=True
    ):
        np.testing.assert_allclose(ours, same_chunks, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ours, one_chunk, rtol=1e-4, atol=1e-5)


def test_a_dict_of_inputs_equals_the_array_run():
    x, y, weight = problem()
    whole, whole_weights = run((x, y), sample_weight=weight)
    history, weights = run(
        ({"features": x}, y), model=regression(named_input=True), sample_weight=weight
    )
    np.testing.assert_allclose(
        history.history["loss"], whole.history["loss"], rtol=1e-6
    )
    for ours, reference in zip(weights, whole_weights, strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-7)


def test_steps_reads_the_first_batches_of_an_infinite_data_set():
    tf = pytest.importorskip("tensorflow")
    x, y, weight = problem()
    endless = tf.data.Dataset.from_tensor_slices((x, y, weight)).batch(BATCH).repeat()
    with pytest.raises(
        ValueError, match=r"`x` is an infinite _?\w*Dataset.*steps=None.*Pass steps="
    ):
        run((endless,))
    history, _ = run((endless,), steps=2)
    rows = slice(0, 2 * BATCH)
    expected = expected_initial_loss(x[rows], y[rows], weight[rows])
    assert history.initial_loss == pytest.approx(expected, rel=1e-6)


def test_an_infinite_py_dataset_is_refused():
    x, y, weight = problem()
    with pytest.raises(ValueError, match=r"`x` is an infinite Batches.*steps=None"):
        run((Batches(x, y, weight, batches=None),))
    history, _ = run((Batches(x, y, weight, batches=None),), steps=1)
    rows = slice(0, BATCH)
    expected = expected_initial_loss(x[rows], y[rows], weight[rows])
    assert history.initial_loss == pytest.approx(expected, rel=1e-6)


def test_a_model_compiled_without_a_loss_is_refused():
    x, y, _ = problem()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd")
    for function in (ka.minimize, ka.hessian_vector_product):
        with pytest.raises(
            ValueError, match=r"`model` must be compiled with a loss.*loss=None"
        ):
            function(model, x, y)


class Autoencoder(keras.Sequential):
    """Its loss compares the outputs with the inputs: it needs no targets."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        return keras.ops.mean((y_pred - x) ** 2)


def test_targets_may_be_left_out_only_where_the_loss_needs_none():
    x, _, _ = problem()
    model = Autoencoder([keras.Input((3,)), keras.layers.Dense(3)])
    model.compile()
    history = ka.minimize(model, x, max_iterations=3)
    assert history.history["loss"][-1] < history.initial_loss
    with pytest.raises(
        ValueError,
        match=r"`y` must hold the targets of the compiled loss \(mse\).*y=None",
    ):
        ka.minimize(regression(), x)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "message"),
    [
        (
            [[0.0, 1.0, 2.0], [1.0, 2.0]],
            None,
            {},
            r"`x` must be an array.*list holding float elements.*numpy.asarray\(x\)",
        ),
        (
            [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]],
            np.zeros((2, 2)),
            {},
            r"`x` must be an array.*A list of Python lists is not an array",
        ),
        (
            [np.zeros((2, 3)), np.zeros((2, 2, 1), object)],
            np.zeros((2, 2)),
            {},
            r"`x` must be an array",
        ),
        (np.zeros((4, 3)), np.zeros((3, 2)), {}, r"`y` must have as many samples"),
        (np.zeros((4, 3)), np.zeros((4, 2)), {"steps": 2}, r"`steps` applies only"),
        (
            "generator",
            np.zeros((4, 2)),
            {},
            r"`y` must be None when `x` is a generator.*received y=",
        ),
        (
            "generator",
            None,
            {"chunk_size": 8},
            r"`chunk_size` must be None when `x` is a generator.*chunk_size=8",
        ),
        ("generator", None, {"steps": 9}, r"`steps` must be at most.*ended after 3"),
    ],
    ids=[
        "ragged",
        "list of lists",
        "object array",
        "lengths",
        "steps for arrays",
        "y with a generator",
        "chunk_size with a generator",
        "too many steps",
    ],
)
def test_bad_data_raises_naming_the_parameter(x, y, kwargs, message):
    if isinstance(x, str):
        x = generator(*problem())
    with pytest.raises(ValueError, match=message):
        ka.minimize(regression(), x, y, **kwargs)
