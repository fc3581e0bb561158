"""shardset: training data packed into a few large indexed shards, read by
ordinal or key without extracting, split, mixed and shuffled as views.

    import shardset
    ds = shardset.open("fm-train")          # a dataset, view, shard or archive
    len(ds), ds[0], ds.get("training/0/1")  # samples: {field: bytes-like} + .key

    with shardset.Writer("generated", resume=True) as w:   # write while generating
        for i in range(w.samples, 800_000):
            w.write(f"{i:07d}", png=make_png(i), cls=label(i))

Catalogs of directories and annotations are `shardset.Catalog`
(docs/catalog.md). The PyTorch side is `shardset.torch`. Everything here is a thin layer over the
C++ library; docs/python.md is the guide.
"""
import collections as _collections
import os as _os
import tempfile as _tempfile
import warnings as _warnings

from . import _shardset as _ext
from ._shardset import (AlreadyExistsError, CorruptionError, Error, InvalidArgumentError,
                        NotFoundError, NotSupportedError, ResourceExhaustedError, StorageError,
                        decode_image)

__all__ = [
    "open", "Dataset", "Sample", "Writer", "pack", "split", "select", "mix", "shuffle",
    "decode_image", "uniform_order", "Error", "NotFoundError", "CorruptionError",
    "InvalidArgumentError", "StorageError", "NotSupportedError", "AlreadyExistsError",
    "ResourceExhaustedError", "BadSample", "BadSampleWarning", "Catalog",
]

__version__ = "0.1.0"


class Sample(dict):
    """One sample: a dict of field name -> bytes-like (a read-only memoryview
    of the shard's bytes, no copy; decoded fields are HxWxC uint8 numpy
    arrays), plus `key` and `index` (its position in the dataset or view)."""

    __slots__ = ("key", "index")

    def __init__(self, key, index, fields):
        super().__init__(fields)
        self.key = key
        self.index = index

    def bytes(self, name):
        """Field `name` as a bytes object (a copy)."""
        return self[name].tobytes()

    def text(self, name, encoding="utf-8"):
        """Field `name` decoded as text, trailing whitespace dropped (labels)."""
        return self[name].tobytes().decode(encoding).rstrip()

    def __repr__(self):
        fields = ", ".join(f"{k}: {'x'.join(map(str, v.shape))}" for k, v in self.items())
        return f"Sample(key={self.key!r}, index={self.index}, {{{fields}}})"

    def __reduce__(self):
        # A memoryview cannot be pickled (DataLoader workers pickle what they
        # return): its bytes are copied into a bytes object there.
        fields = {k: v.tobytes() if isinstance(v, memoryview) else v for k, v in self.items()}
        return (Sample, (self.key, self.index, fields))


_ext._register_sample_type(Sample)

from .catalog import Catalog  # noqa: E402 (needs the extension loaded above)


# ---------------------------------------------------------------- bad samples

ON_ERROR = ("raise", "skip", "warn")


class BadSampleWarning(UserWarning):
    """Warned once per bad sample skipped with on_error="warn"."""


class BadSample(_collections.namedtuple("BadSample", "index key error epoch",
                                        defaults=(None,))):
    """A sample that could not be read and was skipped (on_error="skip" or
    "warn"): its position in the dataset, its key (None when even that is
    unreadable), the error message (it names the shard and the sample) and,
    for samples a shardset.torch.DataLoader skipped, the epoch."""

    __slots__ = ()

    def __str__(self):
        return f"skipped sample {self.index} (key {self.key!r}): {self.error}"


def _check_on_error(on_error):
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(map(repr, ON_ERROR))}, "
                         f"not {on_error!r}")
    return on_error


class _ErrorLog:
    """The bad samples met under one on_error policy: all counted, the first
    KEEP kept, and with "warn" one BadSampleWarning each."""

    KEEP = 1000

    def __init__(self, policy):
        self.policy = _check_on_error(policy)
        self.count = 0
        self.samples = []

    def add(self, bad):
        self.count += 1
        if len(self.samples) < self.KEEP:
            self.samples.append(bad)
        if self.policy == "warn":
            _warnings.warn(f"shardset: {bad}", BadSampleWarning, stacklevel=3)


def _positions(indices):
    """A list of ints for the C++ side: numpy arrays convert in one call."""
    if hasattr(indices, "tolist"):
        return indices.tolist()
    return list(indices) if isinstance(indices, (list, range)) else [int(i) for i in indices]


