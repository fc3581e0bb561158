"""Issue 2 acceptance 6: bad input to `pack`, each with its documented
behaviour (docs/input-handling.md): packed faithfully (extract gives the same
bytes under the same name), or skipped with a warning on stderr naming the
file plus a line in manifest.json "skipped", or a clear one-line error with a
non-zero exit. Never a crash (exit code >= 128, a signal) and never a silent
loss: every regular file of the source is either extracted identical or named
in a warning and in the manifest.

Also the key/field rule (docs/cli.md "Samples and keys"): the key is the path
up to the first '.' of the file name that is not its first character; the
field is what follows that dot.
"""
import json
import os
import pathlib
import shutil
import socket
import stat
import subprocess
import tarfile
import tempfile

import pytest

from conftest import BIN

FORMATS = ["native", "tar"]


# ---------------------------------------------------------------- helpers

def sh(*args, user=False, timeout=60):
    """Runs shardset with str, Path or bytes arguments (names that are not
    UTF-8 go through as bytes); returns (rc, stdout bytes, stderr text).
    user=True runs it as the unprivileged user 'nobody'."""
    argv = [os.fsencode(str(a)) if not isinstance(a, bytes) else a for a in (BIN, *args)]
    if user:
        argv = NOBODY + argv
    p = subprocess.run(argv, capture_output=True, timeout=timeout)
    assert 0 <= p.returncode < 128, (
        f"shardset {args!r} crashed: exit {p.returncode}\n{p.stderr!r}")
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def one_line(err):
    return err.endswith("\n") and err.count("\n") == 1


def write(root, rel, data=b"x"):
    """Creates root/rel (rel may be bytes) with its parent folders."""
    path = os.path.join(os.fsencode(str(root)), os.fsencode(rel))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def regular_files(root):
    """Relative path (bytes) -> contents of every regular file under root
    (symlinks and special files are not regular files here)."""
    root = os.fsencode(str(root))
    out = {}
    for d, dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root)] = f.read()
    return out


def manifest(out):
    return json.loads((pathlib.Path(out) / "manifest.json").read_text())


def pack(src, out, *args, **kw):
    return sh("pack", src, "-o", out, "-q", *args, **kw)


def extract(out, dest):
    rc, _, err = sh("extract", out, "-o", dest, "-q")
    assert rc == 0, err
    return regular_files(dest)


def check_faithful(src, out, tmp, expected=None, skipped=(), stderr=""):
    """No silent loss: the extracted tree is exactly `expected` (default: the
    source's regular files), and each of `skipped` (source-relative names) is
    named both in a warning on stderr and in manifest.json "skipped"."""
    got = extract(out, tmp / "x")
    want = regular_files(src) if expected is None else expected
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing and not extra, f"missing {missing}, unexpected {extra}"
    for k in want:
        assert got[k] == want[k], f"{k!r}: extracted bytes differ"
    lines = manifest(out)["skipped"]
    for name in skipped:
        assert any(name in w and "warning" in w for w in stderr.splitlines()), (
            f"no warning names {name}: {stderr}")
        assert any(name in line for line in lines), f"manifest 'skipped' lacks {name}: {lines}"
    assert len(lines) == len(skipped), lines


def ls_json(target):
    rc, out, err = sh("ls", "--json", target)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


# ---------------------------------------------------------------- an unprivileged user

def _nobody_prefix():
    if os.geteuid() != 0:
        return []  # already unprivileged: chmod 000 is enough
    for prefix in (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                   ["runuser", "-u", "nobody", "--"]):
        if shutil.which(prefix[0]) is None:
            continue
        try:
            p = subprocess.run(prefix + [str(BIN), "--version"], capture_output=True, timeout=20)
        except OSError:
            continue
        if p.returncode == 0:
            return prefix
    return None


NOBODY = _nobody_prefix()


