"""Figures of the benchmark results in ``benchmarks/results/``.

* ``benchmarks_floor.png``: every update step's time over its memory-traffic
  floor, ours and Keras's, per backend (from ``update_step_10m_*.json``);
* ``benchmarks_training_cost.png``: training cost against iterations of every
  optimizer at its defaults on MNIST (from
  ``time_to_accuracy_optimizers_jax.json``), as in Kingma & Ba (2015), Fig. 2.

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


def plot_floor(files: Sequence[Path], path: Path) -> None:
    """Median time / floor (bars) with the IQR of the per-round ratios."""
    documents = [json.loads(Path(f).read_text()) for f in files if Path(f).exists()]
    if not documents:
        return
    fig, axes = plt.subplots(
        1, len(documents), figsize=(6.5 * len(documents), 4.5), squeeze=False
    )
    for ax, document in zip(axes[0], documents, strict=True):
        rows = [r for r in document["results"] if r.get("floor")]
        names = [r["name"] for r in rows]
        x = np.arange(len(rows))
        for offset, side, label in (
            (-0.2, "ours", "keras_adaptive"),
            (0.2, "keras", "Keras"),
        ):
            if side == "keras":
                keep = [not r["baseline"].startswith("keras SGD (") for r in rows]
            else:
                keep = [True] * len(rows)
            med = np.array([r[f"{side}_over_floor_median"] for r in rows])
            low = med - np.array([r[f"{side}_over_floor_q25"] for r in rows])
            high = np.array([r[f"{side}_over_floor_q75"] for r in rows]) - med
            idx = np.flatnonzero(keep)
            ax.bar(
                x[idx] + offset,
                med[idx],
                0.4,
                yerr=[low[idx], high[idx]],
                label=label,
                capsize=2,
            )
        ax.axhline(1.0, color="black", lw=0.8)
        ax.axhline(1.3, color="gray", lw=0.8, ls="--", label="1.3 x floor")
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
        env = document["environment"]
        params = document["settings"].get("parameters")
        ax.set_title(f"{env['backend']}: {params:,} parameters")
        ax.set_ylabel("step time / memory-traffic floor")
        ax.legend(fontsize=8)
    fig.tight_layout()
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
    args.out.mkdir(parents=True, exist_ok=True)
    plot_floor(
        [
            args.results / "update_step_10m_tensorflow.json",
            args.results / "update_step_10m_jax.json",
        ],
        args.out / "benchmarks_floor.png",
    )
    plot_training_cost(
        args.results / "time_to_accuracy_optimizers_jax.json",
        args.out / "benchmarks_training_cost.png",
    )


if __name__ == "__main__":
    main()
