"""Issue 6 acceptance 2: python/examples/train_fashion_mnist.py trains a small
CNN on Fashion-MNIST from shards with DataLoader(num_workers=2) on CPU and
reaches 85% test accuracy within 2 epochs; its resume continues mid-epoch
exactly.
The label-ordered (unshuffled) run beside it is in bench/RESULTS.md
("Loading") and docs/python.md."""
import json
import pathlib
import subprocess
import sys

import pytest

from shardset_e2e_conftest import shardset as cli

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_fashion_mnist.py"


@pytest.fixture(scope="module")
def fm_test(fmnist_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("example") / "fm-test"
    cli("pack", fmnist_tree / "testing", "-o", out, "--label-from-dir", "-q")
    return out


def train(*args):
    r = subprocess.run([sys.executable, str(EXAMPLE), *map(str, args)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_two_epochs_reach_85_percent(fmnist_train_native, fm_test):
    epochs = train("--train", fmnist_train_native, "--test", fm_test, "--epochs", "2",
                   "--workers", "2")
    print(epochs)
    assert len(epochs) == 2
    assert epochs[-1]["test_accuracy"] >= 0.85, epochs


def test_resume_mid_epoch_continues_the_same_run(fmnist_train_native, fm_test, tmp_path):
    """Stopped after 20 batches and resumed (another worker count): the
    model sees the rest of epoch 0, then epoch 1; the same final accuracy as
    a run without the stop, to the last digit (same batches, same order, one
    thread). On a 12,000-sample split view, for time."""
    cli("split", fmnist_train_native, "--ratios", "train=0.2", "-o", tmp_path / "part",
               "--seed", "3", "-q")
    part = tmp_path / "part" / "train.view"
    ck = tmp_path / "ck.pt"
    common = ["--train", part, "--test", fm_test, "--epochs", "2", "--batch-size", "256",
              "--threads", "1"]
    stopped = train(*common, "--workers", "2", "--checkpoint", ck, "--stop-after", "20")
    assert stopped == [{"stopped": True, "epoch": 0, "batches": 20}]
    resumed = train(*common, "--workers", "1", "--checkpoint", ck, "--resume")
    whole = train(*common, "--workers", "2")
    assert [e["epoch"] for e in resumed] == [0, 1]
    assert resumed[-1]["test_accuracy"] == whole[-1]["test_accuracy"]
    assert resumed[-1]["train_loss"] == whole[-1]["train_loss"]
