"""Issue 8: random corruption of every format shardset writes.

Small datasets are built in every format `shardset` writes: native shards, tar
(+ `.idx` sidecars), tar.gz (+ checkpoint sidecars), zip (stored and
deflated), tsv (+ `.lineidx` / `.lineidx.8b`), a view file over a native
dataset, and a folder index (`dataset create` over loose files), each with
its `manifest.json`. Every trial copies one of them, damages one random file
of it (a shard, a sidecar index, the manifest, the view, a loose file) in one
of three ways:

  flip      1..SHARDSET_CORRUPT_BITS (8) bits among the 8 bytes at a random offset
  truncate  the file cut at a random length (shorter than it was)
  zero      a random 4 KiB-aligned page of the file overwritten with zeros

and checks:

  verify    `shardset verify` exits non-zero (3 or 4) and names the damaged file
            (or the shard a sidecar belongs to); when the damage lies wholly in
            samples' bytes, it names every sample whose bytes changed (by key).
  readers   every sample read by every reader is byte-identical to the source
            files (key and every field), or fails with a clear error (a
            shardset error, or exit code 3/4 and one line on stderr, naming
            the damaged file or its shard). Readers: `shardset cat --ordinal`
            (all samples), `shardset extract --derived`, and in-process
            `shardset.Dataset` (ds[i] of every sample, read_packed, iteration)
            and `shardset.torch.IterableDataset(on_error="skip")` (what it
            yields is intact, and it skips exactly the samples ds[i] fails on).

A damage that leaves the file's bytes as they were (a zeroed page that was
already zeros) is counted as a no-op, not as detected; one confined to bytes
that nothing reads or checks by design (INERT below: a tar sidecar's recorded
mtime) as 'inert', not as detected either. Formats without
per-sample checksums (tsv, docs/formats/tsv.md "Checksums and verify") can
return a damaged cell's bytes: verify still finds the damage (the manifest's
XXH3 of the file), and such reads are tallied as 'unprotected' rather than
'wrong'; any other wrong bytes, in any format, fail the test.

SHARDSET_CORRUPT_TRIALS sets the number of trials (1000 by default: 30-40 s
on a 2-core VM, trials cycling through the 8 formats and 3 kinds);
SHARDSET_CORRUPT_SEED repeats a run (the seed is printed);
SHARDSET_CORRUPT_FORMATS=zip,tsv runs some formats only; SHARDSET_CORRUPT_LOG
names a file for every problem found. Long runs by hand:
scripts/corruption-harness.sh.
"""
import collections
import json
import os
import pathlib
import random
import shutil
import tarfile
import tempfile
import time
import zipfile

import pytest

from conftest import BIN, run, shardset

TRIALS = int(os.environ.get("SHARDSET_CORRUPT_TRIALS", "1000"))
SEED = int(os.environ.get("SHARDSET_CORRUPT_SEED", str(int(time.time()) % 100000)))
MAX_BITS = int(os.environ.get("SHARDSET_CORRUPT_BITS", "8"))
# Only these configurations (comma-separated names from the table), for
# long runs on one format.
ONLY = [n for n in os.environ.get("SHARDSET_CORRUPT_FORMATS", "").split(",") if n]
PAGE = 4096
KINDS = ("flip", "truncate", "zero")

try:  # the in-process readers need the Python package (scripts/python-env.sh)
    import shardset as sspy
except ImportError:  # pragma: no cover - CLI readers only
    sspy = None
try:
    import shardset.torch as sstorch
except ImportError:  # pragma: no cover
    sstorch = None


# ---------------------------------------------------------------- sources

def make_tree(root, n, seed, uniform_fields=False):
    """n samples c<i%3>/<i>: a `bin` field of 0..400 random bytes and, for
    every third sample (every sample with uniform_fields), a `json` text
    field that deflates well. Returns key -> {field: bytes} (without the
    derived `cls` label, added by reference())."""
    rng = random.Random(seed)
    files = {}
    for i in range(n):
        key = f"c{i % 3}/{i:04d}"
        fields = {"bin": rng.randbytes(rng.randint(0, 400))}
        if uniform_fields or i % 3 == 0:
            words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta"])
                             for _ in range(rng.randint(1, 60)))
            fields["json"] = json.dumps({"n": i, "text": words}).encode()
        for name, data in fields.items():
            p = root / f"{key}.{name}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        files[key] = fields
    return files


