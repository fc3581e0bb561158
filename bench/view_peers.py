#!/usr/bin/env python3
"""The Python side of the views benchmark (bench/run.sh --only views): what
seed 000's user did instead of a view, and the measuring of symlink trees.

  view_peers.py seed000-lists OUT_DIR --source NAME=DIR[:FRACTION] ... [--sweep NAME=START:STOP:STEP]
                [--seed S] [--json FILE]
      Script 1 of seed 000: walk every source folder, pick a random fraction
      of its files and write one text file per mix, one absolute path per line
      (--sweep: one list per step, the sweeping source's files shuffled once
      and each step a longer prefix, so the lists nest as shardset's do).
  view_peers.py seed000-link LIST ROOT OUT
      Script 2 of seed 000: for every path in LIST, make OUT/<path relative to
      ROOT> a symlink to it (os.makedirs + os.symlink), no fsync.
  view_peers.py npy-mix OUT.npy --source N:K ... [--seed S]
      The usual hand-made index instead of a view (seed 002's "(part, row)
      index to shuffle or subsample"): K random rows without replacement of
      each source of N rows, sorted, as an int64 (source, row) array saved
      with numpy.save (16 bytes a row). numpy, not the standard library.
  view_peers.py npy-read FILE.npy [--random N] [--seed S] [--json FILE]
      Reads it back: numpy.load of the whole array, then N random rows
      (Python ints, as a loader's __getitem__ would take them).
  view_peers.py tree-size DIR... [--json FILE]
      What the trees cost: inodes (folders, symlinks, files), apparent bytes
      (lstat st_size: a symlink's is its target's length) and disk bytes
      (st_blocks * 512, what du counts), and the symlink targets' lengths:
      ext4 keeps a target shorter than 60 bytes in the inode itself ("fast
      symlink", no block); a longer one takes a whole block (4 KiB).

Standard library only, but for npy-*. Timing is done by run.sh (GNU time around each whole
process), so these scripts run as a user would run them.
"""
import argparse
import json
import os
import random
import stat
import sys
from decimal import Decimal

# ext4: a symlink target of up to 59 bytes is stored in the inode's i_block.
EXT4_FAST_SYMLINK_MAX = 59


def parse_source(text):
    name, sep, rest = text.partition("=")
    if not sep or not name:
        sys.exit(f"view_peers.py: --source wants NAME=DIR[:FRACTION], got {text!r}")
    folder, frac = rest, "1"
    if ":" in rest:
        folder, frac = rest.rsplit(":", 1)
    return name, folder, Decimal(frac)


