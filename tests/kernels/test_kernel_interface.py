"""Every implementation module provides the declared kernel interface, signature for signature."""

from __future__ import annotations

import inspect

import pytest

from focalsam_fast import kernels
from focalsam_fast.kernels.interface import FUNCTIONS, KernelModule


def _declared(name: str) -> list[tuple[str, object, object]]:
    params = list(inspect.signature(getattr(KernelModule, name)).parameters.values())[1:]  # no self
    return [(p.name, p.kind, p.default) for p in params]


@pytest.mark.parametrize("impl", kernels.IMPLS)
def test_module_satisfies_the_interface(impl: str) -> None:
    mod, why = kernels._load(impl)
    if mod is None:
        pytest.skip(f"impl {impl!r} is not importable here: {why}")
    for name in FUNCTIONS:
        fn = getattr(mod, name, None)
        assert callable(fn), f"kernels.{impl} lacks {name}()"
        got = [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
        assert got == _declared(name), f"kernels.{impl}.{name}{inspect.signature(fn)}: not the interface's"


def test_every_name_is_checked() -> None:
    """The protocol declares exactly FUNCTIONS, so a new pass cannot be left out of the check."""
    members = {n for n, v in vars(KernelModule).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert members == set(FUNCTIONS)
