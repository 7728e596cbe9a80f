#!/usr/bin/env bash
# Issue 10's GPU checks as one prepared script: the `-k cuda` tests and benchmarks/gpu_crossover.py
# (CPU vs CUDA per solver and problem size, the batched engine, small studies with --device
# cpu/auto/cuda), in under 8 minutes on the GPU machine (python3 3.12, torch+CUDA, no network).
#
#   bash benchmarks/gpu_check.sh prepare        # HERE, once: wheels into .whl/, data into .gpudata/
#   bash benchmarks/gpu_check.sh run            # THERE: results under $OUT (gpu_crossover.md/.json, log)
#   bash benchmarks/gpu_check.sh run --dry-run  # anywhere, CPU only, tiny sizes: checks the script
#   bash benchmarks/gpu_check.sh more           # THERE, if device time is left: larger fits, K=16
#
# `prepare` downloads cp312 wheels of what the GPU image lacks (Optuna and its SQLAlchemy,
# alembic, Mako, colorlog; cmaes for the cmaes sampler) at the versions installed here, and
# copies a9a and SST-2 into .gpudata/ (the ../shared beside the checkout does not travel).
# Both folders are listed in .git/info/exclude. MLflow is not on the GPU image and is heavy:
# the studies there run with --no-tracking, which needs no MLflow.
#
# The device call (one command, everything carried):
#   run(command="bash benchmarks/gpu_check.sh run", carry=[".whl", ".gpudata"], timeout_s=580)
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
shift || true
WHEELS=(optuna sqlalchemy alembic mako colorlog cmaes)

prepare() {
  for d in /.whl/ /.gpudata/; do
    grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude
  done
  local specs=() name version
  for name in "${WHEELS[@]}"; do
    version=$(python3 -c "import importlib.metadata as m; print(m.version('$name'))") || exit 1
    specs+=("$name==$version")
  done
  mkdir -p .whl
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${specs[@]}" || exit 1
  local data="${TUNER_DATA_DIR:-../shared/data}"
  mkdir -p .gpudata/a9a .gpudata/sst2-glue
  cp "$data/a9a/a9a" "$data/a9a/a9a.t" .gpudata/a9a/ && cp "$data/sst2-glue/train.tsv" .gpudata/sst2-glue/ || exit 1
  du -sh .whl .gpudata
  echo 'Now: run(command="bash benchmarks/gpu_check.sh run", carry=[".whl", ".gpudata"], timeout_s=580)'
}

setup() {  # the GPU image lacks Optuna (carried as wheels) and the project itself
  OUT="${OUT:-/tmp/gpu-check-out}"
  mkdir -p "$OUT"
  exec > >(tee -a "$OUT/gpu_check.log") 2>&1
  export PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  if ! python3 -c "import optuna, sqlalchemy" 2>/dev/null; then
    [[ -d .whl ]] || { echo "Optuna is missing and there is no .whl/: run 'bash benchmarks/gpu_check.sh prepare' here first."; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  if ! python3 -c "from tuner import penalties; assert 'l2' in penalties.names()" 2>/dev/null; then
    # the project itself, with its entry points (the plugins), without dependencies and without network
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/project . || exit 1
    export PYTHONPATH="/tmp/project${PYTHONPATH:+:$PYTHONPATH}"
  fi
  python3 -c "import torch, tuner; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'tuner', tuner.__version__)"
  export TUNER_DATA_DIR="${TUNER_DATA_DIR:-$([[ -d .gpudata ]] && echo "$PWD/.gpudata" || echo "$PWD/../shared/data")}"
}

run() {  # the checks, in the order they matter; the whole under 9 minutes
  local dry="" start=$SECONDS
  [[ "${1:-}" == "--dry-run" ]] && dry="--dry-run"
  setup
  echo "== pytest -k 'cuda and not cpu' ($((SECONDS - start)) s)"
  # the modules holding CUDA tests (none imports MLflow, which the GPU image lacks)
  timeout 170 python3 -m pytest tests/test_cuda.py tests/test_newton.py tests/test_device.py tests/test_batched.py \
    tests/reliability/test_study_runs.py -k "cuda and not cpu" -q -p no:cacheprovider -o addopts="" --tb=short -rfEs \
    --durations=8 > "$OUT/pytest_cuda.log" 2>&1
  tail -40 "$OUT/pytest_cuda.log"
  echo "== gpu_crossover ($((SECONDS - start)) s)"
  local budget=$((490 - (SECONDS - start)))
  # the 1M-row study on CUDA, then on the CPU (up to 330 s in all); then a9a and SST-2: fits, and
  # studies with --device auto and cpu, in what is left
  timeout $((budget + 40)) python3 benchmarks/gpu_crossover.py $dry --data-dir "$TUNER_DATA_DIR" \
    --budget-s "$budget" --fit-seconds 4 --study-trials 10 --study-devices auto,cpu --k 0 \
    --late-problems "" --out "$OUT/gpu_crossover.md"
  echo "== done in $((SECONDS - start)) s; results in $OUT"
}

more() {  # a second call, when device time is left: the crossover at larger sizes, K=16, CUDA studies
  local dry="" start=$SECONDS
  [[ "${1:-}" == "--dry-run" ]] && dry="--dry-run"
  setup
  local budget=$((${MORE_BUDGET:-200} - (SECONDS - start)))
  timeout $((budget + 40)) python3 benchmarks/gpu_crossover.py $dry --data-dir "$TUNER_DATA_DIR" \
    --budget-s "$budget" --fit-seconds 3 --problems gen200k,gen1m --late-problems "" --study-trials 0 \
    --large-trials 0 --k 16 --out "$OUT/gpu_crossover_more.md"
  echo "== done in $((SECONDS - start)) s; results in $OUT"
}

case "$mode" in
  prepare) prepare ;;
  run) run "$@" ;;
  more) more "$@" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
