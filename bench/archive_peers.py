#!/usr/bin/env python3
"""The Python side of bench/run.sh's "Archives in place" section: writes the
zip and TSV inputs the way Python users write them, times the Python readers
users would otherwise use (zipfile, the seed-002 seek + readline + base64 way),
and times single-member reads of a tar.gz as whole processes (shardset cat next
to tar and bsdtar), with the bytes each process read.

  archive_peers.py make-zip TREE OUT.zip --method stored|deflated
  archive_peers.py make-tsv TREE OUT.tsv
  archive_peers.py zip-read ZIP --out JSON [--count N --seed S --reps R --open-reps K]
  archive_peers.py tsv-read TSV --out JSON [--count N --seed S --reps R]
  archive_peers.py members --shardset BIN --tgz FILE --out JSON [--members K --rounds R ...]

Random picks come from the same SplitMix64 sequence as read_bench.cc
(splitmix64.h): ordinal picks with --seed, key picks with --seed + 1, so both
sides read the same 10,000 entries. Standard library only.
"""
import argparse
import base64
import json
import os
import statistics
import struct
import subprocess
import sys
import time
import zipfile

MASK = (1 << 64) - 1


class SplitMix64:
    """bench/splitmix64.h, bit for bit."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def random_picks(n, count, seed):
    """read_bench.cc's RandomPicks: `count` uniform picks in [0, n), repeats allowed."""
    rng = SplitMix64(seed)
    return [rng.next() % n for _ in range(count)]


def tree_files(tree):
    """(relative path, absolute path) of every regular file under `tree`, in
    bytewise order of the relative path: the order shardset pack walks."""
    out = []
    for root, _dirs, files in os.walk(tree):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append((os.path.relpath(p, tree), p))
    out.sort(key=lambda e: e[0].encode())
    return out


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


# ---- inputs -------------------------------------------------------------------

def cmd_make_zip(a):
    method = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED}[a.method]
    files = tree_files(a.tree)
    tmp = a.out + ".tmp"
    # No folder entries: entry i is sample i, as for the tar.gz.
    with zipfile.ZipFile(tmp, "w", compression=method, compresslevel=a.level if a.method == "deflated" else None) as zf:
        for rel, path in files:
            zf.write(path, arcname=rel)
    os.replace(tmp, a.out)
    print(f"{a.out}: {len(files)} entries, {a.method}, {os.path.getsize(a.out)} bytes")


def cmd_make_tsv(a):
    """Seed 002's layout: key <TAB> base64(file) per line, and the binary line
    index next to it (TSVFile's name: the path without its extension +
    .lineidx.8b)."""
    files = tree_files(a.tree)
    idx_path = os.path.splitext(a.out)[0] + ".lineidx.8b"
    with open(a.out + ".tmp", "wb") as tsv, open(idx_path + ".tmp", "wb") as idx:
        for rel, path in files:
            idx.write(struct.pack("<Q", tsv.tell()))
            with open(path, "rb") as f:
                data = f.read()
            key = os.path.splitext(rel)[0]
            tsv.write(key.encode() + b"\t" + base64.b64encode(data) + b"\n")
    os.replace(a.out + ".tmp", a.out)
    os.replace(idx_path + ".tmp", idx_path)
    print(f"{a.out}: {len(files)} rows, {os.path.getsize(a.out)} bytes; {idx_path}")


# ---- in-process readers ---------------------------------------------------------

def timed_passes(fn, reps):
    """Runs fn() (one pass) reps times; returns (wall, CPU) seconds of each
    pass. CPU time is what the pass cost when other processes share the
    cores; wall time is what it took."""
    out = []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out


def summary(times, reads, nbytes):
    wall = [w for w, _ in times]
    cpu = [c for _, c in times]
    med = statistics.median(wall)
    return {"pass_s": wall, "pass_cpu_s": cpu, "median_s": med, "reads": reads, "bytes": nbytes,
            "us_per_read": med / reads * 1e6, "cpu_us_per_read": statistics.median(cpu) / reads * 1e6,
            "reads_per_s": reads / med, "mb_per_s": nbytes / med / 1e6}


