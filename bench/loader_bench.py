#!/usr/bin/env python3
"""PyTorch loading, side by side (bench/run.sh --only loader; issue 6
acceptance 6): one epoch over the same Fashion-MNIST PNGs through

  shardset.torch   IterableDataset (bytes only, and PNG decoded in C++) and
                   the map-style Dataset + Sampler (decoded), from a native
                   dataset;
  torchvision      ImageFolder + DataLoader over the PNG tree (PIL decode);
  WebDataset       the tar shards `shardset pack --format tar` writes (the
                   WebDataset layout: key.png + key.cls), bytes and decoded;
  MosaicML         Streaming's StreamingDataset over MDS shards written by its
                   MDSWriter, bytes and decoded.

Every loader shuffles, uses the same DataLoader worker count and batch size,
and yields every sample of the epoch once; decoded means a uint8 tensor
[B, 28, 28] (or [B, 28, 28, 1]) and int64 labels per batch. The time is the
whole epoch from creating the DataLoader's iterator to its last batch (worker
start-up included: what a training loop waits for), median of --reps.

  loader_bench.py prepare TREE WORK --shardset BIN
  loader_bench.py run WORK --out results.json [--workers 2] [--batch 256] [--reps 3]
                       [--only NAME,...]
  loader_bench.py locality DATASET --out results.json [--reps 2]

locality measures shardset.torch's orders on a dataset stored in label order
(the small corpus: 1,000 folders): one epoch of an IterableDataset (bytes,
2 workers) with order none, blocks and uniform, from a cold page cache
(caches dropped before each epoch where /proc/sys/vm/drop_caches is writable,
else warm), and how shuffled each order is: the share of neighbours from the
same folder (a random order: about 1/labels).
"""
import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import warnings

import numpy as np


def prepare(args):
    tree = os.path.join(args.tree, "training")
    work = args.work
    os.makedirs(work, exist_ok=True)
    ss = args.shardset
    native = os.path.join(work, "native")
    if not os.path.exists(os.path.join(native, "manifest.json")):
        subprocess.run([ss, "pack", tree, "-o", native, "--label-from-dir", "-q", "--no-sync"],
                       check=True)
    wds = os.path.join(work, "wds")
    if not os.path.exists(os.path.join(wds, "manifest.json")):
        # 16 shards of ~4.6 MB: enough for WebDataset to split among workers.
        subprocess.run([ss, "pack", tree, "-o", wds, "--format", "tar", "--label-from-dir",
                        "--shard-samples", "3750", "-q", "--no-sync"], check=True)
    mds = os.path.join(work, "mds")
    if not os.path.exists(os.path.join(mds, "index.json")):
        from streaming import MDSWriter
        import shardset
        ds = shardset.open(native)
        tmp = mds + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        with MDSWriter(out=tmp, columns={"png": "bytes", "cls": "int"}, compression=None,
                       size_limit=1 << 26) as w:
            for s in ds:
                w.write({"png": s.bytes("png"), "cls": int(s.text("cls"))})
        os.rename(tmp, mds)
    inputs = {"native": native, "wds": wds, "mds": mds, "tree": tree}
    with open(os.path.join(work, "inputs.json"), "w") as f:
        json.dump(inputs, f)
    print(json.dumps(inputs))


# ---- the loaders -----------------------------------------------------------------
# Each returns (DataLoader, function batch -> number of samples in it).

def shardset_iterable(work, workers, batch, decode):
    from shardset.torch import DataLoader, IterableDataset
    ds = IterableDataset(os.path.join(work, "native"), batch_size=batch, seed=1,
                         decode="png" if decode else (), label="cls", threads=1)
    return DataLoader(ds, num_workers=workers), lambda b: len(b["cls"])


