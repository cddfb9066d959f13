"""The lecture lab of the documentation (docs/lab.md): precomputed optimizer paths.

When the HTML site is built, this Sphinx extension moves two parameters with
each optimizer class of `keras_adaptive.optimizers` on each of the lectures'
2-D surfaces (`keras_adaptive.plotting.SURFACES`), for every learning rate
and momentum of the grid below, and writes the paths into the site as
``_static/lab_data.js``. The page's script, ``docs/_static/lab.js``, only
draws them: nothing of an optimizer is computed in the browser.

A path is that of `keras_adaptive.plotting.trace_optimizer` (the optimizer's
own update with the surface's analytic gradient, in float32), computed for
all surfaces at once in one compiled loop per optimizer and momentum, with
the learning rate an input of the compiled function: `jax.jit` of
``optimizer.stateless_apply`` on JAX, `tf.function(jit_compile=True)` of
``optimizer.apply`` on TensorFlow. A path stops at the first point outside
the plotted area widened by its size on each side (that point is moved back
onto the border along the last step), or before a non-finite point.

Coordinates are stored as integers on a ``QUANTUM`` x ``QUANTUM`` grid over
the plotted area (a point repeated on that grid is stored once), the units of
the page's SVG drawing. The contour lines are those of
`keras_adaptive.plotting.contour_grid`, traced by contourpy.

The data of a build are kept in ``docs/_build/lab/``, under a hash of the
package's sources, this file, the Keras version and the backend, and reused
while those are unchanged; the build copies them into the site.

Usage as a script (writes ``lab_data.js`` into OUT_DIR)::

    python docs/_ext/lecture_lab.py OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import ops

from keras_adaptive import optimizers, plotting

ROOT = Path(__file__).resolve().parents[2]

#: Grid cells per axis of the plotted area; the SVG drawing's units.
QUANTUM = 1000
#: How far (grid units) a simplified path or contour may be from the exact one.
PATH_TOLERANCE = 0.5
CONTOUR_TOLERANCE = 1.5
#: Contour levels drawn per surface.
CONTOUR_LEVELS = 16
#: The global that ``lab_data.js`` assigns, read by ``lab.js``.
DATA_GLOBAL = "KERAS_ADAPTIVE_LAB"
DATA_FILE = "lab_data.js"

#: How each surface is named on the page (button, caption), and its steps.
SURFACE_LABELS = {
    "quadratic": ("valley", "long valley 10θ₁² + 0.5θ₂²"),
    "saddle": ("saddle", "saddle point θ₁² − θ₂²"),
    "rosenbrock": ("Rosenbrock", "Rosenbrock's function (1 − θ₁)² + 100(θ₂ − θ₁²)²"),
    "beale": ("Beale", "Beale's function"),
}
STEPS = {"quadratic": 100, "saddle": 60, "rosenbrock": 1500, "beale": 400}


@dataclass(frozen=True)
class Grid:
    """The settings the page offers; every combination is computed."""

    surfaces: Sequence[str] = tuple(STEPS)
    optimizers: Sequence[str] = (
        "SGD",
        "Momentum",
        "Nesterov",
        "Adagrad",
        "RMSprop",
        "Adadelta",
        "Adam",
        "Adamax",
        "Nadam",
        "DeltaBarDelta",
        "Rprop",
    )
    #: 1e-4 to 10, four per decade.
    rates: Sequence[float] = tuple(10.0 ** (k / 4) for k in range(-16, 5))
    #: For the optimizers in `with_momentum`; the others keep their defaults.
    momenta: Sequence[float] = (0.5, 0.8, 0.9, 0.95, 0.99)
    with_momentum: Sequence[str] = ("Momentum", "Nesterov")
    steps: dict[str, int] = field(default_factory=lambda: dict(STEPS))


def _gradients(surfaces: Sequence[plotting.Surface], positions):
    """Each surface's analytic gradient at its row of ``positions`` (n, 2)."""
    rows = []
    for index, surface in enumerate(surfaces):
        gx, gy = surface.gradient(positions[index, 0], positions[index, 1])
        rows.append(ops.stack([gx, gy]))
    return ops.stack(rows)


