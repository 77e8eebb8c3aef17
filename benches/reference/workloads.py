"""PyTorch reference for `cargo xtask bench`: the same workloads as harden's `workload` binary.

Usage: python3 workloads.py <fgsm-rs-epoch|pgd10-epoch|standard-eval|predict-mnist|predict-text|text-clean-epoch|text-freelb-epoch> <samples> <threads> <data_dir>
Prints one JSON line in the schema of harden's workload binary. Needs torch (CPU is enough);
standard-eval also needs torchattacks (its AutoAttack, standard version), the text workloads
HF tokenizers.
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
        text_epoch(workload, threads, data_dir)
        return
    if workload == "predict-text":
        predict_text(threads)
        return
    images = read_idx(f"{data_dir}/mnist/train-images-idx3-ubyte.gz").float().div(255).unsqueeze(1)
    labels = read_idx(f"{data_dir}/mnist/train-labels-idx1-ubyte.gz").long()
    test_x = read_idx(f"{data_dir}/mnist/t10k-images-idx3-ubyte.gz").float().div(255).unsqueeze(1)
    test_y = read_idx(f"{data_dir}/mnist/t10k-labels-idx1-ubyte.gz").long()
    model = small_cnn()
    if workload == "standard-eval":
        standard_eval(model, images, labels, test_x, test_y, samples, threads)
        return
    if workload == "predict-mnist":
        predict_mnist(model, test_x, test_y, samples, threads)
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


class TextTransformer(nn.Module):
    """harden's default `text-transformer`: token and learned position embeddings (BERT's
    N(0, 0.02)), a post-norm encoder (width 64, 2 layers, 4 heads, feed-forward 128, GELU,
    dropout 0.1, as burn's `TransformerEncoder`), mean pooling over the real tokens, a linear
    head."""

    def __init__(self, vocab, max_len=128, width=64, layers=2, heads=4, ff=128, dropout=0.1):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(max_len, width)
        for e in (self.tokens, self.positions):
            nn.init.normal_(e.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, ff, dropout, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, 2)

    def forward_embedded(self, emb, pad):
        positions = torch.arange(emb.shape[1]).unsqueeze(0)
        h = self.encoder(emb + self.positions(positions), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1))


def text_batches(data_dir, seed=0):
    """SpamAssassin split in harden's proportions (a fifth for test, a fifth of the rest for
    validation, per label; other texts than harden's draw), with a WordPiece tokenizer of 8,000
    tokens trained on the training split (BERT normaliser and pre-tokenizer, minimum frequency
    2, [PAD] = 0, [UNK] = 1), texts truncated at 128 tokens."""
    import csv
    import random
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    csv.field_size_limit(1 << 30)
    with open(f"{data_dir}/text/spamassassin/spamassassin.tsv", newline="", encoding="utf-8") as f:
        rows = [(r["text"], int(r["label"])) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    rng = random.Random(seed)
    train, valid = [], []
    for label in (0, 1):
        group = [r for r in rows if r[1] == label]
        rng.shuffle(group)
        rest = group[len(group) // 5 :]
        valid += rest[: len(rest) // 5]
        train += rest[len(rest) // 5 :]
    rng.shuffle(train)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator([t for t, _ in train], trainers.WordPieceTrainer(
        vocab_size=8000, min_frequency=2, show_progress=False, special_tokens=["[PAD]", "[UNK]"]))
    tok.enable_truncation(128)
    encode = lambda texts: [e.ids for e in tok.encode_batch(texts)]
    return tok.get_vocab_size(), (encode([t for t, _ in train]), [y for _, y in train]), \
        (encode([t for t, _ in valid]), [y for _, y in valid])


def pad_batch(seqs):
    """Token ids `[B, L]` padded with 0 to the longest sequence, and the padding mask."""
    longest = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), longest, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, ids == 0


def text_epoch(workload, threads, data_dir):
    """One epoch (batch 32, Adam 2e-3) of the Transformer on SpamAssassin's training split,
    clean or FreeLB as Zhu et al. write it: 3 ascent steps of 0.01 on a zero-started
    perturbation of the token embeddings (normalised per text, padding untouched), each step's
    loss backpropagated into the parameters, one optimiser step per batch. Tokenizer training is
    not timed."""
    vocab, (train_x, train_y), (valid_x, valid_y) = text_batches(data_dir)
    model = TextTransformer(vocab)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps, adv_lr = 3, 0.01
    losses = []
    model.train()
    start = time.perf_counter()
    for i in range(0, len(train_x), 32):
        ids, pad = pad_batch(train_x[i : i + 32])
        y = torch.tensor(train_y[i : i + 32])
        opt.zero_grad()
        if workload == "text-clean-epoch":
            loss = F.cross_entropy(model.forward_embedded(model.tokens(ids), pad), y)
            loss.backward()
        else:
            keep = (~pad).unsqueeze(-1).float()
            delta = torch.zeros(*ids.shape, model.tokens.embedding_dim)
            total = 0.0
            for _ in range(steps):
                delta.requires_grad_(True)
                loss = F.cross_entropy(model.forward_embedded(model.tokens(ids) + delta, pad), y) / steps
                loss.backward()
                total += loss.item()
                grad = delta.grad.detach() * keep
                norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1)
                delta = (delta.detach() + adv_lr * grad / norm) * keep
            loss = torch.tensor(total)
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(valid_x), 64):
            ids, pad = pad_batch(valid_x[i : i + 64])
            right += (model.forward_embedded(model.tokens(ids), pad).argmax(1) == torch.tensor(valid_y[i : i + 64])).sum().item()
    acc = right / len(valid_x)
    checks = {
        "loss_finite": all(l == l and abs(l) != float("inf") for l in losses),
        "valid_accuracy": acc,
        # A third of SpamAssassin is spam: one epoch must beat predicting ham.
        "accuracy_above_majority": acc > 0.7,
    }
    report(workload, threads, len(train_x), seconds, checks)


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


def predict_mnist(model, test_x, test_y, samples, threads):
    """The forward pass `harden predict` times: the weights harden's `predict-mnist` run saved
    to `HARDEN_BENCH_WEIGHTS` on the first `samples` test images, in batches of 64, classes and
    softmax probabilities."""
    weights = os.environ.get("HARDEN_BENCH_WEIGHTS")
    if not (weights and os.path.exists(weights)):
        print(json.dumps({"workload": "predict-mnist", "skipped": "needs harden's weights"}))
        return
    from safetensors.torch import load_file
    model.load_state_dict(load_file(weights))
    model.eval()
    x, y = test_x[:samples], test_y[:samples]
    classes, probabilities = [], []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), 64):
            logits = model(x[i : i + 64])
            classes.append(logits.argmax(1))
            probabilities.append(F.softmax(logits, 1))
    classes = torch.cat(classes)
    seconds = time.perf_counter() - start
    acc = (classes == y).float().mean().item()
    report("predict-mnist", threads, len(x), seconds, {
        "clean_accuracy": acc, "accuracy_above_chance": acc > 0.2})


def predict_text(threads):
    """The text Transformer's prediction path on the texts harden's `predict-text` run wrote
    beside `HARDEN_BENCH_WEIGHTS`, tokenised with its tokenizer (truncated at 128 tokens), in
    batches of 64: tokenisation, forward pass and softmax timed. The weights are this
    architecture's initial ones: the same work as harden's trained weights."""
    from tokenizers import Tokenizer
    weights = os.environ.get("HARDEN_BENCH_WEIGHTS", "")
    folder = os.path.dirname(weights)
    tok_path = os.path.join(folder, "predict-text-tokenizer.json")
    texts_path = os.path.join(folder, "predict-text-texts.txt")
    if not (os.path.exists(tok_path) and os.path.exists(texts_path)):
        print(json.dumps({"workload": "predict-text", "skipped": "needs harden's tokenizer and texts"}))
        return
    tok = Tokenizer.from_file(tok_path)
    tok.enable_truncation(128)
    with open(texts_path, encoding="utf-8") as f:
        texts = f.read().splitlines()
    model = TextTransformer(tok.get_vocab_size())
    model.eval()
    answers = 0
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            seqs = [e.ids or [1] for e in tok.encode_batch(texts[i : i + 64], add_special_tokens=False)]
            ids, pad = pad_batch(seqs)
            logits = model.forward_embedded(model.tokens(ids), pad)
            answers += len(F.softmax(logits, 1))
    seconds = time.perf_counter() - start
    report("predict-text", threads, len(texts), seconds, {"answers": answers == len(texts)})


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
