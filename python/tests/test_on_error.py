"""Bad samples (issue 8): on_error="raise" | "skip" | "warn" in shardset.torch
(Dataset, IterableDataset, with DataLoader workers 0 and 2) and in
shardset.Dataset iteration, on a dataset with deliberately damaged samples.

raise (the default) stops with an error naming the shard and the sample;
skip leaves the sample out of its batch and counts it; warn also warns once
per bad sample. Counts made in DataLoader workers reach the training process
(loader.errors, loader.bad_samples, dataset.errors)."""
import io
import os
import pathlib
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

import shardset
from shardset.torch import DataLoader, Dataset, IterableDataset

N = 300
BAD = (57, 213, 214)  # damaged in place: checksums fail when they are read


def png(i):
    """A small grayscale PNG unique to sample i."""
    a = np.full((8, 8), i % 256, np.uint8)
    a[0, :4] = np.frombuffer(i.to_bytes(4, "little"), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("on-error") / "clean"
    with shardset.Writer(out, shard_samples=100) as w:
        for i in range(N):
            w.write(f"{i:04d}", png=png(i), cls=i % 10)
    return out


def damage(ds_dir, positions):
    """Flips a byte in the middle of each sample's PNG, in its shard (bit rot:
    the manifest is left as it was, so only the sample's checksum sees it)."""
    for i in positions:
        data = png(i)
        for shard in sorted(pathlib.Path(ds_dir).glob("shard-*.shard")):
            raw = bytearray(shard.read_bytes())
            at = raw.find(data)
            if at >= 0:
                raw[at + len(data) // 2] ^= 0x40
                shard.write_bytes(bytes(raw))
                break
        else:
            raise AssertionError(f"sample {i} not found")


@pytest.fixture(scope="module")
def bad(clean, tmp_path_factory):
    out = tmp_path_factory.mktemp("on-error") / "bad"
    shutil.copytree(clean, out)
    damage(out, BAD)
    return out


GOOD = [i for i in range(N) if i not in BAD]


def indices(batches):
    return [i for b in batches for i in b["__index__"].tolist()]


def check_batch(b, decode=False):
    """Every sample in a batch is the one its __index__ says, intact."""
    for k, i in enumerate(b["__index__"].tolist()):
        assert b["__key__"][k] == f"{i:04d}"
        if decode:
            assert b["png"][k, 0, 4, 0].item() == i % 256
        elif "png" in b and isinstance(b["png"], list):
            assert b["png"][k] == png(i)
        assert b["cls"][k].item() == i % 10


# ---------------------------------------------------------------- raise

@pytest.mark.parametrize("workers", [0, 2])
def test_raise_is_the_default_and_names_shard_and_sample(bad, workers):
    loader = DataLoader(IterableDataset(bad, batch_size=32, shuffle=False, label="cls"),
                        num_workers=workers)
    with pytest.raises(shardset.CorruptionError) as e:
        for _ in loader:
            pass
    msg = str(e.value)
    assert "shard-000000.shard" in msg and "sample 57" in msg and "0057" in msg, msg
    loader = DataLoader(Dataset(bad, label="cls"), batch_size=32, shuffle=False,
                        num_workers=workers)
    with pytest.raises(shardset.CorruptionError, match="0057"):
        for _ in loader:
            pass


def test_shardset_dataset_iteration(bad):
    with pytest.raises(shardset.CorruptionError, match=r"shard-000000\.shard.*0057"):
        list(shardset.open(bad))
    ds = shardset.open(bad, on_error="skip")
    got = [s.index for s in ds]
    assert got == GOOD and ds.errors == len(BAD)
    assert [b.index for b in ds.bad_samples] == list(BAD)
    assert [b.key for b in ds.bad_samples] == [f"{i:04d}" for i in BAD]
    assert all("shard-00000" in b.error for b in ds.bad_samples)
    list(ds)
    assert ds.errors == 2 * len(BAD)  # counted each time a bad sample is read
    with pytest.raises(shardset.CorruptionError):
        ds[57]  # reads by position always raise
    assert bytes(ds[58]["png"]) == png(58)
    with pytest.warns(shardset.BadSampleWarning) as w:
        ws = shardset.open(bad, on_error="warn")
        assert len(list(ws)) == len(GOOD)
    assert len(w) == len(BAD) and "sample 213" in str(w[1].message)
    with pytest.raises(ValueError, match="on_error"):
        shardset.open(bad, on_error="ignore")


# ---------------------------------------------------------------- skip

@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_skip_counts_in_the_training_process(bad, clean, workers, packed):
    ds = IterableDataset(bad, batch_size=32, seed=3, label="cls", packed=packed,
                         on_error="skip")
    loader = DataLoader(ds, num_workers=workers)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert sorted(indices(batches)) == GOOD
        assert len(batches) == len(loader)  # no batch was all bad
        for b in batches:
            if packed:
                for k, i in enumerate(b["__index__"].tolist()):
                    assert bytes(b["png"][k].numpy()) == png(i)
                    assert b["cls"][k].item() == i % 10
            else:
                check_batch(b)
        assert sum(len(b["__key__"]) for b in batches) == len(GOOD)
    assert loader.errors == 2 * len(BAD) and ds.errors == 2 * len(BAD)
    recs = loader.bad_samples
    assert sorted((r.epoch, r.index) for r in recs) == [(e, i) for e in (0, 1) for i in BAD]
    assert all(r.key == f"{r.index:04d}" and "shard-00000" in r.error for r in recs)
    # The order is still the one of the seed: the clean dataset's, minus the bad.
    ref = DataLoader(IterableDataset(clean, batch_size=32, seed=3), num_workers=0)
    ref.set_epoch(1)
    assert indices(batches) == [i for i in indices(list(ref)) if i not in BAD]


@pytest.mark.parametrize("workers", [0, 2])
def test_map_style_skip_drops_from_the_batch(bad, workers):
    ds = Dataset(bad, label="cls", decode="png", on_error="skip")
    loader = DataLoader(ds, batch_size=32, seed=5, num_workers=workers)
    batches = list(loader)
    assert len(batches) == len(loader)
    assert sorted(indices(batches)) == GOOD
    for b in batches:
        check_batch(b, decode=True)
        assert b["png"].shape[0] == len(b["__key__"])  # shorter, never padded
    assert loader.errors == len(BAD) and ds.errors == len(BAD)
    assert sorted(r.index for r in loader.bad_samples) == list(BAD)


def test_map_style_direct_use(bad):
    ds = Dataset(bad, label="cls", on_error="skip")
    assert ds[57] is None and ds.errors == 1
    assert bytes(ds[58]["png"]) == png(58)
    got = ds.__getitems__([56, 57, 58])
    assert [s.index for s in got] == [56, 58] and ds.errors == 2
    it = IterableDataset(bad, batch_size=100, shuffle=False, on_error="skip")
    assert sorted(indices(list(it))) == GOOD and it.errors == len(BAD)


def test_a_collate_fn_of_ones_own_never_sees_bad_samples(bad):
    ds = Dataset(bad, on_error="skip")
    loader = DataLoader(ds, batch_size=100, shuffle=False, collate_fn=_own_collate,
                        num_workers=2)
    batches = list(loader)
    assert [i for b in batches for i in b] == GOOD
    assert [len(b) for b in batches] == [99, 100, 98] and loader.errors == len(BAD)


def test_a_collate_fn_given_for_an_iterable_dataset_sees_batches_only(bad):
    ds = IterableDataset(bad, batch_size=100, shuffle=False, on_error="skip")
    loader = DataLoader(ds, collate_fn=_count_batch, num_workers=2)
    assert [n for n, _ in loader] == [99, 100, 98] and loader.errors == len(BAD)


def _count_batch(batch):
    assert isinstance(batch, dict), type(batch)
    return len(batch["__key__"]), batch


def _own_collate(samples):  # module level: workers may be spawned
    assert all(isinstance(s, shardset.Sample) for s in samples), samples
    return [s.index for s in samples]


# ---------------------------------------------------------------- warn

@pytest.mark.parametrize("workers", [0, 2])
def test_warn_once_per_bad_sample_in_the_training_process(bad, workers):
    for ds in (IterableDataset(bad, batch_size=50, shuffle=False, on_error="warn"),
               Dataset(bad, on_error="warn")):
        kw = {} if isinstance(ds, IterableDataset) else {"batch_size": 50, "shuffle": False}
        loader = DataLoader(ds, num_workers=workers, **kw)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert sorted(indices(list(loader))) == GOOD
        w = [x for x in w if issubclass(x.category, shardset.BadSampleWarning)]
        assert len(w) == len(BAD), [str(x.message) for x in w]
        for x, i in zip(w, BAD):
            msg = str(x.message)
            assert f"sample {i}" in msg and f"{i:04d}" in msg, msg
            assert ("shard-000000.shard" if i < 100 else "shard-000002.shard") in msg, msg
        assert loader.errors == len(BAD)


# ---------------------------------------------------------------- whole shards

@pytest.mark.parametrize("workers", [0, 2])
def test_a_missing_shard_skips_its_samples_and_resume_stays_exact(clean, tmp_path, workers):
    """Shard 1 (samples 100..199) deleted: batches 2 and 3 of 50 are left
    empty and not yielded, yet they count as handed out, so a state saved
    after them resumes at the right batch."""
    ds_dir = tmp_path / "missing"
    shutil.copytree(clean, ds_dir)
    os.unlink(ds_dir / "shard-000001.shard")

    def make(w):
        return DataLoader(IterableDataset(ds_dir, batch_size=50, shuffle=False,
                                          on_error="skip"), num_workers=w)
    loader = make(workers)
    batches = list(loader)
    assert [b["__index__"][0].item() for b in batches] == [0, 50, 200, 250]
    assert loader.errors == 100
    assert all("shard-000001.shard" in r.error for r in loader.bad_samples)
    first = make(workers)
    it = iter(first)
    assert next(it)["__index__"][0].item() == 0
    assert next(it)["__index__"][0].item() == 50
    assert next(it)["__index__"][0].item() == 200
    state = first.state_dict()
    assert state["batches"] == 5  # 0, 1, the two empty ones, 4
    del it
    second = make(0)
    second.load_state_dict(state)
    assert [b["__index__"][0].item() for b in second] == [250]


def test_undecodable_images_are_bad_samples(tmp_path):
    out = tmp_path / "undecodable"
    with shardset.Writer(out) as w:
        for i in range(10):
            w.write(f"{i:02d}", png=png(i) if i != 4 else png(i)[:40], cls=i)  # cut short
    ds = Dataset(out, decode="png", label="cls", on_error="skip")
    batches = list(DataLoader(ds, batch_size=5, shuffle=False))
    assert indices(batches) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert ds.errors == 1 and "PNG" in ds.bad_samples[0].error
    with pytest.raises(shardset.Error, match="sample 4 .'04'.*PNG"):
        list(DataLoader(Dataset(out, decode="png"), batch_size=5, shuffle=False))


# ---------------------------------------------------------------- keys that are not UTF-8

def test_keys_that_are_not_utf8_read_with_surrogates(tmp_path):
    """A key or field name that is not UTF-8 (a latin-1 tar member name, a
    damaged tsv key: found by tests/test_corruption.py) raised
    UnicodeDecodeError, naming no sample, from ds[i], iteration and key(); it
    is now a str with the other bytes as surrogates (os.fsdecode's way), and
    find() takes it back."""
    import tarfile
    path = tmp_path / "latin1.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as t:
        for name, data in (("caf\xe9.png", b"one"), ("ok.d\xe9j\xe0", b"two")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    ds = shardset.open(path)
    keys = [s.key for s in ds]
    assert keys == [os.fsdecode(b"caf\xe9"), "ok"]
    assert ds.key(0) == keys[0] and ds.find(keys[0]) == 0 and ds.find(b"caf\xe9") == 0
    assert bytes(ds[0]["png"]) == b"one"
    assert list(ds[1]) == [os.fsdecode(b"d\xe9j\xe0")]
    assert ds.read_packed([0, 1])["__key__"] == keys
