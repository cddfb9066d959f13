"""Interleaved timing of two competitors and the statistics the tables show.

Both benchmarks compare one of this package's optimizers ("ours") with a
Keras built-in ("keras") on the same work. Machine noise (other processes,
frequency scaling, cache state) changes over seconds, so the two are never
timed in separate blocks: every round times ours, then Keras's, with the
order swapped on every other round, and the statistics are taken over the
rounds. The ratio ours / keras is formed within each round, so that a slow
round slows both sides of its own ratio.

Each round records wall-clock time (what a user waits for) and the CPU time
of the whole process, all threads (`time.process_time`). On a shared machine,
time slices taken by other processes lengthen the wall-clock time but not the
CPU time, so the CPU-time ratio is the less noisy measure of the work each
optimizer does; where the two disagree, the wall-clock difference is most
likely noise.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np


@dataclass
class Comparison:
    """The timings of one optimizer against its Keras counterpart.

    Attributes:
        name: row label, e.g. "Adam (amsgrad)".
        baseline: what "keras" stands for, e.g. "keras Adam(amsgrad=True)".
        unit: what one timed unit is ("step" or "epoch").
        units_per_round: units timed back to back in one round, per side.
        ours: wall-clock seconds per unit for ours, one value per round.
        keras: wall-clock seconds per unit for the Keras baseline, per round.
        ours_cpu: process CPU seconds per unit for ours, per round.
        keras_cpu: process CPU seconds per unit for the baseline, per round.
        floor: wall-clock seconds per unit of the memory-traffic floor kernel,
            per round (empty when no floor is timed).
        floor_cpu: process CPU seconds per unit of the floor kernel.
        floor_bytes: bytes the floor kernel reads and writes per unit.
    """

    name: str
    baseline: str
    unit: str
    units_per_round: int
    ours: list[float] = field(default_factory=list)
    keras: list[float] = field(default_factory=list)
    ours_cpu: list[float] = field(default_factory=list)
    keras_cpu: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    floor_cpu: list[float] = field(default_factory=list)
    floor_bytes: int = 0

    @property
    def ratios(self) -> np.ndarray:
        """Wall-clock ours / keras, round by round."""
        return np.asarray(self.ours) / np.asarray(self.keras)

    @property
    def cpu_ratios(self) -> np.ndarray:
        """CPU-time ours / keras, round by round."""
        return np.asarray(self.ours_cpu) / np.asarray(self.keras_cpu)

    def summary(self) -> dict:
        """Medians, the median ratios and their interquartile ranges.

        The verdict is "slower" ("faster") when the interquartile ranges of
        both the wall-clock and the CPU-time ratio lie above (below) 1.
        """
        q25, median, q75 = np.percentile(self.ratios, [25, 50, 75])
        c25, cpu_median, c75 = np.percentile(self.cpu_ratios, [25, 50, 75])
        wall, cpu = verdict(q25, q75), verdict(c25, c75)
        floor = {}
        if self.floor:
            for side in ("ours", "keras"):
                per_round = np.asarray(getattr(self, side)) / np.asarray(self.floor)
                f25, f50, f75 = np.percentile(per_round, [25, 50, 75])
                floor[f"{side}_over_floor_median"] = float(f50)
                floor[f"{side}_over_floor_q25"] = float(f25)
                floor[f"{side}_over_floor_q75"] = float(f75)
            floor["floor_median_s"] = float(np.median(self.floor))
            floor["floor_gb_per_s"] = self.floor_bytes / floor["floor_median_s"] / 1e9
        return {
            "ours_median_s": float(np.median(self.ours)),
            "keras_median_s": float(np.median(self.keras)),
            "ratio_median": float(median),
            "ratio_q25": float(q25),
            "ratio_q75": float(q75),
            "cpu_ratio_median": float(cpu_median),
            "cpu_ratio_q25": float(c25),
            "cpu_ratio_q75": float(c75),
            "verdict": wall if wall == cpu else "same",
            **floor,
        }

    def progress(self) -> str:
        """A one-line summary for progress output."""
        s = self.summary()
        return (
            f"{self.name}: wall ratio {s['ratio_median']:.3f} "
            f"(IQR {s['ratio_q25']:.3f}-{s['ratio_q75']:.3f}), CPU ratio "
            f"{s['cpu_ratio_median']:.3f} "
            f"(IQR {s['cpu_ratio_q25']:.3f}-{s['cpu_ratio_q75']:.3f})"
        )

    def to_dict(self) -> dict:
        """The raw per-round numbers and the summary, JSON-serialisable."""
        return {**asdict(self), **self.summary()}


def verdict(q25: float, q75: float) -> str:
    """ "slower" or "faster" when a ratio's whole IQR lies on one side of 1."""
    if q25 > 1.0:
        return "slower"
    if q75 < 1.0:
        return "faster"
    return "same"


