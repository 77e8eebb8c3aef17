"""Where a workload's time goes: reads `perf script` output of a `perf record --call-graph dwarf`
run of the `workload` binary and prints each operation's share of the timed part's samples.

    RAYON_NUM_THREADS=1 perf record -F 499 --call-graph dwarf,32768 -o w.data \
        target/release/workload pgd10-epoch flex 3000
    perf script -i w.data -F ip,sym | python3 benches/profile/shares.py pgd10-epoch

With one rayon thread the workload runs every kernel inline on the pool's worker (see
`workload.rs`), so each sample's stack names the burn operation and the harden code above it.
A sample is classified by the first rule of RULES that one of its frames matches; its leaf frame
gives the second table (what the CPU was doing: matrix kernels, vectorised element-wise loops,
memory). Samples outside the timed part (data loading, model set-up, the final accuracy) are
counted apart.
"""

import re
import sys
from collections import Counter

# Which frame marks the timed part of each workload.
TIMED = {
    "fgsm-rs-epoch": "workload::train_epoch",
    "pgd10-epoch": "workload::train_epoch",
    "standard-eval": "harden_adversarial::suite::evaluate",
}

# (operation, pattern): the first rule one of a sample's frames matches.
RULES = [
    ("conv weight gradient", r"conv2d_weight_backward"),
    ("conv input gradient", r"conv2d_x_backward"),
    ("conv forward", r"for burn_flex::backend::Flex>::conv2d\b"),
    ("matmul (linear layers)", r"matmul"),
    ("optimizer (Adam)", r"burn_optim|Adam"),
    ("autodiff graph bookkeeping", r"^burn_autodiff::(graph|runtime|checkpoint)"),
    ("element-wise and reductions", r"^burn_flex::|^macerator|burn_flex::ops"),
    ("harden's own code", r"^harden_|^workload::"),
]

# What the leaf frame was doing.
LEAVES = [
    ("matrix kernels (gemm)", r"^gemm"),
    ("vectorised element-wise (macerator)", r"^macerator"),
    ("memset / memcpy", r"mem(set|cpy|move)"),
    ("allocator", r"malloc|free|_int_|__rdl_|__rust_(alloc|dealloc|realloc)|realloc"),
    ("kernel (page faults, syscalls)", r"^\[kernel|^(asm_)?exc_|^clear_page|^do_|^__?handle|^entry_"),
    ("burn-flex loops", r"^burn_flex::"),
    ("burn-autodiff", r"^burn_autodiff::"),
    ("harden", r"^harden_"),
]


def samples(stream):
    frames = []
    for line in stream:
        line = line.strip()
        if not line:
            if frames:
                yield frames
            frames = []
            continue
        parts = line.split(None, 1)
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]+", parts[0]):
            frames.append(parts[1])
    if frames:
        yield frames


def first_rule(frames, rules):
    for name, pattern in rules:
        if any(re.search(pattern, f) for f in frames):
            return name
    return "other"


def main():
    workload = sys.argv[1]
    timed_frame = TIMED[workload]
    ops, leaves, outside, total = Counter(), Counter(), 0, 0
    for frames in samples(sys.stdin):
        total += 1
        if not any(timed_frame in f for f in frames):
            outside += 1
            continue
        ops[first_rule(frames, RULES)] += 1
        leaf = frames[0]
        kind = next((n for n, p in LEAVES if re.search(p, leaf)), "other")
        leaves[kind] += 1
    timed = total - outside
    print(f"{workload}: {timed} samples in the timed part, {outside} outside it")
    for title, counter in (("operation", ops), ("leaf", leaves)):
        print(f"\n| {title} | share |\n|---|---|")
        for name, n in counter.most_common():
            print(f"| {name} | {100 * n / timed:.1f}% |")


if __name__ == "__main__":
    main()
