#!/usr/bin/env python3
"""Trains a small CNN on Fashion-MNIST from shards, on CPU (docs/python.md).

    python python/examples/train_fashion_mnist.py --train fm-train --test fm-test

--train and --test are anything shardset opens (dataset folders, views,
tar/zip/tar.gz archives) whose samples have a PNG field `png` and a label
field `cls` (`shardset pack TREE --label-from-dir` makes those). Each epoch
reads the training set in a fresh uniformly random order (--order uniform),
decoding the PNGs in the DataLoader's workers with C++ threads; --order none
reads it in its stored order instead (for a label-sorted dataset: seed 001's
unshuffled stream), to show what shuffling is for. --resume continues from the
checkpoint, mid-epoch if it was saved mid-epoch (--stop-after N stops there).
Prints one JSON line per epoch: loss, test accuracy, samples/s.
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from shardset.torch import DataLoader, IterableDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def images(batch):
    # uint8 [B, 28, 28, 1] -> float [B, 1, 28, 28] in [0, 1]
    return batch["png"].permute(0, 3, 1, 2).float().div_(255.0)


def evaluate(model, target, workers):
    ds = IterableDataset(target, batch_size=1000, shuffle=False, decode="png", label="cls",
                         threads=2)
    correct = total = 0
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(ds, num_workers=workers):
            pred = model(images(batch)).argmax(1)
            correct += (pred == batch["cls"]).sum().item()
            total += len(pred)
    model.train()
    return correct / total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--order", default="uniform", choices=["uniform", "blocks", "none"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--checkpoint", default=None, help="save model, optimizer and loader here")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (after saving the checkpoint) once this many batches ran")
    p.add_argument("--threads", type=int, default=max(1, torch.get_num_threads()))
    a = p.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    train = IterableDataset(a.train, batch_size=a.batch_size, seed=a.seed,
                            shuffle=a.order != "none", order=a.order if a.order != "none" else
                            "uniform", decode="png", label="cls")
    loader = DataLoader(train, num_workers=a.workers)
    start_epoch = 0
    if a.resume:
        ck = torch.load(a.checkpoint)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        loader.load_state_dict(ck["loader"])
        torch.set_rng_state(ck["rng"])
        start_epoch = ck["loader"]["epoch"]

    def save():
        if a.checkpoint:
            tmp = a.checkpoint + ".tmp"
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "loader": loader.state_dict(), "rng": torch.get_rng_state()}, tmp)
            os.replace(tmp, a.checkpoint)

    ran = 0
    for epoch in range(start_epoch, a.epochs):
        loader.set_epoch(epoch)
        t0, seen, loss_sum, steps = time.monotonic(), 0, 0.0, 0
        for batch in loader:
            loss = F.cross_entropy(model(images(batch)), batch["cls"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(batch["cls"])
            loss_sum += loss.item()
            steps += 1
            ran += 1
            if a.stop_after and ran >= a.stop_after:
                save()
                print(json.dumps({"stopped": True, "epoch": epoch, "batches": ran}), flush=True)
                return
        elapsed = time.monotonic() - t0
        save()
        acc = evaluate(model, a.test, a.workers)
        print(json.dumps({"epoch": epoch, "order": a.order, "train_loss": loss_sum / max(1, steps),
                          "test_accuracy": acc, "samples_per_s": seen / elapsed,
                          "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    main()
