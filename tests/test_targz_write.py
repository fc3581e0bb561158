"""`shardset pack --format tar.gz`: shards that gzip, GNU tar, bsdtar and
Python tarfile read, whose tar is what `--format tar` writes, with a sidecar
that is current from the start (docs/formats/targz-index.md "Writing")."""
import gzip
import os
import random
import shutil
import subprocess
import tarfile

import pytest

from conftest import BIN, run, shardset, source_files


def targz_shards(dataset):
    return sorted(dataset.glob("shard-*.tar.gz"))


@pytest.fixture(scope="module")
def tricky_tree(tmp_path_factory):
    """Names for every way a tar stores them (ustar, prefix split, pax), empty
    files, several fields per sample, and files larger than a checkpoint span."""
    root = tmp_path_factory.mktemp("tricky") / "src"
    rng = random.Random(3)
    files = {
        "plain/0001.png": rng.randbytes(3000),
        "plain/0001.cls": b"3",
        "plain/0001.json": b"",
        "plain/0002.png": rng.randbytes(700),
        "d/" + "a" * 94 + ".txt": b"a name of exactly 100 bytes",
        "b" * 74 + "/" + "c" * 71 + ".bin": b"150 bytes, split at the slash",
        "n" * 146 + ".bin": b"150 bytes without a slash: pax",
        "p" * 99 + "/" + "q" * 99 + "/" + "r" * 96 + ".bin": b"300 bytes: pax",
        "donn\u00e9es/\u00e9t\u00e9_\U0001F600.txt": "utf-8 \u00e9".encode(),
        "with space/a b c.txt": b"spaces",
        "README": b"no field",
        "big/blob.bin": rng.randbytes(3 << 20),
        "big/words.txt": b" ".join(rng.choice([b"shard", b"sample", b"gzip", b"key\n"])
                                   for _ in range(400000)),
    }
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture(scope="module")
def fmnist_testing(fmnist_tree):
    return fmnist_tree / "testing"


def pack(src, out, *args):
    shardset("pack", src, "-o", out, "--format", "tar.gz", "-q", *args)
    return out


@pytest.fixture(scope="module")
def packed(tricky_tree, fmnist_testing, tmp_path_factory):
    """Both trees packed to tar.gz, in several shards each."""
    base = tmp_path_factory.mktemp("targzpack")
    return {
        "tricky": (tricky_tree, pack(tricky_tree, base / "tricky", "--shard-size", "1MiB")),
        "fmnist": (fmnist_testing, pack(fmnist_testing, base / "fmnist", "--shard-size", "2MiB")),
    }


@pytest.fixture(params=["tricky", "fmnist"])
def case(request, packed):
    return packed[request.param]


def members(shard, tool):
    return run(*tool, shard).stdout.decode("utf-8", "surrogateescape").splitlines()


def test_shards_and_sidecars(case):
    _, out = case
    shards = targz_shards(out)
    assert len(shards) > 1
    for s in shards:
        assert s.with_name(s.name + ".idx").exists()
        run("gzip", "-t", s)
    assert not [p for p in out.iterdir() if p.name.startswith(".shardset-tmp.")]


def test_gnu_tar_lists_and_extracts_the_source(case, tmp_path):
    src, out = case
    files = source_files(src)
    listed, verbose = [], []
    for s in targz_shards(out):
        listed += members(s, ["tar", "tzf"])
        verbose += members(s, ["tar", "tzvf"])
    assert len(verbose) == len(listed) == len(files)
    assert all(line.startswith("-rw-r--r-- 0/0") for line in verbose), verbose[0]
    assert sorted(listed) == sorted(files)
    x = tmp_path / "gnu"
    x.mkdir()
    for s in targz_shards(out):
        run("tar", "xzf", s, "-C", x)
    run("diff", "-r", src, x)


