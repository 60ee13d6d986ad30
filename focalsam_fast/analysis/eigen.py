r"""Top eigenvalues of a symmetric operator given by products: Lanczos and block power iteration.

Both stop when every wanted Ritz pair :math:`(\theta_i, y_i)` has relative residual
:math:`\|H y_i - \theta_i y_i\| \le \mathrm{tol}\,|\theta_i|` or after ``max_iter`` products
(iterations), and report the residuals, recomputed with one extra (batched) product.

* Lanczos (default): full re-orthogonalisation, the ``k`` algebraically largest Ritz values of the
  tridiagonal :math:`T_m`; residual estimate :math:`\beta_m |s_{m,i}|` while iterating.
* Power: subspace iteration on ``k`` vectors at once (one batched product per iteration) with a
  Rayleigh-Ritz step; converges to the ``k`` eigenvalues of largest magnitude (what PyHessian's
  power iteration computes for ``k = 1``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]
Step = Callable[[], None]


@dataclass
class EigenResult:
    """``eigenvalues`` (descending), their relative ``residuals``, ``iterations`` (products per
    vector), ``converged`` (all residuals <= tol), ``method``; ``eigenvectors`` ``[k, P]``."""

    eigenvalues: list[float]
    residuals: list[float]
    iterations: int
    converged: bool
    method: str
    tol: float
    eigenvectors: Tensor = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (without the vectors)."""
        return {
            "eigenvalues": self.eigenvalues,
            "relative_residuals": self.residuals,
            "iterations": self.iterations,
            "converged": self.converged,
            "method": self.method,
            "tol": self.tol,
        }


def _relative_residuals(matvec: MatVec, values: Tensor, vectors: Tensor) -> list[float]:
    r = (matvec(vectors) - values[:, None] * vectors).norm(dim=1)
    return (r / values.abs().clamp_min(torch.finfo(vectors.dtype).tiny)).tolist()


