"""PyTorch loading: datasets that shuffle per epoch, split work across
DataLoader workers and distributed ranks without overlap, and resume exactly
mid-epoch (docs/python.md "Training").

    from shardset.torch import IterableDataset, DataLoader
    ds = IterableDataset("fm-train", batch_size=128, seed=1, decode="png", label="cls")
    loader = DataLoader(ds, num_workers=2)
    for epoch in range(start_epoch, epochs):
        loader.set_epoch(epoch)
        for batch in loader:          # {"png": uint8 [B,H,W,C], "cls": int64 [B], ...}
            ...
            state = loader.state_dict()   # save it with the model; load_state_dict resumes

The order of an epoch is a function of (seed, epoch, rank, world size, batch
size) only: never of the number of workers. So a run resumed from a state
yields exactly the batches the uninterrupted run would have, with any
`num_workers`.

Bad samples (docs/python.md "Bad samples: on_error"): with on_error="skip" or
"warn" a sample that cannot be read is left out of its batch and counted,
in `loader.errors` / `loader.bad_samples` (from every worker) and in the
dataset's `errors` in the training process.
"""
import collections
import math
import os

import numpy as np
import torch
import torch.utils.data as _data

import shardset
from shardset import BadSample, BadSampleWarning  # noqa: F401 (re-exported)

_MASK = (1 << 64) - 1


def _mix(*values):
    """SplitMix64 of the values, one after the other: per-epoch seeds."""
    x = 0x6A09E667F3BCC909
    for v in values:
        x = (x + (int(v) & _MASK) + 0x9E3779B97F4A7C15) & _MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        x = z ^ (z >> 31)
    return x


def epoch_order(n, seed, epoch, order="uniform", block_size=4096, window=8):
    """Positions 0..n-1 in the order of `epoch` (numpy int64).

    "uniform": a uniformly random permutation (shardset's two-stage shuffle,
    the same algorithm as `shardset shuffle`), seeded by (seed, epoch).
    "blocks": locality first: runs of `block_size` consecutive samples are
    put in a random order, then the samples of each `window` consecutive
    blocks are shuffled together. Reads stay within `window` blocks at a time
    (each read sequentially once), at the price of a weaker shuffle: two
    samples from one block are never more than `window * block_size` apart.
    "none": the stored order.
    """
    if order == "none":
        return np.arange(n, dtype=np.int64)
    if order == "uniform":
        return shardset.uniform_order(n, _mix(seed, epoch)).astype(np.int64)
    if order != "blocks":
        raise ValueError(f"order must be 'uniform', 'blocks' or 'none', not {order!r}")
    if block_size < 1 or window < 1:
        raise ValueError("block_size and window must be 1 or more")
    blocks = (n + block_size - 1) // block_size
    perm = shardset.uniform_order(blocks, _mix(seed, epoch, 1)).astype(np.int64)
    starts = perm * block_size
    lengths = np.minimum(starts + block_size, n) - starts
    # Concatenated ranges: start of each block repeated over its length, plus
    # the offset within it.
    out = np.repeat(starts, lengths) + (np.arange(lengths.sum()) -
                                        np.repeat(np.cumsum(lengths) - lengths, lengths))
    span = window * block_size
    for c, lo in enumerate(range(0, n, span)):
        hi = min(n, lo + span)
        out[lo:hi] = out[lo:hi][shardset.uniform_order(hi - lo, _mix(seed, epoch, 2, c))
                                .astype(np.int64)]
    return out


def _rank_world(rank, world_size):
    if rank is None or world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank = torch.distributed.get_rank() if rank is None else rank
            world_size = torch.distributed.get_world_size() if world_size is None else world_size
        else:
            rank = 0 if rank is None else rank
            world_size = 1 if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return rank, world_size


