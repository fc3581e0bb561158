"""Issue 3 acceptance 4: a tar.gz written by GNU tar, read in place. `shardset
index` records checkpoints, so one sample costs a small part of the file; the
whole archive reads sequentially at zlib speed; without the sidecar it still
opens (one scan)."""
import os
import random
import subprocess

import pytest

from conftest import BIN, run, shardset, source_files


@pytest.fixture(scope="module")
def fmnist_targz(fmnist_tree, tmp_path_factory):
    """`tar czf` of the training tree: label-ordered (one class folder after
    the other), as seed 001's users have it."""
    out = tmp_path_factory.mktemp("targz") / "train.tar.gz"
    run("tar", "czf", out, "-C", fmnist_tree, "training")
    return out


@pytest.fixture(scope="module")
def indexed_targz(fmnist_targz):
    out = shardset("index", fmnist_targz).stdout.decode()
    assert "indexed 60000 samples" in out
    return fmnist_targz


def run_counting_reads(*args):
    """Runs the CLI; returns (CompletedProcess-like stdout, returncode, rchar):
    rchar is the bytes the process read through read/pread, from
    /proc/PID/io read after it exited but before it is reaped."""
    proc = subprocess.Popen([str(BIN), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    with open(f"/proc/{proc.pid}/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    proc.wait()
    assert proc.returncode == 0, err
    return out, int(io["rchar"])


def keys_of(target):
    return [line.split(b"\t")[0].decode() for line in shardset("ls", target).stdout.splitlines()]


@pytest.fixture(scope="module")
def keys(indexed_targz):
    """The keys in ordinal order: GNU tar's readdir order, not sorted."""
    return keys_of(indexed_targz)


@pytest.fixture(scope="module")
def files(fmnist_tree):
    return source_files(fmnist_tree)


def test_cat_of_the_last_member_reads_a_small_part(indexed_targz, keys, files):
    size = indexed_targz.stat().st_size
    sidecar = indexed_targz.with_name(indexed_targz.name + ".idx")
    assert sidecar.stat().st_size < size // 10
    assert len(keys) == 60000
    assert sorted(keys) == sorted(k[:-4] for k in files if k.startswith("training/"))
    last = keys[-1]
    out, rchar = run_counting_reads("cat", indexed_targz, last, "--field", "png")
    assert out == files[last + ".png"].read_bytes()
    # Detection, the fingerprint and one checkpoint's span: well under a
    # tenth of the file (measured: about 0.8 MB of 29.6 MB).
    print(f"cat {last}: read {rchar} bytes of a {size} byte tar.gz")
    assert rchar < size // 10


def test_random_cats_return_the_right_bytes(indexed_targz, keys, files):
    rng = random.Random(5)
    picks = [keys[rng.randrange(len(keys))] for _ in range(2000)]
    got = shardset("cat", indexed_targz, *picks).stdout
    assert got == b"".join(files[k + ".png"].read_bytes() for k in picks)
    # By ordinal too.
    ordinals = [rng.randrange(len(keys)) for _ in range(200)]
    args = []
    for o in ordinals:
        args += ["--ordinal", str(o)]
    got = shardset("cat", indexed_targz, *args).stdout
    assert got == b"".join(files[keys[o] + ".png"].read_bytes() for o in ordinals)


def test_extract_equals_the_source_tree(indexed_targz, fmnist_tree, tmp_path):
    out = tmp_path / "x"
    shardset("extract", indexed_targz, "-o", out, "-q")
    run("diff", "-r", fmnist_tree / "training", out / "training")


def test_verify_checks_the_whole_stream(indexed_targz):
    assert shardset("verify", indexed_targz, "-q").returncode == 0


def test_without_a_sidecar_open_scans(fmnist_targz, keys, files, tmp_path):
    copy = tmp_path / "copy.tar.gz"
    copy.write_bytes(fmnist_targz.read_bytes())
    assert not copy.with_name("copy.tar.gz.idx").exists()
    assert keys_of(copy) == keys
    rng = random.Random(9)
    picks = rng.sample(keys, 50)
    assert shardset("cat", copy, *picks).stdout == b"".join(
        files[k + ".png"].read_bytes() for k in picks)


def test_stale_sidecar_is_refused(fmnist_targz, keys, tmp_path):
    copy = tmp_path / "stale.tar.gz"
    copy.write_bytes(fmnist_targz.read_bytes())
    shardset("index", copy)
    key = keys[0]
    with open(copy, "ab") as f:
        f.write(b"\0" * 512)  # zero padding: still a valid gzip file
    p = shardset("cat", copy, key, check=False)
    assert p.returncode != 0
    assert b"stale" in p.stderr and b"shardset index" in p.stderr
    shardset("index", copy)
    assert shardset("cat", copy, key).stdout
