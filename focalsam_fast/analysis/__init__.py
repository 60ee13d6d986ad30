"""Loss-landscape analysis per class group: Hessian top eigenvalues, trace, spectral density and
filter-normalised landscapes of a model or a ``focalsam train`` checkpoint (``focalsam analyze``)."""

from .api import (
           AnalysisSettings,
           CheckpointAnalysis,
           GroupAnalysis,
           analyze_checkpoint,
           analyze_group,
           write_outputs,
)
from .density import SLQResult, slq
from .eigen import EigenResult, lanczos_top_k, power_iteration
from .errors import AnalysisError
from .hvp import HessianOperator
from .landscape import Landscape, filter_normalized_direction, landscape_1d, landscape_2d
from .trace import TraceResult, hutchinson_trace, rademacher

__all__ = ["AnalysisError", "AnalysisSettings", "CheckpointAnalysis", "EigenResult", "GroupAnalysis",
           "HessianOperator", "Landscape", "SLQResult", "TraceResult", "analyze_checkpoint", "analyze_group",
           "filter_normalized_direction", "hutchinson_trace", "lanczos_top_k", "landscape_1d", "landscape_2d",
           "power_iteration", "rademacher", "slq", "write_outputs"]
