#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: the C++ unit tests
# (ctest) and the end-to-end tests against real peers and real data (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${SHARDSET_BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure -j2)
# The archive conformance corpus (../shared/testdata/archives): ctest ran it;
# this prints its tally (matched, failed as expected, unknown read).
"$BUILD_DIR/shardset_tests" --gtest_filter='Conformance.*' | grep '^conformance:'
SHARDSET_BIN="$PWD/$BUILD_DIR/shardset" SHARDSET_BUILD_DIR="$PWD/$BUILD_DIR" \
  /usr/bin/python3 -m pytest -q tests
