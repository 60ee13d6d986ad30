"""``analyze_group``: every stage on one group, graph cache on/off, settings checks, probe batch."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from focalsam_fast.analysis import AnalysisError, AnalysisSettings, analyze_group
from focalsam_fast.analysis.api import probe_batch
from tests.analysis.helpers import ce, small_cnn

SMALL = AnalysisSettings(
    max_iter=393,
    tol=1e-8,
    trace_probes=6,
    probe_batch=3,
    slq_runs=2,
    slq_steps=5,
    landscape_points=3,
    landscape_2d_points=3,
    chunk_size=5,
    dtype="float64",
    seed=11,
)


def test_every_stage_and_the_graph_cache_gives_the_same_numbers(cnn_case) -> None:
    model, x, y, dense = cnn_case
    cached = analyze_group(model, ce, x, y, SMALL, progress=False)
    rebuilt = analyze_group(model, ce, x, y, dataclasses.replace(SMALL, cache_graph=False), progress=False)
    assert cached.eigen.eigenvalues[0] == pytest.approx(float(torch.linalg.eigvalsh(dense)[-1]), rel=1e-6)
    assert cached.eigen.eigenvalues == pytest.approx(rebuilt.eigen.eigenvalues, rel=1e-9)
    assert cached.trace.samples == pytest.approx(rebuilt.trace.samples, rel=1e-9)
    torch.testing.assert_close(
        torch.tensor(cached.density.nodes), torch.tensor(rebuilt.density.nodes), rtol=1e-8, atol=1e-10
    )
    assert cached.landscape_2d.loss == rebuilt.landscape_2d.loss
    assert (
        cached.samples == len(y)
        and cached.parameters == 393
        and set(cached.seconds) == {"eigen", "trace", "density", "landscape"}
    )
    summary = cached.to_dict(SMALL.sigma_rel)
    assert summary["lambda_max"] == cached.eigen.eigenvalues[0] and len(summary["density"]["grid"]) == 1000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"top_k": 0}, "--top-k must be an integer >= 1, got 0"),
        ({"tol": float("nan")}, "--tol must be a finite number > 0"),
        ({"probe_batch": 0}, "--probe-batch must be an integer >= 1, got 0"),
        ({"eigen_method": "qr"}, "unknown eigen method 'qr'; valid: lanczos, power"),
        ({"dtype": "float16"}, "unknown dtype 'float16'; valid: float32, float64"),
    ],
)
def test_bad_settings_are_named(change: dict, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        dataclasses.replace(SMALL, **change).check()


def test_probe_batch_defaults_to_one_on_the_cpu_and_eight_on_cuda() -> None:
    auto = AnalysisSettings()
    assert probe_batch(auto, torch.device("cpu")) == 1
    assert probe_batch(auto, torch.device("cuda")) == 8
    assert probe_batch(dataclasses.replace(auto, probe_batch=5), torch.device("cpu")) == 5


def test_stage_lines_on_stderr_when_it_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    model, x, y = small_cnn(n=6)
    settings = dataclasses.replace(SMALL, stages=("trace",), trace_probes=4)
    analyze_group(model, ce, x, y, settings, label="tail")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("tail: Hutchinson trace: 4 of 4 steps, ")
