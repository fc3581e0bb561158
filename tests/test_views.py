"""Issue 4 acceptance 1, 3, 4 and 5 through the CLI: datasets adopted in
place, mixes and sweeps of loose-file sources (seed 000 at small scale), a
dataset of tar + zip + tsv shards split with --stratify, damaged sources
detected when a view is read, and bad recipes that write nothing.
(Acceptance 2, link and ImageFolder, is tests/test_link.py.)"""
import collections
import fnmatch
import hashlib
import json
import os
import pathlib
import random
import shutil
import tarfile
from fractions import Fraction

import pytest

from conftest import shardset, source_files

SWEEP = ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]


def ls_keys(target, cwd=None):
    out = shardset("ls", target, cwd=cwd).stdout.decode()
    return [line.split("\t")[0] for line in out.splitlines()]


def info_json(target, cwd=None):
    return json.loads(shardset("info", target, "--json", cwd=cwd).stdout)


def made(proc):
    """The JSON lines `mix/split --json` print: view path -> its object."""
    return {j["view"]: j for j in map(json.loads, proc.stdout.decode().splitlines())}


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def carve(tree, rel_dirs, dst):
    """Hard-links tree/<rel>/* to dst/<rel>/* for each rel. Tests never
    modify these files in place: a hard link shares the session's tree."""
    for rel in rel_dirs:
        (dst / rel).mkdir(parents=True)
        with os.scandir(tree / rel) as it:
            for e in it:
                link_or_copy(e.path, dst / rel / e.name)


def one_line(proc):
    err = proc.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- seed 000

@pytest.fixture(scope="module")
def seed000(fmnist_tree, tmp_path_factory):
    """Three loose-file sources carved from Fashion-MNIST, adopted in place:
    camvid = testing (10,000), synthia = training labels 0-4 (30,000),
    pfd = training labels 5-9 (30,000). Keys keep the split folder
    ("training/3/17"), so they are unique across the three."""
    base = tmp_path_factory.mktemp("seed000")
    parts = {
        "camvid": ["testing/%d" % l for l in range(10)],
        "synthia": ["training/%d" % l for l in range(5)],
        "pfd": ["training/%d" % l for l in range(5, 10)],
    }
    (base / "ds").mkdir()
    keys = {}
    for name, dirs in parts.items():
        carve(fmnist_tree, dirs, base / "raw" / name)
        shardset("dataset", "create", f"ds/{name}", "--shards", f"raw/{name}",
                 "--label-from-dir", "-q", cwd=base)
        keys[name] = ls_keys(f"ds/{name}", cwd=base)
    return base, keys


SWEEP_CMD = ["mix", "camvid=ds/camvid", "pfd=ds/pfd", "synthia=ds/synthia",
             "--sweep", "synthia=0:1:0.1", "--json", "-o", "sweep"]


def sweep_name(f):
    return f"camvid-all+pfd-all+synthia-{f}.view"


@pytest.fixture(scope="module")
def sweep7(seed000):
    """The 11-view sweep with seed 7: (per-view --json result, ls keys)."""
    base, _ = seed000
    res = made(shardset(*SWEEP_CMD, "--seed", "7", cwd=base))
    keys = {f: ls_keys(f"sweep/{sweep_name(f)}", cwd=base) for f in SWEEP}
    return res, keys


def test_sweep_makes_eleven_views_with_exact_counts(seed000, sweep7):
    base, src = seed000
    res, keys = sweep7
    files = sorted(p.name for p in (base / "sweep").iterdir())
    assert files == sorted(sweep_name(f) for f in SWEEP)
    assert len(files) == 11
    total = 0
    for f in SWEEP:
        k = int(Fraction(f) * 30000 + Fraction(1, 2))
        j = res[f"sweep/{sweep_name(f)}"]
        assert j["per_source"] == {"camvid": 10000, "pfd": 30000, "synthia": k}
        assert j["samples"] == 40000 + k == len(keys[f])
        total += (base / "sweep" / sweep_name(f)).stat().st_size
    # 11 views of up to 70,000 samples each: bytes per sample, not a copy.
    assert total < 1 << 20
    info = info_json(f"sweep/{sweep_name('0.3')}", cwd=base)
    assert [(s["name"], s["samples"], s["selected"]) for s in info["sources"]] == [
        ("camvid", 10000, 10000), ("pfd", 30000, 30000), ("synthia", 30000, 9000)]
    assert info["sources"][1]["labels"] == {str(l): 6000 for l in range(5, 10)}
    assert sum(info["sources"][2]["labels"].values()) == 9000
    assert set(info["sources"][2]["labels"]) <= {"0", "1", "2", "3", "4"}
    assert info["recipe"]["seed"] == 7 and info["recipe"]["verb"] == "mix"


