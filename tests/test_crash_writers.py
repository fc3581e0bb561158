"""Issue 8: `kill -9` at random moments during every writer but `pack`
(tests/test_crash.py covers pack): `shuffle` into a dataset folder, `shuffle`
into a single shard file, the Python `shardset.Writer`, and view writing
(`split`, `mix --sweep`, `mix`, `select`, `shuffle --view`, plus `dataset
create`, which adopts data in place and is written the same all-or-nothing
way). Catalog edits and `sync` do not exist yet; they join here when they do.

Every trial runs one writer's command in a fresh folder, kills it with SIGKILL
at a moment drawn from the seed (sometimes twice, the second time during the
rerun), and after each kill checks that nothing partial is visible: every file
under a final name (one that does not start with ".") is byte for byte the
file an uninterrupted reference run wrote under that name (a tar sidecar's
recorded mtime aside), no other name is visible, no sidecar lacks its shard,
and `verify` passes on what is there. Then it reruns the same command to the
end, as a user would, and checks the result: the same set of files with the
same bytes as the reference run (so no sample lost, duplicated or reordered),
`ls` equal to the reference's, and `verify` passing. The reference runs are
themselves checked once: `ls` of a shuffled output holds exactly the source's
lines, each as often (so do `dataset create`'s and `shuffle --view`'s); the
Python Writer's keys are each of its samples once, in order, with their own
bytes; split's parts partition the source; every view verifies.

How a rerun completes depends on the writer, as documented:
- resumable (shuffle into a folder, the Python Writer with resume=True): the
  rerun continues after the last sealed shard and must exit 0;
- a single shard file (shuffle -o x.tar.gz) or `dataset create`: the output
  appears whole or not at all; a rerun after a kill that left nothing starts
  over, and a rerun after a kill that came after the rename is refused with
  "exists" (exit 2), the output being complete already;
- views: the rerun writes them again (a view is overwritten) and exits 0.

Counted and printed, not failures: a kill between a single tar or tar.gz
file's rename and its sidecar's leaves the file complete without its .idx,
and the refused rerun does not add it (the trial runs `shardset index`, as a
user would); hidden temporaries a rerun did not remove (a view's or `dataset
create`'s partial output of a killed run, a single-file shuffle's temporary
folder when the rerun is refused).

Knobs, as in tests/test_crash.py: SHARDSET_CRASH_TRIALS is the number of
trials per writer (4 by default: 16 trials, about 50 s on a busy 2-core VM
besides the Fashion-MNIST fixtures other tests build too; 50 per writer take
about 7 minutes: scripts/crash-harness.sh), SHARDSET_CRASH_SEED repeats a run's
kill plans (printed; the exact moments still depend on timing),
SHARDSET_CRASH_WRITERS=views,python-writer runs only some writers, and
SHARDSET_CRASH_REPORT=FILE appends one JSON line of tallies per writer (the
harness prints them as a table). A failed check does not stop the trials: all
of them run, their tallies are printed, and the test fails at the end listing
the first problems with the seed to repeat them.
"""
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import BIN, run, shardset

TRIALS = int(os.environ.get("SHARDSET_CRASH_TRIALS", "4"))
SEED = int(os.environ.get("SHARDSET_CRASH_SEED", str(int(time.time()) % 100000)))
ONLY = [w for w in os.environ.get("SHARDSET_CRASH_WRITERS", "").split(",") if w]
REPORT = os.environ.get("SHARDSET_CRASH_REPORT")

WRITERS = ["shuffle-dir", "shuffle-file", "python-writer", "views"]

# Where a kill landed, as in tests/test_crash.py's tally.
BEFORE, MID, AFTER = "before first output", "mid", "after final"
EXITED = "exited before the kill"