def _targets(target):
    if isinstance(target, (str, bytes, _os.PathLike)):
        return [_os.fspath(target)]
    return [_os.fspath(t) for t in target]


class Dataset:
    """A dataset folder, a view file, or shards and archives (tar, tar.gz,
    zip, tsv; several read as one dataset in order). Random access by position
    (`ds[i]`, negative counts from the end) or key (`ds.get(key)`), iteration
    in order. Thread-safe: reads release the GIL and may run in parallel.
    Pickles by path (a DataLoader worker opens its own).

    A sample that cannot be read (damaged bytes, a missing shard) raises an
    Error naming the shard and the sample. `on_error="skip"` or `"warn"`
    makes iteration leave such samples out instead, counting them in
    `errors` (and `bad_samples`); "warn" also warns (BadSampleWarning) once
    per bad sample. Reads by position or key always raise."""

    def __init__(self, target, *, verify_checksums=True, on_error="raise"):
        self._targets = _targets(target)
        self._verify = verify_checksums
        self._log = _ErrorLog(on_error)
        self._ds = _ext._Dataset(self._targets, verify_checksums)

    def __reduce__(self):
        return (_reopen, (self._targets, self._verify, self._log.policy))

    @property
    def on_error(self):
        """What iteration does with a sample that cannot be read: "raise"
        (the default), "skip" or "warn" (docs/python.md "Bad samples")."""
        return self._log.policy

    @property
    def errors(self):
        """Bad samples skipped by iteration in this process so far (each
        time it was read)."""
        return self._log.count

    @property
    def bad_samples(self):
        """The first 1000 of them, as BadSample records."""
        return list(self._log.samples)

    @property
    def target(self):
        return self._targets[0] if len(self._targets) == 1 else self._targets

    def __len__(self):
        return len(self._ds)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._ds.read(int(i))

    def __iter__(self):
        """Every sample in order. A sample that cannot be read raises (an
        Error naming the shard and the sample), or with on_error="skip" or
        "warn" is left out and counted in `errors`."""
        n, step = len(self), 256  # samples per C++ call
        for start in range(0, n, step):
            batch = range(start, min(n, start + step))
            if self._log.policy == "raise":
                yield from self.read_batch(batch)
                continue
            for s in self._read_checked(batch):
                if isinstance(s, BadSample):
                    self._log.add(s)
                else:
                    yield s

    def _bad_sample(self, i, error):
        try:
            key = self._ds.key(int(i))
        except Error:
            key = None
        return BadSample(int(i), key, str(error.args[0] if error.args else error))

    def _read_checked(self, indices, decode=(), threads=1):
        """read_batch, with a BadSample in place of each sample that fails:
        the batch in one call, and only when that fails, one at a time."""
        pos = _positions(indices)
        try:
            return self.read_batch(pos, decode, threads)
        except Error:
            pass
        out = []
        for i in pos:
            try:
                out.extend(self.read_batch([i], decode))
            except Error as e:
                out.append(self._bad_sample(i, e))
        return out

    def _read_packed_checked(self, indices, decode=(), label=None, threads=1):
        """read_packed of the samples that read; (batch or None, [BadSample])."""
        pos = _positions(indices)
        try:
            return self.read_packed(pos, decode, label, threads), []
        except Error:
            pass
        good, bad = [], []
        for i in pos:
            try:
                self.read_packed([i], decode, label)
                good.append(i)
            except Error as e:
                bad.append(self._bad_sample(i, e))
        return (self.read_packed(good, decode, label, threads) if good else None), bad

    def get(self, key, default=KeyError):
        """The first sample whose key is `key`; KeyError (NotFoundError), or
        `default` when given."""
        i = self._ds.find(key)
        if i < 0:
            if default is KeyError:
                raise NotFoundError(f"{self.target}: no sample has the key {key!r}")
            return default
        return self[i]

    def find(self, key):
        """The position of the first sample with `key`, or None."""
        i = self._ds.find(key)
        return None if i < 0 else i

    def key(self, i):
        return self._ds.key(int(i))

    def read_batch(self, indices, decode=(), threads=1):
        """The samples at `indices`, read by `threads` C++ threads without the
        GIL; fields named in `decode` (PNG or JPEG) come back decoded as HxWxC
        uint8 arrays."""
        if isinstance(decode, str):
            decode = (decode,)
        return self._ds.read_batch(_positions(indices), list(decode), int(threads))

    def read_packed(self, indices, decode=(), label=None, threads=1):
        """The samples at `indices` as one buffer per field instead of one
        object per sample: a dict with `__key__` (list of str), `__index__`
        (int64 array), each undecoded field as a tuple (uint8 array of the
        samples' bytes end to end, int64 offsets [len + 1]: sample k is
        data[offsets[k]:offsets[k + 1]], empty where it lacks the field),
        each `decode` field as one uint8 array [B, H, W, C] (one image shape
        per batch), and `label` as int64 parsed from its text."""
        if isinstance(decode, str):
            decode = (decode,)
        return self._ds.read_packed(_positions(indices), list(decode), label or "", int(threads))

    def info(self):
        """Samples, sources (with their shards and the samples drawn from each)
        and the recipe of a view."""
        return self._ds.info()

    def verify(self):
        """Checks every checksum; {'ok', 'samples_checked', 'problems'}."""
        return self._ds.verify()

    def __repr__(self):
        return f"shardset.Dataset({self.target!r}, {len(self)} samples)"