def test_sweep_views_keep_source_order_and_never_repeat(seed000, sweep7):
    _, src = seed000
    _, keys = sweep7
    synthia_pos = {k: i for i, k in enumerate(src["synthia"])}
    for f in SWEEP:
        v = keys[f]
        assert len(set(v)) == len(v), f"{f}: a sample twice without --replace"
        # The mix keeps part order, and each source's order within its part.
        assert v[:10000] == src["camvid"]
        assert v[10000:40000] == src["pfd"]
        picked = [synthia_pos[k] for k in v[40000:]]
        assert picked == sorted(picked)
    assert keys["0.0"] == src["camvid"] + src["pfd"]
    assert keys["1.0"] == src["camvid"] + src["pfd"] + src["synthia"]


def test_sweep_views_are_nested(sweep7):
    _, keys = sweep7
    prev = set()
    for f in SWEEP:
        cur = set(keys[f][40000:])
        assert prev <= cur, f"the {f} view lacks samples of the one before it"
        prev = cur


def test_sweep_is_reproducible_and_seed_dependent(seed000, sweep7):
    base, _ = seed000
    _, keys = sweep7
    first = base / "sweep-seed7-first"
    (base / "sweep").rename(first)
    try:
        # The recipe records the command line, -o included, so byte-identity
        # holds for the same command (same -o, same working directory).
        shardset(*SWEEP_CMD, "--seed", "7", cwd=base)
        for f in SWEEP:
            a = (first / sweep_name(f)).read_bytes()
            assert (base / "sweep" / sweep_name(f)).read_bytes() == a, f
    finally:
        shutil.rmtree(base / "sweep")
        first.rename(base / "sweep")
    # Into another folder: the same selection.
    cmd = [a if a != "sweep" else "sweep-again" for a in SWEEP_CMD]
    shardset(*cmd, "--seed", "7", cwd=base)
    assert ls_keys(f"sweep-again/{sweep_name('0.3')}", cwd=base) == keys["0.3"]
    # Another seed: another selection of synthia, the same counts.
    cmd = [a if a != "sweep" else "sweep8" for a in SWEEP_CMD]
    res8 = made(shardset(*cmd, "--seed", "8", cwd=base))
    assert res8[f"sweep8/{sweep_name('0.5')}"]["per_source"]["synthia"] == 15000
    k8 = ls_keys(f"sweep8/{sweep_name('0.5')}", cwd=base)
    assert len(k8) == len(keys["0.5"])
    assert set(k8[40000:]) != set(keys["0.5"][40000:])


def test_mix_counts_weights_and_exact_rounding(seed000):
    base, src = seed000
    r = made(shardset("mix", "camvid=ds/camvid", "synthia=ds/synthia:500", "--seed", "1",
                      "-o", "count.view", "--json", cwd=base))
    assert r["count.view"]["per_source"] == {"camvid": 10000, "synthia": 500}
    v = ls_keys("count.view", cwd=base)
    assert len(v) == len(set(v)) == 10500 and set(v[10000:]) <= set(src["synthia"])
    r = made(shardset("mix", "camvid=ds/camvid@1", "synthia=ds/synthia@3", "--size", "4000",
                      "--seed", "1", "-o", "weights.view", "--json", cwd=base))
    assert r["weights.view"]["per_source"] == {"camvid": 1000, "synthia": 3000}
    assert r["weights.view"]["samples"] == 4000
    # An odd-sized source: 0.3 * 1235 = 370.5 exactly (a binary float says
    # 370.49999...), so round half up must give 371.
    rng = random.Random(5)
    picked = rng.sample(src["camvid"], 1235)
    (base / "odd-keys.txt").write_text("\n".join(picked) + "\n")
    shardset("select", "ds/camvid", "--keys", "odd-keys.txt", "-o", "odd.view", "-q", cwd=base)
    assert ls_keys("odd.view", cwd=base) == picked  # --keys keeps the file's order
    res = made(shardset("mix", "o=odd.view", "--sweep", "o=0:1:0.1", "--seed", "3",
                        "-o", "odd-sweep", "--json", cwd=base))
    counts = {}
    for f in SWEEP:
        counts[f] = res[f"odd-sweep/o-{f}.view"]["samples"]
        assert counts[f] == int(Fraction(f) * 1235 + Fraction(1, 2)), f
    assert counts["0.3"] == 371 and counts["0.5"] == 618
    r = made(shardset("mix", "o=odd.view:0.5", "-o", "half.view", "--json", cwd=base))
    assert r["half.view"]["samples"] == 618


