"""keras_adaptive.plotting: surfaces, optimizer paths and the figures."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_adaptive import optimizers, plotting

matplotlib = pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name", sorted(plotting.SURFACES))
def test_surface_gradients_match_finite_differences(name):
    surface = plotting.get_surface(name)
    rng = np.random.default_rng(0)
    h = 1e-6
    for _ in range(5):
        x = rng.uniform(*surface.xlim) * 0.5
        y = rng.uniform(*surface.ylim) * 0.5
        gx, gy = surface.gradient(x, y)
        fx = (surface.value(x + h, y) - surface.value(x - h, y)) / (2 * h)
        fy = (surface.value(x, y + h) - surface.value(x, y - h)) / (2 * h)
        np.testing.assert_allclose([gx, gy], [fx, fy], rtol=1e-5, atol=1e-5)


def test_unknown_surface_is_a_value_error():
    with pytest.raises(
        ValueError,
        match=r"^get_surface: `surface` must be one of .*'quadratic'.*; "
        r"received surface='bowl'",
    ):
        plotting.get_surface("bowl")


def test_sgd_path_on_the_valley_is_gradient_descent():
    surface = plotting.get_surface("quadratic")
    lr = 0.05
    path = plotting.trace_optimizer(optimizers.SGD(learning_rate=lr), surface, 30)
    t = np.arange(31)
    x0, y0 = surface.start
    # theta_1 <- (1 - 20 lr) theta_1, theta_2 <- (1 - lr) theta_2
    expected = np.stack([x0 * (1 - 20 * lr) ** t, y0 * (1 - lr) ** t], axis=1)
    np.testing.assert_allclose(path, expected, rtol=2e-5, atol=1e-7)


def test_momentum_path_follows_the_heavy_ball_recursion():
    surface = plotting.get_surface("saddle")
    lr, mu = 0.02, 0.9
    path = plotting.trace_optimizer(
        optimizers.Momentum(learning_rate=lr, momentum=mu), surface, 25
    )
    theta = np.array(surface.start, dtype=np.float64)
    velocity = np.zeros(2)
    expected = [theta.copy()]
    for _ in range(25):
        velocity = mu * velocity - lr * np.array(surface.gradient(*theta))
        theta = theta + velocity
        expected.append(theta.copy())
    np.testing.assert_allclose(path, np.array(expected), rtol=1e-4, atol=1e-6)


def test_diverging_path_stops_at_the_bound():
    surface = plotting.get_surface("quadratic")
    path = plotting.trace_optimizer(
        optimizers.SGD(learning_rate=0.2), surface, 500, bound=100.0
    )
    # theta_1 is multiplied by 1 - 20 * 0.2 = -3 per step: |0.9 * 3^k| > 100 at k=5
    assert len(path) == 6
    assert abs(path[-1, 0]) > 100 >= abs(path[-2, 0])


def test_trace_optimizer_rejects_bad_steps():
    with pytest.raises(
        ValueError,
        match=r"^trace_optimizer: `steps` must be an integer >= 0; received steps=-1",
    ):
        plotting.trace_optimizer(
            optimizers.SGD(), plotting.get_surface("quadratic"), -1
        )


def _decoded(path):
    with Image.open(path) as image:
        image.load()
        return image.size, getattr(image, "n_frames", 1)


def test_plot_histories_labels_axes_and_legend(tmp_path):
    import matplotlib.pyplot as plt

    histories = {
        "Adam": {"loss": [0.5, 0.2, 0.1], "val_accuracy": [0.9, 0.95, 0.96]},
        "SGD": {"loss": [1.0, 0.6, 0.4], "val_accuracy": [0.8, 0.85, 0.88]},
    }
    fig = plotting.plot_histories(
        histories,
        "loss",
        ylabel="training cost",
        log_scale=True,
        path=tmp_path / "a.png",
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "training cost"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Adam", "SGD"]
    assert ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [1.0, 0.6, 0.4])
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), [1, 2, 3])
    plt.close(fig)
    (width, height), _ = _decoded(tmp_path / "a.png")
    assert width > 400 and height > 300


def test_plot_histories_rejects_an_absent_metric():
    with pytest.raises(ValueError, match=r"metric='val_loss'.*\['loss'\]"):
        plotting.plot_histories({"Adam": {"loss": [1.0]}}, "val_loss")


def test_trajectory_plot_and_animation(tmp_path):
    import matplotlib.pyplot as plt

    surface = plotting.get_surface("saddle")
    paths = {
        "SGD": plotting.trace_optimizer(optimizers.SGD(learning_rate=0.05), surface, 8),
        "Adam": plotting.trace_optimizer(
            optimizers.Adam(learning_rate=0.05), surface, 12
        ),
    }
    fig = plotting.plot_trajectories(surface, paths, path=tmp_path / "t.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"$\theta_1$" and ax.get_ylabel() == r"$\theta_2$"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["SGD", "Adam", "start"]
    # The legend lies below the axes, their tick labels and x label: it
    # covers no path.
    renderer = fig.canvas.get_renderer()
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.y1 <= ax.xaxis.get_tightbbox(renderer).y0
    assert legend_box.y1 < ax.get_window_extent(renderer).y0
    plt.close(fig)
    assert _decoded(tmp_path / "t.png")[0][0] > 400
    assert plotting.animate_trajectories(surface, paths, tmp_path / "t.gif")
    assert _decoded(tmp_path / "t.gif")[1] == 13  # one frame per point


def test_paths_that_coincide_are_told_apart_by_line_style():
    import matplotlib.pyplot as plt

    surface = plotting.get_surface("rosenbrock")
    path = plotting.trace_optimizer(optimizers.SGD(learning_rate=1e-4), surface, 5)
    names = ["SGD", "Momentum", "Nesterov", "Adam"]
    fig = plotting.plot_trajectories(surface, dict.fromkeys(names, path))
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    styles = [lines[name].get_linestyle() for name in names]
    assert styles == ["-", "--", ":", "-"]
    widths = [lines[name].get_linewidth() for name in names[:3]]
    # The solid line is the widest and lies under the dashed and dotted ones,
    # whose gaps show it; the end dots shrink in turn, so they form rings.
    assert widths[0] > max(widths[1:])
    assert [lines[n].get_zorder() for n in names[:3]] == sorted(
        lines[n].get_zorder() for n in names[:3]
    )
    dots = [lines[name].get_markersize() for name in names[:3]]
    assert dots == sorted(dots, reverse=True) and len(set(dots)) == 3
    np.testing.assert_array_equal(lines["Nesterov"].get_xydata(), path)
    plt.close(fig)


def test_page_style_text_is_legible_on_a_phone():
    """Every text of a PAGE_STYLE figure is at least 8 px on a 390 px screen."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    surface = plotting.get_surface("quadratic")
    paths = {
        "SGD": plotting.trace_optimizer(optimizers.SGD(0.05), surface, 10),
        "Adam": plotting.trace_optimizer(optimizers.Adam(0.1), surface, 10),
    }
    with plt.rc_context(plotting.PAGE_STYLE):
        fig, axes = plt.subplots(1, 2, layout="constrained")
        for ax in axes:
            plotting.plot_trajectories(surface, paths, ax=ax)
        dpi = plt.rcParams["savefig.dpi"]
    width_px = fig.get_figwidth() * dpi
    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert len(texts) > 20  # ticks, labels, titles, legends
    smallest = min(t.get_fontsize() for t in texts) * dpi / 72 * 390 / width_px
    assert smallest >= 8.0, smallest
    plt.close(fig)


def _module_level_imports(module):
    tree = ast.parse(Path(module.__file__).read_text())
    names = set()
    for node in tree.body:  # statements run at import time, not inside functions
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_library_modules_import_matplotlib_and_tfds_only_when_used():
    from keras_adaptive import datasets

    for module in (plotting, datasets):
        imported = _module_level_imports(module)
        assert "matplotlib" not in imported and "tensorflow_datasets" not in imported
        assert "PIL" not in imported
    code = (
        "import sys, keras_adaptive.plotting, keras_adaptive.datasets; "
        "print('tensorflow_datasets' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
