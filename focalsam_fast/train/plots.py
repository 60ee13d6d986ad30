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

from .files import atomic_write

GROUP_COLOURS = {"head": "#dbe9f6", "medium": "#fdf1d6", "tail": "#f9dcdc"}


def _save(fig: plt.Figure, path: str | Path) -> None:
    """Write ``fig`` as a PNG atomically (see :func:`~focalsam_fast.train.files.atomic_write`)."""
    fig.tight_layout()
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    finally:
        plt.close(fig)


def per_class_plot(series: Mapping[str, Sequence[float]], class_counts: Sequence[int],
                   groups: Mapping[str, Sequence[int]], path: str | Path) -> None:
    """Test accuracy of each class (one line per entry of ``series``, e.g. per method), classes
    sorted by training count (largest first) with the count on a log-scale second axis and the
    head/medium/tail groups shaded."""
    counts = np.asarray(class_counts, dtype=float)
    order = np.argsort(-counts, kind="stable")
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.12 * len(order) + 4)), 4))
    counts_ax = ax.twinx()  # drawn below ax: group shading, then the count bars
    rank = {int(k): i for i, k in enumerate(order)}
    for name, classes in groups.items():
        if classes:
            pos = sorted(rank[k] for k in classes)
            counts_ax.axvspan(pos[0] - 0.5, pos[-1] + 0.5, color=GROUP_COLOURS.get(name, "#eeeeee"),
                              label=f"{name} ({len(classes)})", zorder=0)
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
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    ax.set_title("per-class accuracy vs class count")
    _save(fig, path)


def training_curves(history: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Training loss, and test accuracy (overall / head / medium / tail), against the epoch."""
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
    _save(fig, path)
