r"""CC-SAM's last-layers protocol (``CCSAM(perturb='last')``), the form the Focal-SAM paper timed.

The model is split in two: a *frozen* part (everything before the last layers; not perturbed,
its features :math:`h` computed once by the closure) and the *last layers* :math:`f_\theta`
(e.g. the last stage, the pooling and the classifier), whose trainable parameters :math:`\theta`
are the perturbed set.  For every class :math:`c` present in the batch, in turn:

1. one backward through :math:`f_\theta` for :math:`g_c = \nabla_\theta \frac1{n_c}
   \sum_{y_i = c} l_i(\theta)` (the clean graph is kept);
2. :math:`\epsilon_c` from :math:`g_c` (:meth:`CCSAM.class_perturbation`);
3. one forward of :math:`f_{\theta + \epsilon_c}` (``torch.func.functional_call``: the module's
   own tensors are never written), whose class-:math:`c` losses join the objective.

The single backward of the objective then runs each class graph once, so the last layers see
:math:`1 + U` forwards and :math:`U + 1` backwards per step for :math:`U` classes in the batch.
Class gradients are dropped after their class (the memory holds one :math:`g_c`, not :math:`U`).

Definition of the perturbed pass: the last layers at :math:`\theta + \epsilon_c` applied to the
whole batch's :math:`h`, class-:math:`c` rows kept.  When no BatchNorm in training mode is among
the last layers, rows do not interact and only class :math:`c`'s rows are fed (the same values,
:math:`n_c` rows instead of :math:`B`).  Running statistics of BatchNorm are updated by the clean
forward only: each perturbed pass works on copies of the buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

Perturbation = Callable[[Sequence[Tensor], float], list[Tensor]]
Losses = Callable[[Tensor, Tensor], Tensor]


def mixes_samples(layers: nn.Module) -> bool:
    """True when a BatchNorm in training mode is among ``layers`` (one row's output then depends
    on the other rows of the batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in layers.modules())


def perturbed_losses(
    layers: nn.Module,
    feats: Tensor,
    targets: Tensor,
    losses: Tensor,
    subset: Sequence[tuple[str, Tensor]],
    rows: dict[int, Tensor],
    counts: Sequence[int],
    perturbation: Perturbation,
    loss_fn: Losses,
) -> list[Tensor]:
    """Per-sample losses of every class present at :math:`\\theta + \\epsilon_c`, in ``rows``' order.

    ``losses`` are the clean per-sample losses (graph through ``layers`` kept), ``subset`` the
    perturbed ``(name, parameter)`` pairs of ``layers``, ``rows[c]`` the batch rows of class ``c``
    and ``perturbation(g_c, n_c)`` the :math:`\\epsilon_c` of each subset tensor."""
    names, params = zip(*subset)
    whole_batch = mixes_samples(layers)
    out = []
    for c, idx in rows.items():
        grads = torch.autograd.grad(losses[idx].mean(), params, retain_graph=True, allow_unused=True)
        with torch.no_grad():
            eps = perturbation(
                [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)], counts[c]
            )
        state = {n: b.clone() for n, b in layers.named_buffers()}
        state.update((n, p + e) for n, p, e in zip(names, params, eps))
        logits = functional_call(layers, state, (feats if whole_batch else feats[idx],))
        out.append(loss_fn(logits[idx] if whole_batch else logits, targets[idx]))
    return out
