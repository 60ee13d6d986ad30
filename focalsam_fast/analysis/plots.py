"""PNG figures of the analysis (matplotlib, Agg backend, written atomically): the spectral density
as in the paper's Fig. 2 (log density against eigenvalue, lambda_max and Tr(H) in the legend; rows
are groups, columns methods) and the 1-D / 2-D loss landscapes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..train.files import atomic_write

if TYPE_CHECKING:
    from .api import CheckpointAnalysis, GroupAnalysis


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=80))
    finally:
        plt.close(fig)
    return path


def _group_names(analyses: Mapping[str, CheckpointAnalysis]) -> list[str]:
    names: list[str] = []
    for a in analyses.values():
        names += [g for g in a.groups if g not in names]
    return names


def _panel_grid(
    analyses: Mapping[str, CheckpointAnalysis], result: str, size: tuple[float, float]
) -> tuple[plt.Figure, list[tuple[plt.Axes, str, str, GroupAnalysis]]]:
    """A figure with a panel per (group row, method column) and the panels that have ``result``
    (the others are switched off)."""
    groups, methods = _group_names(analyses), list(analyses)
    figsize = (size[0] * len(methods), size[1] * len(groups))
    fig, axes = plt.subplots(len(groups), len(methods), figsize=figsize, squeeze=False)
    panels = []
    for i, group in enumerate(groups):
        for j, method in enumerate(methods):
            res = analyses[method].groups.get(group)
            if res is None or getattr(res, result) is None:
                axes[i][j].set_axis_off()
            else:
                panels.append((axes[i][j], method, group, res))
    return fig, panels


def spectrum_figure(analyses: Mapping[str, CheckpointAnalysis], path: Path) -> Path:
    """Log density of the Hessian spectrum, one panel per (group, method)."""
    fig, panels = _panel_grid(analyses, "density", (3.6, 2.8))
    for ax, method, group, res in panels:
        grid, dens, _ = res.density.density(analyses[method].settings.sigma_rel)
        label = []
        if res.eigen is not None:
            label.append(f"$\\lambda_{{max}}$ = {res.eigen.eigenvalues[0]:.4g}")
        if res.trace is not None:
            label.append(f"Tr(H) = {res.trace.estimate:.4g} ± {res.trace.stderr:.2g}")
        ax.semilogy(grid, np.maximum(dens, 1e-12), color="C0", label="\n".join(label) or None)
        ax.set_ylim(bottom=max(1e-8, float(dens.max()) * 1e-9))
        ax.set_title(f"{method}: {group}", fontsize=9)
        ax.set_xlabel("eigenvalue", fontsize=8)
        ax.set_ylabel("density (log)", fontsize=8)
        ax.tick_params(labelsize=7)
        if label:
            ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def landscape_1d_figure(analyses: Mapping[str, CheckpointAnalysis], path: Path) -> Path:
    """Group loss along one filter-normalised direction: a panel per group, a line per method."""
    groups = _group_names(analyses)
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.0), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for method, a in analyses.items():
            res = a.groups.get(group)
            if res is not None and res.landscape_1d is not None:
                ax.plot(res.landscape_1d.coords, res.landscape_1d.loss, label=method)
        ax.set_title(f"{group}: 1-D landscape", fontsize=9)
        ax.set_xlabel("step along filter-normalised direction", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return _save(fig, path)


def landscape_2d_figure(analyses: Mapping[str, CheckpointAnalysis], path: Path) -> Path:
    """Contours of the group loss on the 2-D grid, one panel per (group, method)."""
    fig, panels = _panel_grid(analyses, "landscape_2d", (3.2, 2.9))
    for ax, method, group, res in panels:
        c = np.asarray(res.landscape_2d.coords)
        cs = ax.contour(c, c, np.asarray(res.landscape_2d.loss), levels=15, linewidths=0.8)
        ax.clabel(cs, fontsize=6)
        ax.plot([0], [0], "k+")
        ax.set_title(f"{method}: {group}", fontsize=9)
        ax.tick_params(labelsize=7)
    return _save(fig, path)


def write_figures(analyses: Mapping[str, CheckpointAnalysis], out: Path) -> list[Path]:
    """The figures of the stages that ran, into ``out``."""
    first = next(iter(analyses.values())).groups.values()
    paths = []
    if any(g.density is not None for g in first):
        paths.append(spectrum_figure(analyses, out / "spectrum.png"))
    if any(g.landscape_1d is not None for g in first):
        paths.append(landscape_1d_figure(analyses, out / "landscape_1d.png"))
        paths.append(landscape_2d_figure(analyses, out / "landscape_2d.png"))
    return paths