def reference(files, key):
    """The fields a reader must return for `key` (the label included)."""
    return {**files[key], "cls": key.split("/")[0].encode()}


# ---------------------------------------------------------------- configurations

class Config:
    """One dataset in one format: its pristine copy, the target to read, the
    keys in ordinal order, and the roles of its files."""

    def __init__(self, name, root, target, files, keys, has_sample_checksums=True,
                 per_trial_setup=None):
        self.name, self.root, self.target = name, root, target
        self.files, self.keys = files, keys
        self.has_sample_checksums = has_sample_checksums
        self.per_trial_setup = per_trial_setup  # (trial_dir) -> target, for folder indexes

    def roles(self, root):
        """role -> list of files (relative to root) that can be damaged."""
        out = collections.defaultdict(list)
        for p in sorted(root.rglob("*")):
            if not p.is_file() or p.name.startswith(".shardset"):
                continue
            rel = p.relative_to(root)
            n = p.name
            if n == "manifest.json":
                out["manifest"].append(rel)
            elif n.endswith(".view"):
                out["view"].append(rel)
            elif n.endswith((".idx", ".lineidx", ".lineidx.8b")):
                out["sidecar"].append(rel)
            elif n.endswith(".fidx"):
                out["folder-index"].append(rel)
            elif n.startswith("shard-"):
                out["shard"].append(rel)
            else:
                out["loose-file"].append(rel)
        return out


def ls_keys(target):
    return [json.loads(line)["key"] for line in shardset("ls", "--json", target).stdout.splitlines()]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    if os.access("/dev/shm", os.W_OK):
        d = pathlib.Path(tempfile.mkdtemp(prefix="shardset-corrupt-", dir="/dev/shm"))
    else:
        d = tmp_path_factory.mktemp("corrupt")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def configs(scratch):
    base = scratch / "pristine"
    src = base / "src"
    files = make_tree(src, 300, seed=8)
    tsv_src = base / "tsv-src"
    tsv_files = make_tree(tsv_src, 200, seed=9, uniform_fields=True)
    out = {}

    def packed(name, tree, tree_files, *args, sample_checksums=True):
        root = base / name
        ds = root / "ds"
        root.mkdir(parents=True)
        shardset("pack", tree, "-o", ds, "-q", "--label-from-dir", *args)
        out[name] = Config(name, root, pathlib.Path("ds"), tree_files, ls_keys(ds),
                           has_sample_checksums=sample_checksums)

    packed("native", src, files, "--shard-size", "24KiB")
    packed("tar", src, files, "--format", "tar", "--shard-size", "128KiB")
    packed("tar.gz", src, files, "--format", "tar.gz", "--shard-size", "48KiB")
    packed("zip", src, files, "--format", "zip", "--shard-size", "40KiB")
    packed("zip-deflate", src, files, "--format", "zip", "--zip-deflate", "6",
           "--shard-size", "40KiB")
    packed("tsv", tsv_src, tsv_files, "--format", "tsv", "--shard-size", "40KiB",
           sample_checksums=False)

    # A view that selects every sample of a native dataset in a shuffled order.
    root = base / "view"
    (root / "views").mkdir(parents=True)
    shardset("pack", src, "-o", root / "ds", "-q", "--label-from-dir", "--shard-size", "24KiB")
    shardset("shuffle", root / "ds", "-o", root / "views" / "all.view", "--view", "--seed", "3")
    out["view"] = Config("view", root, pathlib.Path("views/all.view"), files,
                         ls_keys(root / "views" / "all.view"))

    # A folder index over loose files: it records the folder's absolute path,
    # so every trial indexes its own copy.
    root = base / "folder"
    shutil.copytree(src, root / "files")

    def folder_setup(trial_root):
        shardset("dataset", "create", trial_root / "ds", "--shards", trial_root / "files",
                 "--label-from-dir")
    folder_setup(root)
    out["folder"] = Config("folder", root, pathlib.Path("ds"), files, ls_keys(root / "ds"),
                           per_trial_setup=folder_setup)

    for c in out.values():
        assert len(c.keys) == len(c.files), c.name
        roles = c.roles(c.root)
        assert roles["shard"] or roles["loose-file"], (c.name, roles)
        # Sanity: the pristine dataset verifies and reads back as its sources.
        r = run(BIN, "verify", "-q", c.root / c.target, check=False)
        assert r.returncode == 0, (c.name, r.stderr)
        if sspy is not None:
            ds = sspy.open(str(c.root / c.target))
            for i, k in enumerate(c.keys):
                s = ds[i]
                assert s.key == k and {f: bytes(v) for f, v in s.items()} == reference(c.files, k)
    return out


