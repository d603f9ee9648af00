"""Success and precision plots (OPE style) rendered off-screen with matplotlib's Agg canvas.

The figure is drawn on an explicit Agg canvas instead of switching the global backend, so importing this
module never changes plotting for the rest of the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_curves(
    curves: Mapping[str, tuple],
    path: Path | str,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    legend_loc: str,
) -> Path:
    """Plot named curves ``label -> (thresholds, values, score)`` into a PNG; the legend shows x100 scores."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ranked = sorted(curves.items(), key=lambda kv: -(kv[1][2] if kv[1][2] is not None else -1))
    for label, (x, y, s) in ranked:
        tag = f"[{100 * s:.1f}] {label}" if s is not None else label
        ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), linewidth=2, label=tag)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.0))
    ax.grid(True, linestyle=":")
    if ranked:
        x0 = np.asarray(ranked[0][1][0], dtype=float)
        ax.set_xlim(float(x0.min()), float(x0.max()))
        ax.legend(loc=legend_loc, fontsize=8)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.92)
    fig.savefig(path)
    return path


def plot_success(curves: Mapping[str, tuple], path: Path | str, title: str = "Success plot") -> Path:
    """Success rate vs IoU threshold; legend score = AUC (SR)."""
    return plot_curves(curves, path, title=title, xlabel="Overlap threshold", ylabel="Success rate",
                       legend_loc="lower left")


def plot_precision(curves: Mapping[str, tuple], path: Path | str, title: str = "Precision plot") -> Path:
    """Precision vs centre-error threshold in pixels; legend score = PR at 20 px."""
    return plot_curves(curves, path, title=title, xlabel="Location error threshold (px)", ylabel="Precision",
                       legend_loc="lower right")
