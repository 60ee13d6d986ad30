"""Cross-entropy (optionally class-weighted) with the long-tail loss interface."""

from __future__ import annotations

from .base import LogitAdjustedLoss


class CELoss(LogitAdjustedLoss):
    r""":math:`l_i = w_{y_i}\,(\operatorname{logsumexp}_j z_{ij} - z_{i y_i})`."""
