"""Loss-landscape analysis per class group: Hessian top eigenvalues, trace, spectral density and
filter-normalised landscapes of a model or a ``focalsam train`` checkpoint (``focalsam analyze``).

The names are imported on first use (PEP 562), so ``focalsam_fast.analysis.cli`` loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "AnalysisSettings": ".settings", "CheckpointAnalysis": ".api", "GroupAnalysis": ".api",
    "analyze_checkpoint": ".api", "analyze_group": ".api", "write_outputs": ".api",
    "SLQResult": ".density", "slq": ".density", "EigenResult": ".eigen", "lanczos_top_k": ".eigen",
    "power_iteration": ".eigen", "AnalysisError": ".errors", "HessianOperator": ".hvp",
    "Landscape": ".landscape", "filter_normalized_direction": ".landscape", "landscape_1d": ".landscape",
    "landscape_2d": ".landscape", "TraceResult": ".trace", "hutchinson_trace": ".trace",
    "rademacher": ".trace",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