def _learning_rate_index(optimizer: keras.optimizers.Optimizer) -> int:
    (index,) = [
        i for i, v in enumerate(optimizer.variables) if v is optimizer.learning_rate
    ]
    return index


def _compiled_runner(
    optimizer: keras.optimizers.Optimizer,
    surfaces: Sequence[plotting.Surface],
    steps: int,
) -> Callable[[float], np.ndarray]:
    """``rate -> positions (steps, n, 2)`` after each step, compiled once."""
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise RuntimeError(
            f"The lecture lab computes its paths with the JAX or TensorFlow backend; "
            f"this build uses KERAS_BACKEND={backend!r}. Build the documentation "
            "with KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow."
        )
    start = np.asarray([s.start for s in surfaces], dtype="float32")
    position = keras.Variable(start, name="theta")
    optimizer.build([position])
    initial = [np.asarray(ops.convert_to_numpy(v.value)) for v in optimizer.variables]
    if backend == "jax":
        import jax

        lr_index = _learning_rate_index(optimizer)

        def step(carry, _):
            theta, values = carry
            gradient = _gradients(surfaces, theta)
            (theta,), values = optimizer.stateless_apply(values, [gradient], [theta])
            return (theta, values), theta

        @jax.jit
        def run_jax(rate):
            values = list(initial)
            values[lr_index] = ops.cast(rate, initial[lr_index].dtype)
            _, positions = ops.scan(step, (start, values), length=steps)
            return positions

        return lambda rate: np.asarray(run_jax(np.float32(rate)))
    import tensorflow as tf

    # A callable object rather than a closure: TensorFlow counts traces
    # per code object and would warn of retracing, though every
    # optimizer's loop is a function of its own, traced once.
    loop = _TensorFlowLoop(optimizer, position, surfaces, steps)
    compiled = tf.function(loop, jit_compile=True)

    def run(rate):
        position.assign(start)
        for variable, value in zip(optimizer.variables, initial, strict=True):
            variable.assign(value)
        optimizer.learning_rate.assign(rate)
        return compiled().numpy()

    return run


class _TensorFlowLoop:
    """``steps`` steps of ``optimizer`` on ``position``; the points after each."""

    def __init__(self, optimizer, position, surfaces, steps):
        self.optimizer = optimizer
        self.position = position
        self.surfaces = surfaces
        self.steps = steps

    def __call__(self):
        def body(i, positions):
            gradient = _gradients(self.surfaces, self.position.value)
            self.optimizer.apply([gradient], [self.position])
            return ops.slice_update(positions, (i, 0, 0), self.position.value[None])

        initial = ops.zeros((self.steps, len(self.surfaces), 2))
        return ops.fori_loop(0, self.steps, body, initial)


def make_optimizer(name: str, rate: float, momentum: float | None):
    """The package's optimizer ``name``, with ``momentum`` where given."""
    cls = getattr(optimizers, name)
    if momentum is None:
        return cls(learning_rate=rate)
    return cls(learning_rate=rate, momentum=momentum)


def compute_paths(
    name: str,
    momentum: float | None,
    surfaces: Sequence[plotting.Surface],
    rates: Sequence[float],
    steps: int,
) -> np.ndarray:
    """Positions ``(len(rates), steps + 1, len(surfaces), 2)``, start included."""
    run = _compiled_runner(make_optimizer(name, rates[0], momentum), surfaces, steps)
    start = np.asarray([s.start for s in surfaces], dtype=np.float64)
    paths = np.empty((len(rates), steps + 1, len(surfaces), 2))
    for index, rate in enumerate(rates):
        paths[index, 0] = start
        paths[index, 1:] = run(rate)
    return paths