def lanczos_tridiagonal(
    matvec: MatVec,
    start: Tensor,
    steps: int,
    stop: Callable[[Tensor, Tensor], bool] | None = None,
    step: Step | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""``R`` Lanczos runs at once from the rows of ``start`` ``[R, P]`` (normalised here), with full
    re-orthogonalisation: :math:`H Q_m = Q_m T_m + \beta_m q_{m+1} e_m^T`.

    Returns ``alpha [R, m]``, ``beta [R, m]`` (``beta[:, j]`` couples steps ``j`` and ``j+1``; the
    last is the residual norm), ``Q [R, m, P]`` and ``lengths [R]`` (a run whose Krylov space became
    invariant stops early: its entries past ``lengths[r]`` are zeros).  ``stop(alpha, beta)`` is
    called after each step and ends all runs when it returns True.
    """
    runs, dim = start.shape
    steps = min(steps, dim)
    q = start / start.norm(dim=1, keepdim=True)
    basis = torch.zeros(runs, steps, dim, dtype=start.dtype, device=start.device)
    alpha = torch.zeros(runs, steps, dtype=start.dtype, device=start.device)
    beta = torch.zeros_like(alpha)
    active = torch.ones(runs, dtype=torch.bool, device=start.device)
    lengths = torch.zeros(runs, dtype=torch.long, device=start.device)
    eps = torch.finfo(start.dtype).eps
    m = 0
    for j in range(steps):
        basis[:, j] = q
        w = matvec(q)
        alpha[:, j] = (w * q).sum(1)
        lengths += active.long()
        for _ in range(2):  # classical Gram-Schmidt twice against the whole basis
            w = w - torch.einsum(
                "rm,rmp->rp", torch.einsum("rmp,rp->rm", basis[:, : j + 1], w), basis[:, : j + 1]
            )
        norm = w.norm(dim=1)
        scale = alpha[:, : j + 1].abs().amax(1).clamp_min(1.0)
        active &= norm > 100 * eps * scale * dim**0.5
        beta[:, j] = torch.where(active, norm, torch.zeros_like(norm))
        q = torch.where(
            active[:, None], w / norm.clamp_min(torch.finfo(w.dtype).tiny)[:, None], torch.zeros_like(w)
        )
        m = j + 1
        if step is not None:
            step()
        if not bool(active.any()) or (stop is not None and stop(alpha[:, :m], beta[:, :m])):
            break
    return alpha[:, :m], beta[:, :m], basis[:, :m], lengths


def tridiagonal(alpha: Tensor, beta: Tensor) -> Tensor:
    """The symmetric tridiagonal ``T [m, m]`` of one run (``beta`` of length ``m``; its last entry unused)."""
    return torch.diag(alpha) + torch.diag(beta[:-1], 1) + torch.diag(beta[:-1], -1)


def lanczos_top_k(
    matvec: MatVec,
    dim: int,
    k: int = 1,
    tol: float = 1e-6,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    step: Step | None = None,
) -> EigenResult:
    """The ``k`` largest eigenvalues by Lanczos (see the module docstring)."""
    _check(dim, k, tol, max_iter)
    start = torch.randn(1, dim, generator=generator, dtype=dtype, device="cpu").to(device)

    def converged(a: Tensor, b: Tensor) -> bool:
        m = a.shape[1]
        if m < k:
            return False
        theta, s = torch.linalg.eigh(tridiagonal(a[0], b[0]))
        top = torch.arange(m - 1, m - 1 - k, -1)
        est = b[0, -1].abs() * s[-1, top].abs()
        return bool((est <= tol * theta[top].abs()).all())

    alpha, beta, basis, lengths = lanczos_tridiagonal(matvec, start, max_iter, converged, step)
    m = int(lengths[0])
    if m < k:
        raise ValueError(f"the operator has a Krylov space of dimension {m} < k={k} from this start")
    theta, s = torch.linalg.eigh(tridiagonal(alpha[0, :m], beta[0, :m]))
    top = torch.arange(m - 1, m - 1 - k, -1)
    values = theta[top]
    vectors = s[:, top].T @ basis[0, :m]
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    residuals = _relative_residuals(matvec, values, vectors)
    return EigenResult(
        values.tolist(), residuals, alpha.shape[1], all(r <= tol for r in residuals), "lanczos", tol, vectors
    )


def power_iteration(
    matvec: MatVec,
    dim: int,
    k: int = 1,
    tol: float = 1e-6,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    step: Step | None = None,
) -> EigenResult:
    """The ``k`` eigenvalues of largest magnitude by block power iteration with Rayleigh-Ritz."""
    _check(dim, k, tol, max_iter)
    v = torch.linalg.qr(torch.randn(dim, k, generator=generator, dtype=dtype).to(device))[0].T
    iterations = 0
    while True:
        w = matvec(v)
        iterations += 1
        theta, s = torch.linalg.eigh((v @ w.T + w @ v.T) / 2)
        order = theta.abs().argsort(descending=True)
        theta, s = theta[order], s[:, order]
        v, w = s.T @ v, s.T @ w
        res = (w - theta[:, None] * v).norm(dim=1) / theta.abs().clamp_min(torch.finfo(dtype).tiny)
        if step is not None:
            step()
        if bool((res <= tol).all()) or iterations >= max_iter:
            break
        v = torch.linalg.qr(w.T)[0].T
    order = theta.argsort(descending=True)
    values, vectors = theta[order], v[order]
    residuals = _relative_residuals(matvec, values, vectors)
    return EigenResult(
        values.tolist(), residuals, iterations, all(r <= tol for r in residuals), "power", tol, vectors
    )


EIGEN_METHODS = {"lanczos": lanczos_top_k, "power": power_iteration}


def _check(dim: int, k: int, tol: float, max_iter: int) -> None:
    if not 1 <= k <= dim:
        raise ValueError(f"k must be in [1, {dim}] (the number of parameters), got {k}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
