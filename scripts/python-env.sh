#!/usr/bin/env bash
# The Python environment (docs/python.md "Install"): a venv that sees Debian's
# PyTorch (python3-torch, python3-torchvision: PyPI's torch is the multi-GB
# CUDA build) and pip-installs the rest, then `pip install .` of this checkout.
# Idempotent: quick and quiet when everything is there (the extension is
# rebuilt incrementally in build/python).
#   SHARDSET_VENV   where the venv goes (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SHARDSET_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY=$VENV/bin/python
# Build tools from PyPI, only when missing (no network when they are there).
if ! "$PY" -c 'import scikit_build_core, pybind11' 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check 'scikit-build-core>=0.8' 'pybind11>=2.10'
fi
"$PY" -m pip install -q --disable-pip-version-check --no-build-isolation . 
"$PY" -c 'import shardset, shardset.torch' 
