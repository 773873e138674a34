#!/usr/bin/env python3
"""Writes the training goldens: tests/golden/train_grads.json and one
tests/golden/train_grads_<variant>.safetensors per model variant, for tests/train_grad_test.cc and
tests/train_optimizer_test.cc.

An independent float64 reference: the Llama 3 forward written here in PyTorch from Meta's
``model.py`` (interleaved-pair RoPE as complex rotation, RMSNorm, causal GQA attention, SwiGLU),
mean cross-entropy over the targets (``ignore_index=-1``), and torch.autograd for every gradient.
Nothing here reads herd's C++ code or output.

Weights are not stored: both sides generate them from a formula (``weight`` below), so the goldens
stay small. Element i of tensor number n (the order of herd's ForEachTensor: tok_embeddings, per
layer attention_norm wq wk wv wo ffn_norm w1 w2 w3, then norm, then output unless tied) is
    h = splitmix64((seed << 48) ^ (n << 32) ^ i),  u = ((h >> 48) - 32768) / 32768  in [-1, 1)
    matrices: float32(u / sqrt(cols));  norms: float32(1 + u / 4)
(u / sqrt(cols) is rounded to float32 once; herd's test does the same arithmetic in double, so the
weights are bit-identical). The reference computes in float64 from those float32 values.

Variants (2 layers, dim 32, head_dim 8, ffn 64, vocab 64):
  gqa          4 heads / 2 kv heads, untied, plain RoPE (theta 10000)
  tied_mqa     4 heads / 1 kv head, tied embeddings, theta 500000, some targets ignored (-1)
  rope_scaled  4 heads / 4 kv heads, llama3 RoPE scaling (factor 8, low 1, high 4, original 16:
               with head_dim 8 the four frequencies fall in all three regions of the scaling)

Stored per variant: config, weight seed, batch and sequence length, tokens and targets, the mean
loss, and (in the .safetensors, float32, Meta tensor names) every parameter's gradient.

AdamW golden ("adamw"): torch.optim.AdamW (betas 0.9 / 0.95, eps 1e-8, weight decay 0.1 on the
matrix only) with torch.nn.utils.clip_grad_norm_ (max 0.05) and the warmup + cosine schedule, for
5 steps on a [6, 8] matrix and an [8] vector with formula gradients: the learning rates, the norms
before clipping and the final parameters.

Training golden ("train_steps"): 3 steps on variant gqa (same batch each step; clipping at 1.0,
AdamW as above, lr 1e-2, warmup 1, cosine to 0.1 over 3 steps): the loss before each step.

Needs .venv-tools (tools/requirements-tools.txt, which includes torch and safetensors):
    .venv-tools/bin/python tools/gen_train_goldens.py [--out-dir tests/golden]
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib

import numpy as np
import torch
from safetensors.numpy import save_file

torch.set_default_dtype(torch.float64)

BASE = dict(dim=32, n_layers=2, n_heads=4, head_dim=8, ffn_dim=64, vocab_size=64, norm_eps=1e-5)
VARIANTS = {
    "gqa": dict(n_kv_heads=2, rope_theta=10000.0, tie_word_embeddings=False, rope_scaling=None,
                batch=2, seq_len=12, seed=11, ignore=0),
    "tied_mqa": dict(n_kv_heads=1, rope_theta=500000.0, tie_word_embeddings=True, rope_scaling=None,
                     batch=2, seq_len=10, seed=12, ignore=3),
    "rope_scaled": dict(n_kv_heads=4, rope_theta=500000.0, tie_word_embeddings=False,
                        rope_scaling=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=16),
                        batch=3, seq_len=9, seed=13, ignore=0),
}
LAYER_TENSORS = ["attention_norm", "attention.wq", "attention.wk", "attention.wv", "attention.wo",
                 "ffn_norm", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]


def splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def weight(seed: int, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Tensor number n of the formula in the module docstring, float32."""
    count = int(np.prod(shape))
    i = np.arange(count, dtype=np.uint64)
    h = splitmix64((np.uint64(seed) << np.uint64(48)) ^ (np.uint64(n) << np.uint64(32)) ^ i)
    u = ((h >> np.uint64(48)).astype(np.int64) - 32768) / 32768.0
    if len(shape) == 1:
        return (1.0 + u / 4.0).astype(np.float32)
    return (u / math.sqrt(shape[1])).astype(np.float32).reshape(shape)