# The generated samples of the Python Writer's trials: deterministic, so a
# resumed run writes what an uninterrupted one would.
WRITER_SAMPLES = 60000
CHILD = textwrap.dedent("""
    import sys
    import shardset
    out, total, fmt, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    flush_every, sync = int(sys.argv[5]), sys.argv[6] == "sync"
    def payload(i):
        return (b"%06d," % i) * (1 + (i * 7919) % 61)
    with shardset.Writer(out, format=fmt, shard_size=size, resume=True, sync=sync) as w:
        print(w.resumed, flush=True)
        for i in range(w.samples, total):
            w.write(f"gen/{i:06d}", bin=payload(i), cls=i % 10)
            if flush_every and i % flush_every == flush_every - 1:
                w.flush()
""")


def payload(i):
    return (b"%06d," % i) * (1 + (i * 7919) % 61)


class Case:
    """One writer configuration: a command run with the trial's folder as its
    working directory, writing `outputs` (relative names) there.
    kind: 'resume' (rerun continues, exit 0), 'once' (single output, rerun
    refused with 'exists' once it is there) or 'overwrite' (views)."""

    def __init__(self, writer, name, cmd, kind, main):
        self.writer, self.name, self.cmd, self.kind, self.main = writer, name, cmd, kind, main


def cases(src, loose):
    """All configurations. src: a native dataset of Fashion-MNIST's 60,000
    training images (4 MiB shards); loose: the same images as PNG files."""
    s = str(src)
    sh = [str(BIN), "shuffle", s, "-o"]
    py = [sys.executable, "child.py", "gen", str(WRITER_SAMPLES)]
    return {
        "shuffle-dir": [
            # scatter-gather through temporary files (data 8x --memory), fsync
            Case("shuffle-dir", "native-sg", sh + ["o", "--seed", "6", "--shard-size", "1MiB",
                                                   "--memory", "4MiB"], "resume", "o"),
            Case("shuffle-dir", "tar-direct", sh + ["o", "--format", "tar", "--shard-size",
                                                    "4MiB", "--method", "direct", "--seed", "3",
                                                    "--no-sync"], "resume", "o"),
            Case("shuffle-dir", "targz-interleave", sh + ["o", "--format", "tar.gz",
                                                          "--interleave-by", "label",
                                                          "--shard-samples", "3000", "--seed",
                                                          "2"], "resume", "o"),
            Case("shuffle-dir", "zip-sg", sh + ["o", "--format", "zip", "--shard-samples", "2500",
                                                "--memory", "8MiB", "--seed", "9"], "resume",
                 "o"),
        ],
        "shuffle-file": [
            Case("shuffle-file", "tar.gz-sg", sh + ["out.tar.gz", "--seed", "1", "--memory",
                                                    "4MiB"], "once", "out.tar.gz"),
            Case("shuffle-file", "tar-direct", sh + ["out.tar", "--seed", "2", "--method",
                                                     "direct"], "once", "out.tar"),
            Case("shuffle-file", "shard-sg", sh + ["out.shard", "--seed", "3", "--memory",
                                                   "4MiB"], "once", "out.shard"),
            Case("shuffle-file", "zip-interleave", sh + ["out.zip", "--seed", "4",
                                                         "--interleave-by", "label"], "once",
                 "out.zip"),
        ],
        "python-writer": [
            # flush() every N samples (0: never); fsync (the default) or not
            Case("python-writer", "native", py + ["native", "128KiB", "5000", "sync"], "resume",
                 "gen"),
            Case("python-writer", "tar-nosync", py + ["tar", "1MiB", "0", "nosync"], "resume",
                 "gen"),
            Case("python-writer", "tar.gz", py + ["tar.gz", "128KiB", "7000", "sync"], "resume",
                 "gen"),
        ],
        "views": [
            Case("views", "split-stratify", [str(BIN), "split", s, "--ratios",
                                             "train=0.8,val=0.1,test=0.1", "--stratify",
                                             "--seed", "1", "-o", "sp"], "overwrite", "sp"),
            Case("views", "mix-sweep", [str(BIN), "mix", f"a={s}", f"b={s}:10%", "--sweep",
                                        "a=0:1:0.05", "--seed", "7", "-o", "sw"], "overwrite",
                 "sw"),
            Case("views", "shuffle-view", sh + ["s.view", "--view", "--interleave-by", "label",
                                                "--seed", "4"], "overwrite", "s.view"),
            Case("views", "mix-replace", [str(BIN), "mix", f"a={s}:30%", f"b={s}:2.5",
                                          "--replace", "--seed", "3", "-o", "m.view"],
                 "overwrite", "m.view"),
            Case("views", "select-glob", [str(BIN), "select", s, "--glob", "*/1*", "-o",
                                          "sel.view"], "overwrite", "sel.view"),
            Case("views", "dataset-create", [str(BIN), "dataset", "create", "dc", "--shards",
                                             str(loose), "--label-from-dir"], "once", "dc"),
        ],
    }