# ---------------------------------------------------------------- damage

# How often each kind of file is picked (then one file of that kind, uniformly).
ROLE_WEIGHTS = {"shard": 4, "loose-file": 4, "view": 4, "sidecar": 3, "folder-index": 3,
                "manifest": 1}


def pick_role(rng, roles):
    names = sorted(roles)
    return rng.choices(names, weights=[ROLE_WEIGHTS[n] for n in names])[0]


def apply_damage(path, kind, rng):
    """Damages `path` in place (keeping its mtime: bit rot does not touch
    it). Returns (description, (start, end) of the changed bytes or None for a
    truncation, changed?)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    size = len(data)
    before = bytes(data)
    if size == 0:
        return "empty file", None, False
    if kind == "flip":
        off = rng.randrange(size)
        span = min(8, size - off)
        nbits = rng.randint(1, min(MAX_BITS, 8 * span))
        bits = rng.sample(range(8 * span), nbits)
        for b in bits:
            data[off + b // 8] ^= 1 << (b % 8)
        desc = f"flip {nbits} bit(s) in bytes {off}..{off + span - 1}"
        rng_ = (off, off + span)
    elif kind == "truncate":
        new = rng.randrange(size)
        data = data[:new]
        desc = f"truncate {size} -> {new} bytes"
        rng_ = None
    else:
        pages = (size + PAGE - 1) // PAGE
        p = rng.randrange(pages)
        lo, hi = p * PAGE, min(size, (p + 1) * PAGE)
        data[lo:hi] = bytes(hi - lo)
        desc = f"zero page {p} (bytes {lo}..{hi - 1})"
        rng_ = (lo, hi)
    changed = bytes(data) != before
    if changed:
        path.write_bytes(bytes(data))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return desc, rng_, changed


# Byte ranges that no reader reads and no check covers, by design of their
# format: damage confined to them changes nothing that is read, and verify
# cannot see it. Tallied as 'inert', apart from 'undetected'.
#   .tar.idx bytes 24..31: the tar's mtime when indexed, "recorded for
#   people, not compared" (docs/formats/tar-index.md "Fingerprint": copies
#   change a tar's mtime without changing a byte).
INERT = {".tar.idx": [(24, 32)]}


def inert(rel, before, now):
    for suffix, ranges in INERT.items():
        if rel.name.endswith(suffix) and len(before) == len(now):
            changed = [i for i in range(len(before)) if before[i] != now[i]]
            return bool(changed) and all(any(a <= i < b for a, b in ranges) for i in changed)
    return False


# ---------------------------------------------------------------- where samples lie

def sample_ranges(path):
    """[(start, end, key)] of every field's stored bytes in a file that holds
    sample bytes, or None for files whose bytes are not samples' (indexes,
    manifests, views) and for compressed streams (tar.gz)."""
    name = path.name
    if name.endswith(".shard"):
        out, pos = [], 16
        for line in shardset("ls", "--json", path).stdout.splitlines():
            j = json.loads(line)
            for size in j["fields"].values():
                out.append((pos, pos + size, j["key"]))
                pos += size
        return out
    if name.endswith(".tar"):
        with tarfile.open(path) as t:
            return [(m.offset_data, m.offset_data + m.size, m.name.split(".")[0])
                    for m in t.getmembers() if m.isfile()]
    if name.endswith(".zip"):
        out = []
        raw = path.read_bytes()
        with zipfile.ZipFile(path) as z:
            for zi in z.infolist():
                h = zi.header_offset
                nlen = int.from_bytes(raw[h + 26:h + 28], "little")
                xlen = int.from_bytes(raw[h + 28:h + 30], "little")
                start = h + 30 + nlen + xlen
                out.append((start, start + zi.compress_size, zi.filename.split(".")[0]))
        return out
    return None


def tsv_rows_changed(before, now, span):
    """Keys of the rows of a tsv file (header line excepted) in which the
    damage changed a byte other than the row's line end (the file's last LF
    counts as the last row's: without it the row still reads, as the format
    allows, with the damaged byte in its last cell)."""
    if span is None:
        return set()
    lo, hi = span
    keys, start = set(), 0
    for line in before.split(b"\n"):
        end = start + len(line) + (1 if start + len(line) == len(before) - 1 else 0)
        if not (start == 0 and line.startswith(b"#shardset-tsv/")) and start < hi and lo < end:
            if any(i >= len(now) or now[i] != before[i] for i in range(max(lo, start),
                                                                         min(hi, end))):
                keys.add(line.split(b"\t")[0].decode(errors="replace"))
        start = end + 1
    return keys


def damaged_samples(config, rel, span, ranges, before, now):
    """Keys of the samples whose stored bytes the damage changed, when every
    changed byte lies inside samples' bytes; else None (structure hit, a
    truncation, or a file whose bytes are not samples')."""
    if span is None:
        return None
    if config.name == "folder" and rel.parts[0] == "files":
        return {str(pathlib.PurePosixPath(*rel.parts[1:])).split(".")[0]}
    if ranges is None:
        return None
    lo, hi = span
    keys = set()
    for i in range(lo, min(hi, len(before))):
        if i < len(now) and now[i] == before[i]:
            continue
        hit = [k for a, b, k in ranges if a <= i < b]
        if not hit:
            return None
        keys.update(hit)
    return keys


