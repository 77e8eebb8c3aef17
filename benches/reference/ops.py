"""PyTorch reference for `benches/benches/ops.rs`: the same operations, shapes and batch.

Usage: python3 ops.py <threads>
Prints one line per operation: name, median milliseconds over 50 calls, samples per second.
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

BATCH = 100
CONVS = [
    ("conv1", (BATCH, 1, 28, 28), (16, 1, 4, 4)),
    ("conv2", (BATCH, 16, 14, 14), (32, 16, 4, 4)),
]


def median_ms(fn, calls=50):
    for _ in range(5):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def report(name, fn):
    ms = median_ms(fn)
    print(f"{name:36s} {ms:8.3f} ms {BATCH / ms * 1e3:10.0f} samples/s")


def main():
    torch.set_num_threads(int(sys.argv[1]))
    for name, x_shape, w_shape in CONVS:
        x, w = torch.rand(x_shape), torch.rand(w_shape)
        conv = lambda x, w: F.conv2d(x, w, stride=2, padding=1)
        with torch.no_grad():
            report(f"{name} forward", lambda: conv(x, w))
        # A dense output gradient, as in an attack (see ops.rs).
        upstream = torch.rand(conv(x, w).shape)
        xg = torch.rand(x_shape, requires_grad=True)
        report(f"{name} forward + input gradient", lambda: conv(xg, w).backward(upstream))
        wg = torch.rand(w_shape, requires_grad=True)
        report(f"{name} forward + weight gradient", lambda: conv(x, wg).backward(upstream))
        with torch.no_grad():
            report(
                f"{name} input gradient alone (conv_transpose2d)",
                lambda: F.conv_transpose2d(upstream, w, stride=2, padding=1),
            )
    x, w = torch.rand(BATCH, 32 * 7 * 7), torch.rand(100, 32 * 7 * 7)
    with torch.no_grad():
        report("fc1 forward", lambda: F.linear(x, w))


if __name__ == "__main__":
    main()