# ------------------------------------------------------------------ files

def snapshot(w):
    """(final, hidden): relative paths of the files under final names below w
    (names not starting with '.', in folders not starting with '.'), and of
    the hidden entries (temporaries, state files, temporary folders)."""
    final, hidden = [], []
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(w / rel if rel else w))
        except FileNotFoundError:
            continue
        for e in entries:
            r = f"{rel}/{e.name}" if rel else e.name
            if e.name.startswith("."):
                hidden.append(r)
            elif e.is_dir(follow_symlinks=False):
                stack.append(r)
            else:
                final.append(r)
    return sorted(final), sorted(hidden)


def digest(path):
    """The file's bytes, hashed; a tar sidecar's fingerprint records the tar's
    mtime (bytes 24..31, "recorded for people, not compared",
    docs/formats/tar-index.md), which differs between runs: masked."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if path.name.endswith(".tar.idx"):
            head = f.read(32)
            h.update(head[:24] + b"\0" * 8 + head[32:])
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def is_unit(rel):
    """A file that counts as progress: a shard, a single output, a view (not a
    sidecar, manifest or folder index)."""
    return not rel.endswith((".idx", "manifest.json", ".lineidx", ".lineidx.8b"))


class Tally:
    def __init__(self, writer):
        self.writer = writer
        self.trials = 0
        self.kills = 0
        self.phases = collections.Counter()
        self.per_config = collections.defaultdict(collections.Counter)
        self.visible_partial = 0
        self.lost_or_duplicated = 0
        self.resumes_completed = 0
        self.resumed_from_sealed = 0
        self.verify_passes = 0
        self.verify_failures = 0
        self.leftovers_after_rerun = 0
        self.rerun_refused_complete = 0
        self.problems = []
        self.notes = []
        self.seconds = 0.0

    def problem(self, kind, trial, case, msg):
        if kind == "partial":
            self.visible_partial += 1
        elif kind == "content":
            self.lost_or_duplicated += 1
        self.problems.append(f"[{kind}] trial {trial} ({case.name}): {msg}")

    def as_json(self):
        return {"writer": self.writer, "trials": self.trials, "kills": self.kills,
                "phases": dict(self.phases), "visible_partial": self.visible_partial,
                "lost_or_duplicated": self.lost_or_duplicated,
                "resumes_completed": self.resumes_completed,
                "resumed_from_sealed": self.resumed_from_sealed,
                "rerun_refused_complete": self.rerun_refused_complete,
                "verify_passes": self.verify_passes, "verify_failures": self.verify_failures,
                "leftovers_after_rerun": self.leftovers_after_rerun,
                "problems": len(self.problems), "seconds": round(self.seconds, 1),
                "seed": SEED, "notes": self.notes[:20]}


def verify(tally, trial, case, target, cwd):
    r = run(BIN, "verify", "-q", target, check=False, cwd=cwd)
    if r.returncode == 0:
        tally.verify_passes += 1
        return True
    tally.verify_failures += 1
    tally.problem("verify", trial, case, f"verify {target} exited {r.returncode}: "
                  f"{r.stderr.decode(errors='replace')[-500:]}")
    return False


def ls_targets(case, ref):
    """What `ls` and `verify` are run on once the output is complete."""
    if case.writer == "views" and case.kind == "overwrite":
        return [u for u in ref["units"]]  # every view
    return [case.main]


# -------------------------------------------------------------- references

def make_reference(case, base):
    """An uninterrupted run: its files' digests, `ls`, and how long it took."""
    w = base / f"ref-{case.writer}-{case.name}"
    w.mkdir()
    if case.writer == "python-writer":
        (w / "child.py").write_text(CHILD)
    t0 = time.monotonic()
    run(*case.cmd, cwd=w)
    seconds = time.monotonic() - t0
    final, hidden = snapshot(w)
    final = [f for f in final if f != "child.py"]
    assert not hidden, f"{case.name}: an uninterrupted run left hidden files: {hidden}"
    ref = {"seconds": seconds, "dir": w,
           "files": {f: digest(w / f) for f in final},
           "units": [f for f in final if is_unit(f)]}
    ref["ls"] = {t: shardset("ls", t, cwd=w).stdout for t in ls_targets(case, ref)}
    for t in ls_targets(case, ref):
        shardset("verify", "-q", t, cwd=w)
    return ref