def tensor_shapes(cfg: dict) -> list[tuple[str, tuple[int, ...]]]:
    """(Meta name, shape) in ForEachTensor order."""
    d, q, kv, f, v = (cfg["dim"], cfg["n_heads"] * cfg["head_dim"],
                      cfg["n_kv_heads"] * cfg["head_dim"], cfg["ffn_dim"], cfg["vocab_size"])
    out = [("tok_embeddings.weight", (v, d))]
    for layer in range(cfg["n_layers"]):
        shapes = [(d,), (q, d), (kv, d), (kv, d), (d, q), (d,), (f, d), (d, f), (f, d)]
        out += [(f"layers.{layer}.{t}.weight", s) for t, s in zip(LAYER_TENSORS, shapes)]
    out.append(("norm.weight", (d,)))
    if not cfg["tie_word_embeddings"]:
        out.append(("output.weight", (v, d)))
    return out


def make_params(cfg: dict, seed: int) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(weight(seed, n, shape).astype(np.float64), requires_grad=True)
            for n, (name, shape) in enumerate(tensor_shapes(cfg))}


def inverse_frequencies(cfg: dict) -> np.ndarray:
    """theta^(-2i/head_dim), with Meta's apply_scaling (llama3 rope scaling) when configured."""
    hd = cfg["head_dim"]
    freqs = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    s = cfg["rope_scaling"]
    if s is None:
        return freqs
    old = s["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / s["low_freq_factor"], old / s["high_freq_factor"]
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(f)
        elif wavelen > low_wavelen:
            out.append(f / s["factor"])
        else:
            smooth = (old / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
            out.append((1 - smooth) * f / s["factor"] + smooth * f)
    return np.array(out)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, freqs_cis):
    """x: [B, T, H, hd] with (2i, 2i+1) pairs as complex numbers, rotated by freqs_cis [T, hd/2]."""
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(xc * freqs_cis[None, :, None, :]).flatten(3)


def forward_loss(cfg: dict, p: dict[str, torch.Tensor], tokens: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
    B, T = tokens.shape
    H, KV, hd, eps = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"], cfg["norm_eps"]
    angles = torch.outer(torch.arange(T, dtype=torch.float64), torch.tensor(inverse_frequencies(cfg)))
    freqs_cis = torch.polar(torch.ones_like(angles), angles)
    mask = torch.full((T, T), float("-inf")).triu(1)
    h = p["tok_embeddings.weight"][tokens]
    for layer in range(cfg["n_layers"]):
        w = {t: p[f"layers.{layer}.{t}.weight"] for t in LAYER_TENSORS}
        x = rms_norm(h, w["attention_norm"], eps)
        q = rope((x @ w["attention.wq"].T).view(B, T, H, hd), freqs_cis)
        k = rope((x @ w["attention.wk"].T).view(B, T, KV, hd), freqs_cis)
        v = (x @ w["attention.wv"].T).view(B, T, KV, hd)
        k = k.repeat_interleave(H // KV, dim=2)  # query head j reads kv head j // (H / KV)
        v = v.repeat_interleave(H // KV, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, hd]
        scores = q @ k.transpose(2, 3) / math.sqrt(hd) + mask
        att = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
        h = h + att @ w["attention.wo"].T
        x = rms_norm(h, w["ffn_norm"], eps)
        ff = torch.nn.functional.silu(x @ w["feed_forward.w1"].T) * (x @ w["feed_forward.w3"].T)
        h = h + ff @ w["feed_forward.w2"].T
    out_w = p["tok_embeddings.weight"] if cfg["tie_word_embeddings"] else p["output.weight"]
    logits = rms_norm(h, p["norm.weight"], eps) @ out_w.T
    return torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1),
                                             ignore_index=-1)


def make_batch(cfg: dict, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(spec["seed"])
    stream = rng.integers(0, cfg["vocab_size"], size=(spec["batch"], spec["seq_len"] + 1))
    tokens, targets = stream[:, :-1].copy(), stream[:, 1:].copy()
    if spec["ignore"]:
        flat = targets.reshape(-1)
        flat[rng.choice(flat.size, size=spec["ignore"], replace=False)] = -1
    return tokens, targets


def lr_at(step: int, lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Learning rate of update number step + 1 (herd's schedule: train/optimizer.h)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    lr_min = lr * min_ratio
    return lr_min + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - lr_min)


def adamw(params: dict[str, torch.Tensor], lr: float) -> torch.optim.AdamW:
    decay = [t for t in params.values() if t.dim() == 2]
    no_decay = [t for t in params.values() if t.dim() != 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def adamw_golden() -> dict:
    seed, steps, lr, warmup, min_ratio, clip = 21, 5, 1e-2, 2, 0.1, 0.05
    p = {"matrix": torch.tensor(weight(seed, 0, (6, 8)).astype(np.float64), requires_grad=True),
         "vector": torch.tensor(weight(seed, 1, (8,)).astype(np.float64), requires_grad=True)}
    opt = adamw(p, lr)
    lrs, norms = [], []
    for step in range(steps):
        # Gradients: formula tensors 2 + 2 * step (matrix) and 3 + 2 * step (vector), minus 1 for
        # the vector so that both are centred on 0.
        p["matrix"].grad = torch.tensor(weight(seed, 2 + 2 * step, (6, 8)).astype(np.float64))
        p["vector"].grad = torch.tensor(weight(seed, 3 + 2 * step, (8,)).astype(np.float64) - 1.0)
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), clip)))
        lrs.append(lr_at(step, lr, warmup, steps, min_ratio))
        for g in opt.param_groups:
            g["lr"] = lrs[-1]
        opt.step()
    return {"seed": seed, "steps": steps, "lr": lr, "warmup": warmup, "min_lr_ratio": min_ratio,
            "clip": clip, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1,
            "lrs": lrs, "norms": norms,
            "matrix": p["matrix"].detach().reshape(-1).tolist(),
            "vector": p["vector"].detach().tolist()}


def train_steps_golden(cfg: dict, spec: dict) -> dict:
    steps, lr, warmup, min_ratio, clip = 3, 1e-2, 1, 0.1, 1.0
    p = make_params(cfg, spec["seed"])
    tokens, targets = make_batch(cfg, spec)
    opt = adamw(p, lr)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        loss = forward_loss(cfg, p, torch.tensor(tokens), torch.tensor(targets))
        loss.backward()
        losses.append(float(loss.detach()))
        torch.nn.utils.clip_grad_norm_(list(p.values()), clip)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, lr, warmup, steps, min_ratio)
        opt.step()
    return {"variant": "gqa", "steps": steps, "lr": lr, "warmup": warmup, "min_lr_ratio": min_ratio,
            "clip": clip, "losses": losses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default=pathlib.Path(__file__).resolve().parents[1] / "tests/golden")
    out_dir = pathlib.Path(ap.parse_args().out_dir)
    golden = {"generator": "tools/gen_train_goldens.py", "torch": torch.__version__, "variants": []}
    for name, spec in VARIANTS.items():
        cfg = dict(BASE, **{k: spec[k] for k in ("n_kv_heads", "rope_theta", "tie_word_embeddings",
                                                   "rope_scaling")})
        p = make_params(cfg, spec["seed"])
        tokens, targets = make_batch(cfg, spec)
        loss = forward_loss(cfg, p, torch.tensor(tokens), torch.tensor(targets))
        loss.backward()
        grad_file = f"train_grads_{name}.safetensors"
        save_file({k: t.grad.numpy().astype(np.float32) for k, t in p.items()},
                  str(out_dir / grad_file))
        (out_dir / grad_file).chmod(0o644)
        golden["variants"].append({
            "name": name, "config": cfg, "weights_seed": spec["seed"], "batch": spec["batch"],
            "seq_len": spec["seq_len"], "tokens": tokens.reshape(-1).tolist(),
            "targets": targets.reshape(-1).tolist(), "loss": float(loss.detach()), "grads": grad_file})
        print(f"{name}: loss {float(loss.detach()):.10f}, grad norm "
              f"{math.sqrt(sum(float((t.grad ** 2).sum()) for t in p.values())):.6f}")
    golden["adamw"] = adamw_golden()
    golden["train_steps"] = train_steps_golden(
        dict(BASE, **{k: VARIANTS["gqa"][k] for k in ("n_kv_heads", "rope_theta",
                                                       "tie_word_embeddings", "rope_scaling")}),
        VARIANTS["gqa"])
    print("train_steps losses:", golden["train_steps"]["losses"])
    (out_dir / "train_grads.json").write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
