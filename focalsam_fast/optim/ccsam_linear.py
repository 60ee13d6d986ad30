r"""CC-SAM's per-class perturbation of a linear head in closed form (the fused impls' path).

For ``head = nn.Linear`` with weight :math:`W` and bias :math:`b`, features :math:`f_i` and the
per-sample logit gradients :math:`\delta_i = \partial l_i / \partial z_i`, class :math:`c`'s clean
gradients are :math:`g^W_c = \frac1{n_c}\Delta_c^\top F_c` and :math:`g^b_c = \frac1{n_c}\sum_{i\in c}
\delta_i`, so

.. math::
    \lVert g^W_c \rVert_F^2 = \tfrac1{n_c^2} \textstyle\sum_{ij}
        (\Delta_c\Delta_c^\top)_{ij} (F_c F_c^\top)_{ij}, \qquad
    z'_c = f_c (W + s_W g^W_c)^\top + b + s_b g^b_c
         = \operatorname{head}(f_c) + \tfrac{s_W}{n_c} (f_c F_c^\top)\Delta_c + s_b g^b_c

with :math:`s_t = r_t\sqrt k / \lVert g^t_c\rVert` the scale of :meth:`CCSAM.class_perturbation`.
Only ``n_c x n_c`` Gram matrices and ``n_c x C`` products are formed, never the ``C x D``
class gradients or perturbed weights (8,142 x 2,048 per class on iNaturalist).  :math:`F_c`,
:math:`\Delta_c` and the scales are constants, so autograd gives the gradient at
:math:`\theta + \epsilon_c` for :math:`W`, :math:`b` and the features, as the generic path does.
:math:`F_c, \Delta_c` are the class's rows of the *global* batch and :math:`f_c` the live rows
being perturbed: on one process the same rows, under torch.distributed this rank's rows against
every rank's (:mod:`.ccsam_dist`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn


def class_logits(
    head: nn.Linear, live: Tensor, f: Tensor, d: Tensor, scale: Callable[[str, Tensor], Tensor]
) -> Tensor:
    r"""Perturbed logits of the ``live`` feature rows of one class.

    ``f`` and ``d`` are the class's detached feature rows and per-sample logit gradients of the
    clean loss in the whole batch (:math:`F_c`, :math:`\Delta_c`); ``scale(name, norm)`` turns the
    class-gradient norm of tensor ``name`` into :math:`s_t` (see :func:`scales`)."""
    n = f.shape[0]
    out = head(live)
    w_norm = ((d @ d.T) * (f @ f.T)).sum().clamp_min(0).sqrt() / n
    out = out + (scale("weight", w_norm) / n) * ((live @ f.T) @ d)
    if head.bias is not None:
        g_b = d.sum(0) / n
        out = out + scale("bias", g_b.norm()) * g_b
    return out


def scales(
    noise_ratio: float, params: dict[str, Tensor], global_norm: bool
) -> Callable[[float, str, Tensor], Tensor]:
    r"""``scale(count, name, g_norm)``: :math:`s_t = \nu\sqrt{\theta_t}\sqrt k / (\sqrt{\lVert g\rVert}\,
    d\,\lVert g\rVert)` with :math:`d = \sqrt2 \max(n_c-1, 1)^{1/4} k^{1/4}`, zero for a zero
    gradient and for a tensor outside the perturbed subset; parameter norms taken once."""
    k = sum(p.numel() for p in params.values())
    norms = {name: p.detach().norm() for name, p in params.items()}
    if global_norm:
        total = torch.linalg.vector_norm(torch.stack(list(norms.values())))
        norms = dict.fromkeys(norms, total)

    def scale(count: float, name: str, g_norm: Tensor) -> Tensor:
        if name not in params:
            return g_norm.new_zeros(())
        denom = math.sqrt(2.0) * max(count - 1.0, 1.0) ** 0.25 * k**0.25
        r = noise_ratio * norms[name].sqrt() / g_norm.sqrt() / denom
        s = r * math.sqrt(k) / g_norm
        return torch.where(g_norm > 0, s, torch.zeros_like(s))

    return scale
