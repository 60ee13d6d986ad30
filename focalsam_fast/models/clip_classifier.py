"""CLIP ViT image classifier for full fine-tuning (FFT) or LIFT (docs/spec.md §9)."""

from __future__ import annotations

from collections.abc import Sequence

import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import nn

from focalsam_fast.models.base import FeatureClassifier
from focalsam_fast.models.clip_backbone import clip_tokenizer
from focalsam_fast.models.heads import NormedLinear
from focalsam_fast.models.lift import AdaptFormer, lift_bottleneck_dim

CLIP_MODES = ("fft", "lift")
PROMPT = "a photo of a {}."


def _check_visual(visual: nn.Module) -> VisionTransformer:
    ok = (
        isinstance(visual, VisionTransformer)
        and visual.attn_pool is None
        and visual.pool_type == "tok"
        and not visual.final_ln_after_pool
        and all(type(b) is ResidualAttentionBlock for b in visual.transformer.resblocks)
    )
    if not ok:
        raise ValueError("only open_clip ViTs with class-token pooling and standard blocks are supported")
    return visual


@torch.no_grad()
def text_head_weights(
    clip: open_clip.CLIP, class_names: Sequence[str], prompt: str = PROMPT, batch_size: int = 256
) -> torch.Tensor:
    """``[C, width]`` unit rows: normalised text features of ``prompt.format(name)`` mapped back
    through the transposed visual projection (``t @ proj.T``) and normalised again (LIFT).

    Underscores in class names become spaces.
    """
    tokenizer = clip_tokenizer(clip)
    proj = clip.visual.proj
    rows = []
    for start in range(0, len(class_names), batch_size):
        names = class_names[start : start + batch_size]
        tokens = tokenizer([prompt.format(n.replace("_", " ")) for n in names]).to(proj.device)
        text = clip.encode_text(tokens, normalize=True).to(proj.dtype)
        rows.append(F.normalize(text @ proj.T, dim=-1))
    return torch.cat(rows)


class ClipClassifier(FeatureClassifier):
    """CLIP's image tower with a cosine head (scale 25, no bias) on the pre-projection features.

    ``mode='fft'``: the transformer blocks and the head train; patch/positional embeddings,
    ``ln_pre``/``ln_post`` stay frozen.  ``mode='lift'``: an :class:`AdaptFormer` parallel to the MLP
    of every block (bottleneck ``lift_bottleneck_dim(C)`` unless given) and the head train; all of
    CLIP is frozen.  The head is initialised by :func:`text_head_weights`; the text tower and the
    visual projection are used for that only and not kept as submodules.  The head and adapters
    take the dtype of CLIP's weights.
    """

    def __init__(
        self,
        clip: open_clip.CLIP,
        class_names: Sequence[str],
        mode: str = "lift",
        bottleneck: int | None = None,
        head_scale: float = 25.0,
        prompt: str = PROMPT,
    ) -> None:
        super().__init__()
        if mode not in CLIP_MODES:
            raise ValueError(f"unknown CLIP tuning mode {mode!r}; valid: {', '.join(CLIP_MODES)}")
        visual = _check_visual(clip.visual)
        width = visual.transformer.width
        self.mode = mode
        dtype = visual.proj.dtype
        self.fc = NormedLinear(width, len(class_names), scale=head_scale).to(dtype)
        self.fc.weight.data.copy_(text_head_weights(clip, class_names, prompt))
        self.visual = visual
        for p in visual.parameters():
            p.requires_grad_(mode == "fft")
        if mode == "fft":
            for frozen in (visual.conv1, visual.ln_pre, visual.ln_post):
                frozen.requires_grad_(False)
            for p in (visual.class_embedding, visual.positional_embedding, visual.proj):
                p.requires_grad_(False)
            self.adapters = None
        else:
            r = bottleneck if bottleneck is not None else lift_bottleneck_dim(len(class_names))
            self.adapters = nn.ModuleList(
                AdaptFormer(width, r).to(dtype) for _ in visual.transformer.resblocks
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, width]`` class-token features after ``ln_post`` (before the projection)."""
        v = self.visual
        x = v.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.ln_pre(v.patch_dropout(x))
        batch_first = v.transformer.batch_first
        if not batch_first:
            x = x.transpose(0, 1)
        for i, block in enumerate(v.transformer.resblocks):
            if self.adapters is None:
                x = block(x)
            else:
                x = x + block.ls_1(block.attention(q_x=block.ln_1(x)))
                x = x + block.ls_2(block.mlp(block.ln_2(x))) + self.adapters[i](x)
        if not batch_first:
            x = x.transpose(0, 1)
        return v.ln_post(x[:, 0])
