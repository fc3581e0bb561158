#!/usr/bin/env bash
# The Python environment (docs/python.md "Install"): a venv that sees Debian's
# PyTorch (python3-torch, python3-torchvision: PyPI's torch is the multi-GB
# CUDA build) and pip-installs the rest, then `pip install .` of this checkout.
# Idempotent: quick and quiet when everything is there (the extension is
# rebuilt incrementally in build/python).
#   --bench         also the benchmark peers (bench/run.sh --only loader):
#                   webdataset, and MosaicML Streaming without its declared
#                   dependencies (they pin PyPI's torch) plus what it imports;
#                   and ratarmount (bench/run.sh --only mount), whose FUSE
#                   binding (mfusepy) loads Debian's libfuse3 (fuse3, from
#                   scripts/install-deps.sh)
#   SHARDSET_VENV   where the venv goes (default .venv)
# Also pycocotools (without its dependencies), for tests/test_catalog.py.
set -euo pipefail
bench=0
[ "${1:-}" = --bench ] && bench=1
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
# pycocotools, which the catalog tests load COCO exports with (tests/
# test_catalog.py). --no-deps: its declared dependencies would bring PyPI's
# numpy 2 over Debian's numpy 1, which Debian's torch is built against, and
# matplotlib, which only its drawing helper (showAnns) imports.
if ! "$PY" -c 'import pycocotools.coco, pycocotools.mask' 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check --no-deps 'pycocotools==2.0.8'
  "$PY" -c 'import pycocotools.coco, pycocotools.mask'
fi
if [ "$bench" = 1 ] && ! "$PY" -c 'import webdataset, streaming' 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check 'webdataset==1.0.2'
  "$PY" -m pip install -q --disable-pip-version-check --no-deps 'mosaicml-streaming==0.13.0'
  "$PY" -m pip install -q --disable-pip-version-check 'transformers>=4.21.3,<5' 'xxhash>=3,<4' \
    zstd python-snappy brotli catalogue tqdm
  "$PY" -c 'import webdataset, streaming'
fi
# The AWS CLI: bench/remote_bench.py's peer for downloading shards from S3.
if [ "$bench" = 1 ] && ! "$VENV/bin/aws" --version >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check 'awscli==1.46.3'
  "$VENV/bin/aws" --version >/dev/null
fi
if [ "$bench" = 1 ] && ! "$VENV/bin/ratarmount" --version >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check 'ratarmount==1.3.0'
  "$VENV/bin/ratarmount" --version >/dev/null
fi