def _extent(surface: plotting.Surface) -> tuple[np.ndarray, np.ndarray]:
    low = np.array([surface.xlim[0], surface.ylim[0]], dtype=np.float64)
    size = np.array([surface.xlim[1], surface.ylim[1]], dtype=np.float64) - low
    return low, size


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the fewest points within ``tolerance`` of the line.

    A point is kept when it lies farther than ``tolerance`` from the chord
    between the kept points around it; the first and last are always kept.
    """
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    pending = [(0, len(points) - 1)]
    while pending:
        first, last = pending.pop()
        if last - first < 2:
            continue
        chord = points[last] - points[first]
        offsets = points[first + 1 : last] - points[first]
        length = math.hypot(*chord)
        if length == 0.0:
            distances = np.hypot(offsets[:, 0], offsets[:, 1])
        else:
            cross = chord[0] * offsets[:, 1] - chord[1] * offsets[:, 0]
            distances = np.abs(cross) / length
        farthest = int(np.argmax(distances))
        if distances[farthest] > tolerance:
            middle = first + 1 + farthest
            keep[middle] = True
            pending += [(first, middle), (middle, last)]
    return points[keep]


def quantize(
    surface: plotting.Surface, points: np.ndarray, tolerance: float = 0.0
) -> list[int]:
    """Points as flat ``[x0, y0, x1, y1, ...]`` grid integers.

    With a ``tolerance`` (in grid units) the line is first simplified
    (`simplify`); points repeated on the grid are stored once.
    """
    low, size = _extent(surface)
    scaled = (np.asarray(points, dtype=np.float64) - low) / size * QUANTUM
    if tolerance > 0 and len(scaled) > 2:
        scaled = simplify(scaled, tolerance)
    grid = np.rint(scaled).astype(np.int64)
    keep = np.ones(len(grid), dtype=bool)
    keep[1:] = np.any(grid[1:] != grid[:-1], axis=1)
    return grid[keep].ravel().tolist()


def _exit_point(inside: np.ndarray, outside: np.ndarray, low, high) -> np.ndarray:
    """Where the step from ``inside`` to ``outside`` crosses the box's border."""
    direction = outside - inside
    fractions = [1.0]
    for axis in range(2):
        if direction[axis] > 0:
            fractions.append((high[axis] - inside[axis]) / direction[axis])
        elif direction[axis] < 0:
            fractions.append((low[axis] - inside[axis]) / direction[axis])
    return inside + min(fractions) * direction


def describe_path(surface: plotting.Surface, path: np.ndarray) -> dict:
    """The page's record of one path: its grid points and how it ends.

    ``k`` is the number of steps drawn; ``out`` is true when the path left
    the widened area (or its next point was not finite) after ``k`` steps.
    ``end`` and ``f`` are the last point and the surface's value there.
    """
    low, size = _extent(surface)
    box_low, box_high = low - size, low + 2 * size
    finite = np.all(np.isfinite(path), axis=1)
    inside = finite & np.all((path >= box_low) & (path <= box_high), axis=1)
    left = not inside.all()
    if left:
        first_out = int(np.argmin(inside))
        drawn = path[:first_out]
        if finite[first_out]:
            exit_point = _exit_point(
                path[first_out - 1], path[first_out], box_low, box_high
            )
            drawn = np.concatenate([drawn, exit_point[None]])
        steps = first_out
    else:
        drawn, steps = path, len(path) - 1
    end = drawn[-1]
    return {
        "p": quantize(surface, drawn, PATH_TOLERANCE),
        "k": steps,
        "out": left,
        "end": [float(f"{c:.4g}") for c in end],
        "f": float(f"{float(surface.value(end[0], end[1])):.4g}"),
    }


def _contours(surface: plotting.Surface) -> list[list[int]]:
    """Contour lines of ``surface`` as flat grid-integer polylines."""
    import contourpy

    grid_x, grid_y, values, levels = plotting.contour_grid(
        surface, CONTOUR_LEVELS, resolution=241
    )
    generator = contourpy.contour_generator(grid_x, grid_y, values)
    lines = []
    for level in levels[1:]:
        for line in generator.lines(level):
            points = quantize(surface, line, CONTOUR_TOLERANCE)
            if len(points) >= 4:
                lines.append(points)
    return lines


