#!/usr/bin/env python3
"""Training speed: herd train vs PyTorch on the CPU, same model config, batch, sequence length and
thread count, in one run; MFU against this machine's fp32 FLOP/s ceiling (bench/membw).

    .venv-tools/bin/python bench/train_vs_torch.py [--preset tiny] [--steps 8] [--seq-len 128]
        [--batch-tokens 1024] [--threads 2] [--herd build/apps/herd/herd] [--peak-gflops G]
        [--text FILE] [--dim D --layers L --heads H --kv-heads K --ffn-dim F] [--vocab V]
        [--rounds 3] [--json]

--dim ... --ffn-dim change the preset's shape (herd train's flags of the same names); --vocab V
first trains a V-token BPE on the text (`herd tokenizer train`) and uses it instead of Llama 3's
128,256 tokens, so that the transformer blocks, not the output projection, dominate.

The two sides take turns, --rounds times (herd, PyTorch, herd, ...), so that a noisy spell on this
shared machine does not land on one side only; each side's figure is the median over its rounds.

Both sides train the same shapes (herd's preset, read back from the config.json of herd's
checkpoint) on the same token windows (herd's shards of --text, default the GNU coreutils manual
that every Debian machine has, GFDL-1.3-or-later), with AdamW, fp32 weights and gradients:
  herd:    `herd train` (tokens/s from its log.jsonl, median over the steps after the first two);
  PyTorch: the float32 Llama forward of tools/gen_train_goldens.py (written from Meta's model.py),
           torch.autograd and torch.optim.AdamW, torch.set_num_threads(--threads) (median step time
           over the steps after the first two).
FLOPs per token: 6 * (matmul parameters, the output projection included) + 6 * n_layers * seq_len
* dim (causal attention's QK^T and PV, forward + backward, half the square); MFU = achieved FLOP/s /
the fp32 FMA peak bench/membw measures with --threads threads (or --peak-gflops).

Needs torch: .venv-tools (tools/requirements-tools.txt). Not part of CI.
"""
import argparse
import gzip
import json
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--herd", default=str(ROOT / "build/apps/herd/herd"))
    ap.add_argument("--membw", default=str(ROOT / "build/bench/membw"))
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--peak-gflops", type=float, help="fp32 ceiling (default: run bench/membw)")
    ap.add_argument("--text", default="/usr/share/info/coreutils.info.gz")
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of each side")
    ap.add_argument("--json", action="store_true")
    for flag in ("--dim", "--layers", "--heads", "--kv-heads", "--ffn-dim", "--vocab"):
        ap.add_argument(flag, type=int)
    return ap.parse_args()


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr}")
    return r


def herd_train(a, tmp, round_=0):
    text = tmp / "text.txt"
    tokenizer = ["--tokenizer", tmp / "tok.model"] if a.vocab else []
    if not (tmp / "shards").exists():  # the data, once for all rounds
        raw = pathlib.Path(a.text).read_bytes()
        text.write_bytes(gzip.decompress(raw) if a.text.endswith(".gz") else raw)
        if a.vocab:
            run([a.herd, "tokenizer", "train", "--vocab-size", a.vocab, "--out", tmp / "tok.model",
                 text])
        run([a.herd, "data", "tokenize", "--source", "bench", "--license", "GFDL-1.3-or-later",
             "--provenance", a.text, "--out", tmp / "shards", *tokenizer, text])
    shape = []
    for flag in ("dim", "layers", "heads", "kv_heads", "ffn_dim"):
        if getattr(a, flag):
            shape += ["--" + flag.replace("_", "-"), getattr(a, flag)]
    (tmp / "mix.json").write_text(json.dumps(
        {"sources": [{"name": "bench", "shards": "shards", "weight": 1}], "seed": 1}))
    out = tmp / f"run{round_}"
    run([a.herd, "train", "--mix", tmp / "mix.json", "--out", out, "--preset", a.preset,
         "--steps", a.steps, "--seq-len", a.seq_len, "--batch-tokens", a.batch_tokens,
         "--lr", a.lr, "--threads", a.threads, "--log-every", 1000, *shape, *tokenizer])
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    steps = [l for l in log if "loss" in l and "val_loss" not in l]
    speeds = [l["tokens_per_s"] for l in steps[2:]] or [steps[-1]["tokens_per_s"]]
    ckpt = out / (out / "latest").read_text().strip()
    config = json.loads((ckpt / "config.json").read_text())
    shard = sorted((tmp / "shards").glob("*.bin"))[0]
    return statistics.median(speeds), config, shard, steps


