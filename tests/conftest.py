"""Shared pytest set-up: GPU marker handling and the Triton CPU interpreter switch."""

from __future__ import annotations

import os

# Triton reads TRITON_INTERPRET when its kernels are decorated, so it must be set before any
# test module imports them.  Without a GPU the Triton kernels can only run in the interpreter.
if os.environ.get("FOCALSAM_NO_TRITON_INTERPRET") is None:
    try:
        import torch

        if not torch.cuda.is_available():
            os.environ.setdefault("TRITON_INTERPRET", "1")
    except ImportError:
        pass

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def seed() -> int:
    """A fresh seed for every test (printed under "Captured stdout setup" when it fails), so inputs
    are random in each run but a failure can be replayed with ``torch.manual_seed``."""
    s = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(s)
    print(f"torch.manual_seed({s})")
    return s
