"""The lecture lab (docs/lab.md): its precomputed paths, and the page in Chromium.

The paths come from `docs/_ext/lecture_lab.py`, the Sphinx extension that the
documentation build runs. Its compiled loop is checked against gradient
descent's closed form and against `plotting.trace_optimizer` (the eager,
step-by-step path of the same class), and its clipping of a diverging path
against the border computed here.

The browser test computes a small grid with the same code, writes the
page's HTML block from docs/lab.md beside `lab.js`, `lab.css` and the data
file, and opens it from a file:// URL in Debian's headless Chromium through
its chromedriver (both given by path: nothing is downloaded). It reads the
browser's console and network logs, moves the learning-rate and momentum
sliders with the keyboard, switches the surface and an optimizer by
clicking, and compares every drawn polyline with the stored path of the
setting. It runs in the TensorFlow pass only (marker ``browser``) and skips
where Chromium or chromedriver is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_adaptive import plotting

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
BACKEND = keras.backend.backend()


def _load_lab():
    spec = importlib.util.spec_from_file_location(
        "lecture_lab", DOCS / "_ext" / "lecture_lab.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lecture_lab", module)
    spec.loader.exec_module(module)
    return module


lab = _load_lab()
compiles = pytest.mark.skipif(
    BACKEND == "torch",
    reason="the lab computes its paths with the JAX or TensorFlow backend",
)
VALLEY = plotting.get_surface("quadratic")
ROSENBROCK = plotting.get_surface("rosenbrock")


@compiles
def test_compiled_sgd_paths_follow_gradient_descent_on_the_valley():
    rates = (0.01, 0.05, 0.09)
    paths = lab.compute_paths("SGD", None, [VALLEY], rates, steps=40)
    t = np.arange(41)[:, None]
    x0, y0 = VALLEY.start
    for index, rate in enumerate(rates):
        # theta_1 <- (1 - 20 rate) theta_1, theta_2 <- (1 - rate) theta_2
        expected = np.hstack([x0 * (1 - 20 * rate) ** t, y0 * (1 - rate) ** t])
        np.testing.assert_allclose(paths[index, :, 0], expected, rtol=2e-5, atol=2e-7)


@compiles
@pytest.mark.parametrize(
    ("name", "momentum", "rate"),
    [("Momentum", 0.9, 3e-4), ("Adam", None, 0.05), ("Rprop", None, 0.01)],
)
def test_compiled_paths_equal_the_step_by_step_paths(name, momentum, rate):
    """All surfaces at once, the rate an input: the same path as one at a time."""
    surfaces = [VALLEY, ROSENBROCK]
    paths = lab.compute_paths(name, momentum, surfaces, (rate / 10, rate), steps=30)
    for column, surface in enumerate(surfaces):
        optimizer = lab.make_optimizer(name, rate, momentum)
        eager = plotting.trace_optimizer(optimizer, surface, 30)
        np.testing.assert_allclose(paths[1, :, column], eager, rtol=1e-5, atol=1e-6)
    assert not np.allclose(paths[0], paths[1])


@pytest.mark.skipif(BACKEND != "torch", reason="the error of the PyTorch backend")
def test_the_lab_names_the_backends_it_computes_with():
    with pytest.raises(RuntimeError, match=r"KERAS_BACKEND='torch'.*jax.*tensorflow"):
        lab.compute_paths("SGD", None, [VALLEY], (0.01,), steps=2)


def test_a_diverging_path_ends_on_the_border_of_the_widened_area():
    # SGD at rate 0.2 on the valley: theta_1 <- -3 theta_1, theta_2 <- 0.8 theta_2.
    t = np.arange(6)[:, None]
    path = np.hstack([-0.9 * (-3.0) ** t, -2.8 * 0.8**t])
    record = lab.describe_path(VALLEY, path)
    # The plot spans theta_1 in [-1.2, 1.2]: widened, [-3.6, 3.6]; step 2
    # reaches -8.1, so the path is cut where step 2 crosses theta_1 = -3.6.
    assert record["k"] == 2 and record["out"]
    fraction = (-3.6 - 2.7) / (-8.1 - 2.7)
    border = np.array([2.7, -2.24]) + fraction * np.array([-10.8, 2.24 * 0.2])
    np.testing.assert_allclose(record["end"], border, rtol=1e-3)
    expected = np.rint(
        (np.vstack([path[:2], border]) - [-1.2, -3.2]) / [2.4, 6.4] * 1000
    )
    assert record["p"] == expected.astype(int).ravel().tolist()


def test_a_converging_path_keeps_every_visible_turn():
    rate = 0.09  # gradient descent zig-zags across the valley
    t = np.arange(101)[:, None]
    path = np.hstack([-0.9 * (1 - 20 * rate) ** t, -2.8 * (1 - rate) ** t])
    record = lab.describe_path(VALLEY, path)
    assert record["k"] == 100 and not record["out"]
    assert record["f"] == pytest.approx(VALLEY.value(*path[-1]), rel=1e-3)
    points = np.reshape(record["p"], (-1, 2))
    exact = (path - [-1.2, -3.2]) / [2.4, 6.4] * 1000
    # Every stored point is an exact point rounded to the grid ...
    distances = np.abs(points[:, None, :] - exact[None, :, :]).max(axis=2)
    assert distances.min(axis=1).max() <= 0.5
    # ... and every exact point lies within the tolerance of the stored line
    # (plus the rounding to the grid).
    for point in exact:
        assert _distance_to_polyline(point, points) <= lab.PATH_TOLERANCE + 0.71


def _distance_to_polyline(point, vertices):
    best = np.inf
    for a, b in zip(vertices[:-1], vertices[1:], strict=True):
        segment = b - a
        length = float(segment @ segment)
        t = 0.0 if length == 0 else np.clip((point - a) @ segment / length, 0, 1)
        best = min(best, float(np.hypot(*(a + t * segment - point))))
    return best


def test_simplify_drops_points_on_a_line_and_keeps_corners():
    line = np.array([[0, 0], [1, 0.1], [2, 0], [3, 5], [4, 0.2], [5, 0]], float)
    kept = lab.simplify(line, tolerance=0.5)
    np.testing.assert_array_equal(kept, line[[0, 2, 3, 4, 5]])
    straight = np.column_stack([np.arange(10.0), np.zeros(10)])
    np.testing.assert_array_equal(lab.simplify(straight, 0.5), straight[[0, -1]])


def test_the_page_states_the_grid_that_is_computed():
    grid = lab.Grid()
    plain = len(grid.optimizers) - len(grid.with_momentum)
    count = (
        len(grid.surfaces)
        * len(grid.rates)
        * (plain + len(grid.with_momentum) * len(grid.momenta))
    )
    text = (DOCS / "lab.md").read_text()
    assert f"= {count:,} paths" in text
    assert f"{len(grid.rates)}, from 0.0001 to 10, four per decade" in text
    assert ", ".join(f"{m:g}" for m in grid.momenta) in text


# ---------------------------------------------------------------------------
# The page in Chromium.

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SMALL_GRID = lab.Grid(
    surfaces=("quadratic", "rosenbrock"),
    optimizers=("SGD", "Momentum", "Adam"),
    rates=(0.001, 0.01, 0.0562, 0.1),
    momenta=(0.5, 0.9),
    steps={"quadratic": 100, "rosenbrock": 300},
)


def _page_block() -> str:
    text = (DOCS / "lab.md").read_text()
    return text.split("<!-- lab -->")[1].split("<!-- /lab -->")[0]


@pytest.fixture(scope="module")
def lab_page(tmp_path_factory):
    """The lab's HTML block from docs/lab.md, with its files, as the site has it."""
    site = tmp_path_factory.mktemp("site")
    data = lab.lab_data(SMALL_GRID)
    lab.write_data(data, site / "_static")
    for name in ("lab.js", "lab.css"):
        shutil.copy(DOCS / "_static" / name, site / "_static" / name)
    page = site / "lab.html"
    page.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>lab</title></head><body>{_page_block()}</body></html>\n",
        encoding="utf-8",
    )
    return page, data


