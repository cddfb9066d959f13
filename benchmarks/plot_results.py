"""The summary table and the figures of the results in ``benchmarks/results/``.

* the summary table of ``docs/benchmarks.md``, printed on stdout: per
  optimizer, its update step against Keras's on JAX and TensorFlow, over the
  memory-traffic floor (``update_step_10m_*.json``), and its MNIST result at
  its defaults (``time_to_accuracy_optimizers_jax.json``);
* ``benchmarks_floor.png``: every update step's time over its memory-traffic
  floor, ours and Keras's, per backend;
* ``benchmarks_training_cost.png``: training cost against iterations of every
  optimizer at its defaults on MNIST, as in Kingma & Ba (2015), Fig. 2.

    python benchmarks/plot_results.py --out docs/images
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
UPDATE_STEP_FILES = ("update_step_10m_jax.json", "update_step_10m_tensorflow.json")
OPTIMIZERS_FILE = "time_to_accuracy_optimizers_jax.json"


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1e3
    return f"{milliseconds:.0f}" if milliseconds >= 100 else f"{milliseconds:.2f}"


def _step_cell(row: dict | None) -> str:
    """ours / Keras's milliseconds and the verdict, or ours alone."""
    if row is None:
        return "–"
    if "baseline only" in row["baseline"]:
        return f"{_ms(row['ours_median_s'])} ms (no counterpart)"
    times = f"{_ms(row['ours_median_s'])} / {_ms(row['keras_median_s'])} ms"
    return f"{times}, {row['verdict']}"


def _floor_cell(rows: Sequence[dict | None]) -> str:
    ratios = [row.get("ours_over_floor_median") if row else None for row in rows]
    if all(ratio is None for ratio in ratios):
        return "–"
    return " / ".join("–" if r is None else f"{r:.2f}" for r in ratios)


def _accuracy_cells(runs: Sequence[dict]) -> list[str]:
    if not runs:
        return ["–", "–"]
    accuracy = np.array([run["test_accuracy"] for run in runs])
    reached = [run["epochs_to_target"] for run in runs]
    hits = [epochs for epochs in reached if epochs is not None]
    spread = accuracy.std(ddof=1) if len(runs) > 1 else 0.0
    reached = f"{np.mean(hits):.1f} ({len(hits)} of {len(runs)} seeds)"
    return [f"{accuracy.mean():.3f} ± {spread:.3f}", reached if hits else "not reached"]


def summary_table(results: Path = RESULTS) -> str:
    """The summary table of docs/benchmarks.md, from the result files."""
    steps = [
        {row["name"]: row for row in json.loads((results / f).read_text())["results"]}
        for f in UPDATE_STEP_FILES
    ]
    runs = json.loads((results / OPTIMIZERS_FILE).read_text())["runs"]
    epochs = max(len(run["train_loss"]) for run in runs)
    lines = [
        "| optimizer | update step, JAX: ours / Keras | update step, TensorFlow: "
        "ours / Keras | ours / memory floor, JAX / TF | MNIST MLP test accuracy "
        f"after {epochs} epochs | epochs to 97 % |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(name for rows in steps for name in rows):
        rows = [by_name.get(name) for by_name in steps]
        mlp = [r for r in runs if r["optimizer"] == name and r["model"] == "mlp"]
        label = f"`{name}`".replace(" (", "` (").replace(")`", ")", 1)
        cells = [label, *map(_step_cell, rows), _floor_cell(rows)]
        lines.append("| " + " | ".join(cells + _accuracy_cells(mlp)) + " |")
    return "\n".join(lines)


def plot_floor(files: Sequence[Path], path: Path) -> None:
    """Median time / floor (bars) with the IQR of the per-round ratios, one
    panel per backend, stacked so that the figure reads on a narrow screen."""
    documents = [json.loads(Path(f).read_text()) for f in files if Path(f).exists()]
    if not documents:
        return
    fig, axes = plt.subplots(
        len(documents),
        1,
        figsize=(6.4, 5.2 * len(documents)),
        squeeze=False,
        layout="constrained",
    )
    for ax, document in zip(axes[:, 0], documents, strict=True):
        rows = [r for r in document["results"] if r.get("floor")]
        y = np.arange(len(rows))
        for offset, side, label in (
            (-0.2, "ours", "keras_adaptive"),
            (0.2, "keras", "Keras"),
        ):
            # The package-only rows have no Keras counterpart to draw.
            keep = [
                side == "ours" or not r["baseline"].startswith("keras SGD (")
                for r in rows
            ]
            med = np.array([r[f"{side}_over_floor_median"] for r in rows])
            low = med - np.array([r[f"{side}_over_floor_q25"] for r in rows])
            high = np.array([r[f"{side}_over_floor_q75"] for r in rows]) - med
            idx = np.flatnonzero(keep)
            ax.barh(
                y[idx] + offset,
                med[idx],
                0.4,
                xerr=[low[idx], high[idx]],
                label=label,
                capsize=2,
            )
        ax.axvline(1.0, color="black", lw=0.8)
        ax.axvline(1.3, color="gray", lw=0.8, ls="--", label="1.3 × floor")
        ax.set_yticks(y, [r["name"] for r in rows], fontsize=11)
        ax.invert_yaxis()
        env = document["environment"]
        params = document["settings"].get("parameters")
        ax.set_title(f"{env['backend']}, {params:,} parameters", fontsize=12)
        ax.set_xlabel("step time / memory-traffic floor", fontsize=11)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=3, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training_cost(file: Path, path: Path) -> None:
    if not Path(file).exists():
        return
    from time_to_accuracy import plot_costs

    plot_costs(json.loads(Path(file).read_text())["runs"], path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    print(summary_table(args.results))
    args.out.mkdir(parents=True, exist_ok=True)
    plot_floor(
        [args.results / name for name in UPDATE_STEP_FILES],
        args.out / "benchmarks_floor.png",
    )
    plot_training_cost(
        args.results / OPTIMIZERS_FILE, args.out / "benchmarks_training_cost.png"
    )


if __name__ == "__main__":
    main()
