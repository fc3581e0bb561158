#!/usr/bin/env python3
"""LMDB next to shardset from Python (bench/run.sh --only core; issue 7
goals 1, 3 and 6): the same files as key -> value pairs in one LMDB (py-lmdb,
Debian's python3-lmdb), and the same reads through the shardset package.

  lmdb_peers.py make TREE OUT_DIR              files -> LMDB, key = relative path
  lmdb_peers.py read OUT_DIR --out X.json      cursor scan, random gets
  lmdb_peers.py shardset DATASET --out X.json  the same through shardset (Python)

Both sides hand out values as zero-copy views of a memory map (LMDB's
buffers=True memoryviews, shardset's memoryviews; `read_packed` copies a
batch into one buffer per field); a read takes its length
(touching bytes from Python would cost more than either read: the C++ side,
read_bench.cc, touches one byte per 64). Random reads are the same 10,000 SplitMix64 picks (seed 42) as
read_bench.cc and archive_peers.py: positions in path order, which is both
LMDB's key order and the dataset's sample order.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from archive_peers import random_picks, summary, timed_passes, tree_files, write_json  # noqa: E402

SEED = 42


def cmd_make(a):
    import lmdb
    files = tree_files(a.tree)
    total = sum(os.path.getsize(p) for _, p in files)
    env = lmdb.open(a.out, map_size=max(1 << 30, total * 3), sync=False, writemap=False)
    with env.begin(write=True) as txn:
        for rel, path in files:
            with open(path, "rb") as f:
                txn.put(rel.encode(), f.read())
    env.sync()
    env.close()
    print(f"{a.out}: {len(files)} entries")


def cmd_read(a):
    import lmdb
    env = lmdb.open(a.db, readonly=True, lock=False)
    with env.begin() as txn:
        keys = [k for k, _ in txn.cursor()]
    n = len(keys)
    nbytes = 0

    def scan():
        nonlocal nbytes
        nbytes = 0
        with env.begin(buffers=True) as txn:
            for _, v in txn.cursor():
                nbytes += len(v)

    picks = [keys[i] for i in random_picks(n, a.picks, SEED)]
    picked = 0

    def gets():
        nonlocal picked
        picked = 0
        with env.begin(buffers=True) as txn:
            for k in picks:
                v = txn.get(k)
                picked += len(v)

    scan_t = timed_passes(scan, a.reps)
    get_t = timed_passes(gets, a.reps)
    size = sum(os.path.getsize(os.path.join(a.db, f)) for f in os.listdir(a.db))
    write_json(a.out, {"entries": n, "file_bytes": size, "scan": summary(scan_t, n, nbytes),
                       "random_get": summary(get_t, len(picks), picked)})


def cmd_shardset(a):
    import shardset
    ds = shardset.open(a.dataset)
    n = len(ds)
    nbytes = 0

    def scan():
        nonlocal nbytes
        nbytes = 0
        for s in ds:
            for v in s.values():
                nbytes += len(v)

    def scan_packed():
        nonlocal nbytes
        nbytes = 0
        for start in range(0, n, 4096):
            for v in ds.read_packed(range(start, min(n, start + 4096))).values():
                if isinstance(v, tuple):
                    nbytes += int(v[1][-1])

    picks = random_picks(n, a.picks, SEED)
    keys = [ds.key(i) for i in picks]
    picked = 0

    def by_position():
        nonlocal picked
        picked = 0
        for i in picks:
            for v in ds[i].values():
                picked += len(v)

    def by_key():
        nonlocal picked
        picked = 0
        for k in keys:
            for v in ds.get(k).values():
                picked += len(v)

    scan_t = timed_passes(scan, a.reps)
    scan_bytes = nbytes
    packed_t = timed_passes(scan_packed, a.reps)
    pos_t = timed_passes(by_position, a.reps)
    key_t = timed_passes(by_key, a.reps)
    # LMDB checks nothing and a read that takes the length touches no value
    # byte; shardset's default checksum reads every byte. The same reads with
    # checksums off compare like with like.
    ds = shardset.open(a.dataset, verify_checksums=False)
    nocheck_scan_t = timed_passes(scan, a.reps)
    nocheck_pos_t = timed_passes(by_position, a.reps)
    write_json(a.out, {"entries": n, "scan": summary(scan_t, n, scan_bytes),
                       "scan_packed": summary(packed_t, n, scan_bytes),
                       "random_get": summary(pos_t, len(picks), picked),
                       "random_get_by_key": summary(key_t, len(picks), picked),
                       "scan_unchecked": summary(nocheck_scan_t, n, scan_bytes),
                       "random_get_unchecked": summary(nocheck_pos_t, len(picks), picked)})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    m = sub.add_parser("make")
    m.add_argument("tree")
    m.add_argument("out")
    r = sub.add_parser("read")
    r.add_argument("db")
    r.add_argument("--out", required=True)
    r.add_argument("--picks", type=int, default=10000)
    r.add_argument("--reps", type=int, default=5)
    s = sub.add_parser("shardset")
    s.add_argument("dataset")
    s.add_argument("--out", required=True)
    s.add_argument("--picks", type=int, default=10000)
    s.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    {"make": cmd_make, "read": cmd_read, "shardset": cmd_shardset}[a.verb](a)


if __name__ == "__main__":
    main()