def _reopen(targets, verify, on_error="raise"):
    return Dataset(targets, verify_checksums=verify, on_error=on_error)


def open(target, *, verify_checksums=True, on_error="raise"):  # noqa: A001 (the package's verb)
    """Opens a dataset folder, a view, a shard or an archive (or a list of
    shards and archives read as one dataset). `on_error` is what iteration
    does with a sample that cannot be read: "raise", "skip" or "warn"."""
    return Dataset(target, verify_checksums=verify_checksums, on_error=on_error)


class Writer:
    """Writes samples into a dataset folder as a program makes them.

        with shardset.Writer("gen", shard_size="64MiB", resume=True) as w:
            for i in range(w.samples, total):      # continue after what is there
                w.write(f"{i:08d}", png=png_bytes, cls=3)

    Field values: bytes or any buffer (numpy arrays, memoryview), str (UTF-8)
    or int (its decimal text). A shard is sealed (fsynced, then renamed) when it
    reaches `shard_size` or `shard_samples`, at flush() and at close(), which
    writes the manifest. A crash, a killed kernel or a lost notebook loses only
    the open shard; `Writer(path, resume=True)` keeps every sealed one and
    `samples` says how many samples there are. Resuming a finished dataset
    appends to it. Leaving the `with` block by an exception seals what was
    written and leaves the write resumable (no manifest).
    """

    def __init__(self, path, *, format="native", shard_size="64MiB", shard_samples=0,
                 resume=False, overwrite=False, sync=True, zip_deflate=0, gzip_level=6):
        self._w = _ext._Writer(_os.fspath(path), format, shard_size, shard_samples, resume,
                               overwrite, sync, zip_deflate, gzip_level)
        self._closed = False

    @property
    def samples(self):
        """Samples in the dataset so far, those resumed included."""
        return self._w.samples

    @property
    def resumed(self):
        """Samples the folder held when this writer opened it."""
        return self._w.resumed

    @property
    def shards(self):
        """Shards sealed so far."""
        return self._w.shards

    @property
    def path(self):
        return self._w.path

    def write(self, key, fields=None, **kw):
        """Appends one sample: write(key, png=..., cls=...) or write(key, {...})."""
        if fields:
            kw = {**fields, **kw}
        self._w.write(key, kw)

    def flush(self):
        """Seals the open shard: everything written so far is durable."""
        self._w.flush()

    def close(self):
        """Seals the last shard and writes the manifest; returns
        {'samples', 'shards', 'bytes'}."""
        if self._closed:
            return None
        self._closed = True
        return self._w.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif not self._closed:
            self._closed = True
            self._w.flush()
        return False


def _call(name, *args, **kw):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kw.items() if v is not None]
    return f"shardset.{name}({', '.join(parts)})"


def _amount(a):
    if isinstance(a, float):
        return repr(a)
    return str(a)


def pack(sources, out, *, format="native", shard_size="256MiB", shard_samples=0,
         label_from_dir=False, jobs=0, sync=True):
    """`shardset pack`: folders, shards or archives into a dataset folder."""
    return _ext.pack(_targets(sources), _os.fspath(out), format, shard_size, shard_samples,
                     label_from_dir, jobs, sync)


