"""Hostile archives (issue 3 "Safety"): entries that point outside the target
folder, and archives that claim absurd sizes or counts. Every archive is made
here by the tools an attacker would use (Python tarfile/zipfile, gzip, raw
bytes); each must be refused with one clear line, a non-zero exit, bounded
memory, and nothing written outside the target (docs/input-handling.md)."""
import gzip
import io
import os
import pathlib
import struct
import subprocess
import tarfile
import zipfile

import pytest

from conftest import BIN, run

# Peak resident memory a refused bomb may use; the limits, not the claims,
# bound it (the binary alone is ~10 MiB).
MAX_RSS_KIB = 200 * 1024


def shardset_rss(*args):
    """Runs the CLI under GNU time: (exit code, stderr text, peak RSS KiB)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "RSS %M", str(BIN), *map(str, args)],
                          capture_output=True)
    err = proc.stderr.decode(errors="replace")
    rss_line = [l for l in err.splitlines() if l.startswith("RSS ")][-1]
    message = "\n".join(l for l in err.splitlines()
                        if not l.startswith("RSS ") and not l.startswith("Command exited"))
    return proc.returncode, message, int(rss_line.split()[1])


def tree_snapshot(root):
    return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*"))


@pytest.fixture
def jail(tmp_path):
    """(work dir, target folder, outside dir that must stay empty)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return work, work / "out", outside


