#!/usr/bin/env bash
# bench/run.sh: shardset next to the tools users would otherwise pick, in one
# run, on corpora generated here. See bench/README.md for what each number means.
#
#   bench/run.sh            full run (~35 min on 2 cores), writes bench/RESULTS.md
#   bench/run.sh --short    CI smoke run (~2-3 min): prints its RESULTS.md; fails when
#                           a step fails, never because of how fast anything is
# Options:
#   --only PART      run one part: core (pack and read of folders), archives
#                    (tar.gz, zip and tsv read in place, next to tar, bsdtar and
#                    Python), views (mix, split and read-back of a 10M-entry view;
#                    views vs symlink trees) or shuffle (200,000 small and 5 GiB of
#                    large samples, next to a copy and seed 001's divide-and-merge)
#                    or loader (PyTorch loading of Fashion-MNIST next to ImageFolder,
#                    WebDataset and MosaicML Streaming; the example CNN shuffled and
#                    not) or mount (every file read and stat'ed through shardset
#                    mount of a tar and of a native dataset, next to the loose files
#                    and ratarmount of the same tar); --only PART rewrites only its
#                    sections (and the goals) of an existing results file
#   --out FILE       where to write the results (default as above)
#   --workdir DIR    build the corpora and outputs here instead of a fresh temp folder
#                    (corpora already there with the same parameters are reused)
#   --keep           keep the temp folder (printed at the end)
#   --runs N         timed runs per pack command (default 10, --short 3)
#   --wait-idle[=S]  before measuring, wait (at most S seconds, default 1800) until the
#                    1-minute load average is below 0.5: on a shared machine other jobs
#                    would otherwise be in the numbers
# Environment: SHARDSET_BUILD_DIR (default build), TMPDIR (where the temp folder goes),
# PYTHON (the Python peers' interpreter, default /usr/bin/python3).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
mode=full
out=""
workdir=""
keep=0
runs=""
wait_idle=0
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --short) mode=short ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --workdir) workdir=$2; shift ;;
    --workdir=*) workdir=${1#--workdir=} ;;
    --keep) keep=1 ;;
    --runs) runs=$2; shift ;;
    --runs=*) runs=${1#--runs=} ;;
    --wait-idle) wait_idle=1800 ;;
    --wait-idle=*) wait_idle=${1#--wait-idle=} ;;
    --only) only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case "$only" in
  "") parts="core archives views shuffle loader mount" ;;
  core|archives|views|shuffle|loader|mount) parts=$only ;;
  *) echo "bench/run.sh: --only takes core, archives, views, shuffle, loader or mount, not '$only'" >&2; exit 2 ;;
