"""End-to-end tests of catalogs (docs/catalog.md, issue 10's acceptance):
seed 004's story through the CLI on generated cats and dogs with COCO
(pycocotools) and YOLO exports checked, training from a directory with
shardset.torch, ten processes editing one catalog at once, and dir export
read back and verified.

SHARDSET_CATALOG_SECONDS sets how long the concurrency test edits (10 s by
default, as in CI; 60 s is the by-hand run of acceptance 3)."""
import json
import os
import pathlib
import random
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from conftest import BIN, run, shardset

PIL = pytest.importorskip("PIL.Image")

SIZES = {  # key -> (width, height): every image its own size
    **{f"cats/{i}": (30 + i, 20 + 2 * i) for i in range(4)},
    **{f"dogs/{i}": (40 + 3 * i, 32 + i) for i in range(6)},
}


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """pets/{cats,dogs}/<n>.png packed with --label-from-dir ("cls" is the
    folder), and a catalog whose directory "default" holds them all."""
    root = tmp_path_factory.mktemp("catalog")
    for key, (w, h) in SIZES.items():
        path = root / "pets" / f"{key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        PIL.new("RGB", (w, h), (len(key) * 20, w, h)).save(path)
    shardset("pack", root / "pets", "-o", root / "pets-ds", "--label-from-dir", "-q")
    cat = root / "pets.catalog"
    shardset("dir", "create", "default", "-c", cat)
    out = shardset("dir", "add", "default", "--from", root / "pets-ds", "-c", cat).stdout
    assert b"10 samples added" in out
    return root, cat


def instances(cat, directory, key=None):
    args = ["annotate", "ls", directory] + ([key] if key else []) + ["-c", cat, "--json"]
    return [json.loads(line) for line in shardset(*args).stdout.splitlines()]


def added_id(proc):
    # "instance 7 added to dogs/1 (file 12)"
    words = proc.stdout.split()
    assert words[0] == b"instance" and words[2] == b"added", proc.stdout
    return int(words[1])


