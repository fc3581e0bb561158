#!/usr/bin/env python3
"""Web page benchmark (issue 12, acceptance 3): wrk on loopback sends
thumbnail requests to `shardset serve` over the 10,000 Fashion-MNIST test
images packed into one shard, with 1,000 and with 64 connections, next to
nginx serving the same images extracted to a folder (what one would run
otherwise). Every answer is checked by bench/serve_thumbs.lua (status, ETag,
length). Writes the "Web page" section of bench/RESULTS.md (replacing it).

    .venv/bin/python bench/serve_bench.py [--seconds 10] [--workdir DIR]
        [--keep] [--out bench/RESULTS.md]

Needs wrk and nginx (scripts/install-deps.sh).
"""
import argparse
import os
import pathlib
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from catalog_bench import REPO, replace_section, run  # noqa: E402

LUA = REPO / "bench" / "serve_thumbs.lua"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, name):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"serve_bench: {name} exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"serve_bench: {name} did not listen on {port}")


def path_list(base, paths, out):
    """Fetches each path once, idle; writes bench/serve_thumbs.lua's list."""
    lines = []
    for p in paths:
        with urllib.request.urlopen(base + p) as r:
            body = r.read()
            lines.append(f"{p} {r.headers['ETag']} {len(body)}")
    out.write_text("\n".join(lines) + "\n")


def wrk(base, listing, connections, seconds):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), base]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, THUMBS_LIST=str(listing))).stdout
    checked, wrong = map(int, re.search(r"^checked (\d+) answers, (\d+) wrong", out, re.M).groups())
    p50, p90, p99, mx = map(int, re.search(
        r"^latency_us p50 (\d+) p90 (\d+) p99 (\d+) max (\d+)", out, re.M).groups())
    requests, errors, secs = re.search(r"^requests (\d+) errors (\d+) seconds ([\d.]+)", out,
                                       re.M).groups()
    return {"checked": checked, "wrong": wrong, "p50": p50 / 1e3, "p90": p90 / 1e3,
            "p99": p99 / 1e3, "max": mx / 1e3, "errors": int(errors),
            "rps": int(requests) / float(secs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10, help="per wrk run")
    ap.add_argument("--images", type=int, default=1000, help="distinct images cycled over")
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    a = ap.parse_args()
    build = pathlib.Path(os.environ.get("SHARDSET_BUILD_DIR", REPO / "build"))
    S = str(build / "shardset")
    nginx_exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not os.path.exists(nginx_exe):
        sys.exit("serve_bench: needs wrk and nginx (scripts/install-deps.sh)")
    work = pathlib.Path(a.workdir or tempfile.mkdtemp(prefix="shardset-serve-bench."))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    if not (work / "fmnist").exists():
        run(f"{build}/fashion_mnist_png fmnist > /dev/null")
    run(f"rm -rf test www && {S} pack fmnist/testing -o test --label-from-dir --no-sync -q"
        f" && {S} extract test -o www -q")
    keys = [line.split("\t")[0] for line in
            subprocess.run([S, "ls", "test"], capture_output=True, text=True,
                           check=True).stdout.splitlines()[:a.images]]
    load_start = os.getloadavg()

    sport = free_port()
    serve = subprocess.Popen([S, "serve", "test", "--port", str(sport), "--no-verify"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    nport = free_port()
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.getuid() == 0 else ""
    (work / "nginx.conf").write_text(f"""{user}daemon off;
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  server {{ listen 127.0.0.1:{nport} backlog=1024; root {work}/www; }}
}}
""")
    nginx = subprocess.Popen([nginx_exe, "-c", str(work / "nginx.conf"), "-p", str(work)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        wait_port(sport, serve, "shardset serve")
        wait_port(nport, nginx, "nginx")
        sbase, nbase = f"http://127.0.0.1:{sport}", f"http://127.0.0.1:{nport}"
        path_list(sbase, [f"/thumb/0/{i}/png" for i in range(len(keys))], work / "shardset.txt")
        path_list(nbase, [f"/{k}.png" for k in keys], work / "nginx.txt")
        for c in (1000, 64):
            for name, base, listing in (("shardset serve", sbase, work / "shardset.txt"),
                                        ("nginx", nbase, work / "nginx.txt")):
                results[(name, c)] = wrk(base, listing, c, a.seconds)
    finally:
        serve.terminate()
        nginx.terminate()
        serve.wait()
        nginx.wait()
    load_end = os.getloadavg()

    src = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    nginx_version = subprocess.run([nginx_exe, "-v"], capture_output=True,
                                   text=True).stderr.strip().split("/")[-1]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    lines = [
        "## Web page",
        "",
        "Issue 12, acceptance 3: thumbnail requests to `shardset serve` over the 10,000 "
        "Fashion-MNIST test PNGs packed into one native shard (`--no-verify`; a 28x28 image is its "
        f"own thumbnail), cycling over {len(keys):,} images, next to nginx {nginx_version} "
        "(2 workers) serving the same PNGs extracted to a folder. wrk "
        f"{wrk_version}, 2 threads, {a.seconds} s per run, on loopback: server and load tool "
        "share the 2 cores. Every answer was checked by `bench/serve_thumbs.lua` (a 200 with the "
        "ETag and length the server gave that image when idle). One run of "
        f"`bench/serve_bench.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"(source {src}; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the "
        "end).",
        "",
        "| server | connections | requests/s | p50 | p90 | p99 | max | wrong answers | socket "
        "errors | vs nginx (requests/s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (name, c), r in results.items():
        ratio = r["rps"] / results[("nginx", c)]["rps"]
        lines.append(f"| {name} | {c:,} | {r['rps']:,.0f} | {r['p50']:.1f} ms | {r['p90']:.1f} ms "
                     f"| {r['p99']:.1f} ms | {r['max']:.1f} ms | {r['wrong']} of "
                     f"{r['checked']:,} | {r['errors']} | {ratio:.2f}x |")
    lines += [
        "",
        "`shardset serve` (cpp-httplib, a thread per connection) answers one request per "
        "connection, so 1,000 clients share its 32 threads fairly; it reads each image from the "
        "mapped shard. nginx (event-driven) keeps connections alive and sends files with "
        "sendfile. Keeping connections alive in shardset serve roughly doubles its requests/s "
        "but lets the connections holding a thread starve the others (p99 of 0.3-1.5 s at 1,000 "
        "connections, measured while choosing), so it does not.",
        "",
        "Commands (in the work folder, `S=build/shardset`):",
        "",
        "```sh",
        f"$S pack fmnist/testing -o test --label-from-dir && $S extract test -o www",
        "$S serve test --port PORT --no-verify",
        "THUMBS_LIST=shardset.txt wrk -t2 -c1000 -d10s --latency -s bench/serve_thumbs.lua "
        "http://127.0.0.1:PORT",
        "```",
        "",
    ]
    replace_section(a.out, "Web page", "\n".join(lines))
    if not a.keep and not a.workdir:
        os.chdir("/")
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
