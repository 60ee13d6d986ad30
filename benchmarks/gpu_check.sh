#!/usr/bin/env bash
# The GPU half of the checks in one command (docs/gpu.md): environment and build, CUDA and Triton
# kernel tests, compute-sanitizer, whole-optimizer parity and focal-loss edge cases on CUDA, a
# 2^31 + 7 element tensor, streams / host syncs / CUDA graphs, then the benchmarks.  Everything
# goes to OUT_DIR: summary.md (verdict and one row per stage), <stage>.log, junit XML of every
# pytest stage, JSON reports of the scripts under benchmarks/gpu/, benchmark JSON and table.md.
#
#   bash benchmarks/gpu_check.sh OUT_DIR      run it (a CUDA GPU is required)
#   bash benchmarks/gpu_check.sh --dry-run    list the stages, commands and caps; check that the caps
#                                             fit the budget, that every referenced file exists and
#                                             that every script under benchmarks/gpu/ compiles
#
# Exit status: 0 only when every required stage passed; 1 when any failed, timed out or could not
# run, including on a machine without a GPU; 2 on bad usage.  A skipped test in a GPU test stage
# is a failure.  Stages run in order; each one gets its cap plus whatever earlier stages left
# unused, never so much that a later required stage loses its cap.  The environment, build and
# impls stages are hard: when one fails the run stops there.  The per-setting step timings are
# optional: they run while time is left and do not fail the run when the time runs out.
#
# Environment: PYTHON (default python3: the machine's Python; the build is an editable install
# into it), FOCALSAM_GPU_CHECK_BUDGET_S (default 480), FOCALSAM_CUDA_ARCHS (default: this GPU's
# compute capability only, e.g. 90-real), COMPUTE_SANITIZER (path of compute-sanitizer).
set -uo pipefail

usage() {
    echo "usage: bash benchmarks/gpu_check.sh OUT_DIR | --dry-run" >&2
    exit 2
}

DRY=0
case "${1:-}" in
    --dry-run) DRY=1; OUT=OUT_DIR; [ $# -eq 1 ] || usage ;;
    "" | -*) usage ;;
    *) OUT=$1; [ $# -eq 1 ] || usage ;;
esac
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
BUDGET=${FOCALSAM_GPU_CHECK_BUDGET_S:-480}
RESERVE=30     # seconds kept for start-up, stage hand-overs and the summary
MIN_OPTIONAL=45  # an optional stage starts only with at least this much time for it
START=$(date +%s)
export PYTHONUNBUFFERED=1
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}  # deterministic cuBLAS (parity stages)

# ------------------------------------------------------------------------------------------ setup
NOTES=()
if [ -n "${TRITON_INTERPRET+set}" ]; then
    NOTES+=("TRITON_INTERPRET=${TRITON_INTERPRET} was set; unset for this run (Triton must compile for the GPU)")
    unset TRITON_INTERPRET
fi
if [ -z "${CUDA_HOME:-}${CUDA_PATH:-}" ] && ! command -v nvcc >/dev/null 2>&1; then
    for home in /usr/local/cuda /usr/local/cuda-*; do
        if [ -x "$home/bin/nvcc" ]; then
            export CUDA_HOME=$home
            NOTES+=("nvcc not on PATH; CUDA_HOME=$home")
            break
        fi
    done
fi

# compute-sanitizer: $COMPUTE_SANITIZER, PATH, next to nvcc, the CUDA homes
SANITIZER=""
SANITIZER_LOOKED=()
find_sanitizer() {
    local nvcc dirs=() d
    if [ -n "${COMPUTE_SANITIZER:-}" ]; then
        SANITIZER_LOOKED+=("\$COMPUTE_SANITIZER=$COMPUTE_SANITIZER")
        [ -x "$COMPUTE_SANITIZER" ] && { SANITIZER=$COMPUTE_SANITIZER; return; }
    fi
    SANITIZER_LOOKED+=("PATH")
    SANITIZER=$(command -v compute-sanitizer 2>/dev/null) && return
    nvcc=$(command -v nvcc 2>/dev/null) && dirs+=("$(dirname "$nvcc")")
    for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda /usr/local/cuda-* /opt/cuda /opt/nvidia/cuda; do
        [ -n "$d" ] && [ -d "$d" ] && dirs+=("$d/bin" "$d/compute-sanitizer")
    done
    for d in "${dirs[@]}"; do
        SANITIZER_LOOKED+=("$d")
        [ -x "$d/compute-sanitizer" ] && { SANITIZER=$d/compute-sanitizer; return; }
    done
    SANITIZER=""
}
find_sanitizer

