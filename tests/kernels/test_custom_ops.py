"""The ``focalsam::`` custom ops: schema/fake-kernel checks (opcheck) and torch.compile tracing."""

from __future__ import annotations

import pytest
import torch

from focalsam_fast.kernels import reference
from focalsam_fast.testing import (
    FP32_ATOL,
    FP32_ELEM_RTOL,
    FP32_LOSS_GRAD_ATOL,
    FP32_LOSS_RTOL,
    tolerances,
)

pytest.importorskip("focalsam_fast.kernels.cpp", reason="focalsam_fast._C_cpu is not built")
from focalsam_fast.kernels import _native, cpp

SIZES = (5, 70_000, 0, (3, 4))


def _rand(sizes=SIZES) -> list[torch.Tensor]:
    return [torch.randn(s) for s in sizes]


def _tables(c: int) -> tuple[torch.Tensor, ...]:
    return torch.rand(c), 0.5 + torch.rand(c), torch.randn(c), torch.rand(c)


def _focal_args(weighted: bool) -> tuple:
    weight = torch.rand(11) if weighted else None
    return (torch.randn(6, 11), torch.randint(0, 11, (6,)), *_tables(11), weight)


OPCHECK_CASES = {
    "sq_norm": lambda: (_native.sq_norm_op, (_rand(), [])),
    "sq_norm_adaptive": lambda: (_native.sq_norm_op, (_rand(), _rand())),
    "perturb": lambda: (
        _native.perturb_op,
        (_rand(), _rand(), _rand(), None, 2.5, None, 0.05, None, 1.0, False),
    ),
    "perturb_tensors": lambda: (
        _native.perturb_op,
        (
            _rand(),
            _rand(),
            _rand(),
            torch.tensor(3.0),
            0.0,
            torch.tensor(0.1),
            0.0,
            torch.tensor(0.5),
            0.0,
            True,
        ),
    ),
    "sgd_step": lambda: (
        _native.sgd_step_op,
        (_rand(), _rand(), _rand(), _rand(), None, 0.1, 0.9, 0.0, 1e-4, True, False, False),
    ),
    "sgd_step_plain": lambda: (
        _native.sgd_step_op,
        (_rand(), _rand(), [], [], torch.tensor(0.1), 0.0, 0.0, 0.0, 0.0, False, True, True),
    ),
    "sgd_step_found_inf": lambda: (
        _native.sgd_step_op,
        (
            _rand(),
            _rand(),
            [],
            _rand(),
            None,
            0.1,
            0.9,
            0.0,
            0.0,
            False,
            False,
            False,
            torch.tensor([float(torch.randint(0, 2, ()))]),
        ),
    ),
    "focal_loss": lambda: (_native.focal_loss_op, _focal_args(False)),
    "focal_loss_weighted": lambda: (_native.focal_loss_op, _focal_args(True)),
    "focal_loss_grad_scale": lambda: (_native.focal_loss_op, (*_focal_args(True), None, 1024.0)),
    "focal_loss_grad_scale_tensor": lambda: (
        _native.focal_loss_op,
        (*_focal_args(False), torch.tensor(65536.0), 1.0),
    ),
}


@pytest.mark.parametrize("case", sorted(OPCHECK_CASES))
def test_opcheck(seed: int, case: str) -> None:
    op, args = OPCHECK_CASES[case]()
    torch.library.opcheck(op, args)


def _step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    grads2: list[torch.Tensor],
    bufs: list[torch.Tensor],
    out: list[torch.Tensor],
    rho: torch.Tensor,
    lr: torch.Tensor,
    ops,
) -> torch.Tensor:
    """norm -> perturb -> SGD: the optimizer side of one Focal-SAM step."""
    norm = ops.sq_norm(grads).sqrt()
    ops.perturb(params, grads, out, norm, rho)
    ops.sgd_step(
        params,
        grads,
        grads2,
        bufs,
        lr=lr,
        momentum=0.9,
        dampening=0.0,
        weight_decay=5e-4,
        nesterov=False,
        maximize=False,
        first_step=False,
    )
    return norm


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("grad_mode", [True, False])
def test_compile_fullgraph_traces_the_ops(seed: int, backend: str, grad_mode: bool) -> None:
    torch._dynamo.reset()
    params, grads, grads2, bufs = _rand(), _rand(), _rand(), _rand()
    out = [torch.empty_like(p) for p in params]
    rho, lr = torch.tensor(0.05), torch.tensor(0.1)
    ref_p, ref_b, ref_out = (
        [p.clone() for p in params],
        [b.clone() for b in bufs],
        [torch.empty_like(p) for p in params],
    )
    compiled = torch.compile(_step, fullgraph=True, backend=backend)
    with torch.set_grad_enabled(grad_mode):
        norm = compiled(params, grads, grads2, bufs, out, rho, lr, cpp)
    ref_norm = _step(ref_p, grads, grads2, ref_b, ref_out, rho, lr, reference)
    torch.testing.assert_close(norm, ref_norm, **tolerances(torch.float32))
    torch.testing.assert_close(out, ref_out, rtol=2e-6, atol=FP32_ATOL)  # scale from a reduced norm
    torch.testing.assert_close(params, ref_p, rtol=FP32_ELEM_RTOL, atol=FP32_ATOL)
    torch.testing.assert_close(bufs, ref_b, rtol=FP32_ELEM_RTOL, atol=FP32_ATOL)


