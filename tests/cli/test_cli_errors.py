"""Bad input: one clear line and exit code 2, never a traceback, and nothing trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from focalsam_fast.train.checkpoint import load_checkpoint, save_checkpoint


def test_cli_missing_cifar_path(run_cli, error_line, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-cifar"
    line = error_line(
        run_cli(
            "train",
            "--dataset",
            "cifar10_lt",
            "--model",
            "resnet32",
            "--data-root",
            str(missing),
            "--out",
            str(tmp_path / "o"),
        )
    )
    assert str(missing) in line and "not found" in line and "cifar-10-python.tar.gz" in line
    assert not (tmp_path / "o").exists()


def test_cli_unreadable_archive(run_cli, error_line, tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.xz"
    archive.write_bytes(b"not an archive")
    line = error_line(run_cli("train", "--preset", "cifar10_resnet32", "--data-root", str(archive)))
    assert "cifar10_lt" in line and str(archive) in line


@pytest.mark.parametrize("dataset", ["cifar100_lt", "imagenet_lt", "inat2018"])
def test_cli_missing_data_paths(run_cli, error_line, tmp_path: Path, dataset: str) -> None:
    line = error_line(run_cli("train", "--dataset", dataset, "--data-root", str(tmp_path / "x")))
    assert str(tmp_path / "x") in line and "not found" in line
    line = error_line(run_cli("train", "--dataset", dataset))
    assert "needs --data-root" in line


def test_cli_missing_clip_weights(run_cli, error_line, tmp_path: Path) -> None:
    archive = tmp_path / "fake.tar"
    archive.write_bytes(b"")
    line = error_line(
        run_cli(
            "train",
            "--preset",
            "cifar10_clip_lift",
            "--data-root",
            str(archive),
            "--clip-weights",
            str(tmp_path / "ViT-B-16.pt"),
        )
    )
    assert "ViT-B-16.pt not found" in line


@pytest.mark.parametrize(
    ("flag", "valid"),
    [
        ("--preset", "cifar10_resnet32"),
        ("--method", "focalsam"),
        ("--loss", "ldam"),
        ("--model", "resnet32"),
        ("--dataset", "cifar100_lt"),
        ("--amp", "bf16"),
    ],
)
def test_cli_unknown_names_list_valid_ones(run_cli, error_line, flag: str, valid: str) -> None:
    line = error_line(run_cli("train", flag, "nonsense"))
    assert "'nonsense'" in line and "valid:" in line and valid in line


def test_cli_unknown_compare_method(run_cli, error_line) -> None:
    line = error_line(run_cli("train", "--compare", "sgd,adamw"))
    assert "adamw" in line and "focalsam" in line


def test_cli_drw_with_la_rejected(run_cli, error_line) -> None:
    line = error_line(run_cli("train", "--drw"))
    assert "--loss ce, ldam or vs" in line


@pytest.fixture
def trained(run_cli, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    assert run_cli("train", "--epochs", "1", "--max-steps", "2", "--out", str(out), "--no-progress").code == 0
    return out


def test_cli_resume_with_other_model(run_cli, error_line, trained: Path) -> None:
    before = (trained / "last.pt").read_bytes()
    line = error_line(run_cli("train", "--out", str(trained), "--resume", "--model", "resnet32"))
    assert "'digits_cnn'" in line and "'resnet32'" in line
    assert (trained / "last.pt").read_bytes() == before


def test_cli_resume_with_other_class_counts(run_cli, error_line, trained: Path) -> None:
    line = error_line(run_cli("train", "--out", str(trained), "--resume", "--imbalance-ratio", "10"))
    assert "imbalance_ratio=100.0" in line and "10.0" in line  # refused before the data is built


def test_cli_resume_with_other_settings(run_cli, error_line, trained: Path) -> None:
    line = error_line(run_cli("train", "--out", str(trained), "--resume", "--lr", "0.3"))
    assert "lr=0.05" in line and "0.3" in line
    res = run_cli("train", "--out", str(trained), "--resume", "--max-steps", "3", "--no-progress")
    assert res.code == 0, res.err  # a run-time setting may change


def test_cli_checkpoint_class_count_mismatch(run_cli, error_line, trained: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(trained / "last.pt")
    ckpt["num_classes"] = 5
    ckpt["model"]["fc.weight"] = torch.zeros(5, 32)
    save_checkpoint(ckpt, tmp_path / "five.pt")
    line = error_line(run_cli("eval", str(tmp_path / "five.pt")))
    assert "5 classes" in line and "10" in line
    res = run_cli("train", "--resume", str(tmp_path / "five.pt"), "--out", str(tmp_path / "r"))
    line = error_line(res)
    assert "5 classes" in line


def test_cli_checkpoint_weights_do_not_fit(run_cli, error_line, trained: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(trained / "last.pt")
    ckpt["model"]["fc.weight"] = torch.zeros(10, 7)
    save_checkpoint(ckpt, tmp_path / "bad.pt")
    line = error_line(run_cli("eval", str(tmp_path / "bad.pt")))
    assert "does not fit digits_cnn" in line


def test_cli_not_a_checkpoint(run_cli, error_line, tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_text("hello")
    assert "is not a focalsam checkpoint" in error_line(run_cli("eval", str(tmp_path / "junk.pt")))
    assert "not found" in error_line(run_cli("eval", str(tmp_path / "none.pt")))
    line = error_line(run_cli("train", "--out", str(tmp_path / "empty"), "--resume"))
    assert "last.pt not found" in line


def test_cli_existing_run_not_overwritten(run_cli, error_line, trained: Path) -> None:
    before = (trained / "last.pt").read_bytes()
    line = error_line(run_cli("train", "--out", str(trained)))
    assert "--resume" in line
    assert (trained / "last.pt").read_bytes() == before


def test_cli_ood_only_for_imagenet(run_cli, error_line, trained: Path, tmp_path: Path) -> None:
    line = error_line(run_cli("eval", str(trained / "last.pt"), "--ood-v2", str(tmp_path)))
    assert "ImageNet-LT" in line


def test_cli_bad_numbers(run_cli, error_line) -> None:
    assert "epochs" in error_line(run_cli("train", "--epochs", "0"))
    assert "rho" in error_line(run_cli("train", "--rho", "-1"))
    assert "fp16" in error_line(run_cli("train", "--amp", "fp16"))
