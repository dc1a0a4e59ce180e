#!/bin/sh
# make gpu-check: on a machine with an NVIDIA GPU, run the backend tests with the CUDA
# execution provider (tests/backends/test_cuda.py runs instead of skipping) and the GPU
# benchmark (bench/gpu.py, written to docs/benchmarks-gpu.md). Uses .venv when its
# onnxruntime already has CUDA; otherwise builds .venv-gpu with onnxruntime-gpu.
set -eu
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi finds none)" >&2
    exit 2
fi
has_cuda() {
    "$1" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null
}
PY=.venv/bin/python
if [ ! -x "$PY" ] || ! has_cuda "$PY"; then
    python3 -m venv .venv-gpu
    .venv-gpu/bin/pip install --quiet -e '.[dev]'
    .venv-gpu/bin/pip uninstall --quiet -y onnxruntime
    .venv-gpu/bin/pip install --quiet onnxruntime-gpu
    PY=.venv-gpu/bin/python
    has_cuda "$PY" || { echo "gpu_check: onnxruntime-gpu finds no CUDA provider" >&2; exit 2; }
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -m pytest -q -p no:cacheprovider -m "not e2e and not browser" tests/backends
command -v wrk >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }
PYTHONPATH=scripts:bench "$PY" bench/gpu.py --out docs
echo "gpu_check: docs/benchmarks-gpu.md written"