def check_reference(case, ref, src_ls):
    """The reference itself holds every sample once."""
    if case.writer.startswith("shuffle"):
        (out_ls,) = ref["ls"].values()
        assert collections.Counter(out_ls.splitlines()) == collections.Counter(
            src_ls.splitlines()), f"{case.name}: the shuffled output's samples differ from SRC's"
    elif case.writer == "python-writer":
        (out_ls,) = ref["ls"].values()
        keys = [line.split(b"\t")[0] for line in out_ls.splitlines()]
        assert keys == [b"gen/%06d" % i for i in range(WRITER_SAMPLES)]
        for i in random.Random(1).sample(range(WRITER_SAMPLES), 5):
            got = shardset("cat", case.main, "--ordinal", i, "--field", "bin",
                           cwd=ref["dir"]).stdout
            assert got == payload(i), f"sample {i} of the Writer's reference has other bytes"
    elif case.name in ("dataset-create", "shuffle-view"):
        # The PNG folder adopted in place, and a shuffled view of the
        # dataset packed from it: the same samples, fields and sizes.
        (out_ls,) = ref["ls"].values()
        assert collections.Counter(out_ls.splitlines()) == collections.Counter(
            src_ls.splitlines()), f"{case.name}: other samples than the source's"
    elif case.name == "split-stratify":
        parts = collections.Counter()
        for out_ls in ref["ls"].values():
            parts.update(out_ls.splitlines())
        assert parts == collections.Counter(src_ls.splitlines()), "the parts are not a partition"
    else:
        for t, out_ls in ref["ls"].items():
            keys = [line.split(b"\t")[0] for line in out_ls.splitlines()]
            assert keys, f"{t}: an empty view"
            if case.name == "select-glob":
                assert len(keys) == len(set(keys)), f"{t}: a sample twice"


# ------------------------------------------------------------------ kills

def pick_plan(case, ref, rng):
    """Where to aim a kill:
    ('start', t): at t seconds, within the first 5% of the run;
    ('random', t): at t seconds, anywhere in the run (and a little after);
    ('units', n): a moment after the n-th shard or view appeared;
    ('temp', t): t seconds after the output's first hidden temporary appeared;
    ('final', 0): as soon as the output is complete to a reader (manifest,
    the file, every view): the window of sidecars, directory fsyncs, state
    removal."""
    sec = ref["seconds"]
    units = len(ref["units"])
    x = rng.random()
    if x < 0.1:
        return ("start", rng.uniform(0, 0.05 * sec))
    if x < 0.2:
        return ("final", 0)
    if units > 1 and x < (0.75 if case.kind == "resume" else 0.45):
        return ("units", rng.randint(1, units))
    if case.kind != "resume" and x < (0.65 if units > 1 else 0.5):
        return ("temp", rng.uniform(0, 0.5 * sec))
    return ("random", rng.uniform(0, 1.1 * sec))


