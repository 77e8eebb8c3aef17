"""PyTorch reference for `benches/benches/text_ops.rs`: the same operations and shapes.

Usage: python3 text_ops.py <threads>
Prints one line per operation: name, median milliseconds over 50 calls, million elements per
second (the elements of the operation's input, as criterion's throughput counts them).
"""

import sys

import torch
import torch.nn.functional as F

from ops import median_ms

BATCH, LEN, WIDTH, FF, HEADS = 32, 128, 64, 128, 4


def report(name, elements, fn):
    ms = median_ms(fn)
    print(f"{name:32s} {ms:8.3f} ms {elements / ms / 1e3:10.1f} Melem/s")


def main():
    torch.set_num_threads(int(sys.argv[1]))
    hidden = torch.rand(BATCH, LEN, WIDTH)
    ff = torch.rand(BATCH, LEN, FF)
    scores = torch.rand(BATCH, HEADS, LEN, LEN)
    w = torch.rand(FF, WIDTH)
    with torch.no_grad():
        report("dropout mask [32, 128, 64]", hidden.numel(), lambda: torch.bernoulli(torch.full_like(hidden, 0.9)))
        report("dropout [32, 128, 64]", hidden.numel(), lambda: F.dropout(hidden, 0.1, training=True))
        report("layer norm [32, 128, 64]", hidden.numel(), lambda: F.layer_norm(hidden, (WIDTH,)))
        report("gelu [32, 128, 128]", ff.numel(), lambda: F.gelu(ff))
        report("linear [4096, 64] x [64, 128]", ff.numel(), lambda: F.linear(hidden, w))
        report("exp [32, 4, 128, 128]", scores.numel(), lambda: torch.exp(scores))
        report("softmax [32, 4, 128, 128]", scores.numel(), lambda: torch.softmax(scores, -1))


if __name__ == "__main__":
    main()
