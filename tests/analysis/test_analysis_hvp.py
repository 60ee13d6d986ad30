"""Hessian-vector products against dense autograd Hessians (fp64)."""

from __future__ import annotations

import pytest
import torch

from tests.analysis.helpers import dense_hessian, linear_softmax, operator, small_cnn


def test_linear_softmax_dense_matches_autograd() -> None:
    model, x, y = linear_softmax()
    exact = dense_hessian(model, x, y)
    ours = operator(model, x, y).dense()
    assert ours.shape == exact.shape == (28, 28)
    torch.testing.assert_close(ours, exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cache_graph", [True, False])
def test_small_cnn_with_batchnorm_eval_matches_autograd(cache_graph: bool, cnn_case) -> None:
    model, x, y, exact = cnn_case
    op = operator(model, x, y, chunk=10, cache_graph=cache_graph)
    assert op.dim == 393
    ours = op.dense()
    torch.testing.assert_close(ours, exact, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(ours, ours.T, rtol=1e-9, atol=1e-11)
    assert not op.model.training


def test_batched_products_equal_single_products_and_chunking() -> None:
    model, x, y = small_cnn()
    op_chunked, op_whole = operator(model, x, y, chunk=5), operator(model, x, y, chunk=len(y))
    v = torch.randn(5, op_chunked.dim, dtype=torch.float64)
    batched = op_chunked.matvec(v)
    singles = torch.stack([op_chunked.matvec(row) for row in v])
    torch.testing.assert_close(batched, singles, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(batched, op_whole.matvec(v), rtol=1e-10, atol=1e-12)
    assert op_chunked.products == 10


def test_operator_leaves_the_callers_model_alone_and_checks_shapes() -> None:
    model, x, y = small_cnn()
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    op = operator(model, x, y)
    op.matvec(torch.randn(op.dim, dtype=torch.float64))
    assert model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match=r"vectors must be \[393\]"):
        op.matvec(torch.randn(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="no samples"):
        operator(model, x[:0], y[:0])


def test_loss_and_gradient_match_direct_computation() -> None:
    model, x, y = linear_softmax()
    op = operator(model, x, y)
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert op.loss_at() == pytest.approx(loss.item(), rel=1e-12)
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.testing.assert_close(op.gradient(), flat, rtol=1e-10, atol=1e-12)
    shifted = op.flat_params() + 0.1
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
        moved = torch.nn.functional.cross_entropy(model(x), y).item()
    assert op.loss_at(shifted) == pytest.approx(moved, rel=1e-12)
