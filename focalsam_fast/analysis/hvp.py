r"""Hessian-vector products of a model's loss on one group of samples.

The operator is :math:`H = \nabla^2_\theta L_G(\theta)` with
:math:`L_G(\theta) = \frac{1}{N}\sum_{i \in G} \ell(f(x_i; \theta), y_i)` over the group's ``N``
samples, the model in eval mode (BatchNorm uses its running statistics, so the loss is a sum over
samples and chunks add up exactly).

Vectors are flat: ``[P]`` or a batch ``[K, P]`` over the ``P`` trainable parameters (in
``model.parameters()`` order).  A batch of ``K`` vectors costs one batched double-backward pass per
data chunk (``torch.autograd.grad(..., is_grads_batched=True)``, i.e. ``vmap`` over the tangents),
not ``K`` passes.  With ``cache_graph`` the first-order graph of every chunk is built once and kept,
so each product is only the second backward pass.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

LossFn = Callable[[Tensor, Tensor], Tensor]


class HessianOperator:
    """``H v`` for the mean per-sample loss ``loss_fn(model(x), y)`` over ``inputs``/``targets``.

    Args:
        model: the network (a private copy is put in eval mode; the caller's model is not changed).
        loss_fn: per-sample loss ``(logits [B, C], targets [B]) -> [B]``.
        inputs, targets: the whole group (on the model's device).
        chunk_size: samples per forward pass.
        dtype: e.g. ``torch.float64`` for checks (model, inputs and vectors in that dtype).
        cache_graph: keep every chunk's first-order graph (memory: about one training step per chunk).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        inputs: Tensor,
        targets: Tensor,
        chunk_size: int = 256,
        dtype: torch.dtype | None = None,
        cache_graph: bool = True,
    ) -> None:
        if len(inputs) == 0:
            raise ValueError("the group has no samples")
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.model = copy.deepcopy(model).eval()
        if dtype is not None:
            self.model.to(dtype)
            inputs = inputs.to(dtype) if inputs.is_floating_point() else inputs
        self.loss_fn, self.chunk_size, self.cache_graph = loss_fn, chunk_size, cache_graph
        self.inputs, self.targets = inputs, targets
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.n = len(targets)
        self.products = 0  # Hessian-vector products computed
        self._graphs: list[list[Tensor]] | None = None

    def _chunks(self) -> list[tuple[Tensor, Tensor]]:
        return list(zip(self.inputs.split(self.chunk_size), self.targets.split(self.chunk_size)))

    def flat_params(self) -> Tensor:
        """The parameters as one flat vector ``[P]`` (a copy)."""
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def split(self, v: Tensor) -> list[Tensor]:
        """Flat ``[P]`` / ``[K, P]`` -> per-parameter views shaped like the parameters (with ``K`` first)."""
        lead = v.shape[:-1]
        return [c.view(*lead, *p.shape) for c, p in zip(v.split(self.sizes, dim=-1), self.params)]

    def _chunk_grads(self, x: Tensor, y: Tensor, create_graph: bool) -> list[Tensor]:
        loss = self.loss_fn(self.model(x), y).sum() / self.n
        return list(torch.autograd.grad(loss, self.params, create_graph=create_graph))

    def gradient(self) -> Tensor:
        r"""\nabla L_G as a flat vector."""
        total = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for x, y in self._chunks():
            total += torch.cat([g.reshape(-1) for g in self._chunk_grads(x, y, False)])
        return total

    def loss_at(self, theta: Tensor | None = None) -> float:
        """:math:`L_G` at flat parameters ``theta`` (default: the model's own), without gradients."""
        params = None if theta is None else dict(zip(self.names, self.split(theta)))
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        with torch.no_grad():
            for x, y in self._chunks():
                out = self.model(x) if params is None else functional_call(self.model, params, (x,))
                total += self.loss_fn(out, y).sum().double()
        return float(total) / self.n

    def _graphs_for(self) -> list[tuple[list[Tensor], tuple[Tensor, Tensor] | None]]:
        if self.cache_graph:
            if self._graphs is None:
                self._graphs = [self._chunk_grads(x, y, True) for x, y in self._chunks()]
            return [(g, None) for g in self._graphs]
        return [([], chunk) for chunk in self._chunks()]

    def matvec(self, v: Tensor) -> Tensor:
        """``H v`` for ``v`` of shape ``[P]`` or ``[K, P]`` (same shape back)."""
        if v.shape[-1] != self.dim or v.dim() not in (1, 2):
            raise ValueError(f"vectors must be [{self.dim}] or [K, {self.dim}], got {tuple(v.shape)}")
        batched = v.dim() == 2
        v = v.to(self.dtype)
        parts = self.split(v)
        total = torch.zeros_like(v)
        for grads, chunk in self._graphs_for():
            if chunk is not None:
                grads = self._chunk_grads(*chunk, create_graph=True)
            hv = torch.autograd.grad(
                grads,
                self.params,
                grad_outputs=parts,
                retain_graph=self.cache_graph,
                is_grads_batched=batched,
                allow_unused=True,
            )
            total += torch.cat(
                [
                    (torch.zeros_like(q) if h is None else h).reshape(*v.shape[:-1], -1)
                    for h, q in zip(hv, parts)
                ],
                dim=-1,
            )
        self.products += v.shape[0] if batched else 1
        return total

    def dense(self) -> Tensor:
        """The full ``[P, P]`` Hessian (``P`` products; for checks on small models)."""
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return torch.cat([self.matvec(block) for block in eye.split(64)])
