"""The host/device headers of csrc/common, compiled on their own.

* With the host C++ compiler: a small program folds values through the shared online
  log-sum-exp (lse_element / lse_merge / lse_value) in several merge orders and prints the
  results, which must equal ``torch.logsumexp`` (NaN, +-inf, all -inf included).
* With nvcc: one kernel calls every shared per-element function (log-sum-exp merge, focal
  weights, perturbation, SGD update, found_inf), so the headers stay valid device code.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

COMMON = Path(__file__).resolve().parents[2] / "csrc" / "common"

HOST_PROGRAM = r"""
#include <cstdio>
#include <vector>
#include "logsumexp.h"
using namespace focalsam;

// logsumexp of x: one state per element, merged left to right, as `lanes` strided lanes folded
// from the empty state and then combined in a tree, or right to left.
template <class A, class S>
A fold(const std::vector<A>& x, int lanes, bool reverse) {
  std::vector<MaxSum<A, S>> lane(lanes, lse_identity<A, S>());
  const int n = static_cast<int>(x.size());
  for (int i = 0; i < n; ++i) {
    const int j = reverse ? n - 1 - i : i;
    lane[j % lanes] = lse_merge(lane[j % lanes], lse_element<A, S>(x[j]));
  }
  for (int w = 1; w < lanes; w *= 2) {
    for (int l = 0; l + w < lanes; l += 2 * w) lane[l] = lse_merge(lane[l], lane[l + w]);
  }
  return lse_value(lane[0]);
}

int main() {
  int rows = 0, cols = 0;
  if (std::scanf("%d %d", &rows, &cols) != 2) return 1;
  for (int r = 0; r < rows; ++r) {
    std::vector<double> x(cols);
    std::vector<float> xf(cols);
    for (int c = 0; c < cols; ++c) {
      if (std::scanf("%lf", &x[c]) != 1) return 1;
      xf[c] = static_cast<float>(x[c]);
    }
    for (int lanes : {1, 4, 8}) {
      for (bool reverse : {false, true}) {
        std::printf("%.17g %.9g %.9g ", fold<double, double>(x, lanes, reverse),
                    fold<float, float>(xf, lanes, reverse), fold<float, double>(xf, lanes, reverse));
      }
    }
    std::printf("\n");
  }
  return 0;
}
"""

DEVICE_PROGRAM = r"""
#include "dtypes.h"
#include "focal.h"
#include "formulas.h"
#include "logsumexp.h"
using namespace focalsam;

template <class A>
__global__ void every_shared_function(const A* x, A* out, const float* found_inf, SgdCoef<A> coef) {
  MaxSum<A, A> s = lse_identity<A, A>();
  s = lse_merge(s, lse_element<A, A>(focal_adjusted(x[0], x[1], x[2], x[3], true)));
  const FocalRow<A> row = focal_row(s, 0, 1, x, x, A(1), A(2));
  A ga, gb;
  focal_grad(row, focal_prob(row, x[0]), true, x[1], ga, gb);
  const A scale = perturb_scale(x[0], x[1], x[2]);
  A p = perturb_keeps_params(x[0]) ? x[1] : perturb_element(x[1], x[2], scale, true);
  A buf = x[3];
  if (!step_skipped(found_inf)) sgd_element(p, x[2], buf, coef, coef.lr.get());
  out[0] = ga + gb + p + buf + focal_row_loss(row, x[0]) + lse_value(s);
  out[1] = load(store<A>(out[0]));
}

template __global__ void every_shared_function<float>(const float*, float*, const float*, SgdCoef<float>);
template __global__ void every_shared_function<double>(const double*, double*, const float*, SgdCoef<double>);
"""


def _compiler(names: tuple[str, ...]) -> str:
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found is None:
        pytest.skip(f"none of {', '.join(names)} on PATH")
    if not COMMON.is_dir():
        pytest.skip(f"{COMMON} not found (tests run from a source checkout)")
    return found


@pytest.fixture(scope="module")
def lse_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cxx = _compiler(("c++", "g++", "clang++"))
    work = tmp_path_factory.mktemp("lse")
    (work / "lse.cpp").write_text(HOST_PROGRAM)
    exe = work / "lse"
    subprocess.run(
        [
            cxx,
            "-std=c++17",
            "-O2",
            "-ffp-contract=off",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{COMMON}",
            str(work / "lse.cpp"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    return exe


def _rows() -> torch.Tensor:
    """Random rows, then rows with NaN / +inf / -inf at the start, middle and end."""
    inf, nan = float("inf"), float("nan")
    base = 3 * torch.randn(40, 13, dtype=torch.float64)
    special = []
    for value in (nan, inf, -inf):
        for col in (0, 6, 12):
            row = 3 * torch.randn(13, dtype=torch.float64)
            row[col] = value
            special.append(row)
    two_inf = 3 * torch.randn(3, 13, dtype=torch.float64)
    two_inf[0, [0, 1]] = inf
    two_inf[1, [0, 12]] = inf
    two_inf[2, [5, 7]] = inf
    all_neginf = torch.full((1, 13), -inf, dtype=torch.float64)
    mixed = torch.tensor([[inf, -inf] + [1.0] * 11, [nan, inf] + [-inf] * 11], dtype=torch.float64)
    return torch.cat([base, torch.stack(special), two_inf, all_neginf, mixed])


def test_online_merge_is_torch_logsumexp(seed: int, lse_program: Path) -> None:
    rows = _rows()
    text = f"{rows.shape[0]} {rows.shape[1]}\n" + "\n".join(" ".join(repr(float(v)) for v in r) for r in rows)
    out = subprocess.run([str(lse_program)], input=text, capture_output=True, text=True, check=True).stdout
    got = torch.tensor([[float(v) for v in line.split()] for line in out.splitlines()], dtype=torch.float64)
    assert got.shape == (rows.shape[0], 18)
    ref64 = torch.logsumexp(rows, dim=1)
    ref32 = torch.logsumexp(rows.float(), dim=1).double()
    for k in range(6):  # (lanes, order) combinations
        torch.testing.assert_close(got[:, 3 * k], ref64, rtol=1e-14, atol=1e-14, equal_nan=True)
        torch.testing.assert_close(got[:, 3 * k + 1], ref32, rtol=1e-6, atol=1e-6, equal_nan=True)
        torch.testing.assert_close(got[:, 3 * k + 2], ref32, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert ref64.isnan().sum() >= 4 and ref64.isinf().sum() >= 4  # the special rows are there


def test_headers_compile_as_device_code(tmp_path: Path) -> None:
    nvcc = _compiler(("nvcc",))
    (tmp_path / "every.cu").write_text(DEVICE_PROGRAM)
    subprocess.run(
        [
            nvcc,
            "-std=c++17",
            "--expt-relaxed-constexpr",
            "--fmad=false",
            "-arch=sm_90",
            "-Werror",
            "all-warnings",
            f"-I{COMMON}",
            "-c",
            str(tmp_path / "every.cu"),
            "-o",
            str(tmp_path / "every.o"),
        ],
        check=True,
    )
