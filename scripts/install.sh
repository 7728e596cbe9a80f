#!/usr/bin/env bash
# Install logreg-tuner (and, with "test", its test extras plus the Debian packages the tests
# need: PostgreSQL, Chromium and ChromeDriver) into the current Python.
# On a machine without an NVIDIA GPU the CPU build of torch is installed first, as PyTorch's
# own instructions advise, so that the dependency range `torch>=2.2` does not pull a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
extra="${1:-}"

# The services the test suite starts itself (a throwaway PostgreSQL server, headless Chromium
# for the MLflow UI test). Installed from Debian when this is a Debian-like system and we may
# (root, or password-less sudo); otherwise we say exactly what to install and stop.
install_test_services() {
  local missing=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
  fi
  if ! command -v apt-get >/dev/null 2>&1 || [ "${sudo[*]}" = none ]; then
    echo "install.sh: the tests need ${missing[*]}, which are not installed and cannot be installed" >&2
    echo "  from here (needs apt-get as root). Install them, e.g.: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "install.sh: installing ${missing[*]} from Debian for the tests" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

if [ "$extra" = "test" ]; then
  install_test_services
fi

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    "$PY" -m pip install "torch>=2.2"
  elif [ -n "${TORCH_CPU_INDEX_URL:-}" ]; then
    "$PY" -m pip install torch --index-url "$TORCH_CPU_INDEX_URL"
  else
    # PyTorch's instructions for CPU-only machines: its CPU wheel index, and that index alone (an
    # extra index or a wheel folder from pip's configuration would win with a newer CUDA build).
    # Where it cannot be reached (an offline machine that provides a local CPU wheel, like this
    # project's CI), the pinned version from the configured indexes: say so, with pip's reason.
    log="$(mktemp)"
    if ! PIP_EXTRA_INDEX_URL=" " PIP_FIND_LINKS=" " "$PY" -m pip install torch \
        --index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1 >"$log" 2>&1; then
      reason="$(grep -o -m1 "Failed to establish a new connection: [^')]*" "$log" || grep -m1 '^ERROR' "$log" \
        || tail -n1 "$log")"
      echo "install.sh: PyTorch's CPU index (https://download.pytorch.org/whl/cpu) failed: ${reason:0:160}" >&2
      echo "install.sh: installing torch==2.13.0 from the configured package index instead" \
        "(a CPU wheel where the machine provides one; set TORCH_CPU_INDEX_URL to choose another index)" >&2
      "$PY" -m pip install "torch==2.13.0"
    fi
    rm -f "$log"
  fi
fi
if [ -n "$extra" ]; then  # test, dashboard, postgres, parquet, ... or several: "dashboard,parquet"
  "$PY" -m pip install -e ".[$extra]"
else
  "$PY" -m pip install -e .
fi
