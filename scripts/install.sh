#!/usr/bin/env bash
# Install logreg-tuner (and, with "test", its test extras) into the current Python.
# On a machine without an NVIDIA GPU the CPU build of torch is installed first, as PyTorch's
# own instructions advise, so that the dependency range `torch>=2.2` does not pull a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    "$PY" -m pip install "torch>=2.2"
  elif [ -n "${TORCH_CPU_INDEX_URL:-}" ]; then
    "$PY" -m pip install torch --index-url "$TORCH_CPU_INDEX_URL"
  else
    # A local CPU wheel where one is provided (this project's CI machines), else PyTorch's CPU index.
    "$PY" -m pip install "torch==2.13.0" 2>/dev/null \
      || "$PY" -m pip install torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
extra="${1:-}"
if [ "$extra" = "test" ]; then
  "$PY" -m pip install -e ".[test]"
else
  "$PY" -m pip install -e .
fi
