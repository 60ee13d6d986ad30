"""Shared set-up of the benchmarks: settings, sizes, model templates, per-step cells, environment.

A *cell* is one (setting, method, variant) of the per-step table: a fresh model copy, a fixed
input batch, pre-drawn long-tailed label batches (cycled, the same for every cell of a setting),
and a ``step()`` that runs one whole training step and synchronises the device.

Like with like: the variants ``reference`` (``impl='reference'``) and ``fast`` (``impl='auto'``)
run the same model in the same memory layout (contiguous NCHW) on the same data, so their ratio
is the optimizer's; ``reference+cl`` / ``fast+cl`` are the same pair in ``channels_last`` (ResNets,
:data:`CL_METHODS`), compared with each other only.  SGD's ``fast`` variant is
``torch.optim.SGD(fused=True)`` (NCHW).  CC-SAM runs in two forms, labelled by what they perturb:
``ccsam`` the linear head (the official code), ``ccsam-last`` the last stage, pooling and head,
one pass through them per class in the batch (the protocol the paper timed; ResNets only).

Sizes (``FOCALSAM_BENCH_SIZE``; ``smoke`` is forced when pytest-benchmark is disabled):

* ``smoke``: tiny inputs, ResNet-32 in place of ResNet-50 and CLIP's ``tiny`` config (every
  setting keeps its classes and hyper-parameters), so CI only checks that the code runs;
* ``cpu`` (default): ResNet-32 at the paper's size; ResNet-50 and CLIP ViT-B/16 (the real
  architectures, all classes) at reduced image sizes and batches, labelled as such;
* ``paper``: the paper's batch and image sizes (for a GPU).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from focalsam_fast import kernels
from focalsam_fast.data import imbalance_counts, sample_long_tailed_labels
from focalsam_fast.losses import LALoss
from focalsam_fast.models import NormedLinear, ResNet50, lift_bottleneck_dim, resnet32
from focalsam_fast.optim import CCSAM, SAM, FocalSAM, ImbSAM
from focalsam_fast.train.methods import ccsam_split

REPO = Path(__file__).resolve().parent.parent
SIZES = ("smoke", "cpu", "paper")
METHODS = ("sgd", "sam", "imbsam", "ccsam", "ccsam-last", "focalsam")
METHOD_TITLES = {
    "sgd": "SGD",
    "sam": "SAM",
    "imbsam": "ImbSAM",
    "ccsam": "CC-SAM, head only",
    "ccsam-last": "CC-SAM, last layers",
    "focalsam": "Focal-SAM",
}
VARIANTS = ("reference", "fast")  # same model, layout (NCHW) and data
CL_VARIANTS = ("reference+cl", "fast+cl")  # the same pair in channels_last (ResNets)
CL_METHODS = ("sam", "focalsam")
LABEL_BATCHES = 8  # distinct long-tailed label draws cycled through the rounds


@dataclass(frozen=True)
class Shape:
    """Batch size and square image side of one benchmark size."""

    batch: int
    image: int


@dataclass(frozen=True)
class Setting:
    """One column of the paper's timing table (hyper-parameters from docs/spec.md §8)."""

    key: str
    title: str
    model: str  # 'resnet32', 'resnet50', 'clip_lift', 'clip_fft'
    num_classes: int
    n_max: int  # exp-profile head count (counts synthesised: no data needed)
    imb_ratio: float
    train_size: int | None  # None: the sum of the synthesised counts (CIFAR)
    shapes: dict[str, Shape]
    gamma: float
    lam: float
    rho: float
    lr: float
    weight_decay: float
    ccsam_beta: float
    tail_threshold: float
    counts: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "counts", imbalance_counts(self.n_max, self.num_classes, self.imb_ratio, "exp")
        )

    @property
    def train_samples(self) -> int:
        """Training-set size used for steps per epoch."""
        return self.train_size if self.train_size is not None else sum(self.counts)

    def steps_per_epoch(self, batch: int) -> int:
        """``ceil(N / batch)``: 194 / 170 / 453 / 855 / 906 at the paper's batch sizes."""
        return math.ceil(self.train_samples / batch)


