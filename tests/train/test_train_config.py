"""The validation table: every numeric setting, name, device and rho schedule is checked in one
place, with a one-line message naming the flag, the value and what is valid."""

from __future__ import annotations

import dataclasses
import math

import pytest

from focalsam_fast.train.config import NUMERIC_BOUNDS, TrainConfig, resolve_config, validate_config

NAN, INF = math.nan, math.inf

BAD_NUMBERS = [
    ("epochs", 0),
    ("epochs", -3),
    ("epochs", 2.5),
    ("epochs", True),
    ("epochs", "3"),
    ("batch_size", 0),
    ("batch_size", -32),
    ("imbalance_ratio", 0.5),
    ("imbalance_ratio", NAN),
    ("imbalance_ratio", INF),
    ("lr", 0.0),
    ("lr", -0.1),
    ("lr", NAN),
    ("lr", INF),
    ("lr", -INF),
    ("momentum", 1.0),
    ("momentum", -0.1),
    ("momentum", NAN),
    ("weight_decay", -1e-4),
    ("weight_decay", NAN),
    ("rho", -0.05),
    ("rho", INF),
    ("gamma", NAN),
    ("gamma", -1.0),
    ("lam", -0.5),
    ("lam", INF),
    ("seed", -1),
    ("seed", 2**32),
    ("seed", 1.0),
    ("workers", -1),
    ("threads", 0),
    ("threads", -2),
    ("max_steps", 0),
    ("max_steps", -5),
    ("tail_threshold", -1.0),
    ("tail_threshold", NAN),
    ("ccsam_beta", 1.5),
    ("ccsam_beta", -0.1),
    ("ccsam_beta", INF),
    ("noise_ratio", -1e-6),
    ("noise_ratio", NAN),
    ("train_fraction", 0.0),
    ("train_fraction", 1.5),
    ("train_fraction", NAN),
    ("max_train_samples", 0),
    ("max_train_samples", 2.5),
    ("max_steps_per_epoch", 0),
    ("max_steps_per_epoch", -1),
    ("imbsam_tail_weight", -1.0),
    ("imbsam_tail_weight", NAN),
    ("vs_gamma", -0.05),
    ("vs_gamma", INF),
    ("vs_tau", NAN),
    ("vs_tau", -0.75),
]
GOOD_NUMBERS = [
    ("epochs", 1),
    ("imbalance_ratio", 1.0),
    ("imbalance_ratio", 1),
    ("lr", 1e-12),
    ("momentum", 0.0),
    ("momentum", 0.999),
    ("weight_decay", 0.0),
    ("rho", 0.0),
    ("gamma", 0.0),
    ("lam", 0.0),
    ("seed", 0),
    ("seed", 2**32 - 1),
    ("workers", 0),
    ("threads", 1),
    ("threads", None),
    ("max_steps", 1),
    ("max_steps", None),
    ("tail_threshold", 0.0),
    ("tail_threshold", None),
    ("ccsam_beta", 0.0),
    ("ccsam_beta", 1.0),
    ("ccsam_beta", None),
    ("noise_ratio", 0.0),
    ("train_fraction", 1.0),
    ("train_fraction", 1e-3),
    ("max_train_samples", 1),
    ("max_steps_per_epoch", 1),
    ("imbsam_tail_weight", 2.0),
    ("vs_gamma", 0.0),
    ("vs_tau", 0.0),
]


def test_train_config_every_numeric_setting_has_bad_cases() -> None:
    assert {name for name, _ in BAD_NUMBERS} == set(NUMERIC_BOUNDS)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(NUMERIC_BOUNDS) <= fields


@pytest.mark.parametrize(("name", "value"), BAD_NUMBERS)
def test_train_config_bad_numbers(name: str, value: object) -> None:
    with pytest.raises(ValueError) as info:
        validate_config(dataclasses.replace(TrainConfig(), **{name: value}))
    msg = str(info.value)
    flag = "--" + name.replace("_", "-")
    assert msg == f"{flag} must be {NUMERIC_BOUNDS[name].describe()}, got {value!r}"
    with pytest.raises(ValueError, match=flag):  # the same check on the CLI's resolution path
        resolve_config(None, {name: value})


@pytest.mark.parametrize(("name", "value"), GOOD_NUMBERS)
def test_train_config_boundary_values_accepted(name: str, value: object) -> None:
    validate_config(dataclasses.replace(TrainConfig(), **{name: value}))


