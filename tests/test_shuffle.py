"""Issue 5: `shardset shuffle` and `shardset info --order` end to end.

Seed 001's story: `tar czf` of a folder-per-label tree gives a tar.gz where
thousands of neighbours share a label; the gotorch authors divided it by label
and merged the parts round-robin. Here `shardset shuffle` does it in one step,
and GNU tar, bsdtar, gzip and Python's tarfile check the result.
"""
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import tarfile
import time

import pytest

from conftest import BIN, run, shardset

SPLITS = {"training": 60000, "testing": 10000}


@pytest.fixture(scope="module")
def sorted_tarballs(fmnist_tree, tmp_path_factory):
    """Seed 001's step 1: `tar czf` of each split (GNU tar: one label folder
    after the other)."""
    d = tmp_path_factory.mktemp("seed001")
    out = {}
    for split in SPLITS:
        out[split] = d / f"fmnist_{split}.tar.gz"
        run("tar", "czf", out[split], "-C", fmnist_tree, split)
    return out


def order_report(target, *args):
    return json.loads(shardset("info", "--order", target, "--json", "-q", *args).stdout)


def png_count(tool, tarball):
    """`tar tvf X | grep png$ | wc -l`, exactly as the seed counts."""
    out = run("sh", "-c", f"{tool} tvf '{tarball}' | grep 'png$' | wc -l").stdout
    return int(out)


def members(tarball):
    """Multiset of (name, sha256 of bytes) of a tar's regular files."""
    c = collections.Counter()
    with tarfile.open(tarball) as t:
        for m in t:
            if m.isfile():
                c[(m.name, hashlib.sha256(t.extractfile(m).read()).hexdigest())] += 1
    return c


def labels_in_order(tarball):
    with tarfile.open(tarball) as t:
        return [m.name.split("/")[-2] for m in t if m.isfile()]


@pytest.mark.parametrize("split", list(SPLITS))
def test_seed001_shuffle_replaces_divide_and_merge(sorted_tarballs, tmp_path, split):
    n = SPLITS[split]
    src = sorted_tarballs[split]
    before = order_report(src)
    assert before["samples"] == n
    assert before["neighbours"]["rate"] > 0.99, before["verdict_line"]
    assert before["verdict"] == "ordered"

    out = tmp_path / f"fmnist_{split}_shuffled.tar.gz"
    shardset("shuffle", src, "-o", out, "--format", "tar.gz", "--seed", "1", "-q")
    run("gzip", "-t", out)
    run("file", out)
    assert png_count("tar", out) == n       # GNU tar
    assert png_count("bsdtar", out) == n    # libarchive
    assert png_count("tar", src) == n
    assert members(out) == members(src), "a sample's name or bytes changed, or one was lost"

    after = order_report(out)
    nb = after["neighbours"]
    # Within statistical tolerance of a uniform random order: 10 equal
    # classes give 10% same-label neighbours.
    assert abs(nb["z"]) < 5, after["verdict_line"]
    assert abs(nb["rate"] - 0.10) < 0.01, after["verdict_line"]
    assert after["verdict"] == "shuffled", after["verdict_line"]
    assert after["longest_run"]["length"] < 12

    inter = tmp_path / f"fmnist_{split}_interleaved.tar.gz"
    shardset("shuffle", src, "-o", inter, "--interleave-by", "label", "--seed", "1", "-q")
    run("gzip", "-t", inter)
    assert png_count("tar", inter) == n
    assert members(inter) == members(src)
    report = order_report(inter)
    assert report["neighbours"]["same_label"] == 0
    assert report["verdict"] == "interleaved"
    # What Python sees agrees with info --order: no two neighbours share a
    # label, and every window of 100 holds each of the 10 labels 10 times.
    labels = labels_in_order(inter)
    assert all(a != b for a, b in zip(labels, labels[1:]))
    for start in range(0, n, 100):
        assert set(collections.Counter(labels[start:start + 100]).values()) == {10}, start


def test_info_order_text_has_a_verdict_line(sorted_tarballs):
    text = shardset("info", "--order", sorted_tarballs["testing"], "-q").stdout.decode()
    lines = text.strip().splitlines()
    assert "order of 10000 samples" in lines[0]
    assert lines[-1].startswith("ordered: "), lines[-1]
    assert "shuffle it" in lines[-1]