@pytest.fixture
def world_dir():
    """A temporary folder anyone may read and write (pytest's are 0700)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="shardset-bad-input-"))
    d.chmod(0o777)
    yield d
    for p in d.rglob("*"):  # chmod 000 folders would stop rmtree
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(d)


needs_nobody = pytest.mark.skipif(
    NOBODY is None, reason="cannot run as an unprivileged user (no setpriv or runuser that can "
    "switch to uid 65534, or the shardset binary is not readable by it)")


# ---------------------------------------------------------------- empty input

@pytest.mark.parametrize("shape", ["empty", "only-empty-folders"])
def test_empty_directory_is_a_clear_error(tmp_path, shape):
    src = tmp_path / "src"
    src.mkdir()
    if shape == "only-empty-folders":
        (src / "a" / "b").mkdir(parents=True)
        (src / "c").mkdir()
    rc, out, err = pack(src, tmp_path / "out")
    assert rc == 2, err
    assert one_line(err) and str(src) in err and "no files to pack" in err, err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_missing_source_is_not_found(tmp_path):
    rc, _, err = pack(tmp_path / "nope", tmp_path / "out")
    assert rc == 3 and one_line(err) and "nope" in err, err


# ---------------------------------------------------------------- unreadable input

@needs_nobody
def test_unreadable_file_stops_pack_with_clear_error(world_dir):
    src = world_dir / "src"
    write(src, "a/ok.txt", b"fine")
    secret = pathlib.Path(os.fsdecode(write(src, "a/secret.txt", b"no")))
    secret.chmod(0)
    for d in [src, src / "a"]:
        d.chmod(0o755)
    rc, _, err = pack(src, world_dir / "out", user=True)
    assert rc == 1, err
    assert one_line(err) and "secret.txt" in err and "--skip-unreadable" in err, err
    assert not (world_dir / "out" / "manifest.json").exists()


@needs_nobody
@pytest.mark.parametrize("fmt", FORMATS)
def test_unreadable_file_skipped_with_skip_unreadable(world_dir, fmt, tmp_path):
    src = world_dir / "src"
    write(src, "a/ok.txt", b"fine")
    write(src, "b/ok2.txt", b"also fine")
    secret = pathlib.Path(os.fsdecode(write(src, "a/secret.txt", b"no")))
    secret.chmod(0)
    for d in [src, src / "a", src / "b"]:
        d.chmod(0o755)
    out = world_dir / "out"
    rc, stdout, err = pack(src, out, "--skip-unreadable", "--format", fmt, user=True)
    assert rc == 0, err
    assert b"1 files skipped" in stdout or b"skipped" in stdout
    want = {b"a/ok.txt": b"fine", b"b/ok2.txt": b"also fine"}
    check_faithful(src, out, tmp_path, expected=want, skipped=["secret.txt"], stderr=err)


@needs_nobody
def test_unreadable_folder_stops_pack_without_skip_unreadable(world_dir):
    src = world_dir / "src"
    write(src, "a/ok.txt", b"fine")
    write(src, "locked/inside.txt", b"hidden")
    src.chmod(0o755)
    (src / "a").chmod(0o755)
    (src / "locked").chmod(0)
    rc, _, err = pack(src, world_dir / "out", user=True)
    assert rc != 0 and "locked" in err, err


@needs_nobody
def test_unreadable_folder_skipped_with_skip_unreadable(world_dir, tmp_path):
    src = world_dir / "src"
    write(src, "a/ok.txt", b"fine")
    write(src, "locked/inside.txt", b"hidden")
    src.chmod(0o755)
    (src / "a").chmod(0o755)
    (src / "locked").chmod(0)
    out = world_dir / "out"
    rc, _, err = pack(src, out, "--skip-unreadable", user=True)
    assert rc == 0, err
    check_faithful(src, out, tmp_path, expected={b"a/ok.txt": b"fine"}, skipped=["locked"],
                   stderr=err)


# ---------------------------------------------------------------- symlinks and special files

@pytest.mark.parametrize("fmt", FORMATS)
def test_broken_symlink_skipped_with_warning(tmp_path, fmt):
    src = tmp_path / "src"
    write(src, "a/keep.txt", b"keep")
    os.symlink("does-not-exist.txt", src / "a" / "dangling.txt")
    os.symlink("self-loop", src / "self-loop")  # a link to itself: ELOOP
    rc, _, err = pack(src, tmp_path / "out", "--format", fmt)
    assert rc == 0, err
    check_faithful(src, tmp_path / "out", tmp_path, skipped=["a/dangling.txt", "self-loop"],
                   stderr=err)


def test_symlink_loop_skipped_with_warning(tmp_path):
    src = tmp_path / "src"
    write(src, "a/keep.txt", b"keep")
    os.symlink("..", src / "a" / "up")          # a/up -> src: contains itself
    os.symlink(".", src / "here")               # here -> src
    rc, _, err = pack(src, tmp_path / "out")
    assert rc == 0, err
    check_faithful(src, tmp_path / "out", tmp_path, skipped=["a/up", "here"], stderr=err)


def test_valid_symlinks_are_followed(tmp_path):
    """Link trees pack as what they point to: the link's name, the target's bytes."""
    src = tmp_path / "src"
    real = tmp_path / "elsewhere"
    write(real, "f.bin", b"target bytes")
    write(real, "dir/g.bin", b"in a linked folder")
    write(src, "plain.bin", b"plain")
    os.symlink(real / "f.bin", src / "link.bin")
    os.symlink(real / "dir", src / "linkdir")
    rc, _, err = pack(src, tmp_path / "out")
    assert rc == 0 and err == "", err
    want = {b"plain.bin": b"plain", b"link.bin": b"target bytes",
            b"linkdir/g.bin": b"in a linked folder"}
    check_faithful(src, tmp_path / "out", tmp_path, expected=want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fifo_and_socket_skipped_with_warning(tmp_path, fmt):
    src = tmp_path / "src"
    write(src, "data/a.bin", b"a")
    os.mkfifo(src / "data" / "pipe.bin")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(src / "data" / "sock"))
    try:
        rc, _, err = pack(src, tmp_path / "out", "--format", fmt, timeout=30)  # no hang on the fifo
    finally:
        s.close()
    assert rc == 0, err
    check_faithful(src, tmp_path / "out", tmp_path, skipped=["data/pipe.bin", "data/sock"],
                   stderr=err)


# ---------------------------------------------------------------- sizes and names

@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_byte_file_packed_faithfully(tmp_path, fmt):
    src = tmp_path / "src"
    write(src, "empty.bin", b"")
    write(src, "full.bin", b"123")
    rc, _, err = pack(src, tmp_path / "out", "--format", fmt)
    assert rc == 0, err
    check_faithful(src, tmp_path / "out", tmp_path)
    assert {"key": "empty", "fields": {"bin": 0}, "ordinal": 0} in ls_json(tmp_path / "out")
    rc, out, err = sh("cat", tmp_path / "out", "empty")
    assert rc == 0 and out == b"", err
    rc, _, err = sh("verify", tmp_path / "out")
    assert rc == 0, err


ODD_NAMES = [
    b"with space.txt",
    b" leading space.txt",
    b"new\nline.txt",
    b"tab\tname.txt",
    b"back\\slash.txt",
    b"not-utf8-\xff\xfe.txt",
    b"latin1-caf\xe9.txt",
    "utf8-caf\u00e9-\u732b.txt".encode(),
    b"-starts-with-dash.txt",
    b"quote'\"s.txt",
    b"star*question?.txt",
    b"dir with space/and\nnewline/\xff.bin",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_odd_names_packed_faithfully(tmp_path, fmt):
    src = tmp_path / "src"
    for i, name in enumerate(ODD_NAMES):
        write(src, name, b"content %d" % i)
    out = tmp_path / "out"
    rc, _, err = pack(src, out, "--format", fmt)
    assert rc == 0 and err == "", err
    check_faithful(src, out, tmp_path)
    # ls: one line per sample, whatever the key holds.
    rc, text, _ = sh("ls", out)
    assert rc == 0 and len(text.splitlines()) == len(ODD_NAMES)
    assert b"new\\nline" in text and b"\\xff" in text
    # ls --json: exact key bytes in key_hex when the key is not UTF-8.
    entries = ls_json(out)
    keys = set()
    for e in entries:
        keys.add(bytes.fromhex(e["key_hex"]) if "key_hex" in e else e["key"].encode())
    assert keys == {n.rsplit(b".", 1)[0] for n in ODD_NAMES}
    # cat takes the exact bytes of any key (after `--`, which a key starting
    # with '-' needs, like any command-line argument).
    for i, name in enumerate(ODD_NAMES):
        rc, data, err = sh("cat", out, "--", name.rsplit(b".", 1)[0])
        assert rc == 0 and data == b"content %d" % i, (name, err)


def _nested_path(total):
    """A relative path of exactly `total` bytes through 20-byte folders."""
    parts, length = [], 0
    while length + 21 + 10 < total:
        parts.append("d" * 20)
        length += 21
    name = "f" * (total - length - 4) + ".bin"
    return "/".join(parts + [name])


@pytest.mark.parametrize("fmt", FORMATS)
def test_300_byte_path_packed_faithfully(tmp_path, fmt):
    src = tmp_path / "src"
    rel = _nested_path(300)
    assert len(rel.encode()) == 300
    write(src, rel, b"deep")
    write(src, "shallow.bin", b"top")
    out = tmp_path / "out"
    rc, _, err = pack(src, out, "--format", fmt)
    assert rc == 0, err
    check_faithful(src, out, tmp_path)
    rc, data, err = sh("cat", out, rel[:-4])
    assert rc == 0 and data == b"deep", err
    if fmt == "tar":
        with tarfile.open(out / "shard-000000.tar") as t:
            assert rel in t.getnames()


LONG_NAME = "n" * 251 + ".bin"  # 255 bytes: NAME_MAX


@pytest.mark.parametrize("fmt", FORMATS)
def test_255_byte_file_name_packs_and_reads(tmp_path, fmt):
    src = tmp_path / "src"
    write(src, LONG_NAME, b"long")
    out = tmp_path / "out"
    rc, _, err = pack(src, out, "--format", fmt)
    assert rc == 0, err
    assert ls_json(out)[0]["key"] == LONG_NAME[:-4]
    rc, data, err = sh("cat", out, LONG_NAME[:-4])
    assert rc == 0 and data == b"long", err


@pytest.mark.parametrize("fmt", FORMATS)
def test_255_byte_file_name_extracts(tmp_path, fmt):
    src = tmp_path / "src"
    write(src, LONG_NAME, b"long")
    rc, _, err = pack(src, tmp_path / "out", "--format", fmt)
    assert rc == 0, err
    check_faithful(src, tmp_path / "out", tmp_path)


def test_no_extension_and_hidden_files(tmp_path):
    src = tmp_path / "src"
    files = {
        "README": b"readme",
        "Makefile": b"all:",
        ".hidden": b"h",
        ".hidden.json": b"{}",
        ".config/settings.ini": b"[x]",
        "dir/.env": b"A=1",
    }
    for rel, data in files.items():
        write(src, rel, data)
    out = tmp_path / "out"
    rc, _, err = pack(src, out)
    assert rc == 0 and err == "", err
    check_faithful(src, out, tmp_path)
    samples = {e["key"]: e["fields"] for e in ls_json(out)}
    assert samples == {
        "README": {"": 6}, "Makefile": {"": 4},
        ".hidden": {"": 1, "json": 2},            # one sample, two fields
        ".config/settings": {"ini": 3}, "dir/.env": {"": 3},
    }
    rc, data, err = sh("cat", out, "README")
    assert rc == 0 and data == b"readme", err
    rc, data, err = sh("cat", out, ".hidden", "--field", "json")
    assert rc == 0 and data == b"{}", err


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_stem_is_one_sample(tmp_path, fmt):
    src = tmp_path / "src"
    write(src, "train/0042.png", b"PNG")
    write(src, "train/0042.json", b'{"a": 1}')
    write(src, "train/0042.seg.png", b"SEG")
    write(src, "train/0043.png", b"P43")
    out = tmp_path / "out"
    rc, _, err = pack(src, out, "--format", fmt)
    assert rc == 0, err
    check_faithful(src, out, tmp_path)
    samples = {e["key"]: e["fields"] for e in ls_json(out)}
    assert samples == {"train/0042": {"json": 8, "png": 3, "seg.png": 3},
                       "train/0043": {"png": 3}}
    # Several fields: cat needs --field, and says so in one line.
    rc, data, err = sh("cat", out, "train/0042")
    assert rc == 2 and data == b"" and one_line(err) and "--field" in err, err
    rc, data, err = sh("cat", out, "train/0042", "--field", "seg.png")
    assert rc == 0 and data == b"SEG", err


def test_same_stem_not_adjacent_in_sort_order(tmp_path):
    src = tmp_path / "src"
    write(src, "README", b"plain")
    write(src, "README-dev.md", b"dev")
    write(src, "README.md", b"markdown")
    out = tmp_path / "out"
    rc, _, err = pack(src, out)
    assert rc == 0, err
    keys = [e["key"] for e in ls_json(out)]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"


def test_trailing_dot_name_round_trips(tmp_path):
    src = tmp_path / "src"
    write(src, "name.", b"dot")
    write(src, "other.bin", b"o")
    rc, _, err = pack(src, tmp_path / "out")
    assert rc == 0, err
    check_faithful(src, tmp_path / "out", tmp_path)


# ---------------------------------------------------------------- key / field rule

KEY_RULE = [
    ("training/3/17.png", "training/3/17", "png"),
    ("img/0042.seg.png", "img/0042", "seg.png"),
    ("a.b/c.json", "a.b/c", "json"),
    (".hidden.txt", ".hidden", "txt"),
    ("README", "README", ""),
    ("x..y", "x", ".y"),
    ("..dots", ".", "dots"),
    (".a.b.c", ".a", "b.c"),
    ("v1.2/model.tar.gz", "v1.2/model", "tar.gz"),
]


def test_key_field_rule(tmp_path):
    src = tmp_path / "src"
    for i, (path, _, _) in enumerate(KEY_RULE):
        write(src, path, b"%d" % i)
    out = tmp_path / "out"
    rc, _, err = pack(src, out)
    assert rc == 0, err
    got = {(e["key"], f) for e in ls_json(out) for f in e["fields"]}
    assert got == {(k, f) for _, k, f in KEY_RULE}
    check_faithful(src, out, tmp_path)


# ---------------------------------------------------------------- --label-from-dir

def test_label_from_dir_on_top_level_file_is_a_clear_error(tmp_path):
    src = tmp_path / "src"
    write(src, "cat/1.png", b"c")
    write(src, "stray.png", b"s")
    out = tmp_path / "out"
    rc, _, err = pack(src, out, "--label-from-dir")
    assert rc == 2, err
    assert one_line(err) and "stray" in err and "--label-from-dir" in err, err
    assert not (out / "manifest.json").exists()


def test_label_from_dir_with_a_cls_file_is_a_clear_error(tmp_path):
    src = tmp_path / "src"
    write(src, "cat/1.png", b"c")
    write(src, "cat/1.cls", b"dog")
    rc, _, err = pack(src, tmp_path / "out", "--label-from-dir")
    assert rc == 2 and one_line(err) and "cls" in err and "cat/1" in err, err


def test_label_from_dir_labels_nested_files(tmp_path):
    src = tmp_path / "src"
    write(src, "training/3/17.png", b"x")
    write(src, "training/cat dog/18.png", b"y")
    out = tmp_path / "out"
    rc, _, err = pack(src, out, "--label-from-dir")
    assert rc == 0, err
    rc, data, _ = sh("cat", out, "training/cat dog/18", "--field", "cls")
    assert rc == 0 and data == b"cat dog"
    check_faithful(src, out, tmp_path)  # the derived cls is not extracted


# ---------------------------------------------------------------- everything at once

@pytest.mark.parametrize("fmt", FORMATS)
def test_everything_at_once_no_silent_loss(tmp_path, fmt):
    """One tree holding every case above that pack accepts: every regular
    file comes back, every other entry is named in a warning and the manifest."""
    src = tmp_path / "src"
    for i, name in enumerate(ODD_NAMES):
        write(src, b"odd/" + name, b"%d" % i)
    write(src, _nested_path(300), b"deep")
    write(src, "zero.bin", b"")
    write(src, "README", b"r")
    write(src, ".hidden", b"h")
    write(src, "s/0042.png", b"p")
    write(src, "s/0042.json", b"j")
    (src / "empty-folder").mkdir()
    os.symlink("nowhere", src / "s" / "broken.png")
    os.symlink("..", src / "s" / "loop")
    os.mkfifo(src / "s" / "fifo")
    rc, _, err = pack(src, tmp_path / "out", "--format", fmt)
    assert rc == 0, err
    check_faithful(src, tmp_path / "out", tmp_path,
                   skipped=["s/broken.png", "s/loop", "s/fifo"], stderr=err)
    rc, _, err = sh("verify", tmp_path / "out")
    assert rc == 0, err


@needs_nobody
def test_resume_after_kill_with_skipped_unreadable_files(world_dir):
    """--skip-unreadable drops samples, so sealed shards hold fewer samples
    than the source positions they consumed; a resumed pack must continue at
    the right source position and end identical to an uninterrupted one."""
    import signal
    import time
    src = world_dir / "src"
    for i in range(6000):
        d = src / f"{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"{i:05d}.bin"
        f.write_bytes(os.urandom(200 + i % 300))
        if i % 97 == 0:
            f.chmod(0o000)
    args = ["pack", str(src), "--skip-unreadable", "--shard-samples", "40", "-q", "--jobs", "1"]
    ref = world_dir / "ref"
    rc, _, err = sh(*args, "-o", str(ref), user=True)
    assert rc == 0, err
    out = world_dir / "out"
    state = out / ".shardset-pack-state.json"
    for attempt in range(20):  # the kill must land after 3 shards, before the end
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.Popen(NOBODY + [str(BIN)] + args + ["-o", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            try:
                if len(json.loads(state.read_text())["shards"]) >= 3:
                    break
            except (ValueError, OSError, KeyError):
                pass
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if state.exists() and not (out / "manifest.json").exists():
            break
    else:
        pytest.skip("pack always finished before it could be interrupted")
    rc, _, err = sh(*args, "-o", str(out), user=True)
    assert rc == 0, err
    assert (out / "manifest.json").read_text() == (ref / "manifest.json").read_text()
