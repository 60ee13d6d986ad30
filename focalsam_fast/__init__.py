"""focalsam_fast: fast, reference-exact Focal-SAM, SAM, ImbSAM and CC-SAM for PyTorch.

The public names are imported on first use (PEP 562): ``import focalsam_fast`` alone loads no
torch, so the ``focalsam`` command line answers ``--help`` and argument errors at once.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "CCSAM": ".optim", "SAM": ".optim", "ConstantRho": ".optim", "FocalSAM": ".optim", "ImbSAM": ".optim",
    "MultiStepRho": ".optim", "TwoStepRho": ".optim",
    "CELoss": ".losses", "LALoss": ".losses", "LDAMLoss": ".losses", "VSLoss": ".losses",
    "drw_weights": ".losses", "focal_coefficients": ".losses",
}

__all__ = ["CCSAM", "SAM", "CELoss", "ConstantRho", "FocalSAM", "ImbSAM", "LALoss", "LDAMLoss",
           "MultiStepRho", "TwoStepRho", "VSLoss", "drw_weights", "focal_coefficients", "kernels"]


def __getattr__(name: str) -> Any:
    if name == "kernels":
        value: Any = importlib.import_module(".kernels", __name__)
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
