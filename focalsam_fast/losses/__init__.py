"""Long-tail losses (docs/spec.md §6): CE, LA, LDAM (+ its cosine head, re-exported), VS, DRW schedule."""

from ..models.heads import NormedLinear
from .base import LogitAdjustedLoss
from .ce import CELoss
from .coefficients import class_priors, focal_coefficients
from .drw import class_balanced_weights, drw_weights
from .la import LALoss
from .ldam import LDAMLoss
from .vs import VSLoss

LOSSES = {"ce": CELoss, "la": LALoss, "ldam": LDAMLoss, "vs": VSLoss}

__all__ = [
    "LOSSES",
    "CELoss",
    "LALoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "NormedLinear",
    "VSLoss",
    "class_balanced_weights",
    "class_priors",
    "drw_weights",
    "focal_coefficients",
]
