#!/usr/bin/env python3
"""Cross-check tools/llama_ref.py against Hugging Face transformers' LlamaForCausalLM.

For each variant a tiny random Llama model is built with transformers, saved with
``save_pretrained`` (so the safetensors files, sharding index and config.json are written by the
official libraries), and run three ways on the same ~300 tokens:

* ``ref``: ``llama_ref.logits_from_dir`` on the saved directory (our safetensors/config parsing,
  rotate-half RoPE, chunked float64 attention);
* ``meta``: ``llama_ref.forward_meta`` on the same weights converted with ``hf_to_meta_weights``;
* transformers, loaded with ``dtype=torch.float64`` (4.57's name for torch_dtype) and sdpa
  attention, in two forms: ``stock`` exactly as shipped, and ``fp64`` with two precision-only
  patches (below).

Printed: the relative L2 error ||ref - hf|| / ||hf|| over all logits of the variant.

Why ``stock`` cannot reach 1e-10 even with float64 weights: transformers 4.57 keeps two steps in
float32 whatever the model dtype. LlamaRotaryEmbedding computes inv_freq in float32 (the rope init
functions use ``dtype=torch.float``) and its forward casts inv_freq and positions with ``.float()``
before the angle product, so angles carry a relative error of ~1e-7 (``model.double()`` casts the
inv_freq buffer, but the forward casts it back). LlamaRMSNorm casts its input to float32. The
``fp64`` patches therefore (1) compute the RMSNorm in the input dtype and (2) compute inv_freq with
transformers' own rope init function (``_compute_llama3_parameters`` for llama3 scaling) fed with
float64 base frequencies, and the angles pos * inv_freq, cos and sin in float64. Eager attention
would also softmax in float32; sdpa keeps float64.

Needs .venv-tools (tools/requirements-tools.txt plus torch):
    .venv-tools/bin/python tools/check_llama_ref.py [--tokens 300] [--long 0]
Exits non-zero if a ``fp64`` error exceeds 1e-10.
"""
from __future__ import annotations

import argparse
import math
import pathlib
import sys
import tempfile

import numpy as np
import torch
import transformers
import transformers.modeling_rope_utils as rope_utils
from transformers import LlamaConfig as HFLlamaConfig
from transformers import LlamaForCausalLM
from transformers.models.llama import modeling_llama

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import llama_ref  # noqa: E402

LLAMA3 = {"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}

# name -> (config overrides, file dtype, max_shard_size or None)
VARIANTS = {
    "plain f32": ({}, torch.float32, None),
    "tied f32": ({"tie_word_embeddings": True}, torch.float32, None),
    "llama3 x8 f32": ({"rope_scaling": {**LLAMA3, "factor": 8.0}}, torch.float32, None),
    "llama3 x32 f32": ({"rope_scaling": {**LLAMA3, "factor": 32.0}}, torch.float32, None),
    "llama3 x8 tied bf16": ({"rope_scaling": {**LLAMA3, "factor": 8.0},
                             "tie_word_embeddings": True}, torch.bfloat16, None),
    "llama3 x32 f16": ({"rope_scaling": {**LLAMA3, "factor": 32.0}}, torch.float16, None),
    "mha f32": ({"num_key_value_heads": 4}, torch.float32, None),
    "sharded f32": ({}, torch.float32, "100KB"),
}


def hf_config(overrides: dict) -> HFLlamaConfig:
    base = dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=16, vocab_size=1000, rms_norm_eps=1e-5,
                rope_theta=500000.0, rope_scaling=None, tie_word_embeddings=False,
                max_position_embeddings=131072, hidden_act="silu")
    base.update(overrides)
    return HFLlamaConfig(**base)


def build_and_save(overrides: dict, dtype: torch.dtype, shard: str | None, out: pathlib.Path,
                   seed: int) -> None:
    """Random weights (llama_ref.random_hf_weights) in a transformers model, saved to ``out``."""
    config = hf_config(overrides)
    model = LlamaForCausalLM(config).double()
    ours = llama_ref.random_hf_weights(llama_ref.LlamaConfig.from_hf(config.to_dict()), seed)
    if config.tie_word_embeddings:
        ours["lm_head.weight"] = ours["model.embed_tokens.weight"]
    model.load_state_dict({k: torch.from_numpy(v) for k, v in ours.items()}, strict=True)
    model.to(dtype)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out, safe_serialization=True, **kwargs)
    assert (out / "model.safetensors.index.json").exists() == bool(shard)


# ---- precision-only patches of transformers (see the module docstring)


