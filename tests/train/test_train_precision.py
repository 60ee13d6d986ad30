"""``--prec fp32 | fp16 | amp``: a tiny CLIP run (open_clip's tiny ViT, random weights, random
32x32 images) through the real Trainer in each precision; dtype of weights and optimizer state,
finite losses, GradScaler use, and what config.json and the checkpoint record."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from focalsam_fast.data import ArrayDataset, LongTailedData, build_transform
from focalsam_fast.data.groups import thresholds_for
from focalsam_fast.train import builders, engine
from focalsam_fast.train.checkpoint import load_checkpoint
from focalsam_fast.train.config import TrainConfig
from focalsam_fast.train.engine import Trainer
from focalsam_fast.train.errors import SetupError
from focalsam_fast.train.precision import apply_precision, autocast_mode, precision_record, weight_dtype

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
COUNTS = [12, 9, 7, 5, 4, 3, 3, 2, 2, 1]


def use_tiny_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's CLIP ViT-B/16 replaced by open_clip's tiny ViT with random weights (same code path)."""
    real = builders.build_model

    def build(name: str, num_classes: int, **options: Any) -> torch.nn.Module:
        options.pop("clip_weights", None)
        return real(name, num_classes, **{**options, "config": "tiny", "random_weights": True})

    monkeypatch.setattr(builders, "build_model", build)


@pytest.fixture
def tiny_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`use_tiny_clip` for one test."""
    use_tiny_clip(monkeypatch)


@pytest.fixture(scope="module")
def focal_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trainer]:
    """The Focal-SAM tiny CLIP run in fp16 and in fp32 with the same (fresh) seed, data and initial
    weights, shared by the tests that only read them."""
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"tiny data seed {seed}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_tiny_clip(monkeypatch)
        return {prec: run_tiny(tmp_path_factory.mktemp(prec), seed, prec=prec) for prec in ("fp16", "fp32")}


def tiny_data(seed: int) -> LongTailedData:
    """A long-tailed 10-class set of random 40x40 images with the CLIP transforms at size 32."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), COUNTS)
    train = ArrayDataset(
        rng.integers(0, 256, (len(labels), 40, 40, 3), dtype=np.uint8),
        labels,
        build_transform("clip", True, 32),
    )
    test_labels = np.repeat(np.arange(10), 2)
    test = ArrayDataset(
        rng.integers(0, 256, (20, 40, 40, 3), dtype=np.uint8), test_labels, build_transform("clip", False, 32)
    )
    return LongTailedData(train, test, COUNTS, NAMES, thresholds_for("cifar10_lt", 100))


def make_tiny(
    tmp_path: Path, seed: int, out: str = "run", resume: Path | None = None, **overrides: Any
) -> Trainer:
    """The Trainer of a tiny CLIP run in ``tmp_path / out`` (not started)."""
    weights = tmp_path / "ViT-B-16.pt"
    weights.write_bytes(b"unused: the tiny model has random weights")
    cfg = TrainConfig(
        **{
            "model": "clip_vit_b16_lift",
            "dataset": "cifar10_lt",
            "data_root": str(tmp_path),
            "clip_weights": str(weights),
            "epochs": 1,
            "batch_size": 8,
            "max_steps": 2,
            "lr": 0.01,
            **overrides,
        }
    )
    return Trainer(
        cfg, tmp_path / out, resume=resume, data=tiny_data(seed), log=lambda msg: None, progress=False
    )


def run_tiny(tmp_path: Path, seed: int, init_scale: float | None = None, **overrides: Any) -> Trainer:
    trainer = make_tiny(tmp_path, seed, **overrides)
    if init_scale is not None:
        trainer.scaler = torch.amp.GradScaler(trainer.device.type, init_scale=init_scale)
    trainer.run()
    return trainer


def momentum_buffers(trainer: Trainer) -> list[torch.Tensor]:
    opt = trainer.optimizer
    state = opt.base_optimizer.state if hasattr(opt, "base_optimizer") else opt.state
    return [s["momentum_buffer"] for s in state.values() if s.get("momentum_buffer") is not None]