def test_same_seed_same_order_other_seed_another(sorted_tarballs, tmp_path):
    src = sorted_tarballs["testing"]
    a, b, c = (tmp_path / x for x in ("a.tar", "b.tar", "c.tar"))
    shardset("shuffle", src, "-o", a, "--seed", "4", "-q")
    shardset("shuffle", src, "-o", b, "--seed", "4", "-q", "--no-sync")
    shardset("shuffle", src, "-o", c, "--seed", "5", "-q")
    assert a.read_bytes() == b.read_bytes()
    assert labels_in_order(a) != labels_in_order(c)


def test_dataset_of_targz_shards_equals_the_view(sorted_tarballs, tmp_path):
    """Into a dataset folder: several tar.gz shards (each a valid gzip that
    GNU tar lists), the same order as `shuffle --view` (no bytes copied), and
    the same order again under a --memory far below the data's size."""
    src = sorted_tarballs["testing"]
    out = tmp_path / "shuffled"
    r = json.loads(shardset("shuffle", src, "-o", out, "--format", "tar.gz",
                            "--shard-size", "1MiB", "--seed", "3", "--json", "-q").stdout)
    assert r["samples"] == 10000 and r["shards"] >= 4
    shards = sorted(out.glob("shard-*.tar.gz"))
    assert len(shards) == r["shards"]
    assert sum(png_count("tar", s) for s in shards) == 10000
    for s in shards:
        run("gzip", "-t", s)
    shardset("verify", "-q", out)

    view = tmp_path / "shuffled.view"
    shardset("shuffle", src, "-o", view, "--view", "--seed", "3", "-q")
    assert view.stat().st_size < 64 * 1024
    assert shardset("ls", view).stdout == shardset("ls", out).stdout

    small = tmp_path / "small-memory"
    r = json.loads(shardset("shuffle", src, "-o", small, "--format", "tar.gz",
                            "--shard-size", "1MiB", "--seed", "3", "--memory", "1MiB",
                            "--temp-dir", tmp_path, "--json", "-q").stdout)
    assert r["temp_bytes"] > 1 << 20
    assert shardset("ls", small).stdout == shardset("ls", out).stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".shardset-shuffle")]
    assert not [p for p in small.iterdir() if p.name.startswith(".shardset")]


def test_interleave_by_path_component_and_field(fmnist_train_native, tmp_path):
    """--interleave-by takes the label from a field (cls) or from a key path
    component; both give the same labels for a --label-from-dir dataset."""
    by_field = tmp_path / "f.view"
    by_path = tmp_path / "p.view"
    shardset("shuffle", fmnist_train_native, "--view", "-o", by_field,
             "--interleave-by", "field:cls", "--seed", "2", "-q")
    shardset("shuffle", fmnist_train_native, "--view", "-o", by_path,
             "--interleave-by", "path:0", "--seed", "2", "-q")
    for v in (by_field, by_path):
        rep = order_report(v, "--by", "field:cls")
        assert rep["neighbours"]["same_label"] == 0
    assert shardset("ls", by_field).stdout == shardset("ls", by_path).stdout


def test_unequal_classes_spread_in_proportion(fmnist_tree, tmp_path):
    """Labels 0-3 with 100, 200, 400 and 700 images (1,400 samples; label 3
    holds exactly half, the most that still allows no equal neighbours): no
    two neighbours share a label and every tenth of the order holds each label
    in proportion to its count."""
    src = tmp_path / "tree"
    sizes = {"0": 100, "1": 200, "2": 400, "3": 700}
    for label, count in sizes.items():
        (src / label).mkdir(parents=True)
        files = sorted((fmnist_tree / "training" / label).iterdir())[:count]
        for f in files:
            os.link(f, src / label / f.name)
    ds = tmp_path / "ds"
    shardset("dataset", "create", ds, "--shards", src, "--label-from-dir", "-q")
    view = tmp_path / "il.view"
    shardset("shuffle", ds, "--view", "-o", view, "--interleave-by", "label", "-q")
    rep = order_report(view, "--window", "140")
    assert rep["neighbours"]["same_label"] == 0, rep["verdict_line"]
    assert rep["verdict"] == "interleaved"
    # In proportion: every window of 140 (1/10 of the samples) holds each
    # label within 2 of its share.
    labels = [line.split(b"\t")[0].split(b"/")[0].decode()
              for line in shardset("ls", view).stdout.splitlines()]
    total = sum(sizes.values())
    for start in range(0, total - 139, 140):
        c = collections.Counter(labels[start:start + 140])
        for label, count in sizes.items():
            assert abs(c[label] - count * 140 / total) <= 2, (start, label, c)


