"""Device-side record of non-finite values met during one step, read on the host once.

Every check of a step (the losses at :math:`w` and :math:`w + \\epsilon`, the kept gradient
:math:`g_2`, the gradient that defines :math:`\\epsilon`, the final gradient :math:`g_1`) ORs one
boolean into a small device tensor; :meth:`NonFiniteFlags.raise_if_any` then makes the single host
read of the step.  A squared norm stands for its tensors: it is finite iff every element is finite
and the sum does not overflow.
"""

from __future__ import annotations

import torch
from torch import Tensor

WHAT = (
    "loss at w (first forward)",
    "loss at w + eps (second forward)",
    "gradient kept from the first backward (g2)",
    "gradient that defines eps",
    "gradient at w + eps (g1)",
)
LOSS_W, LOSS_EPS, GRAD_KEPT, GRAD_EPS, GRAD_FINAL = range(len(WHAT))


class NonFiniteFlags:
    """One boolean per quantity of :data:`WHAT`, kept on the device until :meth:`read`."""

    def __init__(self) -> None:
        self._flags: Tensor | None = None

    def note(self, slot: int, value: Tensor) -> None:
        """Record whether ``value`` (losses, or a squared norm) holds a non-finite number."""
        bad = ~torch.isfinite(value.detach()).all()
        if self._flags is None:
            self._flags = torch.zeros(len(WHAT), dtype=torch.bool, device=value.device)
        self._flags[slot].logical_or_(bad.to(self._flags.device))

    def any(self, slot: int) -> Tensor | None:
        """The flag of ``slot`` as a 0-dim float32 device tensor (None if nothing was noted)."""
        return None if self._flags is None else self._flags[slot].float()

    def clear(self) -> None:
        self._flags = None

    def raise_if_any(self, who: str) -> None:
        """The step's one host read: raise ``FloatingPointError`` naming what was non-finite."""
        flags, self._flags = self._flags, None
        if flags is None:
            return
        bad = [WHAT[i] for i, b in enumerate(flags.tolist()) if b]
        if bad:
            later = f" (later also: {', '.join(bad[1:])})" if len(bad) > 1 else ""
            raise FloatingPointError(
                f"{who}: non-finite {bad[0]}{later}: the step was not applied; weights, momentum "
                "and optimizer state are exactly as before it. Lower the learning rate or rho, "
                "check the data and the loss, or train with a GradScaler (which skips such steps)."
            )
