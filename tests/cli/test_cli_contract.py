"""The CLI's contract for bad flag values, devices and output paths, in train and eval: exit code 2,
one line saying what is wrong and what to do, checked before any data or model is built and
before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from focalsam_fast.cli import eval_cmd, train_cmd
from focalsam_fast.train import Trainer, engine, resolve_config

CUDA = torch.cuda.is_available()


@pytest.fixture
def nothing_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if a data set or model is built (the checks must come first)."""

    def built(*args, **kwargs):
        raise AssertionError("data or model was built before the flags were checked")

    for module in (engine, train_cmd, eval_cmd):
        monkeypatch.setattr(module, "build_data", built)
    monkeypatch.setattr(engine, "build_run_model", built)
    monkeypatch.setattr(eval_cmd, "model_from_checkpoint", built)


TRAIN_CASES = [
    (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["--epochs", "-2"], "--epochs must be an integer >= 1, got -2"),
    (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5' (see `focalsam train --help`)"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    (["--imbalance-ratio", "0.5"], "--imbalance-ratio must be a finite number >= 1, got 0.5"),
    (["--imbalance-ratio", "nan"], "--imbalance-ratio must be a finite number >= 1, got nan"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--lr", "-0.1"], "--lr must be a finite number > 0, got -0.1"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--momentum", "1"], "--momentum must be a finite number in [0, 1), got 1.0"),
    (["--weight-decay=-1e-4"], "--weight-decay must be a finite number >= 0, got -0.0001"),
    (["--weight-decay", "-1e-4"], "argument --weight-decay: expected one argument"),  # argparse: a flag?
    (["--rho", "-0.05"], "--rho must be a finite number >= 0, got -0.05"),
    (["--rho", "inf"], "--rho must be a finite number >= 0, got inf"),
    (["--gamma", "nan"], "--gamma must be a finite number >= 0, got nan"),
    (["--lam", "-1"], "--lam must be a finite number >= 0, got -1.0"),
    (["--seed", "-1"], "--seed must be an integer in [0, 4.29497e+09], got -1"),
    (["--workers", "-1"], "--workers must be an integer >= 0, got -1"),
    (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
    (["--max-steps", "0"], "--max-steps must be an integer >= 1, got 0"),
    (["--tail-threshold", "-1"], "--tail-threshold must be a finite number >= 0, got -1.0"),
    (["--tail-threshold", "nan"], "--tail-threshold must be a finite number >= 0, got nan"),
    (["--ccsam-beta", "2"], "--ccsam-beta must be a finite number in [0, 1], got 2.0"),
    (["--rho-steps", "-1", "0.1"], "--rho-steps takes 2 values, each a finite number >= 0"),
    (["--rho-steps", "0.1", "nan"], "--rho-steps takes 2 values, each a finite number >= 0"),
    (["--rho-steps", "0.1"], "argument --rho-steps: expected 2 arguments"),
    (["--impl", "bogus"], "unknown --impl 'bogus'; valid: auto, reference, foreach, cpp, cuda, triton"),
    (["--device", "foo"], "invalid --device 'foo'; valid: cpu, cuda, cuda:N"),
    (["--device", "cuda:x"], "invalid --device 'cuda:x'; valid: cpu, cuda, cuda:N"),
    (["--method", "adam"], "unknown --method 'adam'; valid: sgd, sam, imbsam, ccsam, focalsam"),
    (["--preset", "x"], "unknown preset 'x'; valid: digits"),
    (["--compare", "sgd,bogus"], "unknown method(s) ['bogus'] in --compare"),
    (["--compare", "sgd,sam", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--resume", "--compare", "sgd"], "--resume continues one run"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--amp", "fp16"], "--amp fp16 needs a CUDA device; on the CPU use --amp bf16 or none"),
]
if not CUDA:
    TRAIN_CASES += [
        (["--device", "cuda"], "--device cuda asked for but CUDA is not available here (use --device cpu)"),
        (["--compare", "sgd,sam", "--device", "cuda:0"], "--device cuda:0 asked for but CUDA is not"),
        (["--impl", "cuda"], "impl='cuda' is not available on device cpu"),
    ]


@pytest.mark.parametrize(("argv", "expected"), TRAIN_CASES, ids=[" ".join(a) for a, _ in TRAIN_CASES])
def test_cli_train_bad_values(
    run_cli,
    error_line,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    nothing_built,
    argv: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # default output folders would appear under ./runs
    line = error_line(run_cli("train", *argv, "--no-progress"))
    assert expected in line
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder made
    line = error_line(run_cli("train", *argv, "--out", str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("make", ["file", "under_file", "proc"])
def test_cli_train_wrong_out(run_cli, error_line, tmp_path: Path, nothing_built, make: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    out = {
        "file": tmp_path / "file",
        "under_file": tmp_path / "file" / "run",
        "proc": Path("/proc/focalsam-out"),
    }[make]
    line = error_line(run_cli("train", "--out", str(out)))
    expected = {
        "file": f"output folder {out} is a file, not a folder; choose another --out",
        "under_file": f"cannot write {out}: Not a directory; choose a writable --out folder",
        "proc": f"cannot write {out}: No such file or directory; choose a writable --out",
    }[make]
    assert line.startswith(f"focalsam: error: {expected}")
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a 2-step digits run."""
    out = tmp_path_factory.mktemp("trained")
    cfg = resolve_config(None, {"epochs": 1, "max_steps": 2})
    Trainer(cfg, out, log=lambda s: None, progress=False).run()
    return out / "last.pt"


EVAL_CASES = [
    (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    (["--workers", "-1"], "--workers must be an integer >= 0, got -1"),
    (["--device", "foo"], "invalid --device 'foo'; valid: cpu, cuda, cuda:N"),
    (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
    (["--amp", "fp16"], "--amp fp16 needs a CUDA device"),
    (["--batch-size", "x"], "argument --batch-size: invalid int value: 'x' (see `focalsam eval --help`)"),
]
if not CUDA:
    EVAL_CASES += [
        (["--device", "cuda"], "--device cuda asked for but CUDA is not available here"),
        (["--device", "cuda:1"], "--device cuda:1 asked for but CUDA is not available here"),
    ]


@pytest.mark.parametrize(("argv", "expected"), EVAL_CASES, ids=[" ".join(a) for a, _ in EVAL_CASES])
def test_cli_eval_bad_values(
    run_cli, error_line, checkpoint: Path, nothing_built, argv: list[str], expected: str
) -> None:
    line = error_line(run_cli("eval", str(checkpoint), *argv))
    assert expected in line
    assert not (checkpoint.parent / "eval.json").exists()


@pytest.mark.parametrize("make", ["file", "under_file", "proc"])
def test_cli_eval_checks_out_before_evaluating(
    run_cli,
    error_line,
    checkpoint: Path,
    tmp_path: Path,
    nothing_built,
    monkeypatch: pytest.MonkeyPatch,
    make: str,
) -> None:
    def evaluated(*args, **kwargs):
        raise AssertionError("evaluated before checking --out")

    monkeypatch.setattr(eval_cmd, "evaluate", evaluated)
    (tmp_path / "file").write_text("x")
    out = {"file": tmp_path / "file", "under_file": tmp_path / "file" / "e", "proc": Path("/proc/e")}[make]
    line = error_line(run_cli("eval", str(checkpoint), "--out", str(out)))
    assert str(out) in line and ("is a file, not a folder" in line or "cannot write" in line)


def test_cli_eval_writes_where_asked(run_cli, checkpoint: Path, tmp_path: Path) -> None:
    res = run_cli("eval", str(checkpoint), "--out", str(tmp_path / "new" / "folder"), "--no-progress")
    assert res.code == 0, res.err
    assert (tmp_path / "new" / "folder" / "eval.json").is_file()
    assert [p.name for p in (tmp_path / "new" / "folder").iterdir()] == ["eval.json"]