@pytest.fixture
def chromium(tmp_path):
    """Headless Chromium driven by chromedriver; both quit afterwards."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "Chromium and chromedriver are not installed "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,1400",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    options.set_capability(
        "goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"}
    )
    # A driver path given to the Service: Selenium Manager is not run.
    service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        if service.process is not None and service.process.poll() is None:
            service.process.kill()
            service.process.wait(timeout=10)


DRAWN = """
const svg = document.querySelector('#ka-lab svg.ka-lab-plot');
return {
  surface: svg.getAttribute('data-surface'),
  contours: svg.querySelectorAll('.ka-lab-contours polyline').length,
  paths: Array.from(svg.querySelectorAll('polyline.ka-lab-path')).map(
    p => [p.getAttribute('data-optimizer'), p.getAttribute('points')]),
  legend: Array.from(document.querySelectorAll('.ka-lab-legend li')).map(
    li => li.getAttribute('data-optimizer')),
  rate: document.querySelector('output.ka-lab-value').textContent,
};
"""


def _drawn(driver) -> dict:
    drawn = driver.execute_script(DRAWN)
    drawn["paths"] = {
        name: [int(v) for pair in points.split() for v in pair.split(",")]
        for name, points in drawn["paths"]
    }
    return drawn


def _stored(data, surface: str, rate: int, momentum: int, names) -> dict:
    rows = data["paths"][surface]
    return {
        name: rows[name][momentum if name in SMALL_GRID.with_momentum else 0][rate]["p"]
        for name in names
    }


def _key(driver, name: str, key: str) -> None:
    driver.find_element("css selector", f"input[name='ka-lab-{name}']").send_keys(key)


@pytest.mark.browser
def test_the_lab_draws_the_stored_path_of_every_setting(chromium, lab_page):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    page, data = lab_page
    started = time.perf_counter()
    chromium.get(page.as_uri())
    WebDriverWait(chromium, 10).until(
        lambda d: (
            d.execute_script(
                "return document.querySelectorAll('polyline.ka-lab-path').length"
            )
            == 3
        )
    )
    # The defaults: the valley, SGD, Momentum and Adam, rate 0.0562, momentum 0.9.
    drawn = _drawn(chromium)
    names = ("SGD", "Momentum", "Adam")
    assert drawn["surface"] == "quadratic" and drawn["rate"] == "0.0562"
    assert drawn["paths"] == _stored(data, "quadratic", 2, 1, names)
    assert drawn["contours"] == len(data["surfaces"][0]["contours"]) > 5
    assert sorted(drawn["legend"]) == sorted(names)

    _key(chromium, "rate", Keys.ARROW_RIGHT)  # 0.0562 -> 0.1
    moved = _drawn(chromium)
    assert moved["rate"] == "0.1"
    assert moved["paths"] == _stored(data, "quadratic", 3, 1, names)
    assert all(moved["paths"][name] != drawn["paths"][name] for name in names)

    _key(chromium, "momentum", Keys.ARROW_LEFT)  # 0.9 -> 0.5
    slower = _drawn(chromium)
    assert slower["paths"] == _stored(data, "quadratic", 3, 0, names)
    assert slower["paths"]["Momentum"] != moved["paths"]["Momentum"]
    assert slower["paths"]["SGD"] == moved["paths"]["SGD"]

    chromium.find_element("css selector", "input[value='rosenbrock']").click()
    rosenbrock = _drawn(chromium)
    assert rosenbrock["surface"] == "rosenbrock"
    assert rosenbrock["paths"] == _stored(data, "rosenbrock", 3, 0, names)
    assert rosenbrock["contours"] == len(data["surfaces"][1]["contours"])

    chromium.find_element("css selector", "input[value='SGD']").click()
    _key(chromium, "rate", Keys.ARROW_LEFT)  # 0.1 -> 0.0562
    fewer = _drawn(chromium)
    assert fewer["paths"] == _stored(data, "rosenbrock", 2, 0, ("Momentum", "Adam"))
    assert sorted(fewer["legend"]) == ["Adam", "Momentum"]

    # The page requested its own four files from disk, and nothing at all
    # (the browser's own pages included) went to the network.
    requests = [
        message["params"]
        for message in (
            json.loads(entry["message"])["message"]
            for entry in chromium.get_log("performance")
        )
        if message["method"] == "Network.requestWillBeSent"
    ]
    site = page.parent.as_uri()
    assert sorted(
        r["request"]["url"] for r in requests if r["documentURL"] == page.as_uri()
    ) == sorted(
        [page.as_uri()]
        + [f"{site}/_static/{name}" for name in ("lab.css", "lab_data.js", "lab.js")]
    )
    assert [
        r["request"]["url"]
        for r in requests
        if not r["request"]["url"].startswith(("file:", "chrome:", "data:"))
    ] == []
    console = chromium.get_log("browser")
    assert [entry for entry in console if entry["level"] == "SEVERE"] == []
    print(f"browser checks took {time.perf_counter() - started:.1f} s")
