#!/usr/bin/env python3
"""Float64 reference implementation of the Llama 3 / 3.1 / 3.2 forward pass, numpy only.

This is the oracle that herd's logits are compared against. It is written from Meta's model
description (llama-models ``models/llama3/reference_impl/model.py`` and the Llama 3 paper), not
from herd's C++ code, and it favours being obviously right over being fast: every tensor is
converted to float64 and every step (RMSNorm, RoPE angles, attention scores, softmax, SwiGLU) is
computed in float64.

Two independent forward passes are provided:

* ``forward_hf`` runs on a Hugging Face checkpoint as stored (``model.layers.N.self_attn.q_proj``
  ...), whose q/k rows are in transformers' "rotate-half" order: within each head, dimension ``i``
  pairs with ``i + head_dim/2``. RoPE is ``x*cos + rotate_half(x)*sin``. Attention processes the
  queries in chunks so that long sequences stay cheap in memory, and ``positions_out`` limits which
  positions get logits.
* ``forward_meta`` mirrors Meta's ``model.py`` on Meta-named tensors (``layers.N.attention.wq``
  ...), whose q/k rows are in Meta's interleaved order: dimensions ``(2i, 2i+1)`` form the complex
  number that is rotated. It is unchunked (O(T^2) per head) and meant for validation.

``hf_to_meta_weights`` (via ``hf_to_meta_qk``) converts between the two layouts, so the two paths
can be compared on the same weights; ``self_test`` does that on a random model.

Loading reads config.json and model.safetensors, or the shards listed in
model.safetensors.index.json; safetensors is parsed here (F64, F32, F16, BF16).

CLI::

    python tools/llama_ref.py --model DIR --tokens 1,2,3 [--all | --positions 0,5,9] --out FILE.npy
    python tools/llama_ref.py --self-test

writes float64 logits of shape (number of positions, vocab_size) (default: the last position
only) and prints the top 5 of the last returned position as JSON ``{"top": [[id, logit], ...]}``.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import struct
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

DEFAULT_CHUNK = 1024

# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3.1 RoPE frequency scaling ("rope_type": "llama3")."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int


@dataclass(frozen=True)
class LlamaConfig:
    """The hyper-parameters of a Llama 3 model (names as in Meta's ModelArgs where they exist)."""

    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    vocab_size: int
    norm_eps: float
    rope_theta: float
    rope_scaling: RopeScaling | None
    tie_word_embeddings: bool

    @classmethod
    def from_hf(cls, d: Mapping) -> "LlamaConfig":
        """Build from a Hugging Face config.json dictionary."""
        if d.get("hidden_act", "silu") != "silu":
            raise ValueError(f"unsupported hidden_act {d['hidden_act']!r}")
        if d.get("attention_bias") or d.get("mlp_bias"):
            raise ValueError("biases in attention/MLP are not part of Llama 3")
        n_heads = int(d["num_attention_heads"])
        n_kv = d.get("num_key_value_heads")
        n_kv = n_heads if n_kv is None else int(n_kv)
        head_dim = d.get("head_dim")
        head_dim = d["hidden_size"] // n_heads if head_dim is None else int(head_dim)
        if n_heads % n_kv or head_dim % 2:
            raise ValueError(f"bad head layout: {n_heads} heads, {n_kv} kv heads, dim {head_dim}")
        rs = d.get("rope_scaling")
        scaling = None
        if rs is not None:
            kind = rs.get("rope_type", rs.get("type"))
            if kind == "llama3":
                scaling = RopeScaling(
                    factor=float(rs["factor"]),
                    low_freq_factor=float(rs["low_freq_factor"]),
                    high_freq_factor=float(rs["high_freq_factor"]),
                    original_max_position_embeddings=int(rs["original_max_position_embeddings"]),
                )
            elif kind != "default":
                raise NotImplementedError(f"rope_scaling type {kind!r}")
        return cls(
            dim=int(d["hidden_size"]),
            n_layers=int(d["num_hidden_layers"]),
            n_heads=n_heads,
            n_kv_heads=n_kv,
            head_dim=head_dim,
            ffn_dim=int(d["intermediate_size"]),
            vocab_size=int(d["vocab_size"]),
            norm_eps=float(d.get("rms_norm_eps", 1e-6)),
            rope_theta=float(d.get("rope_theta", 10000.0)),
            rope_scaling=scaling,
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
        )


def load_config(model_dir: str | pathlib.Path) -> LlamaConfig:
    """Read ``model_dir/config.json``."""
    with open(pathlib.Path(model_dir) / "config.json") as f:
        return LlamaConfig.from_hf(json.load(f))


# --------------------------------------------------------------------------------------------------
# safetensors

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


def _decode(raw: np.ndarray, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """Turn the raw little-endian bytes of one tensor into a float64 array."""
    if dtype not in _ST_DTYPES:
        raise ValueError(f"unsupported safetensors dtype {dtype}")
    a = np.frombuffer(raw, dtype=_ST_DTYPES[dtype])
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float64).reshape(shape)


def read_safetensors(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """Parse one .safetensors file: u64 LE header length, JSON header, then the data block.

    Returns every tensor as a float64 array (``__metadata__`` is ignored).
    """
    path = pathlib.Path(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n) if path.stat().st_size > 8 + n \
        else np.zeros(0, np.uint8)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        itemsize = np.dtype(_ST_DTYPES.get(info["dtype"], "<f8")).itemsize
        if end - begin != math.prod(shape) * itemsize or end > data.size:
            raise ValueError(f"{path}: bad data_offsets for {name}")
        out[name] = _decode(data[begin:end], info["dtype"], shape)
    return out


def load_hf_weights(model_dir: str | pathlib.Path) -> dict[str, np.ndarray]:
    """All tensors of a HF model directory (model.safetensors, or the shards of the index)."""
    model_dir = pathlib.Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(model_dir / name))
    return weights


def load_model(model_dir: str | pathlib.Path) -> tuple[LlamaConfig, dict[str, np.ndarray]]:
    """(config, float64 weights) of a HF Llama model directory."""
    return load_config(model_dir), load_hf_weights(model_dir)


# --------------------------------------------------------------------------------------------------
# Shared building blocks (HF path)


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(mean(x^2) + eps) * w over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), computed without overflow."""
    e = np.exp(-np.abs(x))
    return x * np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def llama3_scale_inv_freq(inv_freq: np.ndarray, s: RopeScaling) -> np.ndarray:
    """Llama 3.1 frequency scaling (Meta's apply_scaling), with the factors from the config.

    Wavelengths shorter than old_len/high_freq_factor keep their frequency, those longer than
    old_len/low_freq_factor are divided by ``factor``, and those in between are interpolated.
    """
    old = s.original_max_position_embeddings
    low_wavelen = old / s.low_freq_factor
    high_wavelen = old / s.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    with np.errstate(divide="ignore", invalid="ignore"):
        smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor)
    mid = (1 - smooth) * inv_freq / s.factor + smooth * inv_freq
    return np.where(wavelen < high_wavelen, inv_freq,
                    np.where(wavelen > low_wavelen, inv_freq / s.factor, mid))


def rope_inv_freq(head_dim: int, theta: float, scaling: RopeScaling | None = None) -> np.ndarray:
    """inv_freq[i] = theta^(-2i/head_dim) for i < head_dim/2, then llama3 scaling if any."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    return inv_freq if scaling is None else llama3_scale_inv_freq(inv_freq, scaling)


def rope_cos_sin(positions: np.ndarray, inv_freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables (T, head_dim) for rotate-half RoPE: column j uses inv_freq[j mod d/2]."""
    angles = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)
    emb = np.concatenate([angles, angles], axis=-1)
    return np.cos(emb), np.sin(emb)


def apply_rope_rotate_half(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """RoPE in transformers' layout: x*cos + rotate_half(x)*sin, x of shape (heads, T, d)."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                     chunk: int | None = DEFAULT_CHUNK) -> np.ndarray:
    """Causal grouped-query attention, softmax(q k^T / sqrt(d)) v, in float64.

    q: (n_heads, T, d); k, v: (n_kv_heads, T, d). Query head h uses kv head h // (n_heads /
    n_kv_heads). Queries are processed ``chunk`` rows at a time (None: all at once), and a chunk of
    rows [a, b) only looks at keys [0, b), so the score matrix is at most chunk x T.
    """
    n_heads, t, d = q.shape
    n_rep = n_heads // k.shape[0]
    step = t if chunk is None else max(1, int(chunk))
    scale = 1.0 / math.sqrt(d)
    out = np.empty_like(q)
    for h in range(n_heads):
        kh, vh = k[h // n_rep], v[h // n_rep]
        for a in range(0, t, step):
            b = min(a + step, t)
            s = (q[h, a:b] @ kh[:b].T) * scale
            diag = s[:, a:b]  # keys a..b-1: key j is visible to query i only if j <= i
            diag[np.triu_indices(b - a, k=1)] = -np.inf
            s -= s.max(axis=1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=1, keepdims=True)
            out[h, a:b] = p @ vh[:b]
    return out


def _positions(positions_out: Sequence[int] | None, t: int) -> np.ndarray:
    if positions_out is None:
        return np.arange(t)
    pos = np.asarray(list(positions_out), dtype=np.int64)
    if pos.size and (pos.min() < 0 or pos.max() >= t):
        raise ValueError(f"positions_out must lie in [0, {t})")
    return pos


def _tokens(tokens: Sequence[int], vocab_size: int) -> np.ndarray:
    tok = np.asarray(list(tokens), dtype=np.int64)
    if tok.ndim != 1 or tok.size == 0:
        raise ValueError("need a non-empty list of token ids")
    if tok.min() < 0 or tok.max() >= vocab_size:
        raise ValueError(f"token ids must lie in [0, {vocab_size})")
    return tok


# --------------------------------------------------------------------------------------------------
# Forward pass on Hugging Face weights


def _heads(x: np.ndarray, n: int) -> np.ndarray:
    """(T, n*d) -> (n, T, d)."""
    return x.reshape(x.shape[0], n, -1).transpose(1, 0, 2)


def forward_hf(cfg: LlamaConfig, w: Mapping[str, np.ndarray], tokens: Sequence[int],
               positions_out: Sequence[int] | None = None,
               chunk: int | None = DEFAULT_CHUNK) -> np.ndarray:
    """float64 logits of shape (len(positions_out), vocab) for tokens at positions 0..T-1.

    ``w`` holds HF-named tensors (q/k rows in rotate-half order). ``positions_out`` (default: all)
    picks the positions whose logits are computed; ``chunk`` is the query chunk of the attention.
    """
    tok = _tokens(tokens, cfg.vocab_size)
    t, hd = tok.size, cfg.head_dim
    cos, sin = rope_cos_sin(np.arange(t), rope_inv_freq(hd, cfg.rope_theta, cfg.rope_scaling))
    x = w["model.embed_tokens.weight"][tok]
    for layer in range(cfg.n_layers):
        p = f"model.layers.{layer}."
        n = rms_norm(x, w[p + "input_layernorm.weight"], cfg.norm_eps)
        q = _heads(n @ w[p + "self_attn.q_proj.weight"].T, cfg.n_heads)
        k = _heads(n @ w[p + "self_attn.k_proj.weight"].T, cfg.n_kv_heads)
        v = _heads(n @ w[p + "self_attn.v_proj.weight"].T, cfg.n_kv_heads)
        q = apply_rope_rotate_half(q, cos, sin)
        k = apply_rope_rotate_half(k, cos, sin)
        a = causal_attention(q, k, v, chunk).transpose(1, 0, 2).reshape(t, cfg.n_heads * hd)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        n = rms_norm(x, w[p + "post_attention_layernorm.weight"], cfg.norm_eps)
        gate = silu(n @ w[p + "mlp.gate_proj.weight"].T)
        x = x + (gate * (n @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x[_positions(positions_out, t)], w["model.norm.weight"], cfg.norm_eps)
    head = w["model.embed_tokens.weight"] if cfg.tie_word_embeddings else w["lm_head.weight"]
    return x @ head.T


def logits_from_dir(model_dir: str | pathlib.Path, tokens: Sequence[int],
                    positions_out: Sequence[int] | None = None,
                    chunk: int | None = DEFAULT_CHUNK) -> np.ndarray:
    """Load a HF model directory and run ``forward_hf``."""
    cfg, w = load_model(model_dir)
    return forward_hf(cfg, w, tokens, positions_out, chunk)


# --------------------------------------------------------------------------------------------------
# Meta layout: conversion and an independent forward pass mirroring Meta's model.py


def meta_to_hf_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Meta interleaved q/k rows -> HF rotate-half rows (transformers' convert script ``permute``).

    Within a head, Meta row 2i+j (pair i, component j) becomes HF row j*(d/2) + i.
    """
    out_dim, in_dim = w.shape
    d = out_dim // n_heads
    return w.reshape(n_heads, d // 2, 2, in_dim).transpose(0, 2, 1, 3).reshape(out_dim, in_dim)


def hf_to_meta_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """HF rotate-half q/k rows -> Meta interleaved rows; the inverse of ``meta_to_hf_qk``.

    Within a head, HF row j*(d/2) + i (j in {0, 1}) becomes Meta row 2i+j, so HF's pair
    (i, i + d/2) becomes Meta's consecutive pair (2i, 2i+1).
    """
    out_dim, in_dim = w.shape
    d = out_dim // n_heads
    return w.reshape(n_heads, 2, d // 2, in_dim).transpose(0, 2, 1, 3).reshape(out_dim, in_dim)


def hf_to_meta_weights(cfg: LlamaConfig, hf: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename HF tensors to Meta's names and reorder q/k rows to Meta's interleaved layout."""
    m = {"tok_embeddings.weight": hf["model.embed_tokens.weight"],
         "norm.weight": hf["model.norm.weight"],
         "output.weight": hf["model.embed_tokens.weight"] if cfg.tie_word_embeddings
         else hf["lm_head.weight"]}
    for i in range(cfg.n_layers):
        p, q = f"model.layers.{i}.", f"layers.{i}."
        m[q + "attention.wq.weight"] = hf_to_meta_qk(hf[p + "self_attn.q_proj.weight"], cfg.n_heads)
        m[q + "attention.wk.weight"] = hf_to_meta_qk(hf[p + "self_attn.k_proj.weight"],
                                                     cfg.n_kv_heads)
        m[q + "attention.wv.weight"] = hf[p + "self_attn.v_proj.weight"]
        m[q + "attention.wo.weight"] = hf[p + "self_attn.o_proj.weight"]
        m[q + "feed_forward.w1.weight"] = hf[p + "mlp.gate_proj.weight"]
        m[q + "feed_forward.w2.weight"] = hf[p + "mlp.down_proj.weight"]
        m[q + "feed_forward.w3.weight"] = hf[p + "mlp.up_proj.weight"]
        m[q + "attention_norm.weight"] = hf[p + "input_layernorm.weight"]
        m[q + "ffn_norm.weight"] = hf[p + "post_attention_layernorm.weight"]
    return m


def _meta_apply_scaling(freqs: np.ndarray, s: RopeScaling) -> np.ndarray:
    """Meta's apply_scaling, element by element as in model.py."""
    low_freq_wavelen = s.original_max_position_embeddings / s.low_freq_factor
    high_freq_wavelen = s.original_max_position_embeddings / s.high_freq_factor
    new_freqs = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            new_freqs.append(freq)
        elif wavelen > low_freq_wavelen:
            new_freqs.append(freq / s.factor)
        else:
            assert low_freq_wavelen != high_freq_wavelen
            smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (
                s.high_freq_factor - s.low_freq_factor)
            new_freqs.append((1 - smooth) * freq / s.factor + smooth * freq)
    return np.array(new_freqs, dtype=np.float64)


def meta_precompute_freqs_cis(dim: int, end: int, theta: float,
                              scaling: RopeScaling | None) -> np.ndarray:
    """Meta's precompute_freqs_cis in complex128: (end, dim/2) unit phasors exp(i t f)."""
    freqs = 1.0 / (theta ** (np.arange(0, dim, 2)[: dim // 2].astype(np.float64) / dim))
    if scaling is not None:
        freqs = _meta_apply_scaling(freqs, scaling)
    t = np.arange(end, dtype=np.float64)
    return np.exp(1j * np.outer(t, freqs))


def _meta_apply_rotary_emb(x: np.ndarray, freqs_cis: np.ndarray) -> np.ndarray:
    """x: (T, heads, d); consecutive pairs (x[2i], x[2i+1]) are rotated as complex numbers."""
    xc = x.reshape(*x.shape[:-1], -1, 2)
    xc = (xc[..., 0] + 1j * xc[..., 1]) * freqs_cis[:, None, :]
    return np.stack([xc.real, xc.imag], axis=-1).reshape(x.shape)


def _meta_rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return (x * (1.0 / np.sqrt(np.mean(x ** 2, axis=-1, keepdims=True) + eps))) * weight


def _meta_repeat_kv(x: np.ndarray, n_rep: int) -> np.ndarray:
    """(T, n_kv, d) -> (T, n_kv*n_rep, d), each kv head repeated n_rep times in place."""
    t, n_kv, d = x.shape
    return np.broadcast_to(x[:, :, None, :], (t, n_kv, n_rep, d)).reshape(t, n_kv * n_rep, d)


def forward_meta(cfg: LlamaConfig, w: Mapping[str, np.ndarray], tokens: Sequence[int],
                 positions_out: Sequence[int] | None = None) -> np.ndarray:
    """Logits from Meta-named, Meta-layout weights, following Meta's model.py step by step.

    Independent of ``forward_hf``: complex-number RoPE on interleaved pairs, repeat_kv, a full
    additive causal mask. Unchunked (a T x T score matrix per head), so meant for validation.
    """
    tok = _tokens(tokens, cfg.vocab_size)
    seqlen, hd = tok.size, cfg.head_dim
    freqs_cis = meta_precompute_freqs_cis(hd, seqlen, cfg.rope_theta, cfg.rope_scaling)
    mask = np.triu(np.full((seqlen, seqlen), -np.inf), k=1)
    n_rep = cfg.n_heads // cfg.n_kv_heads
    h = w["tok_embeddings.weight"][tok]
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        x = _meta_rmsnorm(h, w[p + "attention_norm.weight"], cfg.norm_eps)
        xq = (x @ w[p + "attention.wq.weight"].T).reshape(seqlen, cfg.n_heads, hd)
        xk = (x @ w[p + "attention.wk.weight"].T).reshape(seqlen, cfg.n_kv_heads, hd)
        xv = (x @ w[p + "attention.wv.weight"].T).reshape(seqlen, cfg.n_kv_heads, hd)
        xq = _meta_apply_rotary_emb(xq, freqs_cis)
        xk = _meta_apply_rotary_emb(xk, freqs_cis)
        keys = _meta_repeat_kv(xk, n_rep).transpose(1, 0, 2)
        values = _meta_repeat_kv(xv, n_rep).transpose(1, 0, 2)
        xq = xq.transpose(1, 0, 2)
        scores = xq @ keys.transpose(0, 2, 1) / math.sqrt(hd) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores = scores / scores.sum(axis=-1, keepdims=True)
        attn = (scores @ values).transpose(1, 0, 2).reshape(seqlen, -1)
        h = h + attn @ w[p + "attention.wo.weight"].T
        x = _meta_rmsnorm(h, w[p + "ffn_norm.weight"], cfg.norm_eps)
        w1x = x @ w[p + "feed_forward.w1.weight"].T
        ff = (w1x / (1.0 + np.exp(-w1x))) * (x @ w[p + "feed_forward.w3.weight"].T)
        h = h + ff @ w[p + "feed_forward.w2.weight"].T
    h = _meta_rmsnorm(h[_positions(positions_out, seqlen)], w["norm.weight"], cfg.norm_eps)
    out = w["output.weight"] if "output.weight" in w else w["tok_embeddings.weight"]
    return h @ out.T


# --------------------------------------------------------------------------------------------------
# Random models and the self-test


def random_hf_weights(cfg: LlamaConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float64 HF-named weights scaled so activations and attention scores are O(1)."""
    rng = np.random.default_rng(seed)

    def mat(rows, cols):
        return rng.standard_normal((rows, cols)) / math.sqrt(cols)

    def norm():
        return 1.0 + 0.2 * rng.standard_normal(cfg.dim)

    qd, kvd = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    w = {"model.embed_tokens.weight": rng.standard_normal((cfg.vocab_size, cfg.dim)),
         "model.norm.weight": norm()}
    if not cfg.tie_word_embeddings:
        w["lm_head.weight"] = mat(cfg.vocab_size, cfg.dim)
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm()
        w[p + "post_attention_layernorm.weight"] = norm()
        w[p + "self_attn.q_proj.weight"] = mat(qd, cfg.dim)
        w[p + "self_attn.k_proj.weight"] = mat(kvd, cfg.dim)
        w[p + "self_attn.v_proj.weight"] = mat(kvd, cfg.dim)
        w[p + "self_attn.o_proj.weight"] = mat(cfg.dim, qd)
        w[p + "mlp.gate_proj.weight"] = mat(cfg.ffn_dim, cfg.dim)
        w[p + "mlp.up_proj.weight"] = mat(cfg.ffn_dim, cfg.dim)
        w[p + "mlp.down_proj.weight"] = mat(cfg.dim, cfg.ffn_dim)
    return w


def tiny_config(**overrides) -> LlamaConfig:
    """A small config (dim 64, 2 layers, 4 heads, 2 kv heads, ffn 192, vocab 1000)."""
    base = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, ffn_dim=192,
                vocab_size=1000, norm_eps=1e-5, rope_theta=500000.0, rope_scaling=None,
                tie_word_embeddings=False)
    base.update(overrides)
    return LlamaConfig(**base)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||b||."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def self_test(verbose: bool = True) -> float:
    """Compare the HF path and the Meta path (and chunked attention) on random models.

    Returns the largest relative L2 difference seen; raises AssertionError above 1e-12.
    """
    worst = 0.0
    variants = {
        "plain": tiny_config(),
        "llama3 x8 tied": tiny_config(rope_scaling=RopeScaling(8.0, 1.0, 4.0, 8192),
                                      tie_word_embeddings=True),
        "llama3 x32": tiny_config(rope_scaling=RopeScaling(32.0, 1.0, 4.0, 8192)),
        "mha": tiny_config(n_kv_heads=4),
    }
    rng = np.random.default_rng(1)
    for name, cfg in variants.items():
        w = random_hf_weights(cfg, seed=len(name))
        tokens = rng.integers(0, cfg.vocab_size, size=300)
        hf = forward_hf(cfg, w, tokens, chunk=64)
        meta = forward_meta(cfg, hf_to_meta_weights(cfg, w), tokens)
        unchunked = forward_hf(cfg, w, tokens, chunk=None)
        errs = (rel_l2(meta, hf), rel_l2(unchunked, hf))
        worst = max(worst, *errs)
        if verbose:
            print(f"{name:16s} hf vs meta {errs[0]:.2e}   chunk 64 vs unchunked {errs[1]:.2e}")
    assert worst < 1e-12, worst
    return worst


# --------------------------------------------------------------------------------------------------
# CLI


def _int_list(s: str) -> list[int]:
    if s.startswith("@"):
        s = pathlib.Path(s[1:]).read_text()
    s = s.strip().strip("[]")
    return [int(v) for v in s.replace(",", " ").split()]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="Hugging Face model directory (config.json + safetensors)")
    ap.add_argument("--tokens", help="comma-separated token ids, or @FILE holding them")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="logits of every position")
    which.add_argument("--positions", help="comma-separated positions (default: the last)")
    ap.add_argument("--out", help="write float64 logits (positions x vocab) to this .npy file")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="attention query chunk")
    ap.add_argument("--self-test", action="store_true", 
                    help="HF path vs Meta path on random models")
    args = ap.parse_args(argv)
    if args.self_test:
        print(json.dumps({"self_test_max_rel_l2": self_test()}))
        return 0
    if not args.model or not args.tokens:
        ap.error("--model and --tokens are required")
    tokens = _int_list(args.tokens)
    if args.all:
        positions = list(range(len(tokens)))
    elif args.positions:
        positions = _int_list(args.positions)
    else:
        positions = [len(tokens) - 1]
    logits = logits_from_dir(args.model, tokens, positions, args.chunk)
    if args.out:
        np.save(args.out, logits)
    last = logits[-1]
    top = np.argsort(-last, kind="stable")[:5]
    print(json.dumps({"top": [[int(i), float(last[i])] for i in top], "position": positions[-1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
