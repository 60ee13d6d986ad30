"""The README's swap-in and stage-by-stage examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_swap_in_example_runs_as_written(capsys) -> None:
    example = _blocks()[0]
    ns: dict = {}
    exec(compile(example, "README.md", "exec"), ns)
    out = capsys.readouterr().out
    assert re.search(r"loss \d+\.\d+, impl \w+", out), out
    assert torch.isfinite(ns["loss"])


def test_stage_by_stage_example_runs_after_swap_in() -> None:
    swap_in, stages = _blocks()[:2]
    ns: dict = {}
    exec(compile(swap_in, "README.md", "exec"), ns)
    for group in ns["optimizer"].param_groups:  # the cosine schedule ended at lr 0
        group["lr"] = 0.1
    before = [p.detach().clone() for p in ns["model"].parameters()]
    exec(compile(stages, "README.md", "exec"), ns)
    after = list(ns["model"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert all(p.grad is None for p in after)
