#!/usr/bin/env bash
# One command for a CUDA machine: install the GPU extra, run the whole test-suite (CuPy is then the
# "auto" backend, and the tests marked `gpu` run), then the simulator benchmark at 256^3 and 512^3.
# Usage: bash benchmarks/gpu_check.sh [OUTDIR]     (OUTDIR receives logs and JSON; default ./gpu-results)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-results}"
mkdir -p "$out"
python3 -m pip install --quiet -e ".[test,gpu]" 2>&1 | tail -n 3 || true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import cupy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())" | tee -a "$out/gpu.txt"
set -o pipefail
python3 -m pytest -q tests -m gpu 2>&1 | tee "$out/pytest-gpu.log"
python3 -m pytest -q tests 2>&1 | tee "$out/pytest-all.log"
PYTHONUNBUFFERED=1 python3 benchmarks/bench_simulator.py --backend cupy --sizes 256 512 --json "$out/bench-cupy.json" \
  2>&1 | tee "$out/bench-cupy.log"
