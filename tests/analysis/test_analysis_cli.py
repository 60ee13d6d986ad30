"""``focalsam analyze`` (``analysis.cli.run`` through a parser built with ``add_parser``) and the
checkpoint API on a small trained digits run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from focalsam_fast.analysis import AnalysisError, analyze_checkpoint
from focalsam_fast.analysis import cli as analysis_cli
from focalsam_fast.analysis.api import AnalysisSettings
from focalsam_fast.cli.main import UsageError, main
from focalsam_fast.train.checkpoint import save_checkpoint
from focalsam_fast.train.errors import CheckpointError

SMALL = [
    "--samples",
    "24",
    "--max-iter",
    "8",
    "--trace-probes",
    "4",
    "--probe-batch",
    "2",
    "--slq-runs",
    "2",
    "--slq-steps",
    "4",
    "--landscape-points",
    "3",
    "--landscape-2d-points",
    "3",
    "--no-progress",
]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "sgd"
    torch.set_num_threads(1)
    assert (
        main(
            [
                "train",
                "--method",
                "sgd",
                "--epochs",
                "1",
                "--max-steps",
                "3",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    return out / "last.pt"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="focalsam")
    analysis_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["analyze", *argv])


def _numbers(path: Path) -> dict:
    data = json.loads(path.read_text())
    for ck in data["checkpoints"]:
        for g in ck["groups"].values():
            g.pop("seconds")
    return data


def test_analyze_writes_json_and_figures_and_prints_the_table(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(str(checkpoint), "--groups", "head,tail", "--out", str(tmp_path), *SMALL)
    assert args.func is analysis_cli.run and analysis_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "BatchNorm in eval mode; seed 0" in out and "sgd        head" in out and "sgd        tail" in out
    for name in ("analysis.json", "spectrum.png", "landscape_1d.png", "landscape_2d.png"):
        assert (tmp_path / name).stat().st_size > 0
    data = json.loads((tmp_path / "analysis.json").read_text())
    assert data["bn_mode"].startswith("eval")
    ck = data["checkpoints"][0]
    assert ck["method"] == "sgd" and ck["loss"] == "la" and ck["settings"]["seed"] == 0
    for name, classes in (("head", [0, 1]), ("tail", [5, 6, 7, 8, 9])):
        g = ck["groups"][name]
        assert g["classes"] == classes
        assert g["samples"] == min(24, sum(ck["class_counts"][c] for c in classes))
        assert g["lambda_max"] == g["eigen"]["eigenvalues"][0] and len(g["eigen"]["relative_residuals"]) == 1
        assert g["trace"]["probes"] == 4 and g["trace"]["stderr"] >= 0
        assert len(g["density"]["nodes"]) == 2 and len(g["landscape_2d"]["loss"]) == 3


def test_same_seed_same_numbers_other_seed_other_probes(checkpoint: Path, tmp_path: Path) -> None:
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert (
            analysis_cli.run(
                parse(
                    str(checkpoint),
                    "--classes",
                    "0,2",
                    "--seed",
                    seed,
                    "--out",
                    str(tmp_path / name),
                    "--stages",
                    "eigen,trace",
                    *SMALL,
                )
            )
            == 0
        )
    a, b, c = (_numbers(tmp_path / n / "analysis.json") for n in "abc")
    assert a == b

    def trace(d: dict) -> dict:
        return d["checkpoints"][0]["groups"]["classes 0,2"]["trace"]

    assert trace(a) != trace(c)


def test_api_on_one_class_and_several_checkpoints_side_by_side(checkpoint: Path, tmp_path: Path) -> None:
    settings = AnalysisSettings(max_iter=8, trace_probes=4, stages=("eigen", "trace", "density"), slq_steps=4)
    res = analyze_checkpoint(checkpoint, classes=[[9]], settings=settings, progress=False)
    g = res.groups["classes 9"]
    assert g.samples == 1 and g.classes == [9] and g.eigen is not None and g.landscape_1d is None
    assert (
        analysis_cli.run(
            parse(
                str(checkpoint),
                str(checkpoint),
                "--classes",
                "9",
                "--out",
                str(tmp_path),
                "--stages",
                "eigen,trace,density",
                *SMALL,
            )
        )
        == 0
    )
    data = json.loads((tmp_path / "analysis.json").read_text())
    assert len(data["checkpoints"]) == 2 and (tmp_path / "spectrum.png").exists()
    assert not (tmp_path / "landscape_1d.png").exists()


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        (["--classes", "0,12"], AnalysisError, "unknown class 12: this data set has classes 0..9"),
        (
            ["--classes", "a,b"],
            UsageError,
            "--classes takes comma-separated class indices like 0,1,2, got 'a,b'",
        ),
        (["--groups", "head", "--classes", "1"], UsageError, "give --groups or --classes, not both"),
        (["--groups", "huge"], AnalysisError, "unknown group 'huge'; valid: head, medium, tail"),
        (["--trace-probes", "1"], AnalysisError, "--trace-probes must be an integer >= 2, got 1"),
        (["--stages", "eigen,foo"], AnalysisError, r"unknown stage\(s\) \['foo'\]"),
    ],
)
def test_bad_input_raises_the_clis_one_line_errors(
    checkpoint: Path, tmp_path: Path, argv: list[str], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        analysis_cli.run(parse(str(checkpoint), "--out", str(tmp_path), *argv, "--no-progress"))


def test_checkpoint_without_the_runs_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {}}, path)
    with pytest.raises(CheckpointError, match="holds no training config"):
        analysis_cli.run(parse(str(path), "--out", str(tmp_path / "a"), "--no-progress"))


def test_focalsam_analyze_through_the_cli(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The registered sub-command: a run, and a bad class as one line with exit code 2."""
    assert main(["analyze", str(checkpoint), "--classes", "0,1", "--out", str(tmp_path), *SMALL]) == 0
    assert (tmp_path / "analysis.json").is_file()
    capsys.readouterr()
    assert main(["analyze", str(checkpoint), "--classes", "0,12", "--out", str(tmp_path / "x"), *SMALL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("focalsam: error:") and "12" in err[0]


def test_settings_names_match_the_implementations() -> None:
    """The torch-free settings list the same eigen methods and dtypes as the code that runs them."""
    from focalsam_fast.analysis import api, eigen, settings

    assert settings.EIGEN_METHOD_NAMES == tuple(eigen.EIGEN_METHODS)
    assert settings.DTYPE_NAMES == tuple(api.DTYPES)
