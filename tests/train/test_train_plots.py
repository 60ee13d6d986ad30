"""Plots: whole epochs on the training-curve axes; the per-class legend hides no point."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from focalsam_fast.train.plots import per_class_figure, training_curves, training_curves_figure


def _history(epochs: int, rng: np.random.Generator) -> list[dict[str, float]]:
    return [
        {
            "epoch": e + 1,
            "train_loss": float(rng.uniform(0.5, 2)),
            **{f"test_{k}": float(rng.uniform(0, 1)) for k in ("overall", "head", "medium", "tail")},
        }
        for e in range(epochs)
    ]


@pytest.mark.parametrize("epochs", [1, 2, 3, 7])
def test_train_plots_epoch_ticks_are_whole(epochs: int, seed: int) -> None:
    fig = training_curves_figure(_history(epochs, np.random.default_rng(seed)))
    try:
        fig.canvas.draw()
        for ax in fig.axes:
            low, high = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if low <= t <= high]
            assert ticks, "no visible tick"
            assert all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)


def test_train_plots_training_curves_written(tmp_path: Path, seed: int) -> None:
    training_curves(_history(2, np.random.default_rng(seed)), tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("classes", [3, 10, 40])
def test_train_plots_per_class_legend_hides_no_point(classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = sorted(rng.integers(5, 500, classes).tolist(), reverse=True)
    series = {m: rng.uniform(0, 1, classes).tolist() for m in ("sam", "focalsam")}
    series["sam"][0] = series["focalsam"][-1] = 0.0  # points in the lower corners, where legends go
    third = max(1, classes // 3)
    groups = {
        "head": list(range(third)),
        "medium": list(range(third, 2 * third)),
        "tail": list(range(2 * third, classes)),
    }
    fig = per_class_figure(series, counts, groups)
    try:
        fig.canvas.draw()
        ax = next(a for a in fig.axes if a.get_legend() is not None)
        legend = ax.get_legend().get_window_extent()
        for line in ax.get_lines():
            points = ax.transData.transform(np.column_stack(line.get_data()))
            inside = [(x, y) for x, y in points if legend.contains(x, y)]
            assert not inside, f"{line.get_label()}: points {inside} under the legend"
        assert not legend.overlaps(ax.get_window_extent())
    finally:
        plt.close(fig)