def shardset_packed(work, workers, batch, decode):
    from shardset.torch import DataLoader, IterableDataset
    ds = IterableDataset(os.path.join(work, "native"), batch_size=batch, seed=1,
                         decode="png" if decode else (), label="cls", threads=1, packed=True)
    return DataLoader(ds, num_workers=workers), lambda b: len(b["cls"])


def shardset_map(work, workers, batch, decode):
    from shardset.torch import DataLoader, Dataset
    ds = Dataset(os.path.join(work, "native"), decode="png" if decode else (), label="cls")
    return (DataLoader(ds, batch_size=batch, seed=1, num_workers=workers),
            lambda b: len(b["cls"]))


def imagefolder(work, workers, batch, decode):
    import torch.utils.data as data
    import torchvision
    from torchvision.transforms import PILToTensor
    tree = _tree(work)
    ds = torchvision.datasets.ImageFolder(tree, transform=PILToTensor())
    return (data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers),
            lambda b: len(b[1]))


def _tree(work):
    with open(os.path.join(work, "inputs.json")) as f:
        return json.load(f)["tree"]


def _decode_png_l(data):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)))


def webdataset(work, workers, batch, decode):
    import glob
    import torch
    import webdataset as wds
    urls = sorted(glob.glob(os.path.join(work, "wds", "shard-*.tar")))
    ds = wds.WebDataset(urls, shardshuffle=len(urls), nodesplitter=wds.split_by_node,
                        workersplitter=wds.split_by_worker, empty_check=False).shuffle(1000)
    if decode:
        ds = ds.decode("l8")
    ds = ds.to_tuple("png", "cls").map_tuple(
        (lambda x: torch.from_numpy(x)) if decode else (lambda x: x),
        lambda c: int(c) if isinstance(c, (int, bytes, str)) else int(c))
    ds = ds.batched(batch, partial=True)
    return (wds.WebLoader(ds, batch_size=None, num_workers=workers), lambda b: len(b[1]))


def mosaic(work, workers, batch, decode):
    import torch
    from streaming import StreamingDataset
    import torch.utils.data as data

    class Decoded(StreamingDataset):
        def __getitem__(self, i):
            s = super().__getitem__(i)
            png = s["png"]
            return (torch.from_numpy(_decode_png_l(png)) if decode else png), s["cls"]

    local = os.path.join(work, "mds")
    ds = Decoded(local=local, shuffle=True, shuffle_seed=1, batch_size=batch)
    collate = None if decode else (lambda b: ([x[0] for x in b], torch.tensor([x[1] for x in b])))
    return (data.DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate),
            lambda b: len(b[1]))


LOADERS = {
    "shardset IterableDataset, bytes": (shardset_iterable, False),
    "shardset IterableDataset, decoded": (shardset_iterable, True),
    "shardset IterableDataset packed, bytes": (shardset_packed, False),
    "shardset IterableDataset packed, decoded": (shardset_packed, True),
    "shardset Dataset + Sampler, decoded": (shardset_map, True),
    "torchvision ImageFolder, decoded": (imagefolder, True),
    "WebDataset, bytes": (webdataset, False),
    "WebDataset, decoded": (webdataset, True),
    "MosaicML Streaming, bytes": (mosaic, False),
    "MosaicML Streaming, decoded": (mosaic, True),
}
# Raw bytes read in the training process itself (num_workers=0): for data in
# the page cache the workers' hand-over (pickling, shared memory) can cost
# more than the reads, so each loader's best setting is measured too.
IN_PROCESS = {
    "shardset IterableDataset packed, bytes, num_workers=0": (shardset_packed, False),
    "shardset IterableDataset, bytes, num_workers=0": (shardset_iterable, False),
    "WebDataset, bytes, num_workers=0": (webdataset, False),
    "MosaicML Streaming, bytes, num_workers=0": (mosaic, False),
}


