"""Build open_clip's CLIP ViT-B/16 (or a tiny test config) offline; weights only from a local file."""

from __future__ import annotations

from pathlib import Path

import open_clip
from open_clip.model import CLIPTextCfg, CLIPVisionCfg

CLIP_CONFIGS = ("ViT-B-16", "tiny")

# A tiny ViT with the same code path as ViT-B/16, for tests and CPU benchmarks: 32x32 images,
# 8x8 patches, width 64, 2 blocks; the text tower keeps CLIP's tokenizer (vocabulary 49,408, 77 tokens).
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": CLIPVisionCfg(layers=2, width=64, head_width=32, image_size=32, patch_size=8),
    "text_cfg": CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
}


def create_clip(
    config: str = "ViT-B-16",
    clip_weights: str | Path | None = None,
    random_weights: bool = False,
    quick_gelu: bool = True,
) -> open_clip.CLIP:
    """An open_clip ``CLIP`` model built without any download.

    ``config``: ``'ViT-B-16'`` (``open_clip.create_model('ViT-B-16', pretrained=None)``) or
    ``'tiny'`` (:data:`TINY_CLIP_CONFIG`).  ``clip_weights``: a local open_clip / OpenAI checkpoint
    loaded with ``open_clip.load_checkpoint``.  Without weights, ``random_weights=True`` must be
    passed explicitly (tests, benchmarks).  ``quick_gelu``: OpenAI's CLIP (used by LIFT) was trained
    with QuickGELU; keep it on for OpenAI weights.
    """
    if config == "ViT-B-16":
        model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=quick_gelu)
    elif config == "tiny":
        model = open_clip.CLIP(**TINY_CLIP_CONFIG, quick_gelu=quick_gelu)
    else:
        raise ValueError(f"unknown CLIP config {config!r}; valid: {', '.join(CLIP_CONFIGS)}")
    if clip_weights is not None:
        path = Path(clip_weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"CLIP weights {path} not found; put a local CLIP checkpoint there (nothing is downloaded)"
            )
        open_clip.load_checkpoint(model, str(path))
    elif not random_weights:
        raise ValueError(
            "CLIP needs local weights: pass clip_weights=PATH, or random_weights=True for tests/benchmarks"
        )
    return model.eval()


def clip_tokenizer(model: open_clip.CLIP) -> open_clip.tokenizer.SimpleTokenizer:
    """CLIP's BPE tokenizer (bundled with open_clip, offline) at the model's context length."""
    return open_clip.get_tokenizer("ViT-B-16", context_length=model.context_length)
