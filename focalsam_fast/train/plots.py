"""PNG plots (matplotlib, Agg backend, written atomically): per-class accuracy against training
count, training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .files import atomic_write

GROUP_COLOURS = {"head": "#dbe9f6", "medium": "#fdf1d6", "tail": "#f9dcdc"}


def _save(fig: plt.Figure, path: str | Path) -> None:
    """Write ``fig`` as a PNG atomically (see :func:`~focalsam_fast.train.files.atomic_write`)."""
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    finally:
        plt.close(fig)


def per_class_plot(
    series: Mapping[str, Sequence[float]],
    class_counts: Sequence[int],
    groups: Mapping[str, Sequence[int]],
    path: str | Path,
) -> None:
    """Write :func:`per_class_figure` to ``path``."""
    _save(per_class_figure(series, class_counts, groups), path)


def per_class_figure(
    series: Mapping[str, Sequence[float]], class_counts: Sequence[int], groups: Mapping[str, Sequence[int]]
) -> plt.Figure:
    """Test accuracy of each class (one line per entry of ``series``, e.g. per method), classes
    sorted by training count (largest first) with the count on a log-scale second axis and the
    head/medium/tail groups shaded.  The legend sits below the axes, where it hides no point."""
    counts = np.asarray(class_counts, dtype=float)
    order = np.argsort(-counts, kind="stable")
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.12 * len(order) + 4)), 4))
    counts_ax = ax.twinx()  # drawn below ax: group shading, then the count bars
    rank = {int(k): i for i, k in enumerate(order)}
    for name, classes in groups.items():
        if classes:
            pos = sorted(rank[k] for k in classes)
            counts_ax.axvspan(
                pos[0] - 0.5,
                pos[-1] + 0.5,
                color=GROUP_COLOURS.get(name, "#eeeeee"),
                label=f"{name} ({len(classes)})",
                zorder=0,
            )
    counts_ax.bar(x, counts[order], color="grey", alpha=0.35, width=0.8, zorder=1)
    counts_ax.set_yscale("log")
    counts_ax.set_ylabel("training count (grey bars, log)")
    for name, acc in series.items():
        values = 100 * np.asarray(acc, dtype=float)[order]
        ax.plot(x, values, marker="o" if len(order) <= 50 else None, ms=3, lw=1.2, label=name)
    ax.set_xlabel("class (sorted by training count)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_zorder(counts_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + counts_ax.get_legend_handles_labels()[0]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=min(len(handles), 6),
        fontsize=8,
        frameon=False,
    )
    ax.set_title("per-class accuracy vs class count")
    fig.tight_layout()
    return fig


def training_curves(history: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Write :func:`training_curves_figure` to ``path``."""
    _save(training_curves_figure(history), path)


def training_curves_figure(history: Sequence[Mapping[str, Any]]) -> plt.Figure:
    """Training loss, and test accuracy (overall / head / medium / tail), against the epoch (whole
    epochs on the axis, also for a run of a few epochs)."""
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], marker=".")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("training loss")
    for key in ("overall", "head", "medium", "tail"):
        values = [np.nan if h[f"test_{key}"] is None else 100 * h[f"test_{key}"] for h in history]
        if not all(np.isnan(values)):
            acc_ax.plot(epochs, values, marker=".", label=key, lw=2 if key == "overall" else 1)
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("test accuracy (%)")
    acc_ax.set_title("test accuracy")
    acc_ax.legend(fontsize=8)
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    fig.tight_layout()
    return fig
