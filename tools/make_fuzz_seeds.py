#!/usr/bin/env python3
"""Writes small valid seed inputs for the libFuzzer targets into tests/fuzz/seeds/ (stdlib only).

fuzz_gguf: a GGUF v3 file with a few metadata types, a string array and one f32 tensor.
fuzz_safetensors: two small safetensors files (several dtypes, a scalar, a zero-element tensor,
__metadata__, a space-padded header as the official writer pads it).
fuzz_tokenizer_files: a tiktoken file (the 256 bytes plus a few merged tokens) and a tokenizer.json
with the same vocabulary in the byte-level alphabet.
Run: python3 tools/make_fuzz_seeds.py
"""
import base64
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tests/fuzz/seeds"


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def make_gguf():
    kv = [
        (gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("llama")),
        (gguf_string("general.alignment") + struct.pack("<II", 4, 32)),
        (gguf_string("tokenizer.ggml.bos_token_id") + struct.pack("<II", 4, 1)),
        (gguf_string("x.f32") + struct.pack("<If", 6, 0.5)),
        (gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3)
         + gguf_string("a") + gguf_string("b") + gguf_string("ab")),
        (gguf_string("tokenizer.ggml.token_type") + struct.pack("<IIQ", 9, 5, 3) + struct.pack("<3i", 1, 1, 1)),
    ]
    tensors = gguf_string("w") + struct.pack("<I", 2) + struct.pack("<QQ", 4, 2) + struct.pack("<IQ", 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv)) + b"".join(kv) + tensors
    head += b"\0" * (-len(head) % 32)
    return head + struct.pack("<8f", *range(8))


def make_safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] laid out back to back."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(8 + len(head)) % 8)
    return struct.pack("<Q", len(head)) + head + data


def write_safetensors_seeds():
    out = ROOT / "fuzz_safetensors"
    out.mkdir(parents=True, exist_ok=True)
    (out / "small.safetensors").write_bytes(make_safetensors([
        ("model.embed_tokens.weight", "F32", [2, 3], struct.pack("<6f", *range(6))),
        ("model.norm.weight", "BF16", [4], struct.pack("<4H", 0x3F80, 0x4000, 0xC040, 0)),
        ("q", "F16", [2], struct.pack("<2H", 0x3C00, 0xC000)),
        ("pos", "I64", [2], struct.pack("<2q", -1, 7)),
        ("scalar", "F64", [], struct.pack("<d", 0.5)),
        ("empty", "F32", [0, 4], b""),
    ], metadata={"format": "pt"}))
    (out / "ints.safetensors").write_bytes(make_safetensors([
        ("a", "I8", [3], b"\x01\x02\x03"),
        ("b", "U8", [1, 1], b"\xff"),
        ("c", "BOOL", [2], b"\x00\x01"),
        ("d", "I16", [1], struct.pack("<h", -2)),
        ("e", "I32", [2], struct.pack("<2i", 1, -1)),
    ]))


def byte_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    (ROOT / "fuzz_gguf").mkdir(parents=True, exist_ok=True)
    (ROOT / "fuzz_gguf/minimal.gguf").write_bytes(make_gguf())
    write_safetensors_seeds()
    (ROOT / "fuzz_tokenizer_files").mkdir(parents=True, exist_ok=True)
    tokens = [bytes([b]) for b in range(256)] + [b"th", b"the", b" the", b"in", b"ing"]
    lines = "".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(tokens))
    (ROOT / "fuzz_tokenizer_files/tiny.model").write_text(lines)
    m = byte_to_unicode()
    text = lambda t: "".join(m[b] for b in t)
    vocab = {text(t): i for i, t in enumerate(tokens)}
    merges = ["t h", "th e", "Ġ the", "i n", "in g"]
    vocab[text(b" ")] = 32
    doc = {"added_tokens": [{"id": len(tokens), "content": "<|end|>", "special": True}],
           "pre_tokenizer": {"type": "ByteLevel"},
           "model": {"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": True}}
    (ROOT / "fuzz_tokenizer_files/tiny.json").write_text(json.dumps(doc))
    print(f"wrote seeds under {ROOT}")


if __name__ == "__main__":
    main()