# ---------------------------------------------------------------- readers

def _names(text, names):
    return any(n in text for n in names)


class Trial:
    def __init__(self, config, root, target, rel, kind, desc, names):
        self.config, self.root, self.target = config, root, target
        self.rel, self.kind, self.desc = rel, kind, desc
        self.names = names  # what an error must mention: the damaged file or its shard
        self.wrong = []       # wrong bytes returned (must stay empty)
        self.unprotected = []  # a damaged cell read back (tsv: no checksums)
        self.unclear = []     # errors that name neither the file nor its shard
        self.failed = set()   # positions ds[i] failed on
        self.unprotected_keys = set()  # tsv rows whose cells the damage changed

    def where(self):
        return (f"{self.config.name}: {self.rel} ({self.desc}); "
                f"reproduce with SHARDSET_CORRUPT_SEED={SEED}")

    def bad_bytes(self, reader, pos, got_key, got):
        """Records a wrong read unless it is a tsv row whose cells the damage
        changed (tsv has no checksums: such a row reads back as it now is)."""
        want_key = self.config.keys[pos] if pos < len(self.config.keys) else None
        if want_key in self.unprotected_keys:
            self.unprotected.append(f"{reader}: sample {pos} ({got_key})")
            return
        self.wrong.append(f"{reader}: sample {pos}: got key {got_key!r} "
                          f"{sorted((k, len(v)) for k, v in got.items())}, want {want_key!r}")

    def error(self, reader, message):
        if not _names(message, self.names):
            self.unclear.append(f"{reader}: {message.strip()[:300]}")


