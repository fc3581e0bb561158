"""shardset.Writer: write while generating, seal, resume after SIGKILL (issue
6 acceptance 5), append, refuse to mix runs."""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import shardset
from shardset_e2e_conftest import BIN, run, shardset as cli


def sample(i):
    """Generated sample i: a payload that names it, and a label."""
    rng = random.Random(i)
    return {"bin": f"sample {i} ".encode() * rng.randint(1, 40), "cls": i % 10}


def test_write_then_read(tmp_path):
    out = tmp_path / "gen"
    with shardset.Writer(out, shard_samples=300) as w:
        for i in range(1000):
            w.write(f"gen/{i:06d}", sample(i))
        assert w.samples == 1000
    ds = shardset.open(out)
    assert len(ds) == 1000
    for i in (0, 299, 300, 999):
        s = ds[i]
        assert s.key == f"gen/{i:06d}" and s.bytes("bin") == sample(i)["bin"]
        assert s.text("cls") == str(i % 10)
    assert len(list(out.glob("shard-*.shard"))) == 4
    run(BIN, "verify", "-q", out)


def test_field_types(tmp_path):
    arr = np.arange(12, dtype=np.uint16).reshape(3, 4)
    with shardset.Writer(tmp_path / "t", format="tar") as w:
        w.write("a", txt="hello", n=42, raw=b"\x00\x01", mv=memoryview(b"xyz"), arr=arr,
                strided=arr[:, ::2])
        with pytest.raises(TypeError, match="field 'bad' of sample 'b'"):
            w.write("b", bad=3.5)
    s = shardset.open(tmp_path / "t")[0]
    assert s.text("txt") == "hello" and s.text("n") == "42" and s.bytes("raw") == b"\x00\x01"
    assert s.bytes("mv") == b"xyz" and s.bytes("arr") == arr.tobytes()
    assert s.bytes("strided") == arr[:, ::2].tobytes()
    assert len(shardset.open(tmp_path / "t")) == 1


def test_exception_in_with_block_seals_and_resume_continues(tmp_path):
    out = tmp_path / "gen"
    with pytest.raises(RuntimeError):
        with shardset.Writer(out, shard_samples=100) as w:
            for i in range(250):
                w.write(f"{i:05d}", sample(i))
            raise RuntimeError("the generator failed")
    assert not (out / "manifest.json").exists()
    with pytest.raises(shardset.AlreadyExistsError, match="resume=True"):
        shardset.Writer(out, shard_samples=100)
    with shardset.Writer(out, shard_samples=100, resume=True) as w:
        assert w.resumed == 250 and w.samples == 250
        for i in range(w.samples, 400):
            w.write(f"{i:05d}", sample(i))
    assert [s.key for s in shardset.open(out)] == [f"{i:05d}" for i in range(400)]
    # A finished dataset: resume appends.
    with shardset.Writer(out, shard_samples=100, resume=True) as w:
        assert w.resumed == 400
        w.write("00400", sample(400))
    assert len(shardset.open(out)) == 401
    with pytest.raises(shardset.AlreadyExistsError, match="overwrite"):
        shardset.Writer(out, shard_samples=7, resume=True)
    with shardset.Writer(out, shard_samples=7, overwrite=True) as w:
        w.write("x", sample(0))
    assert len(shardset.open(out)) == 1


CHILD = textwrap.dedent("""
    import random, sys
    import shardset
    out, total = sys.argv[1], int(sys.argv[2])
    def sample(i):
        rng = random.Random(i)
        return {"bin": f"sample {i} ".encode() * rng.randint(1, 40), "cls": i % 10}
    with shardset.Writer(out, shard_size="256KiB", resume=True) as w:
        print(w.resumed, flush=True)
        for i in range(w.samples, total):
            w.write(f"gen/{i:06d}", sample(i))
""")


def test_sigkill_while_generating_then_resume(tmp_path):
    """A child writes 100,000 generated samples and is killed with SIGKILL at
    random moments (three times); each rerun resumes after the last sealed
    shard; at the end verify passes and every sample is there exactly once,
    with its own bytes."""
    total = 100_000
    out = tmp_path / "gen"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cmd = [sys.executable, str(script), str(out), str(total)]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True)  # a reference timing
    full = time.monotonic() - t0
    reference = cli("ls", out).stdout
    run("rm", "-rf", out)
    rng = random.Random(int(os.environ.get("SHARDSET_CRASH_SEED", "11")))
    resumed = []
    for kill in range(3):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.25, 0.85) * full)
        proc.send_signal(signal.SIGKILL)
        out_text, _ = proc.communicate()
        if out_text.strip():
            resumed.append(int(out_text.split()[0]))
        assert not (out / "manifest.json").exists() or kill > 0
        # Nothing half-written under a final name.
        for p in out.glob("shard-*"):
            run(BIN, "verify", "-q", p)
    r = subprocess.run(cmd, check=True, capture_output=True, text=True)
    resumed.append(int(r.stdout.split()[0]))
    assert resumed[-1] > 0, f"no kill landed after a sealed shard: resumed {resumed}"
    assert resumed == sorted(resumed), f"a resume lost sealed samples: {resumed}"
    cli("verify", "-q", out)
    assert cli("ls", out).stdout == reference
    ds = shardset.open(out)
    keys = [s.key for s in ds]
    assert keys == [f"gen/{i:06d}" for i in range(total)]  # each once, in order
    for i in rng.sample(range(total), 500):
        assert ds[i].bytes("bin") == sample(i)["bin"]
    print(f"resumed at {resumed} samples")
