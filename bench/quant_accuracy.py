#!/usr/bin/env python3
"""How much quantisation changes a model's predictions: KL divergence and top-1 agreement of the
logits of quantised files against a reference file (the unquantised model), over every position of
a text, computed from `herd logits --all`.

    python3 bench/quant_accuracy.py --reference MODEL_F32_OR_BF16 QUANTISED... \
        [--text FILE] [--positions 256] [--herd build/apps/herd/herd] [--json]

For each quantised file, per position p: KL(P_ref || P_q) = sum_v P_ref(v) (log P_ref(v) -
log P_q(v)) from float64 log-softmax of the two float32 logit rows, and whether the argmax agrees.
Printed: mean and 99th-percentile KL (nats), top-1 agreement, and the relative L2 distance of the
logit rows, like llama-perplexity's --kl-divergence statistics.

The tokens are the first --positions tokens of the text (default: the first 12,000 bytes of
/usr/share/common-licenses/GPL-3, plain English prose on every Debian machine), tokenized by
`herd tokenize` with the reference model's tokenizer; with --random, uniform random ids instead
(for models whose tokenizer is not a real one). Both runs use the same KV cache type (f32 unless
--cache-type says otherwise), so the difference is the weights' quantisation (and, as llama.cpp,
the 8-bit activations their integer dot products use).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_TEXT = "/usr/share/common-licenses/GPL-3"


def tokens_for(args):
    if args.random:
        rng = np.random.default_rng(1)
        vocab = args.vocab or 128256
        return [int(t) for t in rng.integers(0, vocab, args.positions)]
    with open(args.text, "rb") as f:
        text = f.read(12000)
    r = subprocess.run([args.herd, "tokenize", "--tokenizer", args.reference], input=text,
                       capture_output=True, check=True)
    ids = json.loads(r.stdout)
    if len(ids) < args.positions:
        sys.exit(f"{args.text}: only {len(ids)} tokens, fewer than --positions {args.positions}")
    return ids[:args.positions]


def logits(args, model, tokens, out):
    cmd = [args.herd, "logits", "--model", model, "--tokens", ",".join(map(str, tokens)), "--all",
           "--cache-type", args.cache_type, "--out", out]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, capture_output=True, check=True)
    x = np.fromfile(out, dtype="<f4").astype(np.float64)
    return x.reshape(len(tokens), -1)


def log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def compare(ref, q):
    lp, lq = log_softmax(ref), log_softmax(q)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=1)
    top1 = (ref.argmax(axis=1) == q.argmax(axis=1)).mean()
    rel = np.linalg.norm(ref - q, axis=1) / np.linalg.norm(ref, axis=1)
    return {"kl_mean": float(kl.mean()), "kl_p99": float(np.percentile(kl, 99)),
            "kl_max": float(kl.max()), "top1_agreement": float(top1),
            "rel_l2_mean": float(rel.mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, help="unquantised model (any format)")
    ap.add_argument("quantised", nargs="+", help="quantised model files")
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--positions", type=int, default=256)
    ap.add_argument("--random", action="store_true", help="random token ids instead of the text")
    ap.add_argument("--vocab", type=int, default=0, help="vocabulary size for --random")
    ap.add_argument("--cache-type", default="f32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--herd", default=os.path.join(ROOT, "build/apps/herd/herd"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tokens = tokens_for(args)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ref = logits(args, args.reference, tokens, os.path.join(tmp, "ref.bin"))
        for path in args.quantised:
            q = logits(args, path, tokens, os.path.join(tmp, "q.bin"))
            if q.shape != ref.shape:
                sys.exit(f"{path}: logits shape {q.shape} differs from the reference's {ref.shape}")
            results.append({"model": path, **compare(ref, q)})
    if args.json:
        print(json.dumps({"reference": args.reference, "positions": len(tokens),
                          "results": results}, indent=1))
        return
    print(f"reference {args.reference}, {len(tokens)} positions")
    print(f"| {'model':<40} | KL mean | KL p99 | top-1 agree | rel L2 |")
    print(f"| {'-' * 40} | ------: | -----: | ----------: | -----: |")
    for r in results:
        print(f"| {os.path.basename(r['model']):<40} | {r['kl_mean']:.5f} | {r['kl_p99']:.4f} "
              f"| {100 * r['top1_agreement']:10.1f}% | {r['rel_l2_mean']:.4f} |")


if __name__ == "__main__":
    main()
