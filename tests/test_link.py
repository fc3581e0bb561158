"""Issue 4 acceptance 2: `shardset link` trees and `shardset list` files for tools
that want a directory. torchvision's ImageFolder on a link tree of a mix finds
exactly the view's samples with the right classes, the bytes of the sources;
symlink mode copies no data (docs/link.md)."""
import collections
import json
import os
import pathlib
import re
import shutil

import pytest

from conftest import BIN, run, shardset

IMG_EXT = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def missing_verbs():
    # `shardset VERB --help` of an unknown verb prints the main help and exits
    # 0, so the verbs are looked up in the main help's list.
    if not BIN.exists():
        return []  # conftest's bin_path fixture reports it
    main_help = run(BIN, "--help").stdout.decode()
    return [v for v in ("link", "list", "dataset", "select", "mix")
            if not re.search(rf"^\s+{v}\s", main_help, re.M)]


# Checked at collection, before the session fixtures build the 70,000 PNGs.
pytestmark = pytest.mark.skipif(bool(missing_verbs()),
                                reason=f"not in this build yet: shardset {missing_verbs()}")


@pytest.fixture(scope="module")
def fm_sets(fmnist_tree, tmp_path_factory):
    """Two loose-file datasets indexed in place: the 10,000 testing PNGs and the
    60,000 training PNGs, labels from folder names."""
    base = tmp_path_factory.mktemp("linksets")
    test_ds, train_ds = base / "fm-test", base / "fm-train"
    shardset("dataset", "create", test_ds, "--shards", fmnist_tree / "testing", "--label-from-dir")
    shardset("dataset", "create", train_ds, "--shards", fmnist_tree / "training",
             "--label-from-dir")
    return {"test": (test_ds, fmnist_tree / "testing"),
            "train": (train_ds, fmnist_tree / "training")}


@pytest.fixture(scope="module")
def mix_view(fm_sets, tmp_path_factory):
    """Half of testing and a tenth of training: 5,000 + 6,000 samples."""
    out = tmp_path_factory.mktemp("linkmix") / "mix.view"
    shardset("mix", f"a={fm_sets['test'][0]}:0.5", f"b={fm_sets['train'][0]}:0.1",
             "-o", out, "--seed", "7")
    return out


def view_keys(view):
    return [json.loads(line)["key"]
            for line in shardset("ls", view, "--json").stdout.decode().splitlines()]


def listed(view, tmp_path, *extra):
    out = tmp_path / "list.txt"
    shardset("list", view, "-o", out, *extra)
    return out.read_text().splitlines()


def tree_entries(tree):
    """Every non-folder entry under tree, without following links."""
    out = []
    for d, dirs, files in os.walk(tree):
        out += [pathlib.Path(d) / f for f in files]
    return out


def source_of(path, roots):
    """(source name, key) of a source file under one of `roots` (name -> root)."""
    for name, root in roots.items():
        prefix = str(root) + "/"
        if str(path).startswith(prefix):
            return name, str(path)[len(prefix):].rsplit(".", 1)[0]
    raise AssertionError(f"{path} is under no source root")


def test_imagefolder_of_a_mix_finds_exactly_the_view(mix_view, fm_sets, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    tree = tmp_path / "tree"
    shardset("link", mix_view, "-o", tree, "--layout", "imagefolder")
    roots = {"a": fm_sets["test"][1].resolve(), "b": fm_sets["train"][1].resolve()}

    ds = torchvision.datasets.ImageFolder(str(tree))
    assert len(ds) == 11000
    assert ds.classes == [str(c) for c in range(10)]
    seen = collections.Counter()
    for path, cls in ds.samples:
        assert os.path.islink(path), path
        target = pathlib.Path(os.readlink(path))
        assert target.is_absolute()
        name, key = source_of(target, roots)
        # <label>/<source>_<key with / as _>.png, and the label is the source's folder
        assert pathlib.Path(path).name == f"{name}_{key.replace('/', '_')}.png"
        assert ds.classes[cls] == target.parent.name == key.split("/")[0]
        seen[(name, key)] += 1
    assert all(n == 1 for n in seen.values())
    assert collections.Counter(n for n, _ in seen) == {"a": 5000, "b": 6000}
    # exactly the view's samples: its keys (ls) and the files `list` names
    assert collections.Counter(k for _, k in seen) == collections.Counter(view_keys(mix_view))
    assert sorted(map(str, (roots[n] / (k + ".png") for n, k in seen))) == \
        sorted(listed(mix_view, tmp_path))
    # the loader reads the source's bytes (a sample of them: every 97th)
    for i in range(0, len(ds), 97):
        path, cls = ds.samples[i]
        img, label = ds[i]
        assert label == cls and img.size == (28, 28)
        assert pathlib.Path(path).read_bytes() == pathlib.Path(os.readlink(path)).read_bytes()


def test_symlink_tree_copies_no_data(mix_view, tmp_path):
    tree = tmp_path / "tree"
    shardset("link", mix_view, "-o", tree, "--layout", "imagefolder", "--no-sync")
    entries = tree_entries(tree)
    assert len(entries) == 11000
    assert all(p.is_symlink() for p in entries)
    # Only inodes, plus a block per link whose target is 60 bytes or more
    # (ext4 keeps shorter targets in the inode); never the PNGs' bytes.
    apparent = sum(os.lstat(p).st_size for p in entries)
    assert apparent == sum(len(os.readlink(p)) for p in entries)
    # (folders: the root and 10 classes of about 1,100 names each)
    blocks = int(run("du", "-s", "--block-size=1", tree).stdout.split()[0])
    assert blocks <= 4096 * len(entries) + 11 * 65536
    assert not list(tmp_path.glob(".shardset-tmp.*"))


def test_copy_from_packed_shards(fmnist_train_native, fmnist_tree, tmp_path):
    view = tmp_path / "tops.view"
    shardset("select", fmnist_train_native, "--label", "3,5", "-o", view)
    refused = shardset("link", view, "-o", tmp_path / "t", "--layout", "imagefolder", check=False)
    assert refused.returncode == 2
    assert b"use --mode copy" in refused.stderr, refused.stderr
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".shardset-tmp.*"))

    tree = tmp_path / "copy"
    shardset("link", view, "-o", tree, "--layout", "imagefolder", "--mode", "copy")
    assert sorted(os.listdir(tree)) == ["3", "5"]
    entries = tree_entries(tree)
    assert len(entries) == 12000
    for p in entries:
        assert not p.is_symlink()
        label = p.parent.name
        src = fmnist_tree / "training" / label / (p.name[:-4].split("_", 1)[1] + ".png")
        assert p.name.startswith(label + "_")
        assert p.read_bytes() == src.read_bytes(), p

    nolist = shardset("list", view, "-o", tmp_path / "l.txt", check=False)
    assert nolist.returncode != 0 and b"link --mode copy" in nolist.stderr
    assert not (tmp_path / "l.txt").exists()


