"""Every implementation module provides the declared kernel interface, signature for signature."""

from __future__ import annotations

import inspect
import typing

import pytest
import torch

from focalsam_fast import kernels
from focalsam_fast.kernels.interface import ATTRIBUTES, FUNCTIONS, STEP_FUNCTIONS, KernelModule


def _declared(name: str) -> list[tuple[str, object, object]]:
    params = list(inspect.signature(getattr(KernelModule, name)).parameters.values())[1:]  # no self
    return [(p.name, p.kind, p.default) for p in params]


@pytest.mark.parametrize("impl", kernels.IMPLS)
def test_module_satisfies_the_interface(impl: str) -> None:
    mod, why = kernels._load(impl)
    if mod is None:
        pytest.skip(f"impl {impl!r} is not importable here: {why}")
    for name in FUNCTIONS + STEP_FUNCTIONS:
        fn = getattr(mod, name, None)
        assert callable(fn), f"kernels.{impl} lacks {name}()"
        got = [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
        assert got == _declared(name), f"kernels.{impl}.{name}{inspect.signature(fn)}: not the interface's"
    for name in ATTRIBUTES:
        declared = typing.get_type_hints(KernelModule)[name]
        assert isinstance(getattr(mod, name, None), declared), f"kernels.{impl}.{name} is not a {declared}"


def test_every_name_is_checked() -> None:
    """The protocol declares exactly FUNCTIONS, STEP_FUNCTIONS and ATTRIBUTES, so a new pass cannot
    be left out of the check."""
    members = {n for n, v in vars(KernelModule).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert members == set(FUNCTIONS + STEP_FUNCTIONS)
    assert set(KernelModule.__annotations__) == set(ATTRIBUTES)


def test_only_the_reference_is_official() -> None:
    """``OFFICIAL`` marks the official per-tensor passes: exactly the executable spec."""
    official = [n for n in kernels.IMPLS if kernels._load(n)[0] is not None and kernels._load(n)[0].OFFICIAL]
    assert official == [kernels.UNIVERSAL] == ["reference"]


@pytest.mark.parametrize("impl", [i for i in kernels.IMPLS if kernels.availability(i, "cpu")[0]])
@pytest.mark.parametrize("guarded_nonfinite", [False, True], ids=["finite", "nonfinite-guarded"])
def test_optimizer_side_passes(impl: str, guarded_nonfinite: bool, seed: int) -> None:
    """perturb_params moves p to perturb's w + eps (or keeps w for a non-finite norm) and returns
    the exact w; keep_grads / add_grads / fuses_update do what the interface declares."""
    ops = kernels.get_ops(impl, "cpu")
    params = [torch.randn(5, 3), torch.randn(7)]
    grads = [torch.randn_like(p) for p in params]
    w = [p.clone() for p in params]
    norm = torch.tensor(float("inf")) if guarded_nonfinite else kernels.reference.sq_norm(grads).sqrt()
    want = [torch.empty_like(p) for p in params]
    kernels.reference.perturb(params, grads, want, norm, 0.3, True, 0.5)
    asked: list[bool] = []

    def finite() -> bool:
        asked.append(True)
        return not guarded_nonfinite

    saved = ops.perturb_params(params, grads, norm, 0.3, True, 0.5, {}, finite)
    assert all(torch.equal(p, e) for p, e in zip(params, want))
    assert all(torch.equal(s, x) for s, x in zip(saved, w))
    assert asked == ([True] if ops.OFFICIAL else [])  # only the host-side pass asks
    kept = ops.keep_grads(grads)
    assert all((k is g) != ops.OFFICIAL and torch.equal(k, g) for k, g in zip(kept, grads))
    total = [g + k for g, k in zip(grads, kept)]
    ops.add_grads(grads, kept)
    assert all(torch.equal(g, t) for g, t in zip(grads, total))
    sgd = torch.optim.SGD(params, lr=0.1)
    assert ops.fuses_update(sgd, sgd.param_groups[0]) != ops.OFFICIAL
    adam = torch.optim.Adam(params)
    assert not ops.fuses_update(adam, adam.param_groups[0])