GPU=""
ARCH="<compute capability of GPU 0>"
if [ $DRY -eq 0 ]; then
    mkdir -p "$OUT" || exit 2
    OUT=$(cd "$OUT" && pwd)
    if ! PROBE=$("$PY" -c "import torch, sys
if not torch.cuda.is_available():
    sys.exit(1)
print('%d%d-real' % torch.cuda.get_device_capability(0), torch.cuda.get_device_name(0))" 2>"$OUT/gpu_probe.log"); then
        msg="gpu_check: FAILED: no CUDA GPU visible (torch.cuda.is_available() is False for $PY, or torch does not import: see $OUT/gpu_probe.log); nothing was built or run. Run this on a CUDA machine (bash benchmarks/gpu_check.sh --dry-run checks the script without one)."
        echo "$msg" | tee "$OUT/summary.md" >&2
        exit 1
    fi
    ARCH=${PROBE%% *}
    GPU=${PROBE#* }
fi
ARCHS=${FOCALSAM_CUDA_ARCHS:-$ARCH}
JOBS=$(nproc 2>/dev/null || echo 4)

# ------------------------------------------------------------------------------------------ stages
S_NAME=(); S_CAP=(); S_KIND=(); S_CMD=(); S_DESC=()
FILES=(setup.py pyproject.toml CMakeLists.txt benchmarks/render_table.py benchmarks/gpu/_junit.py
       benchmarks/gpu/_common.py)
q() { printf '%q' "$1"; }
QPY=$(q "$PY")
QOUT=$(q "$OUT")

# stage NAME CAP KIND DESCRIPTION COMMAND: KIND is hard (failure stops the run), required or optional
stage() {
    S_NAME+=("$1"); S_CAP+=("$2"); S_KIND+=("$3"); S_DESC+=("$4"); S_CMD+=("$5")
}
# script_stage NAME CAP KIND DESCRIPTION MODULE [PREFIX]: python -m benchmarks.gpu.MODULE --out OUT/NAME.json
script_stage() {
    FILES+=("benchmarks/gpu/$5.py")
    stage "$1" "$2" "$3" "$4" "${6:-}$QPY -m benchmarks.gpu.$5 --out $QOUT/$1.json"
}
# pytest_stage NAME CAP DESCRIPTION JUNIT_FLAGS SELECTION [PREFIX]: the tests marked gpu in SELECTION
# (shell words, expanded when the stage runs, after the shell code PREFIX), verbose; the junit XML
# decides (a skip fails unless JUNIT_FLAGS allow it)
pytest_stage() {
    stage "$1" "$2" required "$3" "${6:-}$QPY -m pytest -p no:cacheprovider -o addopts= --import-mode=importlib -v -rs -m gpu $5 --junitxml=$QOUT/$1.xml; r=\$?; [ \$r -eq 5 ] && r=0; $QPY -m benchmarks.gpu._junit $QOUT/$1.xml $4 || r=1; exit \$r"
}
# bench_stage NAME CAP KIND DESCRIPTION PYTEST_ARGS...: pytest-benchmark at the paper's sizes
bench_stage() {
    local name=$1 cap=$2 kind=$3 desc=$4
    shift 4
    FILES+=("$1")
    stage "$name" "$cap" "$kind" "$desc" "FOCALSAM_BENCH_SIZE=paper $QPY -m pytest -p no:cacheprovider -q -rs $* --benchmark-enable --benchmark-disable-gc --benchmark-json=$QOUT/$name.json --junitxml=$QOUT/$name.xml; r=\$?; $QPY -m benchmarks.gpu._junit $QOUT/$name.xml --allow-skips || r=1; exit \$r"
}

# sanitizer_stage NAME CAP TOOL DESCRIPTION: benchmarks/gpu/sanitize_ops.py under compute-sanitizer
# (every tensor its own cudaMalloc, so an access past a tensor's end is outside its allocation; CUDA
# API calls that return an error are not counted: torch probes the driver that way, and a failed
# launch of ours raises in the script)
sanitizer_stage() {
    if [ -n "$SANITIZER" ]; then
        script_stage "$1" "$2" required "$4" sanitize_ops \
            "PYTORCH_NO_CUDA_MEMORY_CACHING=1 $(q "$SANITIZER") --tool $3 --error-exitcode 86 --print-limit 50 --report-api-errors no "
    else
        FILES+=(benchmarks/gpu/sanitize_ops.py)
        stage "$1" "$2" required "$4" \
            "echo 'compute-sanitizer not found; looked in: ${SANITIZER_LOOKED[*]}' >&2; exit 1"
    fi
}

script_stage env 15 hard "GPU visible; TRITON_INTERPRET unset; nvcc, Python.h, cmake, pybind11, pytest, triton present" env_check
stage build 85 hard "editable build of _C_cpu and _C_cuda for this GPU's architecture only ($ARCHS)" \
    "FOCALSAM_CUDA_ARCHS=$(q "$ARCHS") FOCALSAM_BUILD_JOBS=$JOBS PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 $QPY -m pip install --no-build-isolation --no-deps -v -e ."
script_stage impls 15 hard "focalsam_fast._C_cuda imports; available_impls('cuda') has cuda and triton; Triton compiled; kernels run" impls_check
FILES+=(tests/kernels/test_cuda.py tests/kernels/test_triton.py tests/optim/test_optim_impl_parity.py)
pytest_stage cuda-tests 45 "CUDA kernels vs the reference (tests/kernels/test_cuda*.py)" "" \
    "tests/kernels/test_cuda*.py"
pytest_stage triton-tests 50 "Triton kernels compiled for the GPU vs the reference (tests/kernels/test_triton*.py)" "" \
    "tests/kernels/test_triton*.py"
# every other test file that marks tests gpu (found when the stage runs; none is an empty pass)
# shellcheck disable=SC2016  # $files expands when the stage runs
pytest_stage other-gpu-tests 10 "tests marked gpu in every other test file" --allow-empty '$files' \
    "files=\$(grep -rlE --include='test_*.py' 'mark\.gpu' tests | grep -vE '^tests/kernels/test_(cuda|triton)|^tests/optim/test_optim_impl_parity\.py' | sort); [ -n \"\$files\" ] || { echo 'no other test file marks tests gpu'; exit 0; }; "
sanitizer_stage memcheck 35 memcheck \
    "compute-sanitizer memcheck: every CUDA op on odd, misaligned, empty, multi-launch inputs"
sanitizer_stage racecheck 25 racecheck "compute-sanitizer racecheck (shared-memory races) on the same calls"
pytest_stage parity 35 "every optimizer x every CUDA impl vs impl='reference', fp32 and fp64, whole steps" "" \
    tests/optim/test_optim_impl_parity.py
script_stage focal-edges 15 required "focal_loss NaN / inf / fp16 |z| > 60 / 70,000 rows / bad labels vs the reference" focal_edges
script_stage big-tensor 25 required "2^31 + 7 elements through sq_norm, perturb, sgd_step (cuda, triton) vs chunked fp64" big_tensor
script_stage streams-graphs 20 required "ops on a side stream; sync-free steps; CUDA-graph replay == eager step" streams_graphs
bench_stage bench-optimizer 30 required "optimizer side per impl and interleaved; GB/s vs the memory probe" \
    benchmarks/test_bench_optimizer.py
bench_stage bench-launches 15 required "dispatched ops per step, reference vs fused" benchmarks/test_bench_launches.py
bench_stage bench-interleaved 20 required "ResNet-32 CIFAR-10-LT step, target paths interleaved" \
    benchmarks/test_bench_step.py -k interleaved
for key in resnet32-cifar10lt resnet32-cifar100lt resnet50-imagenetlt clip-lift-imagenetlt \
           clip-fft-imagenetlt resnet50-inat2018; do
    bench_stage "step-$key" 90 optional "per-step timings, $key (per-epoch table cells)" \
        benchmarks/test_bench_step.py -k "'test_step and $key'"
done
stage table 10 required "benchmark JSON rendered to table.md" \
    "shopt -s nullglob; set -- $QOUT/bench-*.json $QOUT/step-*.json; [ \$# -gt 0 ] || { echo 'no benchmark JSON' >&2; exit 1; }; $QPY benchmarks/render_table.py \"\$@\" -o $QOUT/table.md && cat $QOUT/table.md"

N=${#S_NAME[@]}
required_after() {  # sum of the caps of required/hard stages after index $1
    local i sum=0
    for ((i = $1 + 1; i < N; i++)); do
        [ "${S_KIND[$i]}" != optional ] && sum=$((sum + S_CAP[i]))
    done
    echo "$sum"
}
REQUIRED_SUM=$(required_after -1)
AVAILABLE=$((BUDGET - RESERVE))

# ------------------------------------------------------------------------------------------ dry run
if [ $DRY -eq 1 ]; then
    ok=0
    echo "gpu_check --dry-run: $N stages, budget $BUDGET s, reserve $RESERVE s, python $PY"
    for n in "${NOTES[@]}"; do echo "note: $n"; done
    for ((i = 0; i < N; i++)); do
        printf '%2d. %-26s cap %3d s  %-8s %s\n      $ %s\n' $((i + 1)) "${S_NAME[$i]}" "${S_CAP[$i]}" \
            "${S_KIND[$i]}" "${S_DESC[$i]}" "${S_CMD[$i]}"
    done
    if [ "$REQUIRED_SUM" -le "$AVAILABLE" ]; then
        echo "caps: required stages sum to $REQUIRED_SUM s <= $AVAILABLE s (budget $BUDGET - reserve $RESERVE): fit"
    else
        echo "caps: required stages sum to $REQUIRED_SUM s > $AVAILABLE s (budget $BUDGET - reserve $RESERVE): DO NOT FIT"
        ok=1
    fi
    echo "optional stages run only while at least $MIN_OPTIONAL s are left for them"
    if [ -n "$SANITIZER" ]; then
        echo "compute-sanitizer: $SANITIZER"
    else
        echo "compute-sanitizer: not found here (looked in: ${SANITIZER_LOOKED[*]}); the sanitizer stages would fail"
    fi
    missing=()
    mapfile -t uniq < <(printf '%s\n' "${FILES[@]}" | sort -u)
    for f in "${uniq[@]}"; do [ -e "$f" ] || missing+=("$f"); done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "files: all ${#uniq[@]} referenced files exist"
    else
        echo "files: MISSING ${missing[*]}"
        ok=1
    fi
    scripts=(benchmarks/gpu/*.py)
    if "$PY" -c "import sys
for f in sys.argv[1:]:
    with open(f) as src:
        compile(src.read(), f, 'exec')" "${scripts[@]}"; then
        echo "compile: all ${#scripts[@]} Python files under benchmarks/gpu/ compile"
    else
        echo "compile: FAILED"
        ok=1
    fi
    [ $ok -eq 0 ] && echo "dry-run: ok" || echo "dry-run: FAILED"
    exit $ok
fi

# ------------------------------------------------------------------------------------------ run
S_STATUS=(); S_SECS=(); S_DETAIL=()
for ((i = 0; i < N; i++)); do S_STATUS+=("pending"); S_SECS+=(""); S_DETAIL+=(""); done
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain 2>/dev/null)" ] && COMMIT="$COMMIT+dirty"
FAILED=0

write_summary() {  # $1: verdict line
    {
        echo "# gpu_check summary"
        echo
        echo "**$1**"
        echo
        echo "- device: $GPU; python: $PY; commit: $COMMIT; CUDA archs built: $ARCHS"
        echo "- started $(date -u -d "@$START" '+%Y-%m-%d %H:%M:%S UTC'); budget $BUDGET s; elapsed $(($(date +%s) - START)) s"
        grep -m 1 '^\[ok\] gpu ' "$OUT/env.log" 2>/dev/null | sed 's/^\[ok\] gpu ([^)]*): /- GPU: /'
        for n in "${NOTES[@]}"; do echo "- note: $n"; done
        echo
        echo "| # | stage | status | time | cap | what it checks | last line of the log |"
        echo "|---|---|---|---|---|---|---|"
        for ((j = 0; j < N; j++)); do
            echo "| $((j + 1)) | ${S_NAME[$j]} | ${S_STATUS[$j]} | ${S_SECS[$j]} | ${S_CAP[$j]} s | ${S_DESC[$j]//|/\\|} | ${S_DETAIL[$j]//|/\\|} |"
        done
        echo
        echo "Logs: <stage>.log; junit: <stage>.xml; script reports: <stage>.json; benchmarks: bench-*.json, step-*.json, table.md."
    } >"$OUT/summary.md"
}

say() { echo "gpu_check: $*"; }
for n in "${NOTES[@]}"; do say "note: $n"; done
say "device $GPU; python $PY; commit $COMMIT; budget $BUDGET s; results in $OUT"
write_summary "RUNNING"
STOP=""
for ((i = 0; i < N; i++)); do
    name=${S_NAME[$i]} kind=${S_KIND[$i]}
    if [ -n "$STOP" ]; then
        S_STATUS[i]="not run ($STOP failed)"
        [ "$kind" != optional ] && FAILED=1
        continue
    fi
    left=$((BUDGET - RESERVE - ($(date +%s) - START) - $(required_after "$i")))
    limit=${S_CAP[$i]}
    if [ "$kind" = optional ]; then
        [ "$limit" -gt "$left" ] && limit=$left
        if [ "$limit" -lt "$MIN_OPTIONAL" ]; then
            S_STATUS[i]="not run (time budget)"
            say "$name: not run (only $left s left for optional stages)"
            continue
        fi
    elif [ "$left" -gt "$limit" ]; then
        limit=$left  # time left unused by earlier stages
    fi
    if [ "$limit" -lt 5 ]; then
        S_STATUS[i]="FAILED (no time left)"
        FAILED=1
        say "$name: FAILED: no time left"
        continue
    fi
    say "$name: running (limit $limit s) ..."
    t0=$(date +%s)
    timeout --kill-after=5 "$limit" bash -c "${S_CMD[$i]}" >"$OUT/$name.log" 2>&1
    rc=$?
    S_SECS[i]="$(($(date +%s) - t0)) s"
    S_DETAIL[i]=$(grep -v '^[[:space:]]*$' "$OUT/$name.log" | tail -n 1 | cut -c1-200)
    if [ $rc -eq 0 ]; then
        S_STATUS[i]="ok"
        [ $(($(date +%s) - t0)) -gt "${S_CAP[$i]}" ] && S_STATUS[i]="ok (over its cap: used earlier stages' spare time)"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        if [ "$kind" = optional ]; then
            S_STATUS[i]="incomplete (time budget, $limit s)"
        else
            S_STATUS[i]="FAILED (timed out after $limit s)"
            FAILED=1
        fi
    else
        S_STATUS[i]="FAILED (exit $rc)"
        FAILED=1
    fi
    say "$name: ${S_STATUS[$i]} in ${S_SECS[$i]}"
    if [ "${S_STATUS[$i]#ok}" = "${S_STATUS[$i]}" ]; then
        tail -n 15 "$OUT/$name.log" | sed 's/^/    | /'
        [ "$kind" = hard ] && STOP=$name
    fi
    write_summary "RUNNING"
done

total=$(($(date +%s) - START))
if [ $FAILED -eq 0 ]; then
    verdict="PASS: every required stage passed ($total s)"
else
    n_failed=$(printf '%s\n' "${S_STATUS[@]}" | grep -c FAILED)
    n_stopped=$(printf '%s\n' "${S_STATUS[@]}" | grep -c 'not run (.* failed)')
    verdict="FAIL: $n_failed stage(s) failed, $n_stopped not run after a failed hard stage ($total s)"
fi
write_summary "$verdict"
say "$verdict; summary: $OUT/summary.md"
exit $FAILED
