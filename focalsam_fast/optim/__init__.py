"""SAM-family optimizers for long-tailed classification (docs/spec.md §2-5) and rho schedules."""

from .base import SAMBase, StepOutput
from .ccsam import CCSAM
from .focal_sam import FocalSAM
from .imbsam import ImbSAM
from .rho_schedule import ConstantRho, MultiStepRho, TwoStepRho
from .sam import SAM

__all__ = [
    "CCSAM",
    "SAM",
    "ConstantRho",
    "FocalSAM",
    "ImbSAM",
    "MultiStepRho",
    "SAMBase",
    "StepOutput",
    "TwoStepRho",
]