def test_replace_draws_every_sample_two_or_three_times(seed000):
    base, src = seed000
    r = made(shardset("mix", "a=ds/camvid:2.5", "--replace", "--seed", "3", "-o",
                      "replace.view", "--json", cwd=base))
    assert r["replace.view"]["samples"] == 25000
    n = collections.Counter(ls_keys("replace.view", cwd=base))
    assert set(n) == set(src["camvid"])
    assert sorted(collections.Counter(n.values()).items()) == [(2, 5000), (3, 5000)]


# ---------------------------------------------------------------- bad recipes

@pytest.fixture(scope="module")
def empties(seed000):
    base, _ = seed000
    shardset("select", "ds/camvid", "--label", "nosuch", "-o", "empty.view", "-q", cwd=base)
    assert info_json("empty.view", cwd=base)["samples"] == 0
    (base / "empty-folder").mkdir()
    shardset("dataset", "create", "ds/empty", "--shards", "empty-folder", "-q", cwd=base)
    return base


BAD = [
    ("fraction-over-1", ["mix", "a=ds/camvid:1.5", "-o", "OUT"], "--replace"),
    ("count-over-size", ["mix", "a=ds/camvid:10001", "-o", "OUT"], "more than it has"),
    ("unknown-source", ["mix", "a=ds/camvid", "b=ds/nosuch", "-o", "OUT"], "nosuch"),
    ("negative-count", ["mix", "a=ds/camvid:-5", "-o", "OUT"], "-5"),
    ("negative-fraction", ["mix", "a=ds/camvid:-0.5", "-o", "OUT"], "-0.5"),
    ("empty-view", ["mix", "a=ds/camvid", "e=empty.view", "-o", "OUT"], "empty.view"),
    ("empty-dataset", ["mix", "a=ds/camvid", "e=ds/empty:0.5", "-o", "OUT"], "ds/empty"),
    ("unknown-sweep-part", ["mix", "a=ds/camvid", "b=ds/synthia", "--sweep", "c=0:1:0.1",
                            "-o", "OUT"], "'c'"),
    ("sweep-past-1", ["mix", "a=ds/camvid", "b=ds/synthia", "--sweep", "b=0:1.5:0.5",
                      "-o", "OUT"], "--replace"),
    ("weights-without-size", ["mix", "a=ds/camvid@1", "b=ds/synthia@3", "-o", "OUT"],
     "--size"),
    ("ratios-over-1", ["split", "ds/camvid", "--ratios", "train=0.8,val=0.2,test=0.1",
                       "-o", "OUT"], "more than 1"),
    ("split-without-parts", ["split", "ds/camvid", "-o", "OUT"], "--ratios"),
]


