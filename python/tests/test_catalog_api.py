"""shardset.Catalog: directories, mirror and copy, instance edits, COCO and
YOLO round trips and dir export through the Python API; errors as
shardset's exceptions; one Catalog shared by threads; pickling by path."""
import io
import json
import pickle
import threading

import pytest

import shardset

PIL = pytest.importorskip("PIL.Image")


def png(w, h):
    out = io.BytesIO()
    PIL.new("L", (w, h), 99).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def cat(tmp_path):
    """A catalog whose directory "all" holds dogs/0..4 and cats/0..2, each a
    PNG of its own size."""
    with shardset.Writer(tmp_path / "pets") as w:
        for i in range(5):
            w.write(f"dogs/{i}", png=png(40 + i, 30 + i), cls="dogs")
        for i in range(3):
            w.write(f"cats/{i}", png=png(20, 10 + i), cls="cats")
    c = shardset.Catalog(tmp_path / "pets.catalog", create=True)
    c.create_dir("all")
    assert c.add("all", tmp_path / "pets") == 8
    return c


def test_mirror_shares_copy_does_not(cat):
    dogs = [f"dogs/{i}" for i in range(5)]
    assert cat.mirror("all", "dogs", keys=dogs) == 5
    i = cat.add_instance("dogs", "dogs/1", "dog", box=(2, 3, 10, 12), attributes={"pose": "sit"})
    (seen,) = cat.instances("all", "dogs/1")
    assert seen == {"id": i, "label": "dog", "kind": "box", "box": [2, 3, 10, 12],
                    "attributes": {"pose": "sit"}, "key": "dogs/1", "file": seen["file"]}
    assert cat.copy("dogs", "dogs2", annotations=False) == 5
    assert cat.instances("dogs2") == []
    j = cat.add_instance("dogs2", "dogs/1", "puppy", polygon=[0, 0, 5, 0, 5, 5])
    assert [x["id"] for x in cat.instances("dogs")] == [i]
    assert [x["id"] for x in cat.instances("dogs2")] == [j]
    files = cat.files("dogs2")
    assert [f["key"] for f in files] == dogs
    assert files[1]["copied_from"] == seen["file"] and files[1]["source"] == "pets"
    assert {d["name"]: (d["files"], d["instances"]) for d in cat.dirs()} == {
        "all": (8, 1), "dogs": (5, 1), "dogs2": (5, 1)}
    cat.remove_dir("dogs")
    assert [x["id"] for x in cat.instances("all", "dogs/1")] == [i]
    cat.check()


def test_edits_and_errors(cat):
    i = cat.add_instance("all", "cats/0", "cat", mask={"counts": [5, 3, 192], "size": [10, 20]})
    m = cat.instance(i)
    assert m["kind"] == "mask" and json.loads(m["mask"]) == {"counts": [5, 3, 192],
                                                               "size": [10, 20]}
    cat.update_instance(i, box=(1, 1, 4, 4))
    assert cat.instance(i)["box"] == [1, 1, 4, 4] and cat.instance(i)["label"] == "cat"
    cat.update_instance(i, label="kitten", attributes={"age": 1})
    assert (cat.instance(i)["label"], cat.instance(i)["box"], cat.instance(i)["attributes"]) \
        == ("kitten", [1, 1, 4, 4], {"age": 1})
    cat.remove_instance(i)
    with pytest.raises(shardset.NotFoundError, match=f"no instance {i}"):
        cat.remove_instance(i)
    with pytest.raises(KeyError):  # NotFoundError is a KeyError too
        cat.instance(i)
    with pytest.raises(shardset.NotFoundError, match="no sample with key 'cats/9'"):
        cat.add_instance("all", "cats/9", "cat", box=(0, 0, 1, 1))
    with pytest.raises(shardset.InvalidArgumentError, match="width and height not negative"):
        cat.add_instance("all", "cats/1", "cat", box=(0, 0, -1, 1))
    with pytest.raises(ValueError, match="exactly one of box"):
        cat.add_instance("all", "cats/1", "cat", box=(0, 0, 1, 1), polygon=[0, 0, 1, 1, 2, 2])
    with pytest.raises(shardset.AlreadyExistsError):
        cat.create_dir("all")
    cat.create_dir("all", exist_ok=True)
    with pytest.raises(shardset.NotFoundError, match="no directory 'nope'"):
        cat.files("nope")
    with pytest.raises(shardset.NotFoundError):
        shardset.Catalog(cat.path + ".missing")


def test_coco_yolo_and_dir_export(cat, tmp_path):
    cat.add_instance("all", "dogs/2", "dog", box=(4, 5, 20, 10))
    cat.add_instance("all", "cats/1", "cat", polygon=[1, 1, 15, 1, 15, 9])
    r = cat.export_coco("all", tmp_path / "all.json", sync=False)
    assert (r["images"], r["instances"], r["categories"]) == (8, 2, 2)
    coco = json.loads((tmp_path / "all.json").read_text())
    assert coco["images"][2] == {"id": 3, "file_name": "dogs/2.png", "width": 42, "height": 32}
    cat.copy("all", "again", annotations=False)
    r = cat.import_coco("again", tmp_path / "all.json")
    assert (r["matched"], r["instances"], r["missing"]) == (8, 2, 0)
    assert [(x["key"], x["kind"]) for x in cat.instances("again")] == \
        [("dogs/2", "box"), ("cats/1", "polygon")]
    r = cat.import_coco("again", tmp_path / "all.json", replace=True)
    assert r["removed"] == 2 and len(cat.instances("again")) == 2

    cat.export_yolo("all", tmp_path / "yolo", sync=False)
    assert (tmp_path / "yolo" / "labels" / "dogs_2.txt").read_text() == \
        "1 0.333333 0.3125 0.47619 0.3125\n"
    cat.copy("all", "from-yolo", annotations=False)
    assert cat.import_yolo("from-yolo", tmp_path / "yolo")["instances"] == 2
    boxes = [x["box"] for x in cat.instances("from-yolo")]
    assert boxes == [[4, 5, 20, 10], [1, 1, 14, 8]]  # the polygon as its bounding box

    r = cat.export("all", tmp_path / "out", sync=False)
    assert (r["samples"], r["instances"]) == (8, 2)
    ds = shardset.open(tmp_path / "out")
    assert json.loads(ds.get("dogs/2").bytes("json"))["instances"][0]["box"] == [4, 5, 20, 10]
    assert "annotations" not in ds.get("dogs/2")
    assert ds.verify()["ok"]
    # A directory as a dataset: the "annotations" field.
    d = cat.open("all")
    assert json.loads(d.get("cats/1").bytes("annotations"))[0]["label"] == "cat"


def test_threads_share_one_catalog_and_pickle_reopens(cat):
    def work(t):
        for n in range(25):
            cat.add_instance("all", f"dogs/{n % 5}", f"t{t}", box=(n, n, 1, 1))
            cat.instances("all", f"dogs/{n % 5}")
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cat.instances("all")) == 100
    again = pickle.loads(pickle.dumps(cat))
    assert again.path == cat.path and len(again.instances("all")) == 100
