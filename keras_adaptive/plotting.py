"""Pictures of the lectures: training curves and optimizer paths on 2-D surfaces.

``matplotlib`` (and Pillow, for GIFs) are imported only inside the functions
that draw, so importing this module costs nothing; install them with the
``plot`` extra.

The 2-D surfaces carry their analytic gradients, and :func:`trace_optimizer`
moves a ``keras.Variable`` with a real optimizer instance through
``optimizer.apply_gradients``, so the paths are those of the optimizer
classes themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from keras_adaptive._numpy import to_numpy
from keras_adaptive._validation import check_integer, refuse

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


#: matplotlib settings (``rcParams``) for a figure read on a documentation
#: page and on a phone: a figure 6.6 inches wide, saved at 120 dpi, is 792
#: pixels wide; shown about 740 pixels wide on a desktop page its 10-point
#: text is 15 pixels high, and about 8 on a phone's 390 pixels. Use as
#: ``with matplotlib.pyplot.rc_context(plotting.PAGE_STYLE):``.
PAGE_STYLE: dict[str, Any] = {
    "figure.figsize": (6.6, 5.0),
    "savefig.dpi": 120,
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 12,
}


@dataclass(frozen=True)
class Surface:
    r"""A 2-D test function with its gradient, a start point and a view window.

    The package's surfaces (see `get_surface`) are the lectures' long valley
    :math:`10\theta_1^2 + 0.5\theta_2^2`, the saddle
    :math:`\theta_1^2 - \theta_2^2`, Rosenbrock's
    :math:`(1 - \theta_1)^2 + 100 (\theta_2 - \theta_1^2)^2` and Beale's
    function.

    Attributes:
        name: the key in ``SURFACES``.
        title: the plot title (matplotlib mathtext).
        value: the function, vectorised over NumPy arrays ``(x, y)``.
        gradient: its analytic gradient at a point, ``(d/dx, d/dy)``.
        start: the start point of the paths.
        xlim: the plotted range of :math:`\theta_1`.
        ylim: the plotted range of :math:`\theta_2`.
        minimum: the minimum, or ``None`` (the saddle has none).
        log_levels: contour levels on a logarithmic scale.

    References:
        * H. H. Rosenbrock (1960), "An Automatic Method for Finding the Greatest
          or Least Value of a Function", The Computer Journal 3(3), 175-184.
        * E. M. L. Beale (1958), "On an Iterative Method for Finding a Local
          Minimum of a Function of More than One Variable", Technical Report 25,
          Statistical Techniques Research Group, Princeton University.
        * The long valley :math:`10\theta_1^2 + 0.5\theta_2^2` is the lecture's
          ("Deep Learning: Basic Training", fixed against adaptive learning
          rate); the saddle is that of "Behavior around a Saddle Point"
          (Neural Networks II).

    Example:
        >>> from keras_adaptive import plotting
        >>> valley = plotting.get_surface("quadratic")
        >>> valley.gradient(1.0, 1.0), valley.minimum
        ((20.0, 1.0), (0.0, 0.0))
    """

    name: str
    title: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gradient: Callable[[float, float], tuple[float, float]]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    minimum: tuple[float, float] | None
    log_levels: bool = False


def _quadratic(x, y):
    return 10.0 * x**2 + 0.5 * y**2


def _quadratic_gradient(x, y):
    return 20.0 * x, 1.0 * y


def _saddle(x, y):
    return x**2 - y**2


def _saddle_gradient(x, y):
    return 2.0 * x, -2.0 * y


def _rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _rosenbrock_gradient(x, y):
    return (
        -2.0 * (1.0 - x) - 400.0 * x * (y - x**2),
        200.0 * (y - x**2),
    )


def _beale(x, y):
    return (
        (1.5 - x + x * y) ** 2
        + (2.25 - x + x * y**2) ** 2
        + (2.625 - x + x * y**3) ** 2
    )


def _beale_gradient(x, y):
    a = 1.5 - x + x * y
    b = 2.25 - x + x * y**2
    c = 2.625 - x + x * y**3
    return (
        2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1),
        2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y**2,
    )


SURFACES: dict[str, Surface] = {
    "quadratic": Surface(
        name="quadratic",
        title=r"$10\,\theta_1^2 + 0.5\,\theta_2^2$",
        value=_quadratic,
        gradient=_quadratic_gradient,
        start=(-0.9, -2.8),
        xlim=(-1.2, 1.2),
        ylim=(-3.2, 3.2),
        minimum=(0.0, 0.0),
    ),
    "saddle": Surface(
        name="saddle",
        title=r"saddle point $\theta_1^2 - \theta_2^2$",
        value=_saddle,
        gradient=_saddle_gradient,
        start=(-1.5, 1e-3),
        xlim=(-1.6, 1.6),
        ylim=(-1.6, 1.6),
        minimum=None,
    ),
    "rosenbrock": Surface(
        name="rosenbrock",
        title=r"Rosenbrock $(1-\theta_1)^2 + 100(\theta_2-\theta_1^2)^2$",
        value=_rosenbrock,
        gradient=_rosenbrock_gradient,
        start=(-1.5, 2.0),
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        minimum=(1.0, 1.0),
        log_levels=True,
    ),
    "beale": Surface(
        name="beale",
        title="Beale",
        value=_beale,
        gradient=_beale_gradient,
        start=(1.0, 1.4),
        xlim=(-4.5, 4.5),
        ylim=(-4.5, 4.5),
        minimum=(3.0, 0.5),
        log_levels=True,
    ),
}


def get_surface(name: str) -> Surface:
    r"""Return the `Surface` called ``name``.

    Args:
        name: ``"quadratic"`` (the long valley), ``"saddle"``,
            ``"rosenbrock"`` or ``"beale"``.

    Returns:
        The `Surface`.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.

    References:
        * H. H. Rosenbrock (1960), "An Automatic Method for Finding the Greatest
          or Least Value of a Function", The Computer Journal 3(3), 175-184.
        * E. M. L. Beale (1958), "On an Iterative Method for Finding a Local
          Minimum of a Function of More than One Variable", Technical Report 25,
          Statistical Techniques Research Group, Princeton University.
        * The long valley :math:`10\theta_1^2 + 0.5\theta_2^2` is the lecture's
          ("Deep Learning: Basic Training", fixed against adaptive learning
          rate); the saddle is that of "Behavior around a Saddle Point"
          (Neural Networks II).

    Example:
        >>> from keras_adaptive import plotting
        >>> plotting.get_surface("rosenbrock").minimum
        (1.0, 1.0)
    """
    if name not in SURFACES:
        refuse("get_surface", "surface", name, f"one of {tuple(SURFACES)}")
    return SURFACES[name]


def trace_optimizer(
    optimizer: keras.optimizers.Optimizer,
    surface: Surface,
    steps: int,
    start: Sequence[float] | None = None,
    bound: float = 1e3,
) -> np.ndarray:
    r"""Run ``optimizer`` for ``steps`` steps on ``surface``; return the path.

    The parameters live in two scalar ``keras.Variable`` objects updated by
    ``optimizer.apply_gradients`` with the surface's analytic gradient, so the
    path is that of the optimizer class itself. The run stops early once a
    coordinate leaves ``[-bound, bound]`` or becomes non-finite (divergence).

    Args:
        optimizer: a Keras optimizer, new or already used.
        surface: the 2-D function.
        steps: the number of steps, an integer >= 0.
        start: the start point; default ``surface.start``.
        bound: the coordinate size at which the run counts as diverged.

    Returns:
        The path, of shape ``(k + 1, 2)``: the start and one row per step,
        ``k <= steps``.

    Raises:
        ValueError: for a bad ``steps``.

    References:
        * Lecture "Deep Learning: Basic Training": steps of gradient descent on
          :math:`10\theta_1^2 + 0.5\theta_2^2` with a fixed and an adaptive
          learning rate.
        * Lecture "Learning and Adaptivity" (Neural Networks II): "Behavior in
          a Long Valley", "Behavior around a Saddle Point".

    Example:
        On the valley gradient descent multiplies :math:`\theta_1` by
        :math:`1 - 20\eta` and :math:`\theta_2` by :math:`1 - \eta` each step:

        >>> from keras_adaptive import optimizers, plotting
        >>> valley = plotting.get_surface("quadratic")
        >>> path = plotting.trace_optimizer(optimizers.SGD(0.04), valley, steps=2)
        >>> path.round(4).tolist()
        [[-0.9, -2.8], [-0.18, -2.688], [-0.036, -2.5805]]
    """
    check_integer("trace_optimizer", "steps", steps, 0)
    x0, y0 = surface.start if start is None else start
    theta = [
        keras.Variable(np.float32(x0), name="theta_1"),
        keras.Variable(np.float32(y0), name="theta_2"),
    ]
    path = [(float(x0), float(y0))]
    for _ in range(steps):
        x, y = (float(to_numpy(v)) for v in theta)
        gx, gy = surface.gradient(x, y)
        grads = [keras.ops.convert_to_tensor(np.float32(g)) for g in (gx, gy)]
        optimizer.apply_gradients(zip(grads, theta, strict=True))
        point = tuple(float(to_numpy(v)) for v in theta)
        path.append(point)
        if not all(np.isfinite(p) and abs(p) <= bound for p in point):
            break
    return np.asarray(path, dtype=np.float64)


def contour_grid(
    surface: Surface, count: int = 25, resolution: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The values of ``surface`` on a grid over its view, and contour levels.

    The levels are evenly spaced from the smallest to the largest value, or,
    for a surface with ``log_levels`` (Rosenbrock's and Beale's), spaced
    geometrically from the smallest value (at least 0.01) to the 95th
    percentile, so that the flat valley floor gets lines too. The figures of
    this module and the documentation's lecture lab draw these contours.

    Args:
        surface: the 2-D function.
        count: the number of levels.
        resolution: grid points per axis.

    Returns:
        ``(grid_x, grid_y, values, levels)``: the coordinate grids and the
        values, each of shape ``(resolution, resolution)``, and the
        ``count`` increasing levels.

    References:
        Lecture "Learning and Adaptivity" (Neural Networks II): the error
        surface drawn as contour lines with the path of the weights on top.

    Example:
        >>> from keras_adaptive import plotting
        >>> valley = plotting.get_surface("quadratic")
        >>> x, y, values, levels = plotting.contour_grid(valley, count=5)
        >>> values.shape, levels.round(1).tolist()
        ((300, 300), [0.0, 4.9, 9.8, 14.6, 19.5])
    """
    check_integer("contour_grid", "count", count, 2)
    check_integer("contour_grid", "resolution", resolution, 2)
    xs = np.linspace(*surface.xlim, resolution)
    ys = np.linspace(*surface.ylim, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    values = surface.value(grid_x, grid_y)
    if surface.log_levels:
        low = max(float(values.min()), 1e-2)
        levels = np.geomspace(low, float(np.quantile(values, 0.95)), count)
    else:
        levels = np.linspace(float(values.min()), float(values.max()), count)
    return grid_x, grid_y, values, levels


def plot_histories(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    metric: str,
    *,
    ylabel: str | None = None,
    title: str | None = None,
    log_scale: bool = False,
    path: str | os.PathLike | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot ``metric`` against epochs, one line per history.

    Args:
        histories: maps a label (e.g. the optimizer name) to a Keras
            ``History.history``-like dict of per-epoch lists.
        metric: key to plot, e.g. ``"loss"`` or ``"val_accuracy"``.
        ylabel: y-axis label; defaults to ``metric``.
        title: figure title.
        log_scale: logarithmic y axis (the usual view of training cost).
        path: where to save the PNG, if given.
        ax: axes to draw into; a new figure otherwise.

    Returns:
        The matplotlib figure.

    Raises:
        ValueError: when no history has ``metric``.

    References:
        D. P. Kingma and J. Ba (2015), "Adam: A Method for Stochastic
        Optimization", ICLR, Figure 2 (training cost of optimizers on MNIST
        against epochs).

    Example:
        >>> from keras_adaptive import plotting
        >>> histories = {"SGD": {"loss": [1.0, 0.5, 0.3]},
        ...              "Adam": {"loss": [0.8, 0.2, 0.1]}}
        >>> figure = plotting.plot_histories(histories, "loss", log_scale=True)
        >>> [line.get_label() for line in figure.axes[0].lines]
        ['SGD', 'Adam']
        >>> import matplotlib.pyplot as plt
        >>> plt.close(figure)
    """
    plt = _pyplot()
    fig, ax = _figure_and_axes(plt, ax, figsize=(7.0, 4.5))
    drawn = 0
    for index, (label, history) in enumerate(histories.items()):
        values = [float(v) for v in history.get(metric, [])]
        if not values:
            continue
        epochs = np.arange(1, len(values) + 1)
        ax.plot(
            epochs,
            values,
            marker=_MARKERS[index % len(_MARKERS)],
            markersize=4,
            linewidth=1.6,
            label=label,
            color=_color(plt, index),
        )
        drawn += 1
    if drawn == 0:
        raise ValueError(
            f"metric={metric!r} is in none of the histories; "
            f"available: {sorted({k for h in histories.values() for k in h})}"
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or metric)
    if log_scale:
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncols=2 if drawn > 5 else 1)
    if title:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_trajectories(
    surface: Surface,
    trajectories: Mapping[str, np.ndarray],
    *,
    title: str | None = None,
    colors: Mapping[str, Any] | None = None,
    legend: bool = True,
    path: str | os.PathLike | None = None,
    ax: Axes | None = None,
) -> Figure:
    r"""Draw ``surface``'s contours and each optimizer's path on top.

    Paths often run on top of each other (gradient descent and momentum down
    the same valley floor, Adam and its variants), so the paths of one axes
    take turns in line style as well as colour: a wide solid line drawn
    first, a narrower dashed one above it, a dotted one on top, and again.
    Each path ends in a dot whose size follows the same turn, so that dots
    at the same point show as rings. The legend goes below the axes, where
    it covers no path.

    Args:
        surface: the 2-D function.
        trajectories: maps a label to an array of shape ``(k, 2)``, e.g. from
            `trace_optimizer`.
        title: axes title; defaults to the surface's.
        colors: optional matplotlib colour per label (default: ``tab10``).
        legend: draw the legend below the axes (``False``: none, e.g. to
            draw one legend for several axes with ``Figure.legend``).
        path: where to save the PNG, if given.
        ax: axes to draw into; a new figure otherwise.

    Returns:
        The matplotlib figure.

    References:
        * Lecture "Deep Learning: Basic Training": steps of gradient descent on
          :math:`10\theta_1^2 + 0.5\theta_2^2` with a fixed and an adaptive
          learning rate.
        * Lecture "Learning and Adaptivity" (Neural Networks II): "Behavior in
          a Long Valley", "Behavior around a Saddle Point".

    Example:
        >>> from keras_adaptive import optimizers, plotting
        >>> saddle = plotting.get_surface("saddle")
        >>> paths = {name: plotting.trace_optimizer(cls(0.05), saddle, steps=20)
        ...          for name, cls in [("SGD", optimizers.SGD),
        ...                            ("RMSprop", optimizers.RMSprop)]}
        >>> figure = plotting.plot_trajectories(saddle, paths)
        >>> [(line.get_label(), line.get_linestyle())
        ...  for line in figure.axes[0].lines]
        [('SGD', '-'), ('RMSprop', '--'), ('start', 'None')]
        >>> import matplotlib.pyplot as plt
        >>> plt.close(figure)
    """
    plt = _pyplot()
    fig, ax = _figure_and_axes(plt, ax, figsize=(7.0, 6.0))
    _contours(ax, surface)
    for index, (label, points) in enumerate(trajectories.items()):
        points = np.asarray(points, dtype=float)
        color = colors[label] if colors else _color(plt, index)
        ax.plot(
            points[:, 0], points[:, 1], label=label, color=color, **_path_style(index)
        )
    _mark_start_and_minimum(ax, surface)
    _decorate(ax, surface, title)
    if legend:
        _legend_below(ax)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def animate_trajectories(
    surface: Surface,
    trajectories: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    fps: int = 12,
    max_frames: int = 60,
    dpi: int = 72,
) -> bool:
    r"""Write an animated GIF of the paths growing step by step.

    At most ``max_frames`` frames are drawn (longer paths advance several
    steps per frame).

    Args:
        surface: the 2-D function.
        trajectories: maps a label to an array of shape ``(k, 2)``.
        path: the GIF file to write.
        title: axes title; defaults to the surface's.
        fps: frames per second.
        max_frames: the most frames drawn.
        dpi: resolution of the frames.

    Returns:
        ``True``, or ``False`` (and nothing written) when Pillow is not
        installed.

    References:
        * Lecture "Deep Learning: Basic Training": steps of gradient descent on
          :math:`10\theta_1^2 + 0.5\theta_2^2` with a fixed and an adaptive
          learning rate.
        * Lecture "Learning and Adaptivity" (Neural Networks II): "Behavior in
          a Long Valley", "Behavior around a Saddle Point".

    Example:
        >>> import os, tempfile
        >>> from keras_adaptive import optimizers, plotting
        >>> valley = plotting.get_surface("quadratic")
        >>> path = plotting.trace_optimizer(optimizers.Adam(0.1), valley, steps=10)
        >>> gif = os.path.join(tempfile.mkdtemp(), "adam.gif")
        >>> plotting.animate_trajectories(valley, {"Adam": path}, gif, max_frames=3)
        True
    """
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    plt = _pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = plt.subplots(figsize=(6.0, 6.2), layout="constrained")
    _contours(ax, surface, count=12)
    arrays = {k: np.asarray(v, dtype=float) for k, v in trajectories.items()}
    longest = max(len(points) for points in arrays.values())
    stride = max(1, int(np.ceil(longest / max_frames)))
    lines = []
    for index, label in enumerate(arrays):
        style = dict(_path_style(index), markevery=None, markersize=2.5)
        style["markeredgewidth"] = 0.0
        (line,) = ax.plot([], [], label=label, color=_color(plt, index), **style)
        lines.append(line)
    _mark_start_and_minimum(ax, surface)
    _decorate(ax, surface, title)
    _legend_below(ax)
    frames = list(range(1, longest + 1, stride))
    if frames[-1] != longest:
        frames.append(longest)

    def update(frame: int) -> list[Any]:
        for line, points in zip(lines, arrays.values(), strict=True):
            line.set_data(points[:frame, 0], points[:frame, 1])
        return lines

    animation = FuncAnimation(fig, update, frames=frames, blit=False)
    animation.save(path, writer=PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    return True


_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "*")


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _figure_and_axes(plt, ax, figsize: tuple[float, float]):
    """`ax` and its figure, or the axes of a new figure of `figsize`."""
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize, layout="constrained")


def _color(plt, index: int):
    return plt.get_cmap("tab10")(index % 10)


def _contours(ax: Axes, surface: Surface, count: int = 25) -> None:
    grid_x, grid_y, values, levels = contour_grid(surface, count)
    ax.contour(grid_x, grid_y, values, levels=levels, cmap="Greys", linewidths=0.6)


def _decorate(ax: Axes, surface: Surface, title: str | None) -> None:
    ax.set_xlim(*surface.xlim)
    ax.set_ylim(*surface.ylim)
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.set_title(title or surface.title)


#: Line style, line width and end-dot size of a panel's paths, in turn.
_PATH_STYLES = (("-", 3.4, 10.0), ("--", 2.2, 7.0), (":", 2.6, 4.5))


def _path_style(index: int) -> dict[str, Any]:
    """The index-th path's style: wide solid lines under dashed and dotted."""
    turn = index % len(_PATH_STYLES)
    linestyle, width, dot = _PATH_STYLES[turn]
    return {
        "linestyle": linestyle,
        "linewidth": width,
        "dash_capstyle": "round",
        "marker": "o",
        "markevery": [-1],
        "markersize": dot,
        "markeredgecolor": "white",
        "markeredgewidth": 0.8,
        "zorder": 2.0 + 0.1 * turn,
    }


def _mark_start_and_minimum(ax: Axes, surface: Surface) -> None:
    ax.plot(*surface.start, "ks", ms=7, label="start", zorder=3)
    if surface.minimum is not None:
        ax.plot(*surface.minimum, "k*", ms=13, label="minimum", zorder=3)


def _legend_below(ax: Axes) -> None:
    """The legend under the axes' tick labels and x label; over 4 entries, 2 columns."""
    from matplotlib.transforms import offset_copy

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    below = ax.get_window_extent(renderer).y0 - ax.xaxis.get_tightbbox(renderer).y0
    count = len(ax.get_legend_handles_labels()[1])
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=offset_copy(
            ax.transAxes, fig=fig, y=-(below * 72 / fig.dpi + 2), units="points"
        ),
        ncols=1 if count <= 4 else 2,
        frameon=False,
    )


__all__ = [
    "PAGE_STYLE",
    "Surface",
    "animate_trajectories",
    "contour_grid",
    "get_surface",
    "plot_histories",
    "plot_trajectories",
    "trace_optimizer",
]