def is_final(case, ref, w, final):
    """Whether a reader sees the whole output: the manifest of a dataset
    folder, the single file, every view."""
    if case.kind == "resume":
        return f"{case.main}/manifest.json" in final
    if case.kind == "once":
        return (w / case.main).exists()
    return set(final) >= set(ref["units"])


def start_and_kill(case, ref, w, plan, rng):
    """Starts the command in w and SIGKILLs it as the plan says. Returns
    (landed: it was still running, exit status, stdout, stderr)."""
    proc = subprocess.Popen([str(a) for a in case.cmd], cwd=w, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    kind, arg = plan
    sec = ref["seconds"]
    per_unit = sec / max(1, len(ref["units"]))
    t0 = time.monotonic()
    deadline = t0 + 20 * sec + 30
    if kind in ("start", "random"):
        while proc.poll() is None and time.monotonic() < t0 + arg:
            time.sleep(0.0005)
    else:
        names = set(ref["units"])
        while proc.poll() is None and time.monotonic() < deadline:
            final, hidden = snapshot(w)
            if kind == "final" and is_final(case, ref, w, final):
                break
            if kind == "units" and sum(f in names for f in final) >= arg:
                time.sleep(rng.uniform(0, 1.5 * per_unit))
                break
            if kind == "temp" and any(".shardset-tmp." in h for h in hidden):
                time.sleep(arg)
                break
            time.sleep(0.0005)
    landed = proc.poll() is None
    if landed:
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    landed = landed and proc.returncode == -signal.SIGKILL
    return landed, proc.returncode, out, err


def check_visible(case, ref, w, trial, tally, after_kill):
    """Every file under a final name is the reference's file of that name.
    Returns the phase: BEFORE, MID or AFTER."""
    final, hidden = snapshot(w)
    if case.writer == "python-writer":
        final = [f for f in final if f != "child.py"]
    good = []
    for f in final:
        if f not in ref["files"]:
            tally.problem("partial", trial, case, f"{f}: visible under a name the uninterrupted "
                          f"run does not have")
        elif digest(w / f) != ref["files"][f]:
            tally.problem("partial", trial, case, f"{f}: visible with other bytes than the "
                          f"uninterrupted run's ({(w / f).stat().st_size} bytes, reference "
                          f"{(ref['dir'] / f).stat().st_size})")
        else:
            good.append(f)
        if f.endswith(".idx") and f[:-4] not in final:
            tally.problem("partial", trial, case, f"{f}: a sidecar without its shard")
    units = [f for f in final if f in ref["units"]]
    if is_final(case, ref, w, final):
        phase = AFTER
    elif units or any(".shardset-tmp." in h or "shuffle-tmp" in h for h in hidden):
        phase = MID
    else:
        phase = BEFORE
    if not after_kill:
        return phase
    # `verify` on what a reader would open now.
    if phase == AFTER:
        for t in ls_targets(case, ref)[:3]:
            verify(tally, trial, case, t, w)
    elif case.kind == "resume" and units:
        verify(tally, trial, case, random.Random(trial).choice(units), w)
    elif case.writer == "views" and units:
        verify(tally, trial, case, units[-1], w)
    # A tar or tar.gz output visible without its sidecar: complete and
    # readable (`shardset index` rebuilds the sidecar), but the rerun of a
    # single-file shuffle refuses an existing output, so it stays without one.
    if case.kind == "once":
        missing = [f for f in ref["files"] if f.endswith(".idx") and f not in final
                   and f[:-4] in final]
        if missing:
            tally.notes.append(f"trial {trial} ({case.name}): killed after the rename, before "
                               f"the sidecar: {missing}")
            tally.phases["sidecar missing after the kill"] += 1
    return phase


def check_complete(case, ref, w, trial, tally):
    """The finished output equals the uninterrupted run's."""
    final, hidden = snapshot(w)
    if case.writer == "python-writer":
        final = [f for f in final if f != "child.py"]
    ok = True
    missing = sorted(set(ref["files"]) - set(final))
    extra = sorted(set(final) - set(ref["files"]))
    differ = [f for f in final if f in ref["files"] and digest(w / f) != ref["files"][f]]
    for f in differ:
        if f.endswith(".json"):  # say what differs in a manifest
            a, b = json.loads((w / f).read_text()), json.loads((ref["dir"] / f).read_text())
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            tally.notes.append(f"trial {trial} ({case.name}): {f} differs in {keys}: "
                               f"{ {k: a.get(k) for k in keys} } vs the reference's "
                               f"{ {k: b.get(k) for k in keys} }"[:2000])
    if missing or extra or differ:
        ok = False
        tally.problem("content", trial, case, f"after the rerun: missing {missing[:5]}, "
                      f"unexpected {extra[:5]}, other bytes {differ[:5]}")
    for t in ls_targets(case, ref):
        if not (w / t).exists():
            continue
        got = shardset("ls", t, cwd=w, check=False).stdout
        if got != ref["ls"][t]:
            ok = False
            a, b = collections.Counter(got.splitlines()), collections.Counter(
                ref["ls"][t].splitlines())
            tally.problem("content", trial, case, f"ls {t} differs from the uninterrupted "
                          f"run's: {sum((b - a).values())} lines lost, "
                          f"{sum((a - b).values())} extra")
    targets = ls_targets(case, ref)
    if case.writer == "views" and len(targets) > 2:
        targets = random.Random(trial).sample(targets, 2)
    for t in targets:
        ok = verify(tally, trial, case, t, w) and ok
    if hidden:
        tally.leftovers_after_rerun += 1
        tally.notes.append(f"trial {trial} ({case.name}): hidden leftovers after the rerun: "
                           f"{hidden[:3]}")
    return ok


def rerun(case, ref, w, trial, tally):
    """Reruns the command to the end, as a user would after the crash."""
    visible_before = (w / case.main).exists()
    cmd = list(case.cmd)
    if case.writer == "shuffle-dir":
        cmd.append("--json")
    r = run(*cmd, cwd=w, check=False)
    if case.kind == "once" and visible_before:
        # Complete already (checked above); a rerun is refused as documented.
        if r.returncode == 2 and b"exists" in r.stderr:
            tally.rerun_refused_complete += 1
            if case.main.endswith((".tar", ".tar.gz")) and not (w / (case.main + ".idx")).exists():
                shardset("index", case.main, cwd=w)  # what the user does: restores the sidecar
            return True
        tally.problem("resume", trial, case, f"rerun over a complete output exited "
                      f"{r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")
        return False
    if r.returncode != 0:
        tally.problem("resume", trial, case, f"the rerun after kill -9 exited {r.returncode}: "
                      f"{r.stderr.decode(errors='replace')[-500:]}; reproduce in {w}: "
                      f"{' '.join(map(str, cmd))}")
        return False
    if case.writer == "shuffle-dir":
        try:
            tally.resumed_from_sealed += json.loads(r.stdout).get("resumed_samples", 0) > 0
        except ValueError:
            pass
    elif case.writer == "python-writer":
        tally.resumed_from_sealed += int(r.stdout.split()[0]) > 0
    return True


def one_trial(case, ref, rng, base, trial, tally):
    w = base / f"t{trial}"
    w.mkdir()
    if case.writer == "python-writer":
        (w / "child.py").write_text(CHILD)
    tally.trials += 1
    counts = tally.per_config[case.name]
    kills = 2 if rng.random() < 0.3 else 1
    for k in range(kills):
        if case.kind == "once" and (w / case.main).exists():
            break  # complete: a run now is refused at once, nothing to kill
        plan = pick_plan(case, ref, rng)
        landed, rc, out, err = start_and_kill(case, ref, w, plan, rng)
        if not landed:
            if rc != 0:
                tally.problem("resume", trial, case, f"exited {rc} before the kill: "
                              f"{err.decode(errors='replace')[-300:]}")
            tally.phases[EXITED] += 1
            counts[EXITED] += 1
            break
        tally.kills += 1
        phase = check_visible(case, ref, w, trial, tally, after_kill=True)
        tally.phases[phase] += 1
        counts[phase] += 1
    problems = len(tally.problems)
    if rerun(case, ref, w, trial, tally):
        if check_complete(case, ref, w, trial, tally):
            tally.resumes_completed += 1
    if len(tally.problems) == problems:
        shutil.rmtree(w, ignore_errors=True)  # else kept, to look at


def print_tally(tally, refs):
    print(f"\n{tally.writer}: {tally.trials} trials, {tally.kills} kills in {tally.seconds:.0f}s "
          f"(seed {SEED}; SHARDSET_CRASH_SEED={SEED} to repeat)")
    print(f"  kills by phase: {dict(tally.phases)}")
    for name, c in tally.per_config.items():
        r = refs[name]
        print(f"    {name:17s} (uninterrupted {r['seconds']:.2f}s, {len(r['units'])} shards or "
              f"views): {dict(c)}")
    print(f"  visible partial files: {tally.visible_partial}; lost or duplicated: "
          f"{tally.lost_or_duplicated}; resumes completed: {tally.resumes_completed} of "
          f"{tally.trials} (resumed after sealed work: {tally.resumed_from_sealed}; "
          f"complete at the kill, rerun refused as documented: {tally.rerun_refused_complete}); "
          f"verify: {tally.verify_passes} passed, {tally.verify_failures} failed; "
          f"hidden leftovers after the rerun: {tally.leftovers_after_rerun} trials")
    for n in tally.notes[:10]:
        print("  note:", n)
    if len(tally.notes) > 10:
        print(f"  ... {len(tally.notes) - 10} more notes")


@pytest.fixture(scope="module")
def python_package():
    r = subprocess.run([sys.executable, "-c", "import shardset"], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("writer", WRITERS)
def test_kill9_during_writer_then_rerun(writer, fmnist_train_native, fmnist_tree, tmp_path,
                                        python_package):
    if ONLY and writer not in ONLY:
        pytest.skip(f"SHARDSET_CRASH_WRITERS={','.join(ONLY)}")
    if writer == "python-writer" and not python_package:
        pytest.skip(f"{sys.executable} cannot import shardset (pip install . into the venv, "
                    f"scripts/python-env.sh)")
    t0 = time.monotonic()
    configs = cases(fmnist_train_native, fmnist_tree / "training")[writer]
    rng = random.Random(f"{SEED}-{writer}")
    print(f"\n{writer}: {TRIALS} trials, seed {SEED}")
    src_ls = shardset("ls", fmnist_train_native).stdout
    refs = {}
    for case in configs:
        refs[case.name] = make_reference(case, tmp_path)
        check_reference(case, refs[case.name], src_ls)
    tally = Tally(writer)
    for trial in range(TRIALS):
        case = configs[trial % len(configs)]
        try:
            one_trial(case, refs[case.name], rng, tmp_path, trial, tally)
        except Exception as e:  # a harness error: report it with the seed
            tally.problem("harness", trial, case, f"{type(e).__name__}: {e}")
    tally.seconds = time.monotonic() - t0
    print_tally(tally, refs)
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps(tally.as_json()) + "\n")
    if not tally.problems:  # a few hundred MB of references: not left behind
        for ref in refs.values():
            shutil.rmtree(ref["dir"], ignore_errors=True)
    assert not tally.problems, (
        f"{writer}: {len(tally.problems)} problems in {TRIALS} trials "
        f"(SHARDSET_CRASH_SEED={SEED} SHARDSET_CRASH_WRITERS={writer} to repeat):\n  "
        + "\n  ".join(tally.problems[:10]))
    # Over a long run the kills must have hit the interesting phase.
    if TRIALS >= 20:
        assert tally.phases[MID] >= 1, dict(tally.phases)