def check_python(trial, verify_checksums=True):
    """shardset.Dataset: ds[i] of every sample, read_packed, iteration; then
    shardset.torch.IterableDataset(on_error='skip')."""
    c = trial.config
    target = str(trial.target)
    try:
        ds = sspy.open(target, verify_checksums=verify_checksums)
    except sspy.Error as e:
        trial.error("open", str(e))
        trial.failed = set(range(len(c.keys)))
        return
    n = len(ds)
    if n != len(c.keys):
        trial.wrong.append(f"open: {n} samples, want {len(c.keys)}")
    for i in range(n):
        try:
            s = ds[i]
        except sspy.Error as e:
            trial.failed.add(i)
            trial.error("ds[i]", str(e))
            continue
        got = {f: bytes(v) for f, v in s.items()}
        if i >= len(c.keys) or s.key != c.keys[i] or got != reference(c.files, c.keys[i]):
            trial.bad_bytes("ds[i]", i, s.key, got)
    # By key: the sample with that key, intact, or an error (a damaged index
    # must not send a key to another sample).
    for k in c.keys:
        try:
            s = ds.get(k)
        except sspy.Error as e:
            msg = str(e.args[0] if e.args else e)
            if k in trial.unprotected_keys and not _names(msg, trial.names):
                # A tsv row whose key was damaged: "no such key" is all a
                # format without checksums can say.
                trial.unprotected.append(f"ds.get: {k}: {msg}")
            else:
                trial.error("ds.get", msg)
            continue
        got = {f: bytes(v) for f, v in s.items()}
        if s.key != k or got != reference(c.files, k):
            # Judged by the row it returned (a damaged tsv key can name
            # another sample's key).
            trial.bad_bytes("ds.get", s.index, s.key, got)
    # A batch read returns every sample intact or raises.
    try:
        packed = ds.read_packed(range(n))
        for k, key in enumerate(packed["__key__"]):
            got = {}
            for f, v in packed.items():
                if f.startswith("__"):
                    continue
                data, off = v
                if off[k + 1] > off[k] or f in reference(c.files, key):
                    got[f] = data[off[k]:off[k + 1]].tobytes()
            want = reference(c.files, c.keys[k]) if k < len(c.keys) else None
            if key != (c.keys[k] if k < len(c.keys) else None) or got != want:
                trial.bad_bytes("read_packed", k, key, got)
    except sspy.Error as e:
        trial.error("read_packed", str(e))
    try:
        for i, s in enumerate(ds):
            got = {f: bytes(v) for f, v in s.items()}
            if i >= len(c.keys) or s.key != c.keys[i] or got != reference(c.files, c.keys[i]):
                trial.bad_bytes("iteration", i, s.key, got)
    except sspy.Error as e:
        trial.error("iteration", str(e))
    if sstorch is not None:
        check_torch_skip(trial, ds)


def check_torch_skip(trial, ds):
    """The loader policy on the damaged dataset: what it yields is intact,
    and it skips (and counts) exactly the samples ds[i] failed on."""
    c = trial.config
    it = sstorch.IterableDataset(ds, batch_size=37, shuffle=False, on_error="skip",
                                 collate=list)
    seen = set()
    try:
        for batch in it:
            for s in batch:
                pos, key = s.index, s.key
                got = {f: bytes(v) for f, v in s.items()}
                seen.add(pos)
                if pos >= len(c.keys) or key != c.keys[pos] or got != reference(c.files, key):
                    trial.bad_bytes("torch skip", pos, key, got)
    except sspy.Error as e:
        trial.error("torch skip", str(e))
        return
    skipped = set(range(len(ds))) - seen
    if skipped != trial.failed or it.errors != len(trial.failed):
        trial.wrong.append(f"torch skip: skipped {sorted(skipped)[:10]} (errors={it.errors}), "
                           f"ds[i] failed on {sorted(trial.failed)[:10]}")


def check_cli(trial):
    c = trial.config
    n = len(c.keys)
    # cat: a prefix of whole, correct samples, then (on an error) nothing more.
    r = run(BIN, "cat", trial.target, "--field", "bin", "--ordinal", *range(n), check=False)
    assert 0 <= r.returncode < 128, f"cat crashed ({r.returncode}): {trial.where()}"
    out, pos, i = r.stdout, 0, 0
    while i < n:
        want = c.files[c.keys[i]]["bin"]
        if pos + len(want) > len(out):
            break
        if out[pos:pos + len(want)] != want:
            if c.keys[i] not in trial.unprotected_keys:
                break
            trial.unprotected.append(f"cat: sample {i} ({c.keys[i]})")
        pos += len(want)
        i += 1
    if pos != len(out):
        trial.wrong.append(f"cat: wrong bytes after sample {i} (exit {r.returncode})")
    if r.returncode == 0 and i != n:
        trial.wrong.append(f"cat: exit 0 after {i} of {n} samples")
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        if r.returncode not in (3, 4) or err.count("\n") != 1:
            trial.unclear.append(f"cat: exit {r.returncode}: {err[:300]}")
        else:
            trial.error("cat", err)
    # extract: every file written is the source's.
    x = trial.root / "extract"
    r = run(BIN, "extract", trial.target, "-o", x, "--derived", "-q", check=False)
    assert 0 <= r.returncode < 128, f"extract crashed ({r.returncode}): {trial.where()}"
    written = 0
    if x.exists():
        for p in x.rglob("*"):
            if p.is_file() and not p.name.startswith(".shardset-tmp"):
                rel = p.relative_to(x)
                key, _, field = str(rel).partition(".")
                want = reference(c.files, key).get(field) if key in c.files else None
                written += 1
                if p.read_bytes() == want:
                    pass
                elif key in trial.unprotected_keys or (trial.unprotected_keys
                                                       and key not in c.files):
                    # A damaged tsv row: its cells, or its key (written under
                    # the damaged name).
                    trial.unprotected.append(f"extract: {rel}")
                else:
                    trial.wrong.append(f"extract: {rel} differs from the source")
        shutil.rmtree(x)
    if r.returncode == 0 and written != sum(len(reference(c.files, k)) for k in c.keys):
        trial.wrong.append(f"extract: exit 0 but {written} files written")
    if r.returncode != 0:
        trial.error("extract", r.stderr.decode(errors="replace"))


