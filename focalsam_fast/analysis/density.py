r"""Eigenvalue spectral density by stochastic Lanczos quadrature (Ghorbani et al., 2019).

Each of ``runs`` Lanczos runs of ``steps`` steps from a normalised Rademacher vector :math:`v`
gives the Gauss quadrature nodes :math:`\theta_i` (eigenvalues of :math:`T_m`) and weights
:math:`\tau_i = s_{1,i}^2` with :math:`\sum_i \tau_i \theta_i^p = v^T H^p v` exactly for
:math:`p \le 2m - 1`.  Averaged over runs, :math:`\sum \tau_i \theta_i^p` estimates
:math:`\mathrm{Tr}(H^p)/P`, the moments of the spectrum's density.  The plotted density is the
mixture :math:`\phi(t) = \frac{1}{R}\sum_{r,i} \tau_{r,i}\, g_\sigma(t - \theta_{r,i})` of Gaussians
of width :math:`\sigma` (integrates to 1).  All runs go through the operator together (one
batched product per step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .eigen import MatVec, lanczos_tridiagonal, tridiagonal
from .trace import rademacher


@dataclass
class SLQResult:
    """Quadrature ``nodes`` and ``weights`` of each run (lists of equal length per run)."""

    nodes: list[list[float]]
    weights: list[list[float]]
    steps: int

    def moment(self, p: int) -> float:
        r"""Estimate of :math:`\mathrm{Tr}(H^p)/P` (mean over runs of :math:`\sum \tau \theta^p`)."""
        return float(np.mean([np.dot(w, np.asarray(n) ** p) for n, w in zip(self.nodes, self.weights)]))

    def density(self, sigma_rel: float = 0.01, points: int = 1000) -> tuple[np.ndarray, np.ndarray, float]:
        """``(grid, density, sigma)`` of the Gaussian-smoothed density; ``sigma = sigma_rel * span``
        of the nodes (at least a tiny positive width), the grid padded by ``5 sigma`` each side."""
        nodes = np.concatenate([np.asarray(n) for n in self.nodes])
        weights = np.concatenate([np.asarray(w) for w in self.weights]) / len(self.nodes)
        lo, hi = float(nodes.min()), float(nodes.max())
        sigma = max(sigma_rel * (hi - lo), 1e-12 * max(1.0, abs(hi), abs(lo)))
        grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, points)
        z = (grid[:, None] - nodes[None, :]) / sigma
        dens = (np.exp(-0.5 * z**2) * weights[None, :]).sum(1) / (sigma * np.sqrt(2 * np.pi))
        return grid, dens, sigma

    def to_dict(self) -> dict[str, object]:
        """JSON-ready copy."""
        return {"nodes": self.nodes, "weights": self.weights, "steps": self.steps}


def slq(
    matvec: MatVec,
    dim: int,
    runs: int = 4,
    steps: int = 64,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    step: Callable[[], None] | None = None,
) -> SLQResult:
    """``runs`` SLQ runs of ``steps`` Lanczos steps each (see the module docstring)."""
    if runs < 1 or steps < 1:
        raise ValueError(f"runs and steps must be >= 1, got runs={runs}, steps={steps}")
    start = rademacher(runs, dim, generator, dtype).to(device)
    alpha, beta, _, lengths = lanczos_tridiagonal(matvec, start, steps, step=step)
    nodes, weights = [], []
    for r in range(runs):
        m = int(lengths[r])
        theta, s = torch.linalg.eigh(tridiagonal(alpha[r, :m], beta[r, :m]))
        nodes.append(theta.double().cpu().tolist())
        weights.append((s[0].double() ** 2).cpu().tolist())
    return SLQResult(nodes, weights, int(alpha.shape[1]))
