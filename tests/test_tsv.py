"""Issue 3 acceptance 3 (tsv): TSV files in the layout of seed 002 and
Microsoft's TSVFile (one sample per line: key, label, base64 PNG; no header; a
.lineidx of decimal offsets and a .lineidx.8b of 8-byte little-endian ones,
named splitext(tsv)[0] + '.lineidx'), written here by Python, not by shardset;
random access through either line index; parts read as one dataset; and
`pack --format tsv` round trips."""
import base64
import json
import os
import random
import shutil

import pytest

from conftest import run, shardset, source_files


def write_tsv(path, rows):
    """Writes rows (key, label, png bytes) the way seed 002 / TSVFile's
    tsv_writer does: no header, base64 images, both line indexes."""
    offsets = []
    with open(path, "wb") as f:
        for key, label, png in rows:
            offsets.append(f.tell())
            f.write(b"\t".join([key.encode(), label.encode(), base64.b64encode(png)]) + b"\n")
    stem = os.path.splitext(str(path))[0]
    with open(stem + ".lineidx", "w") as f:
        f.writelines(f"{o}\n" for o in offsets)
    with open(stem + ".lineidx.8b", "wb") as f:
        f.write(b"".join(o.to_bytes(8, "little") for o in offsets))


def read_row(tsv, i):
    """Row i of a tsv, as seed 002 reads it: seek to the offset from .lineidx.8b."""
    with open(os.path.splitext(str(tsv))[0] + ".lineidx.8b", "rb") as idx, open(tsv, "rb") as f:
        idx.seek(8 * i)
        f.seek(int.from_bytes(idx.read(8), "little"))
        return f.readline().rstrip(b"\r\n").split(b"\t")


