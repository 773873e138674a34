#!/usr/bin/env python3
"""herd's tokenizer vs tiktoken, same corpus, same machine, same run: encode MB/s single-thread
(herd EncodeOrdinary vs tiktoken encode_ordinary) and all threads (herd EncodeBatch vs tiktoken
encode_ordinary_batch). The corpus is tools/build_corpus.py's (built into build/test_data if missing).

  .venv/bin/python bench/tokenizer_vs_tiktoken.py [--corpus FILE] [--threads N] [--reps R] [--max-mb M]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from tiktoken_ref import load_llama3_encoding  # noqa: E402


def herd_home():
    if os.environ.get("HERD_HOME"):
        return pathlib.Path(os.environ["HERD_HOME"])
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "herd"


def best_of(reps, fn):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(ROOT / "build/test_data/corpus.jsonl"))
    ap.add_argument("--tokenizer", default=str(herd_home() / "llama3/tokenizer.model"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-mb", type=float, default=0)
    ap.add_argument("--bench-bin", default=str(ROOT / "build/bench/tokenizer_bench"))
    args = ap.parse_args()

    corpus = pathlib.Path(args.corpus)
    if not corpus.exists():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "tools/build_corpus.py"), str(corpus)], check=True)
    texts, size = [], 0
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            size += len(texts[-1].encode())
            if args.max_mb and size >= args.max_mb * 1e6:
                break

    enc = load_llama3_encoding(args.tokenizer)
    tt_single = size / best_of(args.reps, lambda: [enc.encode_ordinary(t) for t in texts]) / 1e6
    tt_batch = size / best_of(args.reps, lambda: enc.encode_ordinary_batch(texts, num_threads=args.threads)) / 1e6

    out = subprocess.run([args.bench_bin, "--tokenizer", args.tokenizer, "--corpus", str(corpus),
                          "--threads", str(args.threads), "--reps", str(args.reps), "--max-mb", str(args.max_mb)],
                         check=True, capture_output=True, text=True).stdout
    herd = {r["test"]: r for r in map(json.loads, out.splitlines())}
    assert herd["encode_ordinary"]["bytes"] == size, "herd and tiktoken must read the same documents"
    h_single = herd["encode_ordinary"]["mb_per_s_best"]
    h_batch = herd["encode_ordinary_batch"]["mb_per_s_best"]

    print(f"corpus: {corpus} ({size / 1e6:.1f} MB, {len(texts)} documents), best of {args.reps}")
    print(f"{'test':<28}{'herd MB/s':>12}{'tiktoken MB/s':>16}{'herd/tiktoken':>16}")
    print(f"{'encode, 1 thread':<28}{h_single:>12.1f}{tt_single:>16.1f}{h_single / tt_single:>15.2f}x")
    print(f"{f'batch, {args.threads} threads':<28}{h_batch:>12.1f}{tt_batch:>16.1f}{h_batch / tt_batch:>15.2f}x")
    print(f"herd scaling: {h_batch / h_single:.2f}x on {args.threads} threads")


if __name__ == "__main__":
    main()
