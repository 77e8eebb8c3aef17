"""Whether two builds of `harden` give the same results, bit for bit: the same `harden train`
runs (an image run and a table run) and the same `harden eval` and `harden predict` answers,
on the flex CPU backend. Times are masked and weights compared tensor by tensor (burn writes a
random id per parameter, and safetensors headers in no fixed order, so the same build run twice
writes other bytes); everything else in the run files and reports must agree.

    python3 benches/profile/compare_builds.py /tmp/cpu/release/harden /tmp/full/release/harden

Prints one line per compared file and exits 1 if any differs.
"""

import hashlib
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# Keys whose values are times or machine descriptions, not results.
MASKED = {"seconds", "samples_per_second", "elapsed_seconds", "started", "finished",
          "train_seconds", "eval_seconds", "total_seconds", "timestamp", "date", "binary"}

RUNS = {
    "digits": ["--epochs", "10"],
    "cancer": ["--dataset", "breast-cancer", "--epochs", "10"],
}


def masked(value):
    if isinstance(value, dict):
        return {k: ("<masked>" if k in MASKED or k.endswith("_seconds") else masked(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def safetensors(data):
    """A safetensors file's tensors (name, dtype, shape, bytes) and metadata, in name order:
    its header's key order is not fixed."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = [(k, v["dtype"], v["shape"], hashlib.sha256(body[slice(*v["data_offsets"])]).hexdigest())
               for k, v in sorted(header.items())]
    return json.dumps([sorted(meta.items()), tensors])


def burnpack(data):
    """A burnpack file's data section: its header holds a random id per parameter, drawn anew
    by every process."""
    assert data[:4] == b"NRUB", "not a burnpack file"
    header = struct.unpack("<I", data[6:10])[0]
    return hashlib.sha256(data[10 + header :]).hexdigest()


def canonical(path, root):
    """A file's content with times masked and the folder `root` named `<dir>`: JSON and JSON
    lines parsed, weights by their tensors, others hashed."""
    data = path.read_bytes().replace(str(root).encode(), b"<dir>")
    if path.suffix == ".safetensors":
        return safetensors(data)
    if path.suffix == ".bpk":
        return burnpack(data)
    if path.suffix == ".json":
        return json.dumps(masked(json.loads(data)), sort_keys=True)
    if path.suffix == ".jsonl":
        return "\n".join(json.dumps(masked(json.loads(l)), sort_keys=True)
                         for l in data.decode().splitlines())
    return hashlib.sha256(data).hexdigest()


def run(binary, args, out=None):
    result = subprocess.run([binary, *args], capture_output=True, check=True)
    if out is not None:
        out.write_bytes(result.stdout)


def outputs(binary, folder):
    """Runs every command with `binary`, its files under `folder`."""
    for name, args in RUNS.items():
        run_dir = folder / name
        run(binary, ["train", *args, "--device", "flex", "--quiet", "--out", str(run_dir)])
        run(binary, ["eval", str(run_dir), "--suite", "standard", "--eps", "0.1",
                     "--samples", "100", "--device", "flex"], folder / f"{name}-eval.json")
        run(binary, ["predict", str(run_dir), "--test-split", "--device", "flex"],
            folder / f"{name}-predict.jsonl")


def main(a, b):
    with tempfile.TemporaryDirectory() as tmp:
        left, right = Path(tmp) / "a", Path(tmp) / "b"
        outputs(a, left)
        outputs(b, right)
        files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
        differ = compared = 0
        for f in files:
            if f.parts[-2:-1] == ("checkpoint",) and f.name.startswith("optim-"):
                # Optimizer states are keyed by the random parameter ids: the weights they
                # produce are compared instead.
                print(f"skipped  {f}")
                continue
            other = right / f
            same = other.is_file() and canonical(left / f, left) == canonical(other, right)
            differ += not same
            compared += 1
            print(f"{'same' if same else 'DIFFERS'}  {f}")
        print(f"{compared - differ} of {compared} files the same")
        return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