def test_seed_004_story(pets):
    root, cat = pets
    c = ["-c", cat]
    # Mirror the dogs: the same files, so the same annotations.
    out = shardset("dir", "mirror", "default", "dogs", "--label", "dogs", *c).stdout
    assert b"6 files mirrored" in out
    box = added_id(shardset("annotate", "set", "dogs", "dogs/1", "--label", "dog",
                            "--box", "2,3,10,12", "--attrs", '{"pose": "sit"}', *c))
    poly = added_id(shardset("annotate", "set", "dogs", "dogs/2", "--label", "dog",
                             "--polygon", "4,4,30,4,30,20,4,20", *c))
    seen = instances(cat, "default", "dogs/1")
    assert [(i["id"], i["label"], i["box"], i["attributes"]) for i in seen] == \
        [(box, "dog", [2, 3, 10, 12], {"pose": "sit"})]

    # A copy without annotations is new files: edits there stay there.
    out = shardset("dir", "copy", "dogs", "dogs2", "--no-annotations", *c).stdout
    assert b"6 files copied" in out and b"no annotations" in out
    assert instances(cat, "dogs2") == []
    puppy = added_id(shardset("annotate", "set", "dogs2", "dogs/1", "--label", "puppy",
                              "--box", "0,0,5,5", *c))
    assert [i["id"] for i in instances(cat, "dogs", "dogs/1")] == [box]
    assert [i["id"] for i in instances(cat, "default", "dogs/1")] == [box]
    assert [i["id"] for i in instances(cat, "dogs2", "dogs/1")] == [puppy]
    dirs = json.loads(shardset("dir", "ls", *c, "--json").stdout)
    assert {d["directory"]: (d["files"], d["instances"]) for d in dirs} == {
        "default": (10, 2), "dogs": (6, 2), "dogs2": (6, 1)}

    # COCO: loads in pycocotools, with the documented fields and the sizes
    # of the images' headers.
    coco_path = root / "dogs.json"
    out = shardset("annotate", "export", "dogs", "--coco", coco_path, *c).stdout
    assert b"6 images, 2 instances, 1 classes" in out
    coco = json.loads(coco_path.read_text())
    assert {im["file_name"]: (im["width"], im["height"]) for im in coco["images"]} == \
        {f"{k}.png": v for k, v in SIZES.items() if k.startswith("dogs/")}
    for a in coco["annotations"]:
        assert set(a) >= {"id", "image_id", "category_id", "bbox", "area", "segmentation",
                          "iscrowd"}
    assert coco["categories"] == [{"id": 1, "name": "dog", "supercategory": ""}]
    coco_api = pytest.importorskip("pycocotools.coco")
    api = coco_api.COCO(str(coco_path))
    assert len(api.getImgIds()) == 6
    assert api.loadCats(api.getCatIds()) == [{"id": 1, "name": "dog", "supercategory": ""}]
    by_file = {api.imgs[i]["file_name"]: i for i in api.getImgIds()}
    (a_box,) = api.loadAnns(api.getAnnIds(imgIds=[by_file["dogs/1.png"]]))
    assert a_box["bbox"] == [2, 3, 10, 12] and a_box["area"] == 120
    assert a_box["attributes"] == {"pose": "sit"} and a_box["id"] == box
    (a_poly,) = api.loadAnns(api.getAnnIds(imgIds=[by_file["dogs/2.png"]]))
    assert a_poly["bbox"] == [4, 4, 26, 16] and a_poly["area"] == 26 * 16
    mask = api.annToMask(a_poly)
    assert mask.shape == (SIZES["dogs/2"][1], SIZES["dogs/2"][0])
    assert abs(int(mask.sum()) - 26 * 16) <= 26 + 16 + 1  # rasterised edges

    # YOLO: labels beside a `link --layout yolo` tree of the same directory.
    yolo = root / "dogs-yolo"
    shardset("link", f"{cat}#dogs", "-o", yolo, "--layout", "yolo", "--mode", "copy")
    shardset("annotate", "export", "dogs", "--yolo", yolo, *c)
    images = sorted(p.stem for p in (yolo / "images").iterdir())
    labels = sorted(p.stem for p in (yolo / "labels").iterdir())
    assert images == labels == [f"dogs_{i}" for i in range(6)]
    assert "names:\n  0: \"dog\"\n" in (yolo / "data.yaml").read_text()
    for stem in labels:
        w, h = SIZES[stem.replace("_", "/")]
        for line in (yolo / "labels" / f"{stem}.txt").read_text().splitlines():
            cls, *xywh = line.split()
            assert cls == "0" and len(xywh) == 4
            assert all(0 <= float(v) <= 1 for v in xywh)
    w, h = SIZES["dogs/1"]
    cx, cy, bw, bh = map(float, (yolo / "labels" / "dogs_1.txt").read_text().split()[1:])
    assert (cx, cy, bw, bh) == pytest.approx(((2 + 5) / w, (3 + 6) / h, 10 / w, 12 / h),
                                             abs=1e-6)
    assert (yolo / "labels" / "dogs_0.txt").read_text() == ""

    # Both import back into fresh copies as the same boxes.
    shardset("dir", "copy", "dogs", "from-coco", "--no-annotations", *c)
    shardset("annotate", "import", "from-coco", "--coco", coco_path, *c)
    shardset("dir", "copy", "dogs", "from-yolo", "--no-annotations", *c)
    shardset("annotate", "import", "from-yolo", "--yolo", yolo, *c)
    for name in ("from-coco", "from-yolo"):
        got = {i["key"]: i for i in instances(cat, name)}
        assert got["dogs/1"]["box"] == pytest.approx([2, 3, 10, 12])
        assert got["dogs/1"]["label"] == "dog"
    assert instances(cat, "from-coco", "dogs/2")[0]["polygon"] == [4, 4, 30, 4, 30, 20, 4, 20]
    assert instances(cat, "from-yolo", "dogs/2")[0]["box"] == pytest.approx([4, 4, 26, 16])

    # dir export: new shards with each sample's instances in "json".
    out_ds = root / "dogs-annotated"
    shardset("dir", "export", "dogs", *c, "-o", out_ds, "-q")
    got = json.loads(shardset("cat", out_ds, "dogs/1", "--field", "json").stdout)
    assert [(i["id"], i["label"], i["box"]) for i in got["instances"]] == \
        [(box, "dog", [2, 3, 10, 12])]
    assert json.loads(shardset("cat", out_ds, "dogs/0", "--field", "json").stdout) == \
        {"instances": []}
    listing = shardset("ls", out_ds).stdout.decode()
    assert "annotations:" not in listing and "json:" in listing and "png:" in listing
    shardset("verify", out_ds)
    assert shardset("cat", out_ds, "dogs/3", "--field", "png").stdout == \
        (root / "pets" / "dogs" / "3.png").read_bytes()


def test_import_errors_are_one_line(pets):
    root, cat = pets
    bad = root / "bad.json"
    bad.write_text('{"images": [{"id": 1, "file_name": "dogs/9.png"}], '
                   '"annotations": [], "categories": []}')
    proc = shardset("annotate", "import", "default", "--coco", bad, "-c", cat, check=False)
    assert proc.returncode == 3
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "dogs/9.png" in err and "--skip-missing" in err
    proc = shardset("annotate", "import", "default", "--coco", bad, "--yolo", root, "-c", cat,
                    check=False)
    assert proc.returncode == 2 and b"exactly one of --coco" in proc.stderr
    help_text = shardset("annotate", "import", "--help").stdout.decode()
    assert "--skip-missing" in help_text and "--replace" in help_text


