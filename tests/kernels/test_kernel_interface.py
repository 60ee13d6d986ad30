"""Every implementation module provides the declared kernel interface, signature for signature."""

from __future__ import annotations

import inspect
import typing

import pytest

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