def test_eager_no_grad_calls_bump_the_versions_of_mutated_tensors(seed: int) -> None:
    """Eager no-grad calls skip the op dispatch; autograd must still see the in-place updates."""
    params, grads, grads2, bufs = _rand(), _rand(), _rand(), _rand()
    out = [torch.empty_like(p) for p in params]
    before = {
        name: [t._version for t in ts]
        for name, ts in (("params", params), ("grads", grads), ("bufs", bufs), ("out", out))
    }
    with torch.no_grad():
        _step(params, grads, grads2, bufs, out, torch.tensor(0.05), torch.tensor(0.1), cpp)
    after = {
        name: [t._version for t in ts]
        for name, ts in (("params", params), ("grads", grads), ("bufs", bufs), ("out", out))
    }
    for name in ("params", "bufs", "out"):
        assert all(a > b for a, b in zip(after[name], before[name])), name
    assert after["grads"] == before["grads"]

    w = torch.randn(7, requires_grad=True)
    y = (w * w).sum()  # saves w for the backward pass
    with torch.no_grad():
        cpp.sgd_step(
            [w],
            [torch.randn(7)],
            None,
            [],
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            weight_decay=0.0,
            nesterov=False,
            maximize=False,
            first_step=False,
        )
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_compile_fullgraph_focal_loss(seed: int) -> None:
    torch._dynamo.reset()
    logits, targets = torch.randn(9, 13), torch.randint(0, 13, (9,))
    tables = _tables(13)

    def f(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        losses, ga, gb = cpp.focal_loss(z, y, *tables)
        return losses.mean() + (ga + gb).sum()

    got = torch.compile(f, fullgraph=True, backend="aot_eager")(logits, targets)
    losses, ga, gb = reference.focal_loss(logits, targets, *tables)
    torch.testing.assert_close(got, losses.mean() + (ga + gb).sum(), rtol=FP32_LOSS_RTOL, atol=FP32_ATOL)


def test_compile_fullgraph_found_inf_and_grad_scale(seed: int) -> None:
    """The new tensor arguments trace: a set found_inf skips the traced step, grad_scale scales."""
    torch._dynamo.reset()
    params, grads = _rand(), _rand()
    before = [p.clone() for p in params]
    logits, targets = torch.randn(9, 13), torch.randint(0, 13, (9,))
    tables = _tables(13)

    def f(flag: torch.Tensor, gs: torch.Tensor) -> torch.Tensor:
        cpp.sgd_step(
            params,
            grads,
            None,
            [],
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            weight_decay=0.0,
            nesterov=False,
            maximize=False,
            first_step=False,
            found_inf=flag,
        )
        return cpp.focal_loss(logits, targets, *tables, grad_scale=gs)[1]

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    ga = compiled(torch.ones(1), torch.tensor(4.0))
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    ref = reference.focal_loss(logits, targets, *tables, grad_scale=4.0)[1]
    torch.testing.assert_close(ga, ref, rtol=FP32_LOSS_RTOL, atol=4.0 * FP32_LOSS_GRAD_ATOL)
    compiled(torch.zeros(1), torch.tensor(4.0))
    expected = [b.clone() for b in before]
    reference.sgd_step(
        expected,
        grads,
        None,
        [],
        lr=0.1,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=False,
        first_step=False,
    )
    torch.testing.assert_close(params, expected, rtol=FP32_ELEM_RTOL, atol=FP32_ATOL)
