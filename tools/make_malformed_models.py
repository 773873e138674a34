#!/usr/bin/env python3
"""Writes the malformed-model matrix: tests/golden/malformed/ (stdlib + numpy only, no torch).

herd must answer every bad model file with one clear error naming the file (and the tensor where
there is one): exit code 1 and one stderr line starting "herd: " -- never a crash, a hang, or a
success computed from garbage. tests/python/test_malformed_models.py runs
`herd logits --model <case> --tokens 1,2,3 --out FILE` over every case listed here.

First it writes tiny VALID base models (dim 8, 1 layer, 2 heads, 1 kv head, ffn 8, vocab 16; the
same f16 weights in every format, a few KB each):
  hf/base            config.json + model.safetensors
  hf/base_sharded    config.json + model-0000N-of-00002.safetensors + model.safetensors.index.json
  meta/base          params.json + consolidated.00.pth (a torch.save ZIP with a protocol-2 pickle)
  meta/base_2shards  params.json + consolidated.00.pth + consolidated.01.pth (model parallel)
  gguf/base          model.gguf (GGUF v3, with a rope_freqs tensor of ones)
then derives each malformed case from them, changing one thing. manifest.json lists the valid
models ("valid") and the cases ("cases"), each with:
  model     the path to give `herd logits --model` (relative to the manifest's directory)
  format    hf | meta | gguf
  problem   what is wrong with it
  expect    a substring herd's error message must contain
  file      the file the message must name (relative path; its tail is what herd prints), or null
  known_bug (only where herd currently mishandles the case) what herd does instead
Every GGUF case sits in a directory of its own, so herd's fallback from a file that is not GGUF to
the directory around it finds nothing else.

Run: python3 tools/make_malformed_models.py [OUT_DIR]      (default tests/golden/malformed)
The output is a pure function of this script: byte-identical on every run (the test checks).
Weights come from random.Random (whose random() sequence Python guarantees across versions), not
from numpy's generators.
"""
import json
import pathlib
import random
import shutil
import struct
import sys
import zlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests/golden/malformed"

# The base model. norm_eps is 2^-16 so that it is exact in GGUF's float32 as in JSON.
DIM, N_LAYERS, N_HEADS, N_KV_HEADS, FFN, VOCAB = 8, 1, 2, 1, 8, 16
HEAD_DIM = DIM // N_HEADS
NORM_EPS = 2.0 ** -16
ROPE_THETA = 10000.0
MAX_SEQ = 64

# ---------------------------------------------------------------------------------------------
# Weights (Meta naming and Meta's interleaved RoPE row order), deterministic.


def _values(name, shape, scale, offset=0.0):
    rnd = random.Random(zlib.crc32(name.encode()))
    n = int(np.prod(shape)) if shape else 1
    vals = [offset + (2 * rnd.random() - 1) * scale for _ in range(n)]
    return np.array(vals, dtype=np.float16).reshape(shape)


def meta_weights():
    """OrderedDict-like list of (Meta name, float16 array), in state_dict order."""
    q, kv = N_HEADS * HEAD_DIM, N_KV_HEADS * HEAD_DIM
    w = [("tok_embeddings.weight", _values("tok", (VOCAB, DIM), 1.0))]
    for i in range(N_LAYERS):
        p = f"layers.{i}."
        w += [
            (p + "attention.wq.weight", _values(p + "wq", (q, DIM), 0.5)),
            (p + "attention.wk.weight", _values(p + "wk", (kv, DIM), 0.5)),
            (p + "attention.wv.weight", _values(p + "wv", (kv, DIM), 0.5)),
            (p + "attention.wo.weight", _values(p + "wo", (DIM, q), 0.5)),
            (p + "feed_forward.w1.weight", _values(p + "w1", (FFN, DIM), 0.5)),
            (p + "feed_forward.w2.weight", _values(p + "w2", (DIM, FFN), 0.5)),
            (p + "feed_forward.w3.weight", _values(p + "w3", (FFN, DIM), 0.5)),
            (p + "attention_norm.weight", _values(p + "an", (DIM,), 0.1, 1.0)),
            (p + "ffn_norm.weight", _values(p + "fn", (DIM,), 0.1, 1.0)),
        ]
    w += [("norm.weight", _values("norm", (DIM,), 0.1, 1.0)),
          ("output.weight", _values("out", (VOCAB, DIM), 0.5))]
    return w


META_TO_HF = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
META_TO_GGUF = {
    "tok_embeddings.weight": "token_embd.weight",
    "norm.weight": "output_norm.weight",
    "output.weight": "output.weight",
    "attention.wq.weight": "attn_q.weight",
    "attention.wk.weight": "attn_k.weight",
    "attention.wv.weight": "attn_v.weight",
    "attention.wo.weight": "attn_output.weight",
    "feed_forward.w1.weight": "ffn_gate.weight",
    "feed_forward.w2.weight": "ffn_down.weight",
    "feed_forward.w3.weight": "ffn_up.weight",
    "attention_norm.weight": "attn_norm.weight",
    "ffn_norm.weight": "ffn_norm.weight",
}


def _rename(meta_name, table, layer_prefix):
    if meta_name.startswith("layers."):
        _, layer, rest = meta_name.split(".", 2)
        return layer_prefix.format(layer) + table[rest]
    return table[meta_name]


def meta_to_hf_rows(w, n_heads):
    """Meta's interleaved RoPE row order -> Hugging Face's rotate-half order (what
    convert_llama_weights_to_hf.py's permute() does)."""
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def hf_weights():
    out = []
    for name, w in meta_weights():
        if name.endswith("attention.wq.weight"):
            w = meta_to_hf_rows(w, N_HEADS)
        elif name.endswith("attention.wk.weight"):
            w = meta_to_hf_rows(w, N_KV_HEADS)
        out.append((_rename(name, META_TO_HF, "model.layers.{}."), np.ascontiguousarray(w)))
    return out


def gguf_weights():
    return [(_rename(n, META_TO_GGUF, "blk.{}."), w) for n, w in meta_weights()]


# ---------------------------------------------------------------------------------------------
# Hugging Face: config.json and safetensors.


def hf_config(**changes):
    c = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": DIM,
        "intermediate_size": FFN,
        "num_attention_heads": N_HEADS,
        "num_key_value_heads": N_KV_HEADS,
        "num_hidden_layers": N_LAYERS,
        "vocab_size": VOCAB,
        "max_position_embeddings": MAX_SEQ,
        "rms_norm_eps": NORM_EPS,
        "rope_theta": ROPE_THETA,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float16",
    }
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c, indent=2) + "\n"


ST_DTYPE = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
TORCH_STORAGE = {np.dtype(np.float16): "HalfStorage", np.dtype(np.float32): "FloatStorage"}


