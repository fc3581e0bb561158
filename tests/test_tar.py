"""Issue 2 acceptance 3: tar shards that GNU tar, bsdtar and Python tarfile read,
and random access into a tar written by GNU tar through `shardset index`."""
import json
import random
import tarfile

import pytest

from conftest import run, shardset, source_files


@pytest.fixture(scope="module")
def fmnist_train_tar(fmnist_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("tarpack") / "train"
    shardset("pack", fmnist_tree / "training", "-o", out, "--format", "tar",
             "--shard-size", "16MiB", "-q")
    return out


def tar_shards(dataset):
    return sorted(dataset.glob("shard-*.tar"))


def test_gnu_tar_lists_and_extracts_identical_tree(fmnist_tree, fmnist_train_tar, tmp_path):
    shards = tar_shards(fmnist_train_tar)
    assert len(shards) > 1
    for s in shards:
        assert s.with_name(s.name + ".idx").exists()
    listed = []
    for s in shards:
        listed += run("tar", "tf", s).stdout.decode().splitlines()
    files = source_files(fmnist_tree / "training")
    assert sorted(listed) == sorted(files)
    out = tmp_path / "gnu"
    out.mkdir()
    for s in shards:
        run("tar", "xf", s, "-C", out)
    run("diff", "-r", fmnist_tree / "training", out)


def test_bsdtar_and_python_tarfile_read_every_member(fmnist_tree, fmnist_train_tar, tmp_path):
    files = source_files(fmnist_tree / "training")
    seen = 0
    for s in tar_shards(fmnist_train_tar):
        bsd = run("bsdtar", "tf", s).stdout.decode().splitlines()
        with tarfile.open(s) as tf:
            members = tf.getmembers()
            assert [m.name for m in members] == bsd
            for m in members:
                assert tf.extractfile(m).read() == files[m.name].read_bytes()
                seen += 1
    assert seen == 60000


def test_tar_dataset_reads_like_native(fmnist_train_tar, fmnist_tree):
    info = json.loads(shardset("info", fmnist_train_tar, "--json").stdout)
    assert info["samples"] == 60000
    assert shardset("verify", fmnist_train_tar, "-q").returncode == 0
    files = source_files(fmnist_tree / "training")
    rng = random.Random(3)
    keys = rng.sample(sorted(k[:-4] for k in files), 500)
    got = shardset("cat", fmnist_train_tar, *keys).stdout
    assert got == b"".join(files[k + ".png"].read_bytes() for k in keys)


def test_index_of_a_gnu_tar_gives_random_access(fmnist_tree, tmp_path):
    tar = tmp_path / "fm.tar"
    # Label-ordered, as `tar cf` of a class-folder tree is (seed 001).
    run("tar", "cf", tar, "-C", fmnist_tree, "training")
    out = shardset("index", tar).stdout.decode()
    assert "indexed 60000 samples" in out
    idx = tmp_path / "fm.tar.idx"
    assert idx.exists()
    assert idx.stat().st_size < tar.stat().st_size // 50
    files = source_files(fmnist_tree)
    # GNU tar stores folder entries in readdir order, so the ordinal order
    # is whatever ls reports, and the keys are not sorted.
    keys = [line.split(b"\t")[0].decode() for line in shardset("ls", tar).stdout.splitlines()]
    assert sorted(keys) == sorted(k[:-4] for k in files if k.startswith("training/"))
    rng = random.Random(11)
    picks = [rng.randrange(len(keys)) for _ in range(2000)]
    want = b"".join(files[keys[i] + ".png"].read_bytes() for i in picks)
    assert shardset("cat", tar, *[keys[i] for i in picks]).stdout == want
    args = []
    for i in picks:
        args += ["--ordinal", str(i)]
    assert shardset("cat", tar, *args).stdout == want
    assert shardset("verify", tar, "-q").returncode == 0
    # The tar changed after indexing: the stale sidecar is refused, clearly.
    with open(tar, "ab") as f:
        f.write(b"\0" * 10240)
    p = shardset("cat", tar, keys[0], check=False)
    assert p.returncode != 0
    assert b"stale" in p.stderr and b"shardset index" in p.stderr
