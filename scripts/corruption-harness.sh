#!/usr/bin/env bash
# Long runs of the corruption harness, by hand (issue 8).
#
#   scripts/corruption-harness.sh [TRIALS] [SEED]
#
# Runs tests/test_corruption.py's randomized loop with TRIALS trials (default
# 3000; CI runs the test's default): each trial copies a small dataset in one
# of the formats shardset writes (native, tar + .idx, tar.gz + .idx, zip
# stored and deflated, tsv + .lineidx/.lineidx.8b, a view over a native
# dataset, a folder index over loose files), damages one random file of it
# (shard, sidecar index, manifest.json, view, loose file) by flipping 1..8
# bits, truncating it or zeroing a 4 KiB page, and checks that `shardset
# verify` fails naming the file (and the damaged samples when the damage is
# in their bytes), and that `shardset cat`, `shardset extract`,
# shardset.Dataset and shardset.torch.IterableDataset(on_error="skip") return
# only the source's bytes or fail clearly. Prints a table per format and
# kind: trials, no-ops, detected, undetected, wrong bytes (the last two must
# be 0). Pass SEED to repeat a run (each run prints its seed).
#
# Environment: SHARDSET_BUILD_DIR (default build); SHARDSET_VENV (default
# .venv: the in-process readers need the installed package, scripts/
# python-env.sh; without it only the CLI readers run); SHARDSET_NO_BUILD=1 to
# skip the build; SHARDSET_CORRUPT_FORMATS=zip,tsv to run some formats only;
# SHARDSET_CORRUPT_LOG=FILE to write every problem found to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-3000}
BUILD_DIR=${SHARDSET_BUILD_DIR:-build}
VENV=${SHARDSET_VENV:-.venv}
if [ -z "${SHARDSET_NO_BUILD:-}" ]; then bash scripts/build.sh; fi
PY=/usr/bin/python3
if [ -x "$VENV/bin/python" ]; then PY=$VENV/bin/python; fi
export SHARDSET_CORRUPT_TRIALS=$TRIALS
if [ $# -ge 2 ]; then export SHARDSET_CORRUPT_SEED=$2; fi
BUILD_ABS="$(cd "$BUILD_DIR" && pwd)"
SHARDSET_BUILD_DIR="$BUILD_ABS" SHARDSET_BIN="$BUILD_ABS/shardset" \
  exec "$PY" -m pytest -q -s -p no:cacheprovider tests/test_corruption.py