def cmd_zip_read(a):
    # Open: ZipFile parses the end record and every central directory entry.
    opens = timed_passes(lambda: zipfile.ZipFile(a.zip).close(), a.open_reps)
    zf = zipfile.ZipFile(a.zip)
    infos = zf.infolist()
    if any(i.is_dir() for i in infos):
        sys.exit(f"{a.zip}: has folder entries; entry i must be sample i")
    n = len(infos)
    by_ordinal = [infos[o] for o in random_picks(n, a.count, a.seed)]
    by_name = [infos[o].filename for o in random_picks(n, a.count, a.seed + 1)]
    nbytes = {}

    def read_infos():
        nbytes["ordinal"] = sum(len(zf.read(i)) for i in by_ordinal)

    def read_names():
        nbytes["name"] = sum(len(zf.read(nm)) for nm in by_name)

    read_infos()  # one untimed pass each: the same warm state as Google Benchmark's
    read_names()
    r_ord = timed_passes(read_infos, a.reps)
    r_name = timed_passes(read_names, a.reps)
    zf.close()
    write_json(a.out, {
        "file": a.zip, "size": os.path.getsize(a.zip), "entries": n,
        "python": sys.version.split()[0],
        "open_s": [w for w, _ in opens], "open_median_s": statistics.median(w for w, _ in opens),
        "open_cpu_median_s": statistics.median(c for _, c in opens),
        "by_zipinfo": summary(r_ord, len(by_ordinal), nbytes["ordinal"]),
        "by_name": summary(r_name, len(by_name), nbytes["name"]),
    })


def cmd_tsv_read(a):
    idx_path = os.path.splitext(a.tsv)[0] + ".lineidx.8b"
    n = os.path.getsize(idx_path) // 8
    picks = random_picks(n, a.count, a.seed)
    state = {}
    with open(idx_path, "rb") as fi, open(a.tsv, "rb") as ft:
        def one_pass():
            total = 0
            # The seed-002 way, five lines per row:
            for i in picks:
                fi.seek(8 * i)
                (off,) = struct.unpack("<q", fi.read(8))
                ft.seek(off)
                cols = ft.readline().rstrip(b"\n").split(b"\t")
                total += len(base64.b64decode(cols[1]))
            state["bytes"] = total

        one_pass()
        times = timed_passes(one_pass, a.reps)
    write_json(a.out, {
        "file": a.tsv, "size": os.path.getsize(a.tsv), "rows": n, "python": sys.version.split()[0],
        "by_ordinal": summary(times, len(picks), state["bytes"]),
    })


# ---- whole-process member reads of a tar.gz -------------------------------------

def rchar():
    """Bytes this process and its reaped children read through read/pread
    (Linux /proc/self/io: a child's counts are added to its parent's when it
    is reaped, grandchildren included)."""
    with open("/proc/self/io", encoding="ascii") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def run_once(argv, out_path, err_path, expected_size):
    """One whole-process run, stdout to a file: {wall seconds, CPU seconds
    (user + system of the process and the children it waited for), bytes
    read}. (No peak RSS: a child started by vfork reports its parent's until
    it execs.)"""
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        r0 = rchar()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        t1 = time.perf_counter()
        r1 = rchar()
    rc = p.returncode = os.waitstatus_to_exitcode(status)
    if rc != 0:
        with open(err_path, encoding="utf-8", errors="replace") as f:
            sys.exit(f"{' '.join(argv)}: exit {rc}: {f.read().strip()}")
    got = os.path.getsize(out_path)
    if expected_size is not None and got != expected_size:
        sys.exit(f"{' '.join(argv)}: wrote {got} bytes, expected {expected_size}")
    return {"s": t1 - t0, "cpu": usage.ru_utime + usage.ru_stime, "rchar": r1 - r0}


def list_samples(shardset, tgz):
    """(key, field, size) of every sample, in ordinal order (shardset ls)."""
    out = subprocess.run([shardset, "ls", tgz], check=True, capture_output=True, text=True).stdout
    samples = []
    for line in out.splitlines():
        key, *fields = line.split("\t")
        if len(fields) != 1:
            sys.exit(f"{tgz}: sample {key} has {len(fields)} fields; the benchmark wants one per sample")
        name, size = fields[0].rsplit(":", 1)
        samples.append((key, name, int(size)))
    return samples