def split(src, out, ratios=None, *, by_prefix=None, seed=0, stratify=False, label_field="cls",
          sync=True):
    """`shardset split`: views OUT/<part>.view. `ratios` as the CLI writes them
    ("train=0.8,val=0.1,test=0.1") or a dict {"train": 0.8, ...}; `by_prefix`
    as "training=train,testing=test" or a dict {"training": "train"}. Returns
    {part: path}."""
    call = _call("split", _os.fspath(src), _os.fspath(out), ratios=ratios, by_prefix=by_prefix,
                 seed=seed, stratify=stratify)
    if isinstance(ratios, dict):
        ratios = ",".join(f"{k}={_amount(v)}" for k, v in ratios.items())
    elif isinstance(ratios, (list, tuple)):
        ratios = ",".join(_amount(v) for v in ratios)
    if isinstance(by_prefix, dict):
        by_prefix = ",".join(f"{k}={v}" for k, v in by_prefix.items())
    made = _ext.split(_os.fspath(src), _os.fspath(out), ratios or "", by_prefix or "", seed,
                      stratify, label_field, sync, call)
    return {_os.path.basename(m["path"])[:-len(".view")]: m["path"] for m in made}


def select(src, out, *, labels=None, keys=None, glob=None, label_field="cls", sync=True):
    """`shardset select`: a view of the samples with these labels, keys (a
    file of one key per line, or a list, in that order) or key pattern."""
    call = _call("select", _os.fspath(src), _os.fspath(out), labels=labels, glob=glob)
    if isinstance(labels, (str, int)):
        labels = [labels]
    labels = [str(label) for label in (labels or [])]
    keys_file, tmp = "", None
    if keys is not None and not isinstance(keys, (str, _os.PathLike)):
        tmp = _tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
        with tmp:
            for k in keys:
                tmp.write(f"{k}\n")
        keys_file = tmp.name
    elif keys is not None:
        keys_file = _os.fspath(keys)
    try:
        return _ext.select(_os.fspath(src), _os.fspath(out), labels, keys_file, glob or "",
                           label_field, sync, call)["path"]
    finally:
        if tmp is not None:
            _os.unlink(tmp.name)


def mix(parts, out, *, seed=0, replace=False, size=0, sweep=None, sync=True):
    """`shardset mix`: `parts` as the CLI writes them (["camvid=cv", "synthia=sy:0.2"])
    or a dict {name: src} / {name: (src, amount)}, amount a fraction ("20%",
    0.2), a count (500) or a weight ("@3"). `sweep`: "synthia=0:1:0.1" writes
    one view per amount into the folder `out`. Returns the view paths."""
    call = _call("mix", parts, _os.fspath(out), seed=seed, replace=replace, size=size,
                 sweep=sweep)
    if isinstance(parts, dict):
        specs = []
        for name, v in parts.items():
            if isinstance(v, tuple):
                src, amount = v
                amount = _amount(amount)
                sep = "" if amount.startswith("@") else ":"
                specs.append(f"{name}={_os.fspath(src)}{sep}{amount}")
            else:
                specs.append(f"{name}={_os.fspath(v)}")
        parts = specs
    made = _ext.mix(list(parts), _os.fspath(out), seed, replace, size, sweep or "", sync, call)
    return [m["path"] for m in made]


def shuffle(src, out, *, seed=0, interleave_by=None, view=False, format=None,
            shard_size="256MiB", shard_samples=0, memory="1GiB", temp_dir=None, force=False,
            sync=True):
    """`shardset shuffle`: the samples of `src` in a uniformly random order
    (or interleaved by label) as new shards, one shard file (`out` ending in
    .tar, .tar.gz, ...) or a view (`view=True`)."""
    call = _call("shuffle", _os.fspath(src), _os.fspath(out), seed=seed,
                 interleave_by=interleave_by, view=view or None, format=format)
    return _ext.shuffle(_os.fspath(src), _os.fspath(out), seed, interleave_by or "", view,
                        format or "", shard_size, shard_samples, memory,
                        _os.fspath(temp_dir) if temp_dir else "", force, sync, call)


def uniform_order(n, seed):
    """The uniform random order of n samples for `seed` (numpy uint64): the
    order `shuffle` writes (docs/shuffle.md "The order")."""
    return _ext.uniform_order(n, seed)
