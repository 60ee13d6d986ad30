"""Paths given on the command line are stored absolute, so eval and --resume work from any folder;
a recorded data location that is gone is reported naming --data-root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from focalsam_fast.data import build_dataset
from focalsam_fast.train import builders
from focalsam_fast.train.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def roots(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """CIFAR-10-LT served by the embedded digits data (no download, a real folder checked for
    existence); returns the roots the data builder was given."""
    seen: list[str] = []

    def fake(name: str, root: str | None = None, **options: object):
        seen.append(root)
        assert name == "cifar10_lt" and Path(root).is_dir()
        return build_dataset("digits_lt", None, imb_ratio=options["imb_ratio"])

    monkeypatch.setattr(builders, "build_dataset", fake)
    return seen


def test_cli_relative_paths_stored_absolute(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, roots: list[str]
) -> None:
    (tmp_path / "a" / "data").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    res = run_cli(
        "train",
        "--dataset",
        "cifar10_lt",
        "--model",
        "digits_cnn",
        "--data-root",
        "data",
        "--epochs",
        "2",
        "--max-steps",
        "2",
        "--out",
        "run",
        "--no-progress",
    )
    assert res.code == 0, res.err
    data = str(tmp_path / "a" / "data")
    assert roots == [data]
    assert json.loads((tmp_path / "a" / "run" / "config.json").read_text())["data_root"] == data
    assert load_checkpoint(tmp_path / "a" / "run" / "last.pt")["config"]["data_root"] == data
    assert f"--out {tmp_path / 'a' / 'run'} --resume" not in res.err  # finished: no resume hint

    monkeypatch.chdir(tmp_path / "b")  # another folder: eval and resume still find the data
    res = run_cli("eval", "../a/run/last.pt", "--no-progress")
    assert res.code == 0, res.err
    assert roots[-1] == data
    report = json.loads((tmp_path / "a" / "run" / "eval.json").read_text())
    assert report["checkpoint"] == str(tmp_path / "a" / "run" / "last.pt")
    res = run_cli("train", "--resume", "../a/run/last.pt", "--no-progress")
    assert res.code == 0, res.err
    assert roots[-1] == data


def test_cli_eval_missing_recorded_data_names_the_flag(
    run_cli, error_line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, roots: list[str]
) -> None:
    (tmp_path / "a" / "data").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    run = tmp_path / "a" / "run"
    assert (
        run_cli(
            "train",
            "--dataset",
            "cifar10_lt",
            "--model",
            "digits_cnn",
            "--data-root",
            str(tmp_path / "a" / "data"),
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--out",
            str(run),
            "--no-progress",
        ).code
        == 0
    )
    ckpt = load_checkpoint(run / "last.pt")
    ckpt["config"]["data_root"] = "data"  # as an older focalsam recorded a relative --data-root
    save_checkpoint(ckpt, run / "last.pt")
    monkeypatch.chdir(tmp_path / "b")
    line = error_line(run_cli("eval", str(run / "last.pt")))
    assert line == (
        "focalsam: error: the data this checkpoint was trained on, data (a relative path, "
        "recorded by an older focalsam, read from the current folder), is not there; pass its "
        "location with --data-root PATH"
    )
    (tmp_path / "a" / "data").rename(tmp_path / "moved")
    ckpt["config"]["data_root"] = str(tmp_path / "a" / "data")
    save_checkpoint(ckpt, run / "last.pt")
    line = error_line(run_cli("eval", str(run / "last.pt")))
    assert f"{tmp_path / 'a' / 'data'}, is not there; pass its location with --data-root PATH" in line
    res = run_cli("eval", str(run / "last.pt"), "--data-root", "../moved", "--no-progress")
    assert res.code == 0, res.err
    assert roots[-1] == str(tmp_path / "moved")


def test_cli_missing_data_root_error_names_the_flag(run_cli, error_line, tmp_path: Path) -> None:
    line = error_line(run_cli("train", "--dataset", "cifar10_lt", "--data-root", str(tmp_path / "none")))
    assert line.startswith(f"focalsam: error: --data-root {tmp_path / 'none'} not found: download")