def torch_train(a, config, shard):
    import numpy as np
    import torch
    import gen_train_goldens as ref  # sets float64 as the default dtype: undone below
    torch.set_default_dtype(torch.float32)
    rope64 = ref.rope  # its rotation table is complex128: rotate float32 rows in complex64
    ref.rope = lambda x, freqs_cis: rope64(x, freqs_cis.to(torch.complex64))
    torch.set_num_threads(a.threads)
    scaling = config.get("rope_scaling")
    cfg = dict(dim=config["hidden_size"], n_layers=config["num_hidden_layers"],
               n_heads=config["num_attention_heads"], n_kv_heads=config["num_key_value_heads"],
               head_dim=config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"],
               ffn_dim=config["intermediate_size"], vocab_size=config["vocab_size"],
               norm_eps=config["rms_norm_eps"], rope_theta=config["rope_theta"],
               tie_word_embeddings=config.get("tie_word_embeddings", False),
               rope_scaling=None if not scaling else dict(
                   factor=scaling["factor"], low_freq_factor=scaling["low_freq_factor"],
                   high_freq_factor=scaling["high_freq_factor"],
                   original_max_position_embeddings=scaling["original_max_position_embeddings"]))
    params = {n: torch.nn.Parameter((torch.randn(s) * (0.02 if len(s) == 2 else 0) +
                                     (0 if len(s) == 2 else 1)).float())
              for n, s in ref.tensor_shapes(cfg)}
    opt = torch.optim.AdamW(params.values(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    ids = np.fromfile(shard, dtype="<u4").astype(np.int64)
    b, t = a.batch_tokens // a.seq_len, a.seq_len
    times = []
    n_params = sum(p.numel() for n, p in params.items() if not n.startswith("tok_embeddings")
                   or cfg["tie_word_embeddings"])
    for step in range(a.steps):
        start = (step * b * (t + 1)) % max(1, len(ids) - b * (t + 1))
        w = torch.from_numpy(ids[start:start + b * (t + 1)].reshape(b, t + 1))
        t0 = time.perf_counter()
        loss = ref.forward_loss(cfg, params, w[:, :-1], w[:, 1:])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    per_step = statistics.median(times[2:] or times)
    return a.batch_tokens / per_step, cfg, n_params


def peak_gflops(a):
    if a.peak_gflops:
        return a.peak_gflops
    r = run([a.membw, "--quick"])
    rows = re.findall(r"\| fp32 FMA peak \(\w+\)\s*\|\s*(\d+)\s*\|\s*([\d.]+) GFLOP/s", r.stdout)
    return max(float(g) for th, g in rows if int(th) <= a.threads)


def main():
    a = parse_args()
    if a.batch_tokens % a.seq_len:
        sys.exit("--batch-tokens must be a multiple of --seq-len")
    herd_runs, torch_runs = [], []
    with tempfile.TemporaryDirectory() as d:
        for r in range(max(1, a.rounds)):
            tps, config, shard, _ = herd_train(a, pathlib.Path(d), r)
            herd_runs.append(tps)
            tps, cfg, n_params = torch_train(a, config, shard)
            torch_runs.append(tps)
    herd_tps, torch_tps = statistics.median(herd_runs), statistics.median(torch_runs)
    flops_per_token = 6 * n_params + 6 * cfg["n_layers"] * a.seq_len * cfg["dim"]
    peak = peak_gflops(a) * 1e9
    res = {"preset": a.preset, "threads": a.threads, "seq_len": a.seq_len,
           "batch_tokens": a.batch_tokens, "steps": a.steps, "matmul_params": n_params,
           "flops_per_token": flops_per_token, "peak_gflops": peak / 1e9,
           "herd_tokens_per_second": herd_tps, "torch_tokens_per_second": torch_tps,
           "herd_rounds": herd_runs, "torch_rounds": torch_runs,
           "ratio": herd_tps / torch_tps,
           "herd_mfu": herd_tps * flops_per_token / peak, "torch_mfu": torch_tps * flops_per_token / peak}
    if a.json:
        print(json.dumps(res))
        return
    print(f"{a.preset} (dim {cfg['dim']}, {cfg['n_layers']} layers, ffn {cfg['ffn_dim']}, vocab "
          f"{cfg['vocab_size']}): {n_params / 1e6:.2f}M matmul params, seq {a.seq_len}, {a.batch_tokens} "
          f"tokens/step, {a.threads} threads, fp32 peak {peak / 1e9:.1f} GFLOP/s")
    rounds = lambda runs: ", ".join(f"{x:.0f}" for x in runs)
    print(f"  herd train  {herd_tps:8.1f} tok/s  MFU {res['herd_mfu']:.1%}  (rounds: {rounds(herd_runs)})")
    print(f"  PyTorch     {torch_tps:8.1f} tok/s  MFU {res['torch_mfu']:.1%}  (rounds: {rounds(torch_runs)})")
    print(f"  herd / PyTorch = {res['ratio']:.2f}x")


if __name__ == "__main__":
    main()
