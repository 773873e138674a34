#!/usr/bin/env python3
"""Writes tests/golden/model/transformers_logits.json: what Hugging Face transformers'
LlamaForCausalLM says on tiny random Llama 3 models (the golden for
tests/python/test_transformers_golden.py, which checks herd against it with numpy only).

For each variant the model directory is built exactly as the test rebuilds it, with numpy only:
``llama_ref.tiny_config(**overrides)``, ``llama_ref.random_hf_weights(cfg, seed)`` and
``write_model`` from tests/python/test_llama_ref.py (config.json + model.safetensors). It is then
loaded with stock transformers, ``LlamaForCausalLM.from_pretrained(dir, dtype=torch.float32)``,
no patches and default attention (sdpa), as users do, and run on a fixed token sequence.

Variants:
  gqa_x8_f32     4 heads / 2 kv heads, llama3 rope scaling factor 8, untied, F32 file
                 (a 64-token and a 600-token sequence)
  tied_x32_bf16  tied embeddings, llama3 factor 32, 1 kv head, BF16 file (64 and 600 tokens: at 64
                 positions factors 8 and 32 differ by only ~4e-4 in the logits, at 600 by ~2e-3)
  mha_plain_f32  4 heads / 4 kv heads, no scaling, rope_theta 10000, F32 file

Stored per variant: the tiny_config overrides, the weights seed, the file dtype, the sha256 of the
model.safetensors bytes (so the test notices when numpy's generator or the writer produce other
weights), the config.json written, and per sequence: the tokens, the logits of a few positions
(float32 values rounded to 7 significant digits) and the top 5 of the last position. For the record
the float64 reference (tools/llama_ref.py) is run on the same files and its relative L2 distance to
transformers is printed and stored (about 1e-7: transformers computes the RoPE angles and RMSNorm
in float32 even for float64 models, and this golden is float32 throughout).

Needs .venv-tools (tools/requirements-tools.txt, which includes torch):
    .venv-tools/bin/python tools/gen_transformers_golden.py [--out FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import platform
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import LlamaForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests" / "python"))

import llama_ref  # noqa: E402


def _import_write_model():
    """write_model from tests/python/test_llama_ref.py, the writer the test uses.

    That module imports pytest for its own tests; .venv-tools has no pytest, so a stand-in whose
    ``pytest.mark.<anything>(...)`` is a no-op decorator is put in place just for the import.
    """
    try:
        import pytest  # noqa: F401
    except ImportError:
        import types

        class _Mark:
            def __getattr__(self, _name):
                return lambda *a, **k: (lambda f: f)

        stub = types.ModuleType("pytest")
        stub.mark = _Mark()
        stub.fixture = lambda *a, **k: (lambda f: f)
        sys.modules["pytest"] = stub
        try:
            from test_llama_ref import write_model
        finally:
            del sys.modules["pytest"]
        return write_model
    from test_llama_ref import write_model
    return write_model


write_model = _import_write_model()

DEFAULT_OUT = ROOT / "tests/golden/model/transformers_logits.json"
COMMAND = ".venv-tools/bin/python tools/gen_transformers_golden.py"

X8 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192}
X32 = dict(X8, factor=32.0)

# name -> (tiny_config overrides as JSON, weights seed, safetensors dtype,
#          sequences: [(name, length, token seed)])
VARIANTS = {
    "gqa_x8_f32": ({"n_heads": 4, "n_kv_heads": 2, "rope_scaling": X8,
                    "tie_word_embeddings": False}, 1001, "F32",
                   [("short", 64, 2001), ("long", 600, 2002)]),
    "tied_x32_bf16": ({"n_kv_heads": 1, "rope_scaling": X32, "tie_word_embeddings": True}, 1002,
                      "BF16", [("short", 64, 2003), ("long", 600, 2005)]),
    "mha_plain_f32": ({"n_heads": 4, "n_kv_heads": 4, "rope_scaling": None,
                       "rope_theta": 10000.0}, 1003, "F32", [("short", 64, 2004)]),
}


def config_from_overrides(overrides: dict) -> llama_ref.LlamaConfig:
    """tiny_config with JSON overrides (rope_scaling as a dict of RopeScaling's fields)."""
    o = dict(overrides)
    if o.get("rope_scaling") is not None:
        o["rope_scaling"] = llama_ref.RopeScaling(**o["rope_scaling"])
    return llama_ref.tiny_config(**o)


def positions_of(n: int) -> list[int]:
    """First, middle and last position."""
    return [0, n // 2 - 1, n - 1]


def sig7(a) -> list[float]:
    """float32 values rounded to 7 significant digits (JSON writes them back in <= 7 digits)."""
    return [float(f"{float(v):.6e}") for v in np.asarray(a, dtype=np.float32).ravel()]


def transformers_logits(model_dir: pathlib.Path, tokens: list[int], positions: list[int],
                        cfg: llama_ref.LlamaConfig) -> tuple[np.ndarray, str]:
    model, info = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                   output_loading_info=True)
    model.eval()
    bad = {k: v for k, v in info.items() if v}  # missing/unexpected/mismatched keys, errors
    if bad:
        raise RuntimeError(f"{model_dir}: transformers loading info {bad}")
    assert model.dtype == torch.float32
    emb = model.model.embed_tokens.weight
    assert (model.lm_head.weight.data_ptr() == emb.data_ptr()) == cfg.tie_word_embeddings
    with torch.no_grad():
        out = model(torch.tensor(tokens, dtype=torch.long)[None]).logits[0]
    assert out.dtype == torch.float32 and out.shape == (len(tokens), cfg.vocab_size)
    return out[positions].numpy().astype(np.float64), model.config._attn_implementation


def dumps(golden: dict) -> str:
    """Indented JSON with every number list on one line (the logit rows stay one line each)."""
    rows: list[str] = []

    def pack(o):
        if isinstance(o, dict):
            return {k: pack(v) for k, v in o.items()}
        if isinstance(o, list) and o and all(isinstance(v, (int, float)) or
                                             (isinstance(v, list) and len(v) == 2) for v in o):
            rows.append(json.dumps(o, separators=(", ", ": ")))
            return f"@@ROW{len(rows) - 1}@@"
        if isinstance(o, list):
            return [pack(v) for v in o]
        return o

    text = json.dumps(pack(golden), indent=1)
    for i, row in enumerate(rows):
        text = text.replace(f'"@@ROW{i}@@"', row, 1)
    return text + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.manual_seed(0)
    golden = {
        "about": "Logits of stock transformers LlamaForCausalLM (float32) on tiny random Llama 3 "
                 "models rebuilt with numpy by tests/python/test_transformers_golden.py: "
                 "llama_ref.tiny_config(**config_overrides), llama_ref.random_hf_weights(cfg, "
                 "weights_seed), test_llama_ref.write_model(dir, cfg, weights, dtype). Logits are "
                 "float32 rounded to 7 significant digits; top5_last is [token, logit] of the last "
                 "position.",
        "command": COMMAND,
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "transformers_load": {"class": "LlamaForCausalLM", "dtype": "float32"},
        "variants": {},
    }
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (overrides, seed, dtype, sequences) in VARIANTS.items():
            cfg = config_from_overrides(overrides)
            model_dir = write_model(pathlib.Path(tmp) / name, cfg,
                                    llama_ref.random_hf_weights(cfg, seed=seed), dtype)
            sha = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
            ref_cfg, ref_w = llama_ref.load_model(model_dir)
            assert ref_cfg == cfg
            entry = {"config_overrides": overrides, "weights_seed": seed, "dtype": dtype,
                     "safetensors_sha256": sha,
                     "config_json": json.loads((model_dir / "config.json").read_text()),
                     "sequences": {}}
            for seq_name, length, tok_seed in sequences:
                tokens = [int(t) for t in
                          np.random.default_rng(tok_seed).integers(0, cfg.vocab_size, length)]
                pos = positions_of(length)
                hf, attn = transformers_logits(model_dir, tokens, pos, cfg)
                golden["transformers_load"]["attn_implementation"] = attn
                ref = llama_ref.forward_hf(ref_cfg, ref_w, tokens, positions_out=pos)
                errs = [llama_ref.rel_l2(ref[i], hf[i]) for i in range(len(pos))]
                last = hf[-1].astype(np.float32)
                top = np.argsort(-last, kind="stable")[:5]
                assert int(top[0]) == int(np.argmax(ref[-1])), f"{name} {seq_name}: top-1"
                entry["sequences"][seq_name] = {
                    "tokens_seed": tok_seed,
                    "tokens": tokens,
                    "positions": pos,
                    "logits": [sig7(row) for row in hf],
                    "top5_last": [[int(i), float(last[i])] for i in top],
                    "rel_l2_llama_ref_vs_transformers": [float(f"{e:.3e}") for e in errs],
                }
                print(f"{name:14s} {seq_name:5s} T={length:4d} positions {pos}: "
                      f"rel L2 llama_ref (float64) vs transformers "
                      f"{', '.join(f'{e:.2e}' for e in errs)}", flush=True)
            golden["variants"][name] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(golden)
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text.encode()) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
