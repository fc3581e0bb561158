"""Shared fixtures for the end-to-end tests: the CLI binary, the Fashion-MNIST
PNG tree made from Debian's package, and helpers to run commands."""
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("SHARDSET_BUILD_DIR", ROOT / "build"))
BIN = pathlib.Path(os.environ.get("SHARDSET_BIN", BUILD / "shardset"))
FMNIST_TOOL = BUILD / "fashion_mnist_png"
SHARED = ROOT.parent / "shared"


def run(*args, check=True, input=None, cwd=None, env=None):
    """Runs a command; returns CompletedProcess with bytes stdout/stderr."""
    proc = subprocess.run([str(a) for a in args], input=input, capture_output=True,
                          cwd=cwd, env=env)
    if check and proc.returncode != 0:
        cmd = " ".join(map(str, args))
        if len(cmd) > 300:
            cmd = cmd[:300] + f"... ({len(args)} args)"
        raise AssertionError(
            f"{cmd} exited {proc.returncode}\n"
            f"stdout: {proc.stdout[-300:]!r}\nstderr: {proc.stderr[-2000:]!r}")
    return proc


def shardset(*args, **kw):
    return run(BIN, *args, **kw)


@pytest.fixture(scope="session")
def bin_path():
    assert BIN.exists(), f"build first: {BIN} missing"
    return BIN


@pytest.fixture(scope="session")
def fmnist_tree(tmp_path_factory):
    """fashion-mnist/{training,testing}/<label>/<n>.png: all 70,000 images."""
    if not pathlib.Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.fail("Debian's dataset-fashion-mnist package is not installed "
                    "(run scripts/install-deps.sh)")
    out = tmp_path_factory.mktemp("fmnist") / "fashion-mnist"
    run(FMNIST_TOOL, out)
    return out


@pytest.fixture(scope="session")
def fmnist_train_native(fmnist_tree, tmp_path_factory):
    """The 60,000 training PNGs packed with --label-from-dir into small shards."""
    out = tmp_path_factory.mktemp("packed") / "train"
    shardset("pack", fmnist_tree / "training", "-o", out, "--label-from-dir",
             "--shard-size", "4MiB", "--jobs", "2", "-q")
    return out


def source_files(tree):
    """Relative path -> absolute path of every regular file under tree."""
    tree = pathlib.Path(tree)
    return {str(p.relative_to(tree)): p for p in tree.rglob("*") if p.is_file()}
