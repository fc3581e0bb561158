#!/usr/bin/env python3
"""The shuffle part's peers and probes (bench/run.sh --only shuffle).

  shuffle_peers.py divide-merge IN.tar WORK OUT.tar [--gzip] [--times FILE]
      Seed 001's divide-and-merge with GNU tar: `tar xf IN.tar` into WORK,
      one `tar cf` per label folder (the folders under the top one, as
      gotorch's tarball_divide splits by base directory), then a merge that
      reads the per-label tars as streams and writes their members round
      robin into OUT.tar (tarball_merge's strategy), with Python's tarfile.
      --gzip: .tar.gz in and out (tar xzf / tar czf / tarfile "w|gz"), as the
      seed does it. --times writes each stage's wall seconds (JSON).

  shuffle_peers.py peak OUT.json -- COMMAND...
      Runs COMMAND, polling /proc/PID/status every 2 ms, and writes its peak
      RssAnon, RssFile and VmHWM (KiB), wall seconds and exit code. Anonymous
      memory is what --memory bounds; RssFile counts the memory-mapped source
      shards, which are page cache.
"""
import argparse
import json
import os
import subprocess
import sys
import tarfile
import time


def label_dirs(root):
    """The label folders: the top folder's subfolders when the tar holds one
    top folder (training/<label>/...), else the root's."""
    entries = sorted(e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e)))
    files = [e for e in os.listdir(root) if not os.path.isdir(os.path.join(root, e))]
    if len(entries) == 1 and not files:
        top = entries[0]
        return os.path.join(root, top), top
    return root, None


def divide_merge(args):
    times = {}
    t0 = time.monotonic()
    x = os.path.join(args.work, "x")
    os.makedirs(x)
    subprocess.run(["tar", "xzf" if args.gzip else "xf", args.input, "-C", x], check=True)
    times["extract"] = time.monotonic() - t0

    t1 = time.monotonic()
    base, top = label_dirs(x)
    labels = sorted(e for e in os.listdir(base) if os.path.isdir(os.path.join(base, e)))
    parts = []
    ext = ".tar.gz" if args.gzip else ".tar"
    for label in labels:
        part = os.path.join(args.work, f"part-{label}{ext}")
        member = os.path.join(top, label) if top else label
        subprocess.run(["tar", "czf" if args.gzip else "cf", part, "-C", x, member], check=True)
        parts.append(part)
    times["divide"] = time.monotonic() - t1

    t2 = time.monotonic()
    readers = [tarfile.open(p, "r|gz" if args.gzip else "r|") for p in parts]
    iters = [iter(r) for r in readers]
    written = 0
    with tarfile.open(args.output, "w|gz" if args.gzip else "w|", format=tarfile.PAX_FORMAT) as out:
        while iters:
            alive = []
            for r, it in zip(readers, iters):
                for m in it:
                    if m.isfile():
                        out.addfile(m, r.extractfile(m))
                        written += 1
                        alive.append((r, it))
                        break
            readers = [r for r, _ in alive]
            iters = [it for _, it in alive]
    times["merge"] = time.monotonic() - t2
    times["total"] = time.monotonic() - t0
    times["members"] = written
    times["labels"] = len(labels)
    if args.times:
        with open(args.times, "w") as f:
            json.dump(times, f)


def peak(args):
    keys = ("RssAnon", "RssFile", "VmHWM")
    best = dict.fromkeys(keys, 0)
    t0 = time.monotonic()
    proc = subprocess.Popen(args.command, stdout=subprocess.PIPE)
    out_chunks = []
    os.set_blocking(proc.stdout.fileno(), False)
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in best:
                        best[k] = max(best[k], int(v.split()[0]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        chunk = proc.stdout.read()
        if chunk:
            out_chunks.append(chunk)
        time.sleep(0.002)
    os.set_blocking(proc.stdout.fileno(), True)
    out_chunks.append(proc.stdout.read())
    result = {f"{k}_kib": v for k, v in best.items()}
    result["seconds"] = time.monotonic() - t0
    result["exit"] = proc.returncode
    stdout = b"".join(out_chunks).decode(errors="replace").strip()
    try:
        result["stdout"] = json.loads(stdout)
    except ValueError:
        result["stdout"] = stdout
    with open(args.out, "w") as f:
        json.dump(result, f)
    return proc.returncode


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    d = sub.add_parser("divide-merge")
    d.add_argument("input")
    d.add_argument("work")
    d.add_argument("output")
    d.add_argument("--gzip", action="store_true")
    d.add_argument("--times")
    k = sub.add_parser("peak")
    k.add_argument("out")
    k.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    if args.verb == "divide-merge":
        divide_merge(args)
        return 0
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    return peak(args)


if __name__ == "__main__":
    sys.exit(main())