# ---------------------------------------------------------------- the harness

def _layouts(config, root):
    """Sample ranges of the pristine files, by relative path."""
    out = {}
    for files in config.roles(root).values():
        for rel in files:
            r = sample_ranges(root / rel)
            if r is not None:
                out[rel] = r
    return out


def test_random_corruptions(configs, scratch):
    rng = random.Random(SEED)
    print(f"\ncorruption trials: {TRIALS}, seed {SEED} (SHARDSET_CORRUPT_SEED={SEED} to repeat)"
          f"{'' if sspy else '; Python readers skipped (shardset not importable)'}")
    names = [n for n in configs if not ONLY or n in ONLY]
    assert names, f"SHARDSET_CORRUPT_FORMATS={','.join(ONLY)} names none of {list(configs)}"
    layouts = {n: _layouts(c, c.root) for n, c in configs.items()}
    tally = collections.defaultdict(collections.Counter)
    problems = []
    examples = collections.defaultdict(list)
    t0 = time.monotonic()
    for t in range(TRIALS):
        name = names[t % len(names)]
        kind = KINDS[(t // len(names)) % len(KINDS)]
        c = configs[name]
        root = scratch / f"t{t}"
        if c.per_trial_setup:
            shutil.copytree(c.root / "files", root / "files")
            c.per_trial_setup(root)
        else:
            shutil.copytree(c.root, root)
        roles = c.roles(root)
        role = pick_role(rng, roles)
        rel = rng.choice(roles[role])
        path = root / rel
        original_bytes = path.read_bytes()
        desc, span, changed = apply_damage(path, kind, rng)
        row = tally[(name, kind)]
        row["trials"] += 1
        row[f"role:{role}"] += 1
        if not changed:
            row["no-op"] += 1
            shutil.rmtree(root)
            continue
        names_ok = {rel.name}
        if rel.name.endswith(".idx"):
            names_ok.add(rel.name[:-len(".idx")])
        for suffix in (".lineidx.8b", ".lineidx"):
            if rel.name.endswith(suffix):
                names_ok.add(rel.name[:-len(suffix)] + ".tsv")
        if role == "loose-file":
            names_ok.add(str(pathlib.PurePosixPath(*rel.parts[1:])).split(".")[0])
        trial = Trial(c, root, root / c.target, rel, kind, desc, names_ok)
        if not c.has_sample_checksums and rel.suffix == ".tsv":
            trial.unprotected_keys = tsv_rows_changed(original_bytes, path.read_bytes(), span)
        # verify
        r = run(BIN, "verify", "-q", trial.target, check=False)
        assert 0 <= r.returncode < 128, f"verify crashed ({r.returncode}): {trial.where()}"
        report = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        if r.returncode == 0 and inert(rel, original_bytes, path.read_bytes()):
            row["inert"] += 1  # bytes no reader or check reads: see INERT
        elif r.returncode == 0:
            row["undetected"] += 1
            problems.append(f"UNDETECTED by verify: {trial.where()}")
        else:
            row["detected"] += 1
            if r.returncode not in (3, 4):
                problems.append(f"verify exit {r.returncode}: {trial.where()}: {report[:300]}")
            if not _names(report, names_ok):
                row["unnamed"] += 1
                problems.append(f"verify does not name {sorted(names_ok)}: {trial.where()}: "
                                f"{report[:400]}")
            keys = (damaged_samples(c, rel, span, layouts[name].get(rel), original_bytes,
                                    path.read_bytes())
                    if c.has_sample_checksums else None)
            if keys:
                missing = sorted(k for k in keys if k not in report)
                if missing:
                    row["sample unnamed"] += 1
                    problems.append(f"verify does not name damaged sample(s) {missing}: "
                                    f"{trial.where()}: {report[:400]}")
        # readers
        check_cli(trial)
        if sspy is not None:
            check_python(trial)
        if trial.wrong:
            row["wrong bytes"] += 1
            problems.append(f"WRONG BYTES: {trial.where()}: {trial.wrong[:3]}")
        if trial.unprotected:
            row["unprotected"] += 1
            examples["unprotected"].append(f"{trial.where()}: {trial.unprotected[:2]}")
        if trial.unclear:
            row["unclear error"] += 1
            problems.append(f"unclear reader error: {trial.where()}: {trial.unclear[:2]}")
        row["samples failed"] += len(trial.failed)
        shutil.rmtree(root)
    elapsed = time.monotonic() - t0

    cols = ["trials", "no-op", "inert", "detected", "undetected", "unnamed", "sample unnamed",
            "wrong bytes", "unclear error", "unprotected", "samples failed"]
    print(f"{'format':12s} {'kind':9s} " + " ".join(f"{h:>9.9s}" for h in cols))
    total = collections.Counter()
    for name in names:
        for kind in KINDS:
            row = tally[(name, kind)]
            total.update({k: v for k, v in row.items() if not k.startswith("role:")})
            print(f"{name:12s} {kind:9s} " + " ".join(f"{row[h]:9d}" for h in cols))
    print(f"{'all':12s} {'':9s} " + " ".join(f"{total[h]:9d}" for h in cols))
    roles = collections.Counter()
    for row in tally.values():
        roles.update({k[5:]: v for k, v in row.items() if k.startswith("role:")})
    print(f"files damaged by role: {dict(sorted(roles.items()))}")
    print(f"{TRIALS} trials in {elapsed:.1f} s ({1000 * elapsed / max(1, TRIALS):.0f} ms each)")
    if total["inert"]:
        print(f"  inert: {total['inert']} damages confined to bytes nothing reads or checks "
              f"(INERT: the tar sidecar's recorded mtime); verify cannot see them")
    for e in examples["unprotected"][:3]:
        print("  unprotected (tsv, no checksums):", e)
    for p in problems[:40]:
        print("  PROBLEM:", p)
    if os.environ.get("SHARDSET_CORRUPT_LOG"):  # every problem, one per line
        pathlib.Path(os.environ["SHARDSET_CORRUPT_LOG"]).write_text(
            "".join(p.replace("\n", " ") + "\n" for p in problems))
    assert not problems, f"{len(problems)} problems (seed {SEED}); first: {problems[0]}"


def test_the_harness_sees_wrong_bytes(configs, scratch):
    """The checks are not vacuous: with checksums turned off, a flipped byte
    inside a sample reads back, and the harness calls it wrong bytes."""
    if sspy is None:
        pytest.skip("shardset is not importable")
    c = configs["native"]
    root = scratch / "self-test"
    shutil.copytree(c.root, root)
    rel = c.roles(root)["shard"][0]
    start, end, key = next(r for r in sample_ranges(root / rel) if r[1] - r[0] > 4)
    data = bytearray((root / rel).read_bytes())
    data[start + 2] ^= 0x10
    (root / rel).write_bytes(bytes(data))
    trial = Trial(c, root, root / c.target, rel, "flip", "self-test", {rel.name})
    check_python(trial, verify_checksums=False)
    assert any(key in w or "sample" in w for w in trial.wrong), trial.wrong
    trial = Trial(c, root, root / c.target, rel, "flip", "self-test", {rel.name})
    check_python(trial)
    assert not trial.wrong and not trial.unclear and len(trial.failed) == 1
    shutil.rmtree(root)
