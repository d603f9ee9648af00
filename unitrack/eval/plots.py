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

LINESTYLES = ("-", "--", ":", "-.")


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
    for i, (label, (x, y, s)) in enumerate(ranked):
        tag = f"[{100 * s:.1f}] {label}" if s is not None else label
        ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), linewidth=2, label=tag,
                linestyle=LINESTYLES[(i // 10) % len(LINESTYLES)])  # the colour cycle has 10 colours
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


def plot_norm_precision(curves: Mapping[str, tuple], path: Path | str, title: str = "Normalized precision plot"
                        ) -> Path:
    """Precision vs centre error normalised by the gt size; legend score = NPR at 0.2."""
    return plot_curves(curves, path, title=title, xlabel="Normalized location error threshold",
                       ylabel="Normalized precision", legend_loc="lower right")


def plot_radar(scores: Mapping[str, Mapping[str, float | None]], path: Path | str, title: str = "SR per attribute"
               ) -> Path:
    """One polygon per tracker over the attributes (LasHeR's radar plot); ``tracker -> attribute -> score``,
    every tracker with the same attributes, in the order of the first. Needs at least 3 attributes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(next(iter(scores.values())))
    if len(names) < 3:
        raise ValueError(f"a radar plot needs at least 3 attributes, got {len(names)}")
    angles = np.linspace(0, 2 * np.pi, len(names), endpoint=False)
    fig = Figure(figsize=(9.5, 7), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.08, 0.62, 0.8), projection="polar")
    top = 0.0
    for i, (label, row) in enumerate(scores.items()):
        v = np.asarray([np.nan if row.get(n) is None else row[n] for n in names], dtype=float)
        top = max(top, float(np.nanmax(v)) if np.isfinite(v).any() else 0.0)
        ax.plot(np.append(angles, angles[0]), np.append(v, v[0]), linewidth=2, label=label,
                linestyle=LINESTYLES[(i // 10) % len(LINESTYLES)])
    ax.set_xticks(angles)
    ax.set_xticklabels([n.replace("_", " ") for n in names], fontsize=8)
    ax.set_ylim(0, max(top * 1.1, 1e-6))
    ax.set_title(title, pad=24)
    ax.set_rlabel_position(90 / len(names))
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1.05), fontsize=8)
    fig.savefig(path)
    return path


def plot_prf(curves: Mapping[str, tuple], path: Path | str, title: str = "Long-term tracking") -> Path:
    """VOT long-term analysis: tracking precision vs recall (left) and F-score over the confidence
    thresholds, highest first (right); ``label -> (precision, recall, f, F)``, the max-F point marked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    pr_ax, f_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ranked = sorted(curves.items(), key=lambda kv: -(kv[1][3] if kv[1][3] is not None else -1))
    for k, (label, (pr, re, f, best)) in enumerate(ranked):
        pr, re, f = (np.asarray(a, dtype=float) for a in (pr, re, f))
        tag = f"[{100 * best:.1f}] {label}" if best is not None else label
        line, = pr_ax.plot(re, pr, linewidth=2, label=tag, linestyle=LINESTYLES[(k // 10) % len(LINESTYLES)])
        i = int(np.argmax(f))
        pr_ax.plot([re[i]], [pr[i]], "o", color=line.get_color())
        f_ax.plot(np.linspace(0, 1, len(f)), f, linewidth=2, color=line.get_color(), linestyle=line.get_linestyle(),
                  label=tag)
    pr_ax.set(title=f"{title}: precision / recall", xlabel="Tracking recall", ylabel="Tracking precision",
              xlim=(0, 1), ylim=(0, 1))
    f_ax.set(title=f"{title}: F-score", xlabel="Confidence threshold (rank, highest first)", ylabel="F-score",
             xlim=(0, 1), ylim=(0, 1))
    for ax in (pr_ax, f_ax):
        ax.grid(True, linestyle=":")
    if ranked:
        pr_ax.legend(loc="lower left", fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.9, wspace=0.25)
    fig.savefig(path)
    return path
