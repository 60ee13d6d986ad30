"""SAMBase reaches every implementation through the kernel interface only."""

from __future__ import annotations

import pytest
import torch
from method_cases import IMPLS_CPU
from torch import nn

from focalsam_fast import SAM, kernels


@pytest.mark.parametrize("impl", IMPLS_CPU)
def test_official_passes_follow_the_implementation(impl: str) -> None:
    """``_official_passes`` (what CC-SAM asks before its closed-form head) is the resolved module's
    ``OFFICIAL``, also when one param group falls back to the universal implementation."""
    model = nn.Linear(4, 3)
    opt = SAM(model.parameters(), impl=impl, lr=0.1)
    assert opt._official_passes == kernels.get_ops(impl, "cpu").OFFICIAL
    emb = nn.Embedding(5, 2, sparse=True)
    mixed = SAM([{"params": model.parameters()}, {"params": emb.parameters()}], lr=0.1)
    x = torch.randn(6, 4)
    mixed.step(lambda: model(x).sum() + emb(torch.tensor([0, 3])).sum())
    assert mixed._official_passes == (kernels.UNIVERSAL in mixed.impl.split(","))
