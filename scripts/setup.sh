#!/usr/bin/env bash
# Create the project's virtual environment in .venv (idempotent).
#   scripts/setup.sh          engine run-time only (enough for the demo)
#   scripts/setup.sh --dev    plus torch (CPU), onnx, bpy and pytest for training and tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
req=requirements.txt
[ "${1:-}" = "--dev" ] && req=requirements-dev.txt
stamp=".venv/.installed-$(sha1sum "$req" requirements.txt | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$req"
  # mediapipe 0.10.21 hard-depends on jax, which the pose solution never imports.
  .venv/bin/python -m pip install -q --no-deps mediapipe==0.10.21
  touch "$stamp"
fi
