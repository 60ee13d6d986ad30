"""Per-epoch schedules of the perturbation radius ``rho``, used like LR schedulers.

Each scheduler writes ``group['rho']`` of every param group when it is built (epoch 0) and on
each :meth:`RhoScheduler.step` (call once per epoch, after the epoch, as for LR schedulers).
``state_dict``/``load_state_dict`` make a resumed run continue with the same rho.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from torch.optim import Optimizer

from .._validation import check_nonneg


class RhoScheduler:
    """Base: subclasses implement :meth:`rho_at` (0-based epoch -> rho, or None for the group's
    initial rho)."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not all("rho" in g for g in optimizer.param_groups):
            raise TypeError(
                f"{type(self).__name__} needs a SAM-family optimizer (param groups with 'rho'), "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_rhos = [g["rho"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def rho_at(self, epoch: int, base_rho: float) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        for g, base in zip(self.optimizer.param_groups, self.base_rhos):
            g["rho"] = self.rho_at(self.last_epoch, base)

    def step(self) -> None:
        """Advance one epoch and write the new rho into every param group."""
        self.last_epoch += 1
        self._apply()

    def get_last_rho(self) -> list[float]:
        """The rho of each param group for the current epoch."""
        return [g["rho"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_rhos": list(self.base_rhos)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.base_rhos = list(state["base_rhos"])
        self._apply()


class ConstantRho(RhoScheduler):
    """rho_e = the group's initial rho."""

    def rho_at(self, epoch: int, base_rho: float) -> float:
        return base_rho


class TwoStepRho(RhoScheduler):
    r"""docs/spec.md §8 two-value step: :math:`\rho_e = r_0` while :math:`e + 1 < f E`, else :math:`r_1`
    (``f = 0.8``; ImageNet-LT ResNet-50 uses ``(0.1, 0.2)``)."""

    def __init__(
        self, optimizer: Optimizer, rho_steps: Sequence[float], epochs: int, switch_fraction: float = 0.8
    ) -> None:
        if len(rho_steps) != 2:
            raise ValueError(f"rho_steps must hold 2 values, got {list(rho_steps)}")
        for r in rho_steps:
            check_nonneg("rho_steps value", r)
        if epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {epochs}")
        self.rho_steps, self.epochs, self.switch_fraction = tuple(rho_steps), epochs, switch_fraction
        super().__init__(optimizer)

    def rho_at(self, epoch: int, base_rho: float) -> float:
        return self.rho_steps[0] if epoch + 1 < self.switch_fraction * self.epochs else self.rho_steps[1]


class MultiStepRho(RhoScheduler):
    """``values[k]`` from 0-based epoch ``milestones[k-1]`` on (``values[0]`` before the first)."""

    def __init__(self, optimizer: Optimizer, values: Sequence[float], milestones: Sequence[int]) -> None:
        if len(values) != len(milestones) + 1:
            raise ValueError(
                f"need one more value than milestones, got {len(values)} values and "
                f"{len(milestones)} milestones"
            )
        if list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {list(milestones)}")
        for r in values:
            check_nonneg("rho value", r)
        self.values, self.milestones = tuple(values), tuple(milestones)
        super().__init__(optimizer)

    @classmethod
    def saddle_longtail(cls, optimizer: Optimizer) -> MultiStepRho:
        """Saddle-LongTail's four-value CIFAR schedule (200 epochs): 0.05 for epochs 1-5,
        0.1 up to 160, 0.5 up to 180, 0.6 after (1-based epochs, as its ``adjust_rho``)."""
        return cls(optimizer, (0.05, 0.1, 0.5, 0.6), (5, 160, 180))

    def rho_at(self, epoch: int, base_rho: float) -> float:
        return self.values[bisect.bisect_right(self.milestones, epoch)]
