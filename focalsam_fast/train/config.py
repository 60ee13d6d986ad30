"""Training configuration: one dataclass, the released settings as presets (SPEC §8), and
resolution of ``defaults <- preset <- explicit flags``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

METHODS = ("sgd", "sam", "imbsam", "ccsam", "focalsam")
LOSS_NAMES = ("ce", "la", "ldam", "vs")
AMP_MODES = ("none", "bf16", "fp16")

# DRW and the two-value rho step switch at this fraction of the epochs (SPEC §6, §8).
SWITCH_FRACTION = 0.8


@dataclass
class TrainConfig:
    """Everything a run needs; ``None`` fields are derived from the data set when training starts.

    The defaults are the embedded digits demo (``focalsam train`` with no arguments): Focal-SAM
    with the LA loss on long-tailed 8x8 digits with a small CNN, on the CPU.
    """

    method: str = "focalsam"
    loss: str = "la"
    drw: bool = False
    model: str = "digits_cnn"
    dataset: str = "digits_lt"
    data_root: str | None = None
    imbalance_ratio: float = 100.0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    rho: float = 0.1
    rho_steps: list[float] | None = None
    gamma: float = 2.0
    lam: float = 0.8
    amp: str = "none"
    seed: int = 0
    device: str = "cpu"
    workers: int = 0
    threads: int | None = None
    impl: str = "auto"
    clip_weights: str | None = None
    max_steps: int | None = None
    # Method details (None: the per-data-set choice of methods.py).
    tail_threshold: float | None = None
    ccsam_beta: float | None = None
    noise_ratio: float = 1e-6
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid: {', '.join(sorted(names))}")
        return cls(**data)


@dataclass(frozen=True)
class Preset:
    """A named set of config values with a one-line description."""

    description: str
    values: dict[str, Any] = field(default_factory=dict)


def _cifar_resnet(num: int, gamma: float, lam: float, rho: float, wd: float) -> Preset:
    return Preset(
        f"CIFAR-{num}-LT IR100, ResNet-32, 200 epochs (SPEC §8)",
        dict(dataset=f"cifar{num}_lt", model="resnet32", imbalance_ratio=100.0, epochs=200,
             batch_size=64, lr=0.1, weight_decay=wd, rho=rho, gamma=gamma, lam=lam),
    )


def _clip(dataset: str, label: str, mode: str, gamma: float, lam: float, rho: float) -> Preset:
    lr = 0.01 if mode == "lift" else 0.001  # full fine-tuning uses lr 0.001 (SPEC §8)
    return Preset(
        f"{label}, CLIP ViT-B/16 {mode.upper()}, 20 epochs, lr {lr} (needs --clip-weights)",
        dict(dataset=dataset, model=f"clip_vit_b16_{mode}", epochs=20, batch_size=128, lr=lr,
             weight_decay=5e-4, rho=rho, gamma=gamma, lam=lam),
    )


def _build_presets() -> dict[str, Preset]:
    presets = {
        "digits": Preset("embedded long-tailed digits, small CNN, CPU demo (the default)", {}),
        "cifar10_resnet32": _cifar_resnet(10, 3.0, 0.5, 0.2, 2e-4),
        "cifar100_resnet32": _cifar_resnet(100, 3.2, 0.8, 0.3, 1e-3),
        "imagenet_lt_resnet50": Preset(
            "ImageNet-LT, ResNet-50, 200 epochs, rho 0.1 then 0.2 (SPEC §8)",
            dict(dataset="imagenet_lt", model="resnet50", epochs=200, batch_size=256, lr=0.1,
                 weight_decay=5e-4, rho=0.1, rho_steps=[0.1, 0.2], gamma=0.8, lam=0.8),
        ),
        "inat2018_resnet50": Preset(
            "iNaturalist 2018, ResNet-50, 200 epochs (SPEC §8)",
            dict(dataset="inat2018", model="resnet50", epochs=200, batch_size=512, lr=0.2,
                 weight_decay=2e-4, rho=0.2, gamma=2.0, lam=1.1),
        ),
    }
    clip_runs = [
        ("cifar10", "cifar10_lt", "CIFAR-10-LT", 1.5, 0.7, 0.05),
        ("cifar100", "cifar100_lt", "CIFAR-100-LT", 5.5, 0.8, 0.05),
        ("imagenet_lt", "imagenet_lt", "ImageNet-LT", 0.5, 0.8, 0.05),
        ("inat2018", "inat2018", "iNaturalist 2018", 0.2, 1.0, 0.02),
    ]
    for short, dataset, label, gamma, lam, rho in clip_runs:
        for mode in ("lift", "fft"):
            presets[f"{short}_clip_{mode}"] = _clip(dataset, label, mode, gamma, lam, rho)
    return presets


# All released runs use the LA loss, SGD momentum 0.9 and seed 0 (the dataclass defaults);
# baselines (sam, imbsam, ccsam) use the same rho and schedule as Focal-SAM.
PRESETS: dict[str, Preset] = _build_presets()


def resolve_config(preset: str | None = None, overrides: dict[str, Any] | None = None,
                   base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (default: the dataclass defaults), then the preset's values, then ``overrides``
    (explicitly given flags; ``None`` values are ignored).  Unknown presets raise ``ValueError``
    listing the valid names."""
    cfg = dataclasses.asdict(base) if base is not None else dataclasses.asdict(TrainConfig())
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        cfg.update(PRESETS[preset].values)
        cfg["preset"] = preset
    for key, value in (overrides or {}).items():
        if value is not None:
            cfg[key] = value
    config = TrainConfig.from_dict(cfg)
    validate_config(config)
    return config


def _choice(name: str, value: str, valid: tuple[str, ...] | list[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


def validate_config(cfg: TrainConfig) -> None:
    """Check names and ranges before anything is built; errors list the valid values."""
    from ..data import DATASETS
    from ..models import MODELS

    _choice("method", cfg.method, METHODS)
    _choice("loss", cfg.loss, LOSS_NAMES)
    _choice("amp mode", cfg.amp, AMP_MODES)
    _choice("model", cfg.model, list(MODELS))
    _choice("dataset", cfg.dataset, list(DATASETS))
    if cfg.drw and cfg.loss == "la":
        raise ValueError("--drw re-weights the loss per class; the LA loss takes no class weights "
                         "(use --loss ce, ldam or vs with --drw)")
    if cfg.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {cfg.epochs}")
    if cfg.batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {cfg.batch_size}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ValueError(f"threads must be >= 1, got {cfg.threads}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise ValueError(f"max steps must be >= 1, got {cfg.max_steps}")
    if cfg.rho_steps is not None and len(cfg.rho_steps) != 2:
        raise ValueError(f"rho steps take 2 values (before / after {SWITCH_FRACTION:.0%} of the "
                         f"epochs), got {cfg.rho_steps}")
    for name in ("lr", "momentum", "weight_decay", "rho", "gamma", "lam", "noise_ratio"):
        value = getattr(cfg, name)
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if cfg.imbalance_ratio < 1:
        raise ValueError(f"imbalance ratio must be >= 1, got {cfg.imbalance_ratio}")
