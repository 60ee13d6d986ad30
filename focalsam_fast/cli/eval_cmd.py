"""``focalsam eval CHECKPOINT``: the test-set table of a checkpoint (and OOD sets for ImageNet-LT)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from ..data import OOD_COUNTS, ClassFolderDataset, corruption_errors, imagenet_c_sets
from ..train.builders import build_data, check_runtime, model_from_checkpoint, preflight
from ..train.checkpoint import checkpoint_config, load_checkpoint
from ..train.config import TrainConfig, validate_config
from ..train.engine import cfg_summary, make_loader, set_threads
from ..train.files import atomic_write_text, probe_writable
from ..train.metrics import EvalResult, evaluate, group_table, per_class_table
from ..train.precision import autocast_mode
from .main import UsageError
from .train_cmd import absolute, progress_setting


def _check_stored_data_root(cfg: TrainConfig) -> None:
    """The data location recorded at training time must still exist (else: name the flag to pass)."""
    root = cfg.data_root
    if root is None or Path(root).exists():
        return
    relative = (
        ""
        if Path(root).is_absolute()
        else (" (a relative path, recorded by an older focalsam, read from the current folder)")
    )
    raise UsageError(
        f"the data this checkpoint was trained on, {root}{relative}, is not there; pass "
        "its location with --data-root PATH"
    )


def cmd_eval(args: argparse.Namespace) -> int:
    """``focalsam eval CHECKPOINT``: test-set table (and OOD sets for ImageNet-LT models)."""
    checkpoint = absolute(args.checkpoint)
    ckpt = load_checkpoint(checkpoint)
    cfg = checkpoint_config(ckpt, checkpoint)
    changes: dict[str, Any] = {
        k: getattr(args, k) for k in ("batch_size", "workers", "amp") if getattr(args, k) is not None
    }
    if args.amp is not None:  # an explicit autocast replaces the trained precision (weights in fp32)
        changes["prec"] = "fp32"
    if args.data_root is not None:
        changes["data_root"] = absolute(args.data_root)
    if args.device is not None:
        changes["device"] = args.device
    elif cfg.device.startswith("cuda") and not torch.cuda.is_available():
        changes["device"] = "cpu"
    cfg = dataclasses.replace(cfg, **changes)
    try:
        validate_config(cfg)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    device = check_runtime(cfg, training=False)
    ood = {
        k: absolute(v) for k, v in (("sketch", args.ood_sketch), ("v2", args.ood_v2), ("c", args.ood_c)) if v
    }
    if ood and cfg.dataset != "imagenet_lt":
        raise UsageError(f"OOD sets are for ImageNet-LT models; this checkpoint was trained on {cfg.dataset}")
    for name, path in ood.items():
        if not Path(path).is_dir():
            raise UsageError(f"--ood-{name} folder {path} not found: download the set and extract it there")
    out = Path(absolute(args.out)) if args.out else Path(checkpoint).parent
    probe_writable(out)  # before evaluating: the report must have somewhere to go
    if args.data_root is None:
        _check_stored_data_root(cfg)
    preflight(cfg, needs_weights=False)
    set_threads(cfg, device)
    data = build_data(cfg)
    model = model_from_checkpoint(ckpt, checkpoint, cfg, data)
    model.to(device)
    progress = progress_setting(args)
    result = evaluate(
        model,
        make_loader(data.test, cfg, False, None, device),
        data.num_classes,
        data.groups,
        device,
        autocast_mode(cfg),
        progress,
    )
    report: dict[str, Any] = {"checkpoint": checkpoint, "epoch": ckpt["epoch"], "test": result.to_dict()}
    print(f"{cfg_summary(cfg)}, checkpoint after epoch {ckpt['epoch']}/{cfg.epochs}\n")
    print(group_table({cfg.method: result}, data.groups))
    if data.num_classes <= 20:
        print("\n" + per_class_table(result, data.class_counts, data.class_names, data.groups))
    if ood:
        report["ood"] = _eval_ood(model, cfg, data, ood, device, progress)
    atomic_write_text(json.dumps(report, indent=2) + "\n", out / "eval.json")
    print(f"\nwritten: {out / 'eval.json'}")
    return 0


def _eval_ood(
    model: Any, cfg: TrainConfig, data: Any, ood: dict[str, str], device: Any, progress: bool | None
) -> dict[str, Any]:
    """Top-1 on ImageNet-Sketch / ImageNetV2 and CE/mCE on ImageNet-C."""
    transform = data.test.transform
    report: dict[str, Any] = {}

    def top1(dataset: Any) -> EvalResult:
        loader = make_loader(dataset, cfg, False, None, device)
        return evaluate(model, loader, data.num_classes, data.groups, device, autocast_mode(cfg), progress)

    for name, label in (("sketch", "ImageNet-Sketch"), ("v2", "ImageNetV2")):
        if name in ood:
            res = top1(ClassFolderDataset(ood[name], transform, expected=OOD_COUNTS[name]))
            report[name] = res.to_dict()
            print(f"{label} top-1: {100 * res.overall:.2f}%")
    if "c" in ood:
        accs: dict[str, list[float]] = {}
        for corruption, _, dataset in imagenet_c_sets(ood["c"], transform):
            accs.setdefault(corruption, []).append(top1(dataset).overall)
        summary_c = corruption_errors(accs)
        report["c"] = {"accuracy": accs, **summary_c}
        print(f"ImageNet-C mean top-1 {100 * summary_c['mean_acc']:.2f}%, mCE {100 * summary_c['mCE']:.1f}")
    return report