class _Plan:
    """Which positions a rank reads in an epoch, in order."""

    def __init__(self, n, *, shuffle, seed, order, block_size, window, rank, world_size, uneven):
        if uneven not in ("pad", "drop"):
            raise ValueError(f"uneven must be 'pad' or 'drop', not {uneven!r}")
        if n == 0:
            raise ValueError("the dataset has no samples")
        self.n = n
        self.order = order if shuffle else "none"
        self.seed, self.block_size, self.window = seed, block_size, window
        self.rank, self.world_size = _rank_world(rank, world_size)
        self.uneven = uneven
        # Every rank gets the same count, so DDP never waits on a rank that
        # ran out: the order is padded with its own first samples, or cut.
        if uneven == "pad":
            self.per_rank = math.ceil(n / self.world_size)
        else:
            self.per_rank = n // self.world_size
        if self.per_rank == 0:
            raise ValueError(f"{n} samples cannot give each of {self.world_size} ranks one "
                             "(uneven='drop'); use uneven='pad'")

    def positions(self, epoch):
        o = epoch_order(self.n, self.seed, epoch, self.order, self.block_size, self.window)
        total = self.per_rank * self.world_size
        if total > self.n:
            o = np.concatenate([o, np.resize(o, total - self.n)])
        else:
            o = o[:total]
        return o[self.rank::self.world_size]

    def fingerprint(self):
        return {"n": self.n, "order": self.order, "seed": self.seed,
                "block_size": self.block_size, "window": self.window, "rank": self.rank,
                "world_size": self.world_size, "uneven": self.uneven}


def _open(target, verify_checksums):
    if isinstance(target, shardset.Dataset):
        return target
    return shardset.open(target, verify_checksums=verify_checksums)


class _Opened:
    """A shardset.Dataset opened lazily once per process (DataLoader workers
    fork or spawn; each reads through its own maps)."""

    def __init__(self, target, verify_checksums):
        ds = _open(target, verify_checksums)
        self._targets = ds._targets
        self._verify = verify_checksums
        self._pid = os.getpid()
        self._ds = ds
        self.n = len(ds)

    def get(self):
        if self._ds is None or self._pid != os.getpid():
            self._ds = shardset.open(self._targets, verify_checksums=self._verify)
            self._pid = os.getpid()
        return self._ds

    def __getstate__(self):
        return {"_targets": self._targets, "_verify": self._verify, "n": self.n,
                "_pid": None, "_ds": None}


def _label(sample, label):
    return int(sample.text(label))


class _WithErrors(collections.namedtuple("_WithErrors", "batch errors")):
    """What a worker hands over for a batch that had bad samples: the batch
    of the others (None when none was left) and their BadSample records.
    shardset's DataLoader unwraps it, counts the records and yields the
    batch (a namedtuple, so pin_memory keeps it whole)."""

    __slots__ = ()


class _Policy:
    """The on_error part of the two dataset classes. Bad samples are counted
    where they are found, unless a shardset DataLoader is iterating the
    dataset: then they travel with the batch to the training process, which
    counts them (workers' counts would otherwise stay in the workers)."""

    def _init_policy(self, on_error):
        self._log = shardset._ErrorLog(on_error)
        self._to_loader = False

    @property
    def on_error(self):
        """"raise" (default), "skip" or "warn"."""
        return self._log.policy

    @property
    def errors(self):
        """Bad samples skipped in this process so far, each time it was read
        (those a shardset DataLoader skipped in its workers included)."""
        return self._log.count

    @property
    def bad_samples(self):
        """The first 1000 of them, as shardset.BadSample records."""
        return list(self._log.samples)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_log"] = shardset._ErrorLog(self._log.policy)  # counts stay here
        return state


