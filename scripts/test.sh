#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: the C++ unit tests
# (ctest, again under ASan + UBSan), the fuzz targets briefly, the end-to-end
# tests against real peers and real data (pytest, tests/), and the Python
# package's tests after `pip install .` into the venv (python/tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/python-env.sh
BUILD_DIR=${SHARDSET_BUILD_DIR:-build}
VENV=${SHARDSET_VENV:-.venv}
(cd "$BUILD_DIR" && ctest --output-on-failure -j2)
# The archive conformance corpus (../shared/testdata/archives): ctest ran it;
# this prints its tally (matched, failed as expected, unknown read).
"$BUILD_DIR/shardset_tests" --gtest_filter='Conformance.*' | grep '^conformance:'
# The checked build (docs/fuzzing.md): the same C++ suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, then every libFuzzer target:
# its committed regressions replayed, then fuzzed briefly from its seeds.
bash scripts/build.sh --check
(cd "${SHARDSET_CHECK_DIR:-build-check}" && ctest --output-on-failure -j2)
bash scripts/fuzz.sh --seconds "${SHARDSET_FUZZ_SECONDS:-10}"
export SHARDSET_BIN="$PWD/$BUILD_DIR/shardset" SHARDSET_BUILD_DIR="$PWD/$BUILD_DIR"
"$VENV/bin/python" -m pytest -q tests
# Its own run: both folders have a conftest.py of their own.
"$VENV/bin/python" -m pytest -q python/tests
# The benchmarks' short mode: every step of bench/run.sh on small corpora,
# next to every peer, so a change that breaks a benchmark fails here. It
# asserts no times; its results go to a temp folder, not bench/RESULTS.md.
bash bench/run.sh --short >/dev/null
