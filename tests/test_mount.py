"""`shardset mount` / `shardset umount` (FUSE): a view, dataset, shard or archive
served as a read-only folder in the layouts of `shardset link` (docs/link.md
"Layouts and names").

What is checked: torchvision's ImageFolder on a mounted mix sees exactly the
view, with the bytes `shardset link --mode copy` writes (acceptance 1); a zip, a
tar.gz, a tar and a native dataset mounted in the original layout equal what
unzip / tar extract, sizes and member times included (acceptance 2); every
change is refused with EROFS, and hostile member names never reach outside the
mountpoint (acceptance 3); busy and lazy unmounts; a source damaged under a
mount gives EIO, never a hang or a dead mount; no /dev/fuse; the errors of
mount and umount; the yolo layout.

Every mount is made through `mounted()`, which unmounts in a finally (shardset
umount, then fusermount3 -u -z, then umount -l), and a module fixture unmounts
whatever a test left behind, so a failure never leaves a mount."""
import collections
import contextlib
import errno
import io
import json
import os
import pathlib
import random
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from conftest import BIN, run, shardset


def missing_verbs():
    if not BIN.exists():
        return []  # conftest's bin_path fixture reports it
    main_help = run(BIN, "--help").stdout.decode()
    return [v for v in ("mount", "umount", "link", "split", "mix")
            if not re.search(rf"^\s+{v}\s", main_help, re.M)]


pytestmark = [
    pytest.mark.skipif(bool(missing_verbs()),
                       reason=f"not in this build yet: shardset {missing_verbs()}"),
    pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse on this machine"),
]

FS_TYPE = "fuse.shardset"
# Every mountpoint a test mounted; the module fixture unmounts what is left.
_MOUNTPOINTS = []


# ---------------------------------------------------------------- helpers


def _unescape(field):
    # /proc/self/mountinfo writes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_type(path):
    """The type of what is mounted at `path` (the last mount there), or None."""
    real = os.path.realpath(path)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            after = line.split(" - ", 1)[1].split(" ")
            if _unescape(fields[4]) == real:
                found = after[0]
    return found


def in_proc_mounts(path):
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(_unescape(line.split(" ")[1]) == real for line in f)