_RESNET50_SHAPES = {"smoke": Shape(4, 16), "cpu": Shape(16, 64)}
_CLIP_SHAPES = {"smoke": Shape(2, 32), "cpu": Shape(8, 64), "paper": Shape(128, 224)}

SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting(
            "resnet32-cifar10lt",
            "ResNet-32 CIFAR-10-LT",
            "resnet32",
            10,
            5000,
            100,
            None,
            {"smoke": Shape(8, 32), "cpu": Shape(64, 32), "paper": Shape(64, 32)},
            gamma=3.0,
            lam=0.5,
            rho=0.2,
            lr=0.1,
            weight_decay=2e-4,
            ccsam_beta=0.3,
            tail_threshold=200,
        ),
        Setting(
            "resnet32-cifar100lt",
            "ResNet-32 CIFAR-100-LT",
            "resnet32",
            100,
            500,
            100,
            None,
            {"smoke": Shape(8, 32), "cpu": Shape(64, 32), "paper": Shape(64, 32)},
            gamma=3.2,
            lam=0.8,
            rho=0.3,
            lr=0.1,
            weight_decay=1e-3,
            ccsam_beta=0.5,
            tail_threshold=20,
        ),
        Setting(
            "resnet50-imagenetlt",
            "ResNet-50 ImageNet-LT",
            "resnet50",
            1000,
            1280,
            256,
            115_846,
            {**_RESNET50_SHAPES, "paper": Shape(256, 224)},
            gamma=0.8,
            lam=0.8,
            rho=0.1,
            lr=0.1,
            weight_decay=5e-4,
            ccsam_beta=0.5,
            tail_threshold=20,
        ),
        Setting(
            "resnet50-inat2018",
            "ResNet-50 iNat-2018",
            "resnet50",
            8142,
            1000,
            500,
            437_513,
            {**_RESNET50_SHAPES, "paper": Shape(512, 224)},
            gamma=2.0,
            lam=1.1,
            rho=0.2,
            lr=0.2,
            weight_decay=2e-4,
            ccsam_beta=0.5,
            tail_threshold=20,
        ),
        Setting(
            "clip-lift-imagenetlt",
            "CLIP ViT-B/16 LIFT ImageNet-LT",
            "clip_lift",
            1000,
            1280,
            256,
            115_846,
            _CLIP_SHAPES,
            gamma=0.5,
            lam=0.8,
            rho=0.05,
            lr=0.01,
            weight_decay=5e-4,
            ccsam_beta=0.5,
            tail_threshold=20,
        ),
        Setting(
            "clip-fft-imagenetlt",
            "CLIP ViT-B/16 FFT ImageNet-LT",
            "clip_fft",
            1000,
            1280,
            256,
            115_846,
            _CLIP_SHAPES,
            gamma=0.5,
            lam=0.8,
            rho=0.05,
            lr=0.001,
            weight_decay=5e-4,
            ccsam_beta=0.5,
            tail_threshold=20,
        ),
    )
}

# (warm-up rounds, timed rounds) per size and model family
ROUNDS: dict[str, dict[str, tuple[int, int]]] = {
    "smoke": {"resnet32": (0, 1), "resnet50": (0, 1), "clip": (0, 1)},
    "cpu": {"resnet32": (2, 7), "resnet50": (1, 3), "clip": (1, 3)},
    "paper": {"resnet32": (3, 10), "resnet50": (2, 5), "clip": (2, 5)},
}


def family(setting: Setting) -> str:
    """'resnet32', 'resnet50' or 'clip' (the key of :data:`ROUNDS`)."""
    return "clip" if setting.model.startswith("clip") else setting.model


def bench_size(disabled: bool) -> str:
    """The size to run: ``smoke`` when pytest-benchmark is disabled (each body runs once), else
    ``FOCALSAM_BENCH_SIZE`` (default ``cpu``)."""
    if disabled:
        return "smoke"
    size = os.environ.get("FOCALSAM_BENCH_SIZE", "cpu")
    if size not in SIZES:
        raise ValueError(f"FOCALSAM_BENCH_SIZE={size!r}; valid: {', '.join(SIZES)}")
    return size


