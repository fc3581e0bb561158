"""Issue 11: datasets on a real S3-compatible server (versitygw, which checks
every request's signature) and on nginx, read through the local cache, with
faults injected by a proxy (refused connections, HTTP 500, corrupted and cut
bodies); `pack -o s3://`, `sync`, resumed syncs.
"""
import hashlib
import http.client
import http.server
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import BIN, run, shardset

KEY, SECRET = "AKIASHARDSETTEST", "shardset-test-secret-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            pytest.fail(f"{what} exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port}")


class S3Server:
    """versitygw over a POSIX folder on loopback."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        exe = shutil.which("versitygw")
        if exe is None:
            pytest.fail("versitygw is not installed (run scripts/install-deps.sh)")
        self.proc = subprocess.Popen(
            [exe, "--access", KEY, "--secret", SECRET, "--port", f"127.0.0.1:{self.port}",
             "posix", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_port(self.port, self.proc, "versitygw")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()

    def make_bucket(self, name):
        # A real CreateBucket request, signed by curl.
        run("curl", "-sf", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3",
            "--user", f"{KEY}:{SECRET}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            f"{self.url}/{name}")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3root")
    server = S3Server(root)
    server.start()
    for b in ("data", "backup"):
        server.make_bucket(b)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    d = tmp_path_factory.mktemp("nginx")
    root = d / "www"
    root.mkdir()
    port = free_port()
    conf = d / "nginx.conf"
    # Workers as the user running the tests: pytest's folders are private.
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.getuid() == 0 else ""
    conf.write_text(f"""{user}daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([exe, "-c", str(conf), "-p", str(d)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_port(port, proc, "nginx")
    yield {"url": f"http://127.0.0.1:{port}", "root": root}
    proc.terminate()
    proc.wait()


@pytest.fixture
def env(s3, tmp_path):
    e = dict(os.environ)
    e.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_ENDPOINT_URL=s3.url,
             SHARDSET_CACHE_DIR=str(tmp_path / "cache"))
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        e.pop(k, None)
    return e


@pytest.fixture(scope="module")
def fm_local(fmnist_tree, tmp_path_factory):
    """The 10,000 Fashion-MNIST test PNGs, packed locally into 5 shards."""
    out = tmp_path_factory.mktemp("local") / "fm"
    shardset("pack", fmnist_tree / "testing", "-o", out, "--label-from-dir",
             "--shard-samples", "2000", "-q")
    return out


class Done:
    """A finished command with text output."""

    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout.decode(errors="replace")
        self.stderr = proc.stderr.decode(errors="replace")


def sh(*args, env, check=True):
    return Done(run(BIN, *args, env=env, check=check))


def info_json(target, env):
    j = json.loads(sh("info", target, "--json", "-q", env=env).stdout)
    j.pop("target", None)
    for shard in j["shard_list"]:  # a URL or a path: the same name at its end
        shard["path"] = shard["path"].rsplit("/", 1)[1]
    return j


EPOCH = r"""
import hashlib, json, sys
import torch
import shardset, shardset.torch as st
ds = st.IterableDataset(sys.argv[1], batch_size=250, shuffle=True, seed=3)
loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
seen = []
for batch in loader:
    for key, png in zip(batch["__key__"], batch["png"]):
        seen.append((key, hashlib.sha256(bytes(png)).hexdigest()))
print(json.dumps(seen))
"""


def epoch(target, env, tmp_path):
    script = tmp_path / "epoch.py"
    script.write_text(EPOCH)
    r = subprocess.run([sys.executable, str(script), str(target)], env=env, check=True,
                       capture_output=True, text=True)
    return json.loads(r.stdout)


def same_as_local(target, local, env, tmp_path, cats=200):
    """info, verify, ls, random cats and a shardset.torch epoch of `target`
    equal those of the local dataset."""
    assert info_json(target, env) == info_json(local, env)
    sh("verify", "-q", target, env=env)
    assert sh("ls", target, env=env).stdout == sh("ls", local, env=env).stdout
    lines = sh("ls", local, "--json", env=env).stdout.splitlines()
    keys = [json.loads(line)["key"] for line in random.Random(5).sample(lines, cats)]
    a = run(BIN, "cat", target, *keys, "--field", "png", env=env).stdout
    assert a == run(BIN, "cat", local, *keys, "--field", "png", env=env).stdout
    assert len(a) > 100 * cats
    assert epoch(target, env, tmp_path) == epoch(local, env, tmp_path)


def test_pack_to_s3_reads_like_local(s3, env, fm_local, fmnist_tree, tmp_path):
    target = "s3://data/fm-test"
    r = sh("pack", fmnist_tree / "testing", "-o", target, "--label-from-dir",
           "--shard-samples", "2000", "-q", env=env)
    assert "10000 samples in 5" in r.stdout
    # Packed in the cache, uploaded, and the staging folder gone.
    assert not any((tmp_path / "cache" / "staging").glob("*"))
    # The objects are the local pack's, byte for byte.
    for f in sorted(os.listdir(fm_local)):
        assert (s3.root / "data" / "fm-test" / f).read_bytes() == (fm_local / f).read_bytes(), f
    same_as_local(target, fm_local, env, tmp_path)


def test_http_from_nginx_reads_like_local(nginx, env, fm_local, tmp_path):
    shutil.copytree(fm_local, nginx["root"] / "fm", dirs_exist_ok=True)
    same_as_local(f"{nginx['url']}/fm", fm_local, env, tmp_path)
    # One shard by itself (no manifest): fetched whole, read by its index.
    one = f"{nginx['url']}/fm/shard-000002.shard"
    assert sh("ls", one, env=env).stdout == sh("ls", fm_local / "shard-000002.shard",
                                               env=env).stdout


def test_tar_shards_with_sidecars_over_http(nginx, env, fmnist_tree, tmp_path):
    local = tmp_path / "fmtar"
    shardset("pack", fmnist_tree / "testing", "-o", local, "--format", "tar",
             "--label-from-dir", "--shard-samples", "4000", "-q")
    shutil.copytree(local, nginx["root"] / "fmtar")
    target = f"{nginx['url']}/fmtar"
    assert sh("ls", target, env=env).stdout == sh("ls", local, env=env).stdout
    sh("verify", "-q", target, env=env)
    cached = list((tmp_path / "cache" / "objects").glob("*/*.idx"))
    assert len(cached) == 3, "the tar sidecars are fetched with their shards"


def test_cache_hits_and_bound(nginx, env, fm_local, tmp_path):
    shutil.copytree(fm_local, nginx["root"] / "fm2", dirs_exist_ok=True)
    target = f"{nginx['url']}/fm2"
    sh("verify", "-q", target, env=env)
    objects = tmp_path / "cache" / "objects"
    shards = sorted(objects.glob("*/shard-*[0-9].shard"))
    assert len(shards) == 5
    inodes = {p: p.stat().st_ino for p in shards}
    # A second read finds them all cached: nothing fetched again.
    sh("verify", "-q", target, env=env)
    assert {p: p.stat().st_ino for p in shards} == inodes
    # Bounded: with room for two shards, reading everything leaves at most two.
    shard_bytes = max(p.stat().st_size for p in shards)
    small = dict(env, SHARDSET_CACHE_DIR=str(tmp_path / "small-cache"),
                 SHARDSET_CACHE_BYTES=str(2 * shard_bytes + 1000))
    sh("verify", "-q", target, env=small)
    kept = list((tmp_path / "small-cache" / "objects").glob("*/shard-*[0-9].shard"))
    assert 1 <= len(kept) <= 2, kept


def test_sync_to_a_second_bucket_resumes_and_then_copies_nothing(s3, env, fm_local, tmp_path):
    sh("sync", fm_local, "s3://data/fm-sync", "-q", env=env)
    # An interrupted sync: the copy lost two shards and its manifest.
    base = s3.root / "backup"
    r = json.loads(sh("sync", "s3://data/fm-sync", "s3://backup/fm", "--json", "-q",
                      env=env).stdout)
    assert r["files_copied"] == 6 and r["files_skipped"] == 0
    for f in ("shard-000001.shard", "shard-000004.shard", "manifest.json"):
        (base / "fm" / f).unlink()
    # Readers never see a dataset whose shards are missing: no manifest yet.
    assert sh("info", "s3://backup/fm", env=env, check=False).returncode != 0
    r = json.loads(sh("sync", "s3://data/fm-sync", "s3://backup/fm", "--json", "--verify", "-q",
                      env=env).stdout)
    assert (r["files_copied"], r["files_skipped"]) == (3, 3), r
    r = json.loads(sh("sync", "s3://data/fm-sync", "s3://backup/fm", "--json", "-q",
                      env=env).stdout)
    assert r["files_copied"] == 0 and r["bytes_copied"] == 0, r
    # And down to a folder.
    sh("sync", "s3://backup/fm", tmp_path / "restored", "--verify", "-q", env=env)
    assert sh("ls", tmp_path / "restored", env=env).stdout == sh("ls", fm_local, env=env).stdout


def test_bad_credentials_and_missing_things_are_one_line(s3, env, fm_local, tmp_path):
    sh("sync", fm_local, "s3://data/fm-creds", "-q", env=env)
    bad = dict(env, AWS_SECRET_ACCESS_KEY="wrong")
    r = sh("info", "s3://data/fm-creds", env=bad, check=False)
    assert r.returncode != 0
    assert "access denied" in r.stderr and "credentials" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    none = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS")}
    none["HOME"] = str(tmp_path)  # no ~/.aws/credentials either
    r = sh("info", "s3://data/fm-creds", env=none, check=False)
    assert "no credentials were found" in r.stderr
    # Credentials from ~/.aws/credentials.
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
    assert "10000" in sh("info", "s3://data/fm-creds", env=none).stdout
    r = sh("info", "s3://data/no-such-dataset", env=env, check=False)
    assert r.returncode == 3 and "404" in r.stderr
    r = sh("sync", fm_local, "http://127.0.0.1:1/x", env=env, check=False)
    assert r.returncode == 2 and "read-only" in r.stderr
    down = dict(env, AWS_ENDPOINT_URL="http://127.0.0.1:1", SHARDSET_RETRIES="2")
    r = sh("info", "s3://data/fm-creds", env=down, check=False)
    assert r.returncode != 0 and "gave up after 2 attempts" in r.stderr


class FaultProxy:
    """An HTTP proxy in front of nginx that breaks answers on purpose: from
    its `down_after`-th request on it resets every connection for
    `down_seconds` (a stopped server); otherwise every `every`-th GET gets
    the next fault of `faults` in turn (HTTP 500, a flipped byte, a body cut
    short)."""

    def __init__(self, upstream_port, every=3, faults=("corrupt", "truncate", "500"),
                 down_after=4, down_seconds=3.0):
        self.upstream = upstream_port
        self.every, self.faults = every, faults
        self.down_after, self.down_seconds, self.down_until = down_after, down_seconds, 0.0
        self.count, self.injected = 0, []
        self.paths = []  # (method, path) of every request answered
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.forward(head=True)

            def do_GET(self):
                self.forward(head=False)

            def forward(self, head):
                with proxy.lock:
                    if proxy.count == proxy.down_after and proxy.down_until == 0.0:
                        proxy.down_until = time.monotonic() + proxy.down_seconds
                    if time.monotonic() < proxy.down_until:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        self.connection.close()
                        self.close_connection = True
                        proxy.injected.append("reset")
                        return
                    proxy.count += 1
                    proxy.paths.append(("HEAD" if head else "GET", self.path))
                    fault = None
                    if not head and proxy.count % proxy.every == 0:
                        fault = proxy.faults[(proxy.count // proxy.every) % len(proxy.faults)]
                up = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                up.request("HEAD" if head else "GET", self.path, headers=headers)
                resp = up.getresponse()
                body = resp.read()
                up.close()
                if fault and resp.status in (200, 206) and len(body) > 16:
                    proxy.injected.append(fault)
                    if fault == "500":
                        self.send_response(500)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if fault == "corrupt":
                        i = len(body) // 2
                        body = body[:i] + bytes([body[i] ^ 0x20]) + body[i + 1:]
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.end_headers()
                if head:
                    return
                if fault == "truncate":
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_faults_are_retried_and_corruption_is_never_delivered(nginx, env, fm_local, tmp_path):
    shutil.copytree(fm_local, nginx["root"] / "fm3", dirs_exist_ok=True)
    port = int(nginx["url"].rsplit(":", 1)[1])
    proxy = FaultProxy(port)
    try:
        target = f"http://127.0.0.1:{proxy.port}/fm3"
        local = epoch(fm_local, env, tmp_path)
        # The server "stops" for 3 s after its 4th request, mid-epoch.
        t0 = time.monotonic()
        assert epoch(target, env, tmp_path) == local
        assert time.monotonic() - t0 > proxy.down_seconds
        assert sh("ls", target, env=env).stdout == sh("ls", fm_local, env=env).stdout
        sh("verify", "-q", target, env=env)
        # Every cached shard is the original, byte for byte.
        for p in (tmp_path / "cache" / "objects").glob("*/shard-*[0-9].shard"):
            assert hashlib.sha256(p.read_bytes()).digest() == \
                hashlib.sha256((fm_local / p.name).read_bytes()).digest(), p
        kinds = set(proxy.injected)
        assert {"reset", "corrupt", "truncate", "500"} <= kinds, proxy.injected
        print(f"faults injected: {len(proxy.injected)} "
              f"({', '.join(f'{k} {proxy.injected.count(k)}' for k in sorted(kinds))})")
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def fm_one_shard(fmnist_tree, tmp_path_factory):
    """The 60,000 Fashion-MNIST training PNGs in one native shard of 30 MB."""
    out = tmp_path_factory.mktemp("one") / "fm"
    shardset("pack", fmnist_tree / "training", "-o", out, "--label-from-dir", "-q")
    return out


def test_ranged_reads_fetch_little_and_survive_faults(nginx, env, fm_one_shard, tmp_path):
    """--fetch ranged (cat's default): random samples of a 30 MB shard cost
    its index and a block per sample, not the shard; through a proxy that
    resets, fails, truncates and corrupts answers, every byte delivered is
    the original's; read sequentially, requests grow to the chunk size;
    verify fetches the rest and checks it whole."""
    shutil.copytree(fm_one_shard, nginx["root"] / "fm5", dirs_exist_ok=True)
    shard_bytes = (fm_one_shard / "shard-000000.shard").stat().st_size
    port = int(nginx["url"].rsplit(":", 1)[1])
    proxy = FaultProxy(port, every=4, down_after=6, down_seconds=1.0)
    try:
        target = f"http://127.0.0.1:{proxy.port}/fm5"
        lines = sh("ls", fm_one_shard, "--json", env=env).stdout.splitlines()
        keys = [json.loads(line)["key"] for line in random.Random(11).sample(lines, 60)]
        for i in range(0, len(keys), 10):  # a process per 10 samples: the cache carries over
            got = run(BIN, "cat", target, *keys[i:i + 10], "--field", "png", env=env).stdout
            assert got == run(BIN, "cat", fm_one_shard, *keys[i:i + 10], "--field", "png",
                              env=env).stdout
        part = next((tmp_path / "cache" / "objects").glob("*/shard-000000.shard.part"))
        on_disk = part.stat().st_blocks * 512
        assert on_disk < shard_bytes // 3, (on_disk, shard_bytes)
        assert {"corrupt", "truncate", "500", "reset"} <= set(proxy.injected), proxy.injected
        assert not (part.parent / "shard-000000.shard").exists()  # never fetched whole
        # Sequential: ls reads keys only; info reads every sample in order.
        before = len(proxy.paths)
        info = json.loads(sh("info", target, "--json", "--fetch", "ranged", env=env).stdout)
        assert info["samples"] == 60000
        sequential = len(proxy.paths) - before
        assert sequential < shard_bytes / (1 << 20), sequential  # fewer than one per MiB
        sh("verify", "-q", target, "--fetch", "ranged", env=env)
        assert hashlib.sha256(part.read_bytes()).digest() == \
            hashlib.sha256((fm_one_shard / "shard-000000.shard").read_bytes()).digest()
    finally:
        proxy.close()


def test_views_and_catalogs_over_remote_datasets(nginx, env, fm_local, tmp_path):
    """A mix of an http:// dataset records its URL and selects what the same
    mix of the local copy selects; a catalog directory over it keeps
    annotations; neither fetches the shards to be made."""
    shutil.copytree(fm_local, nginx["root"] / "fm6", dirs_exist_ok=True)
    url = f"{nginx['url']}/fm6"
    sh("mix", f"a={url}:0.3", "-o", tmp_path / "remote.view", "--seed", "4", "-q", env=env)
    assert not list((tmp_path / "cache" / "objects").glob("*/shard-*.shard"))  # edges by range
    sh("mix", f"a={fm_local}:0.3", "-o", tmp_path / "local.view", "--seed", "4", "-q", env=env)
    info = json.loads(sh("info", tmp_path / "remote.view", "--json", env=env).stdout)
    assert info["sources"][0]["targets"] == [url]
    assert sh("ls", tmp_path / "remote.view", env=env).stdout == \
        sh("ls", tmp_path / "local.view", env=env).stdout
    assert run(BIN, "cat", tmp_path / "remote.view", "--ordinal", "7", "--field", "png",
               env=env).stdout == run(BIN, "cat", tmp_path / "local.view", "--ordinal", "7",
                                      "--field", "png", env=env).stdout
    sh("verify", "-q", tmp_path / "remote.view", env=env)
    cat = tmp_path / "r.catalog"
    sh("dir", "create", "d", "-c", cat, env=env)
    sh("dir", "add", "d", "--from", url, "-c", cat, env=env)
    key = sh("ls", url, env=env).stdout.split("\t")[0]
    sh("annotate", "set", "d", key, "--label", "x", "--box", "1,1,5,5", "-c", cat, env=env)
    got = json.loads(run(BIN, "cat", f"{cat}#d", key, "--field", "annotations", env=env).stdout)
    assert [(a["label"], a["box"]) for a in got] == [("x", [1, 1, 5, 5])]


def test_four_pack_parts_in_parallel_merge_into_one_pack(s3, env, fmnist_tree, tmp_path):
    """pack --part I/N on four processes at once, dataset merge, and the
    result lists the same samples in the same order as one pack of the
    whole; it syncs to S3 and reads back from there."""
    src = fmnist_tree / "training"
    out = tmp_path / "fm"
    procs = [subprocess.Popen([str(BIN), "pack", str(src), "-o", str(out), "--part", f"{i}/4",
                               "--label-from-dir", "--shard-size", "4MiB", "-q", "-j", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(4)]
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err
    # Not yet merged: no dataset.
    assert sh("info", out, env=env, check=False).returncode != 0
    r = sh("dataset", "merge", out, env=env)
    assert "60000 samples" in r.stdout
    whole = tmp_path / "whole"
    shardset("pack", src, "-o", whole, "--label-from-dir", "--shard-size", "4MiB", "-q")
    assert sh("ls", out, env=env).stdout == sh("ls", whole, env=env).stdout
    sh("verify", "-q", out, env=env)
    assert sh("dataset", "merge", out, env=env).returncode == 0  # again: harmless
    for i in range(4):
        assert json.loads((out / f"part-{i}-of-4" / "manifest.json").read_text())["num_samples"] \
            == 15000
    sh("sync", out, "s3://data/fm-parts", "-q", env=env)
    assert sh("ls", "s3://data/fm-parts", env=env).stdout == sh("ls", whole, env=env).stdout

    # Machines without a shared folder: each part packed straight to s3://,
    # merged there (the listing finds the parts; the manifest goes up last).
    target = "s3://data/fm-s3parts"
    procs = [subprocess.Popen([str(BIN), "pack", str(src), "-o", target, "--part", f"{i}/3",
                               "--label-from-dir", "--shard-size", "4MiB", "-q", "-j", "1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]  # part 2 of 3 comes later
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err
    r = sh("dataset", "merge", target, env=env, check=False)
    assert r.returncode == 3 and "part-2-of-3: missing" in r.stderr, r.stderr
    sh("pack", src, "-o", target, "--part", "2/3", "--label-from-dir", "--shard-size", "4MiB",
       "-q", env=env)
    r = sh("dataset", "merge", target, env=env)
    assert "60000 samples" in r.stdout
    assert sh("ls", target, env=env).stdout == sh("ls", whole, env=env).stdout
    sh("verify", "-q", target, env=env)
    assert sh("dataset", "merge", target, env=env).returncode == 0  # again: harmless

    # What goes wrong is said in one line, and nothing is written.
    bad = tmp_path / "bad"
    for i in (0, 2):
        shardset("pack", src / "0", "-o", bad, "--part", f"{i}/3", "-q")
    r = sh("dataset", "merge", bad, env=env, check=False)
    assert r.returncode == 3 and "part-1-of-3: missing" in r.stderr, r.stderr
    shardset("pack", src / "0", "-o", bad, "--part", "1/3", "--shard-samples", "7", "-q")
    r = sh("dataset", "merge", bad, env=env, check=False)
    assert r.returncode == 2 and "other sources or options" in r.stderr, r.stderr
    assert not (bad / "manifest.json").exists()
    r = sh("pack", src / "0", "-o", tmp_path / "x", "--part", "3/3", env=env, check=False)
    assert r.returncode == 2 and "--part 3/3" in r.stderr


def test_big_shards_go_up_in_parts(s3, env, tmp_path):
    """A shard over 64 MiB is uploaded as an S3 multipart upload (parts of
    16 MiB, several at once) and arrives whole."""
    src = tmp_path / "big"
    src.mkdir()
    rng = random.Random(7)
    for i in range(7):
        (src / f"f{i}.bin").write_bytes(rng.randbytes(11_000_000))
    sh("pack", src, "-o", "s3://data/big", "-q", env=env)
    local = tmp_path / "big-local"
    shardset("pack", src, "-o", local, "-q")
    assert (s3.root / "data" / "big" / "shard-000000.shard").read_bytes() == \
        (local / "shard-000000.shard").read_bytes()
    assert (local / "shard-000000.shard").stat().st_size > 64 << 20
    sh("verify", "-q", "s3://data/big", env=env)


def test_shuffle_writes_to_s3_and_reads_from_it(s3, env, fm_local, tmp_path):
    """shuffle -o s3://: a dataset folder, and one tar.gz with its sidecar
    index; each reads back from S3 with the same samples as the source."""
    sh("shuffle", fm_local, "-o", "s3://data/fm-shuf", "--seed", "4", "-q", env=env)
    sh("shuffle", "s3://data/fm-shuf", "-o", "s3://data/fm-one.tar.gz", "--seed", "5", "-q",
       env=env)
    assert (s3.root / "data" / "fm-one.tar.gz.idx").exists(), "the sidecar goes up too"
    want = sorted(sh("ls", fm_local, env=env).stdout.splitlines())
    for target in ("s3://data/fm-shuf", "s3://data/fm-one.tar.gz"):
        got = sh("ls", target, env=env).stdout.splitlines()
        assert sorted(got) == want and got != want, target
        sh("verify", "-q", target, env=env)
    assert not any((tmp_path / "cache" / "staging").rglob("*.shard")), "staging copies removed"
    r = sh("shuffle", fm_local, "--view", "-o", "s3://data/x.view", env=env, check=False)
    assert r.returncode == 2 and "views are written to a folder" in r.stderr


def test_sync_of_a_folder_of_datasets_views_and_a_catalog(s3, env, fmnist_tree, tmp_path):
    """A folder holding two datasets, views over them and a catalog with an
    annotation: sync copies the datasets (shards once, manifest last), the
    views and a consistent snapshot of the catalog; the copy works as the
    original does; a second sync copies nothing."""
    tree = tmp_path / "tree"
    (tree / "data").mkdir(parents=True)
    shardset("pack", fmnist_tree / "testing", "-o", tree / "data" / "fm-test", "--label-from-dir",
             "-q")
    shardset("pack", fmnist_tree / "training" / "0", "-o", tree / "data" / "zeros", "-q")
    shardset("split", tree / "data" / "fm-test", "--ratios", "0.8,0.2", "--seed", "1", "-o",
             tree / "views")
    cat = tree / "fm.catalog"
    shardset("dir", "create", "all", "-c", cat)
    shardset("dir", "add", "all", "--from", tree / "data" / "fm-test", "-c", cat)
    shardset("annotate", "set", "all", "0/1000", "--label", "shirt", "--box", "1,2,3,4", "-c", cat)

    for dst in (tmp_path / "copy", "s3://backup/tree"):
        r = json.loads(sh("sync", tree, dst, "--json", "-q", env=env).stdout)
        assert r["files_copied"] == 7 and r["files_skipped"] == 0, r
        r = json.loads(sh("sync", tree, dst, "--json", "-q", env=env).stdout)
        assert r["files_copied"] == 0 and r["files_skipped"] == 7, r
    copy = tmp_path / "copy"
    # The same snapshot in both places (before anything opens the copy,
    # which turns its journal to WAL).
    assert (s3.root / "backup" / "tree" / "fm.catalog").read_bytes() == \
        (copy / "fm.catalog").read_bytes()
    for view in ("train.view", "val.view"):
        assert sh("ls", copy / "views" / view, env=env).stdout == \
            sh("ls", tree / "views" / view, env=env).stdout
    assert "shirt" in sh("annotate", "ls", "all", "0/1000", "-c", copy / "fm.catalog",
                         env=env).stdout
    # An edit after the first sync: the next sync copies the new snapshot only.
    shardset("annotate", "set", "all", "0/1005", "--label", "coat", "--box", "1,1,2,2", "-c", cat)
    r = json.loads(sh("sync", tree, copy, "--json", "-q", env=env).stdout)
    assert r["files_copied"] == 1, r
    assert "coat" in sh("annotate", "ls", "all", "0/1005", "-c", copy / "fm.catalog",
                        env=env).stdout
    r = sh("sync", tmp_path / "empty-nothing", copy, env=env, check=False)
    assert r.returncode != 0
    # Back down from s3:// (a listing of the bucket): the same tree, working.
    back = tmp_path / "from-s3"
    r = json.loads(sh("sync", "s3://backup/tree", back, "--json", "--verify", "-q",
                      env=env).stdout)
    assert r["files_copied"] == 7, r
    # Again before anything opens the copy (opening a catalog changes its file).
    r = json.loads(sh("sync", "s3://backup/tree", back, "--json", "-q", env=env).stdout)
    assert r["files_copied"] == 0, r
    for view in ("train.view", "val.view"):
        assert sh("ls", back / "views" / view, env=env).stdout == \
            sh("ls", tree / "views" / view, env=env).stdout
    assert "shirt" in sh("annotate", "ls", "all", "0/1000", "-c", back / "fm.catalog",
                         env=env).stdout
    r = sh("sync", "s3://backup/no-such-tree", back, env=env, check=False)
    assert r.returncode == 3 and "nothing to sync" in r.stderr, r.stderr


def test_processes_sharing_a_cold_cache_fetch_each_shard_once(nginx, env, fm_local, tmp_path):
    """Four processes read the same remote dataset at once through one empty
    cache: every one succeeds and each shard crosses the network once."""
    shutil.copytree(fm_local, nginx["root"] / "fm4", dirs_exist_ok=True)
    port = int(nginx["url"].rsplit(":", 1)[1])
    proxy = FaultProxy(port, every=10**9, down_after=-1)  # counts, breaks nothing
    try:
        target = f"http://127.0.0.1:{proxy.port}/fm4"
        procs = [subprocess.Popen([str(BIN), "verify", "-q", target], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        for p in procs:
            _, err = p.communicate()
            assert p.returncode == 0, err
        shard_gets = [path for method, path in proxy.paths
                      if method == "GET" and path.endswith(".shard")]
        assert sorted(set(shard_gets)) == [f"/fm4/shard-{i:06d}.shard" for i in range(5)]
        assert len(shard_gets) == 5, shard_gets  # 1 MB shards: one ranged GET each
    finally:
        proxy.close()
