"""CLIP training precision, ``--prec fp32 | fp16 | amp``, as the released CLIP scripts' ``--prec``
(docs/fidelity.md).

* ``fp32``: fp32 weights, no autocast (plus ``--amp`` if asked).
* ``fp16`` (pure fp16, the official ``model.half()``-style CLIP): every weight, gradient, saved
  copy of ``w`` and SGD momentum buffer is float16 and there is no loss scaling, as in the
  official scripts.  The images are cast to float16 at the first convolution.  What stays in
  float32: the logits handed to the loss (the step closure calls ``.float()``, so the fused
  focal-loss kernel and every loss run in float32, their logit gradients are rounded to float16
  on the way back), and the SAM gradient norm and ``rho / ||g||`` scale (docs/spec.md §2
  Decision: the 1e-12 guard must not underflow).
* ``amp``: fp32 weights, float16 autocast and the package's GradScaler path (one scale per
  step, a non-finite step skipped on the device); needs CUDA like ``--amp fp16``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import TrainConfig


def autocast_mode(cfg: TrainConfig) -> str:
    """The run's autocast (``none``, ``bf16``, ``fp16``): ``--amp``, or ``fp16`` under ``--prec amp``."""
    return "fp16" if cfg.prec == "amp" else cfg.amp


def weight_dtype(cfg: TrainConfig) -> torch.dtype:
    """The dtype of the model's weights (and so of the gradients and optimizer state)."""
    return torch.float16 if cfg.prec == "fp16" else torch.float32


def _cast_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: the input image batch in the dtype of ``module``'s weight."""
    return (args[0].to(module.weight.dtype), *args[1:])


def apply_precision(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """``model`` in the weight dtype of ``cfg.prec``; for ``fp16`` every parameter and buffer
    becomes float16 and the first convolution casts its input (float32 images from the data
    loader) to float16, in training, evaluation and ``features``."""
    if cfg.prec != "fp16":
        return model
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise ValueError(f"--prec fp16 casts the images at the first convolution, and {cfg.model} has none")
    model.half()
    first.register_forward_pre_hook(_cast_input)
    return model


def precision_record(cfg: TrainConfig) -> dict[str, Any]:
    """What ``--prec`` / ``--amp`` mean for this run, for ``config.json``."""
    mode = autocast_mode(cfg)
    return {
        "prec": cfg.prec,
        "weights": str(weight_dtype(cfg)).removeprefix("torch."),
        "autocast": mode,
        "grad_scaler": mode == "fp16",
        "loss_logits": "float32",
    }