esac
has_part() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# The Python peers run on Debian's interpreter (built with PGO and LTO, like
# most distributions' and python.org's); PYTHON picks another.
py=${PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=python3

for tool in hyperfine tar bsdtar gzip python3 "$py" /usr/bin/time; do
  command -v "$tool" >/dev/null || {
    echo "bench/run.sh: '$tool' is missing; run scripts/install-deps.sh (or apt-get install it)" >&2
    exit 2
  }
done

# ---- parameters -------------------------------------------------------------
if [ "$mode" = short ]; then
  small_files=20000
  fmnist_limit=5000          # per split: 10,000 PNGs
  runs=${runs:-3}
  bench_args=(--benchmark_min_time=0.05 --benchmark_repetitions=1)
else
  small_files=200000
  fmnist_limit=0             # all 70,000 PNGs
  runs=${runs:-10}
  bench_args=(--benchmark_min_time=0.5 --benchmark_repetitions=5
              --benchmark_report_aggregates_only=true)
fi
small_dirs=1000
small_min=1024
small_max=4096
small_seed=42
# Archives in place: a ~1 GiB tar.gz of image-like (random) and text-like
# files of 16-240 KiB (64 MiB with --short); zips and a TSV of the small corpus.
if [ "$mode" = short ]; then
  mixed_files=512
  arch_members=6             # members read one by one from the tar.gz
  arch_rounds=2              # rounds of those reads and of the whole-file commands
  arch_cat_repeat=2          # shardset cat runs per member per round
  arch_whole_rounds=1        # rounds of the whole-file commands (index, extract)
  tgz_picks=50               # random reads per pass of the in-process tar.gz benchmark
  py_reps=1                  # timed passes of the Python readers
else
  mixed_files=8192
  arch_members=20
  arch_rounds=3
  arch_cat_repeat=3
  arch_whole_rounds=3
  tgz_picks=200
  py_reps=5
fi
mixed_dirs=64
mixed_min=16384
mixed_max=245760
mixed_text=75
# Views: two synthetic datasets (tiny samples written straight to shards, no
# loose files) mixed into a view of view_total entries, both as counts and as
# fractions (0.6 of A + 0.8 of B = the same total); the Fashion-MNIST folders
# for views vs symlink trees.
if [ "$mode" = short ]; then
  view_a=1000000
  view_b=500000
  view_rounds=1              # runs of each whole-process command
  view_reps=2                # in-process repetitions (read-back)
  view_random=20000          # random positions read back per repetition
else
  view_a=10000000
  view_b=5000000
  view_rounds=3
  view_reps=5
  view_random=100000
fi
# Shuffle: the small corpus (label = its 1,000 folders) and a large one of
# 100-300 KiB random files in 10 folders (5.0 GiB; 200 MiB with --short),
# each as a label-ordered tar and a native dataset; --memory values for the
# peak-memory runs, the data several times larger than each.
if [ "$mode" = short ]; then
  large_files=1040
  shuffle_rounds=1
  shuffle_memory_small="4MiB 1GiB"
  shuffle_memory_large="16MiB 64MiB"
else
  large_files=26240
  shuffle_rounds=3
  shuffle_memory_small="64MiB 1GiB"
  shuffle_memory_large="256MiB 1GiB"
fi
large_dirs=10
large_min=102400
large_max=307200
# Core: "big", 5,000 random files of 100-300 KiB (1 GB; 200 with --short) in
# 10 folders, for pack and sequential read of large samples.
if [ "$mode" = short ]; then big_files=200; else big_files=5000; fi
# Mount: the Fashion-MNIST tree and the big corpus, as loose files, a GNU tar
# and a native dataset; hyperfine rounds of one run per command.
if [ "$mode" = short ]; then mount_rounds=1; else mount_rounds=5; fi
view_count_a=$((view_a * 6 / 10))
view_count_b=$((view_b * 8 / 10))

# ---- build ------------------------------------------------------------------
build_dir=${SHARDSET_BUILD_DIR:-build}
case "$build_dir" in /*) ;; *) build_dir=$repo/$build_dir ;; esac
# A build folder configured before bench/ existed has no bench targets yet.
if [ -f "$build_dir/build.ninja" ] && ! grep -q shardset_read_bench "$build_dir/build.ninja"; then
  cmake -S "$repo" -B "$build_dir" -DSHARDSET_BUILD_BENCH=ON >/dev/null
fi
SHARDSET_BUILD_DIR=$build_dir bash "$repo/scripts/build.sh" >&2
ss=$build_dir/shardset
for bin in "$ss" "$build_dir/shardset_read_bench" "$build_dir/shardset_bench_corpus" \
           "$build_dir/fashion_mnist_png" "$build_dir/shardset_view_bench"; do
  [ -x "$bin" ] || { echo "bench/run.sh: $bin was not built (SHARDSET_BUILD_BENCH=OFF?)" >&2; exit 2; }
done

# ---- work folder ------------------------------------------------------------
if [ -n "$workdir" ]; then
  mkdir -p "$workdir"
  W=$(cd "$workdir" && pwd)
  keep=1
else
  W=$(mktemp -d "${TMPDIR:-/tmp}/shardset-bench.XXXXXX")
fi
# Mounts the mount part made (W/mnt/*): never left behind, even by a failed
# run, and never walked into by the rm -rf below.
unmount_all() {
  local m
  for m in "$W"/mnt/*; do
    [ -d "$m" ] || continue
    if grep -qs " $m fuse" /proc/self/mounts; then
      fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    fi
  done
}
cleanup() {
  unmount_all
  if [ "$keep" = 0 ]; then rm -rf "$W"; else echo "bench/run.sh: kept $W"; fi
}
trap cleanup EXIT
case "$W" in *[[:space:]]*) echo "bench/run.sh: the work folder path must not contain spaces" >&2; exit 2 ;; esac
case "$W/" in "$repo"/*) echo "bench/run.sh: the work folder must be outside the repo" >&2; exit 2 ;; esac
R=$W/results
rm -rf "$R" "$W/out" "$W/keep"
mkdir -p "$R" "$W/corpus" "$W/out" "$W/keep"
# The run uses copies of the binaries it just built: a rebuild of the build
# folder while it runs (others may build there; a binary being relinked
# cannot even be started) changes nothing in a run that takes an hour.
rm -rf "$W/bin"
mkdir -p "$W/bin"
cp "$ss" "$build_dir/shardset_read_bench" "$build_dir/shardset_bench_corpus" "$build_dir/fashion_mnist_png" \
  "$build_dir/shardset_view_bench" "$build_dir/CMakeCache.txt" "$W/bin/"
build_dir=$W/bin
ss=$build_dir/shardset
[ -n "$out" ] || { if [ "$mode" = short ]; then out=$R/RESULTS.md; else out=$repo/bench/RESULTS.md; fi; }

log() { printf '\n== [%ss] %s\n' "$SECONDS" "$*" >&2; }
# Where run() records commands: the archives part keeps its own list, which
# its section of RESULTS.md shows.
cmdlog=$R/commands.log
# Runs a command and records it, exactly as run, for RESULTS.md.
run() {
  printf '%q ' "$@" | sed 's/ $//' >>"$cmdlog"
  printf '\n' >>"$cmdlog"
  "$@"
}

# ---- the machine ------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
if [ "$wait_idle" -gt 0 ]; then
  log "waiting (at most ${wait_idle}s) for the 1-minute load average to drop below 0.5"
  waited=0
  while awk -v l="$(load1)" 'BEGIN {exit !(l >= 0.5)}' && [ "$waited" -lt "$wait_idle" ]; do
    sleep 10
    waited=$((waited + 10))
  done
  echo "idle_wait	${waited}s (load $(load1) when measuring started)" >"$R/idle.tsv"
fi
{
  echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "mode	$mode"
  echo "parts	$parts"
  echo "nproc	$(nproc)"
  echo "cpu	$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory	$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel	$(uname -srm)"
  echo "os	$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "virt	$( (systemd-detect-virt 2>/dev/null || true) | head -1)"
  echo "fs	$(findmnt -n -o SOURCE,FSTYPE,OPTIONS -T "$W" | head -1)"
  dev=$(findmnt -n -o SOURCE -T "$W" | head -1 | sed 's|^/dev/||')
  if [ -e "/sys/block/$dev/queue/rotational" ]; then
    echo "disk	/dev/$dev, rotational=$(cat "/sys/block/$dev/queue/rotational"), $(lsblk -dno SIZE "/dev/$dev" 2>/dev/null | tr -d ' ')"
  fi
  # Proactive reclaim (DAMON, e.g. in Firecracker VMs) pages out memory left
  # idle for a while, page cache included: "warm cache" then needs re-warming.
  for k in /sys/kernel/mm/damon/admin/kdamonds/[0-9]*; do
    [ "$(cat "$k/state" 2>/dev/null)" = on ] || continue
    for sch in "$k"/contexts/*/schemes/*; do
      [ "$(cat "$sch/action" 2>/dev/null)" = pageout ] || continue
      age=$(cat "$sch/access_pattern/age/min")
      aggr=$(cat "$(dirname "$(dirname "$sch")")/monitoring_attrs/intervals/aggr_us")
      echo "reclaim	DAMON pageout of memory idle for $((age * aggr / 1000000)) s or more (kdamond on)"
    done
  done
  echo "workdir	$W"
  echo "load_start	$(cut -d' ' -f1-3 /proc/loadavg)"
  [ -f "$R/idle.tsv" ] && cat "$R/idle.tsv"
  echo "tar	$(tar --version | head -1)"
  echo "bsdtar	$(bsdtar --version)"
  echo "hyperfine	$(hyperfine --version)"
  echo "gzip	$(gzip --version | head -1)"
  echo "python	$("$py" -c 'import sys, zlib; print(sys.version.split()[0], "(zlib " + zlib.ZLIB_RUNTIME_VERSION + ")")') ($(command -v "$py"))"
  echo "shardset	$("$ss" --version 2>/dev/null | head -1)"
  echo "compiler	$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt") $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")"
  echo "commit	$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$([ -z "$(git -C "$repo" status --porcelain 2>/dev/null | head -1)" ] || echo ' (with uncommitted changes)')"
} >"$R/machine.tsv"

# ---- corpora ----------------------------------------------------------------
# small: random 1-4 KiB files in 1,000 folders; fmnist: the Fashion-MNIST PNG tree.
# A corpus already in the work folder with the same parameters is reused; its
# command is still recorded (marked as reused) so RESULTS.md shows how it was made.
make_corpus() {  # name params command...
  local name=$1 params=$2
  shift 2
  if [ "$(cat "$W/corpus/$name.params" 2>/dev/null)" = "$params" ]; then
    printf '# reused from an earlier run with the same parameters: ' >>"$cmdlog"
    printf '%q ' "$@" | sed 's/ $//' >>"$cmdlog"
    printf '\n' >>"$cmdlog"
    return
  fi
  log "corpus $name: $params"
  rm -rf "$W/corpus/$name" "$W/corpus/$name.params"
  run "$@" >&2
  echo "$params" >"$W/corpus/$name.params"
}
small_params="files=$small_files dirs=$small_dirs size=$small_min-$small_max seed=$small_seed"
corpora=()
if has_part core || has_part archives || has_part shuffle || has_part loader; then
  make_corpus small "$small_params" \
    "$build_dir/shardset_bench_corpus" --files "$small_files" --dirs "$small_dirs" \
    --min-size "$small_min" --max-size "$small_max" --seed "$small_seed" "$W/corpus/small"
  corpora=(small)
fi
if has_part core || has_part views || has_part loader || has_part mount; then
  if [ "$fmnist_limit" -gt 0 ]; then
    make_corpus fmnist "limit=$fmnist_limit" "$build_dir/fashion_mnist_png" --limit "$fmnist_limit" "$W/corpus/fmnist"
  else
    make_corpus fmnist "limit=all" "$build_dir/fashion_mnist_png" "$W/corpus/fmnist"
  fi
fi
if has_part core; then
  big_params="files=$big_files dirs=$large_dirs size=$large_min-$large_max seed=$small_seed"
  make_corpus big "$big_params" \
    "$build_dir/shardset_bench_corpus" --files "$big_files" --dirs "$large_dirs" \
    --min-size "$large_min" --max-size "$large_max" --seed "$small_seed" "$W/corpus/big"
  corpora=(small fmnist big)
fi
for c in "${corpora[@]}"; do
  src=$W/corpus/$c
  files=$(find "$src" -type f | wc -l)
  bytes=$(find "$src" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}')
  dirs=$(find "$src" -mindepth 1 -type d | wc -l)
  disk=$(du -s --block-size=1 "$src" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$files" "$bytes" "$dirs" "$disk" >>"$R/corpus.tsv"
done

# Reads every byte of the given files or folders once, so the page cache holds
# them (proactive reclaim may have dropped what sat idle).
warm() { find "$@" -type f -exec cat {} + >/dev/null; }

# Times the commands of $R/commands-TAG.tsv (name <TAB> output <TAB> command)
# with hyperfine: one call per round, one run of each command per round, the
# order reversed every other round, so that on a machine whose load drifts
# every command sees the same conditions (hyperfine alone runs all of one
# command's runs back to back). PREPARE runs before every run, untimed.
# report.py merges the rounds (hyperfine-TAG-ROUND.json).
hyperfine_rounds() {  # tag rounds prepare
  local tag=$1 rounds=$2 prep=$3 round warmup order hf name cmd
  for ((round = 1; round <= rounds; round++)); do
    warmup=0
    [ "$round" = 1 ] && warmup=1
    hf=(hyperfine --style basic --warmup "$warmup" --runs 1 --prepare "$prep"
        --export-json "$R/hyperfine-$tag-$round.json")
    if ((round % 2)); then order=(cat); else order=(tac); fi
    while IFS=$'\t' read -r name _ cmd; do hf+=(-n "$name" "$cmd"); done < <("${order[@]}" "$R/commands-$tag.tsv")
    run "${hf[@]}" >"$R/hyperfine-$tag-$round.log" 2>&1 || { cat "$R/hyperfine-$tag-$round.log" >&2; exit 1; }
  done
}

if has_part core; then
  # ---- pack: hyperfine, peak RSS, sizes -------------------------------------
  # name <TAB> output path <TAB> command; $SRC/$OUT are filled in per corpus.
  # Every run starts from an empty output folder with no dirty pages pending
  # (prepare: rm + sync), so no run pays for the previous run's writeback.
  commands() {  # corpus src
    local c=$1 src=$2 o=$W/out
    printf '%s\t%s\t%s\n' \
      "tar cf" "$o/$c.tar" "tar cf $o/$c.tar -C $src ." \
      "bsdtar cf" "$o/$c.bsdtar.tar" "bsdtar cf $o/$c.bsdtar.tar -C $src ." \
      "shardset pack --jobs 1" "$o/$c-j1" "$ss pack $src -o $o/$c-j1 -q --jobs 1" \
      "shardset pack --jobs 2" "$o/$c-j2" "$ss pack $src -o $o/$c-j2 -q --jobs 2" \
      "shardset pack --jobs 1 --no-sync" "$o/$c-j1ns" "$ss pack $src -o $o/$c-j1ns -q --jobs 1 --no-sync" \
      "shardset pack --jobs 2 --no-sync" "$o/$c-j2ns" "$ss pack $src -o $o/$c-j2ns -q --jobs 2 --no-sync" \
      "shardset pack --format tar --jobs 2" "$o/$c-tarfmt" "$ss pack $src -o $o/$c-tarfmt -q --format tar --jobs 2" \
      "LMDB (py-lmdb)" "$o/$c.lmdb" "$py $repo/bench/lmdb_peers.py make $src $o/$c.lmdb" \
      "zipfile (stored)" "$o/$c.zip" "$py $repo/bench/archive_peers.py make-zip $src $o/$c.zip --method stored"
  }
  prepare="rm -rf $W/out && mkdir $W/out && sync"

  for c in "${corpora[@]}"; do
    src=$W/corpus/$c
    commands "$c" "$src" >"$R/commands-$c.tsv"
    warm "$src"
    log "pack $c: hyperfine, $runs rounds of one run per command"
    hyperfine_rounds "$c" "$runs" "$prepare"

    log "pack $c: peak RSS (GNU time) and output sizes"
    while IFS=$'\t' read -r name path cmd; do
      bash -c "$prepare"
      # shellcheck disable=SC2086  # the command is split on spaces, as hyperfine's shell does
      run /usr/bin/time -f '%M %e %U %S' -o "$R/time.tmp" $cmd >/dev/null
      size=$(du -s --apparent-size --block-size=1 "$path" | cut -f1)
      read -r rss el us sy <"$R/time.tmp"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$name" "$rss" "$el" "$us" "$sy" "$size" >>"$R/rss.tsv"
      case "$name" in
        "shardset pack --jobs 2") mv "$path" "$W/keep/$c-native" ;;
        "shardset pack --format tar --jobs 2") mv "$path" "$W/keep/$c-tar" ;;
        "LMDB (py-lmdb)") mv "$path" "$W/keep/$c.lmdb" ;;
      esac
    done <"$R/commands-$c.tsv"
  done

  # ---- profile: where pack's CPU time goes ----------------------------------
  perf_freq=1000
  if command -v perf >/dev/null && perf record -q -e cpu-clock -o "$R/perf-probe.data" true >/dev/null 2>&1; then
    printf 'freq\t%s\ncorpus\tsmall\n' "$perf_freq" >"$R/perf.tsv"
    log "profile: perf record of tar cf and shardset pack on the small corpus"
    warm "$W/corpus/small"
    while IFS=$'\t' read -r name _ cmd; do
      case "$name" in
        "tar cf") tag=tar ;;
        "shardset pack --jobs 1") tag=pack-j1 ;;
        "shardset pack --jobs 2") tag=pack-j2 ;;
        *) continue ;;
      esac
      bash -c "$prepare"
      # shellcheck disable=SC2086
      run perf record -q -e cpu-clock -F "$perf_freq" -g -o "$R/perf-$tag.data" -- $cmd >/dev/null 2>&1
      perf script -i "$R/perf-$tag.data" -F comm,ip,sym,dso >"$R/perf-$tag.txt" 2>/dev/null
    done <"$R/commands-small.tsv"
  else
    printf 'skipped\tperf cannot sample cpu-clock on this machine (or is not installed)\n' >"$R/perf.tsv"
  fi
  rm -f "$R/perf-probe.data"
  rm -rf "$W/out"

  # ---- read: Google Benchmark -----------------------------------------------
  for c in "${corpora[@]}"; do
    log "read $c: native dataset and loose files"
    warm "$W/keep/$c-native" "$W/corpus/$c"
    warm "$W/keep/$c.lmdb"
    run "$build_dir/shardset_read_bench" --dataset="$W/keep/$c-native" --tree="$W/corpus/$c" \
      --lmdb="$W/keep/$c.lmdb" "${bench_args[@]}" --benchmark_out="$R/read-$c-native.json" \
      --benchmark_out_format=json >&2
    log "read $c: tar-format dataset"
    warm "$W/keep/$c-tar"
    run "$build_dir/shardset_read_bench" --dataset="$W/keep/$c-tar" --benchmark_filter='^Dataset/' \
      "${bench_args[@]}" --benchmark_out="$R/read-$c-tar.json" --benchmark_out_format=json >&2
  done

  # ---- read: the page cache's own speed (dd bs=1M of the shards) -----------
  # Goal 2 of issue 7: sequential reads of large samples next to what the
  # page cache gives a plain copy. Whole processes (hyperfine); the shards'
  # bytes over the median.
  shards=$(find "$W/keep/big-native" -name '*.shard' | sort | tr '\n' ' ')
  printf '%s\t%s\t%s\n' \
    "dd bs=1M of the shards" "-" "sh -c 'for f in $shards; do dd if=\$f of=/dev/null bs=1M status=none; done'" \
    "cat of the shards" "-" "sh -c 'cat $shards >/dev/null'" >"$R/commands-pagecache.tsv"
  du -s --apparent-size --block-size=1 $shards | awk '{s += $1} END {printf "%.0f\n", s}' >"$R/pagecache-bytes.txt"
  warm "$W/keep/big-native"
  log "read big: dd and cat of the shards, $runs round(s)"
  hyperfine_rounds pagecache "$runs" true

  # ---- read from Python: py-lmdb next to the shardset package --------------
  # Goals 1 and 3: LMDB's cursor scan and random gets (the same 10,000 picks
  # as read_bench), and the same through `import shardset`.
  run bash "$repo/scripts/python-env.sh" >&2
  vpy=${SHARDSET_VENV:-$repo/.venv}/bin/python
  for c in small fmnist; do
    log "read $c from Python: py-lmdb and shardset"
    warm "$W/keep/$c.lmdb" "$W/keep/$c-native"
    run "$py" "$repo/bench/lmdb_peers.py" read "$W/keep/$c.lmdb" --out "$R/lmdb-$c.json" \
      --reps "$py_reps" >&2
    run "$vpy" "$repo/bench/lmdb_peers.py" shardset "$W/keep/$c-native" --out "$R/pyshardset-$c.json" \
      --reps "$py_reps" >&2
  done
fi

# ---- archives in place: tar.gz, zip, tsv next to tar, bsdtar and Python --------
if has_part archives; then
  cmdlog=$R/commands-archives.log
  # Inputs, kept in the corpus folder and reused like the corpora: a tar.gz
  # of image-like (random) and text-like files, made the way users make one
  # (GNU tar in name order through gzip -6: tar czf); a stored and a deflated
  # zip and a seed-002 TSV (key, base64; .lineidx.8b) of the small corpus,
  # written with Python's zipfile and file objects.
  mixed_params="files=$mixed_files dirs=$mixed_dirs size=$mixed_min-$mixed_max text=$mixed_text seed=$small_seed"
  make_corpus mixed "$mixed_params" \
    "$build_dir/shardset_bench_corpus" --files "$mixed_files" --dirs "$mixed_dirs" \
    --min-size "$mixed_min" --max-size "$mixed_max" --text-percent "$mixed_text" --seed "$small_seed" \
    "$W/corpus/mixed"
  tgz=$W/corpus/mixed.tar.gz
  make_corpus mixed.tar.gz "$mixed_params" tar --sort=name -czf "$tgz" -C "$W/corpus/mixed" .
  peers=$repo/bench/archive_peers.py
  for z in stored deflated; do
    make_corpus "small-$z.zip" "$small_params" \
      "$py" "$peers" make-zip "$W/corpus/small" "$W/corpus/small-$z.zip" --method "$z"
  done
  make_corpus small.tsv "$small_params" "$py" "$peers" make-tsv "$W/corpus/small" "$W/corpus/small.tsv"

  log "archives: shardset index of the tar.gz"
  run "$ss" index "$tgz" >&2
  {
    printf 'mixed\t%s\t%s\n' "$(find "$W/corpus/mixed" -type f | wc -l)" \
      "$(find "$W/corpus/mixed" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}')"
    printf 'tgz\t%s\n' "$(stat -c %s "$tgz")"
    # gzip -l's size is modulo 4 GiB: right for this file.
    printf 'tar\t%s\n' "$(gzip -lq "$tgz" | awk '{print $2}')"
    printf 'sidecar\t%s\n' "$(stat -c %s "$tgz.idx")"
    printf 'files\t%s\n' "$(find "$W/corpus/small" -type f | wc -l)"
    for f in small-stored.zip small-deflated.zip small.tsv small.lineidx.8b; do
      printf '%s\t%s\n' "$f" "$(stat -c %s "$W/corpus/$f")"
    done
    printf 'members\t%s\nrounds\t%s\nwhole_rounds\t%s\ntgz_picks\t%s\npy_reps\t%s\n' \
      "$arch_members" "$arch_rounds" "$arch_whole_rounds" "$tgz_picks" "$py_reps"
  } >"$R/archives.tsv"

  # Whole file: inflate alone (the floor), index, and extraction by shardset,
  # GNU tar and bsdtar. None of them fsyncs what it extracts; before every run
  # the outputs are deleted and sync runs, so no run pays an earlier one's
  # writeback.
  o=$W/out
  printf '%s\t%s\t%s\n' \
    "gzip -dc" "-" "gzip -dc $tgz" \
    "shardset index" "$tgz.idx" "$ss index $tgz" \
    "shardset extract" "$o/ss" "$ss extract $tgz -o $o/ss -q" \
    "tar xzf" "$o/tar" "tar xzf $tgz -C $o/tar" \
    "bsdtar xf" "$o/bsdtar" "bsdtar xf $tgz -C $o/bsdtar" >"$R/commands-targz.tsv"
  prepare_x="rm -rf $o && mkdir -p $o/ss $o/tar $o/bsdtar && sync"
  warm "$tgz" "$tgz.idx"
  log "archives: the whole tar.gz, $arch_whole_rounds round(s) of one run per command"
  hyperfine_rounds targz "$arch_whole_rounds" "$prepare_x"
  log "archives: peak RSS (GNU time)"
  while IFS=$'\t' read -r name path cmd; do
    bash -c "$prepare_x"
    # shellcheck disable=SC2086  # the command is split on spaces, as hyperfine's shell does
    run /usr/bin/time -f '%M %e %U %S' -o "$R/time.tmp" $cmd >/dev/null
    size=0
    [ "$path" = - ] || size=$(du -s --apparent-size --block-size=1 "$path" | cut -f1)
    read -r rss el us sy <"$R/time.tmp"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' targz "$name" "$rss" "$el" "$us" "$sy" "$size" >>"$R/rss.tsv"
  done <"$R/commands-targz.tsv"
  rm -rf "$o"
  mkdir -p "$o"

  # One member at a time, whole processes: shardset cat (through the sidecar)
  # next to GNU tar and bsdtar told to stop at the member; wall time and the
  # bytes each process read (archive_peers.py members).
  log "archives: $arch_members members of the tar.gz one by one, $arch_rounds rounds"
  warm "$tgz" "$tgz.idx"
  run "$py" "$peers" members --shardset "$ss" --tgz "$tgz" --out "$R/members.json" --scratch "$o" \
    --members "$arch_members" --rounds "$arch_rounds" --cat-repeat "$arch_cat_repeat" >&2
  # The same reads in process, without process start-up (fewer picks: each
  # inflates from a checkpoint).
  run "$build_dir/shardset_read_bench" --dataset="$tgz" --random-picks="$tgz_picks" \
    --benchmark_filter='^Dataset/(IndexOpen|RandomRead)' "${bench_args[@]}" \
    --benchmark_out="$R/read-targz.json" --benchmark_out_format=json >&2

  # In process, warm page cache: read_bench (C++, Dataset API) and the Python
  # readers, on the same 10,000 random entries (same SplitMix64 seeds).
  for z in stored deflated; do
    log "archives: $z zip, C++ and Python zipfile"
    warm "$W/corpus/small-$z.zip"
    run "$build_dir/shardset_read_bench" --dataset="$W/corpus/small-$z.zip" \
      --benchmark_filter='^Dataset/(IndexOpen|RandomRead)' "${bench_args[@]}" \
      --benchmark_out="$R/read-zip-$z.json" --benchmark_out_format=json >&2
    run "$py" "$peers" zip-read "$W/corpus/small-$z.zip" --out "$R/py-zip-$z.json" \
      --reps "$py_reps" --open-reps "$py_reps" >&2
  done
  log "archives: tsv, C++ and Python seek + readline + base64"
  warm "$W/corpus/small.tsv" "$W/corpus/small.lineidx.8b"
  run "$build_dir/shardset_read_bench" --dataset="$W/corpus/small.tsv" \
    --benchmark_filter='^Dataset/(IndexOpen|RandomRead)' "${bench_args[@]}" \
    --benchmark_out="$R/read-tsv.json" --benchmark_out_format=json >&2
  run "$py" "$peers" tsv-read "$W/corpus/small.tsv" --out "$R/py-tsv.json" --reps "$py_reps" >&2
  cmdlog=$R/commands.log
fi

# ---- views: mix, split and read-back at 10M entries; views vs symlink trees ----
if has_part views; then
  cmdlog=$R/commands-views.log
  vb=$build_dir/shardset_view_bench
  vpeers=$repo/bench/view_peers.py
  # Two synthetic datasets written straight to native shards (a 9-byte key
  # and one 16-byte field per sample): millions of samples, no loose files.
  A=$W/corpus/views-a
  B=$W/corpus/views-b
  make_corpus views-a "samples=$view_a seed=1" "$vb" make-source "$A" --samples "$view_a" --prefix a --seed 1
  make_corpus views-b "samples=$view_b seed=2" "$vb" make-source "$B" --samples "$view_b" --prefix b --seed 2
  fm=$W/corpus/fmnist
  o=$W/out/views
  rm -rf "$o"
  mkdir -p "$o"
  view_total=$((view_count_a + view_count_b))
  {
    printf 'view_a\t%s\nview_b\t%s\nview_count_a\t%s\nview_count_b\t%s\n' \
      "$view_a" "$view_b" "$view_count_a" "$view_count_b"
    printf 'rounds\t%s\nreps\t%s\nrandom\t%s\n' "$view_rounds" "$view_reps" "$view_random"
    printf 'source_bytes_a\t%s\nsource_bytes_b\t%s\n' \
      "$(du -s --apparent-size --block-size=1 "$A" | cut -f1)" "$(du -s --apparent-size --block-size=1 "$B" | cut -f1)"
    printf 'fmnist_files\t%s\n' "$(find "$fm" -type f | wc -l)"
    printf 'fmnist_training\t%s\nfmnist_testing\t%s\n' \
      "$(find "$fm/training" -type f | wc -l)" "$(find "$fm/testing" -type f | wc -l)"
    printf 'fs_inodes\t%s\n' "$(df --output=itotal "$o" | tail -1 | tr -d ' ')"
    printf 'fs_bytes\t%s\n' "$(df --output=size -B1 "$o" | tail -1 | tr -d ' ')"
    # An ext4 journal shows as /proc/fs/jbd2/<device>-<n>.
    vdev=$(findmnt -n -o SOURCE -T "$o" | head -1 | sed 's|^/dev/||')
    printf 'fs_type\t%s\n' "$(findmnt -n -o FSTYPE -T "$o" | head -1)"
    if ls /proc/fs/jbd2 2>/dev/null | grep -q "^$vdev-"; then
      printf 'fs_journal\tyes\n'
    else
      printf 'fs_journal\tno\n'
    fi
  } >"$R/views.tsv"

  # Runs a command once under GNU time, after `sync` (so no run pays for an
  # earlier run's writeback; link's syncfs would), and records: name, round,
  # peak RSS KiB, elapsed, user and system seconds, apparent bytes of OUTPUT
  # (0 for -). GNU time's clock counts hundredths of a second, too coarse for
  # a mix of 70,000 samples: the elapsed time is bash's microsecond clock
  # around the GNU time process (its own start-up, ~1 ms, included). Only
  # the first round's command goes to the command log.
  timed() {  # name round output command...
    local name=$1 round=$2 output=$3 rss el us sy size=0 t0 t1
    shift 3
    sync
    t0=$EPOCHREALTIME
    if [ "$round" = 1 ]; then
      run /usr/bin/time -f '%M %e %U %S' -o "$R/time.tmp" "$@" >/dev/null
    else
      /usr/bin/time -f '%M %e %U %S' -o "$R/time.tmp" "$@" >/dev/null
    fi
    t1=$EPOCHREALTIME
    [ "$output" = - ] || size=$(du -s --apparent-size --block-size=1 "$output" | cut -f1)
    read -r rss el us sy <"$R/time.tmp"
    el=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rss" "$el" "$us" "$sy" "$size" >>"$R/views-time.tsv"
  }
  # Entries of a view file: the first 8 bytes of its 64-byte footer.
  view_entries() { od -An -t u8 -j $(($(stat -c %s "$1") - 64)) -N 8 "$1" | tr -d ' '; }
  # What a tree costs, measured two ways: view_peers.py tree-size (lstat of
  # every entry, symlink target lengths) and du / find.
  tree_cost() {  # tag dirs...
    local tag=$1
    shift
    run "$py" "$vpeers" tree-size "$@" --json "$R/views-tree-$tag.json"
    {
      printf 'find\t%s\n' "$(find "$@" | wc -l)"
      printf 'du_inodes\t%s\n' "$(du -s -c --inodes "$@" | tail -1 | cut -f1)"
      printf 'du_apparent\t%s\n' "$(du -s -c --apparent-size --block-size=1 "$@" | tail -1 | cut -f1)"
      printf 'du_disk\t%s\n' "$(du -s -c --block-size=1 "$@" | tail -1 | cut -f1)"
    } >"$R/views-du-$tag.tsv"
  }

  # A view of view_total entries out of view_a + view_b samples, by counts
  # and by fractions (the same selection: fractions are exact decimals),
  # split 0.8/0.1/0.1 from a dataset and from the view, and the numpy index
  # a user would otherwise keep.
  log "views: mix of $view_total entries from $view_a + $view_b samples, split, $view_rounds round(s)"
  warm "$A" "$B"
  for ((r = 1; r <= view_rounds; r++)); do
    rm -rf "$o/mix-count.view" "$o/mix-frac.view" "$o/split-a" "$o/split-mix" "$o/mix.npy"
    timed "mix counts" "$r" "$o/mix-count.view" \
      "$ss" mix "a=$A:$view_count_a" "b=$B:$view_count_b" -o "$o/mix-count.view" --seed 1 -q
    timed "mix fractions" "$r" "$o/mix-frac.view" \
      "$ss" mix "a=$A:0.6" "b=$B:0.8" -o "$o/mix-frac.view" --seed 1 -q
    timed "split dataset" "$r" "$o/split-a" \
      "$ss" split "$A" --ratios 0.8,0.1,0.1 -o "$o/split-a" --seed 1 -q
    timed "split view" "$r" "$o/split-mix" \
      "$ss" split "$o/mix-count.view" --ratios 0.8,0.1,0.1 -o "$o/split-mix" --seed 1 -q
    timed "numpy index" "$r" "$o/mix.npy" \
      "$py" "$vpeers" npy-mix "$o/mix.npy" --source "$view_a:$view_count_a" --source "$view_b:$view_count_b" --seed 1
  done
  for f in "$o/mix-count.view" "$o/mix-frac.view" "$o"/split-a/*.view "$o"/split-mix/*.view; do
    printf '%s\t%s\t%s\n' "${f#"$o"/}" "$(stat -c %s "$f")" "$(view_entries "$f")"
  done >"$R/views-files.tsv"
  printf 'mix.npy\t%s\t%s\n' "$(stat -c %s "$o/mix.npy")" "$view_total" >>"$R/views-files.tsv"

  log "views: read-back of the $view_total-entry view ($view_reps repetitions, $view_random random positions)"
  warm "$A" "$B" "$o/mix-count.view"
  timed "read back" 1 - "$vb" read "$o/mix-count.view" --random "$view_random" --reps "$view_reps" \
    --sequential --json "$R/views-read.json"
  warm "$o/mix.npy"
  timed "numpy index read back" 1 - "$py" "$vpeers" npy-read "$o/mix.npy" --random "$view_random" \
    --json "$R/views-npy-read.json"
  rm -f "$o/mix.npy"

  # Fashion-MNIST: the folders become datasets in place (indexed once), then
  # seed 000's mix (all of one source + 10% of the other) as a view, as a
  # list of paths, and as symlink trees made three ways: seed 000's Python
  # (os.makedirs + os.symlink, from the same list, so the same selection),
  # shardset link (syncfs of the tree before it is renamed into place) and
  # shardset link --no-sync. Trees of every round are kept until the end:
  # an ext4 without a journal (like this VM's) skips inodes deleted in the
  # last minute or more when it allocates new ones (recently_deleted), so
  # deleting a tree right before making the next would slow the next one.
  # The tree commands run in alternating order.
  log "views: Fashion-MNIST as datasets; a mix as a view, a list and symlink trees, $view_rounds round(s)"
  warm "$fm"
  timed "dataset create training" 1 "$o/fm-train" \
    "$ss" dataset create "$o/fm-train" --shards "$fm/training" --label-from-dir -q
  timed "dataset create testing" 1 "$o/fm-test" \
    "$ss" dataset create "$o/fm-test" --shards "$fm/testing" --label-from-dir -q
  mkdir -p "$o/trees"
  make_tree() {  # tool round
    case "$1" in
      py) timed "seed000 link" "$2" "$o/trees/py-$2" \
            "$py" "$vpeers" seed000-link "$o/fm-mix.txt" "$fm" "$o/trees/py-$2" ;;
      link) timed "link" "$2" "$o/trees/link-$2" \
              "$ss" link "$o/fm-mix.view" -o "$o/trees/link-$2" --mode symlink --layout original -q ;;
      linkns) timed "link --no-sync" "$2" "$o/trees/linkns-$2" \
                "$ss" link "$o/fm-mix.view" -o "$o/trees/linkns-$2" --mode symlink --layout original -q --no-sync ;;
    esac
  }
  for ((r = 1; r <= view_rounds; r++)); do
    timed "mix" "$r" "$o/fm-mix.view" \
      "$ss" mix "test=$o/fm-test" "train=$o/fm-train:0.1" -o "$o/fm-mix.view" --seed 1 -q
    timed "list" "$r" "$o/fm-mix.txt" "$ss" list "$o/fm-mix.view" -o "$o/fm-mix.txt"
    timed "seed000 lists" "$r" "$o/py-lists-$r" \
      "$py" "$vpeers" seed000-lists "$o/py-lists-$r" --source "test=$fm/testing" \
      --source "train=$fm/training:0.1" --seed 1
    if ((r % 2)); then order=(py link linkns); else order=(linkns link py); fi
    for t in "${order[@]}"; do make_tree "$t" "$r"; done
  done
  printf 'fm-mix.view\t%s\t%s\n' "$(stat -c %s "$o/fm-mix.view")" "$(view_entries "$o/fm-mix.view")" >>"$R/views-files.tsv"
  printf 'fm-mix.txt\t%s\t%s\n' "$(stat -c %s "$o/fm-mix.txt")" "$(wc -l <"$o/fm-mix.txt")" >>"$R/views-files.tsv"
  for d in fm-train fm-test; do
    printf '%s\t%s\t-\n' "$d" "$(du -s --apparent-size --block-size=1 "$o/$d" | cut -f1)" >>"$R/views-files.tsv"
  done
  tree_cost mix-py "$o/trees/py-1"
  tree_cost mix-link "$o/trees/link-1"

  # Seed 000's whole family: the sweep 0%, 10%, ..., 100% of one source on
  # top of all of the other, as 11 views (one command) and as 11 symlink
  # trees (seed 000's two scripts: lists, then links; and shardset link of
  # each view). One run each; these trees and the ones above are deleted only
  # after all were made and measured (see above: deleting first would slow
  # the next).
  log "views: sweep of 11 mixes as views and as symlink trees"
  timed "sweep: mix --sweep" 1 "$o/fm-sweep" \
    "$ss" mix "test=$o/fm-test" "train=$o/fm-train" --sweep train=0:1:0.1 -o "$o/fm-sweep" --seed 1 -q
  timed "sweep: seed000 lists" 1 "$o/py-sweep" \
    "$py" "$vpeers" seed000-lists "$o/py-sweep" --source "test=$fm/testing" --source "train=$fm/training" \
    --sweep train=0:1:0.1 --seed 1
  timed "sweep: seed000 link" 1 "$o/sweep-py" bash -c \
    'mkdir "$5" && for l in "$1"/*.txt; do "$2" "$3" seed000-link "$l" "$4" "$5/$(basename "$l" .txt)" || exit 1; done' \
    _ "$o/py-sweep" "$py" "$vpeers" "$fm" "$o/sweep-py"
  timed "sweep: link" 1 "$o/sweep-link" bash -c \
    'mkdir "$2" && for v in "$1"/*.view; do "$3" link "$v" -o "$2/$(basename "$v" .view)" --mode symlink --layout original -q || exit 1; done' \
    _ "$o/fm-sweep" "$o/sweep-link" "$ss"
  tree_cost sweep-py "$o/sweep-py"
  tree_cost sweep-link "$o/sweep-link"
  rm -rf "$o/sweep-py" "$o/sweep-link" "$o/trees"
  for f in "$o"/fm-sweep/*.view; do
    printf 'sweep/%s\t%s\t%s\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(view_entries "$f")"
  done >>"$R/views-files.tsv"
  for f in "$o"/py-sweep/*.txt; do
    printf 'sweep-list/%s\t%s\t%s\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(wc -l <"$f")"
  done >>"$R/views-files.tsv"
  cmdlog=$R/commands.log
fi

# ---- shuffle: small and large samples, next to a copy and divide-and-merge ----
if has_part shuffle; then
  cmdlog=$R/commands-shuffle.log
  speers=$repo/bench/shuffle_peers.py
  large_params="files=$large_files dirs=$large_dirs size=$large_min-$large_max seed=$small_seed"
  make_corpus large "$large_params" \
    "$build_dir/shardset_bench_corpus" --files "$large_files" --dirs "$large_dirs" \
    --min-size "$large_min" --max-size "$large_max" --seed "$small_seed" "$W/corpus/large"
  # Inputs: a label-ordered tar (GNU tar in name order: one folder after the
  # other) and the same files packed as a native dataset.
  for c in small large; do
    params=$small_params
    [ "$c" = large ] && params=$large_params
    make_corpus "$c.tar" "$params" tar --sort=name -cf "$W/corpus/$c.tar" -C "$W/corpus/$c" .
    make_corpus "$c-ds" "$params" "$ss" pack "$W/corpus/$c" -o "$W/corpus/$c-ds" -q --no-sync
  done
  o=$W/out
  {
    for c in small large; do
      printf '%s_files\t%s\n' "$c" "$(find "$W/corpus/$c" -type f | wc -l)"
      printf '%s_bytes\t%s\n' "$c" "$(find "$W/corpus/$c" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}')"
      printf '%s_labels\t%s\n' "$c" "$(find "$W/corpus/$c" -mindepth 1 -maxdepth 1 -type d | wc -l)"
      printf '%s_tar\t%s\n' "$c" "$(stat -c %s "$W/corpus/$c.tar")"
      printf '%s_ds\t%s\n' "$c" "$(du -s --apparent-size --block-size=1 "$W/corpus/$c-ds" | cut -f1)"
    done
    printf 'rounds\t%s\nmemory_small\t%s\nmemory_large\t%s\n' "$shuffle_rounds" \
      "$shuffle_memory_small" "$shuffle_memory_large"
  } >"$R/shuffle.tsv"
  # Nobody fsyncs here (cp, GNU tar, tarfile do not), so shardset runs with
  # --no-sync too; before every run the outputs go and sync runs, so no run
  # pays for an earlier one's writeback.
  prepare_s="rm -rf $o && mkdir -p $o/dm && sync"
  for c in small large; do
    in_tar=$W/corpus/$c.tar
    in_ds=$W/corpus/$c-ds
    printf '%s\t%s\t%s\n' \
      "cp (the floor)" "$o/copy.tar" "cp $in_tar $o/copy.tar" \
      "shardset shuffle tar -> tar" "$o/s.tar" "$ss shuffle $in_tar -o $o/s.tar --seed 1 -q --no-sync" \
      "shardset shuffle native -> native" "$o/s-ds" "$ss shuffle $in_ds -o $o/s-ds --seed 1 -q --no-sync" \
      "shardset shuffle native -> native, scatter-gather" "$o/sg-ds" "$ss shuffle $in_ds -o $o/sg-ds --method scatter-gather --seed 1 -q --no-sync" \
      "shardset shuffle --interleave-by dir" "$o/il.tar" "$ss shuffle $in_tar -o $o/il.tar --interleave-by dir --seed 1 -q --no-sync" \
      "shardset shuffle --view" "$o/s.view" "$ss shuffle $in_ds -o $o/s.view --view --seed 1 -q --no-sync" \
      "divide (GNU tar) + merge (tarfile)" "$o/dm.tar" "$py $speers divide-merge $in_tar $o/dm $o/dm.tar" \
      >"$R/commands-shuffle-$c.tsv"
    warm "$in_tar" "$in_ds"
    log "shuffle $c: hyperfine, $shuffle_rounds round(s) of one run per command"
    hyperfine_rounds "shuffle-$c" "$shuffle_rounds" "$prepare_s"

    # Once more each: the outputs' order by label, the peers' stage times and
    # peak RSS (GNU time), sizes.
    log "shuffle $c: order of each output, divide-and-merge stages, peak RSS"
    bash -c "$prepare_s"
    run "$ss" info --order "$in_tar" --by dir --json -q >"$R/shuffle-order-$c-input.json"
    while IFS=$'\t' read -r name path cmd; do
      bash -c "$prepare_s"
      case "$name" in
        divide*) cmd="$cmd --times $R/shuffle-stages-$c.json" ;;
      esac
      # shellcheck disable=SC2086  # the command is split on spaces, as hyperfine's shell does
      run /usr/bin/time -f '%M %e %U %S' -o "$R/time.tmp" $cmd >/dev/null
      read -r rss el us sy <"$R/time.tmp"
      size=$(du -s --apparent-size --block-size=1 "$path" | cut -f1)
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$name" "$rss" "$el" "$us" "$sy" "$size" >>"$R/shuffle-rss.tsv"
      case "$name" in
        cp*) ;;
        *) run "$ss" info --order "$path" --by dir --json -q >"$R/shuffle-order-$c-${path##*/}.json" ;;
      esac
      case "$name" in
        "shardset shuffle native -> native") rm -rf "$W/keep/$c-s-ds"; mv "$path" "$W/keep/$c-s-ds" ;;
      esac
    done <"$R/commands-shuffle-$c.tsv"

    # Peak memory against --memory, the data several times larger: native ->
    # native, anonymous and file-backed memory polled (shuffle_peers.py peak).
    # Scatter-gather, the method that holds samples in memory (direct holds
    # only a slice of the order).
    for m in $( [ "$c" = small ] && echo "$shuffle_memory_small" || echo "$shuffle_memory_large"); do
      log "shuffle $c: peak memory with --memory $m"
      bash -c "$prepare_s"
      run "$py" "$speers" peak "$R/shuffle-peak-$c-$m.json" -- \
        "$ss" shuffle "$in_ds" -o "$o/m" --seed 1 --memory "$m" --method scatter-gather \
        --no-sync -q --json >&2
    done

    # Reading the shuffled order back in order (shardset_view_bench scan:
    # View::Read of every sample, checksums checked): the shuffled shards
    # stream, the view jumps around the source; the source in its own order
    # is the floor. Warm page cache, and cold (caches dropped before each
    # run) where this machine lets us.
    rm -rf "$W/keep/$c-s.view"
    run "$ss" shuffle "$in_ds" -o "$W/keep/$c-s.view" --view --seed 1 -q --no-sync
    vb=$build_dir/shardset_view_bench
    printf '%s\t%s\t%s\n' \
      "scan: the source in its order" "-" "$vb scan $in_ds" \
      "scan: shuffled shards" "-" "$vb scan $W/keep/$c-s-ds" \
      "scan: shuffled view" "-" "$vb scan $W/keep/$c-s.view" >"$R/commands-shuffle-read-$c.tsv"
    cp "$R/commands-shuffle-read-$c.tsv" "$R/commands-shuffle-cold-$c.tsv"
    warm "$W/keep/$c-s-ds" "$in_ds"
    log "shuffle $c: reading the shuffled order back, warm, $shuffle_rounds round(s)"
    hyperfine_rounds "shuffle-read-$c" "$shuffle_rounds" "true"
    if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
      log "shuffle $c: reading the shuffled order back, cold, $shuffle_rounds round(s)"
      hyperfine_rounds "shuffle-cold-$c" "$shuffle_rounds" "sync; echo 3 > /proc/sys/vm/drop_caches"
    fi
    rm -rf "$W/keep/$c-s-ds" "$W/keep/$c-s.view" "$o"
    mkdir -p "$o"
  done
  cmdlog=$R/commands.log