def cmd_members(a):
    samples = list_samples(a.shardset, a.tgz)
    n = len(samples)
    k = min(a.members, n)
    # One random member in each of k equal slices of the archive; the last
    # slice gives the last member, where tar has the most to inflate.
    rng = SplitMix64(a.seed)
    ordinals = []
    for j in range(k):
        lo, hi = j * n // k, (j + 1) * n // k
        ordinals.append(n - 1 if j == k - 1 else lo + rng.next() % max(1, hi - lo))
    before = [0]
    for _, _, size in samples:
        before.append(before[-1] + size)
    members = []
    for o in ordinals:
        key, field, size = samples[o]
        name = a.member_prefix + key + "." + field
        members.append({
            "ordinal": o, "key": key, "field": field, "name": name, "size": size,
            "bytes_before": before[o],
            "commands": {
                "shardset cat": [a.shardset, "cat", a.tgz, key, "--field", field],
                "tar xOzf --occurrence=1": ["tar", "xOzf", a.tgz, "--occurrence=1", name],
                "bsdtar -xqOf": ["bsdtar", "-xqOf", a.tgz, name],
            },
            "runs": {},
        })
    # Once per round: tar without --occurrence (what `tar xOzf FILE MEMBER`
    # does by default: it reads to the end, in case the member comes again),
    # and the process start-up floor.
    first = members[0]
    extras = [
        {"label": "tar xOzf (no --occurrence), first member", "argv": ["tar", "xOzf", a.tgz, first["name"]],
         "size": first["size"]},
        {"label": "shardset --version (start-up floor)", "argv": [a.shardset, "--version"], "size": None},
    ]
    for e in extras:
        e["runs"] = []
    out_path = os.path.join(a.scratch, "member.out")
    err_path = os.path.join(a.scratch, "member.err")
    tools = list(members[0]["commands"])
    for rnd in range(1, a.rounds + 1):
        forward = rnd % 2 == 1
        order = members if forward else list(reversed(members))
        for m in order:
            for tool in (tools if forward else list(reversed(tools))):
                reps = a.cat_repeat if tool == "shardset cat" else 1
                for _ in range(reps):
                    m["runs"].setdefault(tool, []).append(
                        run_once(m["commands"][tool], out_path, err_path, m["size"]))
        for e in (extras if forward else list(reversed(extras))):
            e["runs"].append(run_once(e["argv"], out_path, err_path, e["size"]))
        print(f"members: round {rnd}/{a.rounds} done", file=sys.stderr)
    os.unlink(out_path)
    os.unlink(err_path)
    write_json(a.out, {
        "file": a.tgz, "size": os.path.getsize(a.tgz),
        "sidecar_size": os.path.getsize(a.tgz + ".idx") if os.path.exists(a.tgz + ".idx") else None,
        "samples": n, "sample_bytes": before[-1], "rounds": a.rounds, "cat_repeat": a.cat_repeat,
        "members": members, "extras": extras,
    })


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("make-zip")
    s.add_argument("tree")
    s.add_argument("out")
    s.add_argument("--method", choices=["stored", "deflated"], required=True)
    s.add_argument("--level", type=int, default=6)
    s.set_defaults(fn=cmd_make_zip)
    s = sub.add_parser("make-tsv")
    s.add_argument("tree")
    s.add_argument("out")
    s.set_defaults(fn=cmd_make_tsv)
    for name, fn, what in (("zip-read", cmd_zip_read, "zip"), ("tsv-read", cmd_tsv_read, "tsv")):
        s = sub.add_parser(name)
        s.add_argument(what)
        s.add_argument("--out", required=True)
        s.add_argument("--count", type=int, default=10000)
        s.add_argument("--seed", type=int, default=42)
        s.add_argument("--reps", type=int, default=5)
        s.add_argument("--open-reps", type=int, default=5)
        s.set_defaults(fn=fn)
    s = sub.add_parser("members")
    s.add_argument("--shardset", required=True)
    s.add_argument("--tgz", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--scratch", required=True, help="folder for the member bytes each run writes")
    s.add_argument("--members", type=int, default=20)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--cat-repeat", type=int, default=3, help="shardset cat runs per member per round")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--member-prefix", default="./", help="what tar's member names have before the key")
    s.set_defaults(fn=cmd_members)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
