"""PyTorch reference for `cargo xtask bench`: the same workloads as harden's `workload` binary.

Usage: python3 workloads.py <fgsm-rs-epoch|pgd10-epoch|standard-eval> <samples> <threads> <data_dir>
Prints one JSON line in the schema of harden's workload binary. Needs torch (CPU is enough);
standard-eval also needs torchattacks (its AutoAttack, standard version).
"""

import gzip
import json
import os
import resource
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 100


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    _, _, dtype, ndim = struct.unpack(">BBBB", data[:4])
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))


def attack(model, x, y, eps, alpha, steps, random_start, clamp_start):
    delta = torch.zeros_like(x)
    if random_start:
        delta.uniform_(-eps, eps)
        if clamp_start:
            delta = torch.max(torch.min(1 - x, delta), -x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y)
        grad, = torch.autograd.grad(loss, delta)
        delta = torch.clamp(delta.detach() + alpha * grad.sign(), -eps, eps)
        delta = torch.max(torch.min(1 - x, delta), -x)
    return (x + delta).detach()


def train_epoch(model, images, labels, order, workload):
    """One epoch of FGSM-RS or PGD-10 training over `order`; returns the losses and seconds."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if workload == "fgsm-rs-epoch":
        eps, alpha, steps, clamp_start = 0.1, 0.125, 1, False
    else:
        eps, alpha, steps, clamp_start = 0.1, 0.025, 10, True
    losses = []
    start = time.perf_counter()
    for i in range(0, len(order), BATCH):
        idx = order[i : i + BATCH]
        x, y = images[idx], labels[idx]
        adv = attack(model, x, y, eps, alpha, steps, True, clamp_start)
        loss = F.cross_entropy(model(adv), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, time.perf_counter() - start


def main():
    workload, samples, threads, data_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if workload.startswith("text-"):
        print(json.dumps({"workload": workload, "skipped": "no PyTorch reference for the text workloads yet"}))
        return
    images = read_idx(f"{data_dir}/mnist/train-images-idx3-ubyte.gz").float().div(255).unsqueeze(1)
    labels = read_idx(f"{data_dir}/mnist/train-labels-idx1-ubyte.gz").long()
    test_x = read_idx(f"{data_dir}/mnist/t10k-images-idx3-ubyte.gz").float().div(255).unsqueeze(1)
    test_y = read_idx(f"{data_dir}/mnist/t10k-labels-idx1-ubyte.gz").long()
    model = small_cnn()
    if workload == "standard-eval":
        standard_eval(model, images, labels, test_x, test_y, samples, threads)
        return
    order = torch.randperm(len(images))[:samples]
    losses, seconds = train_epoch(model, images, labels, order, workload)
    with torch.no_grad():
        acc = (model(test_x[:1000]).argmax(1) == test_y[:1000]).float().mean().item()
    q = max(len(losses) // 4, 1)
    first, last = sum(losses[:q]) / q, sum(losses[-q:]) / q
    checks = {
        "loss_finite": all(l == l and abs(l) != float("inf") for l in losses),
        "loss_falling": last < first,
        "loss_first_quarter": first,
        "loss_last_quarter": last,
        "clean_accuracy": acc,
        "accuracy_above_chance": acc > 0.2,
    }
    report(workload, threads, samples, seconds, checks)


def standard_eval(model, images, labels, test_x, test_y, samples, threads):
    """AutoAttack's standard version (torchattacks) on the first `samples` test images at L-inf
    eps 0.1, what harden's `standard-eval` workload runs with its `standard` suite: on the
    weights that workload saved to `HARDEN_BENCH_WEIGHTS` (safetensors) when given, else on a
    SmallCnn trained here for one FGSM-RS epoch on 10,000 images (not timed)."""
    try:
        import torchattacks
    except ImportError:
        print(json.dumps({"workload": "standard-eval", "skipped": "needs the torchattacks package"}))
        return
    weights = os.environ.get("HARDEN_BENCH_WEIGHTS")
    if weights and os.path.exists(weights):
        # The weights harden's run just trained and evaluated: the same model, attacked by both.
        from safetensors.torch import load_file
        model.load_state_dict(load_file(weights))
        source = "harden's"
    else:
        order = torch.randperm(len(images))[:10_000]
        train_epoch(model, images, labels, order, "fgsm-rs-epoch")
        source = "trained here"
    model.eval()
    x, y = test_x[:samples], test_y[:samples]
    attack = torchattacks.AutoAttack(model, norm="Linf", eps=0.1, version="standard", n_classes=10, seed=0)
    start = time.perf_counter()
    adv = attack(x, y)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
        robust = (model(adv).argmax(1) == y).float().mean().item()
    checks = {
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "accuracy_above_chance": clean > 0.2,
        "robust_at_most_clean": robust <= clean,
        "torchattacks": torchattacks.__version__,
        "weights": source,
    }
    report("standard-eval", threads, samples, seconds, checks)


def report(workload, threads, samples, seconds, checks):
    print(json.dumps({
        "workload": workload,
        "device": "pytorch-cpu",
        "threads": threads,
        "samples": samples,
        "seconds": seconds,
        "samples_per_second": samples / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checks": checks,
        "ok": all(v for v in checks.values() if isinstance(v, bool)),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