class Dataset(_Policy, _data.Dataset):
    """Map-style: `ds[i]` is sample i (a shardset.Sample: fields as read-only
    memoryviews, bytes once pickled by a worker, `decode` ones as HxWxC arrays, `label` as an int under its field
    name), passed through `transform` when given. Shuffle, ranks and resume
    come from `Sampler` (DataLoader below makes one).

    `on_error`: a sample that cannot be read raises (an Error naming the
    shard and the sample: "raise", the default), or is left out of its batch
    and counted ("skip"; "warn" also warns once per bad sample). Batches
    then hold fewer samples, never a substitute; `ds[i]` of a bad sample
    returns None (counted)."""

    def __init__(self, target, *, decode=(), label=None, transform=None, verify_checksums=True,
                 on_error="raise"):
        self._init_policy(on_error)
        self._opened = _Opened(target, verify_checksums)
        self.decode = (decode,) if isinstance(decode, str) else tuple(decode)
        self.label = label
        self.transform = transform

    def __len__(self):
        return self._opened.n

    def _finish(self, s):
        if self.label is not None:
            s[self.label] = _label(s, self.label)
        return self.transform(s) if self.transform else s

    def _checked(self, indices):
        """Samples and BadSample records (kept for a shardset DataLoader,
        else counted here and left out)."""
        out = []
        for s in self._opened.get()._read_checked(indices, self.decode):
            if not isinstance(s, BadSample):
                out.append(self._finish(s))
            elif self._to_loader:
                out.append(s)
            else:
                self._log.add(s)
        return out

    def __getitem__(self, i):
        if self._log.policy == "raise":
            return self._finish(self._opened.get().read_batch([i], self.decode)[0])
        out = self._checked([i])
        return out[0] if out else None

    def __getitems__(self, indices):
        # torch >= 2.0 fetches a batch with one call: one read_batch.
        if self._log.policy == "raise":
            return [self._finish(s) for s in self._opened.get().read_batch(indices, self.decode)]
        return self._checked(indices)


class Sampler(_data.Sampler):
    """Positions for one rank in the order of the current epoch (see
    epoch_order), every rank the same count (`uneven`: 'pad' repeats the
    epoch's first samples, 'drop' leaves the last out). `start` skips the
    first positions of the epoch (resume)."""

    def __init__(self, data_source, *, shuffle=True, seed=0, order="uniform", block_size=4096,
                 window=8, rank=None, world_size=None, uneven="pad"):
        n = data_source if isinstance(data_source, int) else len(data_source)
        self.plan = _Plan(n, shuffle=shuffle, seed=seed, order=order, block_size=block_size,
                          window=window, rank=rank, world_size=world_size, uneven=uneven)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch, start=0):
        self.epoch = epoch
        self.start = start

    def __iter__(self):
        return iter(self.plan.positions(self.epoch)[self.start:].tolist())

    def __len__(self):
        return self.plan.per_rank - self.start


def default_collate(samples, label=None):
    """A batch of Samples as a dict: fields whose arrays all have one shape
    (decoded images) stacked into a uint8 tensor [B, ...]; `label` as an
    int64 tensor; other fields (encoded bytes of varying size) as a list of
    `bytes` (a copy: a memoryview cannot cross from a DataLoader worker);
    `__key__` the keys and `__index__` the positions (int64)."""
    samples = [s for s in samples if s is not None and not isinstance(s, BadSample)]
    if not samples:
        return {"__key__": [], "__index__": torch.zeros(0, dtype=torch.int64)}
    out = {"__key__": [s.key for s in samples],
           "__index__": torch.tensor([s.index for s in samples], dtype=torch.int64)}
    for name in samples[0]:
        values = [s[name] for s in samples]
        if name == label:
            out[name] = torch.tensor(values, dtype=torch.int64)
        elif all(isinstance(v, np.ndarray) and v.shape == values[0].shape and v.ndim > 1
                 for v in values):
            out[name] = torch.from_numpy(np.stack(values))
        else:
            out[name] = [v.tobytes() if isinstance(v, memoryview) else v for v in values]
    return out


def _as_is(batch):
    return batch


class _Collate:
    """default_collate with a label field (picklable for spawned workers)."""

    def __init__(self, label):
        self.label = label

    def __call__(self, samples):
        return default_collate(samples, self.label)