def add_tar_member(tf, name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_tar(path, members, gz=False):
    with tarfile.open(path, "w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            add_tar_member(tf, *m)


def make_zip(path, names, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in names:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, data)


TRAVERSAL = ["../evil.txt", "ok/../../evil.txt", "/tmp/evil-abs.txt", "a//../evil.txt"]


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip"])
@pytest.mark.parametrize("name", TRAVERSAL)
def test_traversal_names_are_refused_and_nothing_is_written(jail, kind, name):
    work, out, outside = jail
    archive = work / f"evil.{kind}"
    members = [("good/1.txt", b"fine"), (name.replace("/tmp/", str(outside) + "/"), b"pwned")]
    if kind == "zip":
        make_zip(archive, members)
    else:
        make_tar(archive, [(n, d) for n, d in members], gz=(kind == "tar.gz"))
    before = tree_snapshot(work.parent)
    proc = run(BIN, "extract", archive, "-o", out, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "outside" in err and "nothing was written" in err, err
    assert not out.exists()  # refused before the folder was even made
    assert tree_snapshot(work.parent) == before
    assert list(outside.iterdir()) == []
    # The archive still reads: every sample can be listed and cat'ed.
    assert run(BIN, "ls", archive).stdout.count(b"\n") == 2


def test_links_in_archives_are_not_followed(jail):
    """A symlink or hard link member pointing outside, then a file 'through'
    it: links are not samples, so the file lands in a real folder inside."""
    work, out, outside = jail
    archive = work / "links.tar"
    make_tar(archive, [
        ("link", b"", tarfile.SYMTYPE, str(outside)),
        ("hard", b"", tarfile.LNKTYPE, "/etc/passwd"),
        ("up", b"", tarfile.SYMTYPE, "../.."),
        ("link/pwn.txt", b"pwned"),
        ("up/pwn2.txt", b"pwned"),
    ])
    listing = run(BIN, "ls", "--entries", archive).stdout.decode()
    assert "symlink" in listing and "hardlink" in listing
    run(BIN, "extract", archive, "-o", out)
    assert (out / "link").is_dir() and not (out / "link").is_symlink()
    assert (out / "link" / "pwn.txt").read_bytes() == b"pwned"
    assert (out / "up" / "pwn2.txt").read_bytes() == b"pwned"
    assert not (out / "hard").exists()
    assert list(outside.iterdir()) == []


def test_symlink_already_in_target_is_not_followed(jail):
    work, out, outside = jail
    archive = work / "a.zip"
    make_zip(archive, [("link/pwn.txt", b"pwned")])
    out.mkdir()
    (out / "link").symlink_to(outside)
    proc = run(BIN, "extract", archive, "-o", out, check=False)
    assert proc.returncode != 0
    assert b"symlink" in proc.stderr and b"refusing" in proc.stderr
    assert list(outside.iterdir()) == []


def test_tar_claiming_16_eib_member(tmp_path):
    """A header whose base-256 size field claims 2^64 - 1 bytes, and one
    claiming 8 EiB: refused at once, without allocating or reading on."""
    for size_field in (b"\xff" * 12, b"\x80" + b"\x00" * 3 + b"\x7f" + b"\xff" * 7):
        block = bytearray(tarfile.TarInfo("big.bin").tobuf(format=tarfile.USTAR_FORMAT))
        block[124:136] = size_field
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
        path = tmp_path / "big.tar"
        path.write_bytes(bytes(block) + b"\0" * 1024)
        rc, err, rss = shardset_rss("ls", path)
        assert rc == 4, err
        assert "big.bin" in err or "size" in err, err
        assert rss < MAX_RSS_KIB


def test_zip_claiming_billions_of_entries(tmp_path):
    """An end record (zip64) claiming 2^40 entries in a tiny file."""
    path = tmp_path / "many.zip"
    make_zip(path, [("a.txt", b"a")])
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    # Classic end record: the 16-bit counts say "see zip64"; a zip64 end
    # record and locator placed before it claim 2^40 entries.
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    zip64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0,
                        1 << 40, 1 << 40, cd_size, cd_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, eocd, 1)
    end = bytearray(data[eocd:])
    struct.pack_into("<HH", end, 8, 0xFFFF, 0xFFFF)
    path.write_bytes(bytes(data[:eocd]) + zip64 + locator + bytes(end))
    rc, err, rss = shardset_rss("ls", path)
    assert rc != 0 and err.count("\n") == 0 and "many.zip" in err, err
    assert rss < MAX_RSS_KIB


def test_zip_bomb_1000_to_1(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("bomb/0.bin", b"\0" * (100 << 20))
    assert path.stat().st_size * 900 < (100 << 20)  # over 900:1
    for verb in (["cat", path, "bomb/0"], ["extract", path, "-o", tmp_path / "x"],
                 ["verify", path]):
        rc, err, rss = shardset_rss(*verb)
        assert rc != 0, (verb, err)
        assert "--max-ratio" in err and "bomb/0" in err, err
        assert rss < MAX_RSS_KIB, verb
    assert not (tmp_path / "x").exists() or list((tmp_path / "x").rglob("*.bin")) == []
    # The limit is a flag: raised, the same archive reads.
    proc = run(BIN, "cat", "--max-ratio", "5000", path, "bomb/0")
    assert proc.stdout == b"\0" * (100 << 20)


def test_gzip_bomb(tmp_path):
    """A tar.gz whose one member is 512 MiB of zeros (about 1000:1)."""
    path = tmp_path / "bomb.tar.gz"
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz:
            info = tarfile.TarInfo("zeros.bin")
            info.size = 512 << 20
            gz.write(info.tobuf(format=tarfile.USTAR_FORMAT))
            chunk = b"\0" * (1 << 20)
            for _ in range(512):
                gz.write(chunk)
            gz.write(b"\0" * 1024)
    for verb in (["index", path], ["ls", path]):
        rc, err, rss = shardset_rss(*verb)
        assert rc != 0, (verb, err)
        assert "--max-ratio" in err, err
        assert rss < MAX_RSS_KIB, verb
    rc, err, rss = shardset_rss("ls", "--max-ratio", "5000", path)
    assert rc == 0, err


def test_entry_count_limit(tmp_path):
    path = tmp_path / "count.tar"
    make_tar(path, [(f"{i}.txt", b"x") for i in range(300)])
    proc = run(BIN, "ls", "--max-entries", "100", path, check=False)
    assert proc.returncode != 0 and b"--max-entries" in proc.stderr, proc.stderr
    assert run(BIN, "ls", "--max-entries", "300", path).stdout.count(b"\n") == 300


def test_field_size_limit(tmp_path):
    path = tmp_path / "big.zip"
    make_zip(path, [("big.bin", os.urandom(3 << 20))], zipfile.ZIP_DEFLATED)
    proc = run(BIN, "cat", "--max-field-bytes", "1MiB", path, "big", check=False)
    assert proc.returncode != 0 and b"--max-field-bytes" in proc.stderr, proc.stderr
    assert len(run(BIN, "cat", path, "big").stdout) == 3 << 20