def test_torch_over_a_directory(pets):
    """Acceptance 2: shardset.torch over CATALOG#dogs yields its samples with
    their boxes, through a DataLoader with 2 workers."""
    torch_mod = pytest.importorskip("shardset.torch")
    root, cat = pets
    shardset("dir", "copy", "default", "train-dogs", "--label", "dogs", "--no-annotations",
             "-c", cat)
    ids = {}
    for i in range(6):
        ids[f"dogs/{i}"] = added_id(shardset(
            "annotate", "set", "train-dogs", f"dogs/{i}", "--label", "dog",
            "--box", f"{i},{i},{10 + i},{8 + i}", "-c", cat))
    ds = torch_mod.Dataset(f"{cat}#train-dogs", decode="png")
    loader = torch_mod.DataLoader(ds, batch_size=4, num_workers=2, seed=3)
    seen = {}
    for batch in loader:
        for key, img, ann in zip(batch["__key__"], batch["png"], batch["annotations"]):
            assert tuple(img.shape) == (SIZES[key][1], SIZES[key][0], 3)
            seen[key] = json.loads(ann)
    assert sorted(seen) == sorted(ids)
    for key, anns in seen.items():
        i = int(key.split("/")[1])
        assert [(a["id"], a["label"], a["box"]) for a in anns] == \
            [(ids[key], "dog", [i, i, 10 + i, 8 + i])]


# One editing process of the concurrency test: adds, updates and removes
# instances of its own (label p<N>-...) through the Python API or the CLI,
# reads now and then, and logs every edit after it returned.
EDITOR = textwrap.dedent("""
    import json, random, subprocess, sys, time
    import shardset
    cat_path, n, seconds, use_cli, shardset_bin, log_path = sys.argv[1:]
    n, seconds, use_cli = int(n), float(seconds), use_cli == "1"
    rng = random.Random(n)
    cat = shardset.Catalog(cat_path)
    keys = [f["key"] for f in cat.files("edits")]
    mine = {}
    log = open(log_path, "w")
    def cli(*args):
        p = subprocess.run([shardset_bin, *args, "-c", cat_path], capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.decode())
        return p.stdout.decode()
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        r = rng.random()
        count += 1
        box = [rng.randrange(50), rng.randrange(50), 1 + rng.randrange(20), 1 + rng.randrange(20)]
        label = f"p{n}-{count}"
        if r < 0.5 or not mine:
            key = rng.choice(keys)
            if use_cli:
                out = cli("annotate", "set", "edits", key, "--label", label,
                          "--box", ",".join(map(str, box)))
                i = int(out.split()[1])
            else:
                i = cat.add_instance("edits", key, label, box=box)
            mine[i] = key
            log.write(json.dumps(["add", i, label, box]) + "\\n")
        elif r < 0.75:
            i = rng.choice(sorted(mine))
            if use_cli:
                cli("annotate", "set", "edits", mine[i], "--id", str(i), "--label", label,
                    "--box", ",".join(map(str, box)))
            else:
                cat.update_instance(i, label=label, box=box)
            log.write(json.dumps(["update", i, label, box]) + "\\n")
        elif r < 0.9:
            i = rng.choice(sorted(mine))
            if use_cli:
                cli("annotate", "rm", str(i))
            else:
                cat.remove_instance(i)
            del mine[i]
            log.write(json.dumps(["remove", i]) + "\\n")
        else:
            cat.instances("edits", rng.choice(keys))
            cat.dirs()
        log.flush()
    log.close()
""")


def test_ten_processes_edit_at_once(pets, tmp_path):
    """Acceptance 3: ten processes editing for SHARDSET_CATALOG_SECONDS
    (default 10): no lost edit, no "database is locked", integrity holds."""
    root, _ = pets
    seconds = float(os.environ.get("SHARDSET_CATALOG_SECONDS", "10"))
    cat = tmp_path / "edits.catalog"
    shardset("dir", "create", "edits", "-c", cat)
    shardset("dir", "add", "edits", "--from", root / "pets-ds", "-c", cat)
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    procs = []
    for n in range(10):
        log = tmp_path / f"edits-{n}.log"
        procs.append((log, subprocess.Popen(
            [sys.executable, str(script), str(cat), str(n), str(seconds), str(n % 2), str(BIN),
             str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    # Each process's own instances at its end, from its log. SQLite may give
    # a new instance the id of one removed before (the largest), so ids are
    # followed per process, in its order, and the union taken: two
    # processes both holding one id at their ends would be a lost edit.
    expected, counts = {}, {"add": 0, "update": 0, "remove": 0}
    for log, p in procs:
        out, err = p.communicate(timeout=seconds + 120)
        assert p.returncode == 0, err.decode()[-2000:]
        assert b"locked" not in err
        mine = {}
        for line in log.read_text().splitlines():
            op = json.loads(line)
            counts[op[0]] += 1
            if op[0] == "remove":
                del mine[op[1]]
            else:
                mine[op[1]] = (op[2], [float(v) for v in op[3]])
        assert not set(mine) & set(expected), "two processes hold one instance id"
        expected.update(mine)
    import shardset as api
    got = {i["id"]: (i["label"], i["box"]) for i in api.Catalog(cat).instances("edits")}
    assert got == expected
    db = sqlite3.connect(cat)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()
    edits = sum(counts.values())
    print(f"\n{seconds:.0f} s, 10 processes: {edits} edits ({counts['add']} adds, "
          f"{counts['update']} updates, {counts['remove']} removes; {edits / seconds:.0f}/s), "
          f"{len(got)} instances at the end, integrity ok")
    assert counts["add"] > 0 and counts["update"] > 0 and counts["remove"] > 0
