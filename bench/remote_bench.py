#!/usr/bin/env python3
"""Remote benchmark (issue 11, acceptance 5): shards on a real S3-compatible
server on loopback (versitygw), downloaded by `shardset sync` and read by
`shardset verify` with a cold and a warm cache, next to the AWS CLI's
`aws s3 cp --recursive` of the same shards; a shardset.torch epoch over
s3:// with a cold and a warm cache, next to the same epoch from a folder.
Writes the "Remote" section of bench/RESULTS.md (replacing it).

    .venv/bin/python bench/remote_bench.py [--files 4000] [--runs 3]
        [--workdir DIR] [--keep] [--out bench/RESULTS.md]

Needs versitygw (scripts/install-deps.sh) and the AWS CLI
(scripts/python-env.sh --bench).
"""
import argparse
import json
import os
import pathlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from catalog_bench import REPO, hyperfine, peak_rss_mib, replace_section, run  # noqa: E402

KEY, SECRET = "AKIABENCH", "shardset-bench-secret"

EPOCH = r"""
import sys, time, torch, shardset.torch as st
t = time.time()
ds = st.IterableDataset(sys.argv[1], batch_size=256, shuffle=True, seed=1)
n = 0
for batch in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
    n += len(batch["__key__"])
print(n, time.time() - t)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4000, help="files of 100-300 KiB")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    a = ap.parse_args()
    build = pathlib.Path(os.environ.get("SHARDSET_BUILD_DIR", REPO / "build"))
    S = str(build / "shardset")
    aws = str(pathlib.Path(sys.executable).parent / "aws")
    gw = shutil.which("versitygw")
    if gw is None or not os.path.exists(aws):
        sys.exit("remote_bench: needs versitygw (scripts/install-deps.sh) and the AWS CLI "
                 "(scripts/python-env.sh --bench)")
    work = pathlib.Path(a.workdir or tempfile.mkdtemp(prefix="shardset-remote-bench."))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    load_start = os.getloadavg()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    (work / "s3").mkdir(exist_ok=True)
    server = subprocess.Popen([gw, "--access", KEY, "--secret", SECRET, "--port",
                               f"127.0.0.1:{port}", "posix", str(work / "s3")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                          AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
                          SHARDSET_CACHE_DIR=str(work / "cache"))
        if not (work / "s3" / "bench").exists():
            run(f"curl -sf -X PUT --aws-sigv4 aws:amz:us-east-1:s3 --user {KEY}:{SECRET} "
                f"-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' {endpoint}/bench")
        if not (work / "big").exists():
            run(f"{build}/shardset_bench_corpus --files {a.files} --dirs 10 --min-size 102400 "
                f"--max-size 307200 --seed 42 big > /dev/null")
        if not (work / "fmnist").exists():
            run(f"{build}/fashion_mnist_png fmnist > /dev/null")
        t = time.time()
        run(f"{S} pack big -o s3://bench/big --no-sync -q > /dev/null")
        pack_big_s = time.time() - t
        run(f"{S} pack fmnist/training -o s3://bench/fm --label-from-dir --no-sync -q > /dev/null")
        run(f"rm -rf fm-local && {S} pack fmnist/training -o fm-local --label-from-dir --no-sync -q"
            " > /dev/null")
        big_bytes = sum(p.stat().st_size for p in (work / "s3" / "bench" / "big").iterdir())
        shards = len(list((work / "s3" / "bench" / "big").glob("shard-*")))

        cold = "rm -rf cache out"
        cases = [
            ("`aws s3 cp --recursive` (AWS CLI) to a folder",
             f"{aws} s3 cp --recursive --quiet s3://bench/big out --endpoint-url {endpoint}", cold),
            ("`shardset sync` to a folder (checked against the manifest)",
             f"{S} sync s3://bench/big out --no-sync -q > /dev/null", cold),
            ("`shardset verify`, cold cache (fetch, then every sample's checksum)",
             f"{S} verify -q s3://bench/big", cold),
            ("`shardset verify`, warm cache (every shard cached)",
             f"{S} verify -q s3://bench/big", None),
        ]
        rows = []
        for name, cmd, prep in cases:
            if prep is None:
                run(f"{S} verify -q s3://bench/big")  # fills the cache
            med, lo, hi = hyperfine(cmd, a.runs, prep)
            if prep:
                run(prep)
            rss = peak_rss_mib(cmd)
            run("rm -rf out")
            rows.append((name, med, lo, hi, rss, cmd))

        # Random access: 100 random samples of the big shards, cold cache,
        # fetched whole or by range; and what the cache holds after.
        keys = subprocess.run(f"{S} ls s3://bench/big --fetch ranged", shell=True, check=True,
                              capture_output=True, text=True).stdout.splitlines()
        picked = [line.split("\t")[0] for line in random.Random(3).sample(keys, 100)]
        (work / "keys.txt").write_text("\n".join(picked) + "\n")
        random_rows = []
        for mode in ("whole", "ranged"):
            cmd = f"xargs -a keys.txt {S} cat s3://bench/big --fetch {mode} > /dev/null"
            med, lo, hi = hyperfine(cmd, a.runs, "rm -rf cache")
            run("rm -rf cache")
            run(cmd)
            # Bytes on disk: a ranged shard's .part file is sparse.
            held = int(subprocess.run("du -sB1 cache/objects | cut -f1", shell=True,
                                      capture_output=True, text=True, check=True).stdout)
            random_rows.append((mode, med, lo, hi, held, cmd))

        script = work / "epoch.py"
        script.write_text(EPOCH)
        py = sys.executable

        def epoch(target, prep=None):
            times = []
            for _ in range(a.runs):
                if prep:
                    run(prep)
                out = subprocess.run([py, str(script), target], check=True, capture_output=True,
                                     text=True).stdout.split()
                assert int(out[0]) == 60000, out
                times.append(float(out[1]))
            times.sort()
            return times[len(times) // 2], times[0], times[-1]

        epochs = [
            ("s3://, cold cache (emptied before each epoch)", epoch("s3://bench/fm", "rm -rf cache")),
            ("s3://, warm cache", (run(f"{S} verify -q s3://bench/fm"), epoch("s3://bench/fm"))[1]),
            ("a local folder (the same shards)", epoch("fm-local")),
        ]
        load_end = os.getloadavg()
    finally:
        server.terminate()
        server.wait()

    src = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    gw_version = "v1.8.0"
    aws_version = subprocess.run([aws, "--version"], capture_output=True, text=True).stdout.split()[0]
    mb = big_bytes / 1e6
    aws_row, sync_row = rows[0], rows[1]
    lines = [
        "## Remote",
        "",
        f"Issue 11, acceptance 5: {shards} native shards ({mb:,.0f} MB; {a.files:,} random files of "
        "100-300 KiB packed with the default 256 MiB shard size) on a real S3-compatible server on "
        f"loopback (versitygw {gw_version}, POSIX backend, signatures checked), read back by shardset "
        f"and by the AWS CLI ({aws_version}). One run of `bench/remote_bench.py` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (source {src}; load average "
        f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end; 2 cores, server and client "
        f"on the same cores); hyperfine, {a.runs} runs each, medians and min-max; peak RSS from GNU "
        "time (for `verify` it counts the pages of the cached shards it maps, which are page "
        "cache). `pack -o s3://` of the files took "
        f"{pack_big_s:.1f} s ({mb / pack_big_s:,.0f} MB/s: pack into the cache, then upload).",
        "",
        "| reading the shards from S3 | median | min-max | MB/s | vs `aws s3 cp` | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, med, lo, hi, rss, cmd in rows:
        lines.append(f"| {name} | {med:.2f} s | {lo:.2f}-{hi:.2f} | {mb / med:,.0f} | "
                     f"{aws_row[1] / med:.2f}x | {rss:,.0f} MiB |")
    lines += [
        "",
        f"`shardset sync` moves the shards {aws_row[1] / sync_row[1]:.2f}x as fast as the AWS CLI "
        "(4 ranged GETs of 8 MiB in flight per shard, written in place, each shard checked against "
        "the manifest's XXH3 before it is renamed).",
        "",
        "Random access (`--fetch`, docs/remote.md \"Whole shards or ranges\"): `cat` of 100 "
        "random samples of the same shards in one process, the cache emptied before each run:",
        "",
        "| `--fetch` | median | min-max | in the cache after | vs whole |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode, med, lo, hi, held, cmd in random_rows:
        lines.append(f"| {mode} | {med:.2f} s | {lo:.2f}-{hi:.2f} | {held / 1e6:,.1f} MB | "
                     f"{random_rows[0][1] / med:.1f}x |")
    lines += [
        "",
        "A shardset.torch epoch over the 60,000 Fashion-MNIST training PNGs packed to `s3://` "
        "(one 30 MB shard), bytes only, `DataLoader(num_workers=2)`, batches of 256, shuffled; "
        "wall time of the whole epoch including opening the dataset:",
        "",
        "| epoch | median | min-max | samples/s |",
        "| --- | --- | --- | --- |",
    ]
    for name, (med, lo, hi) in epochs:
        lines.append(f"| {name} | {med:.2f} s | {lo:.2f}-{hi:.2f} | {60000 / med:,.0f} |")
    lines += ["", "Commands (in the work folder, `S=build/shardset`, AWS_* pointing at the server):",
              "", "```sh"]
    for name, med, lo, hi, rss, cmd in rows:
        lines.append(cmd.replace(S, "$S").replace(aws, "aws"))
    for mode, med, lo, hi, held, cmd in random_rows:
        lines.append(cmd.replace(S, "$S") + "   # keys.txt: 100 random keys")
    lines += ["python epoch.py s3://bench/fm   # the script is in bench/remote_bench.py (EPOCH)",
              "```", ""]
    section = "\n".join(lines)
    replace_section(a.out, "Remote", section)
    if not a.keep and not a.workdir:
        os.chdir("/")
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
