#!/usr/bin/env bash
# Create the project's virtual environment in .venv (idempotent; safe to re-run).
#   scripts/setup.sh            the engine's run-time (python -m engine)
#   scripts/setup.sh --blender  plus bpy (Blender as a module): the demo's .blend, headless batch
#   scripts/setup.sh --dev      plus torch (CPU), onnx and pytest: training and the tests, and the
#                               other stacks' venvs the tests run (scripts/test_stacks.sh: bpy 4.2
#                               and 4.5, the Blender 5.1+ zips' numpy 2 / mediapipe 1.x set)
# On a fresh Debian 12 it first installs the few system packages Python's venv and the bpy
# wheel need (with sudo when not root), and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; blender=0
case "${1:-}" in
  --dev) dev=1; blender=1 ;;
  --blender) blender=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--blender|--dev]" >&2; exit 2 ;;
esac

need_debs=()
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || { echo "setup: Python 3.11 is required (found: $($PY --version 2>&1))" >&2; exit 1; }
"$PY" -c 'import ensurepip, venv' 2>/dev/null || need_debs+=(python3.11-venv)
if [ $blender = 1 ] && command -v ldconfig >/dev/null; then
  # shared libraries the bpy wheel links against (X11/GL client libs; no display is needed)
  for pair in libGL.so.1:libgl1 libSM.so.6:libsm6 libX11.so.6:libx11-6 libXext.so.6:libxext6 \
              libXfixes.so.3:libxfixes3 libXi.so.6:libxi6 libxkbcommon.so.0:libxkbcommon0 \
              libXrender.so.1:libxrender1; do
    ldconfig -p | grep -q "${pair%%:*}" || need_debs+=("${pair##*:}")
  done
fi
if [ ${#need_debs[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need_debs[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_debs[@]}"
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
req=requirements.txt
[ $blender = 1 ] && req=requirements-blender.txt
[ $dev = 1 ] && req=requirements-dev.txt
stamp=".venv/.installed-$(cat "$req" requirements*.txt | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages from $req into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  # mediapipe 0.10.21 hard-depends on jax, which its pose solution never imports.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps mediapipe==0.10.21
  touch "$stamp"
fi
# The other supported stacks, each in its own cached venv (.venv-<name>/), for tests/test_stacks.py.
[ $dev = 1 ] && scripts/test_stacks.sh --setup-only
exit 0