def test_train_config_bound_descriptions() -> None:
    assert NUMERIC_BOUNDS["epochs"].describe() == "an integer >= 1"
    assert NUMERIC_BOUNDS["lr"].describe() == "a finite number > 0"
    assert NUMERIC_BOUNDS["momentum"].describe() == "a finite number in [0, 1)"
    assert NUMERIC_BOUNDS["ccsam_beta"].describe() == "a finite number in [0, 1]"
    assert NUMERIC_BOUNDS["seed"].describe() == "an integer in [0, 4.29497e+09]"


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("method", "adam", "sgd, sam, imbsam, ccsam, focalsam"),
        ("loss", "focal", "ce, la, ldam, vs"),
        ("amp", "fp8", "none, bf16, fp16"),
        ("model", "vit", "resnet32"),
        ("dataset", "mnist", "digits_lt"),
        ("impl", "fast", "auto, reference, foreach, cpp, cuda, triton"),
        ("prec", "bf16", "fp32, fp16, amp"),
    ],
)
def test_train_config_unknown_names(name: str, value: str, valid: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_config(None, {name: value})
    assert str(info.value).startswith(f"unknown --{name} {value!r}; valid: ") and valid in str(info.value)


@pytest.mark.parametrize("device", ["tpu", "xpu", "cuda:x", "", "cuda:-1", "mps", "cpu cuda", 3, None])
def test_train_config_bad_device_names(device: object) -> None:
    with pytest.raises(ValueError) as info:
        validate_config(dataclasses.replace(TrainConfig(), device=device))
    assert str(info.value) == f"invalid --device {device!r}; valid: cpu, cuda, cuda:N"


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:3"])
def test_train_config_device_names_accepted(device: str) -> None:
    assert resolve_config(None, {"device": device}).device == device  # presence is checked at run start


@pytest.mark.parametrize(
    "steps", [[0.1], [0.1, 0.2, 0.3], [0.1, -1.0], [NAN, 0.1], [0.1, INF], "0.1", [0.1, "0.2"], [True, 0.1]]
)
def test_train_config_bad_rho_schedules(steps: object) -> None:
    with pytest.raises(ValueError) as info:
        resolve_config(None, {"rho_steps": steps})
    assert str(info.value).startswith(
        "--rho-steps takes 2 values, each a finite number >= 0 (rho before / "
        f"after 80% of the epochs), got {steps!r}"
    )


def test_train_config_good_rho_schedule_and_presets() -> None:
    assert resolve_config(None, {"rho_steps": [0.0, 0.2]}).rho_steps == [0.0, 0.2]
    from focalsam_fast.train.config import PRESETS

    for name in PRESETS:  # every released setting passes the table
        validate_config(resolve_config(name))


def test_train_config_static_names_match_the_registries() -> None:
    """The command line's help lists these names without importing torch; validation uses the registries."""
    from focalsam_fast.data import DATASETS
    from focalsam_fast.kernels import IMPLS
    from focalsam_fast.models import MODELS
    from focalsam_fast.train.config import DATASET_NAMES, IMPL_NAMES, MODEL_NAMES

    assert MODEL_NAMES == tuple(MODELS)
    assert DATASET_NAMES == tuple(DATASETS)
    assert IMPL_NAMES == ("auto", *IMPLS)


def test_train_config_one_subset_flag_at_a_time() -> None:
    with pytest.raises(ValueError) as info:
        resolve_config(None, {"train_fraction": 0.5, "max_train_samples": 100})
    assert str(info.value) == (
        "--train-fraction 0.5 and --max-train-samples 100 both set the training subset; give one of them"
    )


CLIP_PREC = {"cifar10": "fp16", "cifar100": "fp16", "imagenet_lt": "fp16", "inat2018": "fp32"}


def test_train_config_clip_presets_carry_the_released_precision() -> None:
    """The CIFAR and ImageNet-LT CLIP scripts keep their default --prec fp16; iNat passes fp32."""
    from focalsam_fast.train.config import PRESETS

    for name in PRESETS:
        cfg = resolve_config(name)
        short = name.split("_clip_")[0]
        assert cfg.prec == (CLIP_PREC[short] if "_clip_" in name else "fp32"), name
    assert TrainConfig().prec == "fp32"
    assert resolve_config("cifar10_clip_lift", {"prec": "amp"}).prec == "amp"  # a flag overrides the preset


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"prec": "fp16"},
            "--prec fp16 is the CLIP runs' precision (the released CLIP scripts' --prec); --model "
            "digits_cnn trains in fp32 (use --amp bf16 or fp16 for mixed precision)",
        ),
        (
            {"prec": "amp", "model": "resnet50"},
            "--prec amp is the CLIP runs' precision (the released CLIP scripts' --prec); "
            "--model resnet50 trains in fp32 (use --amp bf16 or fp16 for mixed precision)",
        ),
        (
            {"prec": "amp", "model": "clip_vit_b16_lift", "amp": "bf16"},
            "--prec amp and --amp bf16 both set the precision; give --prec fp32 with --amp, "
            "or drop --amp (--prec amp is fp16 autocast with a GradScaler)",
        ),
    ],
)
def test_train_config_precision_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_config(None, overrides)
    assert str(info.value) == message


def test_train_config_preset_precision_with_amp_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="--prec fp16 and --amp fp16 both set the precision"):
        resolve_config("cifar100_clip_lift", {"amp": "fp16"})
    assert resolve_config("cifar100_clip_lift", {"amp": "bf16", "prec": "fp32"}).amp == "bf16"


@pytest.mark.parametrize(
    "value", [[20], [20, 100, 5], [-1, 100], [20.5, 100], [101, 99], [True, 100], "20 100", [20, NAN]]
)
def test_train_config_bad_group_thresholds(value: object) -> None:
    with pytest.raises(ValueError) as info:
        resolve_config(None, {"group_thresholds": value})
    assert str(info.value) == (
        "--group-thresholds takes 2 integers TAIL HEAD, each >= 0 with TAIL <= "
        f"HEAD + 1 (tail: n < TAIL, head: n > HEAD, medium: the rest), got {value!r}"
    )


@pytest.mark.parametrize("value", [[20, 100], [0, 0], [101, 100], None])
def test_train_config_group_thresholds_accepted(value: object) -> None:
    assert resolve_config(None, {"group_thresholds": value}).group_thresholds == value


def test_ccsam_perturb_values_and_models() -> None:
    """``--ccsam-perturb``: only ``head`` / ``last``; ``last`` needs a model with a last stage."""
    validate_config(TrainConfig(method="ccsam", ccsam_perturb="last"))  # digits CNN: second conv block
    with pytest.raises(ValueError, match="unknown --ccsam-perturb 'all'; valid: head, last"):
        validate_config(TrainConfig(method="ccsam", ccsam_perturb="all"))
    with pytest.raises(
        ValueError,
        match="--ccsam-perturb last perturbs a last stage, which --model clip_vit_b16_lift does not have",
    ):
        validate_config(
            TrainConfig(method="ccsam", ccsam_perturb="last", model="clip_vit_b16_lift", dataset="cifar10_lt")
        )