def check_run(trainer: Trainer, dtype: torch.dtype, scaler: bool) -> None:
    params = list(trainer.model.parameters())
    assert {p.dtype for p in params} == {dtype}  # frozen CLIP, adapters and head alike
    trainable = [p for p in params if p.requires_grad]
    bufs = momentum_buffers(trainer)
    assert len(bufs) == len(trainable) and {b.dtype for b in bufs} == {dtype}
    assert all(bool(torch.isfinite(b).all()) for b in bufs) and sum(float(b.abs().sum()) for b in bufs) > 0
    assert trainer.scaler.is_enabled() == scaler
    record = trainer.history[-1]
    assert record["global_step"] == 2 and math.isfinite(record["train_loss"])
    assert record["test_overall"] is not None
    config = json.loads((trainer.out_dir / "config.json").read_text())
    assert config["prec"] == trainer.cfg.prec
    assert config["resolved"]["precision"] == precision_record(trainer.cfg)
    assert config["resolved"]["group_thresholds"] == {
        "tail_below": 200,
        "head_above": 1000,
        "official": True,
        "source": thresholds_for("cifar10_lt").source,
    }
    ckpt = load_checkpoint(trainer.checkpoint_path)
    assert ckpt["config"]["prec"] == trainer.cfg.prec
    assert {t.dtype for t in ckpt["model"].values() if t.is_floating_point()} == {dtype}
    opt_state = ckpt["optimizer"].get("base_optimizer", ckpt["optimizer"])["state"]  # SAM family / SGD
    assert {s["momentum_buffer"].dtype for s in opt_state.values() if "momentum_buffer" in s} == {dtype}


@pytest.mark.parametrize("method", ["sam", "imbsam", "ccsam", "sgd"])  # focalsam: focal_runs
def test_precision_fp16_pure(tiny_clip: None, tmp_path: Path, seed: int, method: str) -> None:
    check_run(run_tiny(tmp_path, seed, prec="fp16", method=method), torch.float16, scaler=False)


def test_precision_focalsam_fp16_and_fp32(focal_runs: dict[str, Trainer]) -> None:
    check_run(focal_runs["fp16"], torch.float16, scaler=False)
    check_run(focal_runs["fp32"], torch.float32, scaler=False)
    assert precision_record(focal_runs["fp16"].cfg) == {
        "prec": "fp16",
        "weights": "float16",
        "autocast": "none",
        "grad_scaler": False,
        "loss_logits": "float32",
    }


def test_precision_fp16_follows_fp32(focal_runs: dict[str, Trainer]) -> None:
    """Same seed, data and initial weights: after two Focal-SAM steps the pure-fp16 momentum buffers
    agree with the fp32 ones to fp16 accuracy, so the fp16 path computes the same update, only
    rounded.  Tolerance: 1% of each tensor's largest entry (fp16 keeps ~3 digits; two steps of
    rounded forward/backward passes), plus 2**-14, fp16's smallest normal number, below which it
    has no relative precision (there is no loss scaling in pure fp16, as in the official runs)."""
    for b16, b32 in zip(momentum_buffers(focal_runs["fp16"]), momentum_buffers(focal_runs["fp32"])):
        scale = float(b32.abs().max())
        torch.testing.assert_close(b16.float(), b32, rtol=0, atol=1e-2 * scale + 2.0**-14)


