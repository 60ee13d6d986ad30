"""End to end on the embedded digits data: every method, the loss variants, compare, eval, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from focalsam_fast.train.checkpoint import load_checkpoint

METHODS = ("sgd", "sam", "imbsam", "ccsam", "focalsam")


def _files(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


@pytest.mark.parametrize("method", METHODS)
def test_cli_each_method_few_steps(run_cli, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    res = run_cli(
        "train", "--method", method, "--epochs", "2", "--max-steps", "4", "--out", str(out), "--no-progress"
    )
    assert res.code == 0, res.err
    assert {
        "config.json",
        "metrics.jsonl",
        "final.json",
        "final.txt",
        "last.pt",
        "per_class_accuracy.png",
        "training_curves.png",
    } <= _files(out)
    assert "head" in res.out and "medium" in res.out and "tail" in res.out
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == method and config["resolved"]["num_classes"] == 10
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["global_step"] == 4  # max-steps stops inside epoch 1
    final = json.loads((out / "final.json").read_text())["final"]
    assert len(final["per_class"]) == 10 and 0.0 <= final["overall"] <= 1.0
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 4
    if method != "sgd":
        assert "base_optimizer" in ckpt["optimizer"]  # momentum of the base SGD is saved


def test_cli_method_details_per_dataset(run_cli, tmp_path: Path) -> None:
    res = run_cli(
        "train", "--method", "imbsam", "--max-steps", "1", "--out", str(tmp_path / "i"), "--no-progress"
    )
    assert res.code == 0, res.err
    details = json.loads((tmp_path / "i" / "config.json").read_text())["resolved"]["method_details"]
    assert details["tail_threshold"] == 10.0  # the digits tail group (n < 10)
    res = run_cli(
        "train", "--method", "ccsam", "--max-steps", "1", "--out", str(tmp_path / "c"), "--no-progress"
    )
    details = json.loads((tmp_path / "c" / "config.json").read_text())["resolved"]["method_details"]
    assert details == {"beta": 0.3, "noise_ratio": 1e-6, "perturb": "head"}
    res = run_cli(
        "train",
        "--method",
        "ccsam",
        "--ccsam-perturb",
        "last",
        "--max-steps",
        "1",
        "--out",
        str(tmp_path / "l"),
        "--no-progress",
    )
    assert res.code == 0, res.err
    assert "perturb last" in res.out
    res = run_cli("train", "--method", "sam", "--ccsam-perturb", "last", "--out", str(tmp_path / "s"))
    assert res.code == 2
    assert "--ccsam-perturb last sets what CC-SAM perturbs, but this run trains sam (add ccsam" in res.err
    assert not (tmp_path / "s").exists()
    config = json.loads((tmp_path / "l" / "config.json").read_text())
    assert config["ccsam_perturb"] == "last" and config["resolved"]["method_details"]["perturb"] == "last"


@pytest.mark.parametrize(
    "extra",
    [("--loss", "ldam", "--drw"), ("--loss", "vs", "--drw"), ("--loss", "ce", "--rho-steps", "0.05", "0.1")],
)
def test_cli_loss_variants(run_cli, tmp_path: Path, extra: tuple[str, ...]) -> None:
    out = tmp_path / "run"
    res = run_cli("train", *extra, "--epochs", "5", "--batch-size", "128", "--out", str(out), "--no-progress")
    assert res.code == 0, res.err
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 5
    if "--rho-steps" in extra:  # rho A while e + 1 < 0.8 E, then B
        assert [r["rho"] for r in records] == [0.05, 0.05, 0.05, 0.1, 0.1]
    if extra[1] == "ldam":
        state = load_checkpoint(out / "last.pt")["model"]
        assert "fc.bias" not in state  # the cosine head replaced the linear one


def test_cli_default_run_shortened(run_cli, tmp_path: Path) -> None:
    """The main job (`focalsam train`, no arguments) shortened by --epochs."""
    res = run_cli("train", "--epochs", "8", "--out", str(tmp_path / "d"), "--no-progress")
    assert res.code == 0, res.err
    assert "focalsam/la on digits_lt with digits_cnn" in res.out
    for row in ("overall", "head (2 cls)", "medium (3 cls)", "tail (5 cls)"):
        assert row in res.out
    final = json.loads((tmp_path / "d" / "final.json").read_text())["final"]
    assert final["overall"] > 0.3  # it learns (chance is 0.1)
    records = [json.loads(line) for line in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    lrs = [r["lr"] for r in records]
    assert lrs[0] == pytest.approx(0.05) and lrs == sorted(lrs, reverse=True)


def test_cli_presets_listed(run_cli) -> None:
    res = run_cli("presets")
    assert res.code == 0
    for name in (
        "digits",
        "cifar10_resnet32",
        "cifar100_resnet32",
        "imagenet_lt_resnet50",
        "inat2018_resnet50",
        "cifar10_clip_lift",
        "inat2018_clip_fft",
    ):
        assert name in res.out
    assert "rho_steps=[0.1, 0.2]" in res.out


def test_cli_preset_overridden_by_flags(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "p"
    res = run_cli(
        "train",
        "--preset",
        "cifar10_resnet32",
        "--dataset",
        "digits_lt",
        "--model",
        "digits_cnn",
        "--epochs",
        "1",
        "--max-steps",
        "1",
        "--gamma",
        "1.5",
        "--out",
        str(out),
        "--no-progress",
    )
    assert res.code == 0, res.err
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "cifar10_resnet32"
    # from the preset (docs/spec.md §8 CIFAR-10 row) ...
    assert (config["lam"], config["rho"], config["weight_decay"], config["batch_size"], config["lr"]) == (
        0.5,
        0.2,
        2e-4,
        64,
        0.1,
    )
    # ... and overridden by explicit flags
    assert (config["gamma"], config["epochs"], config["dataset"], config["model"]) == (
        1.5,
        1,
        "digits_lt",
        "digits_cnn",
    )


def test_cli_compare_side_by_side(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    res = run_cli(
        "train",
        "--compare",
        "sgd,sam,focalsam",
        "--epochs",
        "1",
        "--max-steps",
        "3",
        "--out",
        str(out),
        "--no-progress",
    )
    assert res.code == 0, res.err
    header = next(line for line in res.out.splitlines() if line.startswith("accuracy %"))
    assert header.split()[2:] == ["sgd", "sam", "focalsam"]
    assert {"compare.txt", "compare.json", "per_class_accuracy.png", "sgd", "sam", "focalsam"} <= _files(out)
    # same data and seed: identical initial weights, so SGD and SAM differ only by the method
    assert set(json.loads((out / "compare.json").read_text())) == {"sgd", "sam", "focalsam"}


def test_cli_eval_checkpoint(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "e"
    assert run_cli("train", "--epochs", "2", "--out", str(out), "--no-progress").code == 0
    res = run_cli("eval", str(out / "last.pt"), "--no-progress")
    assert res.code == 0, res.err
    report = json.loads((out / "eval.json").read_text())
    final = json.loads((out / "final.json").read_text())["final"]
    assert report["test"]["overall"] == final["overall"]
    assert "tail (5 cls)" in res.out


def test_cli_same_seed_same_initial_model(tmp_path: Path) -> None:
    """Seeding happens before the model is built: two runs start from the same weights."""
    from focalsam_fast.train import Trainer, resolve_config

    a = Trainer(resolve_config(None, {"method": "sgd"}), tmp_path / "a", progress=False)
    b = Trainer(resolve_config(None, {"method": "focalsam"}), tmp_path / "b", progress=False)
    for (na, pa), (nb, pb) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


@pytest.mark.parametrize("method", ["focalsam", "ccsam"])
def test_cli_bf16_autocast_on_cpu(run_cli, tmp_path: Path, method: str) -> None:
    res = run_cli(
        "train",
        "--method",
        method,
        "--amp",
        "bf16",
        "--max-steps",
        "3",
        "--out",
        str(tmp_path / "bf16"),
        "--no-progress",
    )
    assert res.code == 0, res.err
    record = json.loads((tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train_loss"] > 0 and record["test_overall"] is not None
    state = load_checkpoint(tmp_path / "bf16" / "last.pt")["model"]
    assert all(v.dtype != torch.bfloat16 for v in state.values())  # weights stay fp32


def test_vs_and_imbsam_flags_reach_the_run(tmp_path) -> None:
    """--vs-gamma / --vs-tau build the VS loss with those values (released CIFAR ones by default);
    --imbsam-tail-weight reaches ImbSAM."""
    from focalsam_fast.train.builders import build_criterion, build_data
    from focalsam_fast.train.config import resolve_config
    from focalsam_fast.train.methods import method_details

    default = resolve_config(overrides={"loss": "vs"})
    assert (default.vs_gamma, default.vs_tau) == (0.05, 0.75)
    cfg = resolve_config(
        overrides={
            "loss": "vs",
            "vs_gamma": 0.2,
            "vs_tau": 0.5,
            "method": "imbsam",
            "imbsam_tail_weight": 2.0,
        }
    )
    data = build_data(cfg)
    crit = build_criterion(cfg, data)
    assert (crit.gamma, crit.tau) == (0.2, 0.5)
    assert method_details(cfg, data)["tail_weight"] == 2.0