fi

# ---- loader: PyTorch loading next to ImageFolder, WebDataset, MosaicML ---------
if has_part loader; then
  cmdlog=$R/commands-loader.log
  run bash "$repo/scripts/python-env.sh" --bench >&2
  vpy=${SHARDSET_VENV:-$repo/.venv}/bin/python
  lw=$W/corpus/loader
  if [ "$mode" = short ]; then loader_reps=1; loader_epochs=1; else loader_reps=3; loader_epochs=2; fi
  log "loader: inputs (native dataset, WebDataset tars, MDS shards of Fashion-MNIST training)"
  run "$vpy" "$repo/bench/loader_bench.py" prepare "$W/corpus/fmnist" "$lw" --shardset "$ss" >&2
  log "loader: one epoch per loader, $loader_reps round(s)"
  run "$vpy" "$repo/bench/loader_bench.py" run "$lw" --out "$R/loader.json" --workers 2 \
    --batch 256 --reps "$loader_reps" >&2
  # shardset.torch's orders on the small corpus stored in folder order: cold
  # epochs and how shuffled each order is.
  make_corpus small-ds "$small_params" "$ss" pack "$W/corpus/small" -o "$W/corpus/small-ds" -q --no-sync
  log "loader: orders none, blocks, uniform on the small corpus, $loader_reps round(s)"
  run "$vpy" "$repo/bench/loader_bench.py" locality "$W/corpus/small-ds" --out "$R/locality.json" \
    --reps "$loader_reps" >&2
  # The example CNN, shuffled per epoch and in the stored (label-sorted) order.
  run "$ss" pack "$W/corpus/fmnist/testing" -o "$lw/test" --label-from-dir -q --no-sync
  for order in uniform none; do
    log "loader: train_fashion_mnist.py --order $order, $loader_epochs epoch(s)"
    run "$vpy" "$repo/python/examples/train_fashion_mnist.py" --train "$lw/native" --test "$lw/test" \
      --epochs "$loader_epochs" --workers 2 --order "$order" >"$R/train-$order.jsonl"
  done
  cmdlog=$R/commands.log
