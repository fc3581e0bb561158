#!/usr/bin/env bash
# Configures and builds shardset into ./build (or $SHARDSET_BUILD_DIR).
#   scripts/build.sh           the release build (RelWithDebInfo, gcc)
#   scripts/build.sh --check   the checked build into ./build-check (or
#                              $SHARDSET_CHECK_DIR): clang, AddressSanitizer +
#                              UndefinedBehaviorSanitizer on every target, the
#                              libFuzzer targets (docs/fuzzing.md); no Python
#                              extension, no benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
  BUILD_DIR=${SHARDSET_CHECK_DIR:-build-check}
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_C_FLAGS="-O1 -g" -DCMAKE_CXX_FLAGS="-O1 -g" \
      -DSHARDSET_SANITIZE=address,undefined -DSHARDSET_FUZZ=ON \
      -DSHARDSET_BUILD_BENCH=OFF -DSHARDSET_BUILD_PYTHON=OFF >/dev/null
  fi
else
  BUILD_DIR=${SHARDSET_BUILD_DIR:-build}
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
fi
ninja -C "$BUILD_DIR" --quiet
