"""CLIP ViT (open_clip) FFT / LIFT on the tiny config: same code path as ViT-B/16, no download."""

from __future__ import annotations

import math
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F

from focalsam_fast.models import (
    AdaptFormer,
    ClipClassifier,
    build_model,
    clip_tokenizer,
    create_clip,
    lift_bottleneck_dim,
)

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def clip(seed: int) -> open_clip.CLIP:
    return create_clip("tiny", random_weights=True)


@pytest.mark.parametrize(("num_classes", "r"), [(10, 1), (47, 1), (48, 2), (100, 4), (1000, 32), (8142, 256)])
def test_bottleneck_dim(num_classes: int, r: int) -> None:
    assert lift_bottleneck_dim(num_classes) == r


def test_lift_is_identity_at_init(clip: open_clip.CLIP) -> None:
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        frozen = clip.encode_image(x)  # open_clip's own forward: ln_post(cls token) @ proj
        model = ClipClassifier(clip, NAMES, mode="lift").eval()
        feats = model.features(x)
        torch.testing.assert_close(feats @ model.visual.proj, frozen, rtol=0, atol=0)
        for adapter in model.adapters:
            adapter.up.weight.normal_()
        assert not torch.allclose(model.features(x), feats)  # the adapters are wired into every block


def test_lift_trains_only_adapters_and_head(clip: open_clip.CLIP) -> None:
    model = ClipClassifier(clip, NAMES, mode="lift")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight"} | {f"adapters.{n}" for n, _ in model.adapters.named_parameters()}
    assert len(model.adapters) == 2 and all(a.down.out_features == 1 for a in model.adapters)
    assert isinstance(model.adapters[0], AdaptFormer)
    model(torch.randn(2, 3, 32, 32)).logsumexp(1).sum().backward()
    assert all((p.grad is not None) == p.requires_grad for p in model.parameters())


def test_fft_trains_blocks_and_head(clip: open_clip.CLIP) -> None:
    model = ClipClassifier(clip, NAMES, mode="fft")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    blocks = {f"visual.transformer.{n}" for n, _ in model.visual.transformer.named_parameters()}
    assert trainable == blocks | {"fc.weight"}
    assert model.adapters is None
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(
            model.features(x) @ model.visual.proj, clip.encode_image(x), rtol=0, atol=0
        )


def test_text_head_reproduces_zero_shot_logits(clip: open_clip.CLIP) -> None:
    """With an orthonormal-column projection, the cosine head equals CLIP's zero-shot logits up to a
    positive per-image scale: head = 25 * |f P| / |f| * zero_shot (f: 768-d features, P: proj)."""
    clip = clip.double()
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn_like(clip.visual.proj))
        clip.visual.proj.copy_(q)
        x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
        image = clip.encode_image(x)
        text = clip.encode_text(clip_tokenizer(clip)([f"a photo of a {n}." for n in NAMES]), normalize=True)
        zero_shot = F.normalize(image, dim=-1) @ text.T
        model = ClipClassifier(clip, NAMES, mode="lift").eval()
        logits = model(x)
        feats = model.features(x)
    scale = 25 * image.norm(dim=-1, keepdim=True) / feats.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(logits, scale * zero_shot, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(logits.argmax(1), zero_shot.argmax(1))
    torch.testing.assert_close(model.fc.weight, F.normalize(text @ model.visual.proj.T, dim=-1))


def test_weights_come_only_from_a_local_file(tmp_path: Path, clip: open_clip.CLIP) -> None:
    with pytest.raises(ValueError, match="random_weights=True"):
        create_clip("tiny")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded") as info:
        create_clip("tiny", clip_weights=tmp_path / "clip.bin")
    assert "\n" not in str(info.value) and str(tmp_path / "clip.bin") in str(info.value)
    torch.save(clip.state_dict(), tmp_path / "clip.bin")
    loaded = create_clip("tiny", clip_weights=tmp_path / "clip.bin")
    for (name, a), (_, b) in zip(clip.state_dict().items(), loaded.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_clip_errors(clip: open_clip.CLIP) -> None:
    with pytest.raises(ValueError, match="valid: ViT-B-16, tiny"):
        create_clip("ViT-L-14", random_weights=True)
    with pytest.raises(ValueError, match="valid: fft, lift"):
        ClipClassifier(clip, NAMES, mode="bitfit")
    with pytest.raises(ValueError, match="class_names with 10 entries"):
        build_model("clip_vit_b16_lift", 10, config="tiny", random_weights=True)


def test_adapter_down_projection_is_kaiming_normal() -> None:
    """LIFT's init: Kaiming-normal with a = sqrt(5) (same std as PyTorch's default Kaiming-uniform,
    but unbounded: about 8.3 % of the weights lie beyond the uniform's bound sqrt(3) * std)."""
    from focalsam_fast.models import AdaptFormer

    w = AdaptFormer(512, 256).down.weight.detach()
    std = math.sqrt(2.0 / (1 + 5)) / math.sqrt(512)
    assert abs(w.std().item() / std - 1) < 0.02
    beyond = (w.abs() > math.sqrt(3) * std).float().mean().item()
    assert 0.07 < beyond < 0.10
