"""Training configuration: one dataclass, the released settings as presets (docs/spec.md §8), and
resolution of ``defaults <- preset <- explicit flags``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

METHODS = ("sgd", "sam", "imbsam", "ccsam", "focalsam")
LOSS_NAMES = ("ce", "la", "ldam", "vs")
AMP_MODES = ("none", "bf16", "fp16")
# CLIP training precision as the released scripts' --prec (docs/fidelity.md): fp16 = pure fp16
# weights, gradients and momentum; amp = fp32 weights, fp16 autocast and a GradScaler.
PRECISIONS = ("fp32", "fp16", "amp")
# The registries' names (focalsam_fast.models.MODELS, focalsam_fast.data.DATASETS, "auto" +
# focalsam_fast.kernels.IMPLS) for the command-line help, which must not import torch; a test
# keeps them equal to the registries, which validate_config checks against.
MODEL_NAMES = ("resnet32", "resnet50", "digits_cnn", "clip_vit_b16_fft", "clip_vit_b16_lift")
DATASET_NAMES = ("cifar10_lt", "cifar100_lt", "imagenet_lt", "inat2018", "digits_lt")
IMPL_NAMES = ("auto", "reference", "foreach", "cpp", "cuda", "triton")
# Settings holding a file or folder: the command line stores them as absolute paths.
CONFIG_PATH_FIELDS = ("data_root", "clip_weights", "class_names")

# DRW and the two-value rho step switch at this fraction of the epochs (docs/spec.md §6, §8).
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
    prec: str = "fp32"  # CLIP models: fp32 | fp16 (pure) | amp; the CLIP presets set the released value
    seed: int = 0
    device: str = "cpu"
    workers: int = 0
    threads: int | None = None
    impl: str = "auto"
    clip_weights: str | None = None
    class_names: str | None = None  # CLIP prompts: a class-name file (classnames.txt, categories.json)
    allow_folder_names: bool = False  # CLIP prompts from folder ids such as n01440764 (not advised)
    max_steps: int | None = None
    # Short runs (not the paper's setting): a stratified training subset, a cap on steps per epoch.
    train_fraction: float | None = None
    max_train_samples: int | None = None
    max_steps_per_epoch: int | None = None
    # Method details (None: the per-data-set choice of methods.py).
    tail_threshold: float | None = None
    # Head/medium/tail thresholds [TAIL, HEAD] (tail n < TAIL, head n > HEAD); None: the official
    # values of the data set and imbalance ratio (focalsam_fast.data.groups.thresholds_for).
    group_thresholds: list[int] | None = None
    imbsam_tail_weight: float = 1.0  # the paper's Eq. (1); 2 reproduces the official code
    ccsam_beta: float | None = None
    ccsam_perturb: str = "head"  # 'head' (official code) or 'last' (last stage + head: the paper's timing)
    vs_gamma: float = 0.05  # VS loss, the released CIFAR scripts' values
    vs_tau: float = 0.75
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
        f"CIFAR-{num}-LT IR100, ResNet-32, 200 epochs (docs/spec.md §8)",
        dict(
            dataset=f"cifar{num}_lt",
            model="resnet32",
            imbalance_ratio=100.0,
            epochs=200,
            batch_size=64,
            lr=0.1,
            weight_decay=wd,
            rho=rho,
            gamma=gamma,
            lam=lam,
        ),
    )


def _clip(dataset: str, label: str, mode: str, gamma: float, lam: float, rho: float, prec: str) -> Preset:
    lr = 0.01 if mode == "lift" else 0.001  # full fine-tuning uses lr 0.001 (docs/spec.md §8)
    return Preset(
        f"{label}, CLIP ViT-B/16 {mode.upper()}, 20 epochs, lr {lr}, {prec} (needs --clip-weights)",
        dict(
            dataset=dataset,
            model=f"clip_vit_b16_{mode}",
            epochs=20,
            batch_size=128,
            lr=lr,
            weight_decay=5e-4,
            rho=rho,
            gamma=gamma,
            lam=lam,
            prec=prec,
        ),
    )


def _build_presets() -> dict[str, Preset]:
    presets = {
        "digits": Preset("embedded long-tailed digits, small CNN, CPU demo (the default)", {}),
        "cifar10_resnet32": _cifar_resnet(10, 3.0, 0.5, 0.2, 2e-4),
        "cifar100_resnet32": _cifar_resnet(100, 3.2, 0.8, 0.3, 1e-3),
        "imagenet_lt_resnet50": Preset(
            "ImageNet-LT, ResNet-50, 200 epochs, rho 0.1 then 0.2 (docs/spec.md §8)",
            dict(
                dataset="imagenet_lt",
                model="resnet50",
                epochs=200,
                batch_size=256,
                lr=0.1,
                weight_decay=5e-4,
                rho=0.1,
                rho_steps=[0.1, 0.2],
                gamma=0.8,
                lam=0.8,
            ),
        ),
        "inat2018_resnet50": Preset(
            "iNaturalist 2018, ResNet-50, 200 epochs (docs/spec.md §8)",
            dict(
                dataset="inat2018",
                model="resnet50",
                epochs=200,
                batch_size=512,
                lr=0.2,
                weight_decay=2e-4,
                rho=0.2,
                gamma=2.0,
                lam=1.1,
            ),
        ),
    }
    # precision: the CIFAR and ImageNet-LT CLIP scripts keep their default --prec fp16, iNat passes fp32
    clip_runs = [
        ("cifar10", "cifar10_lt", "CIFAR-10-LT", 1.5, 0.7, 0.05, "fp16"),
        ("cifar100", "cifar100_lt", "CIFAR-100-LT", 5.5, 0.8, 0.05, "fp16"),
        ("imagenet_lt", "imagenet_lt", "ImageNet-LT", 0.5, 0.8, 0.05, "fp16"),
        ("inat2018", "inat2018", "iNaturalist 2018", 0.2, 1.0, 0.02, "fp32"),
    ]
    for short, dataset, label, gamma, lam, rho, prec in clip_runs:
        for mode in ("lift", "fft"):
            presets[f"{short}_clip_{mode}"] = _clip(dataset, label, mode, gamma, lam, rho, prec)
    return presets


# All released runs use the LA loss, SGD momentum 0.9 and seed 0 (the dataclass defaults);
# baselines (sam, imbsam, ccsam) use the same rho and schedule as Focal-SAM.
PRESETS: dict[str, Preset] = _build_presets()


def resolve_config(
    preset: str | None = None, overrides: dict[str, Any] | None = None, base: TrainConfig | None = None
) -> TrainConfig:
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


@dataclass(frozen=True)
class Bound:
    """The valid values of one numeric setting: an int or a finite float within ``[low, high]``
    (``low_open``/``high_open`` exclude the end), ``None`` allowed when ``optional``."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def describe(self) -> str:
        """E.g. ``an integer >= 1`` or ``a finite number in [0, 1)``."""
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            return (
                f"{kind} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        return kind

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is valid (type and range)."""
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


# One table for every numeric setting (flag --<name with dashes>); validate_config applies it.
NUMERIC_BOUNDS: dict[str, Bound] = {
    "imbalance_ratio": Bound(False, low=1),
    "epochs": Bound(True, low=1),
    "batch_size": Bound(True, low=1),
    "lr": Bound(False, low=0, low_open=True),
    "momentum": Bound(False, low=0, high=1, high_open=True),
    "weight_decay": Bound(False, low=0),
    "rho": Bound(False, low=0),
    "gamma": Bound(False, low=0),
    "lam": Bound(False, low=0),
    "seed": Bound(True, low=0, high=2**32 - 1),
    "workers": Bound(True, low=0),
    "threads": Bound(True, low=1, optional=True),
    "max_steps": Bound(True, low=1, optional=True),
    "train_fraction": Bound(False, low=0, high=1, low_open=True, optional=True),
    "max_train_samples": Bound(True, low=1, optional=True),
    "max_steps_per_epoch": Bound(True, low=1, optional=True),
    "tail_threshold": Bound(False, low=0, optional=True),
    "imbsam_tail_weight": Bound(False, low=0),
    "vs_gamma": Bound(False, low=0),
    "vs_tau": Bound(False, low=0),
    "ccsam_beta": Bound(False, low=0, high=1, optional=True),
    "noise_ratio": Bound(False, low=0),
}
RHO_STEP_BOUND = Bound(False, low=0)  # each of the two values of --rho-steps
GROUP_THRESHOLD_BOUND = Bound(True, low=0)  # each of the two values of --group-thresholds
DEVICE_TYPES = ("cpu", "cuda")


def flag(name: str) -> str:
    """The command-line flag of config field ``name``."""
    return "--" + name.replace("_", "-")


def choices() -> dict[str, tuple[str, ...]]:
    """The valid values of every named setting."""
    from ..data import DATASETS
    from ..kernels import IMPLS
    from ..models import MODELS

    return {
        "method": METHODS,
        "loss": LOSS_NAMES,
        "amp": AMP_MODES,
        "prec": PRECISIONS,
        "model": tuple(MODELS),
        "dataset": tuple(DATASETS),
        "impl": ("auto", *IMPLS),
        "ccsam_perturb": ("head", "last"),
    }


def check_device_name(name: Any) -> None:
    """``cpu``, ``cuda`` or ``cuda:N`` (whether CUDA is present is checked when the run starts)."""
    import torch

    try:
        device = torch.device(name) if isinstance(name, str) else None
    except RuntimeError:
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(f"invalid --device {name!r}; valid: cpu, cuda, cuda:N")


def is_clip(model: str) -> bool:
    """Whether ``model`` is one of the CLIP ViT models."""
    return model.startswith("clip")


def validate_config(cfg: TrainConfig) -> None:
    """Check every setting before anything is built: names against :func:`choices`, numbers against
    :data:`NUMERIC_BOUNDS`, the device name and the rho schedule.  The ``ValueError`` is one line
    naming the flag, the value and what is valid."""
    for name, valid in choices().items():
        value = getattr(cfg, name)
        if value not in valid:
            raise ValueError(f"unknown {flag(name)} {value!r}; valid: {', '.join(valid)}")
    for name, bound in NUMERIC_BOUNDS.items():
        value = getattr(cfg, name)
        if not bound.accepts(value):
            raise ValueError(f"{flag(name)} must be {bound.describe()}, got {value!r}")
    check_device_name(cfg.device)
    steps = cfg.rho_steps
    if steps is not None and (
        not isinstance(steps, (list, tuple))
        or len(steps) != 2
        or not all(RHO_STEP_BOUND.accepts(r) for r in steps)
    ):
        raise ValueError(
            f"--rho-steps takes 2 values, each {RHO_STEP_BOUND.describe()} (rho before / "
            f"after {SWITCH_FRACTION:.0%} of the epochs), got {steps!r}"
        )
    if cfg.train_fraction is not None and cfg.max_train_samples is not None:
        raise ValueError(
            f"--train-fraction {cfg.train_fraction:g} and --max-train-samples "
            f"{cfg.max_train_samples} both set the training subset; give one of them"
        )
    if (cfg.class_names is not None or cfg.allow_folder_names) and not is_clip(cfg.model):
        given = "--class-names" if cfg.class_names is not None else "--allow-folder-names"
        raise ValueError(
            f"{given} sets the CLIP text head's prompts, but --model {cfg.model} has no "
            "text head (use a clip_vit_b16_* model, or drop the flag)"
        )
    _check_group_thresholds(cfg.group_thresholds)
    _check_precision(cfg)
    if cfg.method == "ccsam" and cfg.ccsam_perturb == "last" and is_clip(cfg.model):
        raise ValueError(
            f"--ccsam-perturb last perturbs a last stage, which --model {cfg.model} does not "
            "have (resnet32, resnet50 and digits_cnn do); use --ccsam-perturb head"
        )
    if cfg.drw and cfg.loss == "la":
        raise ValueError(
            "--drw re-weights the loss per class; the LA loss takes no class weights "
            "(use --loss ce, ldam or vs with --drw)"
        )


def _check_group_thresholds(value: Any) -> None:
    """``None`` or ``[TAIL, HEAD]``: integers >= 0 with ``TAIL <= HEAD + 1`` (the medium group
    ``TAIL..HEAD`` may be empty, never negative)."""
    if value is None:
        return
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(GROUP_THRESHOLD_BOUND.accepts(v) for v in value)
        and value[0] <= value[1] + 1
    )
    if not ok:
        raise ValueError(
            "--group-thresholds takes 2 integers TAIL HEAD, each >= 0 with TAIL <= HEAD + 1 "
            f"(tail: n < TAIL, head: n > HEAD, medium: the rest), got {value!r}"
        )


def _check_precision(cfg: TrainConfig) -> None:
    """``--prec fp16|amp`` is the CLIP scripts' setting and sets the precision alone."""
    if cfg.prec == "fp32":
        return
    if not is_clip(cfg.model):
        raise ValueError(
            f"--prec {cfg.prec} is the CLIP runs' precision (the released CLIP scripts' "
            f"--prec); --model {cfg.model} trains in fp32 (use --amp bf16 or fp16 for mixed "
            "precision)"
        )
    if cfg.amp != "none":
        raise ValueError(
            f"--prec {cfg.prec} and --amp {cfg.amp} both set the precision; give --prec fp32 "
            "with --amp, or drop --amp (--prec amp is fp16 autocast with a GradScaler)"
        )