def test_precision_amp_mechanism_on_cpu(
    tiny_clip: None, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--prec amp`` is refused on the CPU by policy (as ``--amp fp16``); with that check bypassed the
    same fp16 autocast + GradScaler path runs on the CPU: fp32 weights and state, scaler enabled.
    The scale starts at 2**8: at GradScaler's default 2**16 the scaled fp16 gradients of these
    logits (cosine x 25) overflow and the first steps are skipped, as GradScaler does."""
    monkeypatch.setattr(engine, "check_runtime", lambda cfg, training=True: torch.device("cpu"))
    trainer = run_tiny(tmp_path, seed, init_scale=2.0**8, prec="amp")
    check_run(trainer, torch.float32, scaler=True)
    assert trainer.scaler.get_scale() > 0


@pytest.mark.gpu
def test_precision_amp_on_cuda(tiny_clip: None, tmp_path: Path, seed: int) -> None:
    trainer = run_tiny(tmp_path, seed, init_scale=2.0**8, prec="amp", device="cuda")
    check_run(trainer, torch.float32, scaler=True)


@pytest.mark.gpu
def test_precision_fp16_on_cuda(tiny_clip: None, tmp_path: Path, seed: int) -> None:
    trainer = run_tiny(tmp_path, seed, prec="fp16", device="cuda")
    check_run(trainer, torch.float16, scaler=False)


def test_precision_amp_refused_on_cpu(tmp_path: Path) -> None:
    cfg = TrainConfig(model="clip_vit_b16_lift", dataset="cifar10_lt", prec="amp")
    with pytest.raises(SetupError) as info:
        builders.check_runtime(cfg)
    assert str(info.value) == (
        "--prec amp (fp16 autocast with a GradScaler) needs a CUDA device; on the CPU use --prec fp16 or fp32"
    )
    assert builders.check_runtime(cfg, training=False) == torch.device("cpu")  # eval runs in fp32 there


def test_precision_helpers() -> None:
    clip = dict(model="clip_vit_b16_lift", dataset="cifar10_lt")
    assert autocast_mode(TrainConfig(**clip, prec="amp")) == "fp16"
    assert autocast_mode(TrainConfig(**clip, prec="fp16")) == "none"
    assert autocast_mode(TrainConfig(amp="bf16")) == "bf16"
    assert weight_dtype(TrainConfig(**clip, prec="fp16")) == torch.float16
    assert weight_dtype(TrainConfig(**clip, prec="amp")) == torch.float32
    linear = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="casts the images at the first convolution"):
        apply_precision(linear, TrainConfig(**clip, prec="fp16"))
    assert apply_precision(linear, TrainConfig()).weight.dtype == torch.float32


def test_precision_fp16_input_cast_covers_forward_and_features(seed: int) -> None:
    """float32 images go through forward and features of a float16 model (the hook at conv1)."""
    from focalsam_fast.models import build_model

    model = build_model("clip_vit_b16_fft", 10, class_names=NAMES, random_weights=True, config="tiny")
    reference = build_model("clip_vit_b16_fft", 10, class_names=NAMES, random_weights=True, config="tiny")
    reference.load_state_dict(model.state_dict())
    apply_precision(model, TrainConfig(model="clip_vit_b16_fft", dataset="cifar10_lt", prec="fp16"))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
        expected = reference(x)
    assert logits.dtype == feats.dtype == torch.float16
    # fp16 rounding through 2 blocks of width 64: agreement to about 1e-2 on O(1) logits (cosine x 25)
    torch.testing.assert_close(logits.float(), expected, rtol=0, atol=0.25)


def test_precision_fp16_checkpoint_evaluates_in_fp16(tiny_clip: None, focal_runs: dict[str, Trainer]) -> None:
    """An fp16 checkpoint is rebuilt in fp16 (``focalsam eval`` and resume) with the same weights and
    gives the run's last test accuracy."""
    from focalsam_fast.train.metrics import evaluate

    trainer = focal_runs["fp16"]
    ckpt = load_checkpoint(trainer.checkpoint_path)
    model = builders.model_from_checkpoint(ckpt, trainer.checkpoint_path, trainer.cfg, trainer.data)
    trained = trainer.model.state_dict()
    for name, tensor in model.state_dict().items():
        assert tensor.dtype == trained[name].dtype and torch.equal(tensor, trained[name]), name
    loader = engine.make_loader(trainer.data.test, trainer.cfg, False, None, torch.device("cpu"))
    result = evaluate(model, loader, 10, trainer.data.groups, torch.device("cpu"), "none", False)
    assert result.overall == trainer.history[-1]["test_overall"]


def test_precision_fp16_resume_is_bitwise(
    tiny_clip: None, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fp16 run interrupted after epoch 1 and resumed ends bit-identical to the uninterrupted one
    (fp16 weights and momentum restored as they were saved)."""
    settings = dict(prec="fp16", epochs=2, max_steps=None, max_steps_per_epoch=1)
    make_tiny(tmp_path, seed, "a", **settings).run()
    first = make_tiny(tmp_path, seed, "b", **settings)
    original = Trainer.train_epoch

    def interrupted(self: Trainer, epoch: int, *args: object) -> dict[str, float]:
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    monkeypatch.setattr(Trainer, "train_epoch", original)
    make_tiny(tmp_path, seed, "b", resume=tmp_path / "b" / "last.pt", **settings).run()
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["global_step"] == b["global_step"] == 2
    for name, tensor in a["model"].items():
        assert tensor.dtype == b["model"][name].dtype and torch.equal(tensor, b["model"][name]), name
    bufs = [
        (s["momentum_buffer"], b["optimizer"]["base_optimizer"]["state"][k]["momentum_buffer"])
        for k, s in a["optimizer"]["base_optimizer"]["state"].items()
        if "momentum_buffer" in s
    ]
    assert bufs and all(x.dtype == torch.float16 and torch.equal(x, y) for x, y in bufs)


@pytest.mark.parametrize("amp", [None, "bf16"])
def test_precision_eval_cli_of_an_fp16_checkpoint(
    tiny_clip: None,
    focal_runs: dict[str, Trainer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    amp: str | None,
) -> None:
    """``focalsam eval`` of an fp16 run: as trained (the run's own accuracy), or with ``--amp``,
    which evaluates fp32 weights under that autocast instead of refusing the combination."""
    from focalsam_fast.cli import eval_cmd
    from focalsam_fast.cli.main import main

    trainer = focal_runs["fp16"]
    monkeypatch.setattr(eval_cmd, "build_data", lambda cfg: trainer.data)
    monkeypatch.setattr(eval_cmd, "_check_stored_data_root", lambda cfg: None)
    args = ["eval", str(trainer.checkpoint_path), "--out", str(tmp_path), "--device", "cpu"]
    assert main([*args, *(["--amp", amp] if amp else [])]) == 0
    overall = json.loads((tmp_path / "eval.json").read_text())["test"]["overall"]
    if amp is None:
        assert overall == trainer.history[-1]["test_overall"]
    else:
        assert 0.0 <= overall <= 1.0
