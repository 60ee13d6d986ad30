"""Tests of the GPU check without a GPU: ``gpu_check.sh --dry-run``, its refusal to pass without a
GPU, the refusal of every script under ``benchmarks/gpu/``, and the CPU-testable logic of those
scripts (junit verdict, chunked float64 references, focal-loss edge cases, sanitizer inputs, the
big-tensor checks and the step set-ups) run on the CPU implementations."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch

from benchmarks.common import REPO
from benchmarks.gpu import _junit, _reference64, big_tensor, focal_edges, sanitize_ops, streams_graphs
from benchmarks.gpu._common import EXIT_NO_GPU, Report
from focalsam_fast import kernels

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
GPU_DIR = REPO / "benchmarks" / "gpu"
GPU_SCRIPTS = sorted(p.stem for p in GPU_DIR.glob("*.py") if not p.name.startswith("_"))
STAGES = (
    "env",
    "build",
    "impls",
    "cuda-tests",
    "triton-tests",
    "other-gpu-tests",
    "memcheck",
    "racecheck",
    "parity",
    "focal-edges",
    "big-tensor",
    "streams-graphs",
    "bench-optimizer",
    "bench-launches",
    "bench-interleaved",
    "step-resnet32-cifar10lt",
    "step-resnet50-inat2018",
    "table",
)
CPU = torch.device("cpu")
NO_GPU_ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if k not in ("FOCALSAM_CUDA_ARCHS", "FOCALSAM_GPU_CHECK_BUDGET_S", "COMPUTE_SANITIZER")
    },
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHON": sys.executable,
}


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env or NO_GPU_ENV, capture_output=True, text=True, timeout=timeout
    )


def _cpu_ops(with_focal_loss: bool = False) -> dict[str, ModuleType]:
    ops = {n: kernels.get_ops(n, CPU) for n in kernels.available_impls(CPU)}
    return {n: m for n, m in ops.items() if not with_focal_loss or hasattr(m, "focal_loss")}


# ----------------------------------------------------------------------------- gpu_check.sh
@pytest.fixture(scope="module")
def dry_run() -> subprocess.CompletedProcess[str]:
    return _run("--dry-run")


def test_dry_run_lists_every_stage_and_the_caps_fit(dry_run: subprocess.CompletedProcess[str]) -> None:
    out = dry_run.stdout
    assert dry_run.returncode == 0, out + dry_run.stderr
    caps = dict(re.findall(r"^\s*\d+\. (\S+)\s+cap\s+(\d+) s", out, flags=re.M))
    kinds = dict(re.findall(r"^\s*\d+\. (\S+)\s+cap\s+\d+ s\s+(\w+)", out, flags=re.M))
    assert set(STAGES) <= set(caps), set(STAGES) - set(caps)
    assert [kinds[s] for s in ("env", "build", "impls")] == ["hard"] * 3
    assert kinds["step-resnet50-inat2018"] == "optional" and kinds["parity"] == "required"
    required = sum(int(c) for name, c in caps.items() if kinds[name] != "optional")
    total, available = map(int, re.search(r"required stages sum to (\d+) s <= (\d+) s .*: fit", out).groups())
    assert total == required <= available == 480 - 30
    for name in ("cuda-tests", "triton-tests", "parity"):  # each GPU test stage is judged by its junit XML
        assert re.search(rf"-m gpu .*--junitxml=OUT_DIR/{name}\.xml.*benchmarks\.gpu\._junit", out)
    assert "--no-build-isolation --no-deps" in out and "-e ." in out
    assert "--tool memcheck" in out or "compute-sanitizer not found; looked in: PATH" in out
    assert "files: all" in out
    assert f"compile: all {len(list(GPU_DIR.glob('*.py')))} Python files under benchmarks/gpu/ compile" in out
    assert out.rstrip().endswith("dry-run: ok")


def test_docs_stage_table_matches_the_script(dry_run: subprocess.CompletedProcess[str]) -> None:
    """docs/gpu.md lists every stage with the script's cap and kind."""
    script = {
        name: (int(cap), kind)
        for name, cap, kind in re.findall(
            r"^\s*\d+\. (\S+)\s+cap\s+(\d+) s\s+(\w+)", dry_run.stdout, flags=re.M
        )
    }
    docs = (REPO / "docs" / "gpu.md").read_text()
    rows = {
        name: (int(cap), kind)
        for name, cap, kind in re.findall(r"^\| \d+ \| ([\w-]+) \| (\d+) \| (\w+) \|", docs, flags=re.M)
    }
    assert rows == {k: v for k, v in script.items() if not k.startswith("step-")}
    assert all(v == (90, "optional") for k, v in script.items() if k.startswith("step-"))
    assert "| 16-21 | step-&lt;setting&gt; | 90 each | optional |" in docs


