"""Build the data, model and loss of a run from its :class:`TrainConfig` with clear errors."""

from __future__ import annotations

import inspect
import tarfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataIntegrityError, GroupThresholds, ListFileError, LongTailedData, build_dataset
from ..data.groups import thresholds_for
from ..data.transforms import transform_for
from ..kernels import ImplUnavailableError, resolve
from ..losses import LOSSES
from ..losses.base import LogitAdjustedLoss
from ..models import MODELS, NormedLinear, build_model
from .config import TrainConfig, check_device_name, is_clip
from .errors import CheckpointError, SetupError
from .precision import apply_precision
from .subset import stratified_subset, subset_fraction

DATA_HINTS = {
    "cifar10_lt": "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
    "and extract it into that folder (giving <folder>/cifar-10-batches-py), or pass a "
    "JPEG tar archive with train/<class>/NNNN.jpg and test/<class>/NNNN.jpg members "
    "(e.g. cifar10-jpeg.tar.xz)",
    "cifar100_lt": "download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
    "and extract it into that folder (giving <folder>/cifar-100-python), or pass a JPEG "
    "tar archive with train/<class>/NNNN.jpg and test/<class>/NNNN.jpg members",
    "imagenet_lt": "put the ImageNet-2012 images under that folder together with the ImageNet-LT list "
    "files ImageNet_LT_train.txt and ImageNet_LT_test.txt (OLTR release, "
    "github.com/zhmiao/OpenLongTailRecognition-OLTR)",
    "inat2018": "put the iNaturalist 2018 images (github.com/visipedia/inat_comp) under that folder "
    "with the list files iNaturalist18_train.txt and iNaturalist18_val.txt",
}


