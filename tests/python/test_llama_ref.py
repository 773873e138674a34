"""Tests of tools/llama_ref.py, the float64 Llama 3 reference forward pass (numpy only, fast).

Tiny random models are written to a tmp dir as Hugging Face directories (config.json +
safetensors written here with numpy, independently of the reader under test) and checked for:
agreement of the HF (rotate-half) and Meta (interleaved complex) paths, llama3 RoPE scaling,
sharded loading, GQA, causality, chunked attention, dtype decoding and the CLI.
"""
import dataclasses
import json
import math
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import llama_ref as L  # noqa: E402

LLAMA3 = {"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}


# ---- writing HF model directories with numpy


def bf16_bits(a):
    """float -> bfloat16 bit patterns (uint16), round to nearest even."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Write a .safetensors file: u64 LE header size, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        if dtype == "BF16":
            raw = bf16_bits(arr).astype("<u2").tobytes()
        else:
            raw = np.asarray(arr, dtype={"F32": "<f4", "F16": "<f2", "F64": "<f8"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def hf_config_dict(cfg):
    d = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
         "hidden_size": cfg.dim, "num_hidden_layers": cfg.n_layers,
         "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
         "intermediate_size": cfg.ffn_dim, "vocab_size": cfg.vocab_size,
         "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
         "tie_word_embeddings": cfg.tie_word_embeddings, "rope_scaling": None,
         "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
    if cfg.rope_scaling is not None:
        s = cfg.rope_scaling
        d["rope_scaling"] = {**LLAMA3, "factor": s.factor, "low_freq_factor": s.low_freq_factor,
                             "high_freq_factor": s.high_freq_factor,
                             "original_max_position_embeddings": s.original_max_position_embeddings}
    return d


def write_model(directory, cfg, weights, dtype="F32", shards=1):
    """A HF model directory; ``shards`` > 1 writes model-0000N-of-0000M + index.json."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(hf_config_dict(cfg)))
    names = list(weights)
    if shards == 1:
        write_safetensors(directory / "model.safetensors", weights, dtype, {"format": "pt"})
        return directory
    weight_map = {}
    for i in range(shards):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names[i::shards]}
        write_safetensors(directory / fname, part, dtype)
        weight_map.update({n: fname for n in part})
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return directory


def rounded(weights, dtype):
    """The float64 values a file of ``dtype`` holds for ``weights``."""
    if dtype == "BF16":
        return {k: (bf16_bits(v).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
                for k, v in weights.items()}
    np_dtype = {"F32": np.float32, "F16": np.float16, "F64": np.float64}[dtype]
    return {k: v.astype(np_dtype).astype(np.float64) for k, v in weights.items()}


SCALED8 = L.RopeScaling(8.0, 1.0, 4.0, 8192)
SCALED32 = L.RopeScaling(32.0, 1.0, 4.0, 8192)
VARIANTS = {
    "plain-f32": (L.tiny_config(), "F32"),
    "tied-bf16": (L.tiny_config(tie_word_embeddings=True), "BF16"),
    "llama3x8-tied-f32": (L.tiny_config(rope_scaling=SCALED8, tie_word_embeddings=True), "F32"),
    "llama3x32-bf16": (L.tiny_config(rope_scaling=SCALED32), "BF16"),
    "llama3x8-f16": (L.tiny_config(rope_scaling=SCALED8), "F16"),
}


def tokens(n, seed=0, vocab=1000):
    return np.random.default_rng(seed).integers(0, vocab, size=n)


# ---- safetensors and config


def test_safetensors_handmade_bytes(tmp_path):
    """Decode a file built byte by byte (not with the writer above)."""
    f32 = struct.pack("<3f", 1.5, -2.0, 0.25)
    f16 = struct.pack("<2e", 0.5, -65504.0)
    bf16 = struct.pack("<4H", 0x3F80, 0xC040, 0x3EAB, 0x0001)  # 1, -3, ~0.333984375, denormal
    f64 = struct.pack("<d", math.pi)
    header = {"__metadata__": {"format": "pt"},
              "b": {"dtype": "F16", "shape": [2, 1], "data_offsets": [12, 16]},
              "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
              "c": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [16, 24]},
              "d": {"dtype": "F64", "shape": [], "data_offsets": [24, 32]}}
    head = json.dumps(header).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head + f32 + f16 + bf16 + f64)
    t = L.read_safetensors(path)
    assert sorted(t) == ["a", "b", "c", "d"]
    assert all(v.dtype == np.float64 for v in t.values())
    assert t["a"].tolist() == [1.5, -2.0, 0.25]
    assert t["b"].tolist() == [[0.5], [-65504.0]]
    assert t["c"].tolist() == [[1.0, -3.0], [0.333984375, 2.0 ** -133]]
    assert t["d"].shape == () and t["d"] == math.pi


