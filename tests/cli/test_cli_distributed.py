"""``focalsam train --nproc N`` and ``torchrun -m focalsam_fast.cli train``: the launch, its
refusals (one line, before any rank starts), the per-process perturbation option, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from focalsam_fast.cli.main import build_parser
from focalsam_fast.testing import default_sigint
from focalsam_fast.train import distributed, distributed_launch
from focalsam_fast.train.checkpoint import load_checkpoint
from focalsam_fast.train.distributed_launch import rebuild_argv

TINY = ("--epochs", "2", "--max-steps-per-epoch", "2", "--no-progress")
COMMAND = (sys.executable, "-m", "focalsam_fast.cli", "train")

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available in this torch build",
)


def _train_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def test_ranks_get_the_flags_they_were_given() -> None:
    """Every kind of flag survives the trip from the launcher to the ranks (values starting with
    '-', nargs=2, optional values, switches), less --nproc."""
    parser = _train_parser()
    argv = [
        "--nproc",
        "2",
        "--method",
        "sam",
        "--lr",
        "0.125",
        "--rho-steps",
        "0.1",
        "0.2",
        "--drw",
        "--loss",
        "ce",
        "--out",
        "-odd name",
        "--resume",
        "--m-sharpness",
        "--dist-timeout",
        "90",
        "--allow-folder-names",
        "--progress-every",
        "0",
        "--max-steps",
        "7",
        "-q",
    ]
    args = parser.parse_args(argv)
    rebuilt = rebuild_argv(parser, args, drop=("nproc",))
    again = vars(parser.parse_args(rebuilt))
    assert again == {k: v for k, v in vars(args).items() if k != "nproc"}
    assert (
        vars(parser.parse_args(rebuild_argv(parser, parser.parse_args(["--resume", "x/last.pt"]))))["resume"]
        == "x/last.pt"
    )


def test_launcher_constants_match_the_ranks() -> None:
    """The torch-free launcher repeats two values of the ranks' module."""
    assert distributed_launch.ENV_INIT == distributed.ENV_INIT
    assert distributed_launch.DEFAULT_TIMEOUT_S == distributed.DEFAULT_TIMEOUT_S


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--batch-size", "33"),
            "--batch-size 33 is the global batch and must divide evenly over 2 processes",
        ),
        (
            ("--method", "ccsam", "--ccsam-perturb", "last"),
            "--method ccsam runs on several processes in its closed form only",
        ),
        (
            ("--method", "ccsam", "--impl", "reference"),
            "--method ccsam runs on several processes in its closed",
        ),
        (
            ("--m-sharpness", "--method", "ccsam"),
            "--method ccsam's per-class perturbations always use the global",
        ),
        (("--m-sharpness", "--method", "sgd"), "--m-sharpness sets how the SAM methods perturb"),
        (("--nproc", "0"), "--nproc must be an integer >= 1, got 0"),
        (("--compare", "sgd,sam"), "--compare trains the methods one after another in one process"),
        (("--dist-timeout", "0"), "--dist-timeout must be a finite number of seconds > 0, got 0"),
        (("--device", "cuda:0"), "--device cuda:0"),
    ],
)
def test_refused_before_any_rank_starts(run_cli, error_line, tmp_path: Path, argv, message) -> None:
    out = tmp_path / "run"
    res = run_cli("train", "--nproc", "2", *argv, "--out", str(out))
    assert message in error_line(res)
    assert not out.exists()


def test_m_sharpness_needs_several_processes(run_cli, error_line, tmp_path: Path) -> None:
    line = error_line(run_cli("train", "--m-sharpness", "--out", str(tmp_path / "run")))
    assert "--m-sharpness perturbs each process with its own gradient; it needs several processes" in line


def test_nproc_under_torchrun_is_refused(run_cli, error_line, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "this process is rank 0 of 2 already (torchrun): leave --nproc out" in error_line(
        run_cli("train", "--nproc", "2")
    )


def test_set_up_failure_on_rank_0_stops_every_rank(tmp_path: Path) -> None:
    """Only rank 0 takes the run folder; when it refuses (the folder holds a run), rank 1 stops at
    the set-up agreement without a message of its own: one error line in all."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"a run's checkpoint")
    res = subprocess.run(
        [*COMMAND, "--nproc", "2", *TINY, "--out", str(out)], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines == [
        f"focalsam: error: {out} already holds a run (last.pt); continue it with "
        f"`focalsam train --out {out} --resume` or choose another --out"
    ], res.stderr


def test_nproc_run_with_m_sharpness_and_its_resume_check(tmp_path: Path) -> None:
    """``focalsam train --nproc 2 --m-sharpness`` (the digits CNN, BatchNorm per rank) trains and
    says so; a resume must keep the perturbation."""
    out = tmp_path / "run"
    res = subprocess.run(
        [*COMMAND, "--nproc", "2", "--m-sharpness", *TINY, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert (
        "x 2 processes (global batch 32, 16 per process, per-process perturbation (--m-sharpness))"
        in res.stderr
    )
    assert res.stdout.count("accuracy %") == 1
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["distributed"] == {"world_size": 2, "m_sharpness": True} and ckpt["global_step"] == 4
    assert json.loads((out / "config.json").read_text())["resolved"]["m_sharpness"] is True
    res = subprocess.run(
        [*COMMAND, "--nproc", "2", "--out", str(out), "--resume", "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 2
    assert "was trained with --m-sharpness; a resumed run keeps its perturbation" in res.stderr
    assert "Traceback" not in res.stderr


def test_torchrun_runs_the_same_command(tmp_path: Path) -> None:
    """The documented command: torchrun starts the ranks (TCP rendezvous on a free port)."""
    out = tmp_path / "run"
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    res = subprocess.run(
        [*torchrun, "-m", "focalsam_fast.cli", "train", *TINY, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("accuracy %") == 1
    assert load_checkpoint(out / "last.pt")["distributed"]["world_size"] == 2


def test_ctrl_c_stops_every_rank_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    """Ctrl-C at the terminal (SIGINT to the launcher and its ranks): exit 130, rank 0 says how to
    continue, nothing hangs, the last complete checkpoint loads."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*COMMAND, "--nproc", "2", "--epochs", "500", "--no-progress", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / "last.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (out / "last.pt").exists(), proc.communicate()[1]
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted: the last complete epoch" in err and "--resume --nproc 2" in err
    assert "Traceback" not in err
    assert load_checkpoint(out / "last.pt")["epoch"] >= 1
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
