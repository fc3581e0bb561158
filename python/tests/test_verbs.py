"""split, select, mix, shuffle and pack from Python: the CLI's grammar and
semantics, the same files (views list the same samples in the same order;
shards are byte-identical)."""
import filecmp

import pytest

import shardset
from shardset_e2e_conftest import shardset as cli


def ls(target):
    return cli("ls", target).stdout


@pytest.fixture(scope="module")
def fm(fmnist_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("verbs") / "fm"
    cli("dataset", "create", out, "--shards", fmnist_tree, "--label-from-dir", "-q")
    return out


def test_split_like_the_cli(fm, tmp_path):
    made = shardset.split(fm, tmp_path / "py", ratios={"train": 0.8, "val": 0.1, "test": 0.1},
                          stratify=True, seed=1)
    cli("split", fm, "--ratios", "train=0.8,val=0.1,test=0.1", "--stratify", "--seed", "1",
        "-o", tmp_path / "cli", "-q")
    assert sorted(made) == ["test", "train", "val"]
    for part in made:
        assert ls(made[part]) == ls(tmp_path / "cli" / f"{part}.view")
    assert len(shardset.open(made["val"])) == 7000
    assert "shardset.split(" in shardset.open(made["val"]).info()["recipe"]
    by = shardset.split(fm, tmp_path / "by", by_prefix={"training": "train", "testing": "test"})
    assert len(shardset.open(by["train"])) == 60000 and len(shardset.open(by["test"])) == 10000
    with pytest.raises(shardset.InvalidArgumentError, match="ratios"):
        shardset.split(fm, tmp_path / "bad", ratios="train=0.9,val=0.2")
    assert not (tmp_path / "bad").exists()


def test_select_and_mix_like_the_cli(fm, tmp_path):
    dress = shardset.select(fm, tmp_path / "dress.view", labels=[3, 4])
    cli("select", fm, "--label", "3,4", "-o", tmp_path / "dress-cli.view", "-q")
    assert ls(dress) == ls(tmp_path / "dress-cli.view")
    keys = [shardset.open(fm).key(i) for i in (5, 70, 9)]
    mine = shardset.select(fm, tmp_path / "mine.view", keys=keys)
    assert [s.key for s in shardset.open(mine)] == keys
    m = shardset.mix({"clothes": dress, "rest": (fm, "2%")}, tmp_path / "m.view", seed=7)
    cli("mix", f"clothes={dress}", f"rest={fm}:2%", "--seed", "7", "-o", tmp_path / "m-cli.view",
        "-q")
    assert ls(m[0]) == ls(tmp_path / "m-cli.view")
    assert len(shardset.open(m[0])) == 14000 + 1400
    sweep = shardset.mix([f"base={dress}", f"extra={fm}"], tmp_path / "sweep",
                         sweep="extra=0:0.1:0.05")
    assert [len(shardset.open(v)) for v in sweep] == [14000, 17500, 21000]


def test_shuffle_writes_the_cli_s_bytes(fm, tmp_path):
    r = shardset.shuffle(fm, tmp_path / "py.tar", seed=3)
    cli("shuffle", fm, "-o", tmp_path / "cli.tar", "--seed", "3", "-q")
    assert r["samples"] == 70000
    assert filecmp.cmp(tmp_path / "py.tar", tmp_path / "cli.tar", shallow=False)
    v = shardset.shuffle(fm, tmp_path / "il.view", view=True, interleave_by="label", seed=3)
    assert v["samples"] == 70000
    labels = [s.text("cls") for s in shardset.open(tmp_path / "il.view")]
    assert all(a != b for a, b in zip(labels, labels[1:]))
    assert (shardset.uniform_order(70000, 3)[:5].tolist()
            == [shardset.open(fm).find(s.key) for s in shardset.open(tmp_path / "py.tar")[:5]])


def test_pack(fmnist_tree, tmp_path):
    r = shardset.pack(fmnist_tree / "testing", tmp_path / "t", label_from_dir=True)
    assert r["samples"] == 10000
    assert shardset.open(tmp_path / "t")[0].text("cls") == "0"
