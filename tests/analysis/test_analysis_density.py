"""Stochastic Lanczos quadrature: exact quadrature moments per run, unbiased spectral moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from focalsam_fast.analysis import slq
from focalsam_fast.analysis.eigen import lanczos_tridiagonal, tridiagonal
from tests.analysis.helpers import symmetric


def test_each_run_integrates_polynomials_up_to_degree_2m_minus_1_exactly() -> None:
    a = symmetric(torch.randn(80, dtype=torch.float64))
    v = torch.randn(1, 80, dtype=torch.float64)
    alpha, beta, _, lengths = lanczos_tridiagonal(lambda w: w @ a, v, 6)
    theta, s = torch.linalg.eigh(tridiagonal(alpha[0], beta[0]))
    u = v[0] / v[0].norm()
    for p in range(2 * 6):
        quad = float((s[0] ** 2 * theta**p).sum())
        exact = float(u @ torch.linalg.matrix_power(a, p) @ u)
        assert abs(quad - exact) <= 1e-9 * max(1.0, abs(exact)), p
    assert int(lengths[0]) == 6


def test_slq_moments_match_the_exact_spectrum() -> None:
    """The mean of ``runs`` per-run moments is within 5.5 standard errors of the exact moment, for
    p = 1, 2, 3: a statistical check (Student-t, 399 degrees of freedom) that a correct SLQ fails
    with probability 6.8e-8 per moment, 2e-7 per run.  At 3 standard errors it failed 1 of 300
    seeds (the worst of the 900 moments was 3.17 standard errors)."""
    eig = torch.cat([torch.rand(95, dtype=torch.float64), torch.tensor([3.0, 4.0, 5.0, 6.0, 8.0])])
    a = symmetric(eig)
    runs = 400
    res = slq(
        lambda w: w @ a,
        100,
        runs=runs,
        steps=10,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(2),
    )
    for p in (1, 2, 3):
        per_run = np.array([np.dot(w, np.asarray(n) ** p) for n, w in zip(res.nodes, res.weights)])
        exact = float((eig**p).mean())
        assert abs(per_run.mean() - exact) <= 5.5 * per_run.std(ddof=1) / np.sqrt(runs), p
        assert res.moment(p) == float(per_run.mean())
    assert all(abs(sum(w) - 1) < 1e-12 for w in res.weights)


def test_smoothed_density_integrates_to_one_and_peaks_at_eigenvalues() -> None:
    a = symmetric(torch.tensor([-1.0] * 30 + [2.0] * 30, dtype=torch.float64))
    res = slq(lambda w: w @ a, 60, runs=3, steps=8, dtype=torch.float64)
    grid, dens, sigma = res.density(sigma_rel=0.02, points=4000)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)
    left, right = grid < 0.5, grid >= 0.5
    assert grid[left][dens[left].argmax()] == pytest.approx(-1.0, abs=2 * sigma)
    assert grid[right][dens[right].argmax()] == pytest.approx(2.0, abs=2 * sigma)
    assert 0 < sigma == pytest.approx(0.02 * 3.0, rel=1e-6)


def test_invariant_krylov_space_stops_a_run_early() -> None:
    a = symmetric(torch.tensor([1.0, 1.0, 3.0, 3.0, 3.0], dtype=torch.float64))
    res = slq(lambda w: w @ a, 5, runs=2, steps=5, dtype=torch.float64)
    assert all(len(n) == 2 for n in res.nodes)
    assert all(np.allclose(sorted(n), [1.0, 3.0]) for n in res.nodes)