def le_bytes(a):
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def safetensors(tensors, header_edit=None, metadata=None):
    """tensors: [(name, array) or (name, dtype str, shape, raw bytes)], laid out back to back.
    header_edit(header dict) may change the header before it is written."""
    header = {"__metadata__": metadata or {"format": "pt"}}
    data = b""
    for t in tensors:
        if len(t) == 2:
            name, a = t
            dtype, shape, raw = ST_DTYPE[a.dtype], list(a.shape), le_bytes(a)
        else:
            name, dtype, shape, raw = t
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if header_edit:
        header_edit(header)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(8 + len(head)) % 8)  # the official writer pads the header to 8 bytes
    return struct.pack("<Q", len(head)) + head + data


def sharded_index(weight_map):
    total = sum(a.nbytes for _, a in hf_weights())
    return json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n"


SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"


def split_hf_shards():
    """The HF tensors in two shards: the embedding and layer tensors, then the rest."""
    w = hf_weights()
    first = [t for t in w if t[0].startswith("model.embed") or t[0].startswith("model.layers.")]
    second = [t for t in w if t not in first]
    return first, second


# ---------------------------------------------------------------------------------------------
# Meta: a torch.save archive (ZIP of STORED entries) holding a protocol-2 pickle of a state_dict,
# written opcode by opcode the way torch writes it.


def p_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b  # BINUNICODE


def p_int(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])  # BININT1
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)  # BININT2
    return b"J" + struct.pack("<i", n)  # BININT


def p_tuple(items):
    return b")" if not items else b"(" + b"".join(items) + b"t"  # EMPTY_TUPLE / MARK ... TUPLE


def p_global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()  # GLOBAL


class Pickle:
    """Writes a state_dict pickle the way torch does, memoizing the globals and the strings that
    repeat ('storage', 'cpu') with BINPUT and referring back to them with BINGET."""

    def __init__(self):
        self.memo = {}

    def memoized(self, key, first):
        if key in self.memo:
            return b"h" + bytes([self.memo[key]])  # BINGET
        self.memo[key] = len(self.memo)
        return first + b"q" + bytes([self.memo[key]])  # BINPUT

    def glob(self, module, name):
        return self.memoized(("global", module, name), p_global(module, name))

    def string(self, s):
        return self.memoized(("str", s), p_str(s))

    def ordered_dict(self):
        return self.glob("collections", "OrderedDict") + b")R"  # OrderedDict()

    def storage(self, storage_type, key, numel, kind="storage"):
        """The persistent id (kind, torch.<Type>Storage, key, 'cpu', numel) + BINPERSID."""
        return (b"(" + self.string(kind) + self.glob("torch", storage_type) + p_str(key) +
                self.string("cpu") + p_int(numel) + b"t" + b"Q")

    def tensor(self, key, shape, numel=None, storage_type="HalfStorage", offset=0, stride=None,
               kind="storage"):
        """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
        if stride is None:
            stride, s = [], 1
            for d in reversed(shape):
                stride.insert(0, s)
                s *= d
        if numel is None:
            numel = int(np.prod(shape)) if shape else 1
        fn = self.glob("torch._utils", "_rebuild_tensor_v2")
        args = (self.storage(storage_type, key, numel, kind) + p_int(offset) +
                p_tuple([p_int(d) for d in shape]) + p_tuple([p_int(d) for d in stride]) +
                b"\x89" + self.ordered_dict())  # NEWFALSE
        return fn + b"(" + args + b"t" + b"R"


def p_state_dict(items, proto=2):
    """items: [(key, value)], a value being pickle bytes or a function of the Pickle writer ->
    OrderedDict() MARK key value ... SETITEMS STOP."""
    pw = Pickle()
    head = b"\x80" + bytes([proto]) + pw.ordered_dict() + b"("
    body = b"".join(p_str(k) + (v(pw) if callable(v) else v) for k, v in items)
    return head + body + b"u" + b"."


def state_dict_pickle(tensors):
    return p_state_dict([(n, lambda pw, i=i, a=a: pw.tensor(str(i), list(a.shape), storage_type=TORCH_STORAGE[a.dtype]))
                         for i, (n, a) in enumerate(tensors)])


def zip_archive(entries, align=64):
    """entries: [(name, bytes) or (name, bytes, 'deflate')]. A fixed timestamp, data aligned to
    `align` bytes with a padding extra field as torch.save does."""
    out, cd = bytearray(), bytearray()
    for entry in entries:
        name, data = entry[0], entry[1]
        method, stored = 0, data
        if len(entry) > 2 and entry[2] == "deflate":
            # A valid DEFLATE stream of one stored block (BFINAL=1, BTYPE=00, LEN, NLEN): unlike
            # zlib's output, it is the same bytes with every zlib version.
            assert len(data) < 65536
            method, stored = 8, b"\x01" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data
        nb = name.encode()
        offset = len(out)
        pad = -(offset + 30 + len(nb)) % align
        if 0 < pad < 4:
            pad += align
        extra = struct.pack("<HH", 0x4246, pad - 4) + b"Z" * (pad - 4) if pad else b""
        crc = zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(stored),
                           len(data), len(nb), len(extra)) + nb + extra + stored
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                          len(stored), len(data), len(nb), 0, 0, 0, 0, 0, offset) + nb
    cd_offset = len(out)
    out += cd
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(cd), cd_offset, 0)
    return bytes(out)


def pth(tensors, pickle_bytes=None, archive="consolidated", byteorder=b"little", entry_edit=None):
    """tensors: [(name, float16/float32 array)]; storage key i for tensor i. pickle_bytes replaces the
    pickle; entry_edit(list of entries) may change the archive's entries."""
    if pickle_bytes is None:
        pickle_bytes = state_dict_pickle(tensors)
    entries = [(f"{archive}/data.pkl", pickle_bytes), (f"{archive}/byteorder", byteorder)]
    entries += [(f"{archive}/data/{i}", le_bytes(a)) for i, (_, a) in enumerate(tensors)]
    entries += [(f"{archive}/version", b"3\n")]
    if entry_edit:
        entries = entry_edit(entries)
    return zip_archive(entries)


def meta_params(**changes):
    p = {"dim": DIM, "n_layers": N_LAYERS, "n_heads": N_HEADS, "n_kv_heads": N_KV_HEADS,
         "vocab_size": VOCAB, "multiple_of": 8, "ffn_dim_multiplier": 0.4,  # -> ffn 8
         "norm_eps": NORM_EPS, "rope_theta": ROPE_THETA, "max_seq_len": MAX_SEQ}
    for k, v in changes.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return json.dumps(p, indent=2) + "\n"


def meta_split(n_shards):
    """Meta model parallelism: column-parallel tensors split along dim 0, row-parallel (wo, w2)
    along dim 1, norms replicated."""
    shards = [[] for _ in range(n_shards)]
    for name, w in meta_weights():
        if w.ndim == 1:
            parts = [w] * n_shards
        elif name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
            parts = np.split(w, n_shards, axis=1)
        else:
            parts = np.split(w, n_shards, axis=0)
        for s, part in enumerate(parts):
            shards[s].append((name, np.ascontiguousarray(part)))
    return shards


