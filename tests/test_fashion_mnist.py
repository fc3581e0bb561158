"""Issue 2 acceptance 2: Fashion-MNIST's 60,000 training PNGs packed, then
info, extract + diff -r, and 10,000 random reads by key and by ordinal."""
import json
import random
import subprocess

from conftest import run, shardset, source_files


def test_info_counts_and_labels(fmnist_train_native):
    info = json.loads(shardset("info", fmnist_train_native, "--json").stdout)
    assert info["samples"] == 60000
    assert info["labels"] == {str(k): 6000 for k in range(10)}
    assert info["fields"]["png"]["samples"] == 60000
    assert info["fields"]["cls"]["derived"] is True
    # Framing, index, keys, checksums and the cls labels together: at most 3%
    # over the PNG files' own bytes (issue 2).
    assert info["overhead_percent"] <= 3.0, info["overhead_percent"]


def test_extract_is_identical(fmnist_tree, fmnist_train_native, tmp_path):
    out = tmp_path / "x"
    shardset("extract", fmnist_train_native, "-o", out, "-q")
    run("diff", "-r", fmnist_tree / "training", out)


def test_random_cat_by_key_and_ordinal(fmnist_tree, fmnist_train_native):
    files = source_files(fmnist_tree / "training")
    # ls gives the ordinal order; keys are paths without ".png".
    keys = [line.split(b"\t")[0].decode()
            for line in shardset("ls", fmnist_train_native).stdout.splitlines()]
    assert len(keys) == 60000
    rng = random.Random(20261121)
    picks = [rng.randrange(len(keys)) for _ in range(10000)]
    expected = b"".join(files[keys[i] + ".png"].read_bytes() for i in picks)
    # cat writes several samples one after another, like cat(1).
    for chunk in range(0, len(picks), 2500):
        part = picks[chunk:chunk + 2500]
        want = b"".join(files[keys[i] + ".png"].read_bytes() for i in part)
        got = shardset("cat", fmnist_train_native, *[keys[i] for i in part]).stdout
        assert got == want
        args = []
        for i in part:
            args += ["--ordinal", str(i)]
        got = shardset("cat", fmnist_train_native, *args).stdout
        assert got == want
    assert len(expected) > 0


def test_cat_errors_are_one_line(fmnist_train_native):
    p = shardset("cat", fmnist_train_native, "no/such/key", check=False)
    assert p.returncode == 3
    assert p.stderr.count(b"\n") == 1 and b"no/such/key" in p.stderr
    p = shardset("cat", fmnist_train_native, "--ordinal", "60000", check=False)
    assert p.returncode == 3 and b"60000" in p.stderr