def test_hardlink_and_original_layout(fm_sets, tmp_path):
    ds, root = fm_sets["test"]
    view = tmp_path / "shirts.view"
    shardset("select", ds, "--label", "6", "-o", view)
    tree = tmp_path / "hard"
    shardset("link", view, "-o", tree, "--mode", "hardlink")
    entries = tree_entries(tree)
    assert len(entries) == 1000
    for p in entries:
        rel = p.relative_to(tree)
        assert rel.parts[0] == "6" and p.suffix == ".png"  # <key>.<field>; no cls file
        assert os.stat(p).st_ino == os.stat(root / rel).st_ino

    again = shardset("link", view, "-o", tree, check=False)
    assert again.returncode == 2
    assert b"exists; remove it or choose another -o" in again.stderr


@pytest.fixture(scope="module")
def yolo_set(fmnist_tree, tmp_path_factory):
    """A YOLO-style folder: 40 images, the even ones with a .txt of boxes."""
    base = tmp_path_factory.mktemp("yolo")
    src = base / "src"
    for i, png in enumerate(sorted((fmnist_tree / "testing" / "1").glob("*.png"))[:40]):
        d = src / ("train" if i < 30 else "val")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, d / png.name)
        if i % 2 == 0:
            (d / (png.stem + ".txt")).write_text(f"0 0.5 0.5 0.{i % 9 + 1} 0.3\n")
    ds = base / "ds"
    shardset("dataset", "create", ds, "--shards", src)
    return ds, src


def test_yolo_layout_keeps_pairs_together(yolo_set, tmp_path):
    ds, src = yolo_set
    view = tmp_path / "two.view"
    # the same 40 samples twice, as an oversampling mix makes them
    shardset("mix", f"y={ds}:80", "--replace", "-o", view, "--seed", "1")
    tree = tmp_path / "yolo"
    shardset("link", view, "-o", tree, "--layout", "yolo")
    assert sorted(os.listdir(tree)) == ["images", "labels"]
    images = sorted(os.listdir(tree / "images"))
    labels = sorted(os.listdir(tree / "labels"))
    assert len(images) == 80 and len(labels) == 40
    for name in images:
        stem = name[:-4]
        key = stem.split("~")[0].replace("_", "/", 1)
        assert os.readlink(tree / "images" / name) == str((src / (key + ".png")).resolve())
        has_txt = (src / (key + ".txt")).exists()
        assert (tree / "labels" / (stem + ".txt")).exists() == has_txt  # background: no file
        if has_txt:
            assert (tree / "labels" / (stem + ".txt")).read_bytes() == \
                (src / (key + ".txt")).read_bytes()
    assert sum(1 for n in images if "~2" in n) == 40

    lines = listed(view, tmp_path)
    assert len(lines) == 80 and all(line.endswith(".png") for line in lines)


def test_list_needs_a_field_every_sample_has(yolo_set, tmp_path):
    ds, src = yolo_set
    r = shardset("list", ds, "-o", tmp_path / "l.txt", "--field", "txt", check=False)
    assert r.returncode == 3, r.stderr
    assert b"has no field 'txt'" in r.stderr and b"key '" in r.stderr
    assert not (tmp_path / "l.txt").exists()
    lines = listed(ds, tmp_path)
    assert len(lines) == 40
    assert all(os.path.isabs(line) and pathlib.Path(line).is_file() for line in lines)
