"""Loss-landscape analysis per class group: Hessian top eigenvalues, trace, spectral density and
filter-normalised landscapes of a model or a ``focalsam train`` checkpoint (``focalsam analyze``).

The names are imported on first use (PEP 562), so ``focalsam_fast.analysis.cli`` loads no torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "AnalysisSettings": ".settings",
    "CheckpointAnalysis": ".api",
    "GroupAnalysis": ".api",
    "analyze_checkpoint": ".api",
    "analyze_group": ".api",
    "write_outputs": ".api",
    "SLQResult": ".density",
    "slq": ".density",
    "EigenResult": ".eigen",
    "lanczos_top_k": ".eigen",
    "power_iteration": ".eigen",
    "AnalysisError": ".errors",
    "HessianOperator": ".hvp",
    "Landscape": ".landscape",
    "filter_normalized_direction": ".landscape",
    "landscape_1d": ".landscape",
    "landscape_2d": ".landscape",
    "TraceResult": ".trace",
    "hutchinson_trace": ".trace",
    "rademacher": ".trace",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