class _KeepErrors:
    """A collate_fn given for an IterableDataset that skips bad samples sees
    the batch, never the records that travel beside it."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, item):
        if type(item) is _WithErrors:
            batch = self.collate(item.batch) if item.batch is not None else None
            return _WithErrors(batch, item.errors)
        return self.collate(item)


class _DropBad:
    """Wraps a map-style loader's collate_fn when bad samples are skipped:
    BadSample records are taken out of the batch before it is collated and
    handed to the training process beside it (_WithErrors)."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, samples):
        if isinstance(samples, BadSample):  # batch_size=None: one sample
            return _WithErrors(None, [samples])
        if not isinstance(samples, list) or not any(isinstance(s, BadSample) for s in samples):
            return self.collate(samples)
        good = [s for s in samples if not isinstance(s, BadSample)]
        bad = [s for s in samples if isinstance(s, BadSample)]
        return _WithErrors(self.collate(good) if good else None, bad)


class Packed:
    """A variable-size field of a packed batch (IterableDataset(packed=True)):
    `data`, a uint8 tensor of every sample's bytes end to end, and `offsets`,
    int64 [B + 1]; sample k's bytes are data[offsets[k]:offsets[k + 1]].
    Two tensors per field instead of B Python objects: DataLoader moves them
    from workers through shared memory."""

    __slots__ = ("data", "offsets")

    def __init__(self, data, offsets):
        self.data = data
        self.offsets = offsets

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, k):
        """Sample k's bytes as a uint8 tensor (a view, no copy)."""
        if not -len(self) <= k < len(self):
            raise IndexError(f"sample {k} is out of range: the batch has {len(self)}")
        k %= len(self)
        return self.data[int(self.offsets[k]):int(self.offsets[k + 1])]

    def tolist(self):
        """Every sample's bytes as a list of bytes objects (copies)."""
        raw, off = self.data.numpy().tobytes(), self.offsets.tolist()
        return [raw[off[k]:off[k + 1]] for k in range(len(self))]

    def __reduce__(self):
        return (Packed, (self.data, self.offsets))


def _packed_batch(raw):
    out = {}
    for name, v in raw.items():
        if isinstance(v, tuple):
            out[name] = Packed(torch.from_numpy(v[0]), torch.from_numpy(v[1]))
        elif isinstance(v, np.ndarray):
            out[name] = torch.from_numpy(v)
        else:
            out[name] = v
    return out