def test_bad_arguments_write_nothing(sorted_tarballs, tmp_path):
    src = sorted_tarballs["testing"]
    cases = [
        (["--memory", "10k"], 2, "--memory"),
        (["--interleave-by", "path:x"], 2, "--interleave-by"),
        (["--interleave-by", "field:nope"], 3, "nope"),
        (["--format", "folder"], 2, "--format"),
        (["--gzip-level", "11"], 2, "--gzip-level"),
    ]
    for args, code, word in cases:
        out = tmp_path / "x"
        r = shardset("shuffle", src, "-o", out, "-q", *args, check=False)
        err = r.stderr.decode()
        assert r.returncode == code, (args, r.returncode, err)
        assert word in err, (args, err)
        assert len(err.strip().splitlines()) <= 2, err
        assert not out.exists(), args
    r = shardset("shuffle", tmp_path / "missing.tar", "-o", tmp_path / "y", check=False)
    assert r.returncode == 3 and "missing.tar" in r.stderr.decode()
    # An existing single-file output is kept unless --force.
    out = tmp_path / "keep.tar"
    out.write_bytes(b"precious")
    r = shardset("shuffle", src, "-o", out, "-q", check=False)
    assert r.returncode != 0 and "--force" in r.stderr.decode()
    assert out.read_bytes() == b"precious"
    shardset("shuffle", src, "-o", out, "-q", "--force")
    assert png_count("tar", out) == 10000


# ------------------------------------------------------------------ kill -9

def check_after_kill(out):
    """Nothing half-written is visible: every file under a final shard name
    verifies, and everything else is a hidden temporary or the state file."""
    if not out.exists():
        return
    for p in out.iterdir():
        n = p.name
        if n.startswith(".shardset-") or n == "manifest.json":
            continue
        assert n.startswith("shard-") and n.endswith(".shard"), f"stray file {p}"
        r = run(BIN, "verify", "-q", p, check=False)
        assert r.returncode == 0, f"{p}: visible but does not verify after kill -9"