def walk_files(folder):
    """Every file under folder, as absolute paths, in a stable order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.abspath(folder)):
        dirnames.sort()
        for f in sorted(filenames):
            out.append(os.path.join(dirpath, f))
    return out


def cmd_seed000_lists(a):
    rng = random.Random(a.seed)
    sources = [parse_source(s) for s in a.source]
    files = {name: walk_files(folder) for name, folder, _ in sources}
    for name in files:
        rng.shuffle(files[name])
    steps = [None]
    sweep_name = None
    if a.sweep:
        sweep_name, _, spec = a.sweep.partition("=")
        start, stop, step = (Decimal(x) for x in spec.split(":"))
        steps = []
        v = start
        while v <= stop:
            steps.append(v)
            v += step
    os.makedirs(a.out_dir, exist_ok=True)
    made = []
    for v in steps:
        chosen, label = [], []
        for name, _, frac in sources:
            f = v if name == sweep_name else frac
            k = int(f * len(files[name]) + Decimal("0.5"))
            chosen += sorted(files[name][:k])
            label.append(f"{name}-{f}")
        path = os.path.join(a.out_dir, "+".join(label) + ".txt")
        with open(path, "w", encoding="utf-8") as out:
            out.writelines(p + "\n" for p in chosen)
        made.append({"list": path, "paths": len(chosen), "bytes": os.path.getsize(path)})
    write_json(a.json, {"lists": made})


def cmd_seed000_link(a):
    root = os.path.abspath(a.root)
    with open(a.list, encoding="utf-8") as f:
        for line in f:
            src = line.rstrip("\n")
            if not src:
                continue
            dst = os.path.join(a.out, os.path.relpath(src, root))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(src, dst)


def cmd_tree_size(a):
    total = {"dirs": 0, "symlinks": 0, "files": 0, "apparent_bytes": 0, "disk_bytes": 0,
             "target_lengths": {}, "slow_symlinks": 0, "symlink_disk_bytes": 0,
             "dir_disk_bytes": 0}
    lengths = {}
    for tree in a.trees:
        for dirpath, dirnames, filenames in os.walk(tree):
            st = os.lstat(dirpath)
            total["dirs"] += 1
            total["dir_disk_bytes"] += st.st_blocks * 512
            total["apparent_bytes"] += st.st_size
            total["disk_bytes"] += st.st_blocks * 512
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if stat.S_ISDIR(st.st_mode):
                    continue  # counted when walked into
                total["apparent_bytes"] += st.st_size
                total["disk_bytes"] += st.st_blocks * 512
                if stat.S_ISLNK(st.st_mode):
                    total["symlinks"] += 1
                    total["symlink_disk_bytes"] += st.st_blocks * 512
                    n = len(os.fsencode(os.readlink(p)))
                    lengths[n] = lengths.get(n, 0) + 1
                    if n > EXT4_FAST_SYMLINK_MAX:
                        total["slow_symlinks"] += 1
                else:
                    total["files"] += 1
    total["inodes"] = total["dirs"] + total["symlinks"] + total["files"]
    total["target_lengths"] = {str(k): v for k, v in sorted(lengths.items())}
    write_json(a.json, total)


def cmd_npy_mix(a):
    import numpy as np
    rng = np.random.default_rng(a.seed)
    parts = []
    for i, spec in enumerate(a.source):
        n, k = (int(x) for x in spec.split(":"))
        rows = np.sort(rng.choice(n, size=k, replace=False))
        part = np.empty((k, 2), dtype=np.int64)
        part[:, 0] = i
        part[:, 1] = rows
        parts.append(part)
    np.save(a.out, np.concatenate(parts))


def cmd_npy_read(a):
    import time
    import numpy as np
    t0, c0 = time.perf_counter(), time.process_time()
    table = np.load(a.file)
    t1, c1 = time.perf_counter(), time.process_time()
    rng = random.Random(a.seed)
    n = len(table)
    picks = [rng.randrange(n) for _ in range(a.random)]
    t2, c2 = time.perf_counter(), time.process_time()
    sink = 0
    for i in picks:
        source, row = int(table[i, 0]), int(table[i, 1])
        sink += source + row
    t3, c3 = time.perf_counter(), time.process_time()
    write_json(a.json, {"rows": n, "load_s": t1 - t0, "load_cpu_s": c1 - c0,
                        "random": a.random, "random_s": t3 - t2, "random_cpu_s": c3 - c2,
                        "sink": sink & 1})


def write_json(path, obj):
    text = json.dumps(obj, indent=1) + "\n"
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed000-lists")
    s.add_argument("out_dir")
    s.add_argument("--source", action="append", required=True)
    s.add_argument("--sweep")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--json")
    s.set_defaults(fn=cmd_seed000_lists)
    s = sub.add_parser("seed000-link")
    s.add_argument("list")
    s.add_argument("root")
    s.add_argument("out")
    s.set_defaults(fn=cmd_seed000_link)
    s = sub.add_parser("npy-mix")
    s.add_argument("out")
    s.add_argument("--source", action="append", required=True)
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(fn=cmd_npy_mix)
    s = sub.add_parser("npy-read")
    s.add_argument("file")
    s.add_argument("--random", type=int, default=100000)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--json")
    s.set_defaults(fn=cmd_npy_read)
    s = sub.add_parser("tree-size")
    s.add_argument("trees", nargs="+")
    s.add_argument("--json")
    s.set_defaults(fn=cmd_tree_size)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
