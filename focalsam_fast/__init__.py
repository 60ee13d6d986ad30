"""focalsam_fast: fast, reference-exact Focal-SAM, SAM, ImbSAM and CC-SAM for PyTorch."""

from . import kernels
from .losses import CELoss, LALoss, LDAMLoss, VSLoss, drw_weights, focal_coefficients
from .optim import CCSAM, SAM, ConstantRho, FocalSAM, ImbSAM, MultiStepRho, TwoStepRho

__version__ = "0.1.0"

__all__ = [
           "CCSAM",
           "SAM",
           "CELoss",
           "ConstantRho",
           "FocalSAM",
           "ImbSAM",
           "LALoss",
           "LDAMLoss",
           "MultiStepRho",
           "TwoStepRho",
           "VSLoss",
           "drw_weights",
           "focal_coefficients",
           "kernels",
]