class IterableDataset(_Policy, _data.IterableDataset):
    """Yields whole batches of one rank's epoch order; batch b goes to
    DataLoader worker b % num_workers, which is the order the DataLoader hands
    batches out in, so what comes out is the same sequence for any number of
    workers. Use it with this module's DataLoader (batch_size=None is set).

    Each batch is read (and `decode`d, by `threads` C++ threads) with one
    call, then each sample goes through `transform` and the list through
    `collate` (default_collate). `drop_last` leaves out a last, short batch.

    `packed=True` skips the per-sample objects: each batch is one C++ call
    that returns, per field, one buffer for the whole batch (`Packed` for
    encoded bytes, a uint8 tensor [B, H, W, C] for `decode`d images, int64
    for `label`), plus `__key__` and `__index__`. It cannot be combined with
    `transform` or `collate` (they work on samples).

    `on_error`: a sample that cannot be read raises (an Error naming the
    shard and the sample: "raise", the default), or is left out of its batch
    and counted ("skip"; "warn" also warns once per bad sample): the batch
    is shorter (`__index__` says which samples it holds), never padded with
    another sample, and a batch left empty is not yielded. Through this
    module's DataLoader the counts reach the training process
    (`loader.errors`); iterated directly, `errors` counts them.
    """

    def __init__(self, target, *, batch_size, shuffle=True, seed=0, order="uniform",
                 block_size=4096, window=8, rank=None, world_size=None, uneven="pad",
                 drop_last=False, decode=(), label=None, threads=1, transform=None,
                 collate=None, packed=False, verify_checksums=True, on_error="raise"):
        self._init_policy(on_error)
        if batch_size < 1:
            raise ValueError("batch_size must be 1 or more")
        if packed and (transform is not None or collate is not None):
            raise ValueError("packed=True yields whole batches; transform and collate work on "
                             "samples: use one or the other")
        self._opened = _Opened(target, verify_checksums)
        self.plan = _Plan(self._opened.n, shuffle=shuffle, seed=seed, order=order,
                          block_size=block_size, window=window, rank=rank,
                          world_size=world_size, uneven=uneven)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.decode = (decode,) if isinstance(decode, str) else tuple(decode)
        self.label = label
        self.threads = threads
        self.transform = transform
        self.collate = collate
        self.packed = packed
        self.epoch = 0
        self.start_batch = 0

    def batches_per_epoch(self):
        n = self.plan.per_rank
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self):
        return self.batches_per_epoch() - self.start_batch

    def set_epoch(self, epoch, start_batch=0):
        self.epoch = epoch
        self.start_batch = start_batch

    def fingerprint(self):
        return {**self.plan.fingerprint(), "batch_size": self.batch_size,
                "drop_last": self.drop_last}

    def __iter__(self):
        info = _data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        positions = self.plan.positions(self.epoch)
        ds = self._opened.get()
        skip = self._log.policy != "raise"
        for b in range(self.start_batch + worker, self.batches_per_epoch(), workers):
            idx = positions[b * self.batch_size:(b + 1) * self.batch_size]
            bad = []
            if self.packed:
                if skip:
                    raw, bad = ds._read_packed_checked(idx, self.decode, self.label, self.threads)
                else:
                    raw = ds.read_packed(idx, self.decode, self.label, self.threads)
                batch = _packed_batch(raw) if raw is not None else None
            else:
                if skip:
                    samples = ds._read_checked(idx, self.decode, self.threads)
                    bad = [s for s in samples if isinstance(s, BadSample)]
                    if bad:
                        samples = [s for s in samples if not isinstance(s, BadSample)]
                else:
                    samples = ds.read_batch(idx, self.decode, self.threads)
                batch = self._collate(samples) if samples else None
            if not bad:
                yield batch
            elif self._to_loader:
                yield _WithErrors(batch, bad)  # the DataLoader counts them
            else:
                for s in bad:
                    self._log.add(s)
                if batch is not None:
                    yield batch

    def _collate(self, samples):
        if self.label is not None:
            for s in samples:
                s[self.label] = _label(s, self.label)
        if self.transform is not None:
            samples = [self.transform(s) for s in samples]
        if self.collate is not None:
            return self.collate(samples)
        if self.transform is None:
            return default_collate(samples, self.label)
        return _data.default_collate(samples)