@pytest.fixture(scope="module")
def fmnist_rows(fmnist_tree):
    """(key, label, png bytes) of the 60,000 training images, in a shuffled
    order (keys not sorted, as in a TSV made by a crawl or a job array)."""
    files = source_files(fmnist_tree / "training")
    rows = [(rel[:-4], rel.split("/")[0], p.read_bytes()) for rel, p in files.items()]
    random.Random(2).shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def seed002_tsv(fmnist_rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("seed002") / "train.tsv"
    write_tsv(path, fmnist_rows)
    return path


def with_only(tsv, sidecar, folder):
    """A folder holding `tsv` (hard link) and only its `sidecar` line index."""
    folder.mkdir()
    dst = folder / tsv.name
    os.link(tsv, dst)
    side = tsv.with_suffix(sidecar)
    shutil.copy(side, folder / side.name)
    return dst


@pytest.mark.parametrize("sidecar", [".lineidx", ".lineidx.8b"])
def test_random_rows_through_either_line_index(seed002_tsv, fmnist_rows, sidecar, tmp_path):
    tsv = with_only(seed002_tsv, sidecar, tmp_path / "only")
    assert sorted(p.name for p in tsv.parent.iterdir()) == sorted([tsv.name, "train" + sidecar])
    info = json.loads(shardset("info", tsv, "--json").stdout)
    assert info["samples"] == 60000
    assert info["fields"].keys() == {"cls", "png"}  # guessed: integers, base64 PNGs
    rng = random.Random(len(sidecar))
    picks = [rng.randrange(len(fmnist_rows)) for _ in range(2000)]
    want_png = b"".join(fmnist_rows[i][2] for i in picks)
    want_cls = "".join(fmnist_rows[i][1] for i in picks).encode()
    keys = [fmnist_rows[i][0] for i in picks]
    assert shardset("cat", tsv, *keys, "--field", "png").stdout == want_png
    assert shardset("cat", tsv, *keys, "--field", "cls").stdout == want_cls
    ordinals = [a for i in picks for a in ("--ordinal", str(i))]
    assert shardset("cat", tsv, *ordinals, "--field", "png").stdout == want_png
    assert shardset("verify", tsv, "-q").returncode == 0


def test_index_writes_what_tsvfile_writes(seed002_tsv, tmp_path):
    tsv = tmp_path / "train.tsv"
    os.link(seed002_tsv, tsv)
    out = shardset("index", tsv).stdout.decode()
    assert "indexed 60000 samples" in out
    for suffix in (".lineidx", ".lineidx.8b"):
        made = (tmp_path / ("train" + suffix)).read_bytes()
        assert made == seed002_tsv.with_suffix(suffix).read_bytes(), suffix


def test_stale_line_index_is_refused_then_rebuilt(fmnist_rows, tmp_path):
    tsv = tmp_path / "small.tsv"
    write_tsv(tsv, fmnist_rows[:100])
    key, label, png = fmnist_rows[100]
    with open(tsv, "ab") as f:  # a row appended after indexing
        f.write(f"{key}\t{label}\t".encode() + base64.b64encode(png) + b"\n")
    p = shardset("cat", tsv, key, "--field", "png", check=False)
    assert p.returncode != 0
    assert b"small.lineidx.8b does not match" in p.stderr
    assert b"rerun shardset index" in p.stderr
    shardset("index", tsv)
    assert shardset("cat", tsv, key, "--field", "png").stdout == png


def test_three_parts_read_as_one_dataset(fmnist_rows, tmp_path):
    parts = []
    bounds = [0, 17000, 41000, 60000]  # uneven, as real parts are
    for n in range(3):
        part = tmp_path / f"train-part{n}.tsv"
        write_tsv(part, fmnist_rows[bounds[n]:bounds[n + 1]])
        parts.append(part)
    # Each part on its own.
    counts = [json.loads(shardset("info", p, "--json").stdout)["samples"] for p in parts]
    assert counts == [17000, 24000, 19000]
    # Several TARGETs are one dataset; ordinals run on across the parts.
    info = json.loads(shardset("info", "--json", *parts).stdout)
    assert info["samples"] == 60000
    listed = [line.split(b"\t")[0].decode() for line in shardset("ls", *parts).stdout.splitlines()]
    assert listed == [r[0] for r in fmnist_rows]
    targets = [a for p in parts for a in ("-t", p)]
    ordinals = random.Random(3).sample(range(60000), 300) + [0, 16999, 17000, 40999, 41000, 59999]
    for ordinal in ordinals:
        got = shardset("cat", *targets, "--ordinal", ordinal, "--field", "png").stdout
        assert got == fmnist_rows[ordinal][2], ordinal
    # By key too: the key is looked up in every part.
    key, _, png = fmnist_rows[45678]
    assert shardset("cat", *targets, key, "--field", "png").stdout == png


def test_pack_tsv_round_trips_and_reads_like_seed_002(fmnist_tree, tmp_path):
    out = tmp_path / "train-tsv"
    shardset("pack", fmnist_tree / "training", "-o", out, "--format", "tsv", "--label-from-dir",
             "--shard-size", "16MiB", "-q")
    shards = sorted(out.glob("shard-*.tsv"))
    assert len(shards) > 1
    for s in shards:
        assert s.with_suffix(".lineidx").exists() and s.with_suffix(".lineidx.8b").exists()
    assert shardset("verify", out, "-q").returncode == 0
    info = json.loads(shardset("info", out, "--json").stdout)
    assert info["samples"] == 60000
    assert info["fields"]["cls"]["derived"] is True
    extracted = tmp_path / "back"
    shardset("extract", out, "-o", extracted, "-q")
    run("diff", "-r", fmnist_tree / "training", extracted)
    # A foreign reader that knows only the line index: rows are key, png, cls
    # (the header line says so; the line index skips it).
    files = source_files(fmnist_tree / "training")
    first = shards[0].read_bytes().split(b"\n", 1)[0]
    assert first == b"#shardset-tsv/1\tpng:b64\tcls:derived"
    n = shards[0].with_suffix(".lineidx.8b").stat().st_size // 8
    for i in random.Random(5).sample(range(n), 200):
        key, png, cls = read_row(shards[0], i)
        assert base64.b64decode(png, validate=True) == files[key.decode() + ".png"].read_bytes()
        assert cls.decode() == key.decode().split("/")[0]