def _rmsnorm_fp64(self, hidden_states):
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def _default_rope_fp64(config, device=None, seq_len=None, **kwargs):
    """transformers' _compute_default_rope_parameters, in float64."""
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    base = config.rope_theta
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)), 1.0


def _rotary_forward_fp64(self, x, position_ids):
    inv_freq = self.inv_freq[None, :, None].to(torch.float64).expand(position_ids.shape[0], -1, 1)
    freqs = (inv_freq @ position_ids[:, None, :].to(torch.float64)).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return ((emb.cos() * self.attention_scaling).to(x.dtype),
            (emb.sin() * self.attention_scaling).to(x.dtype))


def hf_logits(model_dir: pathlib.Path, tokens: np.ndarray, fp64: bool) -> np.ndarray:
    """All logits of transformers' LlamaForCausalLM loaded in float64 from ``model_dir``."""
    norm_fwd = modeling_llama.LlamaRMSNorm.forward
    rot_fwd = modeling_llama.LlamaRotaryEmbedding.forward
    default_rope = rope_utils._compute_default_rope_parameters
    default_entry = rope_utils.ROPE_INIT_FUNCTIONS["default"]
    if fp64:
        modeling_llama.LlamaRMSNorm.forward = _rmsnorm_fp64
        modeling_llama.LlamaRotaryEmbedding.forward = _rotary_forward_fp64
        rope_utils._compute_default_rope_parameters = _default_rope_fp64  # used by llama3's init
        rope_utils.ROPE_INIT_FUNCTIONS["default"] = _default_rope_fp64
    try:
        model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float64,
                                                 attn_implementation="sdpa")
        model.eval()
        if fp64:
            assert model.model.rotary_emb.inv_freq.dtype == torch.float64
        with torch.no_grad():
            out = model(torch.tensor(tokens, dtype=torch.long)[None]).logits[0]
        assert out.dtype == torch.float64
        return out.numpy()
    finally:
        modeling_llama.LlamaRMSNorm.forward = norm_fwd
        modeling_llama.LlamaRotaryEmbedding.forward = rot_fwd
        rope_utils._compute_default_rope_parameters = default_rope
        rope_utils.ROPE_INIT_FUNCTIONS["default"] = default_entry


def stock_double_inv_freq_dtype(model_dir: pathlib.Path) -> str:
    """What .double() does to the stock model's inv_freq buffer (it is cast, but see docstring)."""
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    before = model.model.rotary_emb.inv_freq.dtype
    model.double()
    return f"{before} -> {model.model.rotary_emb.inv_freq.dtype}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=300, help="sequence length of the variants")
    ap.add_argument("--long", type=int, default=0,
                    help="also run the llama3 x8/x32 variants at this length (e.g. 9000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"numpy {np.__version__}")
    rng = np.random.default_rng(args.seed)
    runs = [(name, args.tokens) for name in VARIANTS]
    if args.long:
        runs += [("llama3 x8 f32", args.long), ("llama3 x32 f32", args.long)]
    print(f"{'variant':22s} {'T':>6s} {'ref vs hf fp64':>15s} {'meta vs hf fp64':>16s} "
          f"{'ref vs hf stock':>16s}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, t) in enumerate(runs):
            overrides, dtype, shard = VARIANTS[name]
            d = pathlib.Path(tmp) / f"m{i}"
            build_and_save(overrides, dtype, shard, d, seed=args.seed + i)
            tokens = rng.integers(0, 1000, size=t)
            cfg, w = llama_ref.load_model(d)
            ref = llama_ref.forward_hf(cfg, w, tokens)
            meta = (llama_ref.forward_meta(cfg, llama_ref.hf_to_meta_weights(cfg, w), tokens)
                    if t <= 4096 else None)
            hf64 = hf_logits(d, tokens, fp64=True)
            stock = hf_logits(d, tokens, fp64=False)
            e_ref = llama_ref.rel_l2(ref, hf64)
            e_meta = llama_ref.rel_l2(meta, hf64) if meta is not None else math.nan
            e_stock = llama_ref.rel_l2(ref, stock)
            worst = max(worst, e_ref, 0.0 if meta is None else e_meta)
            print(f"{name:22s} {t:6d} {e_ref:15.3e} {e_meta:16.3e} {e_stock:16.3e}", flush=True)
            if i == 0:
                note = stock_double_inv_freq_dtype(d)
        print(f"stock model .double(): inv_freq {note}; LlamaRotaryEmbedding.forward still "
              f"casts it with .float()")
    print(f"max ref/meta vs transformers (fp64 patches): {worst:.3e}")
    return 0 if worst < 1e-10 else 1


if __name__ == "__main__":
    sys.exit(main())
