#!/usr/bin/env python3
"""Write tests/golden/quant/kquant_golden.json: the GGUF K-quant formats q4_K, q5_K and q6_K as
gguf-py (dequantisation) and ggml (quantisation) compute them.

Usage (in the tools venv, see tools/requirements-tools.txt: gguf==0.19.0, numpy==2.4.6):
    .venv-tools/bin/python tools/gen_kquant_goldens.py [--out PATH] [--ggml-lib PATH]

--ggml-lib is libggml-base.so of llama-cpp-python 0.3.36 (tools/requirements-llamacpp.txt; llama.cpp
commit 0c1e570, checked through ggml_commit()); the default is the one in .venv-llamacpp, which
`tools/gen_llamacpp_goldens.py --setup` builds. It is loaded with ctypes only (no llama_cpp import).

Two sections, per format:
  dequantize: hand-made block bytes and gguf.quants.dequantize of them (gguf-py's numpy port of
    ggml's dequantize_row_*; the script asserts that ggml's own dequantize_row_* gives the same
    float32 bits). tests/kquant_test.cc checks herd's DequantizeRow bit for bit. Blocks:
      0-3  random bytes (any scales, mins and levels), the f16 super-scales drawn from all finite
           f16 values (either sign, subnormals included)
      4    zero: q4_K / q5_K with d = dmin = 0 and random scales and levels; q6_K with d = 0 and
           random signed scales (the sign of each zero is checked)
      5    extremes: every scale, min and level at its maximum (q6_K: scales -128 and 127, levels 0
           and 63), super-scales +-65504 (the largest f16)
      6    f16 subnormal super-scales (2^-24 and 1023 * 2^-24)
      7    negative zero super-scales (q4_K / q5_K: d = -0 with dmin = +0)
  quantize: one float32 input shared by the formats, ggml_quantize_chunk(type, input, no imatrix)
    as hex (what llama-quantize writes without an importance matrix; asserted equal to
    quantize_row_*_ref), and gguf-py's dequantisation of those bytes. gguf-py 0.19.0 has no K-quant
    quantiser (gguf.quants.quantize raises NotImplementedError; the script checks that, so a later
    gguf-py that has one is noticed). The test checks herd's QuantizeRow writes the same bytes.
    Input blocks of 256:
      0 normal(0, 1)   1 normal * 0.02 (weight-like)   2 normal + 3   3 normal - 3   4 laplace
      5 sparse (90% zeros: all-zero sub-blocks)   6 mixed magnitudes (sub-block 0 10^4 times the
      rest: sub-block scales that round to 0)   7 half-integers in [-20, 20) (rounding ties)
      8 constant 0.3   9 all zero   10 about 1e-6 (f16-subnormal super-scales)
      11 about 1e-39 (float32 subnormals: the inverse scale overflows)
Deterministic (fixed seed). Floats are written as the shortest decimal of the float32 value, checked
to parse back to the same float32 (gen_quant_goldens.float32_list).
"""

import argparse
import ctypes
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

from gen_quant_goldens import _version, float32_list

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
DEFAULT_OUT = os.path.join(ROOT, "tests", "golden", "quant", "kquant_golden.json")
DEFAULT_GGML = os.path.join(ROOT, ".venv-llamacpp", "lib", "python3.11", "site-packages",
                            "llama_cpp", "lib", "libggml-base.so")
LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"  # as tools/gen_llamacpp_goldens.py

QK_K = 256
# name: (gguf-py type, ggml_type enum value, block bytes, offsets of the f16 super-scales)
FORMATS = {
    "q4_k": (T.Q4_K, 12, 144, (0, 2)),
    "q5_k": (T.Q5_K, 13, 176, (0, 2)),
    "q6_k": (T.Q6_K, 14, 210, (208,)),
}


def put_f16(block: np.ndarray, offset: int, bits: int) -> None:
    block[offset], block[offset + 1] = bits & 0xFF, bits >> 8


def random_finite_f16(rng: np.random.Generator) -> int:
    while True:
        bits = int(rng.integers(0, 1 << 16))
        if (bits >> 10) & 0x1F != 0x1F:  # not inf / NaN
            return bits


def dequant_blocks(name: str, rng: np.random.Generator) -> np.ndarray:
    _, _, nbytes, f16s = FORMATS[name]
    blocks = rng.integers(0, 256, (8, nbytes), dtype=np.uint8)
    for b in range(4):
        for off in f16s:
            put_f16(blocks[b], off, random_finite_f16(rng))
    if name == "q6_k":
        put_f16(blocks[4], 208, 0x0000)
        ext = blocks[5]
        ext[:192] = np.where(np.arange(192) % 3 == 0, 0x00, 0xFF)  # levels 0 and 63 (and mixes)
        ext[192:208] = np.where(np.arange(16) % 2 == 0, 0x80, 0x7F)  # scales -128, 127
        put_f16(ext, 208, 0xFBFF)  # -65504
        put_f16(blocks[6], 208, 0x0001)
        put_f16(blocks[7], 208, 0x8000)
    else:
        put_f16(blocks[4], 0, 0x0000), put_f16(blocks[4], 2, 0x0000)
        blocks[5][:] = 0xFF
        put_f16(blocks[5], 0, 0x7BFF), put_f16(blocks[5], 2, 0xFBFF)  # +65504, -65504
        put_f16(blocks[6], 0, 0x0001), put_f16(blocks[6], 2, 0x03FF)
        put_f16(blocks[7], 0, 0x8000), put_f16(blocks[7], 2, 0x0000)
    return blocks.reshape(-1)