def _ticks(low: float, high: float) -> list[float]:
    """Round tick values inside ``[low, high]``, about five of them."""
    raw = (high - low) / 5
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs(s - raw))
    first = math.ceil(low / step - 1e-9)
    count = math.floor(high / step + 1e-9) - first + 1
    return [round((first + i) * step, 10) for i in range(count)]


def _surface_record(surface: plotting.Surface) -> dict:
    low, size = _extent(surface)

    def axis_ticks(axis: int, limits: tuple[float, float]):
        return [
            [
                f"{value:g}".replace("-", "\N{MINUS SIGN}"),
                round((value - low[axis]) / size[axis] * QUANTUM),
            ]
            for value in _ticks(*limits)
        ]

    minimum = surface.minimum
    return {
        "name": surface.name,
        "short": SURFACE_LABELS[surface.name][0],
        "label": SURFACE_LABELS[surface.name][1],
        "start": quantize(surface, [surface.start]),
        "minimum": None if minimum is None else quantize(surface, [minimum]),
        "xticks": axis_ticks(0, surface.xlim),
        "yticks": axis_ticks(1, surface.ylim),
        "contours": _contours(surface),
    }


def lab_data(grid: Grid, log: Callable[[str], None] = lambda message: None) -> dict:
    """Every path of ``grid``, with what the page needs to draw them."""
    surfaces = [plotting.get_surface(name) for name in grid.surfaces]
    longest = max(grid.steps[s.name] for s in surfaces)
    paths: dict[str, dict[str, list[list[dict]]]] = {s.name: {} for s in surfaces}
    for name in grid.optimizers:
        momenta = grid.momenta if name in grid.with_momentum else (None,)
        for momentum in momenta:
            started = time.perf_counter()
            positions = compute_paths(name, momentum, surfaces, grid.rates, longest)
            for column, surface in enumerate(surfaces):
                rows = paths[surface.name].setdefault(name, [])
                steps = grid.steps[surface.name]
                rows.append(
                    [
                        describe_path(surface, positions[r, : steps + 1, column])
                        for r in range(len(grid.rates))
                    ]
                )
            log(
                f"lab: {name} (momentum {momentum}): {len(grid.rates)} rates in "
                f"{time.perf_counter() - started:.1f} s"
            )
    return {
        "rates": [float(f"{r:.6g}") for r in grid.rates],
        "momenta": list(grid.momenta),
        "steps": {s.name: grid.steps[s.name] for s in surfaces},
        "quantum": QUANTUM,
        "surfaces": [_surface_record(s) for s in surfaces],
        "optimizers": [
            {"name": name, "momentum": name in grid.with_momentum}
            for name in grid.optimizers
        ],
        "backend": keras.backend.backend(),
        "paths": paths,
    }


def write_data(data: dict, directory: Path) -> Path:
    """Write ``data`` as the script ``lab_data.js`` that sets the page's global."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    target = directory / DATA_FILE
    target.write_text(f"window.{DATA_GLOBAL}={text};\n", encoding="utf-8")
    return target


def _cache_key() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "keras_adaptive").rglob("*.py")):
        digest.update(path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(f"{keras.__version__} {keras.backend.backend()}".encode())
    return digest.hexdigest()[:16]


def _cache(app) -> Path:
    return Path(app.confdir) / "_build" / "lab" / _cache_key()


def _compute(app) -> None:
    """Computes the paths when the build starts, unless an earlier build did."""
    if app.builder.format != "html":
        return
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    cache = _cache(app)
    if (cache / DATA_FILE).exists():
        logger.info(f"lab: paths from {cache}")
        return
    started = time.perf_counter()
    write_data(lab_data(Grid(), log=logger.info), cache)
    logger.info(f"lab: paths computed in {time.perf_counter() - started:.1f} s")


def _copy_into_site(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / DATA_FILE).write_bytes((_cache(app) / DATA_FILE).read_bytes())


def setup(app):
    app.connect("builder-inited", _compute)
    app.connect("build-finished", _copy_into_site)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    out = write_data(lab_data(Grid(), log=print), Path(sys.argv[1]))
    print(f"wrote {out} ({out.stat().st_size} bytes)")
