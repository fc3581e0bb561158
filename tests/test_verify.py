"""Issue 2 acceptance 4: damaged shards and datasets.

One flipped byte inside a sample, truncated shards, a damaged footer, a damaged
index block, a shard deleted or replaced in a dataset folder, a damaged
manifest: `verify` exits non-zero (4 for corruption, 3 for a missing shard)
naming the shard and, where there is one, the sample (ordinal and key);
reading the damaged sample fails with a one-line error and never writes wrong
bytes; other samples still read; an intact dataset verifies with exit 0.
Plus randomized and exhaustive single-byte flips.

Damage is done the way it happens: bit rot changes bytes but not the file's
mtime (flip(..., keep_mtime=True)); an in-place edit changes both.

Layout facts used here (docs/format.md): a native shard is a 16-byte header
(magic 8, version 4, flags 4), the samples' field bytes back to back in
ordinal order, the index blocks, field table and block directory (16 bytes per
block), and a 56-byte footer (index offset 8, meta offset 8, samples 8,
blocks 4, samples per block 4, flags 4, version 4, checksum 8, magic 8). A tar
shard's sidecar .idx holds the same index region and footer.
"""
import json
import os
import pathlib
import random
import re
import shutil
import struct
import tarfile

import pytest

from conftest import BIN, run, shardset

HEADER = 16
FOOTER = 56
DIR_ENTRY = 16
EXIT_CORRUPT = 4
EXIT_NOT_FOUND = 3


# ---------------------------------------------------------------- helpers

def sh(*args):
    """Runs shardset without raising; returns (rc, stdout bytes, stderr text)."""
    r = run(BIN, *args, check=False)
    assert r.returncode < 128 and r.returncode >= 0, (
        f"shardset {' '.join(map(str, args))} crashed: exit {r.returncode}\n{r.stderr!r}")
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def flip(path, pos, mask=0x01, keep_mtime=True):
    path = pathlib.Path(path)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[pos] ^= mask
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def truncate(path, size, keep_mtime=True):
    path = pathlib.Path(path)
    st = path.stat()
    os.truncate(path, size)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def one_line_error(err):
    return err.endswith("\n") and err.count("\n") == 1


def footer(path):
    """Parsed native (or sidecar) footer plus the block directory."""
    data = pathlib.Path(path).read_bytes()
    (index_off, meta_off, nsamples, nblocks, block_samples, flags, version, _,
     magic) = struct.unpack("<QQQIIIIQ8s", data[-FOOTER:])
    dir_start = len(data) - FOOTER - nblocks * DIR_ENTRY
    blocks = []
    for b in range(nblocks):
        off, length, codec = struct.unpack_from("<QIB", data, dir_start + b * DIR_ENTRY)
        blocks.append((off, length, codec))
    return dict(size=len(data), index_offset=index_off, meta_offset=meta_off,
                samples=nsamples, block_samples=block_samples, blocks=blocks,
                directory=dir_start)


class Sample:
    def __init__(self, key, local, offset, size):
        self.key, self.local, self.offset, self.size = key, local, offset, size


def native_layout(shard):
    """Samples of a native shard with the offset of their bytes."""
    out, pos = [], HEADER
    for line in shardset("ls", "--json", shard).stdout.splitlines():
        j = json.loads(line)
        size = sum(j["fields"].values())
        out.append(Sample(j["key"], j["ordinal"], pos, size))
        pos += size
    assert pos == footer(shard)["index_offset"]
    return out


def tar_layout(shard):
    """Samples of a tar shard (one member each here) with their data offsets."""
    with tarfile.open(shard) as t:
        members = [m for m in t.getmembers() if m.isfile()]
    return [Sample(m.name.split(".")[0], i, m.offset_data, m.size)
            for i, m in enumerate(members)]


def layout(shard):
    return tar_layout(shard) if str(shard).endswith(".tar") else native_layout(shard)


