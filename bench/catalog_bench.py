#!/usr/bin/env python3
"""Catalog benchmark (issue 10, acceptance 4): a catalog of N samples and
K instances each, then `dir ls`, a mirror of 100,000 samples, a COCO export
and opening a directory as a TARGET, timed with hyperfine; peak RSS with GNU
time. Writes the "Catalog" section of bench/RESULTS.md (replacing it).

    .venv/bin/python bench/catalog_bench.py [--samples 1000000] [--per 5]
        [--runs 3] [--workdir DIR] [--keep] [--out bench/RESULTS.md]

The samples are one 32x32 PNG each (the same bytes: COCO export reads every
image's header for its size) in a native dataset written with shardset.Writer;
the instances are inserted straight into the catalog's instance table with
Python's sqlite3 (setup, not measured). Keys are NNNN/NNNNNNN (1,000 per
folder), so --glob '00[0-9][0-9]/*' selects the first 100,000.
"""
import argparse
import io
import json
import os
import pathlib
import platform
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent


def run(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def peak_rss_mib(cmd):
    out = subprocess.run(f"/usr/bin/time -f '%M' sh -c {json.dumps(cmd)} > /dev/null",
                         shell=True, check=True, capture_output=True, text=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def hyperfine(cmd, runs, prepare=None):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        args = ["hyperfine", "--style", "none", "--runs", str(runs), "--export-json", f.name]
        if prepare:
            args += ["--prepare", prepare]
        subprocess.run(args + [cmd], check=True, stdout=subprocess.DEVNULL)
        r = json.load(open(f.name))["results"][0]
    return r["median"], r["min"], r["max"]


def replace_section(path, heading, section):
    """Puts `section` in place of the "## heading" section of the results
    file `path` (up to the next "## "), or at its end."""
    out = pathlib.Path(path)
    text = out.read_text() if out.exists() else ""
    m = re.search(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    text = text[:m.start()] + section + "\n" + text[m.end():] if m else text.rstrip("\n") + "\n\n" + section
    out.write_text(text)
    print(section)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--per", type=int, default=5, help="instances per sample")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    a = ap.parse_args()
    S = os.environ.get("SHARDSET_BIN", str(REPO / "build" / "shardset"))
    work = pathlib.Path(a.workdir or tempfile.mkdtemp(prefix="shardset-catalog-bench."))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    load_start = os.getloadavg()

    import shardset
    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", (32, 32), 128).save(buf, format="PNG")
    png = buf.getvalue()
    t = time.time()
    if not pathlib.Path("ds/manifest.json").exists():
        with shardset.Writer("ds", shard_size=1 << 30) as w:
            for i in range(a.samples):
                w.write(f"{i // 1000:04d}/{i:07d}", png=png, cls=str(i % 10).encode())
    write_s = time.time() - t

    cat = "bench.catalog"
    for p in pathlib.Path(".").glob(cat + "*"):
        p.unlink()
    t = time.time()
    run(f"{S} dir create all -c {cat} > /dev/null")
    run(f"{S} dir add all --from ds -c {cat} > /dev/null")
    add_s = time.time() - t
    add_rss = None  # measured below on a second catalog

    t = time.time()
    db = sqlite3.connect(cat)
    ids = [r[0] for r in db.execute("SELECT id FROM file ORDER BY id")]
    rnd = random.Random(1)
    labels = [f"class{c}" for c in range(20)]
    now = int(time.time())

    def rows():
        n = 0
        for f in ids:
            for _ in range(a.per):
                x, y = rnd.randint(0, 20), rnd.randint(0, 20)
                yield (f, labels[n % 20], "box", json.dumps([x, y, 8, 6]), "", "{}", now)
                n += 1
    db.executemany("INSERT INTO instance(file, label, kind, geometry, mask, attributes, updated) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
    db.commit()
    instances = db.execute("SELECT count(*) FROM instance").fetchone()[0]
    db.close()
    fill_s = time.time() - t
    size_mib = os.path.getsize(cat) / 2**20

    other = "rss.catalog"
    add_cmd = f"rm -f {other}*; {S} dir create all -c {other} && {S} dir add all --from ds -c {other}"
    add_rss = peak_rss_mib(add_cmd)

    rows_out = []
    last = f"{(a.samples - 1) // 1000:04d}/{a.samples - 1:07d}"
    cases = [
        ("`dir ls` (every directory with its file and instance counts)",
         f"{S} dir ls -c {cat} > /dev/null", None),
        ("`dir mirror` of 100,000 samples (`--glob '00[0-9][0-9]/*'`) into a new directory",
         f"{S} dir mirror all some --glob '00[0-9][0-9]/*' -c {cat} > /dev/null",
         f"{S} dir rm some -c {cat} > /dev/null 2>&1 || true"),
        ("`annotate export --coco` of the whole directory",
         f"{S} annotate export all --coco all.json --no-sync -c {cat} > /dev/null", None),
        (f"open the directory as a TARGET and read its last sample (`cat {cat}#all KEY`)",
         f"{S} cat {cat}#all {last} --field annotations > /dev/null", None),
        ("`dir ls some` (the 100,000 files, each with its instance count)",
         f"{S} dir ls some -c {cat} > /dev/null", None),
    ]
    for name, cmd, prep in cases:
        if "dir ls some" in cmd:
            run(f"{S} dir rm some -c {cat} > /dev/null 2>&1 || true")
            run(f"{S} dir mirror all some --glob '00[0-9][0-9]/*' -c {cat} > /dev/null")
        med, lo, hi = hyperfine(cmd, a.runs, prep)
        if prep:
            run(prep)
        rss = peak_rss_mib(cmd)
        rows_out.append((name, med, lo, hi, rss, cmd))
    coco = json.load(open("all.json"))
    coco_mib = os.path.getsize("all.json") / 2**20
    check = (len(coco["images"]), len(coco["annotations"]), len(coco["categories"]))
    load_end = os.getloadavg()

    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    lines = ["## Catalog", "",
             f"Issue 10, acceptance 4: a catalog of {a.samples:,} samples and {instances:,} "
             f"instances ({a.per} boxes each, 20 classes). One run of `bench/catalog_bench.py` on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (source {rev}; load average "
             f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end; {os.cpu_count()} "
             f"cores); hyperfine, {a.runs} runs each, medians and min-max; peak RSS from GNU time. "
             "No peer: the tools users would otherwise pick keep this in a server database "
             "(Diffgram's PostgreSQL, FiftyOne's MongoDB) that cannot be installed here.", "",
             "Setup (not compared): writing the dataset with `shardset.Writer` "
             f"{write_s:.1f} s; `dir create` + `dir add all --from ds` of {a.samples:,} samples "
             f"{add_s:.1f} s, peak RSS {add_rss:.0f} MiB; inserting the instances with Python's "
             f"sqlite3 {fill_s:.1f} s. The catalog file is {size_mib:,.0f} MiB.", "",
             "| operation | median | min-max | peak RSS |", "| --- | --- | --- | --- |"]
    for name, med, lo, hi, rss, cmd in rows_out:
        lines.append(f"| {name} | {med:.2f} s | {lo:.2f}-{hi:.2f} | {rss:,.0f} MiB |")
    lines += ["", f"The COCO file: {coco_mib:,.0f} MiB, {check[0]:,} images, {check[1]:,} "
              f"annotations, {check[2]} categories (each image's width and height read from its "
              "PNG header).", "", "Commands (in the work folder, `S=build/shardset`):", "", "```sh"]
    for name, med, lo, hi, rss, cmd in rows_out:
        lines.append(cmd.replace(S, "$S"))
    lines += ["```", ""]
    section = "\n".join(lines)

    replace_section(a.out, "Catalog", section)
    if not a.keep and not a.workdir:
        os.chdir("/")
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
