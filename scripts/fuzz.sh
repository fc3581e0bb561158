#!/usr/bin/env bash
# Runs the libFuzzer targets (src/**/*_fuzz.cc, docs/fuzzing.md) from the
# checked build (clang, ASan + UBSan; built first).
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [TARGET...]
#
# For each target (all by default), J at a time: starts its corpus from its
# seeds (the files the target offers of its own, and the matching archives of
# ../shared/testdata/archives), replays the regression files committed beside
# it (<dir>/<target>_regressions/, a failure there fails the script), then
# fuzzes it for N seconds (default 60; CI runs 10). Prints one line per target
# (executions, executions per second, coverage, corpus size, crashes) and
# exits non-zero when any target crashed: the input that did is in
# build-check/fuzz/TARGET/crashes/; reproduce with `build-check/TARGET FILE`,
# and once fixed, commit it to the target's _regressions folder.
# Corpora stay in build-check/fuzz/TARGET/corpus between runs (never committed).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=60
JOBS=2
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
BUILD=${SHARDSET_CHECK_DIR:-build-check}
# The index block cache off: blocks it keeps from one input to the next look
# like leaks to libFuzzer, whose LeakSanitizer pass after each such input
# then takes 99% of the time (36 vs 12,000 inputs/s). Its code is tested
# under ASan by ctest (block_cache_test.cc).
export SHARDSET_INDEX_CACHE=0
ARCHIVES=../shared/testdata/archives
bash scripts/build.sh --check
mapfile -t SOURCES < <(find src -name '*_fuzz.cc' | sort)
if [ ${#TARGETS[@]} -eq 0 ]; then
  for s in "${SOURCES[@]}"; do TARGETS+=("$(basename "$s" .cc)"); done
fi

# One target: seeds, replay, fuzz; its summary line goes to $work/summary.
run_target() {
  local t=$1 src dir work
  src=$(printf '%s\n' "${SOURCES[@]}" | grep "/$t.cc$" || true)
  if [ -z "$src" ] || [ ! -x "$BUILD/$t" ]; then
    echo "fuzz.sh: no target $t (one of: ${TARGETS[*]})" >&2
    return 2
  fi
  dir=$(dirname "$src")
  work=$BUILD/fuzz/$t
  rm -rf "$work/seeds" "$work/crashes"
  mkdir -p "$work/seeds" "$work/corpus" "$work/crashes"
  SHARDSET_FUZZ_SEEDS=$work/seeds "$BUILD/$t" -runs=0 "$work/seeds" >/dev/null 2>&1 || true
  local -a archives=()
  case "$t" in
    tar_fuzz) archives=("$ARCHIVES"/tar/*.tar) ;;
    targz_fuzz) archives=("$ARCHIVES"/tar/*gz) ;;
    zip_fuzz) archives=("$ARCHIVES"/zip/*) ;;
  esac
  for a in "${archives[@]}"; do [ -f "$a" ] && cp "$a" "$work/seeds/"; done
  local status=ok
  if [ -d "$dir/${t}_regressions" ]; then
    if ! "$BUILD/$t" -runs=1 "$dir/${t}_regressions"/* >"$work/replay.log" 2>&1; then
      status="REGRESSION (log: $work/replay.log)"
    fi
  fi
  # Timeouts and memory as a hostile file must not exceed: 10 s, 2 GiB.
  "$BUILD/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
    -artifact_prefix="$work/crashes/" -print_final_stats=1 \
    "$work/corpus" "$work/seeds" >"$work/fuzz.log" 2>&1 || true
  local crashes execs rate cov ft corp
  crashes=$(find "$work/crashes" -type f | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -1)
  cov=$(grep -ao 'cov: [0-9]*' "$work/fuzz.log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -ao 'ft: [0-9]*' "$work/fuzz.log" | tail -1 | cut -d' ' -f2)
  corp=$(find "$work/corpus" -type f | wc -l)
  [ "$crashes" -gt 0 ] && status="CRASH (inputs: $work/crashes, log: $work/fuzz.log)"
  [ -z "$execs" ] && [ "$status" = ok ] && status="DID NOT RUN (log: $work/fuzz.log)"
  printf '%-20s %6ss %10s %8s/s %6s %7s %7s  %s\n' "$t" "$SECONDS_EACH" "${execs:-0}" \
    "${rate:-0}" "${cov:-0}" "${ft:-0}" "$corp" "$status" >"$work/summary"
}
export -f run_target
export BUILD ARCHIVES SECONDS_EACH
export SOURCES_LIST="${SOURCES[*]}"

printf '%-20s %7s %10s %10s %6s %7s %7s  %s\n' target time execs rate cov ft corpus status
fail=0
# J targets at a time; each prints its line when done.
printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c \
  'SOURCES=($SOURCES_LIST); run_target "$1" && cat "$BUILD/fuzz/$1/summary"' _ {} || fail=1
for t in "${TARGETS[@]}"; do
  grep -q '  ok$' "$BUILD/fuzz/$t/summary" 2>/dev/null || fail=1
done
exit $fail
