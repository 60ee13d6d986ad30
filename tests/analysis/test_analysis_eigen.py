"""Top eigenvalues by Lanczos and block power iteration against dense spectra (fp64)."""

from __future__ import annotations

import pytest
import torch

from focalsam_fast.analysis import lanczos_top_k, power_iteration
from tests.analysis.helpers import dense_hessian, linear_softmax, operator, symmetric


def _quadratic(n: int = 150) -> torch.Tensor:
    rest = torch.rand(n - 3, dtype=torch.float64) * 6 - 1  # in [-1, 5)
    return symmetric(torch.cat([torch.tensor([10.0, 8.5, 7.0], dtype=torch.float64), rest]))


@pytest.mark.parametrize("method", [lanczos_top_k, power_iteration])
def test_top_k_of_quadratic_to_1e_6(method) -> None:
    a = _quadratic()
    exact = torch.linalg.eigvalsh(a).flip(0)[:3]
    res = method(
        lambda v: v @ a,
        a.shape[0],
        k=3,
        tol=1e-10,
        max_iter=600,
        generator=torch.Generator().manual_seed(1),
        dtype=torch.float64,
    )
    assert res.converged
    torch.testing.assert_close(torch.tensor(res.eigenvalues, dtype=torch.float64), exact, rtol=1e-6, atol=0)
    assert max(res.residuals) <= 1e-10
    values = torch.tensor(res.eigenvalues, dtype=torch.float64)
    vec_err = res.eigenvectors @ a - values[:, None] * res.eigenvectors
    assert float(vec_err.norm(dim=1).max()) <= 1e-8


def test_lanczos_needs_few_iterations_and_caps_them() -> None:
    a = _quadratic()
    full = lanczos_top_k(lambda v: v @ a, a.shape[0], tol=1e-8, max_iter=150, dtype=torch.float64)
    assert full.converged and full.iterations < 80
    capped = lanczos_top_k(lambda v: v @ a, a.shape[0], tol=1e-14, max_iter=5, dtype=torch.float64)
    assert capped.iterations == 5 and not capped.converged and capped.residuals[0] > 1e-14


@pytest.mark.parametrize("case", ["linear_softmax", "small_cnn"])
def test_lambda_max_and_top_k_of_models_match_dense_hessian(case: str, cnn_case) -> None:
    if case == "small_cnn":
        model, x, y, dense = cnn_case
    else:
        model, x, y = linear_softmax()
        dense = dense_hessian(model, x, y)
    exact = torch.linalg.eigvalsh(dense).flip(0)
    op = operator(model, x, y, chunk=len(y))
    res = lanczos_top_k(
        op.matvec,
        op.dim,
        k=2,
        tol=1e-10,
        max_iter=op.dim,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(0),
    )
    got = torch.tensor(res.eigenvalues, dtype=torch.float64)
    torch.testing.assert_close(got, exact[:2], rtol=1e-6, atol=0)
    assert max(res.residuals) <= 1e-10


def test_power_iteration_lambda_max_of_softmax_model() -> None:
    model, x, y = linear_softmax()
    op = operator(model, x, y, chunk=len(y))
    exact = torch.linalg.eigvalsh(dense_hessian(model, x, y)).flip(0)
    power = power_iteration(op.matvec, op.dim, k=2, tol=1e-8, max_iter=3000, dtype=torch.float64)
    if abs(float(exact[1] / exact[2])) > 0.98:  # too small a gap: the cap may stop it first
        assert power.iterations <= 3000
    else:
        assert power.converged
    assert power.eigenvalues[0] == pytest.approx(float(exact[0]), rel=1e-6)


def test_seeded_start_is_deterministic_and_bad_arguments_are_named() -> None:
    a = _quadratic(40)
    runs = [
        lanczos_top_k(
            lambda v: v @ a,
            40,
            k=2,
            tol=1e-3,
            max_iter=6,
            dtype=torch.float64,
            generator=torch.Generator().manual_seed(5),
        ).eigenvalues
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match=r"k must be in \[1, 40\]"):
        lanczos_top_k(lambda v: v @ a, 40, k=41)
    with pytest.raises(ValueError, match="tol must be > 0"):
        power_iteration(lambda v: v @ a, 40, tol=0.0)
