"""shardset.open: datasets, views, shards and archives from Python; zero-copy
fields, keys, iteration, batch reads with decoding, errors, pickling."""
import io
import pickle
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

import shardset
from shardset_e2e_conftest import BIN, run, shardset as cli


@pytest.fixture(scope="module")
def train(fmnist_train_native):
    return shardset.open(fmnist_train_native)


def ls_keys(target):
    return [line.split(b"\t")[0].decode() for line in cli("ls", target).stdout.splitlines()]


def test_len_index_key_and_iteration_match_the_cli(train, fmnist_train_native, fmnist_tree):
    assert len(train) == 60000
    keys = ls_keys(fmnist_train_native)
    s = train[12345]
    assert isinstance(s, shardset.Sample) and isinstance(s, dict)
    assert s.key == keys[12345] and s.index == 12345
    assert set(s) == {"png", "cls"}
    assert s.bytes("png") == (fmnist_tree / "training" / f"{s.key}.png").read_bytes()
    assert s.text("cls") == s.key.split("/")[0]
    assert train[-1].key == keys[-1]
    assert [x.key for x in train[10:13]] == keys[10:13]
    assert [x.key for x in train] == keys
    assert train.key(7) == keys[7]
    with pytest.raises(IndexError, match="out of range"):
        train[60000]


def test_fields_are_zero_copy_views_that_keep_the_dataset_alive(fmnist_train_native):
    ds = shardset.open(fmnist_train_native)
    png = ds[5]["png"]
    assert isinstance(png, memoryview) and png.readonly and png.format == "B" and png.ndim == 1
    arr = np.frombuffer(png, np.uint8)  # a numpy view of the same bytes, no copy
    assert not arr.flags.owndata and not arr.flags.writeable
    expected = png.tobytes()
    del ds  # the view holds the dataset (and its memory map)
    assert png.tobytes() == expected and arr.tobytes() == expected
    with pytest.raises(TypeError):
        png[0] = 1


def test_get_by_key_and_errors(train, fmnist_train_native, tmp_path):
    key = train.key(31000)
    s = train.get(key)
    assert s.key == key and s.index == 31000 and s.text("cls") == key.split("/")[0]
    assert train.find(key) == 31000
    assert train.find("nope") is None
    assert train.get("nope", None) is None
    with pytest.raises(KeyError):
        train.get("nope")
    with pytest.raises(shardset.NotFoundError) as e:
        shardset.open(tmp_path / "missing")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, shardset.Error)
    assert "missing" in str(e.value)
    bad = tmp_path / "bad.shard"
    bad.write_bytes(b"not a shard at all" * 10)
    with pytest.raises(shardset.Error):
        shardset.open(bad)


def test_read_batch_decodes_like_pil(train):
    idx = [0, 17, 59999, 31337]
    plain = train.read_batch(idx)
    decoded = train.read_batch(idx, decode="png", threads=2)
    for p, d in zip(plain, decoded):
        assert p.key == d.key and p.index == d.index
        img = d["png"]
        assert img.shape == (28, 28, 1) and img.dtype == np.uint8
        ref = np.asarray(Image.open(io.BytesIO(p.bytes("png"))))
        assert np.array_equal(img[:, :, 0], ref)
        assert np.array_equal(shardset.decode_image(p["png"]), img)
    with pytest.raises(shardset.NotSupportedError, match="cls"):
        train.read_batch([0], decode="cls")


def test_archives_and_views(fmnist_tree, fmnist_train_native, tmp_path):
    z = tmp_path / "test.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in sorted((fmnist_tree / "testing" / "3").iterdir())[:50]:
            f.write(p, f"3/{p.name}")
    ds = shardset.open(z)
    assert len(ds) == 50 and ds[0]["png"].tobytes()[:8] == b"\x89PNG\r\n\x1a\n"
    view = tmp_path / "dress.view"
    cli("select", fmnist_train_native, "--label", "3", "-o", view, "-q")
    v = shardset.open(view)
    assert len(v) == 6000 and all(s.text("cls") == "3" for s in v[:100])
    assert v.info()["is_view"] and v.info()["sources"][0]["selected"] == 6000


def test_pickles_by_path_and_reads_in_threads(train):
    clone = pickle.loads(pickle.dumps(train))
    assert clone[42].key == train[42].key
    seen = []

    def work(lo):
        for i in range(lo, 60000, 4):
            seen.append(train[i].key)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 60000 and len(set(seen)) == 60000


def test_verify_reports_damage(fmnist_tree, tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    for p in sorted((fmnist_tree / "testing" / "0").iterdir())[:20]:
        (src / "a" / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "ds"
    cli("pack", src, "-o", out, "-q")
    assert shardset.open(out).verify()["ok"]
    shard = next(out.glob("shard-*.shard"))
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    ds = shardset.open(out)
    report = ds.verify()
    assert not report["ok"] and report["problems"]
    with pytest.raises(shardset.CorruptionError):
        for s in ds:
            pass
