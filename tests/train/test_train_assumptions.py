"""The table of settings that rest on assumptions (docs/fidelity.md) and its marks in
``focalsam presets``."""

from __future__ import annotations

import dataclasses

import pytest

from focalsam_fast.train.assumptions import ASSUMPTIONS, assumed_fields, assumptions_of
from focalsam_fast.train.config import PRESETS, TrainConfig, resolve_config

FFT = {"gamma": ["fft"], "lam": ["fft"], "rho": ["fft"], "prec": ["fft"]}


@pytest.mark.parametrize("name", list(PRESETS))
def test_assumptions_per_preset(name: str) -> None:
    """Only the full fine-tuning presets rest on assumptions (the released CLIP scripts are LIFT
    runs); the others are the released settings."""
    expected = FFT if name.endswith("_clip_fft") else {}
    assert assumed_fields(resolve_config(name)) == expected


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"method": "sam"}, ["baseline-rho"]),
        ({"method": "imbsam"}, ["baseline-rho", "imbsam-tail-weight", "imbsam-threshold"]),
        ({"method": "imbsam", "tail_threshold": 20.0}, ["baseline-rho", "imbsam-tail-weight"]),
        ({"method": "ccsam"}, ["baseline-rho"]),
        ({"method": "ccsam", "dataset": "imagenet_lt"}, ["baseline-rho", "ccsam-beta"]),
        ({"method": "ccsam", "dataset": "imagenet_lt", "ccsam_beta": 0.4}, ["baseline-rho"]),
        ({"loss": "ldam"}, ["other-loss"]),
        ({"loss": "vs", "dataset": "inat2018"}, ["other-loss", "vs-large-scale"]),
        ({"loss": "vs", "method": "sgd"}, []),
        ({"imbalance_ratio": 50.0}, ["cifar-ratio"]),
        ({"method": "sgd"}, []),
    ],
)
def test_assumptions_by_flags(overrides: dict, keys: list[str]) -> None:
    cfg = dataclasses.replace(resolve_config("cifar10_resnet32"), **overrides)
    assert [a.key for a in assumptions_of(cfg)] == keys


def test_assumptions_fields_merge_keys() -> None:
    cfg = dataclasses.replace(
        resolve_config("cifar100_clip_fft"), method="imbsam", loss="ce", imbalance_ratio=10.0
    )
    marked = assumed_fields(cfg)
    assert marked["rho"] == ["fft", "baseline-rho", "cifar-ratio"]
    assert marked["gamma"] == ["fft", "cifar-ratio"]  # other-loss applies to Focal-SAM only
    assert marked["imbsam_tail_weight"] == ["imbsam-tail-weight"]


def test_assumptions_table_is_well_formed() -> None:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert len({a.key for a in ASSUMPTIONS}) == len(ASSUMPTIONS)
    for a in ASSUMPTIONS:
        assert a.fields and set(a.fields) <= names, a.key
        assert a.reason and a.when and "\n" not in a.reason