def one_epoch(make, work, workers, batch, decode):
    """(seconds, samples, steady seconds, steady samples): the whole epoch
    from iter() (worker start-up included), and from the first batch on
    (the rate once running, what a long epoch sees)."""
    loader, count = make(work, workers, batch, decode)
    t0 = time.perf_counter()
    n = 0
    t1 = None
    for b in loader:
        n += count(b)
        if t1 is None:
            t1, n1 = time.perf_counter(), n
    t2 = time.perf_counter()
    return t2 - t0, n, t2 - t1, n - n1


def run(args):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # torch.from_numpy of a read-only array (PIL's, webdataset's) warns once
    # per process; the arrays are not written to.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    names = list(LOADERS) + list(IN_PROCESS) if not args.only else args.only.split(",")
    results = {}
    # Rounds of one epoch per loader, the order rotated each round: a drifting
    # machine load touches every loader alike.
    for r in range(args.reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            make, decode = LOADERS[name] if name in LOADERS else IN_PROCESS[name]
            workers = args.workers if name in LOADERS else 0
            try:
                t, n, st, sn = one_epoch(make, args.work, workers, args.batch, decode)
            except Exception as e:  # a peer that fails is reported, not fatal
                results.setdefault(name, {"error": f"{type(e).__name__}: {e}"})
                print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            e = results.setdefault(name, {"seconds": [], "samples": n, "steady_rates": []})
            e["seconds"].append(t)
            e["steady_rates"].append(sn / st)
            print(f"round {r + 1}: {name}: {n} samples in {t:.2f} s ({n / t:,.0f}/s; "
                  f"{sn / st:,.0f}/s after the first batch)", file=sys.stderr)
    for name, r in results.items():
        if "seconds" in r:
            r["median"] = statistics.median(r["seconds"])
            r["samples_per_s"] = r["samples"] / r["median"]
            r["steady_samples_per_s"] = statistics.median(r["steady_rates"])
    out = {"workers": args.workers, "batch": args.batch, "reps": args.reps, "loaders": results}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def locality(args):
    import shardset
    from shardset.torch import DataLoader, IterableDataset, epoch_order
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ds = shardset.open(args.dataset)
    n = len(ds)
    folders = np.array([hash(k.rsplit("/", 1)[0]) for k in (ds.key(i) for i in range(n))])
    results = {}
    for r in range(args.reps):
        for order in ("none", "blocks", "uniform"):
            positions = epoch_order(n, 1, 0, order)
            same = float(np.mean(folders[positions[1:]] == folders[positions[:-1]]))
            cold = drop_caches()
            loader = DataLoader(IterableDataset(args.dataset, batch_size=256, seed=1,
                                                order=order, shuffle=order != "none"),
                                num_workers=2)
            t0 = time.perf_counter()
            count = sum(len(b["__key__"]) for b in loader)
            t = time.perf_counter() - t0
            e = results.setdefault(order, {"seconds": [], "samples": count,
                                           "same_folder_neighbours": same, "cold": cold})
            e["seconds"].append(t)
            print(f"round {r + 1}: order {order}: {count} samples in {t:.2f} s "
                  f"({'cold' if cold else 'warm'}), {same:.2%} same-folder neighbours",
                  file=sys.stderr)
    for e in results.values():
        e["median"] = statistics.median(e["seconds"])
    with open(args.out, "w") as f:
        json.dump({"dataset": args.dataset, "samples": n, "reps": args.reps,
                   "orders": results}, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("tree")
    a.add_argument("work")
    a.add_argument("--shardset", required=True)
    b = sub.add_parser("run")
    b.add_argument("work")
    b.add_argument("--out", required=True)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--batch", type=int, default=256)
    b.add_argument("--reps", type=int, default=3)
    b.add_argument("--only")
    c = sub.add_parser("locality")
    c.add_argument("dataset")
    c.add_argument("--out", required=True)
    c.add_argument("--reps", type=int, default=2)
    args = p.parse_args()
    if args.verb == "locality":
        locality(args)
    elif args.verb == "prepare":
        prepare(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