def test_safetensors_rejects_bad_offsets(tmp_path):
    head = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head + bytes(12))
    with pytest.raises(ValueError):
        L.read_safetensors(path)


def test_config_parsing():
    d = hf_config_dict(L.tiny_config(rope_scaling=SCALED32))
    cfg = L.LlamaConfig.from_hf(d)
    assert cfg == L.tiny_config(rope_scaling=SCALED32)
    d["rope_scaling"] = {"type": "llama3", "factor": 8, "low_freq_factor": 1,
                         "high_freq_factor": 4, "original_max_position_embeddings": 8192}
    d["head_dim"] = 32
    del d["num_key_value_heads"]
    cfg = L.LlamaConfig.from_hf(d)
    assert cfg.rope_scaling == SCALED8 and cfg.head_dim == 32 and cfg.n_kv_heads == 4
    d["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
    with pytest.raises(NotImplementedError):
        L.LlamaConfig.from_hf(d)


# ---- the two forward paths


@pytest.mark.parametrize("name", list(VARIANTS))
def test_hf_path_equals_meta_path(tmp_path, name):
    cfg, dtype = VARIANTS[name]
    w = L.random_hf_weights(cfg, seed=len(name))
    model = write_model(tmp_path / name, cfg, w, dtype)
    loaded_cfg, loaded = L.load_model(model)
    assert loaded_cfg == cfg
    exact = rounded(w, dtype)
    assert sorted(loaded) == sorted(exact)
    assert all(np.array_equal(loaded[k], exact[k]) for k in exact)
    tok = tokens(200, seed=1)
    hf = L.logits_from_dir(model, tok, chunk=64)
    assert hf.shape == (200, cfg.vocab_size) and hf.dtype == np.float64
    meta = L.forward_meta(cfg, L.hf_to_meta_weights(cfg, loaded), tok)
    assert L.rel_l2(meta, hf) < 1e-12
    assert np.abs(meta - hf).max() < 1e-11 * np.abs(hf).max()


def test_meta_path_detects_wrong_qk_layout():
    """Negative control: without the q/k row permutation the two paths disagree clearly."""
    cfg = L.tiny_config()
    w = L.random_hf_weights(cfg, seed=5)
    tok = tokens(64, seed=2)
    meta_w = L.hf_to_meta_weights(cfg, w)
    for i in range(cfg.n_layers):
        meta_w[f"layers.{i}.attention.wq.weight"] = w[f"model.layers.{i}.self_attn.q_proj.weight"]
        meta_w[f"layers.{i}.attention.wk.weight"] = w[f"model.layers.{i}.self_attn.k_proj.weight"]
    assert L.rel_l2(L.forward_meta(cfg, meta_w, tok), L.forward_hf(cfg, w, tok)) > 1e-3


def test_qk_permutation():
    """HF rows (per head of d=4: pairs (0,2), (1,3)) become Meta rows in order 0,2,1,3."""
    w = np.arange(8 * 3, dtype=np.float64).reshape(8, 3)  # 2 heads of head_dim 4
    meta = L.hf_to_meta_qk(w, 2)
    assert np.array_equal(meta, w[[0, 2, 1, 3, 4, 6, 5, 7]])
    assert np.array_equal(L.meta_to_hf_qk(meta, 2), w)
    big = np.random.default_rng(0).standard_normal((4 * 128, 7))
    assert np.array_equal(L.meta_to_hf_qk(L.hf_to_meta_qk(big, 4), 4), big)
    assert np.array_equal(L.hf_to_meta_qk(L.meta_to_hf_qk(big, 4), 4), big)


# ---- RoPE and its llama3 scaling


def test_llama3_scaling_values():
    """Llama 3.1 8B numbers: head_dim 128, theta 500000, factor 8, low 1, high 4, old 8192."""
    base = L.rope_inv_freq(128, 500000.0)
    assert base[0] == 1.0 and math.isclose(base[1], 500000.0 ** (-2 / 128), rel_tol=1e-15)
    scaled = L.rope_inv_freq(128, 500000.0, SCALED8)
    wavelen = 2 * math.pi / base
    high = wavelen < 8192 / 4
    low = wavelen > 8192 / 1
    mid = ~high & ~low
    assert high.sum() and low.sum() and mid.sum()
    assert np.array_equal(scaled[high], base[high])
    assert np.allclose(scaled[low], base[low] / 8, rtol=1e-15, atol=0)
    assert np.all((scaled[mid] < base[mid]) & (scaled[mid] > base[mid] / 8))
    smooth = (8192 / wavelen[mid] - 1) / (4 - 1)
    assert np.allclose(scaled[mid], (1 - smooth) * base[mid] / 8 + smooth * base[mid], rtol=1e-15)
    # The factor comes from the config, and Meta's element-wise loop agrees.
    scaled32 = L.rope_inv_freq(128, 500000.0, SCALED32)
    assert np.allclose(scaled32[low], base[low] / 32, rtol=1e-15, atol=0)
    for s in (SCALED8, SCALED32):
        assert np.allclose(L._meta_apply_scaling(base, s), L.rope_inv_freq(128, 500000.0, s),
                           rtol=1e-15, atol=0)


def test_rope_rotate_half_matches_complex_pairs():
    """rotate-half RoPE on (i, i+d/2) == complex rotation of Meta's (2i, 2i+1) pairs."""
    rng = np.random.default_rng(3)
    d, t = 16, 50
    x = rng.standard_normal((t, 1, d))  # HF order
    inv = L.rope_inv_freq(d, 500000.0, SCALED32)
    cos, sin = L.rope_cos_sin(np.arange(t), inv)
    hf = L.apply_rope_rotate_half(x.transpose(1, 0, 2), cos, sin).transpose(1, 0, 2)
    to_meta = np.array([i + j * d // 2 for i in range(d // 2) for j in range(2)])
    meta = L._meta_apply_rotary_emb(x[..., to_meta],
                                    L.meta_precompute_freqs_cis(d, t, 500000.0, SCALED32))
    assert np.allclose(meta, hf[..., to_meta], rtol=0, atol=1e-14)
    norms = np.linalg.norm(hf, axis=-1)
    assert np.allclose(norms, np.linalg.norm(x, axis=-1), rtol=1e-14)


def test_rope_scaling_changes_logits():
    """Factors 8 and 32 (and none) differ at later positions but not at position 0."""
    cfgs = [L.tiny_config(), L.tiny_config(rope_scaling=SCALED8),
            L.tiny_config(rope_scaling=SCALED32)]
    w = L.random_hf_weights(cfgs[0], seed=7)
    tok = tokens(300, seed=3)
    outs = [L.forward_hf(c, w, tok, positions_out=[0, 299]) for c in cfgs]
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.array_equal(outs[a][0], outs[b][0])
            assert L.rel_l2(outs[a][1], outs[b][1]) > 1e-4


# ---- loading variants, GQA, causality, chunking


def test_sharded_equals_single(tmp_path):
    cfg = L.tiny_config(rope_scaling=SCALED8)
    w = L.random_hf_weights(cfg, seed=11)
    single = write_model(tmp_path / "single", cfg, w, "BF16")
    sharded = write_model(tmp_path / "sharded", cfg, w, "BF16", shards=3)
    assert len(list(sharded.glob("model-*-of-00003.safetensors"))) == 3
    a, b = L.load_hf_weights(single), L.load_hf_weights(sharded)
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    tok = tokens(40, seed=4)
    assert np.array_equal(L.logits_from_dir(single, tok), L.logits_from_dir(sharded, tok))


def test_bf16_file_equals_f32_file_of_rounded_values(tmp_path):
    cfg = L.tiny_config(tie_word_embeddings=True)
    w = rounded(L.random_hf_weights(cfg, seed=12), "BF16")
    tok = tokens(30, seed=5)
    a = L.logits_from_dir(write_model(tmp_path / "bf16", cfg, w, "BF16"), tok)
    b = L.logits_from_dir(write_model(tmp_path / "f32", cfg, w, "F32"), tok)
    assert np.array_equal(a, b)


def test_gqa_equals_mha_with_repeated_kv():
    """GQA with 2 kv heads == MHA whose kv head h is kv head h // 2 of the GQA model."""
    gqa = L.tiny_config(n_kv_heads=2)
    mha = dataclasses.replace(gqa, n_kv_heads=4)
    w = L.random_hf_weights(gqa, seed=13)
    w_mha = dict(w)
    d = gqa.head_dim
    rows = np.concatenate([np.arange(d) + (h // 2) * d for h in range(4)])
    for i in range(gqa.n_layers):
        for n in ("k_proj", "v_proj"):
            key = f"model.layers.{i}.self_attn.{n}.weight"
            w_mha[key] = w[key][rows]
    tok = tokens(60, seed=6)
    out_gqa = L.forward_hf(gqa, w, tok)
    assert L.rel_l2(L.forward_hf(mha, w_mha, tok), out_gqa) < 1e-13
    assert L.rel_l2(L.forward_meta(mha, L.hf_to_meta_weights(mha, w_mha), tok), out_gqa) < 1e-13
    # Sharing by h % n_kv instead of h // n_rep would be a different model.
    wrong = np.concatenate([np.arange(d) + (h % 2) * d for h in range(4)])
    w_bad = dict(w_mha)
    for i in range(gqa.n_layers):
        for n in ("k_proj", "v_proj"):
            key = f"model.layers.{i}.self_attn.{n}.weight"
            w_bad[key] = w[key][wrong]
    assert L.rel_l2(L.forward_hf(mha, w_bad, tok), out_gqa) > 1e-3


def test_attention_matches_naive_loops():
    """causal_attention (MHA and GQA) against an explicit per-query loop."""
    rng = np.random.default_rng(8)
    t, d = 23, 8
    q = rng.standard_normal((4, t, d))
    for n_kv in (4, 2, 1):
        k, v = rng.standard_normal((n_kv, t, d)), rng.standard_normal((n_kv, t, d))
        ref = np.zeros_like(q)
        for h in range(4):
            g = h // (4 // n_kv)
            for i in range(t):
                s = [float(q[h, i] @ k[g, j]) / math.sqrt(d) for j in range(i + 1)]
                e = [math.exp(x - max(s)) for x in s]
                ref[h, i] = sum(e[j] * v[g, j] for j in range(i + 1)) / sum(e)
        for chunk in (None, 1, 5, 64):
            assert np.allclose(L.causal_attention(q, k, v, chunk), ref, rtol=0, atol=1e-13)


def test_causality():
    cfg = L.tiny_config(rope_scaling=SCALED8)
    w = L.random_hf_weights(cfg, seed=14)
    tok = tokens(80, seed=7)
    full = L.forward_hf(cfg, w, tok, chunk=16)
    changed = tok.copy()
    changed[50:] = (changed[50:] + 1) % cfg.vocab_size
    other = L.forward_hf(cfg, w, changed, chunk=16)
    assert np.allclose(other[:50], full[:50], rtol=0, atol=1e-12 * np.abs(full).max())
    assert L.rel_l2(other[50:], full[50:]) > 1e-3
    prefix = L.forward_hf(cfg, w, tok[:33], chunk=16)
    assert np.allclose(prefix, full[:33], rtol=0, atol=1e-12 * np.abs(full).max())


def test_chunked_equals_unchunked_and_positions_out():
    cfg = L.tiny_config(rope_scaling=SCALED32, tie_word_embeddings=True)
    w = L.random_hf_weights(cfg, seed=15)
    tok = tokens(150, seed=8)
    full = L.forward_hf(cfg, w, tok, chunk=None)
    for chunk in (1, 7, 64, 1024):
        assert L.rel_l2(L.forward_hf(cfg, w, tok, chunk=chunk), full) < 1e-13
    pos = [149, 0, 77, 77]
    sel = L.forward_hf(cfg, w, tok, positions_out=pos, chunk=32)
    assert sel.shape == (4, cfg.vocab_size)
    assert np.allclose(sel, full[pos], rtol=0, atol=1e-12 * np.abs(full).max())
    with pytest.raises(ValueError):
        L.forward_hf(cfg, w, tok, positions_out=[150])


def test_long_context_positions_out():
    """2500 positions in chunks of 1024; only the requested rows of logits are materialised."""
    cfg = L.tiny_config(rope_scaling=SCALED8)
    w = L.random_hf_weights(cfg, seed=16)
    tok = tokens(2500, seed=9)
    out = L.forward_hf(cfg, w, tok, positions_out=[0, 2499], chunk=1024)
    assert out.shape == (2, cfg.vocab_size) and np.all(np.isfinite(out))
    assert L.rel_l2(out[0], L.forward_hf(cfg, w, tok[:1])[0]) < 1e-14


# ---- CLI


def test_cli(tmp_path):
    cfg = L.tiny_config(rope_scaling=SCALED8)
    w = L.random_hf_weights(cfg, seed=17)
    model = write_model(tmp_path / "m", cfg, w, "BF16")
    tok = tokens(12, seed=10)
    expected = L.logits_from_dir(model, tok)
    script = ROOT / "tools" / "llama_ref.py"
    tok_arg = ",".join(map(str, tok))
    cases = (([], [11]), (["--all"], list(range(12))), (["--positions", "0,5,9"], [0, 5, 9]))
    for extra, rows in cases:
        out = tmp_path / "out.npy"
        r = subprocess.run([sys.executable, str(script), "--model", str(model), "--tokens", tok_arg,
                            *extra, "--out", str(out)], capture_output=True, text=True, check=True)
        got = np.load(out)
        assert got.dtype == np.float64 and got.shape == (len(rows), cfg.vocab_size)
        assert np.allclose(got, expected[rows], rtol=0, atol=1e-12 * np.abs(expected).max())
        top = json.loads(r.stdout)["top"]
        last = expected[rows[-1]]
        assert [i for i, _ in top] == list(np.argsort(-last, kind="stable")[:5])
        assert np.allclose([v for _, v in top], np.sort(last)[::-1][:5], rtol=1e-12)


def test_self_test_entry_point():
    assert L.self_test(verbose=False) < 1e-12