def test_kill9_during_shuffle_then_resume(fmnist_train_native, tmp_path):
    """kill -9 at random moments during a shuffle whose data is many times
    --memory (so temporary files are in play); each rerun resumes after the
    last sealed shard and the result equals an uninterrupted shuffle."""
    args = ["--seed", "6", "--shard-size", "1MiB", "--memory", "4MiB", "-q"]
    ref = tmp_path / "ref"
    t0 = time.monotonic()
    shardset("shuffle", fmnist_train_native, "-o", ref, *args)
    seconds = time.monotonic() - t0
    ref_manifest = (ref / "manifest.json").read_text()
    ref_ls = shardset("ls", ref).stdout
    rng = random.Random(int(os.environ.get("SHARDSET_CRASH_SEED", "5")))
    resumed = 0
    for trial in range(4):
        out = tmp_path / f"t{trial}"
        for _ in range(1 + (trial % 2)):  # some trials are killed twice
            proc = subprocess.Popen([str(BIN), "shuffle", str(fmnist_train_native), "-o",
                                     str(out), *args], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            if trial < 2:
                time.sleep(rng.uniform(0.1, 0.9) * seconds)
            else:
                # Aimed at the gather: after a shard sealed by this run (the
                # scatter before it may take most of the run). A second kill
                # lands after the resumed run sealed one of its own, so the
                # third run resumes from what a resumed run recorded.
                sealed = len(list(out.glob("shard-*.shard"))) if out.exists() else 0
                aim = out / f"shard-{sealed + 1:06d}.shard"
                deadline = time.monotonic() + 10 * seconds + 10
                while (proc.poll() is None and time.monotonic() < deadline
                       and not aim.exists()):
                    time.sleep(0.002)
                # Briefly: the rest of the gather can take well under 0.2 s
                # and a kill after the end tests nothing.
                time.sleep(rng.uniform(0, 0.05) * seconds)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            check_after_kill(out)
        r = json.loads(shardset("shuffle", fmnist_train_native, "-o", out, *args,
                                "--json").stdout)
        resumed += r["resumed_samples"] > 0
        assert (out / "manifest.json").read_text() == ref_manifest
        assert shardset("ls", out).stdout == ref_ls
        shardset("verify", "-q", out)
        assert not [p for p in out.iterdir() if p.name.startswith(".shardset")]
    assert resumed > 0, "no kill landed after a sealed shard; the resume path was not tested"


def test_kill9_of_a_single_file_output_leaves_nothing_visible(sorted_tarballs, tmp_path):
    """A single shard file is written whole under a hidden name: a kill
    leaves no file under the final name, and the rerun removes the dead run's
    leftovers (its hidden partial file and temporary folder)."""
    out = tmp_path / "out.tar.gz"
    cmd = [str(BIN), "shuffle", str(sorted_tarballs["training"]), "-o", str(out),
           "--memory", "4MiB", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # Kill once the hidden output has grown (the gather is writing it).
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in tmp_path.iterdir() if p.name.startswith(".shardset-tmp.")]
        if partial and partial[0].stat().st_size > 1 << 20:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the shuffle ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
    run(*cmd)
    assert png_count("tar", out) == 60000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tar.gz", "out.tar.gz.idx"]


def test_peak_memory_follows_the_memory_flag(fmnist_train_native, tmp_path):
    """With --memory 4MiB the 30 MB of samples go through temporary files and
    the process's anonymous memory stays near the flag (docs/shuffle.md
    "Memory and temporary space": --memory plus a few MiB; 16 allowed here). RSS of the
    memory-mapped source is page cache and not counted."""
    peaks = {}
    for memory in ("4MiB", "64MiB"):
        out = tmp_path / memory
        proc = subprocess.Popen([str(BIN), "shuffle", str(fmnist_train_native), "-o", str(out),
                                 "--memory", memory, "-q", "--no-sync"])
        peak = 0
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            peak = max(peak, int(line.split()[1]) * 1024)
            except (FileNotFoundError, ProcessLookupError):
                pass
            time.sleep(0.002)
        assert proc.returncode == 0
        peaks[memory] = peak
    assert peaks["4MiB"] < (4 + 16) << 20, peaks
    assert peaks["64MiB"] < (64 + 16) << 20, peaks


def test_methods_write_the_same_shards(fmnist_train_native, tmp_path):
    """--method direct and scatter-gather are two ways to write one output:
    the same samples in the same order in byte-identical shards; auto takes
    direct for page-cacheable native data and scatter-gather when the data
    is larger than --memory (docs/shuffle.md "Memory and temporary space")."""
    outs = {}
    for method, memory in (("direct", "4MiB"), ("scatter-gather", "4MiB"), ("auto", "1GiB"),
                           ("auto", "4MiB")):
        out = tmp_path / f"{method}-{memory}"
        r = json.loads(shardset("shuffle", fmnist_train_native, "-o", out, "--method", method,
                                "--memory", memory, "--shard-size", "8MiB", "--seed", "4",
                                "--no-sync", "--json", "-q").stdout)
        expected = {"direct": "direct", "scatter-gather": "scatter-gather"}.get(
            method, "direct" if memory == "1GiB" else "scatter-gather")
        assert r["method"] == expected and r["samples"] == 60000
        assert (r["temp_bytes"] == 0) == (expected == "direct")
        outs[(method, memory)] = sorted(out.glob("shard-*"))
    ref = outs[("direct", "4MiB")]
    for shards in outs.values():
        assert [s.read_bytes() for s in shards] == [s.read_bytes() for s in ref]
    bad = shardset("shuffle", fmnist_train_native, "-o", tmp_path / "x", "--method", "sorted",
                   check=False)
    assert bad.returncode != 0 and b"--method" in bad.stderr