def test_python_tarfile_reads_every_member(case):
    src, out = case
    files = source_files(src)
    seen = 0
    for s in targz_shards(out):
        with tarfile.open(s, "r:gz") as t:
            for m in t:
                assert m.isfile(), m.name
                assert t.extractfile(m).read() == files[m.name].read_bytes(), m.name
                seen += 1
    assert seen == len(files)


@pytest.mark.skipif(shutil.which("bsdtar") is None, reason="bsdtar is not installed")
def test_bsdtar_lists_every_member(case):
    src, out = case
    listed = []
    for s in targz_shards(out):
        listed += members(s, ["bsdtar", "-tzf"])
    assert sorted(listed) == sorted(source_files(src))


def test_the_tar_inside_is_what_format_tar_writes(case, tmp_path):
    """With the same shard boundaries (--shard-samples), each tar.gz shard
    inflates to exactly the bytes of the tar shard `--format tar` writes."""
    src, _ = case
    n = 4 if src.name == "src" else 4000
    outs = {}
    for fmt in ("tar", "tar.gz"):
        outs[fmt] = tmp_path / fmt
        shardset("pack", src, "-o", outs[fmt], "--format", fmt, "-q", "--shard-samples", str(n),
                 "--shard-size", "1GiB")
    tars = sorted(outs["tar"].glob("shard-*.tar"))
    gzs = targz_shards(outs["tar.gz"])
    assert len(tars) == len(gzs) > 1
    for t, g in zip(tars, gzs):
        assert gzip.decompress(g.read_bytes()) == t.read_bytes(), g.name


def test_shardset_reads_it(case, tmp_path):
    src, out = case
    files = source_files(src)
    shardset("verify", "-q", out)
    lines = shardset("ls", out).stdout.splitlines()
    fields = sum(len(line.split(b"\t")[1].split(b" ")) for line in lines)
    assert fields == len(files)
    rng = random.Random(7)
    keys = [line.split(b"\t")[0].decode("utf-8", "surrogateescape") for line in lines]
    for key in rng.sample(keys, min(20, len(keys))):
        (name,) = [f for f in files if f == key or f.startswith(key + ".")][:1]
        field = name[len(key) + 1:]
        got = shardset("cat", out, key, *(["--field", field] if field else [])).stdout
        assert got == files[name].read_bytes(), name
    x = tmp_path / "x"
    shardset("extract", out, "-o", x, "-q")
    run("diff", "-r", src, x)


def rchar_of(*args):
    """Runs the CLI; returns (stdout, bytes it read through read/pread)."""
    proc = subprocess.Popen([str(BIN), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    with open(f"/proc/{proc.pid}/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    proc.wait()
    assert proc.returncode == 0, err
    return out, int(io["rchar"])


def test_the_sidecar_is_current(packed, fmnist_testing, tmp_path):
    """`shardset index` (a scan) writes the sidecar the writer wrote, byte for
    byte; and a read through it does not inflate the whole file."""
    for src, out in packed.values():
        for s in targz_shards(out):
            sidecar = s.with_name(s.name + ".idx")
            copy = tmp_path / s.name
            shutil.copyfile(s, copy)
            shardset("index", copy)
            assert copy.with_name(copy.name + ".idx").read_bytes() == sidecar.read_bytes(), s
    one = pack(fmnist_testing, tmp_path / "one", "--shard-size", "1GiB")
    (s,) = targz_shards(one)
    last = shardset("ls", s).stdout.splitlines()[-1].split(b"\t")[0].decode()
    got, rchar = rchar_of("cat", s, last, "--field", "png")
    assert got == (fmnist_testing / (last + ".png")).read_bytes()
    size = s.stat().st_size
    # The sidecar, the fingerprint's 128 KiB and one span from the checkpoint
    # before the sample (measured: about 0.7 MB of 4.6 MB).
    print(f"cat {last}: read {rchar} bytes of a {size} byte tar.gz")
    assert rchar < size // 4