def test_dry_run_fails_when_the_caps_exceed_the_budget() -> None:
    proc = _run("--dry-run", env={**NO_GPU_ENV, "FOCALSAM_GPU_CHECK_BUDGET_S": "300"})
    assert proc.returncode == 1
    assert "> 270 s (budget 300 - reserve 30): DO NOT FIT" in proc.stdout
    assert proc.stdout.rstrip().endswith("dry-run: FAILED")


def test_without_a_gpu_the_check_fails_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    proc = _run(str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED: no CUDA GPU visible" in proc.stderr
    assert "no CUDA GPU visible" in (out / "summary.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["gpu_probe.log", "summary.md"]  # nothing built or run


@pytest.mark.parametrize("args", [(), ("a", "b"), ("--dry-run", "x"), ("--bogus",)])
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    proc = _run(*args, timeout=30)
    assert proc.returncode == 2 and "usage" in proc.stderr


# A stand-in for the GPU machine's python: it answers the script's GPU probe, passes the junit
# verdict to the real Python, writes a junit XML (with a skip for the stage named in FAKE_SKIP) and
# benchmark JSON for pytest, and fails (exit 3) every command that contains FAKE_FAIL.
FAKE_PYTHON = r"""#!/usr/bin/env bash
if [ "$1" = -c ]; then
    case "$2" in *get_device_capability*) echo "90-real Fake GPU"; exit 0 ;; esac
fi
case "$*" in *"${FAKE_FAIL:-no such command}"*) echo "fake failure: $*"; exit 3 ;; esac
ok='<testcase classname="t" name="ok"/>'
skip='<testcase classname="t" name="s"><skipped message="needs a CUDA GPU"/></testcase>'
case "$*" in
    *benchmarks.gpu._junit*) exec REAL_PYTHON "$@" ;;
    *"-m pytest"*)
        for a in "$@"; do
            case "$a" in
                --junitxml=*) xml=${a#--junitxml=} ;;
                --benchmark-json=*) echo '{}' >"${a#*=}" ;;
            esac
        done
        case "$xml" in *"/${FAKE_SKIP:-none}.xml") ok="$ok$skip" ;; esac
        echo "<testsuites><testsuite>$ok</testsuite></testsuites>" >"$xml"
        echo "fake pytest" ;;
    *render_table*) for a in "$@"; do [ "${prev:-}" = -o ] && echo table >"$a"; prev=$a; done ;;
    *) echo "fake: $* (FOCALSAM_CUDA_ARCHS=${FOCALSAM_CUDA_ARCHS:-})" ;;
esac
"""
FAKE_SANITIZER = """#!/usr/bin/env bash
while [ "${1#-}" != "$1" ]; do shift 2; done
exec "$@"
"""


def _fake_run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str, Path]:
    """gpu_check.sh on a faked GPU machine: (process, summary.md, OUT_DIR)."""
    py, san = tmp_path / "python", tmp_path / "compute-sanitizer"
    py.write_text(FAKE_PYTHON.replace("REAL_PYTHON", sys.executable))
    san.write_text(FAKE_SANITIZER)
    py.chmod(0o755)
    san.chmod(0o755)
    out = tmp_path / "out"
    proc = _run(str(out), env={**NO_GPU_ENV, "PYTHON": str(py), "COMPUTE_SANITIZER": str(san), **env})
    return proc, (out / "summary.md").read_text(), out


def _status(summary: str) -> dict[str, str]:
    return dict(re.findall(r"^\| \d+ \| ([\w-]+) \| ([^|]+?) \|", summary, flags=re.M))


def test_run_passes_when_every_stage_passes(tmp_path: Path) -> None:
    proc, summary, out = _fake_run(tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "**PASS: every required stage passed" in summary and "device: Fake GPU" in summary
    status = _status(summary)
    assert set(STAGES) <= set(status) and set(status.values()) == {"ok"}
    assert (out / "cuda-tests.xml").is_file() and (out / "table.md").read_text() == "table\n"
    build = (out / "build.log").read_text()  # the build is for this GPU's architecture only
    assert "-m pip install --no-build-isolation --no-deps -v -e . (FOCALSAM_CUDA_ARCHS=90-real)" in build


def test_a_failed_hard_stage_stops_the_run(tmp_path: Path) -> None:
    proc, summary, out = _fake_run(tmp_path, FAKE_FAIL="-m pip install")
    assert proc.returncode == 1
    status = _status(summary)
    assert status["env"] == "ok" and status["build"] == "FAILED (exit 3)"
    assert all(status[s] == "not run (build failed)" for s in STAGES[2:])
    assert "**FAIL: 1 stage(s) failed, 20 not run after a failed hard stage" in summary
    assert not (out / "impls.log").exists()
    assert "fake failure: -m pip install" in proc.stdout  # the failing log's tail is shown


def test_a_skipped_gpu_test_fails_its_stage_and_the_run_goes_on(tmp_path: Path) -> None:
    proc, summary, out = _fake_run(tmp_path, FAKE_SKIP="cuda-tests")
    assert proc.returncode == 1
    status = _status(summary)
    assert status["cuda-tests"] == "FAILED (exit 1)"
    assert status["parity"] == "ok" and status["table"] == "ok"
    assert "skipped (a skipped GPU test is a failure)" in (out / "cuda-tests.log").read_text()


def test_optional_stages_wait_for_time_and_do_not_fail_the_run(tmp_path: Path) -> None:
    proc, summary, _ = _fake_run(tmp_path, FOCALSAM_GPU_CHECK_BUDGET_S="80")
    assert proc.returncode == 0, proc.stdout
    status = _status(summary)
    assert status["step-resnet32-cifar10lt"] == "not run (time budget)"
    assert status["table"] == "ok" and status["bench-optimizer"] == "ok"


# ----------------------------------------------------------------------------- scripts refuse without CUDA
def test_the_scripts_are_the_expected_ones() -> None:
    assert GPU_SCRIPTS == [
        "big_tensor",
        "env_check",
        "focal_edges",
        "impls_check",
        "sanitize_ops",
        "streams_graphs",
    ]


@pytest.mark.parametrize("name", GPU_SCRIPTS)
def test_every_gpu_script_refuses_to_run_without_cuda(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module(f"benchmarks.gpu.{name}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        module.main(["--out", str(tmp_path / "r.json")])
    assert exc.value.code == EXIT_NO_GPU
    assert f"benchmarks/gpu/{name}.py: needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_a_gpu_script_run_as_a_module_exits_2_without_cuda() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu.focal_edges"],
        cwd=REPO,
        env=NO_GPU_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_NO_GPU
    assert "needs a CUDA GPU, but torch.cuda.is_available() is False" in proc.stderr


ENVIRONMENTAL = (
    "RuntimeError",
    "AcceleratorError",
    "ImportError",
    "ModuleNotFoundError",
    "AssertionError",
    "ImplUnavailableError",
)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reports one 80 GiB sm_90 GPU (kernels launched on it still fail: there is none)."""
    props = SimpleNamespace(name="Fake GPU", major=9, minor=0, multi_processor_count=132)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=None: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=None: (70 * 2**30, 80 * 2**30))


@pytest.mark.parametrize(
    ("name", "checks"),
    [
        (
            "env_check",
            ["gpu", "triton compiled", "build switches", "nvcc", "Python.h", "build tools", "pytest"],
        ),
        (
            "impls_check",
            [
                "package from this checkout",
                "native modules",
                "cuda and triton available",
                "triton compiled",
                "auto picks cuda",
                "kernels run",
            ],
        ),
    ],
)
def test_setup_scripts_run_every_check_without_programming_errors(
    name: str, checks: list[str], fake_gpu: None, tmp_path: Path
) -> None:
    """With a faked GPU, the hard set-up stages run all their checks; whatever fails here fails for
    a reason of this machine (no driver, interpreter mode), never a bug of the script."""
    module = importlib.import_module(f"benchmarks.gpu.{name}")
    module.main(["--out", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert [c["name"] for c in report["checks"]] == checks
    bugs = [c for c in report["checks"] if not c["ok"] and not c["detail"].startswith(ENVIRONMENTAL)]
    assert not bugs
    assert report["checks"][0]["ok"]  # the faked GPU / this checkout


def test_streams_graphs_runs_every_check_without_programming_errors(fake_gpu: None, tmp_path: Path) -> None:
    assert streams_graphs.main(["--out", str(tmp_path / "r.json")]) == 1  # no driver here
    checks = json.loads((tmp_path / "r.json").read_text())["checks"]
    impls = [n for n in kernels.available_impls("cuda") if n != "reference"]
    assert len(checks) == len(impls) + 1 + 2 * len(streams_graphs.METHODS) + 2 * 2
    assert all(c["detail"].startswith(ENVIRONMENTAL) for c in checks if not c["ok"])


def test_peak_bandwidth_from_the_memory_clock() -> None:
    """H100 SXM: 2,619 MHz HBM3 on a 5,120-bit bus = 3,352 GB/s; unknown clock: None."""
    from benchmarks.gpu.env_check import peak_bandwidth_gbs

    assert peak_bandwidth_gbs(SimpleNamespace(memory_clock_rate=2_619_000, memory_bus_width=5120)) == 3352.3
    assert peak_bandwidth_gbs(SimpleNamespace()) is None


def test_report_records_failures_and_writes_json(tmp_path: Path) -> None:
    report = Report("t")
    assert report.finish(None) == 1  # no check ran: not a pass
    assert report.check("fine", lambda: "detail")
    assert not report.check("broken", lambda: 1 / 0)
    assert report.finish(tmp_path / "r.json") == 1
    text = (tmp_path / "r.json").read_text()
    assert '"ok": false' in text and "ZeroDivisionError" in text


# ----------------------------------------------------------------------------- junit verdict
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4">
<testcase classname="t" name="ok"/>
<testcase classname="t" name="bad"><failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="t" name="boom"><error message="fixture error"/></testcase>
<testcase classname="t" name="gone"><skipped type="pytest.skip" message="needs a CUDA GPU"/></testcase>
</testsuite></testsuites>"""


def test_junit_summary_counts_failures_errors_and_skips(tmp_path: Path) -> None:
    path = tmp_path / "j.xml"
    path.write_text(JUNIT)
    summary = _junit.summarize(path)
    assert (summary.tests, summary.passed, len(summary.failed), len(summary.skipped)) == (4, 1, 2, 1)
    assert summary.skipped == ["t::gone: needs a CUDA GPU"]
    assert _junit.verdict(summary) == [
        "2 test(s) failed or errored",
        "1 test(s) skipped (a skipped GPU test is a failure)",
    ]
    assert _junit.main([str(path)]) == 1


@pytest.mark.parametrize(
    ("cases", "flags", "code"),
    [
        ('<testcase classname="t" name="a"/>', [], 0),
        (
            '<testcase classname="t" name="a"/>'
            '<testcase classname="t" name="s"><skipped message="m"/></testcase>',
            [],
            1,
        ),
        ('<testcase classname="t" name="s"><skipped message="m"/></testcase>', ["--allow-skips"], 0),
        ("", [], 1),
        ("", ["--allow-empty"], 0),
    ],
)
def test_junit_main_exit_codes(tmp_path: Path, cases: str, flags: list[str], code: int) -> None:
    path = tmp_path / "j.xml"
    path.write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
    assert _junit.main([str(path), *flags]) == code


def test_junit_missing_or_broken_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _junit.main([str(tmp_path / "none.xml")]) == 1
    (tmp_path / "cut.xml").write_text("<testsuites><testsuite>")
    assert _junit.main([str(tmp_path / "cut.xml")]) == 1
    assert "pytest did not finish" in capsys.readouterr().out


def test_junit_reads_real_pytest_output(tmp_path: Path) -> None:
    """pytest's own junit XML: a GPU-style skip makes the stage fail."""
    test_file = tmp_path / "test_x.py"
    test_file.write_text(
        textwrap.dedent("""
        import pytest
        def test_ok():
            assert True
        @pytest.mark.skip(reason="needs a CUDA GPU")
        def test_gpu():
            pass
    """)
    )
    xml = tmp_path / "x.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            str(test_file),
            f"--junitxml={xml}",
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    summary = _junit.summarize(xml)
    assert (summary.tests, summary.passed, len(summary.skipped)) == (2, 1, 1)
    assert "needs a CUDA GPU" in summary.skipped[0]
    assert _junit.main([str(xml)]) == 1 and _junit.main([str(xml), "--allow-skips"]) == 0


# ----------------------------------------------------------------------------- chunked fp64 references
def test_spans_cover_the_range() -> None:
    assert [(s.start, s.stop) for s in _reference64.spans(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert list(_reference64.spans(0, 4)) == []


@pytest.mark.parametrize("adaptive", [False, True])
def test_sq_norm64_is_the_float64_sum(adaptive: bool) -> None:
    g, p = torch.randn(10_007), torch.randn(10_007)
    want = float(((p.double().abs() if adaptive else 1) * g.double()).square().sum())
    got = _reference64.sq_norm64(g, p if adaptive else None, chunk=1000)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("impl", sorted(_cpu_ops()))
@pytest.mark.parametrize("adaptive", [False, True])
def test_check_perturb_accepts_every_cpu_impl_and_catches_a_wrong_element(impl: str, adaptive: bool) -> None:
    ops = _cpu_ops()[impl]
    p, g = torch.randn(10_007), torch.randn(10_007)
    norm = float(ops.sq_norm([g]).sqrt())
    out = torch.empty_like(p)
    ops.perturb([p], [g], [out], norm, 0.05, adaptive=adaptive)
    detail = _reference64.check_perturb(p, g, out, norm, 0.05, adaptive, chunk=1000)
    assert "max error" in detail
    out[7777] += 1e-3
    with pytest.raises(AssertionError, match=r"element 7777"):
        _reference64.check_perturb(p, g, out, norm, 0.05, adaptive, chunk=1000)


@pytest.mark.parametrize("impl", sorted(_cpu_ops()))
def test_check_sgd_accepts_every_cpu_impl_and_catches_a_wrong_element(impl: str) -> None:
    p0, g1, g2, b0 = (torch.randn(10_007) for _ in range(4))
    p, b = p0.clone(), b0.clone()
    _cpu_ops()[impl].sgd_step(
        [p],
        [g1],
        [g2],
        [b],
        lr=0.1,
        momentum=0.9,
        dampening=0.0,
        weight_decay=1e-4,
        nesterov=False,
        maximize=False,
        first_step=False,
    )
    _reference64.check_sgd(p0, g1, g2, b0, p, b, 0.1, 0.9, 1e-4, chunk=1000)
    b[5] = float("nan")
    with pytest.raises(AssertionError, match=r"momentum buffers: max error inf .*element 5:"):
        _reference64.check_sgd(p0, g1, g2, b0, p, b, 0.1, 0.9, 1e-4, chunk=1000)


def test_big_tensor_checks_pass_on_the_cpu_impls() -> None:
    report = Report("big_tensor")
    big_tensor.run(report, ["reference", "cpp"], 100_003, CPU)
    assert report.ok, report.checks
    assert len(report.checks) == 8


def test_big_tensor_sentinels_and_memory() -> None:
    n = big_tensor.N
    assert big_tensor.sentinels(n) == [n // 2, 2**31 - 1, 2**31, n - 1]
    assert big_tensor.sentinels(10) == [5, 9]
    assert big_tensor.needed_bytes() == 7 * 4 * (2**31 + 7) + 4 * 2**30  # 64 GiB: fits an 80 GB GPU


# ----------------------------------------------------------------------------- focal edges, sanitizer calls
@pytest.mark.parametrize("impl", sorted(_cpu_ops(with_focal_loss=True)))
def test_focal_edge_cases_pass_on_the_cpu_impls(impl: str) -> None:
    for case in focal_edges.build_cases(CPU, big_rows=2_000):
        focal_edges.check_case(_cpu_ops(True)[impl], kernels.reference, case)


def test_focal_edge_check_catches_a_kernel_that_ignores_grad_scale() -> None:
    class NoScale:
        @staticmethod
        def focal_loss(*args, grad_scale=None, **kwargs):
            return kernels.reference.focal_loss(*args, **kwargs)

    cases = [c for c in focal_edges.build_cases(CPU, big_rows=100) if c.grad_scale is not None]
    assert cases
    for case in cases:
        with pytest.raises(AssertionError, match="grad_a"):
            focal_edges.check_case(NoScale, kernels.reference, case)


def test_sanitizer_calls_pass_on_the_cpp_ops() -> None:
    """Every call of the sanitizer script, with the C++ ops (the multi-chunk tensor made smaller)."""
    ops = _cpu_ops()
    if "cpp" not in ops:
        pytest.skip("the C++ module is not built")
    report = Report("sanitize_ops")
    sanitize_ops.run_all(report, ops["cpp"], kernels.reference, CPU, big=3 * 65_536 + 5)
    assert report.ok, [c for c in report.checks if not c["ok"]]
    assert len(report.checks) == 3 * len(sanitize_ops.input_sets()) + len(sanitize_ops.focal_cases())


@pytest.mark.parametrize("method", streams_graphs.METHODS)
def test_stream_and_graph_steps_are_set_up_right(method: str) -> None:
    """The optimizers and closures of the sync and graph checks take a step (CPU, reference)."""
    model = streams_graphs.small_model(CPU)
    opt = streams_graphs.make_optimizer(method, model, "reference")
    assert not opt.check_inputs
    before = [p.detach().clone() for p in model.parameters()]
    x, y = streams_graphs.batch(0, CPU)
    opt.step(streams_graphs.closure(method, model, x, y), targets=y)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