@pytest.mark.parametrize("args,says", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_recipe_says_one_line_and_writes_nothing(empties, tmp_path, args, says):
    base = empties
    out = tmp_path / "out"
    before = sorted(os.listdir(base))
    p = shardset(*[str(out) if a == "OUT" else a for a in args], check=False, cwd=base)
    assert p.returncode != 0
    err = one_line(p)
    assert err.startswith(f"shardset {args[0]}: ") and says in err, err
    assert not out.exists()
    assert not os.path.lexists(out)
    assert sorted(os.listdir(base)) == before
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- tar + zip + tsv

@pytest.fixture(scope="module")
def mixed(fmnist_tree, tmp_path_factory):
    """training/ packed as 3 tar shards, testing labels 0-4 as a zip and 5-9
    as a tsv (keys "training/3/17", "testing/5/8"), then adopted as one
    dataset `mixed` after one tar lost its sidecar."""
    base = tmp_path_factory.mktemp("mixed")
    for d in ("src/tr", "src/lo/testing", "src/hi/testing"):
        (base / d).mkdir(parents=True)
    (base / "src/tr/training").symlink_to(fmnist_tree / "training")
    for l in range(10):
        half = "lo" if l < 5 else "hi"
        (base / f"src/{half}/testing/{l}").symlink_to(fmnist_tree / "testing" / str(l))
    shardset("pack", "src/tr", "-o", "tar", "--format", "tar", "--shard-samples", "20000",
             "--label-from-dir", "-q", cwd=base)
    shardset("pack", "src/lo", "-o", "zip", "--format", "zip", "--label-from-dir", "-q",
             cwd=base)
    shardset("pack", "src/hi", "-o", "tsv", "--format", "tsv", "--label-from-dir", "-q",
             cwd=base)
    # Another zip of 5000 samples, for the replaced-shard test.
    shardset("pack", "src/hi", "-o", "zip-other", "--format", "zip", "--label-from-dir", "-q",
             cwd=base)
    tars = sorted(str(p.relative_to(base)) for p in (base / "tar").glob("shard-*.tar"))
    assert len(tars) == 3
    shards = tars + ["zip/shard-000000.zip", "tsv/shard-000000.tsv"]
    idx = base / (tars[1] + ".idx")
    idx_bytes = idx.read_bytes()
    idx.unlink()
    before = {s: sha256(base / s) for s in shards}
    shardset("dataset", "create", "mixed", "--shards", *shards, "-q", cwd=base)
    return dict(base=base, shards=shards, before=before, idx=idx, idx_bytes=idx_bytes)


def test_tar_zip_tsv_dataset_reads_as_one_sequence(mixed, fmnist_tree):
    base, shards = mixed["base"], mixed["shards"]
    # Adopted in place: the missing sidecar rebuilt, no shard rewritten.
    assert mixed["idx"].read_bytes() == mixed["idx_bytes"]
    assert {s: sha256(base / s) for s in shards} == mixed["before"]
    info = info_json("mixed", cwd=base)
    assert info["samples"] == 70000 and info["shards"] == 5
    assert [s["format"] for s in info["shard_list"]] == ["tar"] * 3 + ["zip", "tsv"]
    assert info["labels"] == {str(l): 7000 for l in range(10)}
    whole = shardset("ls", "mixed", cwd=base).stdout
    assert whole == b"".join(shardset("ls", s, cwd=base).stdout for s in shards)
    keys = [line.split(b"\t")[0].decode() for line in whole.splitlines()]
    assert len(set(keys)) == 70000
    assert sorted(keys) == sorted(k[:-4] for k in source_files(fmnist_tree))
    rng = random.Random(4)
    picks = rng.sample(range(70000), 300)
    args = []
    for i in picks:
        args += ["--ordinal", str(i)]
    got = shardset("cat", "mixed", "--field", "png", *args, cwd=base).stdout
    assert got == b"".join((fmnist_tree / (keys[i] + ".png")).read_bytes() for i in picks)


def label_counts(view, cwd):
    return {l: n for l, n in info_json(view, cwd=cwd)["labels"].items()}


def check_stratified_split(base, src, ratios, res, out):
    src_labels = label_counts(src, base)
    src_keys = ls_keys(src, cwd=base)
    union = []
    for name, r in ratios.items():
        view = f"{out}/{name}.view"
        assert view in res
        got = label_counts(view, base)
        for label, n in src_labels.items():
            exact = Fraction(r) * n
            assert abs(got.get(label, 0) - exact) < 1, (name, label, got.get(label), exact)
        k = ls_keys(view, cwd=base)
        assert len(k) == res[view]["samples"] == sum(got.values())
        union += k
    assert len(union) == len(set(union)), "the parts overlap"
    assert sorted(union) == sorted(src_keys)


def test_stratified_split_keeps_every_label_share(mixed):
    base = mixed["base"]
    ratios = {"train": "0.8", "val": "0.1", "test": "0.1"}
    res = made(shardset("split", "mixed", "--ratios", "train=0.8,val=0.1,test=0.1",
                        "--stratify", "--seed", "1", "-o", "s", "--json", cwd=base))
    assert sorted(os.listdir(base / "s")) == ["test.view", "train.view", "val.view"]
    check_stratified_split(base, "mixed", ratios, res, "s")
    # Uneven labels (a random 30% of mixed), uneven ratios: within one sample.
    shardset("mix", "m=mixed:0.3", "--seed", "3", "-o", "m30.view", "-q", cwd=base)
    labels = label_counts("m30.view", base)
    assert len(set(labels.values())) > 1
    ratios = {"train": "0.7", "val": "0.2", "test": "0.1"}
    res = made(shardset("split", "m30.view", "--ratios", "0.7,0.2,0.1", "--stratify",
                        "--seed", "2", "-o", "s30", "--json", cwd=base))
    check_stratified_split(base, "m30.view", ratios, res, "s30")


def test_split_by_prefix(fmnist_tree, tmp_path):
    shardset("dataset", "create", tmp_path / "fm", "--shards", fmnist_tree,
             "--label-from-dir", "-q")
    res = made(shardset("split", "fm", "--by-prefix", "training=train,testing=test",
                        "-o", "bp", "--json", cwd=tmp_path))
    assert {v: j["samples"] for v, j in res.items()} == {"bp/train.view": 60000,
                                                         "bp/test.view": 10000}
    test_keys = ls_keys("bp/test.view", cwd=tmp_path)
    assert all(k.startswith("testing/") for k in test_keys)
    assert len(set(test_keys)) == 10000


# ---------------------------------------------------------------- damaged sources

@pytest.fixture
def damage(mixed, tmp_path):
    """A private `mixed` (shards hard-linked: delete or replace them, never
    write them in place) and a view over half of it."""
    base = mixed["base"]
    for d in ("tar", "zip", "tsv", "zip-other"):
        (tmp_path / d).mkdir()
        for f in (base / d).iterdir():
            link_or_copy(f, tmp_path / d / f.name)
    shardset("dataset", "create", "mixed", "--shards", *mixed["shards"], "-q", cwd=tmp_path)
    shardset("mix", "m=mixed:0.5", "--seed", "1", "-o", "v.view", "-q", cwd=tmp_path)
    keys = ls_keys("v.view", cwd=tmp_path)
    return tmp_path, keys


def shard_keys(shard, cwd):
    return set(ls_keys(shard, cwd=cwd))


def test_deleted_shard_is_named(damage, fmnist_tree):
    d, keys = damage
    in_tar1 = shard_keys("tar/shard-000001.tar", d)
    pos = next(i for i, k in enumerate(keys) if k in in_tar1)
    (d / "tar/shard-000001.tar").unlink()
    for args in (["cat", "v.view", "--field", "png", "--ordinal", str(pos)], ["ls", "v.view"]):
        p = shardset(*args, check=False, cwd=d)
        assert p.returncode == 3, (args, p.stderr)
        err = one_line(p)
        assert "v.view" in err and "'m'" in err and "shard-000001.tar" in err, err
        if args[0] == "cat":
            assert p.stdout == b""
    # Samples in the other shards still read.
    pos0 = next(i for i, k in enumerate(keys) if k.startswith("testing/"))
    got = shardset("cat", "v.view", "--field", "png", "--ordinal", str(pos0), cwd=d).stdout
    assert got == (fmnist_tree / (keys[pos0] + ".png")).read_bytes()


def test_cat_by_key_with_deleted_shard_names_the_shard(damage):
    d, keys = damage
    in_tar1 = shard_keys("tar/shard-000001.tar", d)
    key = next(k for k in keys if k in in_tar1)
    (d / "tar/shard-000001.tar").unlink()
    p = shardset("cat", "mixed", "--field", "png", key, check=False, cwd=d)
    assert p.returncode == 3 and "shard-000001.tar" in one_line(p)
    p = shardset("cat", "v.view", "--field", "png", key, check=False, cwd=d)
    assert p.returncode == 3 and p.stdout == b""
    err = one_line(p)
    assert "v.view" in err and "'m'" in err and "shard-000001.tar" in err, err


def test_verify_view_with_deleted_shard_exits_not_found(damage):
    d, _ = damage
    (d / "tar/shard-000001.tar").unlink()
    assert shardset("verify", "mixed", "-q", check=False, cwd=d).returncode == 3
    p = shardset("verify", "v.view", "-q", check=False, cwd=d)
    assert p.returncode == 3, p.stderr


def test_replaced_shard_is_named_changed(damage):
    d, keys = damage
    in_zip = shard_keys("zip/shard-000000.zip", d)
    pos = next(i for i, k in enumerate(keys) if k in in_zip)
    tmp = d / "zip/replacement.tmp"
    shutil.copyfile(d / "zip-other/shard-000000.zip", tmp)
    os.replace(tmp, d / "zip/shard-000000.zip")
    assert info_json("zip/shard-000000.zip", cwd=d)["samples"] == 5000
    for args in (["ls", "v.view"], ["cat", "v.view", "--field", "png", "--ordinal", str(pos)],
                 ["verify", "v.view", "-q"]):
        p = shardset(*args, check=False, cwd=d)
        assert p.returncode == 4, (args, p.stderr)
        err = p.stderr.decode()
        if args[0] != "verify":
            one_line(p)
        assert "changed" in err and "shard-000000.zip" in err and "v.view" in err, err
        if args[0] == "cat":
            assert p.stdout == b""


def test_flipped_byte_in_a_tar_member_is_caught(damage, fmnist_tree):
    d, keys = damage
    tar = d / "tar/shard-000001.tar"
    # Break the hard link before writing: the shard becomes this test's own.
    data = bytearray(tar.read_bytes())
    size = len(data)
    in_view = set(keys)
    with tarfile.open(tar) as tf:
        members = [m for m in tf.getmembers()
                   if m.name.endswith(".png") and m.name[:-4] in in_view
                   and 1 << 17 < m.offset_data < size - (1 << 17)]
    victim = members[len(members) // 2]
    neighbour = members[len(members) // 2 + 1]
    off = victim.offset_data + victim.size // 2
    data[off] ^= 0x5A
    tar.unlink()
    tar.write_bytes(data)
    assert tar.stat().st_size == size
    key = victim.name[:-4]
    pos = keys.index(key)
    for args in (["cat", "v.view", "--field", "png", key],
                 ["cat", "v.view", "--field", "png", "--ordinal", str(pos)]):
        p = shardset(*args, check=False, cwd=d)
        assert p.returncode == 4, (args, p.stderr)
        assert p.stdout == b""
        err = one_line(p)
        assert "checksum" in err and key in err and "shard-000001.tar" in err, err
    nkey = neighbour.name[:-4]
    got = shardset("cat", "v.view", "--field", "png", nkey, cwd=d).stdout
    assert got == (fmnist_tree / neighbour.name).read_bytes()
    p = shardset("verify", "v.view", "-q", check=False, cwd=d)
    assert p.returncode == 4
    assert key in p.stderr.decode()


def test_changed_and_deleted_loose_files_are_named(fmnist_tree, tmp_path):
    for l in ("0", "1"):
        shutil.copytree(fmnist_tree / "testing" / l, tmp_path / "loose" / l)
    shardset("dataset", "create", "lds", "--shards", "loose", "--label-from-dir", "-q",
             cwd=tmp_path)
    shardset("select", "lds", "--label", "1", "-o", "one.view", "-q", cwd=tmp_path)
    keys = ls_keys("one.view", cwd=tmp_path)
    assert len(keys) == 1000 and all(k.startswith("1/") for k in keys)
    assert shardset("verify", "one.view", "-q", cwd=tmp_path).returncode == 0
    changed, deleted = keys[10], keys[20]
    f = tmp_path / "loose" / (changed + ".png")
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(b)  # a private copy: same size, other bytes
    p = shardset("cat", "one.view", changed, check=False, cwd=tmp_path)
    assert p.returncode == 4 and p.stdout == b""
    err = one_line(p)
    assert f"{changed}.png" in err and "one.view" in err and "changed" in err, err
    assert shardset("cat", "one.view", keys[11], cwd=tmp_path).stdout == \
        (tmp_path / "loose" / (keys[11] + ".png")).read_bytes()
    p = shardset("verify", "one.view", "-q", check=False, cwd=tmp_path)
    assert p.returncode == 4 and f"{changed}.png" in p.stderr.decode()
    (tmp_path / "loose" / (deleted + ".png")).unlink()
    for args in (["cat", "one.view", deleted], ["ls", "one.view"]):
        p = shardset(*args, check=False, cwd=tmp_path)
        assert p.returncode == 3, (args, p.stderr)
        err = one_line(p)
        assert f"{deleted}.png" in err and "one.view" in err, err


# ---------------------------------------------------------------- read verbs

def test_every_read_verb_accepts_a_view(seed000, fmnist_tree, tmp_path):
    base, src = seed000
    view = tmp_path / "small.view"
    shardset("mix", "camvid=ds/camvid:300", "synthia=ds/synthia:500", "--seed", "2",
             "-o", view, "-q", cwd=base)
    lines = shardset("ls", view).stdout.decode().splitlines()
    keys = [l.split("\t")[0] for l in lines]
    assert len(keys) == len(set(keys)) == 800
    assert set(keys[:300]) <= set(src["camvid"]) and set(keys[300:]) <= set(src["synthia"])
    for line in lines[:5]:
        k, fields = line.split("\t")
        size = (fmnist_tree / (k + ".png")).stat().st_size
        assert fields == f"png:{size} cls:1"
    j = [json.loads(l) for l in shardset("ls", "--json", view).stdout.splitlines()]
    assert [x["key"] for x in j] == keys and [x["ordinal"] for x in j] == list(range(800))
    info = info_json(view)
    assert info["view"] is True and info["samples"] == 800
    assert [(s["name"], s["selected"]) for s in info["sources"]] == [("camvid", 300),
                                                                     ("synthia", 500)]
    assert sum(info["labels"].values()) == 800
    text = shardset("info", view).stdout.decode()
    assert "camvid" in text and "synthia" in text and "recipe" in text
    picks = [0, 299, 300, 799, 417]
    want = b"".join((fmnist_tree / (keys[i] + ".png")).read_bytes() for i in picks)
    assert shardset("cat", view, *[keys[i] for i in picks]).stdout == want
    args = []
    for i in picks:
        args += ["--ordinal", str(i)]
    assert shardset("cat", view, *args).stdout == want
    out = tmp_path / "x"
    shardset("extract", view, "-o", out, "-q")
    got = source_files(out)
    assert sorted(got) == sorted(k + ".png" for k in keys)
    for rel, p in got.items():
        assert p.read_bytes() == (fmnist_tree / rel).read_bytes(), rel
    assert shardset("verify", view, "-q").returncode == 0
    p = shardset("cat", view, "--ordinal", "800", check=False)
    assert p.returncode == 3 and p.stdout == b""


def test_select_over_tar_zip_tsv_reads_back_the_source_files(mixed, fmnist_tree, tmp_path):
    base = mixed["base"]
    view = tmp_path / "sel.view"
    shardset("select", "mixed", "--label", "3,5", "--glob", "*/*/1*", "-o", view, "-q",
             cwd=base)
    files = source_files(fmnist_tree)
    want = sorted(k[:-4] for k in files
                  if k.split("/")[1] in ("3", "5") and fnmatch.fnmatch(k.split("/")[2], "1*"))
    keys = ls_keys(view)
    assert sorted(keys) == want
    assert any(k.startswith("testing/3/") for k in keys)  # the zip
    assert any(k.startswith("testing/5/") for k in keys)  # the tsv
    info = info_json(view)
    assert set(info["labels"]) == {"3", "5"} and info["samples"] == len(want)
    out = tmp_path / "x"
    shardset("extract", view, "-o", out, "-q")
    got = source_files(out)
    pngs = {r: p for r, p in got.items() if r.endswith(".png")}
    assert sorted(pngs) == sorted(k + ".png" for k in keys)
    for rel, p in pngs.items():
        assert p.read_bytes() == files[rel].read_bytes(), rel
    assert shardset("verify", view, "-q").returncode == 0


def test_dead_runs_hidden_files_are_removed(tmp_path):
    """A killed run leaves a hidden partial view file or a hidden dataset
    folder (the crash harness found them piling up); the next view or
    dataset create beside it removes those of processes no longer running
    and keeps a running one's."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(5):
        (tree / f"{i}.txt").write_text(f"sample {i}\n")
    shardset("pack", tree, "-o", tmp_path / "ds", "-q")
    dead = 2 ** 22 + 12345  # above pid_max's default: no such process
    stale_view = tmp_path / f".shardset-tmp.v.view.{dead}.1"
    live_view = tmp_path / f".shardset-tmp.v.view.{os.getpid()}.1"
    stale_dir = tmp_path / f".shardset-tmp.adopted.{dead}"
    for p in (stale_view, live_view):
        p.write_bytes(b"partial")
    stale_dir.mkdir()
    (stale_dir / "x.fidx").write_bytes(b"partial")
    shardset("shuffle", tmp_path / "ds", "--view", "-o", tmp_path / "v.view", "--seed", "1", "-q")
    shardset("dataset", "create", tmp_path / "adopted", "--shards",
             tmp_path / "ds" / "shard-000000.shard")
    assert not stale_view.exists() and not stale_dir.exists()
    assert live_view.exists()
    assert ls_keys(tmp_path / "v.view") and ls_keys(tmp_path / "adopted")
