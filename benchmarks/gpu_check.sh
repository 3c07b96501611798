#!/usr/bin/env bash
# The GPU check of issue 19, in one call of a few minutes on a machine without network.
#
# Prepare here (once; the folder is git-ignored and travels with the call; the real CMS
# files the tests read are part of the tree, ~10 MiB):
#   benchmarks/gpu_wheels.sh        # .whl/: wheels the image lacks (~42 MiB)
# Run there, from the repository root. With this workplace's device tool, from the checkout
# the session started in (the one whose tree travels), the folder prepared in it:
#   run(command="benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=560)
# (~1-2 min machine start + at most ~7.5 min of stages: fits a 15-minute device budget once;
# give the machine back right after).
# Dry run anywhere (every stage tiny, CPU when no GPU is visible):
#   GPU_CHECK_TINY=1 OUT=/tmp/gpu-dry benchmarks/gpu_check.sh
#
# Stages, each under its own time limit (typically ~5 minutes in all; at most 8):
#   setup     install .whl/ into /tmp/site, record the machine (nvidia-smi, versions)
#   pytest    the scorer/loop/trainer/model/runtime test files (their gpu tests included),
#             then every other `gpu`-marked test
#   pretrain  benchmarks/bench_pretrain.py: small, base, tiny; baseline / grouped / prefetch /
#             loader-fed (in-process and 4 workers, a 1M-event store of real events) /
#             compile (small), ratios to the baseline of the same run, useful-FLOP MFU
#   score     benchmarks/bench_score.py, small, fp32 (the default) and bf16
#   profile   benchmarks/profile_pretrain.py, small: top kernels and time shares
# Results land in $OUT (at most 8 files): gpu_check.log, pytest.txt, bench_pretrain.json,
# bench_score.json, bench_score_bf16.json, profile_pretrain.md and RESULTS.md (a summary
# made by benchmarks/gpu_report.py, to commit with the date and the device name).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
TINY=${GPU_CHECK_TINY:-0}
PY=${PY:-python3}
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
T_START=$(date +%s)
STATUS=()

stage() {  # stage NAME LIMIT_S COMMAND...
  local name=$1 limit=$2 t0 rc
  shift 2
  echo "== $name (limit ${limit} s): $*"
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc after $(($(date +%s) - t0)) s"
  STATUS+=("$name|$rc|$(($(date +%s) - t0))")
}

# -- setup ---------------------------------------------------------------------------
export PYTHONPATH=$ROOT
# the wheels are CPython 3.12 (the GPU image's python); a dry run elsewhere uses its own env
if compgen -G ".whl/*.whl" >/dev/null && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$ROOT
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
{
  date -u '+%Y-%m-%d %H:%M UTC'
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv 2>&1 || echo "no nvidia-smi"
  "$PY" -c 'import sys, torch, numpy; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "numpy", numpy.__version__, "gpus", torch.cuda.device_count())'
  nproc
} | tee "$OUT/env.txt"

if [ "$TINY" = 1 ]; then
  TEST_FILES=(tests/test_runtime.py)
  SIZES=tiny; COMPILE=""; STORE=20000; WORKERS=2; STEPS=(--steps 2 --warmup 1 --batch-size 64)
  SCORE_SIZE=tiny; PROFILE=(--size tiny --steps 2 --batch-size 64)
  L_TEST=120; L_PRE=240; L_SCORE=120; L_PROF=120
else
  TEST_FILES=(tests/test_runtime.py tests/model/test_encoder.py tests/score/test_scorer.py
              tests/train/test_loop.py tests/finetune/test_trainer.py)
  SIZES=small,base,tiny; COMPILE=small; STORE=1000000; WORKERS=4; STEPS=(--steps 12 --warmup 3)
  SCORE_SIZE=small; PROFILE=(--size small --steps 10)
  L_TEST=150; L_PRE=180; L_SCORE=45; L_PROF=45
fi
DEVICE=${GPU_CHECK_DEVICE:-auto}

# -- tests -----------------------------------------------------------------------------
# -W: deprecations raised by the image's own (newer) packages are not this project's failures
ignore=()
for f in "${TEST_FILES[@]}"; do ignore+=(--ignore "$f"); done
stage pytest "$L_TEST" bash -c '
  "$0" -m pytest -q -rfEs -p no:cacheprovider -W ignore::DeprecationWarning -W ignore::FutureWarning "${@}" 2>&1
' "$PY" "${TEST_FILES[@]}" > >(tee "$OUT/pytest.txt")
stage pytest-gpu 60 bash -c '
  "$0" -m pytest -q -rfEs -p no:cacheprovider -W ignore::DeprecationWarning -W ignore::FutureWarning -m gpu tests "${@}" 2>&1
' "$PY" "${ignore[@]}" > >(tee -a "$OUT/pytest.txt")

# -- benchmarks ------------------------------------------------------------------------
stage pretrain "$L_PRE" "$PY" benchmarks/bench_pretrain.py --device "$DEVICE" --sizes "$SIZES" \
  --compile "$COMPILE" --store-events "$STORE" --workers "$WORKERS" --compare-views --repeat 1 "${STEPS[@]}" \
  --out "$OUT/bench_pretrain.json"
stage score-fp32 "$L_SCORE" "$PY" benchmarks/bench_score.py --size "$SCORE_SIZE" --device "$DEVICE" \
  --variations JES,JER --out "$OUT/bench_score.json"
stage score-bf16 "$L_SCORE" "$PY" benchmarks/bench_score.py --size "$SCORE_SIZE" --device "$DEVICE" \
  --precision bf16 --out "$OUT/bench_score_bf16.json"
stage profile "$L_PROF" "$PY" benchmarks/profile_pretrain.py --device "$DEVICE" "${PROFILE[@]}" \
  --out "$OUT/profile_pretrain.md"

# -- summary ---------------------------------------------------------------------------
printf '%s\n' "${STATUS[@]}" > "$OUT/.status"
"$PY" benchmarks/gpu_report.py "$OUT" --seconds $(($(date +%s) - T_START))
rm -f "$OUT/.status" "$OUT/env.txt"
echo "== gpu_check done in $(($(date +%s) - T_START)) s; results in $OUT"
sleep 1  # let the log's tee finish writing