class Target:
    """A dataset folder or a single shard, copied for damaging."""

    def __init__(self, path, files):
        self.path = pathlib.Path(path)
        self.files = files  # key -> source bytes
        if self.path.is_dir():
            m = json.loads((self.path / "manifest.json").read_text())
            self.shards = [self.path / s["path"] for s in m["shards"]]
            self.counts = [s["samples"] for s in m["shards"]]
        else:
            self.shards = [self.path]
            self.counts = [len(layout(self.path))]

    def start(self, shard_index):
        return sum(self.counts[:shard_index])

    def cat(self, *args):
        return sh("cat", self.path, *args)

    def expect_reads(self, ordinals):
        """These samples still read, byte-identical to their source."""
        keys = self.keys()
        for o in ordinals:
            rc, out, err = self.cat("--ordinal", o)
            assert rc == 0, f"{self.path}: sample {o} no longer reads: {err}"
            assert out == self.files[keys[o]], f"{self.path}: sample {o}: wrong bytes"

    def keys(self):
        """Keys in ordinal order (of the undamaged original, see damaged())."""
        if getattr(self, "_keys", None) is None:
            self._keys = []
            for s in self.shards:
                self._keys += [x.key for x in layout(s)]
        return self._keys


def copy_target(src, tmp_path):
    """Copies a fixture dataset or shard (with its .idx), keeping mtimes."""
    src = pathlib.Path(src.path)
    if src.is_dir():
        dst = tmp_path / src.name
        shutil.copytree(src, dst)  # copy2: mtimes kept, so sidecars stay current
    else:
        dst = tmp_path / src.name
        shutil.copy2(src, dst)
        if pathlib.Path(str(src) + ".idx").exists():
            shutil.copy2(str(src) + ".idx", str(dst) + ".idx")
    return Target(dst, None)


def make_tree(root, n, seed, min_size=60, max_size=600):
    rng = random.Random(seed)
    files = {}
    for i in range(n):
        key = f"c{i % 4}/{i:04d}"
        data = rng.randbytes(rng.randint(min_size, max_size))
        p = root / (key + ".bin")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        files[key] = data
    return files


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("vtree") / "src"
    return root, make_tree(root, 600, seed=4)


def _pack(tree, tmp_path_factory, name, *args):
    root, files = tree
    out = tmp_path_factory.mktemp("vpacked") / name
    shardset("pack", root, "-o", out, "-q", *args)
    return out, files


@pytest.fixture(scope="module")
def targets(tree, tmp_path_factory):
    """Four targets over the same 600 samples (60..600 random bytes each)."""
    native, files = _pack(tree, tmp_path_factory, "native", "--shard-size", "48KiB")
    tar, _ = _pack(tree, tmp_path_factory, "tar", "--format", "tar", "--shard-size", "160KiB")
    one_native, _ = _pack(tree, tmp_path_factory, "one-native")
    one_tar, _ = _pack(tree, tmp_path_factory, "one-tar", "--format", "tar")
    t = {
        "native-dataset": Target(native, files),
        "tar-dataset": Target(tar, files),
        "native-shard": Target(one_native / "shard-000000.shard", files),
        "tar-shard": Target(one_tar / "shard-000000.tar", files),
    }
    assert len(t["native-dataset"].shards) >= 4
    assert len(t["tar-dataset"].shards) >= 3
    # Several index blocks per native shard, so one block can be damaged alone.
    assert len(footer(t["native-dataset"].shards[1])["blocks"]) >= 2
    return t


def damaged(targets, name, tmp_path):
    t = copy_target(targets[name], tmp_path)
    t.files = targets[name].files
    t._keys = targets[name].keys()
    return t


ALL = ["native-dataset", "tar-dataset", "native-shard", "tar-shard"]
DATASETS = ["native-dataset", "tar-dataset"]


def names_sample(text, shard, local, start, key):
    """The message names the shard, the sample's ordinal (within the shard or
    the dataset) and its key."""
    return (shard.name in text and key in text and
            re.search(rf"sample ({local}|{start + local})\b", text) is not None)


# ---------------------------------------------------------------- intact