fi

# ---- mount: every file through shardset mount, next to loose files and ratarmount ----
if has_part mount; then
  cmdlog=$R/commands-mount.log
  mnt=$W/mnt
  if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
    # No FUSE here (a container without /dev/fuse): nothing to measure.
    printf 'skipped\tno /dev/fuse or fusermount3 on this machine\n' >"$R/mount.tsv"
  else
    # ratarmount (PyPI, in the venv: scripts/python-env.sh --bench). The
    # short run goes on without it if it cannot be installed.
    if ! run bash "$repo/scripts/python-env.sh" --bench >&2 && [ "$mode" != short ]; then
      echo "bench/run.sh: scripts/python-env.sh --bench failed (ratarmount)" >&2
      exit 1
    fi
    rat=${SHARDSET_VENV:-$repo/.venv}/bin/ratarmount
    has_rat=0
    "$rat" --version >/dev/null 2>&1 && has_rat=1
    [ "$has_rat" = 1 ] || [ "$mode" = short ] || {
      echo "bench/run.sh: $rat does not run" >&2
      exit 1
    }
    if [ "$fmnist_limit" -gt 0 ]; then fm_params="limit=$fmnist_limit"; else fm_params="limit=all"; fi
    big_params="files=$big_files dirs=$large_dirs size=$large_min-$large_max seed=$small_seed"
    make_corpus big "$big_params" \
      "$build_dir/shardset_bench_corpus" --files "$big_files" --dirs "$large_dirs" \
      --min-size "$large_min" --max-size "$large_max" --seed "$small_seed" "$W/corpus/big"
    {
      printf 'rounds\t%s\nratarmount\t%s\n' "$mount_rounds" \
        "$([ "$has_rat" = 1 ] && "$rat" --version 2>/dev/null | head -1 || echo missing)"
      printf 'mfusepy\t%s\n' "$([ "$has_rat" = 1 ] && "$rat" --version 2>/dev/null | sed -n 's/^mfusepy //p' | head -1)"
      printf 'libfuse\t%s\n' "$(fusermount3 --version 2>&1 | sed 's/.*version: *//' | head -1)"
    } >"$R/mount.tsv"
    mkdir -p "$mnt/ss-tar" "$mnt/ss-ds" "$mnt/rat"
    # The same commands on every tree: read every file (find + xargs + cat),
    # ls -R (names only: readdir), stat of every file (find -printf %s %T@
    # stats each one).
    op_cmd() {  # op dir
      case "$1" in
        read) echo "find $2 -type f -print0 | xargs -0 cat > /dev/null" ;;
        ls) echo "ls -R $2 > /dev/null" ;;
        stat) echo "find $2 -printf '%s %T@\n' > /dev/null" ;;
      esac
    }
    for c in fmnist big; do
      src=$W/corpus/$c
      T=$W/corpus/$c.tar
      DS=$W/corpus/$c-ds
      params=$big_params
      [ "$c" = fmnist ] && params=$fm_params
      # A GNU tar of the tree (name order, as tar --sort=name makes it) and a
      # native dataset packed from the same tree.
      make_corpus "$c.tar" "$params" tar --sort=name -cf "$T" -C "$src" .
      make_corpus "$c-ds" "$params" "$ss" pack "$src" -o "$DS" -q --no-sync
      ss_tar_mount="$ss mount $T $mnt/ss-tar -q"
      ss_ds_mount="$ss mount $DS $mnt/ss-ds -q"
      rat_mount="$rat --index-file $T.index.sqlite $T $mnt/rat > /dev/null"
      ss_tar_umount="$ss umount $mnt/ss-tar"
      ss_ds_umount="$ss umount $mnt/ss-ds"
      rat_umount="fusermount3 -u $mnt/rat"

      # Indexing and mounting. Without an index (deleted before every run):
      # shardset index writes T.idx, ratarmount --no-mount T.index.sqlite;
      # a mount of the bare tar indexes it first (shardset in memory,
      # ratarmount writes its index). Then with the indexes in place.
      log "mount $c: index and mount+umount, $mount_rounds round(s)"
      rm -f "$T.idx" "$T.index.sqlite"
      warm "$T" "$DS"
      {
        printf '%s\t-\t%s\n' "shardset index" "$ss index $T" \
          "shardset mount + umount, tar without .idx" "$ss_tar_mount && $ss_tar_umount"
        [ "$has_rat" = 0 ] || printf '%s\t-\t%s\n' \
          "ratarmount --no-mount (index only)" "$rat --no-mount --index-file $T.index.sqlite $T > /dev/null" \
          "ratarmount + umount, tar without index" "$rat_mount && $rat_umount"
      } >"$R/commands-mount-index-$c.tsv"
      hyperfine_rounds "mount-index-$c" "$mount_rounds" "rm -f $T.idx $T.index.sqlite"
      run "$ss" index "$T" >&2
      [ "$has_rat" = 0 ] || run "$rat" --no-mount --index-file "$T.index.sqlite" "$T" >/dev/null
      {
        printf '%s\t-\t%s\n' "shardset mount + umount, tar with .idx" "$ss_tar_mount && $ss_tar_umount" \
          "shardset mount + umount, native dataset" "$ss_ds_mount && $ss_ds_umount"
        [ "$has_rat" = 0 ] || printf '%s\t-\t%s\n' \
          "ratarmount + umount, tar with its index" "$rat_mount && $rat_umount"
      } >"$R/commands-mount-mount-$c.tsv"
      hyperfine_rounds "mount-mount-$c" "$mount_rounds" true

      # A fresh mount per run: mount, one pass (read every file, or stat
      # every file), umount; the loose files' pass next to it. The tar and
      # the shards are in the page cache; the mount's own caches are empty.
      log "mount $c: fresh mount + first pass, $mount_rounds round(s)"
      warm "$src" "$T" "$DS"
      {
        for op in read stat; do
          printf '%s\t-\t%s\n' "$op: loose files" "$(op_cmd "$op" "$src")" \
            "$op: shardset mount, tar" "$ss_tar_mount && $(op_cmd "$op" "$mnt/ss-tar"); $ss_tar_umount" \
            "$op: shardset mount, native dataset" "$ss_ds_mount && $(op_cmd "$op" "$mnt/ss-ds"); $ss_ds_umount"
          [ "$has_rat" = 0 ] || printf '%s\t-\t%s\n' \
            "$op: ratarmount, tar" "$rat_mount && $(op_cmd "$op" "$mnt/rat"); $rat_umount"
        done
      } >"$R/commands-mount-fresh-$c.tsv"
      hyperfine_rounds "mount-fresh-$c" "$mount_rounds" true

      # Mounted once, warm: every file read once through each mount first
      # (hyperfine's warm-up run does it again), then the same passes.
      log "mount $c: mounted, warm page cache, $mount_rounds round(s)"
      run bash -c "$ss_tar_mount" >&2
      run bash -c "$ss_ds_mount" >&2
      [ "$has_rat" = 0 ] || run bash -c "$rat_mount" >&2
      dirs=("loose files" "$src" "shardset mount, tar" "$mnt/ss-tar" "shardset mount, native dataset" "$mnt/ss-ds")
      [ "$has_rat" = 0 ] || dirs+=("ratarmount, tar" "$mnt/rat")
      {
        for op in read ls stat; do
          for ((i = 0; i < ${#dirs[@]}; i += 2)); do
            printf '%s\t-\t%s\n' "$op: ${dirs[i]}" "$(op_cmd "$op" "${dirs[i + 1]}")"
          done
        done
      } >"$R/commands-mount-warm-$c.tsv"
      for ((i = 0; i < ${#dirs[@]}; i += 2)); do bash -c "$(op_cmd read "${dirs[i + 1]}")"; done
      hyperfine_rounds "mount-warm-$c" "$mount_rounds" true
      bash -c "$ss_tar_umount"
      bash -c "$ss_ds_umount"
      [ "$has_rat" = 0 ] || bash -c "$rat_umount"

      # Each server once more in the foreground under GNU time: mount, a
      # listing with sizes and a read of every file (both checksummed, so the
      # three trees are compared with the loose files), memory from
      # /proc/PID/status, umount. Peak RSS, CPU of the server process.
      log "mount $c: the servers' peak RSS and CPU; the trees compared"
      tree_sums() {  # dir -> "files-cksum content-cksum"
        (cd "$1" && printf '%s %s\n' "$(find . -type f -printf '%P %s\n' | LC_ALL=C sort | cksum | tr ' ' :)" \
          "$(find . -type f -print0 | LC_ALL=C sort -z | xargs -0 cat | cksum | tr ' ' :)")
      }
      printf '%s\tloose files\t-\t-\t-\t-\t-\t-\t%s\n' "$c" "$(tree_sums "$src" | tr ' ' '\t')" >>"$R/mount-servers.tsv"
      servers=("shardset mount, tar" "ss-tar" "$ss mount -f -q $T $mnt/ss-tar"
               "shardset mount, native dataset" "ss-ds" "$ss mount -f -q $DS $mnt/ss-ds")
      [ "$has_rat" = 0 ] || servers+=("ratarmount, tar" "rat" "$rat -f --index-file $T.index.sqlite $T $mnt/rat")
      for ((i = 0; i < ${#servers[@]}; i += 3)); do
        name=${servers[i]}
        m=$mnt/${servers[i + 1]}
        # Recorded as run() does; started directly so that $! is GNU time's
        # pid (its child is the server).
        echo "/usr/bin/time -f '%M %e %U %S' -o $R/time.tmp ${servers[i + 2]} &" >>"$cmdlog"
        # shellcheck disable=SC2086  # the command is split on spaces
        /usr/bin/time -f '%M %e %U %S' -o "$R/time.tmp" ${servers[i + 2]} >"$R/server.log" 2>&1 &
        tpid=$!
        for ((t = 0; t < 3000; t++)); do
          grep -qs " $m fuse" /proc/self/mounts && break
          kill -0 "$tpid" 2>/dev/null || break
          sleep 0.1
        done
        grep -qs " $m fuse" /proc/self/mounts || {
          cat "$R/server.log" >&2
          echo "bench/run.sh: $name did not mount $m" >&2
          exit 1
        }
        sums=$(tree_sums "$m")
        spid=$(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null | awk '{print $1}')
        anon=$(awk '/^RssAnon/ {print $2}' "/proc/$spid/status" 2>/dev/null || echo 0)
        file=$(awk '/^RssFile/ {print $2}' "/proc/$spid/status" 2>/dev/null || echo 0)
        case "$name" in ratarmount*) bash -c "$rat_umount" ;; *) "$ss" umount "$m" ;; esac
        wait "$tpid"
        read -r rss el us sy <"$R/time.tmp"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$name" "$rss" "$el" "$us" "$sy" "${anon:-0}" "${file:-0}" \
          "$(echo "$sums" | tr ' ' '\t')" >>"$R/mount-servers.tsv"
      done
      printf '%s_files\t%s\n%s_bytes\t%s\n%s_dirs\t%s\n' \
        "$c" "$(find "$src" -type f | wc -l)" \
        "$c" "$(find "$src" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}')" \
        "$c" "$(find "$src" -mindepth 1 -type d | wc -l)" >>"$R/mount.tsv"
      printf '%s_tar\t%s\n%s_ds\t%s\n%s_idx\t%s\n' "$c" "$(stat -c %s "$T")" \
        "$c" "$(du -s --apparent-size --block-size=1 "$DS" | cut -f1)" "$c" "$(stat -c %s "$T.idx")" >>"$R/mount.tsv"
      [ "$has_rat" = 0 ] || printf '%s_sqlite\t%s\n' "$c" "$(stat -c %s "$T.index.sqlite")" >>"$R/mount.tsv"
    done
    unmount_all
  fi
  cmdlog=$R/commands.log
fi

echo "load_end	$(cut -d' ' -f1-3 /proc/loadavg)" >>"$R/machine.tsv"

# ---- report -----------------------------------------------------------------
# Each part's raw results stay in the work folder (WORKDIR/saved/PART, the
# perf data left out): the Goals section of a later --only run draws on them.
for p in $parts; do
  rm -rf "$W/saved/$p"
  mkdir -p "$W/saved/$p"
  find "$R" -maxdepth 1 -type f ! -name 'perf-*.data' -exec cp {} "$W/saved/$p/" \;
done
status=0
if [ "$parts" != "core archives views shuffle loader mount" ] && [ -f "$out" ]; then
  # One part ran: its sections (and the goals) replace those in the results
  # file, whose other sections stay as an earlier run wrote them.
  python3 "$repo/bench/report.py" --splice "$out" --saved "$W/saved" "$R" >"$out.tmp" || status=$?
else
  python3 "$repo/bench/report.py" --saved "$W/saved" "$R" >"$out.tmp" || status=$?
fi
if [ "$status" = 0 ] || [ -s "$out.tmp" ]; then
  mv "$out.tmp" "$out"
else
  # The report itself failed: keep the old results file as it was.
  echo "bench/run.sh: report.py failed; $out is unchanged, the raw results are in $R" >&2
  keep=1
fi
if [ "$mode" = short ]; then
  cat "$out"
else
  log "wrote $out"
  sed -n '/^## Summary/,/^## /p' "$out" | sed '$d'
  sed -n '/^### Archives: summary/,/^### /p' "$out" | sed '$d'
  sed -n '/^### Views: summary/,/^### /p' "$out" | sed '$d'
  sed -n '/^### Shuffle: summary/,/^### /p' "$out" | sed '$d'
  sed -n '/^### Loading: summary/,/^### /p' "$out" | sed '$d'
fi
[ "$status" = 0 ] || echo "bench/run.sh: some results are missing or failed (see $out)" >&2
exit "$status"