# ---------------------------------------------------------------------------------------------
# GGUF v3.

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 8, 9
GGML_F32, GGML_F16, GGML_Q4_K, GGML_IQ2_XXS, GGML_I8 = 0, 1, 12, 16, 24


def g_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def g_value(vtype, v):
    if vtype == GGUF_U32:
        return struct.pack("<I", v)
    if vtype == GGUF_I32:
        return struct.pack("<i", v)
    if vtype == GGUF_F32:
        return struct.pack("<f", v)
    if vtype == GGUF_STRING:
        return g_str(v)
    if vtype == GGUF_ARRAY:
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(g_value(etype, x) for x in items)
    raise ValueError(vtype)


def gguf_kv(**changes):
    """The base metadata; a change to None drops the key, to (type, value) replaces it."""
    kv = {
        "general.architecture": (GGUF_STRING, "llama"),
        "general.name": (GGUF_STRING, "herd malformed-model base"),
        "llama.context_length": (GGUF_U32, MAX_SEQ),
        "llama.embedding_length": (GGUF_U32, DIM),
        "llama.block_count": (GGUF_U32, N_LAYERS),
        "llama.feed_forward_length": (GGUF_U32, FFN),
        "llama.attention.head_count": (GGUF_U32, N_HEADS),
        "llama.attention.head_count_kv": (GGUF_U32, N_KV_HEADS),
        "llama.rope.dimension_count": (GGUF_U32, HEAD_DIM),
        "llama.rope.freq_base": (GGUF_F32, ROPE_THETA),
        "llama.attention.layer_norm_rms_epsilon": (GGUF_F32, NORM_EPS),
        "llama.vocab_size": (GGUF_U32, VOCAB),
        "tokenizer.ggml.bos_token_id": (GGUF_U32, 1),
        "tokenizer.ggml.eos_token_id": (GGUF_U32, 2),
    }
    for k, v in changes.items():
        k = k.replace("__", ".")
        if v is None:
            kv.pop(k, None)
        else:
            kv[k] = v
    return list(kv.items())


