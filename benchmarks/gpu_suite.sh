#!/usr/bin/env bash
# The trainer's GPU path, measured and tested in one device call (issue 25; benchmarks/README.md, "gpu_suite").
# Installs the wheels carried in .whl/ (benchmarks/prepare_gpu_wheels.sh), then runs the trainer benchmark at
# BERT-base geometry, the trainer's CUDA tests and `course-utils train` on the tweets, each step time-limited,
# and writes gpu_suite.json and gpu_suite.md into $OUT (or --out DIR). The steps: benchmarks/gpu_suite.py.
#
#   bash benchmarks/gpu_suite.sh                           # on the GPU machine
#   bash benchmarks/gpu_suite.sh --dry-run --out /tmp/gs   # on a CPU: every step at toy sizes
#
# PYTHON picks the interpreter (default python3: on the GPU machine, the one with torch).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_suite.py "$@"