def interleave(
    comparison: Comparison,
    run_ours: Callable[[int], None],
    run_keras: Callable[[int], None],
    rounds: int,
    run_floor: Callable[[int], None] | None = None,
    before_round: Callable[[int], None] | None = None,
) -> Comparison:
    """Times `rounds` alternating rounds and appends them to `comparison`.

    `run_ours(n)` and `run_keras(n)` perform n units and return once the
    work is finished (results materialised). Round r times ours first when r
    is even and Keras's first when r is odd. `run_floor`, if given, is timed
    in every round as well, first, between or last in turn.
    `before_round(r)`, if given, is called (untimed) before round r.
    """
    n = comparison.units_per_round
    for r in range(rounds):
        if before_round is not None:
            before_round(r)
        order = [("ours", run_ours), ("keras", run_keras)]
        if r % 2:
            order.reverse()
        if run_floor is not None:
            order.insert(r % 3, ("floor", run_floor))
        for side, run in order:
            wall, cpu = time.perf_counter(), time.process_time()
            run(n)
            cpu = time.process_time() - cpu
            getattr(comparison, side).append((time.perf_counter() - wall) / n)
            getattr(comparison, f"{side}_cpu").append(cpu / n)
    return comparison


def seconds_per_unit(run: Callable[[int], None], n: int = 1) -> float:
    """Wall-clock seconds per unit of one call `run(n)`."""
    start = time.perf_counter()
    run(n)
    return (time.perf_counter() - start) / n


def environment() -> dict:
    """Backend, library versions and the machine the numbers come from."""
    info = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    elif info["backend"] == "jax":
        import jax

        info["jax"] = jax.__version__
    return info


#: Display unit and factor of the timed units' medians.
DISPLAY = {"step": ("ms", 1e3), "epoch": ("s", 1.0)}


def markdown_table(comparisons: Sequence[Comparison]) -> str:
    """One row per comparison: wall-clock medians, both ratios with their
    interquartile ranges, the verdict and, where a floor was timed, each
    side's time over the floor (median and IQR of the per-round ratios)."""
    unit = comparisons[0].unit if comparisons else "step"
    shown, factor = DISPLAY[unit]
    with_floor = any(comparison.floor for comparison in comparisons)
    header = (
        f"| optimizer | baseline | ours {shown}/{unit} | keras {shown}/{unit} "
        "| wall ratio | wall IQR | CPU ratio | CPU IQR | verdict |"
    )
    rule = "|---|---|---:|---:|---:|---|---:|---|---|"
    if with_floor:
        header += f" floor {shown}/{unit} | ours/floor | ours/floor IQR | keras/floor |"
        rule += "---:|---:|---|---:|"
    lines = [header, rule]
    for comparison in comparisons:
        s = comparison.summary()
        line = (
            f"| {comparison.name} | {comparison.baseline} "
            f"| {s['ours_median_s'] * factor:.3g} "
            f"| {s['keras_median_s'] * factor:.3g} "
            f"| {s['ratio_median']:.3f} "
            f"| {s['ratio_q25']:.3f}–{s['ratio_q75']:.3f} "
            f"| {s['cpu_ratio_median']:.3f} "
            f"| {s['cpu_ratio_q25']:.3f}–{s['cpu_ratio_q75']:.3f} "
            f"| {s['verdict']} |"
        )
        if with_floor and comparison.floor:
            line += (
                f" {s['floor_median_s'] * factor:.3g} "
                f"| {s['ours_over_floor_median']:.2f} "
                f"| {s['ours_over_floor_q25']:.2f}–{s['ours_over_floor_q75']:.2f} "
                f"| {s['keras_over_floor_median']:.2f} |"
            )
        elif with_floor:
            line += " – | – | – | – |"
        lines.append(line)
    return "\n".join(lines)


def write_json(
    path: str | Path, settings: dict, comparisons: Sequence[Comparison]
) -> None:
    """Writes the environment, the settings and every raw timing to `path`."""
    document = {
        "environment": environment(),
        "settings": settings,
        "results": [comparison.to_dict() for comparison in comparisons],
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n")
