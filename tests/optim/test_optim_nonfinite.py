"""A non-finite value anywhere in a step (issue 10, class 1): without a GradScaler a
``FloatingPointError`` naming the first non-finite quantity and weights, momentum and state exactly
as before; with one, the step is skipped on the device and the scale backs off.  Also: any exception
inside a step leaves no half-step state."""

from __future__ import annotations

import pytest
import torch
from method_cases import (
    IMPLS_CPU,
    METHODS,
    assert_unchanged,
    batch,
    closure,
    make,
    model,
    snapshot,
)

# backward passes of one step: SAM 2 (h, g1); ImbSAM / Focal-SAM 3 (g2, h, g1); CC-SAM 1
BACKWARDS = {
    "sam": ("gradient that defines eps", "gradient at w \\+ eps"),
    "imbsam": ("gradient kept.*g2", "gradient that defines eps", "gradient at w \\+ eps"),
    "focal": ("gradient kept.*g2", "gradient that defines eps", "gradient at w \\+ eps"),
    "ccsam": ("gradient at w \\+ eps",),
}
CASES = [(m, k) for m in METHODS for k in range(len(BACKWARDS[m]))]
LOSS_CASES = [(m, c) for m in METHODS for c in (1, 2) if (m, c) != ("ccsam", 2)]


class Blow(torch.autograd.Function):
    """Identity whose backward number ``target`` (1-based) returns inf * grad."""

    calls = 0
    target = 0

    @staticmethod
    def forward(ctx, z):
        return z.clone()

    @staticmethod
    def backward(ctx, g):
        Blow.calls += 1
        return g * float("inf") if Blow.calls == Blow.target else g


def _warm(method: str, impl: str, **kw):
    net = model()
    opt = make(method, net, impl, **kw)
    x, y = batch()
    opt.step(closure(method, net, x, y), targets=y)  # momentum buffers exist from here on
    return net, opt, x, y


@pytest.mark.parametrize("impl", IMPLS_CPU)
@pytest.mark.parametrize(("method", "k"), CASES)
def test_nonfinite_gradient_raises_and_keeps_everything(method: str, k: int, impl: str) -> None:
    net, opt, x, y = _warm(method, impl)
    snap = snapshot(net, opt)
    Blow.calls, Blow.target = 0, k + 1
    with pytest.raises(FloatingPointError, match=f"non-finite {BACKWARDS[method][k]}.*exactly as before"):
        opt.step(closure(method, net, x, y, Blow.apply), targets=y)
    assert_unchanged(net, opt, snap)
    opt.step(closure(method, net, x, y), targets=y)  # the optimizer is usable afterwards
    assert all(torch.isfinite(p).all() for p in net.parameters())


@pytest.mark.parametrize("impl", IMPLS_CPU)
@pytest.mark.parametrize(("method", "call"), LOSS_CASES)
def test_nonfinite_loss_raises(method: str, call: int, impl: str) -> None:
    """CC-SAM's head mode runs the backbone once; its perturbed losses are covered below."""
    net, opt, x, y = _warm(method, impl)
    snap = snapshot(net, opt)
    n = {"calls": 0}

    def poison(t: torch.Tensor) -> torch.Tensor:
        n["calls"] += 1
        return t * float("nan") if n["calls"] == call else t

    where = "loss at w \\(first" if call == 1 else "loss at w \\+ eps"
    with pytest.raises(FloatingPointError, match=f"non-finite {where}"):
        opt.step(closure(method, net, x, y, poison), targets=y)
    assert_unchanged(net, opt, snap)


@pytest.mark.parametrize("impl", IMPLS_CPU)
def test_ccsam_all_weights_huge_noise_is_refused(impl: str) -> None:
    """perturb='all' with a huge noise ratio: inf weights in the perturbed passes, a finite clean
    loss; the step must be refused, not applied with non-finite weights."""
    net, opt, x, y = _warm("ccsam", impl, perturb="all")
    opt.noise_ratio = 1e300
    snap = snapshot(net, opt)
    with pytest.raises(FloatingPointError, match="non-finite loss at w \\+ eps"):
        opt.step(closure("ccsam", net, x, y), targets=y)
    assert_unchanged(net, opt, snap)


@pytest.mark.parametrize("impl", IMPLS_CPU)
@pytest.mark.parametrize(("method", "k"), CASES)
def test_grad_scaler_skips_on_the_device(method: str, k: int, impl: str) -> None:
    net, opt, x, y = _warm(method, impl)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    opt.step(closure(method, net, x, y), targets=y, grad_scaler=scaler)
    snap, scale = snapshot(net, opt), scaler.get_scale()
    Blow.calls, Blow.target = 0, k + 1
    opt.step(closure(method, net, x, y, Blow.apply), targets=y, grad_scaler=scaler)
    assert_unchanged(net, opt, snap)
    assert scaler.get_scale() == scale / 2


@pytest.mark.parametrize("impl", IMPLS_CPU)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("call", [1, 2])
def test_exception_in_any_pass_leaves_no_half_step(method: str, call: int, impl: str) -> None:
    net, opt, x, y = _warm(method, impl, perturb="all") if method == "ccsam" else _warm(method, impl)
    snap = snapshot(net, opt)
    n = {"calls": 0}

    def fail(t: torch.Tensor) -> torch.Tensor:
        n["calls"] += 1
        if n["calls"] == call:
            raise KeyError("data loader hiccup")
        return t

    with pytest.raises(KeyError, match="hiccup"):
        opt.step(closure(method, net, x, y, fail), targets=y)
    assert_unchanged(net, opt, snap)


def test_first_momentum_step_skipped_by_the_scaler_matches_reference() -> None:
    """A skipped first step under a scaler: the fused path's zero buffer (dampening 0) gives the
    reference's later steps exactly."""
    results = []
    for impl in IMPLS_CPU:
        torch.manual_seed(7)
        net = model()
        opt = make("focal", net, impl)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        x, y = batch()
        Blow.calls, Blow.target = 0, 3
        opt.step(closure("focal", net, x, y, Blow.apply), targets=y, grad_scaler=scaler)
        for _ in range(3):
            opt.step(closure("focal", net, x, y), targets=y, grad_scaler=scaler)
        results.append([p.detach().clone() for p in net.parameters()])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
