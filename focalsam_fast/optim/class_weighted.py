"""The methods that weight each sample by a per-class table (ImbSAM, CC-SAM, Focal-SAM), and the
one step shared by the two-objective methods (ImbSAM and Focal-SAM differ only in their tables)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor
from torch.optim import Optimizer

from .._validation import check_batch, check_classes, check_targets
from .base import Closure, SAMBase, StepOutput
from .nonfinite import LOSS_EPS, LOSS_W

Objective = Callable[[Tensor], Tensor]


class ClassWeightedSAM(SAMBase):
    """A SAM method whose passes weight each sample by a per-class table (targets required)."""

    def __init__(
        self, params: Iterable[Any], base_optimizer: type[Optimizer], *, num_classes: int, **kwargs: Any
    ) -> None:
        super().__init__(params, base_optimizer, **kwargs)
        self.num_classes = num_classes
        self._tables: dict[tuple[Any, ...], Any] = {}

    def _reset_transient(self) -> None:
        super()._reset_transient()
        self._tables = {}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_tables", None)
        return state

    def _gather_table(self, table: Tensor, name: str, like: Tensor) -> Tensor:
        """``table`` on ``like``'s device and dtype (the device copy is cached)."""
        key = (name, like.device, like.dtype)
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = table.to(device=like.device, dtype=like.dtype)
        return t

    def _gather(self, table: Tensor, name: str, targets: Tensor, like: Tensor) -> Tensor:
        """``table[targets]`` on the losses' device/dtype."""
        return self._gather_table(table, name, like)[targets.to(like.device)]

    def _check_targets_early(self, targets: Tensor | None) -> None:
        """Type and shape always (no data read); values under ``check_inputs`` (one host read)."""
        if targets is None:
            raise TypeError(f"{type(self).__name__}.step needs targets= (the batch labels)")
        check_targets(targets, self.num_classes, values=self.check_inputs)

    def _outputs(self, closure: Closure, targets: Tensor, slot: int) -> tuple[Tensor, Tensor | None]:
        """A forward pass: per-sample losses matching ``targets``, logits matching the classes."""
        losses, logits = self._forward(closure, True, slot)
        check_batch(targets, losses.shape[0])
        if logits is not None:
            check_classes(logits, self.num_classes, type(self).__name__)
        return losses, logits


class TwoObjectiveSAM(ClassWeightedSAM):
    r"""ImbSAM and Focal-SAM: the per-sample losses split into a kept objective :math:`K` and a
    sharpness objective :math:`S` by per-class weights;

    .. math::
        \epsilon = \rho\, \nabla S(w) / (\lVert \nabla S(w) \rVert_2 + 10^{-12}), \qquad
        g = \nabla K(w) + \nabla S(w + \epsilon)

    then the base optimizer applies :math:`g` at the restored :math:`w` (2 forward + 3 backward).
    Stage-by-stage use: ``backward(K, retain_graph=True); first_step(); backward(S);
    second_step(); backward(S at w + eps); third_step()``.
    """

    stages = ("first_step", "second_step", "third_step")

    def _objectives(self, targets: Tensor, like: Tensor) -> tuple[Objective, Objective]:
        """``(K, S)`` as functions of the per-sample losses of one batch."""
        raise NotImplementedError

    def first_step(self) -> None:
        """After ``backward(K, retain_graph=True)``: keep ``g2 = grad K(w)``."""
        self._run_stage("first_step", self.stash_grads)

    def second_step(self) -> None:
        """After ``backward(S)``: perturb ``w -> w + eps`` along ``grad S(w)``."""
        self._run_stage("second_step", self.perturb)

    def third_step(self) -> None:
        """After ``backward(S(w + eps))``: restore ``w``, ``g = g1 + g2``, base step."""
        self._run_stage("third_step", self.restore_and_update)

    def _two_objective_step(self, closure: Closure, targets: Tensor, inv: float | Tensor) -> StepOutput:
        losses, _ = self._outputs(closure, targets, LOSS_W)
        kept, sharp = self._objectives(targets, losses)
        self._keep_gradient(kept(losses))
        self._backward(sharp(losses))

        def second() -> StepOutput:
            losses2, logits2 = self._outputs(closure, targets, LOSS_EPS)
            self._before_last_backward()
            self._backward(sharp(losses2))
            return StepOutput(losses2.detach().mean(), None if logits2 is None else logits2.detach())

        return self._sam_tail(second, inv)

    def step(
        self, closure: Closure | None = None, targets: Tensor | None = None, grad_scaler: Any = None
    ) -> StepOutput:
        """One step.  ``closure()`` re-runs the forward and returns per-sample losses
        (``reduction='none'``) or ``(losses, logits)``; ``targets`` are the batch labels.  Returns
        the unweighted mean loss and the logits at ``w + eps``."""
        if closure is None:
            raise TypeError(
                f"{type(self).__name__}.step needs a closure returning per-sample losses (and logits)"
            )
        self._check_targets_early(targets)
        inv = self._begin(grad_scaler)
        return self._guarded(lambda: self._two_objective_step(closure, targets, inv))