class DataLoader(_data.DataLoader):
    """torch's DataLoader that knows where it is: state_dict() after any
    batch, load_state_dict() before iterating, and the next pass yields the
    rest of that epoch exactly (with any num_workers). For an IterableDataset
    it sets batch_size=None (the dataset batches); for a map-style dataset it
    makes a Sampler from `shuffle`, `seed`, `order`, `rank`, `world_size`,
    `uneven` unless one is given (then it must be a shardset Sampler).

    With a dataset's on_error="skip" or "warn", the samples it skips in any
    worker are counted here, in the training process: `errors` (since the
    loader was made; each time a bad sample is read), `bad_samples` (the
    first 1000, shardset.BadSample with their epoch), and the dataset's own
    `errors`; "warn" warns here, once per bad sample. A batch left without
    samples is not yielded (it still counts as handed out, for resume)."""

    def __init__(self, dataset, *, batch_size=1, shuffle=True, seed=0, order="uniform",
                 block_size=4096, window=8, rank=None, world_size=None, uneven="pad",
                 sampler=None, drop_last=False, **kw):
        if kw.get("persistent_workers"):
            raise ValueError("persistent_workers would keep the epoch and resume point the "
                             "workers started with; leave it off")
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if sampler is not None:
                raise ValueError("an IterableDataset orders itself; give no sampler")
            # The batches are made: hand them over as they are (torch's
            # default would turn every field array into a tensor).
            if kw.get("collate_fn") is not None and dataset.on_error != "raise":
                kw["collate_fn"] = _KeepErrors(kw["collate_fn"])
            kw.setdefault("collate_fn", _as_is)
            super().__init__(dataset, batch_size=None, **kw)
            self._batch_size = dataset.batch_size
        else:
            if sampler is None:
                sampler = Sampler(dataset, shuffle=shuffle, seed=seed, order=order,
                                  block_size=block_size, window=window, rank=rank,
                                  world_size=world_size, uneven=uneven)
            elif not isinstance(sampler, Sampler):
                raise TypeError("sampler must be a shardset.torch.Sampler (it resumes)")
            if (kw.get("collate_fn") is None and isinstance(dataset, Dataset)
                    and dataset.transform is None):
                kw["collate_fn"] = _Collate(dataset.label)
            if isinstance(dataset, Dataset) and dataset.on_error != "raise":
                kw["collate_fn"] = _DropBad(kw.get("collate_fn") or _data.default_collate)
            super().__init__(dataset, batch_size=batch_size, sampler=sampler,
                             drop_last=drop_last, **kw)
            self._batch_size = batch_size
        self._epoch = 0
        self._done = 0  # batches of the epoch handed out
        policy = getattr(dataset, "on_error", "raise")
        self._log = shardset._ErrorLog(policy)

    @property
    def errors(self):
        """Bad samples skipped since this loader was made, in every worker,
        each time it was read (a bad sample read every epoch counts every
        epoch)."""
        return self._log.count

    @property
    def bad_samples(self):
        """The first 1000 of them: shardset.BadSample(index, key, error,
        epoch)."""
        return list(self._log.samples)

    def set_epoch(self, epoch):
        """Starts `epoch` from its beginning, unless a loaded state is in
        that epoch: then from where the state left it."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._done = 0

    def __iter__(self):
        if self._iterable:
            self.dataset.set_epoch(self._epoch, self._done)
        else:
            self.sampler.set_epoch(self._epoch, self._done * self._batch_size)
        reporting = isinstance(self.dataset, _Policy) and self._log.policy != "raise"
        if reporting:
            # Workers start (and copy the dataset) in super().__iter__():
            # from now on they hand bad samples over instead of counting them.
            self.dataset._to_loader = True
        try:
            for batch in super().__iter__():
                self._done += 1
                if type(batch) is _WithErrors:
                    for bad in batch.errors:
                        bad = bad._replace(epoch=self._epoch)
                        self._log.add(bad)
                        self.dataset._log.count += 1
                        if len(self.dataset._log.samples) < self.dataset._log.KEEP:
                            self.dataset._log.samples.append(bad)
                    batch = batch.batch
                    if batch is None:
                        continue
                yield batch
        finally:
            if reporting:
                self.dataset._to_loader = False
        self._done = 0  # the epoch is complete; iterating again repeats it

    def __len__(self):
        if self._iterable:
            return len(self.dataset)
        return super().__len__()

    def _fingerprint(self):
        if self._iterable:
            return self.dataset.fingerprint()
        return {**self.sampler.plan.fingerprint(), "batch_size": self._batch_size,
                "drop_last": self.drop_last}

    def state_dict(self):
        """Where the loader is: epoch, batches of it handed out, and what the
        order depends on (checked when loading)."""
        return {"epoch": self._epoch, "batches": self._done, "plan": self._fingerprint()}

    def load_state_dict(self, state):
        mine = self._fingerprint()
        theirs = state.get("plan", {})
        if theirs != mine:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise ValueError(f"the state was saved by a loader with other {', '.join(diff)}; "
                             "resume with the same dataset, seed, order, ranks and batch size")
        self._epoch = state["epoch"]
        self._done = state["batches"]