def preflight(cfg: TrainConfig, needs_weights: bool = True) -> None:
    """Cheap checks of every path a run needs (data, CLIP weights), before anything is loaded."""
    if cfg.dataset == "digits_lt":
        if cfg.data_root is not None:
            raise SetupError("digits_lt is embedded (scikit-learn's load_digits) and takes no --data-root")
    else:
        hint = DATA_HINTS[cfg.dataset]
        if cfg.data_root is None:
            raise SetupError(f"--dataset {cfg.dataset} needs --data-root PATH: {hint}")
        if not Path(cfg.data_root).exists():
            raise SetupError(f"--data-root {cfg.data_root} not found: {hint}")
    if is_clip(cfg.model):
        if cfg.dataset == "digits_lt":
            raise SetupError(
                "CLIP models need RGB images; use --dataset cifar10_lt/cifar100_lt/"
                "imagenet_lt/inat2018 with them"
            )
        if cfg.loss == "ldam":
            raise SetupError(
                "LDAM needs an unscaled cosine head; the CLIP models already carry a "
                "scale-25 cosine head (use --loss la, ce or vs)"
            )
        if needs_weights and cfg.clip_weights is None:
            raise SetupError(
                f"--model {cfg.model} needs --clip-weights PATH: a local OpenAI/open_clip "
                "ViT-B/16 checkpoint (e.g. ViT-B-16.pt from the OpenAI CLIP release); "
                "nothing is downloaded"
            )
        if needs_weights and not Path(cfg.clip_weights).is_file():
            raise SetupError(
                f"CLIP weights {cfg.clip_weights} not found: place a local OpenAI/open_clip "
                "ViT-B/16 checkpoint there (nothing is downloaded)"
            )


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)`` after checking that the machine has it (the same check for train and eval)."""
    try:
        check_device_name(name)
    except ValueError as exc:
        raise SetupError(str(exc)) from exc
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SetupError(f"--device {name} asked for but CUDA is not available here (use --device cpu)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise SetupError(
                f"--device {name} asked for but this machine has {count} CUDA device(s): "
                f"use cuda:0..cuda:{count - 1}"
            )
    return device


def check_runtime(cfg: TrainConfig, training: bool = True) -> torch.device:
    """The run's device, after checking what the machine must provide: the device itself, fp16
    autocast only on CUDA (``--amp fp16``; ``--prec amp`` for training, evaluation uses ``--amp``)
    and, for training a SAM-family method, the requested kernel ``--impl``."""
    device = resolve_device(cfg.device)
    if device.type != "cuda":
        if cfg.amp == "fp16":
            raise SetupError("--amp fp16 needs a CUDA device; on the CPU use --amp bf16 or none")
        if training and cfg.prec == "amp":
            raise SetupError(
                "--prec amp (fp16 autocast with a GradScaler) needs a CUDA device; on the CPU "
                "use --prec fp16 or fp32"
            )
    if training and cfg.method != "sgd":
        try:
            resolve(cfg.impl, device)
        except ImplUnavailableError as exc:
            raise SetupError(" ".join(str(exc).split())) from exc
    return device


def build_data(cfg: TrainConfig) -> LongTailedData:
    """The run's long-tailed training/test sets (the training set reduced to the stratified subset
    of ``--train-fraction`` / ``--max-train-samples``, see :mod:`~focalsam_fast.train.subset`);
    missing or unreadable paths raise :class:`SetupError` saying how to obtain and where to place
    the data."""
    data = _load_data(cfg)
    fraction = subset_fraction(cfg, len(data.train))
    if fraction is not None:
        data.train = stratified_subset(data.train, data.num_classes, fraction, cfg.seed)
    return data


def _load_data(cfg: TrainConfig) -> LongTailedData:
    preflight(cfg, needs_weights=False)
    options: dict[str, object] = {}
    if cfg.dataset in ("cifar10_lt", "cifar100_lt", "digits_lt"):
        options["imb_ratio"] = cfg.imbalance_ratio
    try:
        transform = transform_for(cfg.dataset, is_clip(cfg.model))
    except ValueError as exc:
        raise SetupError(str(exc)) from exc
    if transform is not None:
        options["transform"] = transform
    try:
        return build_dataset(cfg.dataset, cfg.data_root, thresholds=run_thresholds(cfg), **options)
    except DataIntegrityError as exc:  # already one line: the file, what is wrong, how to fix it
        raise SetupError(f"cannot use {cfg.dataset} data: {exc}") from exc
    except (OSError, tarfile.TarError, ListFileError) as exc:
        hint = DATA_HINTS.get(cfg.dataset, "")
        msg = " ".join(str(exc).split())  # one line
        raise SetupError(
            f"cannot read {cfg.dataset} from {cfg.data_root}: {msg}" + (f" ({hint})" if hint else "")
        ) from exc


def run_thresholds(cfg: TrainConfig) -> GroupThresholds:
    """The head/medium/tail thresholds of the run: ``--group-thresholds`` when given, else the
    official values of the data set and imbalance ratio (or the IR-100 values, marked assumed)."""
    if cfg.group_thresholds is not None:
        tail, head = cfg.group_thresholds
        return GroupThresholds(tail, head, official=False, source="--group-thresholds")
    return thresholds_for(cfg.dataset, cfg.imbalance_ratio)


def build_run_model(cfg: TrainConfig, data: LongTailedData, from_checkpoint: bool = False) -> nn.Module:
    """The model for ``cfg`` (cosine head for LDAM; CLIP from the local ``--clip-weights``) in the
    weight dtype of ``--prec`` (:func:`~focalsam_fast.train.precision.apply_precision`).

    ``from_checkpoint``: every weight will be loaded from a checkpoint, so CLIP is built with
    random weights and needs no ``--clip-weights`` file.
    """
    preflight(cfg, needs_weights=not from_checkpoint)
    options: dict[str, object] = {}
    if is_clip(cfg.model):
        options["class_names"] = data.class_names if from_checkpoint else clip_class_names(cfg, data)
        if from_checkpoint:
            options["random_weights"] = True
        else:
            options["clip_weights"] = cfg.clip_weights
    normed = cfg.loss == "ldam"
    takes_normed = "normed" in inspect.signature(MODELS[cfg.model]).parameters
    if normed and takes_normed:
        options["normed"] = True
    model = build_model(cfg.model, data.num_classes, **options)
    if normed and not takes_normed:
        fc = model.fc
        if not isinstance(fc, nn.Linear):
            raise SetupError(
                f"--loss ldam needs a linear head to replace by a cosine head; "
                f"{cfg.model} has {type(fc).__name__}"
            )
        model.fc = NormedLinear(fc.in_features, fc.out_features)
    return apply_precision(model, cfg)


def build_criterion(cfg: TrainConfig, data: LongTailedData) -> LogitAdjustedLoss:
    """The per-sample loss (``reduction='none'``, as the SAM methods need); VS takes the run's
    ``vs_gamma`` / ``vs_tau``."""
    if cfg.loss == "vs":
        return LOSSES["vs"](data.class_counts, gamma=cfg.vs_gamma, tau=cfg.vs_tau, reduction="none")
    return LOSSES[cfg.loss](data.class_counts, reduction="none")


def model_from_checkpoint(
    ckpt: dict[str, Any], path: str | Path, cfg: TrainConfig, data: LongTailedData
) -> nn.Module:
    """The run's model with the checkpoint's weights; one-line :class:`CheckpointError` when the
    checkpoint does not belong to this model and data."""
    from .checkpoint import check_compatible

    check_compatible(ckpt, path, cfg.model, data.num_classes, data.class_counts)
    model = build_run_model(cfg, data, from_checkpoint=True)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())
        raise CheckpointError(f"checkpoint {path} does not fit {cfg.model}: {msg}") from exc
    return model


def clip_class_names(cfg: TrainConfig, data: LongTailedData) -> list[str]:
    """The names in the CLIP head's prompts: ``--class-names`` when given, else the data set's;
    folder ids (WordNet ids, numbers) are refused unless ``--allow-folder-names``."""
    from ..data.class_names import folder_ids, load_class_names

    if cfg.class_names is not None:
        try:
            return load_class_names(cfg.class_names, data.num_classes)
        except ValueError as exc:
            raise SetupError(str(exc)) from exc
    names = list(data.class_names)
    ids = folder_ids(names)
    if ids and not cfg.allow_folder_names:
        raise SetupError(
            f"the CLIP text head is initialised from 'a photo of a {{class}}.' prompts, but {len(ids)} of "
            f"{cfg.dataset}'s {len(names)} class names are folder ids ({', '.join(ids[:3])}, ...): give "
            "--class-names FILE (ImageNet: classnames.txt; iNaturalist 2018: categories.json), or "
            "--allow-folder-names to use them anyway"
        )
    return names
