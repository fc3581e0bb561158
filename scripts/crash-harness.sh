#!/usr/bin/env bash
# Long kill -9 runs of `shardset pack`, by hand (issue 2, acceptance 5).
#
#   scripts/crash-harness.sh [TRIALS] [SEED]
#
# Runs tests/test_crash.py's randomized loop with TRIALS trials (default 500;
# CI runs 25): each trial starts `pack` on a tree of 20,000 small files with
# small shards (native; native --jobs 2; tar --jobs 2, in turn), kills it with
# SIGKILL at a random point of its progress (sometimes twice, the second time
# during the resumed run), checks that every file under a final name is a
# complete shard or manifest, reruns the same pack to completion and checks the
# result against an uninterrupted pack, `verify` and `extract` + `diff -r`.
# Prints how many kills landed before the first shard, mid-pack and after the
# manifest, and any leftovers. Pass SEED to repeat a run (each run prints its
# seed). Environment: SHARDSET_BUILD_DIR (default build),
# SHARDSET_CRASH_EXTRACT=first to diff only the first trial per configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-500}
BUILD_DIR=${SHARDSET_BUILD_DIR:-build}
bash scripts/build.sh
export SHARDSET_CRASH_TRIALS=$TRIALS
if [ $# -ge 2 ]; then export SHARDSET_CRASH_SEED=$2; fi
SHARDSET_BUILD_DIR="$(cd "$BUILD_DIR" && pwd)" \
  exec /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/test_crash.py \
  -k test_kill9_during_pack_then_resume