def quantize_input(rng: np.random.Generator) -> np.ndarray:
    n = QK_K
    normal = lambda: rng.standard_normal(n)
    mixed = normal() * 1e-4
    mixed[:32] *= 1e4
    blocks = [
        normal(),
        normal() * 0.02,
        normal() + 3,
        normal() - 3,
        rng.laplace(size=n),
        normal() * (rng.random(n) < 0.1),
        mixed,
        rng.integers(-40, 40, n) * 0.5,
        np.full(n, 0.3),
        np.zeros(n),
        normal() * 1e-6,
        normal() * 1e-39,
    ]
    return np.concatenate(blocks).astype(np.float32)


class Ggml:
    """ggml's quantisers and dequantisers from libggml-base.so, through ctypes."""

    def __init__(self, path: str):
        if not os.path.exists(path):
            sys.exit(f"{path} missing: run tools/gen_llamacpp_goldens.py --setup (or --ggml-lib)")
        self.lib = ctypes.CDLL(path)
        self.lib.ggml_commit.restype = ctypes.c_char_p
        self.lib.ggml_version.restype = ctypes.c_char_p
        self.commit = self.lib.ggml_commit().decode()
        self.version = self.lib.ggml_version().decode()
        if not LLAMA_CPP_COMMIT.startswith(self.commit.split("-")[0]):
            sys.exit(f"ggml_commit() says {self.commit}, expected {LLAMA_CPP_COMMIT[:7]}")
        self.lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                                 ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                                 ctypes.c_void_p]

    def quantize(self, name: str, x: np.ndarray) -> np.ndarray:
        _, ggml_type, nbytes, _ = FORMATS[name]
        x = np.ascontiguousarray(x, dtype=np.float32)
        nb = x.size // QK_K
        out = np.zeros(nb * nbytes, dtype=np.uint8)
        # One row of nb blocks, no importance matrix.
        size = self.lib.ggml_quantize_chunk(ggml_type, x.ctypes.data, out.ctypes.data, 0, 1, x.size,
                                            None)
        assert size == out.size, (size, out.size)
        ref = np.zeros_like(out)
        getattr(self.lib, f"quantize_row_{name[:3]}K_ref")(
            ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(ref.ctypes.data),
            ctypes.c_int64(x.size))
        assert np.array_equal(out, ref), name
        return out

    def dequantize(self, name: str, q: np.ndarray) -> np.ndarray:
        nbytes = FORMATS[name][2]
        q = np.ascontiguousarray(q, dtype=np.uint8)
        y = np.zeros(q.size // nbytes * QK_K, dtype=np.float32)
        getattr(self.lib, f"dequantize_row_{name[:3]}K")(
            ctypes.c_void_p(q.ctypes.data), ctypes.c_void_p(y.ctypes.data), ctypes.c_int64(y.size))
        return y


def gguf_dequantize(name: str, q: np.ndarray) -> np.ndarray:
    y = quants.dequantize(q, FORMATS[name][0]).astype(np.float32).reshape(-1)
    return y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--ggml-lib", default=DEFAULT_GGML)
    args = ap.parse_args()
    ggml = Ggml(args.ggml_lib)

    rng = np.random.default_rng(20240601)
    x = quantize_input(rng)
    formats = {}
    for name, (qtype, _, _, _) in FORMATS.items():
        try:
            quants.quantize(x, qtype)
            sys.exit(f"gguf-py {_version('gguf')} quantises {name}: record it too")
        except NotImplementedError:
            pass
        dq = dequant_blocks(name, rng)
        dy = gguf_dequantize(name, dq)
        assert np.array_equal(dy.view(np.uint32), ggml.dequantize(name, dq).view(np.uint32)), name
        assert np.isfinite(dy).all(), name
        q = ggml.quantize(name, x)
        y = gguf_dequantize(name, q)
        assert np.array_equal(y.view(np.uint32), ggml.dequantize(name, q).view(np.uint32)), name
        formats[name] = {"dequantize": {"blocks": dq.tobytes().hex(), "values": dy},
                         "quantize": {"quantized": q.tobytes().hex(), "dequantized": y}}

    doc = {
        "generator": "tools/gen_kquant_goldens.py",
        "gguf": _version("gguf"),
        "numpy": np.__version__,
        "ggml_commit": ggml.commit,
        "ggml_version": ggml.version,
        "block_size": QK_K,
        "quantize_input": x,
        "formats": formats,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(to_json(doc))
    print(f"wrote {args.out}")


def to_json(doc: dict) -> str:
    """One line per array or hex string."""
    lines = ["{"]
    for key in ("generator", "gguf", "numpy", "ggml_commit", "ggml_version", "block_size"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(doc[key])},")
    lines.append(f'  "quantize_input": {float32_list(doc["quantize_input"])},')
    lines.append('  "formats": {')
    names = list(doc["formats"])
    for i, name in enumerate(names):
        f = doc["formats"][name]
        lines.append(f"    {json.dumps(name)}: {{")
        lines.append('      "dequantize": {')
        lines.append(f'        "blocks": {json.dumps(f["dequantize"]["blocks"])},')
        lines.append(f'        "values": {float32_list(f["dequantize"]["values"])}')
        lines.append("      },")
        lines.append('      "quantize": {')
        lines.append(f'        "quantized": {json.dumps(f["quantize"]["quantized"])},')
        lines.append(f'        "dequantized": {float32_list(f["quantize"]["dequantized"])}')
        lines.append("      }")
        lines.append("    }" + ("," if i + 1 < len(names) else ""))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
