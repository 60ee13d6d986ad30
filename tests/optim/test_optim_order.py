"""Step order (issue 10, class 1): a call that would lose w is refused with the call expected next,
and the weights are never left shifted without the user being told how to get w back."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from method_cases import IMPLS_CPU, batch, make, model


def _losses(net, x, y):
    return F.cross_entropy(net(x), y, reduction="none")


@pytest.mark.parametrize("impl", IMPLS_CPU)
def test_sam_stages_out_of_order(impl: str) -> None:
    net, (x, y) = model(), batch()
    opt = make("sam", net, impl)
    w = [p.detach().clone() for p in net.parameters()]
    _losses(net, x, y).mean().backward()
    with pytest.raises(RuntimeError, match=r"second_step\(\) called out of order.*must be first_step\(\)"):
        opt.second_step()
    opt.first_step()
    shifted = [p.detach().clone() for p in net.parameters()]
    _losses(net, x, y).mean().backward()
    with pytest.raises(
        RuntimeError,
        match=r"first_step\(\) called out of order.*must be second_step"
        r".*still at w \+ eps.*abort\(\)",
    ):
        opt.first_step()
    assert all(torch.equal(p, s) for p, s in zip(net.parameters(), shifted))  # nothing changed
    with pytest.raises(RuntimeError, match=r"step\(\) called in the middle.*second_step\(\)"):
        opt.step(lambda: _losses(net, x, y).mean())
    opt.abort()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), w))
    assert all(p.grad is None for p in net.parameters())
    opt.step(lambda: _losses(net, x, y).mean())  # usable again


@pytest.mark.parametrize("method", ["focal", "imbsam"])
@pytest.mark.parametrize("impl", IMPLS_CPU)
def test_three_stage_order(method: str, impl: str) -> None:
    net, (x, y) = model(), batch()
    opt = make(method, net, impl)
    w = [p.detach().clone() for p in net.parameters()]
    for wrong in ("second_step", "third_step"):
        with pytest.raises(RuntimeError, match=rf"{wrong}\(\) called out of order.*must be first_step"):
            getattr(opt, wrong)()
    _losses(net, x, y).sum().backward()
    opt.first_step()
    with pytest.raises(RuntimeError, match=r"third_step\(\) called out of order.*must be second_step"):
        opt.third_step()
    _losses(net, x, y).sum().backward()
    opt.second_step()
    for wrong in ("first_step", "second_step"):
        with pytest.raises(RuntimeError, match=rf"{wrong}\(\) called out of order.*must be third_step"):
            getattr(opt, wrong)()
    with pytest.raises(RuntimeError, match="in the middle of a stage-by-stage step"):
        opt.step(lambda: _losses(net, x, y), targets=y)
    _losses(net, x, y).sum().backward()
    opt.third_step()
    assert not all(torch.equal(p, q) for p, q in zip(net.parameters(), w))  # a real update
    opt.step(lambda: _losses(net, x, y), targets=y)  # the closure API works after a full cycle


@pytest.mark.parametrize("impl", IMPLS_CPU)
def test_perturb_twice_is_refused(impl: str) -> None:
    net, (x, y) = model(), batch()
    opt = make("sam", net, impl)
    w = [p.detach().clone() for p in net.parameters()]
    _losses(net, x, y).mean().backward()
    opt.perturb()
    _losses(net, x, y).mean().backward()
    with pytest.raises(RuntimeError, match="already at w \\+ eps"):
        opt.perturb()
    opt.restore()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), w))


def test_stage_error_drops_the_half_step() -> None:
    """A stage that fails (here: no gradient at all) leaves w and no stale state behind."""
    net = model()
    opt = make("focal", net)
    w = [p.detach().clone() for p in net.parameters()]
    opt.first_step()  # nothing to keep: fine
    with pytest.raises(RuntimeError, match="no parameter has a gradient"):
        opt.second_step()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), w))
    with pytest.raises(RuntimeError, match="must be first_step"):
        opt.third_step()  # back at the start
