"""focalsam_fast: fast, reference-exact Focal-SAM, SAM, ImbSAM and CC-SAM for PyTorch.

The public names are imported on first use (PEP 562): ``import focalsam_fast`` alone loads no
torch, so the ``focalsam`` command line answers ``--help`` and argument errors at once.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_WHERE = {
    "CCSAM": ".optim",
    "SAM": ".optim",
    "ConstantRho": ".optim",
    "FocalSAM": ".optim",
    "ImbSAM": ".optim",
    "MultiStepRho": ".optim",
    "TwoStepRho": ".optim",
    "CELoss": ".losses",
    "LALoss": ".losses",
    "LDAMLoss": ".losses",
    "VSLoss": ".losses",
    "drw_weights": ".losses",
    "focal_coefficients": ".losses",
    "kernels": ".kernels",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)