def gguf_tensors():
    """[(name, ggml dims, ggml type, raw bytes)]: the base weights (matrices f16, norms f32 as
    llama.cpp writes them) plus rope_freqs (ones)."""
    out = [(n, list(reversed(a.shape)), GGML_F16, le_bytes(a)) if a.ndim == 2 else
           (n, list(a.shape), GGML_F32, le_bytes(a.astype(np.float32))) for n, a in gguf_weights()]
    out.append(("rope_freqs.weight", [HEAD_DIM // 2], GGML_F32, np.ones(HEAD_DIM // 2, "<f4").tobytes()))
    return out


def gguf(kv=None, tensors=None, alignment=32, magic=b"GGUF", version=3, offsets=None):
    """kv: [(key, (type, value))]; tensors: [(name, dims, ggml type, raw)]; offsets: {name: offset}
    overrides the data offset written for a tensor (its bytes are still laid out in order)."""
    kv = gguf_kv() if kv is None else kv
    tensors = gguf_tensors() if tensors is None else tensors
    head = magic + struct.pack("<IQQ", version, len(tensors), len(kv))
    for key, (vtype, v) in kv:
        head += g_str(key) + struct.pack("<I", vtype) + g_value(vtype, v)
    data, infos = b"", b""
    for name, dims, gtype, raw in tensors:
        data += b"\0" * (-len(data) % alignment)
        off = (offsets or {}).get(name, len(data))
        infos += g_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", gtype, off)
        data += raw
    head += infos
    head += b"\0" * (-len(head) % alignment)
    return head + data


def replace_tensor(tensors, name, **fields):
    out = []
    for t in tensors:
        if t[0] == name:
            t = (fields.get("name", t[0]), fields.get("dims", t[1]), fields.get("gtype", t[2]), fields.get("raw", t[3]))
        out.append(t)
    return out


# ---------------------------------------------------------------------------------------------
# The matrix.


class Matrix:
    def __init__(self, out):
        self.out = out
        self.valid, self.cases = [], []

    def write(self, rel, data):
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    def add_valid(self, model, fmt, what):
        self.valid.append({"model": model, "format": fmt, "what": what})

    def add(self, model, fmt, problem, expect, file=None, known_bug=None):
        assert model not in {c["model"] for c in self.cases}, model
        case = {"model": model, "format": fmt, "problem": problem, "expect": expect, "file": file}
        if known_bug:
            case["known_bug"] = known_bug
        self.cases.append(case)

    # HF: a directory with config.json + model.safetensors (the base ones unless given); `extra`
    # adds or replaces files, a None value removing one.
    def hf(self, name, problem, expect, file, config=None, st=None, extra=None, known_bug=None):
        d = f"hf/{name}"
        files = {"config.json": config if config is not None else hf_config(),
                 "model.safetensors": st if st is not None else safetensors(hf_weights())}
        files.update(extra or {})
        for fname, data in files.items():
            if data is not None:
                self.write(f"{d}/{fname}", data)
        self.add(d, "hf", problem, expect, f"{d}/{file}" if file else None, known_bug)

    def hf_sharded(self, name, problem, expect, file, index=None, shards=None, known_bug=None):
        d = f"hf/{name}"
        first, second = split_hf_shards()
        files = {"config.json": hf_config(), SHARD1: safetensors(first), SHARD2: safetensors(second),
                 "model.safetensors.index.json": index if index is not None else sharded_index(
                     {n: SHARD1 for n, _ in first} | {n: SHARD2 for n, _ in second})}
        files.update(shards or {})
        for fname, data in files.items():
            if data is not None:
                self.write(f"{d}/{fname}", data)
        self.add(d, "hf", problem, expect, f"{d}/{file}" if file else None, known_bug)

    def meta(self, name, problem, expect, file, params=None, shards=None, known_bug=None):
        d = f"meta/{name}"
        self.write(f"{d}/params.json", params if params is not None else meta_params())
        for fname, data in (shards if shards is not None else {"consolidated.00.pth": pth(meta_weights())}).items():
            self.write(f"{d}/{fname}", data)
        self.add(d, "meta", problem, expect, f"{d}/{file}" if file else None, known_bug)

    def gguf(self, name, problem, expect, data, known_bug=None):
        rel = f"gguf/{name}/model.gguf"
        self.write(rel, data)
        self.add(rel, "gguf", problem, expect, rel, known_bug)


def write_valid(m):
    m.write("hf/base/config.json", hf_config())
    m.write("hf/base/model.safetensors", safetensors(hf_weights()))
    m.add_valid("hf/base", "hf", "config.json + model.safetensors, f16, untied")
    first, second = split_hf_shards()
    m.write("hf/base_sharded/config.json", hf_config())
    m.write(f"hf/base_sharded/{SHARD1}", safetensors(first))
    m.write(f"hf/base_sharded/{SHARD2}", safetensors(second))
    m.write("hf/base_sharded/model.safetensors.index.json",
            sharded_index({n: SHARD1 for n, _ in first} | {n: SHARD2 for n, _ in second}))
    m.add_valid("hf/base_sharded", "hf", "two safetensors shards + model.safetensors.index.json")
    m.write("meta/base/params.json", meta_params())
    m.write("meta/base/consolidated.00.pth", pth(meta_weights()))
    m.add_valid("meta/base", "meta", "params.json + consolidated.00.pth")
    m.write("meta/base_2shards/params.json", meta_params())
    for s, tensors in enumerate(meta_split(2)):
        m.write(f"meta/base_2shards/consolidated.{s:02d}.pth", pth(tensors))
    m.add_valid("meta/base_2shards", "meta", "two model-parallel shards (consolidated.00/01.pth)")
    m.write("gguf/base/model.gguf", gguf())
    m.add_valid("gguf/base/model.gguf", "gguf", "GGUF v3, f16 matrices, f32 norms, rope_freqs of ones")


def hf_cases(m):
    w = hf_weights()
    q_name = "model.layers.0.self_attn.q_proj.weight"
    k_name = "model.layers.0.self_attn.k_proj.weight"
    v_name = "model.layers.0.self_attn.v_proj.weight"

    # config.json
    good = hf_config()
    m.hf("config_invalid_json", "config.json is cut off mid-object (invalid JSON)", "invalid JSON",
         "config.json", config=good[: len(good) // 2])
    m.hf("config_empty", "config.json is an empty file", "invalid JSON", "config.json", config="")
    m.hf("config_not_object", "config.json is a JSON array, not an object", "expected a JSON object",
         "config.json", config="[1, 2, 3]\n")
    m.hf("config_hidden_size_string", 'hidden_size is the string "8"',
         '"hidden_size" must be an integer', "config.json", config=hf_config(hidden_size="8"))
    m.hf("config_hidden_size_missing", "config.json has no hidden_size", 'missing "hidden_size"',
         "config.json", config=hf_config(hidden_size=None))
    m.hf("config_heads_not_dividing_dim",
         "num_attention_heads 3 does not divide hidden_size 8 (head_dim 8 // 3 = 2; the q_proj in the "
         "file is [8, 8])", f"tensor '{q_name}' has shape [8, 8]", "model.safetensors",
         config=hf_config(num_attention_heads=3))
    m.hf("config_heads_odd_head_dim", "num_attention_heads 8 gives head_dim 1, odd, unusable for RoPE",
         "must be even for RoPE", "config.json", config=hf_config(num_attention_heads=8))
    m.hf("config_kv_heads_not_dividing", "num_key_value_heads 3 does not divide num_attention_heads 2",
         "is not a multiple of n_kv_heads", "config.json", config=hf_config(num_key_value_heads=3))
    m.hf("config_zero_layers", "num_hidden_layers is 0", "n_layers must be positive", "config.json",
         config=hf_config(num_hidden_layers=0))
    m.hf("config_layers_too_large", "num_hidden_layers is 2^31, past int32", '"num_hidden_layers" must be an integer',
         "config.json", config=hf_config(num_hidden_layers=2 ** 31))
    big = 2 ** 30
    m.hf("config_kv_cache_size_overflows",
         f"num_hidden_layers = num_attention_heads = num_key_value_heads = head_dim = 2^30 (each a valid "
         f"int32): the KV cache's byte count 2*layers*ctx*kv_heads*head_dim*4 wraps to 0 in uint64",
         "too large", "config.json",
         config=hf_config(num_hidden_layers=big, num_attention_heads=big, num_key_value_heads=big, head_dim=big))
    m.hf("config_architecture_qwen2", 'architectures is ["Qwen2ForCausalLM"]', "is not LlamaForCausalLM",
         "config.json", config=hf_config(architectures=["Qwen2ForCausalLM"]))
    m.hf("config_rope_scaling_yarn", 'rope_scaling type "yarn"', "not supported (llama3 only)", "config.json",
         config=hf_config(rope_scaling={"rope_type": "yarn", "factor": 4.0}))
    m.hf("config_eos_out_of_range", f"eos_token_id {VOCAB} with vocab_size {VOCAB}", f"eos id {VOCAB} out of range",
         "config.json", config=hf_config(eos_token_id=VOCAB))
    m.hf("config_tie_not_bool", 'tie_word_embeddings is the string "false"',
         "tie_word_embeddings must be a boolean", "config.json", config=hf_config(tie_word_embeddings="false"))
    m.hf("generation_config_eos_out_of_range",
         f"generation_config.json's eos_token_id list holds 99, past vocab_size {VOCAB}",
         "eos_token_id 99 is not a token id of this model", "generation_config.json",
         extra={"generation_config.json": json.dumps({"bos_token_id": 1, "eos_token_id": [2, 99]}) + "\n"})
    m.hf("generation_config_invalid_json", "generation_config.json is not JSON", "not a JSON object",
         "generation_config.json", extra={"generation_config.json": "{eos_token_id: 2}\n"})
    m.hf("no_weights", "config.json but no model.safetensors", "holds neither", None,
         extra={"model.safetensors": None})

    # model.safetensors: byte-level corruption
    st = safetensors(w)
    m.hf("st_truncated", "model.safetensors cut 100 bytes short (the last tensor's data is missing)",
         "run past the end of the data buffer", "model.safetensors", st=st[:-100])
    m.hf("st_empty", "model.safetensors is 0 bytes", "too short for the 8-byte header length",
         "model.safetensors", st=b"")
    m.hf("st_header_len_beyond_file", "the u64 header length is 1,000,000, past the end of the file",
         "runs past the end of the file", "model.safetensors", st=struct.pack("<Q", 1_000_000) + st[8:])
    m.hf("st_header_len_huge", "the u64 header length is 2^63", "exceeds the 100000000-byte limit",
         "model.safetensors", st=struct.pack("<Q", 2 ** 63) + st[8:])
    hl = struct.unpack("<Q", st[:8])[0]
    m.hf("st_header_invalid_json", "the header's JSON is corrupted (a brace replaced by a space)",
         "header is not valid JSON", "model.safetensors", st=st[:8] + b" " + st[9:])
    m.hf("st_header_not_object", "the header is a JSON array", "header is not a JSON object",
         "model.safetensors", st=st[:8] + b"[" + b" " * (hl - 2) + b"]" + st[8 + hl:])

    # model.safetensors: header lies
    def edit(fn):
        return safetensors(w, header_edit=fn)

    m.hf("st_wrong_shape", f"{q_name} is declared [4, 16] (same byte count, wrong shape)",
         f"tensor '{q_name}' has shape [4, 16], but the config", "model.safetensors",
         st=edit(lambda h: h[q_name].update(shape=[4, 16])))
    m.hf("st_missing_tensor", "model.layers.0.mlp.up_proj.weight is absent",
         "missing tensor 'model.layers.0.mlp.up_proj.weight'", "model.safetensors",
         st=safetensors([t for t in w if t[0] != "model.layers.0.mlp.up_proj.weight"]))
    f8 = [(n, "F8_E4M3", list(a.shape), bytes(a.size)) if n == q_name else (n, a) for n, a in w]
    m.hf("st_unknown_dtype_f8", f"{q_name} has dtype F8_E4M3", f"tensor '{q_name}': unsupported dtype 'F8_E4M3'",
         "model.safetensors", st=safetensors(f8))
    i64 = [(n, a.astype(np.int64)) if n == q_name else (n, a) for n, a in w]
    m.hf("st_integer_weight", f"{q_name} is I64", f"tensor '{q_name}' has dtype i64, which herd cannot compute with",
         "model.safetensors", st=safetensors(i64))
    m.hf("st_offsets_out_of_range", f"{k_name}'s data_offsets end 4096 bytes past the data buffer",
         f"tensor '{k_name}': data_offsets", "model.safetensors",
         st=edit(lambda h: h[k_name].update(data_offsets=[h[k_name]["data_offsets"][0] + 4096,
                                                          h[k_name]["data_offsets"][1] + 4096])))
    m.hf("st_offsets_backwards", f"{k_name}'s data_offsets are [end, begin]", "run backwards",
         "model.safetensors", st=edit(lambda h: h[k_name].update(data_offsets=h[k_name]["data_offsets"][::-1])))
    m.hf("st_offsets_size_mismatch", f"{k_name}'s data_offsets span 4 bytes too many for its shape",
         f"tensor '{k_name}': data_offsets", "model.safetensors",
         st=edit(lambda h: h[k_name].update(data_offsets=[h[k_name]["data_offsets"][0],
                                                          h[k_name]["data_offsets"][1] + 4])))
    m.hf("st_offsets_negative", f"{k_name}'s data_offsets begin at -4", "other than non-negative integers",
         "model.safetensors", st=edit(lambda h: h[k_name].update(data_offsets=[-4, 124])))
    m.hf("st_shape_negative", f"{k_name}'s shape is [-4, -8]", "shape has a negative dim",
         "model.safetensors", st=edit(lambda h: h[k_name].update(shape=[-4, -8])))
    m.hf("st_missing_dtype", f"{k_name} has no dtype field", "missing field 'dtype'", "model.safetensors",
         st=edit(lambda h: h[k_name].pop("dtype")))

    def overlap(h):  # v_proj's entry points at k_proj's bytes (same size); its own bytes become a hole
        h[v_name]["data_offsets"] = list(h[k_name]["data_offsets"])

    m.hf("st_offsets_overlap",
         f"{v_name}'s data_offsets are {k_name}'s (two tensors share bytes; the spec requires the "
         "tensors to tile the data buffer without overlaps or holes, and the official reader refuses it)",
         "data_offsets", "model.safetensors", st=edit(overlap))

    def hole(h):  # every tensor moved 64 bytes on: the first 64 bytes of the buffer are unused
        for k, v in h.items():
            if k != "__metadata__":
                v["data_offsets"] = [v["data_offsets"][0] + 64, v["data_offsets"][1] + 64]

    m.hf("st_offsets_hole",
         "every data_offsets entry is shifted 64 bytes on, and 64 zero bytes appended so that the last "
         "tensor still fits: the buffer starts with 64 bytes no tensor owns (the tensors must tile it from 0)",
         "data_offsets", "model.safetensors",
         st=edit(hole) + b"\0" * 64)

    # config / checkpoint disagreements
    m.hf("lm_head_missing_untied", "tie_word_embeddings is false but lm_head.weight is absent",
         "missing tensor 'lm_head.weight' (the config says the output projection is not tied",
         "model.safetensors", st=safetensors([t for t in w if t[0] != "lm_head.weight"]))
    m.hf("vocab_mismatch", f"config vocab_size {VOCAB * 2}, the checkpoint's embedding has {VOCAB} rows",
         f"tensor 'model.embed_tokens.weight' has shape [{VOCAB}, {DIM}]", "model.safetensors",
         config=hf_config(vocab_size=VOCAB * 2))
    m.hf("layers_mismatch", "config num_hidden_layers 2, the checkpoint has 1 layer",
         "missing tensor 'model.layers.1.input_layernorm.weight'", "model.safetensors",
         config=hf_config(num_hidden_layers=2))


def hf_sharded_cases(m):
    first, second = split_hf_shards()
    good_map = {n: SHARD1 for n, _ in first} | {n: SHARD2 for n, _ in second}
    q_name = "model.layers.0.self_attn.q_proj.weight"
    m.hf_sharded("sharded_missing_shard", "the index maps model.norm.weight to model-00003-of-00003.safetensors, "
                 "which does not exist",
                 "model-00003-of-00003.safetensors (holding tensor 'model.norm.weight') does not exist",
                 "model.safetensors.index.json",
                 index=sharded_index(good_map | {"model.norm.weight": "model-00003-of-00003.safetensors"}))
    m.hf_sharded("sharded_tensor_not_in_shard", f"the index maps {q_name} to shard 2; it is in shard 1",
                 f"tensor '{q_name}' is mapped to", "model.safetensors.index.json",
                 index=sharded_index(good_map | {q_name: SHARD2}))
    m.hf_sharded("sharded_tensor_nowhere", "the index names model.layers.0.self_attn.q_norm.weight, which no "
                 "shard holds", "tensor 'model.layers.0.self_attn.q_norm.weight' is mapped to",
                 "model.safetensors.index.json",
                 index=sharded_index(good_map | {"model.layers.0.self_attn.q_norm.weight": SHARD1}))
    m.hf_sharded("sharded_shard_outside_dir", "the index names shard ../model-00002-of-00002.safetensors",
                 "which is not inside", "model.safetensors.index.json",
                 index=sharded_index(good_map | {"model.norm.weight": "../" + SHARD2}))
    m.hf_sharded("sharded_index_invalid_json", "model.safetensors.index.json is cut off", "not valid JSON",
                 "model.safetensors.index.json", index=sharded_index(good_map)[:40])
    m.hf_sharded("sharded_index_no_weight_map", "the index has no weight_map", "missing 'weight_map' object",
                 "model.safetensors.index.json", index=json.dumps({"metadata": {}}) + "\n")
    m.hf_sharded("sharded_tensor_in_both_shards", "model.norm.weight is stored in both shards",
                 "tensor 'model.norm.weight' appears twice", SHARD2,
                 shards={SHARD1: safetensors(first + [t for t in second if t[0] == "model.norm.weight"])})
    m.hf_sharded("sharded_shard_truncated", "shard 2 is cut 16 bytes short", "run past the end of the data buffer",
                 SHARD2, shards={SHARD2: safetensors(second)[:-16]})


def meta_cases(m):
    w = meta_weights()
    wq = "layers.0.attention.wq.weight"
    wq_shape = list(dict(w)[wq].shape)  # [8, 8]
    pth_file = "consolidated.00.pth"
    keys = {n: str(i) for i, (n, _) in enumerate(w)}

    def with_value(name, value):
        """The base state_dict pickle with `name`'s value replaced (bytes, or a function of the
        Pickle writer)."""
        return p_state_dict([(n, value if n == name else (lambda pw, n=n, a=a: pw.tensor(
            keys[n], list(a.shape), storage_type=TORCH_STORAGE[a.dtype]))) for n, a in w])

    def bad_pickle(name, problem, expect, value):
        m.meta(name, problem, expect, pth_file, shards={pth_file: pth(w, pickle_bytes=with_value(wq, value))})

    m.meta("params_missing_dim", 'params.json has no "dim"', 'missing "dim"', "params.json",
           params=meta_params(dim=None))
    m.meta("params_invalid_json", "params.json is cut off", "invalid JSON", "params.json",
           params=meta_params()[:30])
    m.meta("params_dim_string", 'params.json "n_heads" is 2.5', '"n_heads" must be an integer', "params.json",
           params=meta_params(n_heads=2.5))
    m.meta("params_multiple_of_zero", "params.json multiple_of is 0", "multiple_of must be positive",
           "params.json", params=meta_params(multiple_of=0))
    m.meta("params_vocab_mismatch", f"params.json vocab_size {VOCAB * 2}, the checkpoint's embedding has {VOCAB} rows",
           f"tensor 'tok_embeddings.weight' has shape [{VOCAB}, {DIM}]", pth_file,
           params=meta_params(vocab_size=VOCAB * 2))
    m.meta("no_checkpoint", "params.json but no consolidated.*.pth", "no consolidated.*.pth checkpoint",
           None, shards={})

    # code execution attempts in the pickle
    bad_pickle("pickle_global_os_system", f"the value of {wq} is os.system('echo ...') (GLOBAL + REDUCE)",
               "global 'os.system' is not allowed",
               p_global("os", "system") + p_tuple([p_str("echo this pickle must never be run")]) + b"R")
    bad_pickle("pickle_stack_global_eval", f"the value of {wq} is builtins.eval('...') (STACK_GLOBAL + REDUCE)",
               "global 'builtins.eval' is not allowed",
               b"\x8c\x08builtins" + b"\x8c\x04eval" + b"\x93" +  # SHORT_BINUNICODE x2, STACK_GLOBAL
               p_tuple([p_str("__import__('os').system('echo this pickle must never be run')")]) + b"R")
    m.meta("pickle_global_posix_system_first", "the pickle's first opcode after PROTO is GLOBAL posix.system "
           "(the 'state_dict' is its result)", "global 'posix.system' is not allowed", pth_file,
           shards={pth_file: pth(w, pickle_bytes=b"\x80\x02" + p_global("posix", "system") +
                                 p_tuple([p_str("true")]) + b"R" + b".")})
    bad_pickle("pickle_inst_opcode", f"the value of {wq} is built with the INST opcode (os.system)",
               "opcode 0x69 (INST) is not allowed", b"(" + p_str("true") + b"ios\nsystem\n")
    bad_pickle("pickle_global_getattr", f"the value of {wq} is builtins.getattr(...)",
               "global 'builtins.getattr' is not allowed",
               p_global("builtins", "getattr") + p_tuple([p_str("x"), p_str("y")]) + b"R")
    bad_pickle("pickle_newobj_opcode", f"the value of {wq} is built with NEWOBJ on collections.OrderedDict",
               "opcode 0x81 (NEWOBJ) is not allowed", p_global("collections", "OrderedDict") + b")" + b"\x81")

    # storages
    bad_pickle("pickle_storage_qint8", f"{wq}'s storage type is torch.QInt8Storage (a quantized storage, "
               "not a plain tensor storage)", "global 'torch.QInt8Storage' is not allowed",
               lambda pw: pw.tensor(keys[wq], wq_shape, storage_type="QInt8Storage"))
    bad_pickle("pickle_storage_type_is_tensor", f"{wq}'s persistent id names torch.Tensor as its storage type",
               "global 'torch.Tensor' is not allowed", lambda pw: pw.tensor(keys[wq], wq_shape, storage_type="Tensor"))
    bad_pickle("pickle_storage_type_called", f"the value of {wq} is torch.FloatStorage(64), a call",
               "global 'torch.FloatStorage' cannot be called",
               p_global("torch", "FloatStorage") + p_tuple([p_int(64)]) + b"R")
    bad_pickle("pickle_persistent_id_not_storage", f"{wq}'s persistent id is ('module', ...), not ('storage', ...)",
               "persistent id is not ('storage'", lambda pw: pw.tensor(keys[wq], wq_shape, kind="module"))
    m.meta("pickle_storage_i64_weight", f"{wq} is an int64 tensor (LongStorage)",
           f"tensor '{wq}' has dtype i64, which herd cannot compute with", pth_file,
           shards={pth_file: pth([(n, np.zeros(a.size * 2, np.float32)) if n == wq else (n, a) for n, a in w],
                                 pickle_bytes=with_value(wq, lambda pw: pw.tensor(keys[wq], wq_shape,
                                                                                  storage_type="LongStorage")))})
    n_wq = int(np.prod(wq_shape))
    bad_pickle("pickle_tensor_outside_storage", f"{wq} starts at storage_offset 8 and runs past its storage",
               f"tensor '{wq}': elements [8, {8 + n_wq}) lie outside storage",
               lambda pw: pw.tensor(keys[wq], wq_shape, offset=8))
    bad_pickle("pickle_non_contiguous", f"{wq} has stride (1, 8): a transposed view",
               f"tensor '{wq}': stride (1, 8) is not contiguous row-major",
               lambda pw: pw.tensor(keys[wq], wq_shape, stride=[1, 8]))
    bad_pickle("pickle_value_not_tensor", f"the value of {wq} is an int", f"state_dict value '{wq}' is a int",
               p_int(7))
    m.meta("pickle_not_a_dict", "the pickle holds a list, not a state_dict", "not a state_dict", pth_file,
           shards={pth_file: pth(w, pickle_bytes=b"\x80\x02]" + b".")})
    good_pkl = state_dict_pickle(w)
    m.meta("pickle_truncated", "data.pkl (a consistent ZIP entry) is cut off mid-pickle",
           "truncated", pth_file, shards={pth_file: pth(w, pickle_bytes=good_pkl[: len(good_pkl) // 2])})
    m.meta("pickle_no_stop", "data.pkl ends without its STOP opcode",
           "pickle ends without STOP", pth_file, shards={pth_file: pth(w, pickle_bytes=good_pkl[:-1])})
    m.meta("pickle_memo_undefined", "data.pkl refers to memo entry 200, never stored (BINGET)",
           "memo entry 200 is not defined", pth_file,
           shards={pth_file: pth(w, pickle_bytes=with_value(wq, b"h\xc8"))})

    # the ZIP archive
    good = pth(w)
    m.meta("pth_truncated", "consolidated.00.pth cut to its first half (no central directory)",
           "not a ZIP archive", pth_file, shards={pth_file: good[: len(good) // 2]})
    m.meta("pth_truncated_last_bytes", "consolidated.00.pth missing its last 8 bytes (end record cut)",
           "not a ZIP archive", pth_file, shards={pth_file: good[:-8]})
    m.meta("pth_empty", "consolidated.00.pth is 0 bytes", "not a ZIP archive", pth_file, shards={pth_file: b""})
    m.meta("pth_legacy_format", "consolidated.00.pth is a bare pickle (torch < 1.6 format)",
           "legacy torch.save format", pth_file, shards={pth_file: good_pkl})
    m.meta("pth_storage_entry_missing", "the archive lacks the data/3 entry a storage names",
           "storage '3' has no entry 'consolidated/data/3'", pth_file,
           shards={pth_file: pth(w, entry_edit=lambda es: [e for e in es if e[0] != "consolidated/data/3"])})
    m.meta("pth_storage_too_short", "the data/1 entry (wq) holds 4 bytes fewer than its storage's 64 halves",
           "storage '1' holds 124 bytes, too short for 64 f16 elements", pth_file,
           shards={pth_file: pth(w, entry_edit=lambda es: [(e[0], e[1][:-4]) if e[0] == "consolidated/data/1" else e
                                                             for e in es])})
    m.meta("pth_compressed_entry", "the data/1 entry is DEFLATE-compressed", "is compressed (method 8, deflate)",
           pth_file, shards={pth_file: pth(w, entry_edit=lambda es: [(e[0], e[1], "deflate")
                                                                     if e[0] == "consolidated/data/1"
                                                                     else e for e in es])})
    m.meta("pth_big_endian", "byteorder says 'big'", "byteorder is 'big'", pth_file,
           shards={pth_file: pth(w, byteorder=b"big")})
    m.meta("pth_no_pickle", "the archive has no data.pkl", "no '<archive>/data.pkl' entry", pth_file,
           shards={pth_file: pth(w, entry_edit=lambda es: [e for e in es if not e[0].endswith("data.pkl")])})

    # model-parallel shards
    s0, s1 = meta_split(2)
    wk = "layers.0.attention.wk.weight"
    bad_wk = [(n, a[:, :6].copy() if n == wk else a) for n, a in s1]
    m.meta("shards_wk_do_not_stack", f"shard 1's {wk} is [2, 6], shard 0's [2, 8]: they do not stack along dim 0",
           f"tensor '{wk}' has shape [2, 6], which does not stack with [2, 8]", "consolidated.01.pth",
           shards={"consolidated.00.pth": pth(s0), "consolidated.01.pth": pth(bad_wk)})
    bad_norm = [(n, a + np.float16(0.25) if n == "norm.weight" else a) for n, a in s1]
    m.meta("shards_norm_differs", "shard 1's norm.weight (replicated) differs from shard 0's",
           "replicated tensor 'norm.weight' differs", "consolidated.01.pth",
           shards={"consolidated.00.pth": pth(s0), "consolidated.01.pth": pth(bad_norm)})
    m.meta("shards_tensor_missing", "shard 1 lacks layers.0.feed_forward.w3.weight",
           "tensor 'layers.0.feed_forward.w3.weight' is in", "consolidated.00.pth",
           shards={"consolidated.00.pth": pth(s0),
                   "consolidated.01.pth": pth([t for t in s1 if t[0] != "layers.0.feed_forward.w3.weight"])})
    m.meta("shards_extra_tensor", "shard 1 holds a tensor shard 0 lacks", "shard has 13 tensors",
           "consolidated.01.pth", shards={"consolidated.00.pth": pth(s0),
                                         "consolidated.01.pth": pth(s1 + [("extra.weight", np.zeros(4, np.float16))])})
    m.meta("shards_second_truncated", "shard 1 is cut in half", "not a ZIP archive", "consolidated.01.pth",
           shards={"consolidated.00.pth": pth(s0), "consolidated.01.pth": pth(s1)[: len(pth(s1)) // 2]})


def gguf_cases(m):
    good = gguf()
    m.gguf("truncated_data", "model.gguf cut 200 bytes short (the last tensors' data is missing)",
           "extend past the end of the file", good[:-200])
    m.gguf("truncated_metadata", "model.gguf cut to 400 bytes, inside the metadata", "truncated", good[:400])
    m.gguf("empty", "model.gguf is 0 bytes", "too short to be GGUF", b"")
    m.gguf("bad_magic", "the magic is 'GGML'", "bad magic 'GGML'", b"GGML" + good[4:])
    m.gguf("version_1", "GGUF version 1", "GGUF version 1 is not supported", good[:4] + struct.pack("<I", 1) + good[8:])
    m.gguf("version_big_endian", "version 3 written big-endian", "big-endian GGUF",
           good[:4] + struct.pack(">I", 3) + good[8:])
    m.gguf("kv_count_huge", "the metadata count is 2^40", "metadata count 1099511627776 exceeds file size",
           good[:16] + struct.pack("<Q", 2 ** 40) + good[24:])
    m.gguf("tensor_count_huge", "the tensor count is 2^40", "tensor count 1099511627776 exceeds file size",
           good[:8] + struct.pack("<Q", 2 ** 40) + good[16:])
    m.gguf("string_length_huge", "general.architecture's value claims 2^60 bytes",
           "exceeds file size",
           good.replace(g_str("llama"), struct.pack("<Q", 2 ** 60) + b"llama", 1))
    m.gguf("value_type_invalid", "general.name has value type 99", "invalid value type 99",
           gguf(kv=gguf_kv(general__name=(GGUF_U32, 7))).replace(
               g_str("general.name") + struct.pack("<I", GGUF_U32), g_str("general.name") + struct.pack("<I", 99), 1))

    # types
    tensors = gguf_tensors()
    m.gguf("ggml_type_iq2_xxs", "blk.0.attn_q.weight is declared ggml type 16 (IQ2_XXS)",
           "tensor 'blk.0.attn_q.weight' has ggml type 16 (unknown), which herd does not support",
           gguf(tensors=replace_tensor(tensors, "blk.0.attn_q.weight", gtype=GGML_IQ2_XXS)))
    m.gguf("ggml_type_i8", "blk.0.attn_q.weight is ggml type 24 (I8), a type GGUF sizes but herd does not read",
           "tensor 'blk.0.attn_q.weight' has ggml type 24 (i8), which herd does not support",
           gguf(tensors=replace_tensor(tensors, "blk.0.attn_q.weight", gtype=GGML_I8, raw=bytes(DIM * DIM))))
    m.gguf("ggml_type_q4_k_row_length", "blk.0.attn_q.weight is Q4_K, whose 256-element blocks cannot hold rows of 8",
           "tensor 'blk.0.attn_q.weight': row length 8 is not a multiple of the q4_K block size 256",
           gguf(tensors=replace_tensor(tensors, "blk.0.attn_q.weight", gtype=GGML_Q4_K)))
    m.gguf("ggml_type_unknown", "blk.0.attn_q.weight has ggml type 99, which no ggml defines",
           "tensor 'blk.0.attn_q.weight' has ggml type 99 (unknown)",
           gguf(tensors=replace_tensor(tensors, "blk.0.attn_q.weight", gtype=99)))

    # shapes and names
    m.gguf("wrong_shape", "blk.0.attn_q.weight has ggml dims [16, 4] (PyTorch [4, 16]; same bytes)",
           "tensor 'blk.0.attn_q.weight' has shape [4, 16], but the config",
           gguf(tensors=replace_tensor(tensors, "blk.0.attn_q.weight", dims=[16, 4])))
    m.gguf("missing_tensor", "blk.0.ffn_up.weight is absent", "missing tensor 'blk.0.ffn_up.weight'",
           gguf(tensors=[t for t in tensors if t[0] != "blk.0.ffn_up.weight"]))
    m.gguf("duplicate_tensor", "blk.0.attn_k.weight appears twice", "duplicate tensor name 'blk.0.attn_k.weight'",
           gguf(tensors=tensors + [t for t in tensors if t[0] == "blk.0.attn_k.weight"]))
    m.gguf("too_many_dims", "blk.0.attn_q.weight has 5 dimensions", "tensor has 5 dimensions",
           gguf(tensors=replace_tensor(tensors, "blk.0.attn_q.weight", dims=[8, 2, 2, 1, 2])))

    # metadata
    m.gguf("arch_qwen2", 'general.architecture is "qwen2"', 'general.architecture is "qwen2", expected "llama"',
           gguf(kv=gguf_kv(general__architecture=(GGUF_STRING, "qwen2"))))
    m.gguf("arch_missing", "no general.architecture key", "metadata key 'general.architecture' not found",
           gguf(kv=gguf_kv(general__architecture=None)))
    m.gguf("arch_not_string", "general.architecture is a u32", "metadata key 'general.architecture' has type",
           gguf(kv=gguf_kv(general__architecture=(GGUF_U32, 1))))
    m.gguf("embedding_length_missing", "no llama.embedding_length key", "missing llama.embedding_length",
           gguf(kv=gguf_kv(llama__embedding_length=None)))
    m.gguf("head_count_zero", "llama.attention.head_count is 0", "must be positive",
           gguf(kv=gguf_kv(llama__attention__head_count=(GGUF_U32, 0))))
    m.gguf("head_count_negative", "llama.attention.head_count is the int32 -2",
           "metadata key 'llama.attention.head_count' is negative (-2)",
           gguf(kv=gguf_kv(llama__attention__head_count=(GGUF_I32, -2))))
    m.gguf("block_count_string", "llama.block_count is a string",
           "metadata key 'llama.block_count' has type string, expected an integer",
           gguf(kv=gguf_kv(llama__block_count=(GGUF_STRING, "1"))))
    m.gguf("alignment_not_power_of_two", "general.alignment is 24", "general.alignment = 24 is not a power of two",
           gguf(kv=gguf_kv(general__alignment=(GGUF_U32, 24))))
    m.gguf("duplicate_key", "llama.block_count appears twice", "duplicate metadata key 'llama.block_count'",
           gguf(kv=gguf_kv() + [("llama.block_count", (GGUF_U32, 1))]))

    # rope_freqs
    m.gguf("rope_freqs_zero", "rope_freqs.weight[1] is 0", "rope_freqs.weight[1] = 0 is not positive",
           gguf(tensors=replace_tensor(tensors, "rope_freqs.weight", raw=struct.pack("<2f", 1.0, 0.0))))
    m.gguf("rope_freqs_negative", "rope_freqs.weight[0] is -4", "rope_freqs.weight[0] = -4 is not positive",
           gguf(tensors=replace_tensor(tensors, "rope_freqs.weight", raw=struct.pack("<2f", -4.0, 1.0))))
    m.gguf("rope_freqs_nan", "rope_freqs.weight[1] is NaN", "rope_freqs.weight[1] = nan is not positive",
           gguf(tensors=replace_tensor(tensors, "rope_freqs.weight", raw=struct.pack("<2f", 1.0, float("nan")))))
    m.gguf("rope_freqs_wrong_shape", "rope_freqs.weight has 4 entries; head_dim 4 needs 2",
           "rope_freqs.weight must be f32 [2]",
           gguf(tensors=replace_tensor(tensors, "rope_freqs.weight", dims=[4], raw=struct.pack("<4f", 1, 1, 1, 1))))

    # offsets
    m.gguf("offset_past_eof", "blk.0.attn_q.weight's data offset is 1 MiB, past the end of the file",
           "tensor 'blk.0.attn_q.weight': data offset 1048576 lies past the end of the file",
           gguf(offsets={"blk.0.attn_q.weight": 1 << 20}))
    out_bytes = VOCAB * DIM * 2
    m.gguf("offset_data_past_eof", f"output.weight's offset leaves only part of its {out_bytes} bytes in the file",
           f"tensor 'output.weight': {out_bytes} bytes of data at file offset",
           gguf(offsets={"output.weight": (_gguf_data_len() - out_bytes // 2) // 32 * 32}))
    m.gguf("offset_misaligned", "blk.0.attn_q.weight's data offset is not a multiple of 32",
           "data offset 1028 is not a multiple of the alignment 32",
           gguf(offsets={"blk.0.attn_q.weight": 1028}))
    m.gguf("offset_overlap",
           "blk.0.attn_v.weight's data offset is blk.0.attn_k.weight's: the two tensors share bytes "
           "(llama.cpp's reader requires each tensor to start where the previous one ends, padded)",
           "offset", gguf(offsets={"blk.0.attn_v.weight": _gguf_offset_of("blk.0.attn_k.weight")}))


def _gguf_offsets():
    offs, pos = {}, 0
    for name, _, _, raw in gguf_tensors():
        pos += -pos % 32
        offs[name] = pos
        pos += len(raw)
    return offs, pos


def _gguf_offset_of(name):
    return _gguf_offsets()[0][name]


def _gguf_data_len():
    return _gguf_offsets()[1]


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    if out.exists():
        if any(out.iterdir()) and not (out / "manifest.json").exists():
            sys.exit(f"{out} exists and holds no manifest.json; refusing to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    m = Matrix(out)
    write_valid(m)
    hf_cases(m)
    hf_sharded_cases(m)
    meta_cases(m)
    gguf_cases(m)
    manifest = {
        "about": "Malformed model files for herd; written by tools/make_malformed_models.py, run by "
                 "tests/python/test_malformed_models.py. Paths are relative to this directory.",
        "command": "herd logits --model <model> --tokens 1,2,3 --out FILE",
        "valid": m.valid,
        "cases": m.cases,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(m.valid)} valid models and {len(m.cases)} malformed cases to {out} ({total} bytes)")


if __name__ == "__main__":
    main()