def bench_device() -> torch.device:
    """``FOCALSAM_BENCH_DEVICE`` if set, else the GPU when there is one, else the CPU."""
    name = os.environ.get("FOCALSAM_BENCH_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- environment
def device_name(device: torch.device) -> str:
    """GPU name, or the CPU model name (as ``lscpu`` prints it) with the core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores)"


@functools.cache
def git_commit() -> str:
    """HEAD's hash, with ``+dirty`` when the working tree has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return git("rev-parse", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Python, torch, triton (or 'not installed') and CUDA versions."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": str(torch.version.cuda),
    }


def environment(device: torch.device) -> dict[str, Any]:
    """What every benchmark records in ``extra_info``: device, versions, commit, threads, load."""
    return {
        "device": str(device),
        "device_name": device_name(device),
        **versions(),
        "commit": git_commit(),
        "num_threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "available_impls": kernels.available_impls(device),
    }


# ----------------------------------------------------------------------------- models
def _clip_template(setting: Setting, shape: Shape, size: str) -> nn.Module:
    import open_clip

    from focalsam_fast.models import ClipClassifier, create_clip

    if size == "smoke":
        clip = create_clip("tiny", random_weights=True)
    else:  # ViT-B/16 (random weights), positional embedding sized for the benchmark's images
        clip = open_clip.create_model(
            "ViT-B-16", pretrained=None, force_quick_gelu=True, force_image_size=shape.image
        )
    mode = "lift" if setting.model == "clip_lift" else "fft"
    # One prompt for the text head, then a cosine head of the real width and class count with
    # random unit rows: the same shapes and cost as the text-initialised head, without encoding
    # thousands of prompts (values do not change the timing).
    model = ClipClassifier(clip, ["class"], mode=mode, bottleneck=lift_bottleneck_dim(setting.num_classes))
    model.fc = NormedLinear(model.fc.in_features, setting.num_classes, scale=25.0)
    return model


@functools.lru_cache(maxsize=1)
def model_template(key: str, size: str) -> nn.Module:
    """The model of ``key`` at ``size`` (seeded random init); cells use deep copies of it.

    The ``smoke`` size swaps ResNet-50 for ResNet-32 (same classes) and ViT-B/16 for CLIP's
    ``tiny`` config."""
    setting = SETTINGS[key]
    torch.manual_seed(0)
    if setting.model == "resnet32" or (setting.model == "resnet50" and size == "smoke"):
        return resnet32(num_classes=setting.num_classes)
    if setting.model == "resnet50":
        return ResNet50(num_classes=setting.num_classes)
    return _clip_template(setting, setting.shapes[size], size)


# ----------------------------------------------------------------------------- cells
@dataclass
class Cell:
    """One runnable (setting, method, variant): ``step()`` is one training step + device sync."""

    step: Callable[[], None]
    info: dict[str, Any]


def label_batches(setting: Setting, batch: int, device: torch.device) -> list[Tensor]:
    """:data:`LABEL_BATCHES` seeded draws from the training prior (the same for every cell)."""
    return [
        sample_long_tailed_labels(setting.counts, batch, seed=i, device=device) for i in range(LABEL_BATCHES)
    ]


def runs(setting: Setting, method: str, variant: str) -> bool:
    """Whether the cell exists: channels_last variants for the ResNets' :data:`CL_METHODS`, the
    last-layers CC-SAM for the ResNets (the models with a last-stage split)."""
    resnet = setting.model.startswith("resnet")
    if variant in CL_VARIANTS:
        return resnet and method in CL_METHODS
    return variant in VARIANTS and (method != "ccsam-last" or resnet)


