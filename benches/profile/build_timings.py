"""Where a build's time goes: reads the HTML report of `cargo build --timings` and prints, as a
Markdown table, the compile seconds of each group of crates and their share of the whole.

    CARGO_TARGET_DIR=/tmp/cold cargo build --release -p harden-cli --timings
    python3 benches/profile/build_timings.py /tmp/cold/cargo-timings/cargo-timing.html

Each unit's duration is the time cargo spent compiling it (its build script runs included); with
several jobs at once the durations add up to more than the wall time, which the report also
prints. The groups are those of docs/building.md.
"""

import json
import re
import sys

# (group, crate-name pattern): a unit goes to the first group whose pattern matches its name.
GROUPS = [
    ("the GPU stack: wgpu, naga, cubecl, cubek, burn-cubecl, burn-wgpu, pliron",
     r"^(wgpu|naga|cubecl|cubek|burn-cubecl|burn-wgpu|pliron)"),
    ("burn-ndarray with ndarray and matrixmultiply", r"^(burn-ndarray|ndarray|matrixmultiply)$"),
    ("burn-flex", r"^burn-flex$"),
    ("burn-dispatch", r"^burn-dispatch$"),
    ("harden's own crates", r"^harden-"),
    ("everything else", r""),
]


def units(html):
    """The UNIT_DATA array cargo embeds in its timing report."""
    match = re.search(r"const UNIT_DATA = (\[.*?\]);\s*\n", html, re.S)
    if not match:
        sys.exit("no UNIT_DATA in this file: is it cargo-timing.html?")
    return json.loads(match.group(1))


def main(path):
    html = open(path, encoding="utf-8").read()
    data = units(html)
    seconds = {name: 0.0 for name, _ in GROUPS}
    for unit in data:
        for name, pattern in GROUPS:
            if re.search(pattern, unit["name"]):
                seconds[name] += unit["duration"]
                break
    total = sum(seconds.values())
    wall = max(u["start"] + u["duration"] for u in data)
    print("| what | compile seconds | share |")
    print("|---|---|---|")
    for name, _ in GROUPS:
        print(f"| {name} | {seconds[name]:,.0f} | {100 * seconds[name] / total:.0f}% |")
    print(f"| all {len(data)} units | {total:,.0f} | 100% |")
    print(f"\nwall time {wall / 60:.1f} min")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
