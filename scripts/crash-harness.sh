#!/usr/bin/env bash
# Long kill -9 runs across every writer, by hand (issue 2 acceptance 5, issue 8).
#
#   scripts/crash-harness.sh [TRIALS] [SEED]
#
# TRIALS trials per writer (default 50; CI runs 25 of pack and 4 of each other
# writer through scripts/test.sh), one pytest run per test file:
#   pack           tests/test_crash.py: 20,000 small files into native, tar and
#                  tar.gz shards (one or two reader threads)
#   shuffle-dir    tests/test_crash_writers.py: shuffle of Fashion-MNIST's
#                  60,000 training images into a dataset folder (native
#                  scatter-gather, tar direct, tar.gz interleaved, zip)
#   shuffle-file   shuffle into one file (.tar.gz, .tar, .shard, .zip)
#   python-writer  shardset.Writer(resume=True) writing 60,000 generated
#                  samples (native, tar, tar.gz), killed and rerun
#   views          split --stratify, mix --sweep (21 views), mix --replace,
#                  select, shuffle --view, and dataset create
# Catalog edits and `sync` do not exist yet; they are added to
# tests/test_crash_writers.py when they do.
#
# Each trial kills the writer with SIGKILL at a moment drawn from the seed
# (sometimes twice, the second time during the rerun), checks that every file
# under a final name is complete (byte for byte the uninterrupted run's file;
# `verify` passes), reruns the same command to the end and checks the result
# against an uninterrupted run (same files and bytes, same `ls`, `verify`).
# At the end it prints one line per writer: kills and where they landed
# (before the first output, mid-write, after the final rename), kills that
# came too late (the writer had exited), visible partial files, lost or
# duplicated samples, completed reruns, `verify` passes and failures, and
# trials that left hidden temporaries behind after the rerun.
#
# Pass SEED to repeat a run's kill plans (each run prints its seed; the exact
# moments depend on timing). Environment: SHARDSET_BUILD_DIR (default build),
# SHARDSET_VENV (default .venv: its Python must `import shardset` for the
# Python Writer's trials), SHARDSET_NO_BUILD=1 to skip building,
# SHARDSET_CRASH_WRITERS=pack,views to run some writers only,
# SHARDSET_CRASH_EXTRACT=first to diff pack's extract only on the first trial
# per configuration. Exit status: 0 only if every check held.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-50}
SEED=${2:-$(( $(date +%s) % 100000 ))}
BUILD_DIR=$(cd "${SHARDSET_BUILD_DIR:-build}" 2>/dev/null && pwd || echo "$PWD/build")
VENV=${SHARDSET_VENV:-.venv}
if [ -z "${SHARDSET_NO_BUILD:-}" ]; then bash scripts/build.sh; fi
PY=/usr/bin/python3
if [ -x "$VENV/bin/python" ]; then PY=$VENV/bin/python; fi
REPORT=$(mktemp /tmp/shardset-crash-report.XXXXXX)
trap 'rm -f "$REPORT"' EXIT
export SHARDSET_CRASH_TRIALS=$TRIALS SHARDSET_CRASH_SEED=$SEED SHARDSET_CRASH_REPORT=$REPORT
export SHARDSET_BUILD_DIR=$BUILD_DIR SHARDSET_BIN=$BUILD_DIR/shardset
WRITERS=${SHARDSET_CRASH_WRITERS:-}
echo "crash harness: $TRIALS trials per writer, seed $SEED ($PY; $SHARDSET_BIN)"
start=$(date +%s)
rc=0
if [ -z "$WRITERS" ] || [[ ",$WRITERS," == *,pack,* ]]; then
  "$PY" -m pytest -q -s -p no:cacheprovider tests/test_crash.py \
    -k test_kill9_during_pack_then_resume || rc=1
fi
if [ -z "$WRITERS" ] || [[ ",$WRITERS," != ,pack, ]]; then
  "$PY" -m pytest -q -s -p no:cacheprovider tests/test_crash_writers.py || rc=1
fi
"$PY" - "$REPORT" "$(( $(date +%s) - start ))" "$rc" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
seconds, rc = int(sys.argv[2]), int(sys.argv[3])
# Phase names: tests/test_crash.py's for pack, tests/test_crash_writers.py's
# for the others.
BEFORE = ("before first shard", "before first output")
MID = ("mid-pack", "mid")
AFTER = ("after manifest", "after final")
cols = ["trials", "kills", "before", "mid", "after", "late", "partial", "lost/dup",
        "reruns ok", "verify ok", "verify bad", "leftovers", "seconds"]
print(f"\n{'writer':14s}" + "".join(f"{c:>11s}" for c in cols))
total = {c: 0 for c in cols}
for r in rows:
    p = r["phases"]
    v = {"trials": r["trials"], "kills": r["kills"],
         "before": sum(p.get(k, 0) for k in BEFORE), "mid": sum(p.get(k, 0) for k in MID),
         "after": sum(p.get(k, 0) for k in AFTER), "late": p.get("exited before the kill", 0),
         "partial": r["visible_partial"], "lost/dup": r["lost_or_duplicated"],
         "reruns ok": r["resumes_completed"], "verify ok": r["verify_passes"],
         "verify bad": r["verify_failures"], "leftovers": r["leftovers_after_rerun"],
         "seconds": r["seconds"]}
    for c in cols:
        total[c] += v[c]
    print(f"{r['writer']:14s}" + "".join(f"{v[c]:>11}" for c in cols))
total["seconds"] = round(total["seconds"], 1)
print(f"{'all':14s}" + "".join(f"{total[c]:>11}" for c in cols))
print("(before: nothing of the output visible yet; mid: shards or views sealed, or the hidden "
      "file being written; after: the manifest, file or last view in place; late: the writer "
      "had exited before the kill, not counted as a kill; leftovers: trials with hidden "
      "temporaries left after the rerun)")
for r in rows:
    extra = {k: v for k, v in r["phases"].items()
             if k not in BEFORE + MID + AFTER + ("exited before the kill",)}
    if extra:
        print(f"  {r['writer']}: {extra}")
    if r.get("rerun_refused_complete"):
        print(f"  {r['writer']}: {r['rerun_refused_complete']} reruns found the output complete "
              f"and refused to overwrite it, as documented")
    if r.get("resumed_from_sealed"):
        print(f"  {r['writer']}: {r['resumed_from_sealed']} reruns resumed after sealed shards")
    for n in r.get("notes", [])[:3]:
        print(f"  {r['writer']} note: {n}")
missing = sorted({"pack", "shuffle-dir", "shuffle-file", "python-writer", "views"}
                 - {r["writer"] for r in rows})
if missing:
    print(f"no tally from: {', '.join(missing)} (skipped, deselected, or failed before the end)")
print(f"{total['kills']} kills in {seconds} s; "
      + ("every check held" if rc == 0 and not total["partial"] and not total["lost/dup"]
         and not total["verify bad"] else "FAILURES: see above"))
EOF
exit $rc