@pytest.mark.parametrize("name", ALL)
def test_intact_target_verifies(targets, name):
    t = targets[name]
    rc, out, err = sh("verify", t.path)
    assert rc == 0, err
    assert b": OK: 600 samples" in out
    rc, out, _ = sh("verify", "--json", t.path)
    report = json.loads(out)
    assert rc == 0 and report["ok"] is True and report["problems"] == []
    assert report["samples"] == 600


# ---------------------------------------------------------------- flipped byte in a sample

@pytest.mark.parametrize("name", ALL)
def test_flipped_byte_in_sample(targets, name, tmp_path):
    t = damaged(targets, name, tmp_path)
    si = 1 if len(t.shards) > 1 else 0
    shard = t.shards[si]
    samples = layout(shard)
    victim = samples[len(samples) // 2]
    flip(shard, victim.offset + victim.size // 2, 0x20)
    g = t.start(si) + victim.local

    rc, out, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT, err
    assert b"FAILED" in out
    assert names_sample(err, shard, victim.local, t.start(si), victim.key), err
    rc, out, _ = sh("verify", "--json", t.path)
    report = json.loads(out)
    assert rc == EXIT_CORRUPT and report["ok"] is False
    assert any(victim.key in p for p in report["problems"]), report

    # Reading it fails, by key and by ordinal, with one line and no bytes.
    for args in ([victim.key], ["--ordinal", str(g)]):
        rc, out, err = t.cat(*args)
        assert rc == EXIT_CORRUPT, err
        assert out == b"", "cat wrote bytes of a corrupt sample"
        assert one_line_error(err), err
        assert names_sample(err, shard, victim.local, t.start(si), victim.key), err
    # A good sample before it is written whole, then cat stops.
    before = samples[0]
    rc, out, err = t.cat(before.key, victim.key)
    assert rc == EXIT_CORRUPT and out == t.files[before.key]

    # Its neighbours and a sample of another shard still read.
    others = [g - 1, g + 1, 0, sum(t.counts) - 1]
    t.expect_reads(others)


def test_flips_in_two_shards_are_both_named(targets, tmp_path):
    t = damaged(targets, "native-dataset", tmp_path)
    victims = []
    for si in (1, 3):
        s = layout(t.shards[si])[5]
        flip(t.shards[si], s.offset)
        victims.append((t.shards[si], s))
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT
    for shard, s in victims:
        assert names_sample(err, shard, s.local, 0, s.key), err


# ---------------------------------------------------------------- truncation

NATIVE_CUTS = {
    "to-0-bytes": lambda f: 0,
    "inside-magic": lambda f: 4,
    "inside-header": lambda f: 8,
    "after-header": lambda f: HEADER,
    "inside-first-sample": lambda f: HEADER + 1,
    "middle-of-data": lambda f: f["index_offset"] // 2,
    "at-index-start": lambda f: f["index_offset"],
    "inside-index": lambda f: (f["index_offset"] + f["meta_offset"]) // 2,
    "footer-removed": lambda f: f["size"] - FOOTER,
    "last-byte-removed": lambda f: f["size"] - 1,
}


@pytest.mark.parametrize("cut", list(NATIVE_CUTS))
@pytest.mark.parametrize("name", ["native-dataset", "native-shard"])
def test_truncated_native_shard(targets, name, cut, tmp_path):
    t = damaged(targets, name, tmp_path)
    si = 1 if len(t.shards) > 1 else 0
    shard = t.shards[si]
    truncate(shard, NATIVE_CUTS[cut](footer(shard)))
    rc, out, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT, err
    assert shard.name in err, err
    rc, out, err = t.cat("--ordinal", str(t.start(si) + 3))
    assert rc != 0 and out == b"" and one_line_error(err), err
    assert shard.name in err
    # The shard alone says the same.
    rc, _, err = sh("verify", shard)
    assert rc == EXIT_CORRUPT and shard.name in err, err


def test_truncated_shard_leaves_other_shards_readable(targets, tmp_path):
    t = damaged(targets, "native-dataset", tmp_path)
    truncate(t.shards[2], footer(t.shards[2])["size"] // 2)
    t.expect_reads([0, t.start(1) + 1, sum(t.counts) - 1])


def test_verify_names_every_truncated_shard(targets, tmp_path):
    t = damaged(targets, "native-dataset", tmp_path)
    for si in (1, 3):
        truncate(t.shards[si], footer(t.shards[si])["size"] - 10)
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT
    assert t.shards[1].name in err and t.shards[3].name in err, err


TAR_CUTS = {
    "inside-first-header": lambda layout_, size: 100,
    "inside-first-member": lambda layout_, size: layout_[0].offset + 10,
    "middle": lambda layout_, size: layout_[len(layout_) // 2].offset + 3,
    "inside-last-member": lambda layout_, size: layout_[-1].offset + layout_[-1].size // 2,
}


@pytest.mark.parametrize("cut", list(TAR_CUTS))
@pytest.mark.parametrize("name", ["tar-dataset", "tar-shard", "tar-shard-without-idx"])
def test_truncated_tar_shard(targets, name, cut, tmp_path):
    t = damaged(targets, name.replace("-without-idx", ""), tmp_path)
    si = 1 if len(t.shards) > 1 else 0
    shard = t.shards[si]
    if name.endswith("without-idx"):
        pathlib.Path(str(shard) + ".idx").unlink()
    lay = tar_layout(shard)
    truncate(shard, TAR_CUTS[cut](lay, shard.stat().st_size))
    rc, out, err = sh("verify", t.path)
    if cut == "inside-first-header" and name.endswith("without-idx"):
        # Under 512 bytes nothing says the file was a tar.
        assert rc != 0 and shard.name in err, err
    else:
        assert rc == EXIT_CORRUPT, err
        assert shard.name in err, err
    rc, out, err = t.cat("--ordinal", str(t.start(si) + len(lay) - 1))
    assert rc != 0 and out == b"" and one_line_error(err), err


# ---------------------------------------------------------------- footer damage

# Offsets from the end of the file of one byte in each footer field.
FOOTER_BYTES = {
    "magic": 1,
    "checksum": 10,
    "version": 20,
    "flags": 24,
    "samples-per-block": 28,
    "num-blocks": 32,
    "num-samples": 40,
    "meta-offset": 48,
    "index-offset": 56,
}


@pytest.mark.parametrize("field", list(FOOTER_BYTES))
@pytest.mark.parametrize("name", ["native-dataset", "native-shard", "tar-shard"])
def test_damaged_footer_is_detected(targets, name, field, tmp_path):
    """Detected, and nothing is read: exit non-zero, cat writes nothing. For a
    tar the footer is its sidecar's."""
    t = damaged(targets, name, tmp_path)
    si = 1 if len(t.shards) > 1 else 0
    shard = t.shards[si]
    damaged_file = pathlib.Path(str(shard) + ".idx") if name.startswith("tar") else shard
    flip(damaged_file, damaged_file.stat().st_size - FOOTER_BYTES[field], 0x10)
    rc, out, err = sh("verify", t.path)
    assert rc != 0, f"footer {field} damage not detected: {out!r}"
    # A sample of the damaged shard fails; the other shards' samples still read.
    first = sum(t.counts[:si])
    rc, out, err = t.cat("--ordinal", first)
    assert rc != 0 and out == b"" and one_line_error(err), err
    if si > 0:
        t.expect_reads([0])


@pytest.mark.parametrize("field", list(FOOTER_BYTES))
@pytest.mark.parametrize("name", ["native-dataset", "tar-shard"])
def test_damaged_footer_is_named_corruption(targets, name, field, tmp_path):
    t = damaged(targets, name, tmp_path)
    shard = t.shards[1 if len(t.shards) > 1 else 0]
    damaged_file = pathlib.Path(str(shard) + ".idx") if name.startswith("tar") else shard
    flip(damaged_file, damaged_file.stat().st_size - FOOTER_BYTES[field], 0x10)
    rc, out, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT, err
    assert damaged_file.name in err, err


# ---------------------------------------------------------------- index block damage

@pytest.mark.parametrize("name", ["native-dataset", "native-shard", "tar-dataset", "tar-shard"])
def test_damaged_index_block(targets, name, tmp_path):
    """A byte of index block 1 (samples 64..127): those samples fail, the
    others still read."""
    t = damaged(targets, name, tmp_path)
    si = 1 if len(t.shards) > 1 else 0
    shard = t.shards[si]
    index_file = pathlib.Path(str(shard) + ".idx") if name.startswith("tar") else shard
    f = footer(index_file)
    assert len(f["blocks"]) >= 2
    off, length, _ = f["blocks"][1]
    flip(index_file, off + length // 2, 0x08)
    bs = f["block_samples"]
    rc, out, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT, err
    assert index_file.name in err and "index block 1" in err, err
    assert f"samples {bs}..{min(2 * bs, f['samples']) - 1}" in err, err
    rc, out, err = t.cat("--ordinal", str(t.start(si) + bs + 1))
    assert rc == EXIT_CORRUPT and out == b"" and one_line_error(err), err
    assert index_file.name in err
    t.expect_reads([t.start(si) + 1, t.start(si) + bs - 1, 0, sum(t.counts) - 1])


# ---------------------------------------------------------------- dataset folder

@pytest.mark.parametrize("name", DATASETS)
def test_deleted_shard(targets, name, tmp_path):
    t = damaged(targets, name, tmp_path)
    t.shards[2].unlink()
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_NOT_FOUND, err
    assert t.shards[2].name in err and one_line_error(err), err
    rc, out, err = t.cat("--ordinal", str(t.start(2)))
    assert rc == EXIT_NOT_FOUND and out == b"" and one_line_error(err), err


@pytest.fixture(scope="module")
def fixed_count_dataset(tree, tmp_path_factory):
    """Shards of exactly 100 samples, so one can replace another."""
    out, files = _pack(tree, tmp_path_factory, "fixed", "--shard-samples", "100")
    return Target(out, files)


def test_replaced_shard_is_found_by_verify(fixed_count_dataset, tmp_path):
    t = damaged({"x": fixed_count_dataset}, "x", tmp_path)
    shutil.copy2(t.shards[1], t.shards[2])
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT, err
    assert t.shards[2].name in err, err


def test_replaced_shard_never_serves_wrong_samples(fixed_count_dataset, tmp_path):
    t = damaged({"x": fixed_count_dataset}, "x", tmp_path)
    keys = t.keys()
    assert t.shards[1].stat().st_size != t.shards[2].stat().st_size
    shutil.copy2(t.shards[1], t.shards[2])
    o = t.start(2) + 7
    rc, out, err = t.cat("--ordinal", str(o))
    assert rc != 0 or out == t.files[keys[o]], (
        f"cat --ordinal {o} returned another sample's bytes with exit {rc}")


def _manifest_edit(edit):
    def apply(path):
        m = json.loads(path.read_text())
        edit(m)
        path.write_text(json.dumps(m, indent=2))
    return apply


def _set(m, *path_and_value):
    *path, value = path_and_value
    o = m
    for p in path[:-1]:
        o = o[p]
    o[path[-1]] = value(o[path[-1]]) if callable(value) else value


MANIFEST_DAMAGE = {
    "truncated": lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),
    "empty": lambda p: p.write_text(""),
    "flipped-bit": lambda p: p.write_bytes(
        p.read_bytes()[:40] + bytes([p.read_bytes()[40] ^ 0x80]) + p.read_bytes()[41:]),
    "not-a-manifest": lambda p: p.write_text('{"hello": "world"}'),
    "num-samples-off": _manifest_edit(lambda m: _set(m, "num_samples", lambda v: v + 1)),
    "shard-samples-off": _manifest_edit(lambda m: (
        _set(m, "shards", 1, "samples", lambda v: v + 1),
        _set(m, "num_samples", lambda v: v + 1))),
    "shard-bytes-off": _manifest_edit(lambda m: _set(m, "shards", 1, "bytes", lambda v: v + 3)),
    "shard-checksum-off": _manifest_edit(
        lambda m: _set(m, "shards", 1, "xxh3", lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"))),
    "checksum-not-hex": _manifest_edit(lambda m: _set(m, "shards", 1, "xxh3", "zz")),
    "shard-path-escapes": _manifest_edit(lambda m: _set(m, "shards", 1, "path", "../x.shard")),
    "shards-not-a-list": _manifest_edit(lambda m: _set(m, "shards", 7)),
}


@pytest.mark.parametrize("damage", list(MANIFEST_DAMAGE))
@pytest.mark.parametrize("name", DATASETS)
def test_damaged_manifest(targets, name, damage, tmp_path):
    t = damaged(targets, name, tmp_path)
    MANIFEST_DAMAGE[damage](t.path / "manifest.json")
    rc, out, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT, err
    assert "manifest.json" in err or t.shards[1].name in err, err
    rc, out, err = t.cat("--ordinal", "0")
    if rc != 0:  # damage found when opening: one line, nothing written
        assert out == b"" and one_line_error(err), err
    else:        # only checksums or sizes were off: the bytes are still the source's
        assert out == t.files[t.keys()[0]]


def test_deleted_manifest(targets, tmp_path):
    t = damaged(targets, "native-dataset", tmp_path)
    (t.path / "manifest.json").unlink()
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_NOT_FOUND and "manifest.json" in err and one_line_error(err), err


def test_manifest_missing_a_shard_entry(targets, tmp_path):
    """Edited consistently, its checksum of itself removed (what one does to
    accept a hand edit): verify still names the shard it no longer lists."""
    t = damaged(targets, "native-dataset", tmp_path)
    _manifest_edit(lambda m: (_set(m, "num_samples", lambda v: v - m["shards"][-1]["samples"]),
                              m["shards"].pop(), m.pop("manifest_xxh3")))(t.path / "manifest.json")
    rc, _, err = sh("verify", t.path)
    assert rc != 0 and t.shards[-1].name in err, err


# The manifest's checksum of itself (docs/formats/manifest.md "manifest_xxh3"):
# without it, a damaged recipe, skip list or byte count went unseen by verify,
# and a shard path damaged into another shard's name could be read as it.

def canonical(m):
    """The text shardset writes for a manifest (Python's json makes the same)."""
    return json.dumps(m, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_manifest_is_written_in_canonical_form_with_its_checksum(targets):
    text = (targets["native-dataset"].path / "manifest.json").read_text()
    m = json.loads(text)
    assert re.fullmatch(r"[0-9a-f]{16}", m["manifest_xxh3"])
    assert canonical(m) == text


@pytest.mark.parametrize("name", DATASETS)
def test_damaged_recipe_is_detected(targets, name, tmp_path):
    """A byte of the recipe (nothing else checks it): verify and readers
    refuse the manifest, naming it."""
    t = damaged(targets, name, tmp_path)
    path = t.path / "manifest.json"
    text = path.read_bytes()
    pos = text.index(b",", text.index(b'"shard_size": ')) - 1
    flip(path, pos, 0x01)  # its last digit into another digit
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT and "manifest.json" in err and "manifest_xxh3" in err, err
    rc, out, err = t.cat("--ordinal", "0")
    assert rc == EXIT_CORRUPT and out == b"" and one_line_error(err), err
    assert "manifest.json" in err


def test_reformatted_manifest_reads_but_verify_reports_it(targets, tmp_path):
    """Whitespace is not content: readers accept the manifest, verify says
    its bytes are not the ones written."""
    t = damaged(targets, "native-dataset", tmp_path)
    path = t.path / "manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4))
    t.expect_reads([0, 1])
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT and "manifest.json" in err and "bytes" in err, err


def test_manifest_without_checksum_reads_and_verify_says_so(targets, tmp_path):
    """Older and hand-written manifests carry none: read as before, and
    verify says the manifest itself could not be checked."""
    t = damaged(targets, "native-dataset", tmp_path)
    path = t.path / "manifest.json"
    m = json.loads(path.read_text())
    del m["manifest_xxh3"]
    path.write_text(canonical(m))
    t.expect_reads([0, sum(t.counts) - 1])
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT and "manifest.json" in err and "no checksum" in err, err
    assert err.count("\n") == 1, err  # only that: every shard checks


# ---------------------------------------------------------------- tar specifics

@pytest.mark.parametrize("name", ["tar-dataset", "tar-shard"])
def test_tar_edited_in_place_is_corruption(targets, name, tmp_path):
    t = damaged(targets, name, tmp_path)
    shard = t.shards[0]
    s = tar_layout(shard)[10]
    flip(shard, s.offset + 1, keep_mtime=False)
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT and shard.name in err, err


def test_tar_dataset_copied_with_cp_verifies(targets, tmp_path):
    dst = tmp_path / "copy"
    run("cp", "-r", targets["tar-dataset"].path, dst)
    rc, _, err = sh("verify", dst)
    assert rc == 0, err


# ---------------------------------------------------------------- header

def test_flipped_header_flags_byte(targets, tmp_path):
    t = damaged(targets, "native-shard", tmp_path)
    flip(t.path, 13)
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT and t.path.name in err, err


@pytest.mark.parametrize("pos", [0, 8])
def test_flipped_header_identity_byte_in_dataset(targets, pos, tmp_path):
    t = damaged(targets, "native-dataset", tmp_path)
    flip(t.shards[1], pos)
    rc, _, err = sh("verify", t.path)
    assert rc == EXIT_CORRUPT and t.shards[1].name in err, err


# ---------------------------------------------------------------- random and exhaustive flips

# Known undetected bytes (test_flipped_header_flags_byte); drop once fixed.
HEADER_FLAGS = range(12, 16)


def _flip_trials(path, positions, files, keys, rng):
    """Flips each position in turn (restoring the file after each); returns
    per-flip results. Checks that cat of every sample never returns wrong
    bytes: its output is always a run of whole, correct samples."""
    original = path.read_bytes()
    expected = [files[k] for k in keys]
    results = []
    for pos in positions:
        mask = rng.randrange(1, 256)
        flip(path, pos, mask)
        rc, out, err = sh("verify", path)
        crc, cout, cerr = sh("cat", path, "--ordinal", *map(str, range(len(keys))))
        st = path.stat()
        path.write_bytes(original)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        good, i = 0, 0
        while i < len(expected) and cout[good:good + len(expected[i])] == expected[i]:
            good += len(expected[i])
            i += 1
        assert good == len(cout), (
            f"{path}: byte {pos} ^= {mask:#x}: cat --ordinal 0..{len(keys) - 1} wrote "
            f"wrong bytes after sample {i} (exit {crc})")
        assert crc != 0 or i == len(expected)
        results.append((pos, mask, rc, path.name in err))
    return results


def _report(label, results):
    detected = sum(1 for r in results if r[2] != 0)
    codes = {}
    for r in results:
        codes[r[2]] = codes.get(r[2], 0) + 1
    named = sum(1 for r in results if r[2] != 0 and r[3])
    print(f"\n{label}: {detected}/{len(results)} flips detected by verify; exit codes "
          f"{dict(sorted(codes.items()))}; shard named in {named}/{detected}")
    missed = [(p, hex(m)) for p, m, rc, _ in results if rc == 0]
    assert not missed, f"{label}: flips verify did not detect (byte, xor mask): {missed}"


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    """A small native shard (100 samples of 20..120 bytes: 2 index blocks) and
    a small tar of the same samples (under 128 KiB, with its .idx)."""
    root = tmp_path_factory.mktemp("small") / "src"
    files = make_tree(root, 100, seed=9, min_size=20, max_size=120)
    out = {}
    for fmt in ("native", "tar"):
        d = tmp_path_factory.mktemp("small-" + fmt)
        shardset("pack", root, "-o", d / "ds", "-q", "--format", fmt)
        shard = next((d / "ds").glob("shard-000000.*[dr]"))
        out[fmt] = shard
    return out, files


FLIPS = int(os.environ.get("SHARDSET_FLIPS", "50"))
FLIP_SEED = int(os.environ.get("SHARDSET_FLIP_SEED", "20261121"))


@pytest.mark.parametrize("fmt", ["native", "tar"])
def test_random_single_byte_flips(small_shards, fmt, tmp_path):
    """SHARDSET_FLIPS (50) random flips of one byte each over a small shard on
    its own (no manifest to fall back on): every one must make verify fail.
    Native: 30 anywhere, 20 in the header, index and footer. Tar (bit rot:
    mtime kept): anywhere."""
    shards, files = small_shards
    path = tmp_path / shards[fmt].name
    shutil.copy2(shards[fmt], path)
    if fmt == "tar":
        shutil.copy2(str(shards[fmt]) + ".idx", str(path) + ".idx")
    size = path.stat().st_size
    keys = [s.key for s in layout(path)]
    rng = random.Random(FLIP_SEED)
    if fmt == "native":
        f = footer(path)
        anywhere = [p for p in range(size) if p not in HEADER_FLAGS]
        structure = [p for p in list(range(HEADER)) + list(range(f["index_offset"], size))
                     if p not in HEADER_FLAGS]
        n_any = FLIPS * 3 // 5
        positions = rng.sample(anywhere, n_any) + rng.sample(structure, FLIPS - n_any)
    else:
        positions = rng.sample(range(size), FLIPS)
    _report(f"{fmt} shard of {size} bytes, seed {FLIP_SEED}",
            _flip_trials(path, positions, files, keys, rng))


def test_every_single_byte_flip_of_a_tiny_shard(tmp_path):
    """Every byte of a 3-sample native shard, flipped in turn (header flags
    excepted, see test_flipped_header_flags_byte): all detected, and cat never
    writes wrong bytes."""
    root = tmp_path / "src"
    files = {"a": b"alpha" * 5, "b": b"", "c": bytes(range(40))}
    root.mkdir()
    for k, v in files.items():
        (root / (k + ".bin")).write_bytes(v)
    shardset("pack", root, "-o", tmp_path / "ds", "-q")
    path = tmp_path / "ds" / "shard-000000.shard"
    size = path.stat().st_size
    positions = [p for p in range(size) if p not in HEADER_FLAGS]
    _report(f"every byte of a {size}-byte native shard",
            _flip_trials(path, positions, files, ["a", "b", "c"], random.Random(1)))


# ---------------------------------------------------------------- zip central directory

def test_zip_central_directory_damage_is_refused_in_a_dataset(tmp_path):
    """A zip's central directory has no checksum: one flipped bit of an
    entry's mode turned a file into a symlink, and the sample read back
    without that field (found by tests/test_corruption.py). In a dataset the
    manifest records the directory's XXH3 (directory_xxh3), checked at open."""
    root = tmp_path / "src"
    files = make_tree(root, 200, seed=5)
    for k in files:  # two fields per sample: losing one keeps the sample
        (root / (k + ".txt")).write_text(k)
    ds = tmp_path / "zipds"
    shardset("pack", root, "-o", ds, "-q", "--format", "zip", "--shard-size", "48KiB")
    m = json.loads((ds / "manifest.json").read_text())
    assert all(re.fullmatch(r"[0-9a-f]{16}", s["directory_xxh3"]) for s in m["shards"])
    shard = ds / m["shards"][1]["path"]
    raw = shard.read_bytes()
    cd = raw.index(b"PK\x01\x02")
    assert raw[cd + 38:cd + 42] == bytes.fromhex("0000a481")  # 0100644 << 16
    flip(shard, cd + 41, 0x20)  # S_IFREG -> S_IFLNK
    first = m["shards"][0]["samples"]
    rc, _, err = sh("verify", ds)
    assert rc == EXIT_CORRUPT and shard.name in err and "central directory" in err, err
    rc, out, err = sh("cat", ds, "--ordinal", str(first))
    assert rc == EXIT_CORRUPT and out == b"" and one_line_error(err), err
    assert shard.name in err and "directory_xxh3" in err, err
    rc, out, _ = sh("cat", ds, "--ordinal", "0", "--field", "bin")  # other shards still read
    assert rc == 0 and out == files[sorted(files)[0]]