def cases(settings: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every (setting, method, variant) cell of the per-step table."""
    return [
        (k, m, v)
        for k in settings
        for m in METHODS
        for v in (*VARIANTS, *CL_VARIANTS)
        if runs(SETTINGS[k], m, v)
    ]


def make_cell(
    key: str,
    method: str,
    variant: str,
    size: str,
    device: torch.device,
    channels_last: bool | None = None,
    shape: Shape | None = None,
) -> Cell:
    """Build the cell; ``channels_last=None`` uses the variant's layout (``+cl``: channels_last),
    ``shape=None`` the setting's shape at ``size``."""
    setting = SETTINGS[key]
    if shape is None:
        shape = setting.shapes[size]
    if channels_last is None:
        channels_last = variant in CL_VARIANTS
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model_template(key, size)).to(device=device, memory_format=fmt).train()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape.batch, 3, shape.image, shape.image, generator=gen).to(device, memory_format=fmt)
    labels = label_batches(setting, shape.batch, device)
    criterion = LALoss(setting.counts, reduction="none").to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    hp: dict[str, Any] = {"lr": setting.lr, "momentum": 0.9, "weight_decay": setting.weight_decay}
    impl = "reference" if variant.startswith("reference") else "auto"
    common = {"rho": setting.rho, "impl": impl, **hp}
    counter = iter(range(1 << 62))

    def next_labels() -> Tensor:
        return labels[next(counter) % len(labels)]

    if method == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, fused=variant.startswith("fast"), **hp)

        def step() -> None:
            y = next_labels()
            opt.zero_grad(set_to_none=True)
            criterion(model(x), y).mean().backward()
            opt.step()
            sync(device)
    elif method in ("ccsam", "ccsam-last"):
        perturb = "head" if method == "ccsam" else "last"
        split = ccsam_split(model, perturb)
        opt = CCSAM(
            params,
            head=split.layers,
            perturb=perturb,
            class_counts=setting.counts,
            beta=setting.ccsam_beta,
            criterion=criterion,
            **common,
        )

        def step() -> None:
            opt.step(lambda: split.features(x), targets=next_labels())
            sync(device)
    else:
        if method == "sam":
            opt = SAM(params, **common)
        elif method == "imbsam":
            opt = ImbSAM(params, class_counts=setting.counts, tail_threshold=setting.tail_threshold, **common)
        elif method == "focalsam":
            opt = FocalSAM(
                params, class_counts=setting.counts, gamma=setting.gamma, lam=setting.lam, **common
            )
        else:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")

        def step() -> None:
            y = next_labels()
            opt.step(lambda: criterion(model(x), y), targets=y)
            sync(device)

    if method == "sgd":
        impl_name = "torch.optim.SGD(fused=True)" if variant.startswith("fast") else "torch.optim.SGD"
    else:
        impl_name = opt.impl
    info = {
        "kind": "step",
        "setting": key,
        "setting_title": setting.title,
        "method": method,
        "variant": variant,
        "impl": impl_name,
        "channels_last": channels_last,
        "size": size,
        "batch": shape.batch,
        "image_size": shape.image,
        "num_classes": setting.num_classes,
        "trainable_params": sum(p.numel() for p in params),
        "perturbs": split.perturbs if method.startswith("ccsam") else None,
        "perturbed_params": (
            sum(p.numel() for p in split.layers.parameters() if p.requires_grad)
            if method.startswith("ccsam")
            else None
        ),
        "steps_per_epoch": setting.steps_per_epoch(shape.batch),
        "mean_classes_per_batch": statistics.fmean(len(torch.unique(y)) for y in labels),
    }
    return Cell(step, info)


def timed_rounds(steps: Sequence[Callable[[], None]], rounds: int) -> list[list[float]]:
    """Run the steps interleaved (one of each per round); seconds per step, per step function."""
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(rounds):
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            step()
            times[i].append(time.perf_counter() - t0)
    return times


def benchmark_interleaved(
    benchmark: Any, steps: Sequence[Callable[[], None]], warmup: int, rounds: int
) -> list[list[float]]:
    """``benchmark.pedantic`` over whole rounds of ``steps`` (each once, in turn) after ``warmup``
    untimed rounds; returns seconds per step, per step function."""
    timed_rounds(steps, warmup)
    times: list[list[float]] = [[] for _ in steps]

    def one_round() -> None:
        for acc, t in zip(times, timed_rounds(steps, 1)):
            acc.extend(t)

    benchmark.pedantic(one_round, rounds=rounds, iterations=1)
    return times
