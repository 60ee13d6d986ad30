#!/usr/bin/env bash
# GPU check in one command: build, GPU tests, kernel benchmarks and the per-step table at the
# paper's sizes, written to DIR (JSON + table.md + logs), within a wall-clock budget.
#
#   bash benchmarks/gpu_check.sh DIR
#
# Environment: PYTHON (default .venv/bin/python if present, else python3),
# FOCALSAM_GPU_CHECK_BUDGET_S (default 450: the whole run stays under 8 minutes),
# FOCALSAM_CUDA_ARCHS (default: this GPU's compute capability only, for a fast nvcc build),
# FOCALSAM_GPU_CHECK_SKIP_BUILD=1 (use the installed package as is).
# On a machine without a usable GPU it prints "no GPU" and exits 0.  Otherwise it exits 0 when
# every stage finished, 1 when one failed or ran out of time (the table still covers what ran).
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: bash benchmarks/gpu_check.sh DIR" >&2
    exit 2
fi
OUT=$1
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
else
    PY=python3
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if ! GPU=$("$PY" -c "import torch, sys
if not torch.cuda.is_available():
    sys.exit(1)
print(torch.cuda.get_device_name(0))" 2>"$OUT/gpu_probe.log"); then
    msg="gpu_check: no GPU (torch.cuda.is_available() is False for $PY); nothing was built or run. Run this on a CUDA machine."
    echo "$msg" | tee "$OUT/summary.txt"
    exit 0
fi

START=$(date +%s)
BUDGET=${FOCALSAM_GPU_CHECK_BUDGET_S:-450}
STATUS=0
: >"$OUT/summary.txt"

note() { echo "gpu_check: $*" | tee -a "$OUT/summary.txt"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }
# run_stage NAME CAP_S CMD...: run CMD with a timeout of min(CAP_S, time left - 25 s reserve)
run_stage() {
    local name=$1 cap=$2 limit rc t0
    shift 2
    limit=$(($(left) - 25))
    [ "$limit" -gt "$cap" ] && limit=$cap
    if [ "$limit" -lt 20 ]; then
        note "$name: SKIPPED (out of time budget)"
        STATUS=1
        return
    fi
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        note "$name: ok ($(($(date +%s) - t0)) s)"
    else
        [ $rc -eq 124 ] && why="timed out after $limit s" || why="exit $rc"
        note "$name: FAILED ($why, $(($(date +%s) - t0)) s; see $name.log)"
        STATUS=1
    fi
}

note "device: $GPU; python: $PY; budget ${BUDGET} s"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)
try:
    import triton; print('triton', triton.__version__)
except ImportError:
    print('triton not installed')" 2>&1 | tee -a "$OUT/summary.txt"

if [ "${FOCALSAM_GPU_CHECK_SKIP_BUILD:-0}" != 1 ]; then
    ARCH=$("$PY" -c "import torch; print('%d%d' % torch.cuda.get_device_capability(0))")
    export FOCALSAM_CUDA_ARCHS=${FOCALSAM_CUDA_ARCHS:-$ARCH}
    run_stage build 200 "$PY" -m pip install --no-build-isolation --no-deps -e .
fi
"$PY" -c "from focalsam_fast import kernels
print('impls on cuda:', kernels.available_impls('cuda'))
for n in kernels.IMPLS:
    print(' ', n, kernels.availability(n, 'cuda'))" 2>&1 | tee -a "$OUT/summary.txt"

PYTEST=("$PY" -m pytest -q -p no:cacheprovider)
BENCH=(--benchmark-enable --benchmark-disable-gc)
export FOCALSAM_BENCH_SIZE=paper

run_stage gpu_tests 90 "${PYTEST[@]}" -m gpu tests --junitxml="$OUT/gpu_tests.xml"
run_stage optimizer-side 50 "${PYTEST[@]}" benchmarks/test_bench_optimizer.py \
    "${BENCH[@]}" --benchmark-json="$OUT/optimizer-side.json"
run_stage launch-count 40 "${PYTEST[@]}" benchmarks/test_bench_launches.py \
    "${BENCH[@]}" --benchmark-json="$OUT/launch-count.json"
run_stage step-interleaved 40 "${PYTEST[@]}" benchmarks/test_bench_step.py -k interleaved \
    "${BENCH[@]}" --benchmark-json="$OUT/step-interleaved.json"
for key in resnet32-cifar10lt resnet32-cifar100lt resnet50-imagenetlt clip-lift-imagenetlt \
           clip-fft-imagenetlt resnet50-inat2018; do
    run_stage "step-$key" 90 "${PYTEST[@]}" benchmarks/test_bench_step.py -k "test_step and $key" \
        "${BENCH[@]}" --benchmark-json="$OUT/step-$key.json"
done

shopt -s nullglob
JSONS=("$OUT"/*.json)
if [ ${#JSONS[@]} -gt 0 ] && "$PY" benchmarks/render_table.py "${JSONS[@]}" -o "$OUT/table.md"; then
    cat "$OUT/table.md"
else
    note "no benchmark JSON to render"
    STATUS=1
fi
note "total $(($(date +%s) - START)) s; results in $OUT"
exit $STATUS