def force_unmount(mnt):
    """Unmounts whatever shardset mounted at `mnt`, by every means there is."""
    for cmd in ([str(BIN), "umount", str(mnt)], ["fusermount3", "-u", "-z", str(mnt)],
                ["umount", "-l", str(mnt)]):
        if mount_type(mnt) != FS_TYPE:
            return
        try:
            subprocess.run(cmd, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass


@pytest.fixture(scope="module", autouse=True)
def _no_mount_left_behind():
    yield
    for mnt in _MOUNTPOINTS:
        force_unmount(mnt)
    left = [m for m in _MOUNTPOINTS if mount_type(m) == FS_TYPE]
    assert not left, f"still mounted after the tests: {left}"


def one_line(stderr):
    """The single line of an error message (exactly one, newline-terminated)."""
    text = stderr.decode(errors="replace")
    assert text.endswith("\n") and text.count("\n") == 1, f"not one line: {text!r}"
    return text[:-1]


def mount_cmd(target, mnt, *args, cwd=None, env=None, timeout=120):
    return subprocess.run([str(BIN), "mount", str(target), str(mnt), *map(str, args)],
                          capture_output=True, cwd=cwd, env=env, timeout=timeout)


@contextlib.contextmanager
def mounted(target, mnt, *args, cwd=None, env=None, quiet=True):
    """Mounts `target` at `mnt` (made if missing; relative to cwd when given),
    checks the mount command's contract (exit 0 once mounted, one stdout line,
    the mount in the table) and unmounts at the end whatever happens."""
    where = pathlib.Path(cwd or ".") / mnt
    where.mkdir(exist_ok=True)
    _MOUNTPOINTS.append(where.resolve())
    try:
        proc = mount_cmd(target, mnt, *args, *(["-q"] if quiet else []), cwd=cwd, env=env)
        assert proc.returncode == 0, f"mount exited {proc.returncode}: {proc.stderr!r}"
        lines = proc.stdout.decode().splitlines()
        assert len(lines) == 1 and "read-only" in lines[0], proc.stdout
        assert mount_type(where) == FS_TYPE
        yield where
    finally:
        force_unmount(where.resolve())
    assert mount_type(where) is None


def server_pids(mnt_arg):
    """Live processes serving a mount made with MOUNTPOINT argument `mnt_arg`."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            state = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (len(argv) > 3 and os.path.basename(argv[0]) == b"shardset" and argv[1] == b"mount"
                and os.fsencode(str(mnt_arg)) in argv and state != "Z"):
            pids.append(int(d))
    return pids


def wait_until(cond, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


READER = r"""
import os, sys
try:
    with open(sys.argv[1], "rb") as f:
        data = f.read()
except OSError as e:
    print(e.errno)
    sys.exit(0)
sys.stdout.buffer.write(b"OK" + data)
"""


def read_isolated(path, timeout=10):
    """Reads a file in a child process that must finish within `timeout`
    seconds: ("ok", bytes) or ("errno", n)."""
    try:
        proc = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} did not finish in {timeout} s (hung)")
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.startswith(b"OK"):
        return "ok", proc.stdout[2:]
    return "errno", int(proc.stdout)


def files_under(root):
    """Relative path -> absolute path of every file under root."""
    out = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = p
    return out


def dirs_under(root):
    return {os.path.relpath(os.path.join(d, s), root)
            for d, subs, _ in os.walk(root) for s in subs}


# ---------------------------------------------------- 1: ImageFolder of a mix


@pytest.fixture(scope="module")
def fm_mix(fmnist_tree, tmp_path_factory):
    """The 10,000 testing PNGs packed with labels, split into halves a and b,
    and a mix of 10% of a and 5% of b (500 + 250 samples), all relative to
    `base` (the view names its sources relative to itself)."""
    base = tmp_path_factory.mktemp("mountmix")
    shardset("pack", fmnist_tree / "testing", "-o", base / "ds", "--label-from-dir",
             "--jobs", "2", "-q")
    shardset("split", "ds", "--ratios", "a=0.5,b=0.5", "--seed", "1", "-o", "parts", "-q",
             cwd=base)
    shardset("mix", "a=parts/a.view:0.1", "b=parts/b.view:0.05", "--seed", "3",
             "-o", "mix.view", "-q", cwd=base)
    return base


def test_imagefolder_of_a_mounted_mix_is_the_view(fm_mix, fmnist_tree):
    torchvision = pytest.importorskip("torchvision")
    base = fm_mix
    info = json.loads(shardset("info", "--json", "mix.view", cwd=base).stdout)
    listed = [json.loads(l) for l in shardset("ls", "--json", "mix.view", cwd=base)
              .stdout.decode().splitlines()]
    assert info["samples"] == len(listed) == 750
    shardset("link", "mix.view", "-o", "tree", "--layout", "imagefolder", "--mode", "copy",
             "-q", cwd=base)
    tree = base / "tree"

    # relative TARGET and MOUNTPOINT: the background server changes to "/"
    with mounted("mix.view", "mnt", "--layout", "imagefolder", "--threads", "4",
                 cwd=base, quiet=False) as mnt:
        ds = torchvision.datasets.ImageFolder(str(mnt))
        assert len(ds) == info["samples"]
        assert ds.classes == sorted(info["labels"])
        assert collections.Counter(ds.classes[y] for _, y in ds.samples) == info["labels"]

        # the same (class, file) paths as the link tree, and nothing else
        mounted_files = files_under(mnt)
        assert {os.path.relpath(p, mnt) for p, _ in ds.samples} == set(mounted_files)
        assert set(mounted_files) == set(files_under(tree))
        assert dirs_under(mnt) == dirs_under(tree) == set(info["labels"])

        # names: <label>/<source>_<key with / as _>.png; exactly the view's keys
        per_source = collections.Counter()
        flat_keys = collections.Counter()
        for rel in mounted_files:
            label, name = rel.split("/")
            source, flat = name[:-len(".png")].split("_", 1)
            assert name.endswith(".png") and flat.split("_")[0] == label
            per_source[source] += 1
            flat_keys[flat] += 1
        assert per_source == {s["name"]: s["selected"] for s in info["sources"]}
        assert flat_keys == collections.Counter(s["key"].replace("/", "_") for s in listed)

        # sizes (from the index) and bytes: the link copy and the source PNG
        size_of = {s["key"]: s["fields"]["png"] for s in listed}
        for rel, path in mounted_files.items():
            key = rel.split("/")[1][:-len(".png")].split("_", 1)[1].replace("_", "/")
            st = os.stat(path)
            assert stat.S_IMODE(st.st_mode) == 0o444 and stat.S_ISREG(st.st_mode)
            assert st.st_size == size_of[key]
            data = pathlib.Path(path).read_bytes()
            assert data == (tree / rel).read_bytes()
            assert data == (fmnist_tree / "testing" / (key + ".png")).read_bytes()
        diff = run("diff", "-r", tree, mnt, check=False)
        assert diff.returncode == 0 and diff.stdout == b"", diff.stdout[:2000]

        # find lists the root, every class folder and every file
        found = run("find", mnt).stdout.decode().splitlines()
        assert len(found) == len(mounted_files) + len(info["labels"]) + 1

        # the loader decodes images through the mount
        for i in range(0, len(ds), 37):
            img, y = ds[i]
            assert img.size == (28, 28) and y == ds.samples[i][1]


# ------------------------------------- 2: zip, tar.gz, tar and native as files

WORDS = ("shard view sample mount label image tensor batch epoch loss "
         "train test val key field index folder file byte").split()


def make_source_tree(root):
    """About 250 files in nested folders: empty, small, text, random bytes and
    three above 1 MiB; names with several dots, none, spaces, a leading dot,
    non-ASCII; one stem per folder (a stem shared by files of one folder is
    test_same_stem_members_keep_their_names's subject). Every file gets its own
    mtime in whole, even seconds (zip's MS-DOS times have 2 s steps)."""
    rnd = random.Random(11)
    dirs = ["a", "a/b", "a/b/c", "x y", "deep/1/2/3/4", "img", "naïve"]
    exts = ["png", "txt", "json", "bin", "tar.gz", "seg.png", ""]
    sizes = [0, 1, 17, 511, 512, 4096, 65537]
    big = {3: 1_200_000, 77: 2 * 1024 * 1024 + 3, 150: 1024 * 1024 + 1}
    names = [(dirs[i % len(dirs)],
              f"f{i:04d}" + (f".{exts[(i // 7) % 7]}" if exts[(i // 7) % 7] else ""))
             for i in range(245)]
    names += [("", "README"), ("a", ".hidden"), ("a/b", "name with spaces.txt"),
              ("img", "UPPER.PNG"), ("", "Makefile")]
    for i, (d, name) in enumerate(names):
        size = big.get(i, sizes[i % len(sizes)] if i % 5 else rnd.randint(0, 5000))
        if i % 3 == 0 or i in big:
            data = rnd.randbytes(size)
        else:
            text = " ".join(rnd.choice(WORDS) for _ in range(size // 4 + 1)).encode()
            data = text[:size]
        p = root / d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        t = 1_500_000_000 + i * 7_200 + 2 * (i % 13)
        os.utime(p, (t, t))
    return root


UTC = dict(os.environ, TZ="UTC")


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """fmt -> (target, folder the same files extracted by unzip / tar)."""
    base = tmp_path_factory.mktemp("mountarch")
    src = make_source_tree(base / "src")
    files = sorted(files_under(src))
    out = {}

    # zip by Python's zipfile: folder entries for some folders, members
    # alternately stored and deflated (the big ones both ways)
    z = base / "t.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for d in ("a", "a/b", "deep"):
            zf.write(src / d, d)
        for i, rel in enumerate(files):
            zf.write(src / rel, rel,
                     compress_type=zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED)
    with zipfile.ZipFile(z) as zf:
        kinds = {i.compress_type for i in zf.infolist() if i.file_size > 1024 * 1024}
    assert kinds == {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
    run("unzip", "-q", z, "-d", base / "x-zip", env=UTC)
    out["zip"] = (z, base / "x-zip")

    # GNU tar: tar.gz of the folder's contents (./a/...), tar with the folder
    run("tar", "czf", base / "t.tar.gz", "-C", src, ".")
    (base / "x-targz").mkdir()
    run("tar", "xzf", base / "t.tar.gz", "-C", base / "x-targz")
    out["tar.gz"] = (base / "t.tar.gz", base / "x-targz")
    run("tar", "cf", base / "t.tar", "-C", base, "src")
    (base / "x-tar").mkdir()
    run("tar", "xf", base / "t.tar", "-C", base / "x-tar")
    out["tar"] = (base / "t.tar", base / "x-tar")

    # a native dataset packed from the folder
    shardset("pack", src, "-o", base / "native", "--shard-size", "1MiB", "-q")
    out["native"] = (base / "native", src)
    return out


@pytest.mark.parametrize("fmt", ["zip", "tar.gz", "tar", "native"])
def test_mounted_archive_equals_its_extraction(archives, fmt, tmp_path):
    target, extracted = archives[fmt]
    with mounted(target, tmp_path / "mnt", env=UTC) as mnt:
        diff = run("diff", "-r", extracted, mnt, check=False)
        assert diff.returncode == 0 and diff.stdout == b"", diff.stdout[:3000]
        want, got = files_under(extracted), files_under(mnt)
        assert set(got) == set(want) and len(got) >= 250
        assert dirs_under(mnt) == dirs_under(extracted)
        for rel, path in want.items():
            st = os.stat(got[rel])
            assert st.st_size == os.stat(path).st_size, rel
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444

        # byte ranges of the big files, at random offsets and past the end
        rnd = random.Random(3)
        for rel in (r for r, p in want.items() if os.path.getsize(p) > 1024 * 1024):
            data = pathlib.Path(want[rel]).read_bytes()
            fd = os.open(got[rel], os.O_RDONLY)
            try:
                for _ in range(50):
                    off, n = rnd.randrange(len(data) + 100), rnd.randrange(1, 300_000)
                    assert os.pread(fd, n, off) == data[off:off + n], (rel, off, n)
            finally:
                os.close(fd)

        # many readers at once
        from concurrent.futures import ThreadPoolExecutor
        def same(rel):
            return pathlib.Path(got[rel]).read_bytes() == pathlib.Path(want[rel]).read_bytes()
        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(same, sorted(want)))

        vfs = os.statvfs(mnt)
        assert vfs.f_flag & os.ST_RDONLY
        total = sum(os.path.getsize(p) for p in want.values())
        assert total <= vfs.f_blocks * vfs.f_frsize < total + vfs.f_frsize
        assert {os.stat(p).st_uid for p in got.values()} == {os.getuid()}


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_member_times_are_the_archives(archives, fmt, tmp_path):
    """Each file's mtime is its member's, as unzip and tar set them (TZ=UTC
    for both: zip times are MS-DOS wall-clock times), except in a tar.gz,
    whose files get the tar.gz file's time (docs/mount.md: the headers are
    inside the compressed stream). Folders get the TARGET's time."""
    target, extracted = archives[fmt]
    target_time = int(os.stat(target).st_mtime)
    with mounted(target, tmp_path / "mnt", env=UTC) as mnt:
        wrong = []
        for rel, path in sorted(files_under(extracted).items()):
            want = target_time if fmt == "tar.gz" else int(os.stat(path).st_mtime)
            got = int(os.stat(mnt / rel).st_mtime)
            if got != want:
                wrong.append((rel, want, got))
        assert not wrong, f"{len(wrong)} files with other times, e.g. {wrong[:3]}"
        if fmt != "tar.gz":  # the members' own times, not one time for all
            assert len({int(os.stat(mnt / r).st_mtime) for r in files_under(mnt)}) > 200
        for rel in [""] + sorted(dirs_under(mnt)):
            assert int(os.stat(mnt / rel).st_mtime) == target_time, rel


@pytest.mark.parametrize("fmt", ["zip", "tar", "gnutar"])
def test_same_stem_members_keep_their_names(fmt, tmp_path):
    """Files of one folder that share a stem (x.jpg beside x.txt) but are not
    next to each other in the archive are two samples with one key: a script
    may write all images, then all labels, and GNU tar stores a folder in
    readdir order (hash order on ext4), which almost never keeps x.jpg next
    to x.txt. Their file names do not collide, so the original layout must
    show them as unzip / tar x (and `shardset extract`) write them: no `~2`."""
    members = [("p/x.png", b"x image"), ("p/y.png", b"y image"), ("p/x.txt", b"x label"),
               ("p/y.txt", b"y label"), ("q/z.json", b"{}"), ("q/z.png", b"z")]
    if fmt == "gnutar":
        members = [(f"imgs/{i}.{ext}", f"{i} {ext}".encode())
                   for i in range(20) for ext in ("jpg", "txt")]
    target = tmp_path / f"pairs.{fmt}"
    if fmt == "zip":
        with zipfile.ZipFile(target, "w") as zf:
            for name, data in members:
                zf.writestr(name, data)
    elif fmt == "tar":
        make_tar(target, members)
    else:
        for name, data in members:
            (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "src" / name).write_bytes(data)
        run("tar", "cf", target, "-C", tmp_path / "src", ".")
    with mounted(target, tmp_path / "mnt") as mnt:
        got = {rel: pathlib.Path(p).read_bytes() for rel, p in files_under(mnt).items()}
    assert got == dict(members)


# ------------------------------------------------------ 3: read-only, hostile


def make_tar(path, members, fmt=tarfile.GNU_FORMAT):
    """members: (name, bytes) files, or (name, "sym"|"hard", target) links."""
    with tarfile.open(path, "w", format=fmt) as tf:
        for m in members:
            info = tarfile.TarInfo(m[0])
            info.mtime = 1_600_000_000
            if len(m) == 3:
                info.type = tarfile.SYMTYPE if m[1] == "sym" else tarfile.LNKTYPE
                info.linkname = m[2]
                tf.addfile(info)
            else:
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


LINKS_TAR = [("good/ok.txt", b"fine\n"), ("link", "sym", "/etc"), ("good/up", "sym", "../../.."),
             ("link/passwd", b"not the password file"), ("hard", "hard", "/etc/passwd"),
             ("hard2.txt", "hard", "good/ok.txt"), ("noext", b"n")]


@pytest.fixture
def links_tar(tmp_path):
    return make_tar(tmp_path / "links.tar", LINKS_TAR)


def test_every_change_is_refused_with_erofs(links_tar, tmp_path):
    with mounted(links_tar, tmp_path / "mnt") as mnt:
        f, d = str(mnt / "good/ok.txt"), str(mnt / "good")
        before = sorted(files_under(mnt)), sorted(dirs_under(mnt))
        changes = {
            "open w": lambda: open(f, "w"),
            "open a": lambda: open(f, "a"),
            "open r+": lambda: open(f, "r+"),
            "O_WRONLY": lambda: os.open(f, os.O_WRONLY),
            "O_RDWR": lambda: os.open(f, os.O_RDWR),
            "O_RDONLY|O_TRUNC": lambda: os.open(f, os.O_RDONLY | os.O_TRUNC),
            "create": lambda: open(mnt / "new.txt", "w"),
            "create x": lambda: open(mnt / "good/new.txt", "x"),
            "O_CREAT": lambda: os.open(mnt / "new2", os.O_CREAT | os.O_RDONLY, 0o644),
            "mkdir": lambda: os.mkdir(mnt / "newdir"),
            "mkdir in": lambda: os.mkdir(mnt / "good/newdir"),
            "unlink": lambda: os.unlink(f),
            "rmdir": lambda: os.rmdir(mnt / "link"),
            "rename": lambda: os.rename(f, mnt / "good/moved.txt"),
            "rename over": lambda: os.rename(f, mnt / "noext"),
            "rename dir": lambda: os.rename(d, mnt / "moved"),
            "chmod": lambda: os.chmod(f, 0o666),
            "chmod dir": lambda: os.chmod(mnt, 0o777),
            "chown": lambda: os.chown(f, 1, 1),
            "utime": lambda: os.utime(f, (1, 1)),
            "utime now": lambda: os.utime(f),
            "truncate": lambda: os.truncate(f, 0),
            "symlink": lambda: os.symlink("/etc", mnt / "s"),
            "link": lambda: os.link(f, mnt / "h"),
            "mkfifo": lambda: os.mkfifo(mnt / "fifo"),
            "setxattr": lambda: os.setxattr(f, "user.x", b"1"),
        }
        allowed = {}
        for what, change in changes.items():
            try:
                res = change()
                if hasattr(res, "close"):
                    res.close()
                elif isinstance(res, int):
                    os.close(res)
                allowed[what] = "no error"
            except OSError as e:
                if e.errno != errno.EROFS:
                    allowed[what] = errno.errorcode.get(e.errno, e.errno)
        assert not allowed, f"not refused with EROFS: {allowed}"
        # through the shell, as people do it
        for cmd in (f"echo x > '{f}'", f"echo x >> '{f}'", f"touch '{mnt}/new3'",
                    f"touch '{f}'", f"mkdir '{mnt}/d2'", f"rm -f '{f}'",
                    f"mv '{f}' '{mnt}/m.txt'", f"chmod 600 '{f}'"):
            proc = run("sh", "-c", cmd, check=False, env=dict(os.environ, LC_ALL="C"))
            assert proc.returncode != 0 and b"Read-only file system" in proc.stderr, (cmd, proc)
        assert (sorted(files_under(mnt)), sorted(dirs_under(mnt))) == before
        assert pathlib.Path(f).read_bytes() == b"fine\n"


def test_links_in_an_archive_never_lead_outside(links_tar, tmp_path):
    """Symlinks and hard links are not samples: nothing is a link in the
    mount, a member "through" a link is in a real folder, and every path a
    walk finds is inside the mountpoint."""
    with mounted(links_tar, tmp_path / "mnt") as mnt:
        real = os.path.realpath(mnt)
        seen = []
        for d, subs, fs in os.walk(mnt):
            for name in subs + fs:
                p = os.path.join(d, name)
                seen.append(os.path.relpath(p, mnt))
                assert not os.path.islink(p), p
                assert os.path.realpath(p).startswith(real + "/"), p
        assert sorted(seen) == ["good", "good/ok.txt", "link", "link/passwd", "noext"]
        assert (mnt / "link/passwd").read_bytes() == b"not the password file"
        assert not (mnt / "good/up").exists() and not (mnt / "hard").exists()


EVIL_NAMES = ["../evil.txt", "/abs.txt", "a/../../b.txt", "./x/../../y.txt", "a/./../../c.txt"]


@pytest.mark.parametrize("fmt", ["tar", "zip"])
@pytest.mark.parametrize("evil", EVIL_NAMES)
def test_traversal_names_are_refused_or_kept_inside(fmt, evil, tmp_path):
    """A member whose name leaves the folder: the mount refuses the archive
    (one line, non-zero exit, nothing mounted) or serves only paths inside."""
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    target = work / f"evil.{fmt}"
    members = [("good/ok.txt", b"fine\n"), (evil, b"evil")]
    if fmt == "tar":
        make_tar(target, members)
    else:
        with zipfile.ZipFile(target, "w") as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name), data)  # as given: zipfile keeps ../
    mnt = work / "mnt"
    mnt.mkdir()
    _MOUNTPOINTS.append(mnt)
    outside_before = sorted(str(p) for p in tmp_path.rglob("*") if not str(p).startswith(str(mnt)))
    try:
        proc = mount_cmd(target, mnt)
        if proc.returncode != 0:
            line = one_line(proc.stderr)
            stem = evil.rsplit("/", 1)[-1].split(".")[0]
            assert "outside" in line and stem in line and target.name in line, line
            assert mount_type(mnt) is None and os.listdir(mnt) == []
        else:
            assert mount_type(mnt) == FS_TYPE
            real = os.path.realpath(mnt)
            for d, subs, fs in os.walk(mnt):
                for name in subs + fs:
                    assert ".." != name and "/" not in name
                    assert os.path.realpath(os.path.join(d, name)).startswith(real + "/")
            assert not (mnt / ".." / "evil.txt").exists()
        assert not pathlib.Path("/abs.txt").exists()
    finally:
        force_unmount(mnt)
    outside_after = sorted(str(p) for p in tmp_path.rglob("*") if not str(p).startswith(str(mnt)))
    assert outside_after == outside_before


def test_traversal_names_become_flat_names_in_yolo(tmp_path):
    """In the yolo (and imagefolder) layout a key is one flat component, so
    hostile keys are served as harmless names inside the mount."""
    target = make_tar(tmp_path / "evil.tar", [
        (n + ext, data) for n in ("../evil", "/abs", "a/../../b", "ok/fine")
        for ext, data in ((".jpg", n.encode()), (".txt", b"0 0.5 0.5 0.1 0.1\n"))])
    with mounted(target, tmp_path / "mnt", "--layout", "yolo") as mnt:
        got = {rel: pathlib.Path(p).read_bytes() for rel, p in files_under(mnt).items()}
        real = os.path.realpath(mnt)
        for rel in got:
            assert os.path.realpath(mnt / rel).startswith(real + "/")
    assert got == {
        "images/.._evil.jpg": b"../evil", "labels/.._evil.txt": b"0 0.5 0.5 0.1 0.1\n",
        "images/_abs.jpg": b"/abs", "labels/_abs.txt": b"0 0.5 0.5 0.1 0.1\n",
        "images/a_.._.._b.jpg": b"a/../../b", "labels/a_.._.._b.txt": b"0 0.5 0.5 0.1 0.1\n",
        "images/ok_fine.jpg": b"ok/fine", "labels/ok_fine.txt": b"0 0.5 0.5 0.1 0.1\n"}
    assert not (tmp_path / "evil.jpg").exists() and not pathlib.Path("/abs.jpg").exists()


# ------------------------------------------------------------ 4: busy unmount


def test_busy_umount_then_umount_and_the_server_exits(links_tar, tmp_path):
    mnt = tmp_path / "mnt"
    with mounted(links_tar, mnt) as mnt:
        pids = server_pids(mnt)
        assert len(pids) == 1, pids
        f = open(mnt / "good/ok.txt", "rb")
        try:
            proc = shardset("umount", mnt, check=False)
            assert proc.returncode == 1
            assert "busy" in one_line(proc.stderr)
            assert in_proc_mounts(mnt)
            assert f.read() == b"fine\n"  # still served
        finally:
            f.close()
        # a folder open in it is as busy as a file
        fd = os.open(mnt / "good", os.O_RDONLY | os.O_DIRECTORY)
        try:
            proc = shardset("umount", mnt, check=False)
            assert proc.returncode != 0 and "busy" in one_line(proc.stderr)
        finally:
            os.close(fd)
        proc = shardset("umount", mnt, check=False)
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
        assert not in_proc_mounts(mnt)
        assert wait_until(lambda: not server_pids(mnt)), f"server still running: {pids}"
        assert os.listdir(mnt) == []


def test_lazy_umount_detaches_now_and_the_server_exits_after_the_last_close(links_tar,
                                                                           tmp_path):
    with mounted(links_tar, tmp_path / "mnt") as mnt:
        pids = server_pids(mnt)
        assert len(pids) == 1
        with open(mnt / "good/ok.txt", "rb") as f:
            proc = shardset("umount", mnt, "--lazy", check=False)
            assert proc.returncode == 0, proc.stderr
            assert not in_proc_mounts(mnt)
            assert f.read() == b"fine\n"
            assert server_pids(mnt) == pids
        assert wait_until(lambda: not server_pids(mnt)), "server still running"


# ---------------------------------------------------- 5: the source vanishes


def pack_in_shards(src, out, fmt="native"):
    """1,000 PNGs in 4 shards of 250 samples: ordinals 250*k.. are shard k."""
    shardset("pack", src, "-o", out, "--format", fmt, "--shard-samples", "250", "-q")
    keys = [json.loads(l)["key"] for l in shardset("ls", "--json", out).stdout.splitlines()]
    assert len(keys) == 1000
    shard = [p for p in out.iterdir() if p.name.startswith("shard-000002.")
             and not p.name.endswith((".idx", ".lineidx", ".8b"))]
    assert len(shard) == 1, sorted(os.listdir(out))
    return keys, shard[0]


@pytest.fixture(scope="module")
def fm_nines(fmnist_tree):
    return fmnist_tree / "testing" / "9"


def test_deleted_shard_gives_eio_and_the_rest_still_reads(fm_nines, tmp_path):
    """A shard deleted under the mount, not read before: its files fail with
    EIO promptly (docs/mount.md: checked at every open, though the shard is
    still mapped); the other shards and the mount keep working."""
    keys, shard = pack_in_shards(fm_nines, tmp_path / "ds")
    with mounted(tmp_path / "ds", tmp_path / "mnt") as mnt:
        shard.unlink()
        for k in keys[500:750:49]:
            assert read_isolated(mnt / (k + ".png")) == ("errno", errno.EIO), k
        assert in_proc_mounts(mnt) and server_pids(mnt), "the server is gone"
        for k in keys[:500:53] + keys[750::53]:
            assert read_isolated(mnt / (k + ".png")) == \
                ("ok", (fm_nines / (k + ".png")).read_bytes())
        assert len(os.listdir(mnt)) == 1000


@pytest.mark.parametrize("fmt", ["native", "tar", "zip", "tsv", "tar.gz"])
def test_truncated_shard_gives_eio_and_the_rest_still_reads(fm_nines, fmt, tmp_path):
    """A shard cut short under the mount (a copy or re-pack in place, a full
    disk): its files beyond the cut fail with EIO promptly; the server lives
    on and every other shard still reads."""
    keys, shard = pack_in_shards(fm_nines, tmp_path / "ds", fmt)
    with mounted(tmp_path / "ds", tmp_path / "mnt") as mnt:
        os.truncate(shard, 4096)
        for k in keys[700:750:7]:
            assert read_isolated(mnt / (k + ".png")) == ("errno", errno.EIO), k
        assert in_proc_mounts(mnt) and server_pids(mnt), "the server is gone"
        assert len(os.listdir(mnt)) == 1000
        for k in keys[:500:53] + keys[750::53]:
            assert read_isolated(mnt / (k + ".png")) == \
                ("ok", (fm_nines / (k + ".png")).read_bytes()), k


OPEN_THEN_READ = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.truncate(sys.argv[2], 4096)
try:
    data = os.read(fd, 1 << 20)
except OSError as e:
    print(e.errno)
    sys.exit(0)
sys.stdout.buffer.write(b"OK" + data)
"""


@pytest.mark.parametrize("fmt", ["native", "tar", "zip", "tsv", "tar.gz"])
def test_shard_truncated_while_a_file_is_open(fm_nines, fmt, tmp_path):
    """A file opened (its shard whole at that moment), then the shard cut
    short, then the file read: EIO or the file's bytes, never another byte;
    the server must not fault (a mapped shard's pages past the new end raise
    SIGBUS) and the other files still read."""
    keys, shard = pack_in_shards(fm_nines, tmp_path / "ds", fmt)
    k = keys[720]
    with mounted(tmp_path / "ds", tmp_path / "mnt") as mnt:
        try:
            proc = subprocess.run([sys.executable, "-c", OPEN_THEN_READ, str(mnt / (k + ".png")),
                                   str(shard)], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the read did not finish in 10 s (hung)")
        assert proc.returncode == 0, proc.stderr
        got = ("ok", proc.stdout[2:]) if proc.stdout.startswith(b"OK") else \
            ("errno", errno.errorcode.get(int(proc.stdout), int(proc.stdout)))
        assert got in (("errno", "EIO"), ("ok", (fm_nines / (k + ".png")).read_bytes())), got
        assert in_proc_mounts(mnt) and server_pids(mnt), "the server is gone"
        for k in keys[:500:97] + keys[750::97]:
            assert read_isolated(mnt / (k + ".png")) == \
                ("ok", (fm_nines / (k + ".png")).read_bytes()), k


def test_damaged_sample_gives_eio_never_wrong_bytes(fm_nines, tmp_path):
    """A byte of one sample flipped in the shard (its size unchanged) after
    the mount: that file is EIO (checksums are checked), the others read."""
    keys, shard = pack_in_shards(fm_nines, tmp_path / "ds")
    victim, other = keys[600], keys[601]
    png = (fm_nines / (victim + ".png")).read_bytes()
    with mounted(tmp_path / "ds", tmp_path / "mnt") as mnt:
        raw = shard.read_bytes()
        at = raw.find(png)
        assert at >= 0 and raw.find(png, at + 1) < 0
        with open(shard, "r+b") as f:
            f.seek(at + len(png) // 2)
            f.write(bytes([raw[at + len(png) // 2] ^ 0x40]))
        assert read_isolated(mnt / (victim + ".png")) == ("errno", errno.EIO)
        assert read_isolated(mnt / (other + ".png")) == \
            ("ok", (fm_nines / (other + ".png")).read_bytes())


def test_vanished_loose_files_give_eio(tmp_path):
    """A dataset of loose files indexed in place: a file deleted, cut or
    grown after the mount reads as EIO; the others read."""
    rnd = random.Random(5)
    src = tmp_path / "src"
    data = {}
    for d in ("a", "b"):
        (src / d).mkdir(parents=True)
        for i in range(5):
            data[f"{d}/{i}.bin"] = rnd.randbytes(1000 + i)
            (src / d / f"{i}.bin").write_bytes(data[f"{d}/{i}.bin"])
    shardset("dataset", "create", tmp_path / "ds", "--shards", src, "-q")
    for i, p in enumerate(sorted(files_under(src).values())):
        os.utime(p, (1_400_000_000 + i * 3600, 1_400_000_000 + i * 3600))
    with mounted(tmp_path / "ds", tmp_path / "mnt") as mnt:
        for rel, p in files_under(src).items():  # a loose file's own time
            assert int(os.stat(mnt / rel).st_mtime) == int(os.stat(p).st_mtime), rel
        (src / "a/1.bin").unlink()
        os.truncate(src / "a/2.bin", 10)
        with open(src / "b/3.bin", "ab") as f:
            f.write(b"more")
        for rel in ("a/1.bin", "a/2.bin", "b/3.bin"):
            assert read_isolated(mnt / rel) == ("errno", errno.EIO), rel
        for rel in ("a/0.bin", "a/4.bin", "b/0.bin", "b/4.bin"):
            assert read_isolated(mnt / rel) == ("ok", data[rel]), rel


@pytest.mark.parametrize("stop", ["umount", "SIGINT"])
def test_foreground_serves_prints_read_errors_and_stops(fm_nines, stop, tmp_path):
    """--foreground: the one line once mounted, then serving from the same
    process; a read error is printed on stderr (and is EIO for the reader);
    `shardset umount` or Ctrl-C unmounts and the process exits 0."""
    keys, shard = pack_in_shards(fm_nines, tmp_path / "ds")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    _MOUNTPOINTS.append(mnt)
    err = open(tmp_path / "stderr", "w+b")
    proc = subprocess.Popen([str(BIN), "mount", str(tmp_path / "ds"), str(mnt), "-f", "-q"],
                            stdout=subprocess.PIPE, stderr=err)
    try:
        line = proc.stdout.readline().decode()
        assert "read-only" in line and mount_type(mnt) == FS_TYPE, line
        assert proc.poll() is None and server_pids(mnt) == [proc.pid]
        k = keys[100]
        assert read_isolated(mnt / (k + ".png")) == ("ok", (fm_nines / (k + ".png")).read_bytes())
        shard.unlink()
        assert read_isolated(mnt / (keys[600] + ".png")) == ("errno", errno.EIO)
        if stop == "umount":
            shardset("umount", mnt)
        else:
            proc.send_signal(2)
        assert proc.wait(timeout=10) == 0
        assert mount_type(mnt) is None
        err.seek(0)
        messages = err.read().decode(errors="replace")
        assert "shard-000002" in messages and "gone" in messages, messages
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        force_unmount(mnt)
        err.close()


# ---------------------------------------------------------------- 6: no FUSE


def test_without_dev_fuse_one_line_and_failure(links_tar, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = run("unshare", "-m", "--propagation", "private", "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    _MOUNTPOINTS.append(mnt)
    try:
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs none /dev && exec "$0" mount "$1" "$2"',
             str(BIN), str(links_tar), str(mnt)], capture_output=True, timeout=60)
    finally:
        force_unmount(mnt)
    assert proc.returncode == 1, proc
    assert "/dev/fuse" in one_line(proc.stderr)
    assert proc.stdout == b""
    assert mount_type(mnt) is None and os.path.exists("/dev/fuse")


# ----------------------------------------------------------- 7: mount errors


def test_mount_errors(links_tar, tmp_path):
    missing = mount_cmd(links_tar, tmp_path / "nope")
    assert missing.returncode == 3 and "nope" in one_line(missing.stderr)
    assert not (tmp_path / "nope").exists()

    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    proc = mount_cmd(links_tar, full)
    assert proc.returncode == 2 and "not empty" in one_line(proc.stderr)
    assert mount_type(full) is None and os.listdir(full) == ["x"]

    a_file = tmp_path / "file"
    a_file.write_text("x")
    proc = mount_cmd(links_tar, a_file)
    assert proc.returncode == 2 and "not a folder" in one_line(proc.stderr)

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = mount_cmd(tmp_path / "no-such.tar", empty)
    assert proc.returncode == 3 and "no-such.tar" in one_line(proc.stderr)
    assert mount_type(empty) is None

    # a sample the layout cannot place stops the mount whole
    proc = mount_cmd(links_tar, empty, "--layout", "imagefolder")
    assert proc.returncode != 0 and "--label-field" in one_line(proc.stderr)
    assert mount_type(empty) is None

    with mounted(links_tar, tmp_path / "mnt") as mnt:
        again = mount_cmd(links_tar, mnt)
        assert again.returncode == 2 and "already mounted" in one_line(again.stderr)
        assert len(server_pids(mnt)) == 1
        assert (mnt / "good/ok.txt").read_bytes() == b"fine\n"


def test_umount_errors(links_tar, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = shardset("umount", plain, check=False)
    assert proc.returncode == 2 and "not a shardset mount" in one_line(proc.stderr)
    proc = shardset("umount", tmp_path / "nope", check=False)
    assert proc.returncode != 0 and one_line(proc.stderr)

    # another file system is not shardset's to unmount
    other = tmp_path / "tmpfs"
    other.mkdir()
    if run("mount", "-t", "tmpfs", "none", other, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = shardset("umount", other, check=False)
        assert proc.returncode != 0 and "not a shardset mount" in one_line(proc.stderr)
        assert mount_type(other) == "tmpfs"
    finally:
        run("umount", "-l", other, check=False)

    # mountpoints with awkward names are found in the mount table
    for name in ("sp ace", "back\\slash", "tab\there", "ünï"):
        with mounted(links_tar, tmp_path / name) as mnt:
            assert mount_type(mnt) == FS_TYPE
        assert mount_type(tmp_path / name) is None


# -------------------------------------------------------------- 8: yolo layout


@pytest.fixture
def det(tmp_path):
    """Samples of an image (x.jpg, any bytes) and its boxes (x.txt) in one
    folder; one without boxes, one .png in a subfolder, a field yolo drops."""
    rnd = random.Random(8)
    src = tmp_path / "det"
    (src / "sub").mkdir(parents=True)
    for i in range(1, 4):
        (src / f"000{i}.jpg").write_bytes(rnd.randbytes(100 * i))
        (src / f"000{i}.txt").write_text(f"0 0.5 0.5 0.1 0.{i}\n")
    (src / "0001.json").write_text("{}")
    (src / "0004.JPG").write_bytes(rnd.randbytes(50))
    (src / "sub/0005.png").write_bytes(rnd.randbytes(70))
    (src / "sub/0005.txt").write_text("1 0.1 0.1 0.1 0.1\n")
    shardset("pack", src, "-o", tmp_path / "dd", "-q")
    return src, tmp_path / "dd"


def test_yolo_layout_pairs_images_and_labels(det, tmp_path):
    src, dd = det
    shardset("link", dd, "-o", tmp_path / "tree", "--layout", "yolo", "--mode", "copy", "-q")
    with mounted(dd, tmp_path / "mnt", "--layout", "yolo") as mnt:
        got = {rel: pathlib.Path(p).read_bytes() for rel, p in files_under(mnt).items()}
        diff = run("diff", "-r", tmp_path / "tree", mnt, check=False)
        assert diff.returncode == 0, diff.stdout
        assert sorted(os.listdir(mnt)) == ["images", "labels"]
    assert got == {
        "images/0001.jpg": (src / "0001.jpg").read_bytes(),
        "images/0002.jpg": (src / "0002.jpg").read_bytes(),
        "images/0003.jpg": (src / "0003.jpg").read_bytes(),
        "images/0004.JPG": (src / "0004.JPG").read_bytes(),
        "images/sub_0005.png": (src / "sub/0005.png").read_bytes(),
        "labels/0001.txt": (src / "0001.txt").read_bytes(),
        "labels/0002.txt": (src / "0002.txt").read_bytes(),
        "labels/0003.txt": (src / "0003.txt").read_bytes(),
        "labels/sub_0005.txt": (src / "sub/0005.txt").read_bytes(),
    }
    # every label file pairs with an image of the same stem
    stems = lambda prefix: {pathlib.Path(r).stem for r in got if r.startswith(prefix)}
    assert stems("labels/") <= stems("images/")


def test_yolo_oversampled_mix_numbers_pairs_like_link(det, tmp_path):
    _, dd = det
    shardset("mix", f"d={dd}:12", "--replace", "--seed", "1", "-o", tmp_path / "rep.view", "-q")
    shardset("link", tmp_path / "rep.view", "-o", tmp_path / "tree", "--layout", "yolo",
             "--mode", "copy", "-q")
    with mounted(tmp_path / "rep.view", tmp_path / "mnt", "--layout", "yolo") as mnt:
        diff = run("diff", "-r", tmp_path / "tree", mnt, check=False)
        assert diff.returncode == 0, diff.stdout
        got = set(files_under(mnt))
    images = {pathlib.Path(r).stem for r in got if r.startswith("images/")}
    labels = {pathlib.Path(r).stem for r in got if r.startswith("labels/")}
    assert len(images) == 12 and labels <= images and "0001~3" in labels
