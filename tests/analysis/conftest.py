"""Shared fixtures of the analysis tests: one thread (these models are tiny; thread hand-offs cost
more than they save on a busy CPU) and one random CNN case with its dense Hessian per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from tests.analysis.helpers import dense_hessian, small_cnn


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cnn_case() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(model, x, y, dense Hessian)`` of :func:`small_cnn` (random each session)."""
    torch.set_num_threads(1)
    model, x, y = small_cnn()
    return model, x, y, dense_hessian(model, x, y)
