#!/usr/bin/env python3
"""Write tests/golden/quant/quant_golden.json: GGUF block quantisation by gguf-py (gguf.quants).

Usage (in the tools venv, see tools/requirements-tools.txt):
    .venv-tools/bin/python tools/gen_quant_goldens.py [--out PATH]

For each of q4_0, q4_1, q5_0, q5_1 and q8_0 the file holds a float32 input of a few 32-element blocks,
gguf.quants.quantize(input) as hex, and gguf.quants.dequantize(those bytes). gguf-py's numpy
quantisers are bit-exact ports of ggml's reference ones (quantize_row_*_ref), so
tests/quant_formats_test.cc checks that herd's QuantizeRow writes the same bytes and DequantizeRow
reads back the same floats. Deterministic (fixed seed). The blocks of each format:
  0  random normal values (scale 1)
  1  exact rounding ties: values chosen so the block scale d is exactly 1, with every other element
     on a half-integer level boundary (q4_1 / q5_1: min 0 and max 15 / 31; q4_0 / q5_0: an element
     of -8 / -16; q8_0: an element of 127)
  2  two elements of equal magnitude and opposite sign (+3 first, -3 later): ggml keeps the first
     for the sign of d
  3  tiny values (about 1e-6): d is an f16 subnormal
  4  all elements equal (0.3, not representable in f16)
  5  all zero
Floats are written as the shortest decimal of the float32 value; the script checks that each parses
back (as a double, then rounded to float) to the same float32.
"""

import argparse
import json
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
DEFAULT_OUT = os.path.join(ROOT, "tests", "golden", "quant", "quant_golden.json")

QK = 32
FORMATS = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0}


def ties_block(name: str) -> np.ndarray:
    """Elements at exact half-integer multiples of d = 1 (the rounding boundaries), with the block's
    extremes chosen so that the quantiser computes d = 1 exactly."""
    if name in ("q4_1", "q5_1"):
        top = 15 if name == "q4_1" else 31
        # min 0, max top; the rest alternate between half-integers and integers in (0, top).
        b = [0.0, float(top)] + [(k % top) + (0.5 if k % 2 == 0 else 0.0) for k in range(30)]
    elif name in ("q4_0", "q5_0"):
        half = 8 if name == "q4_0" else 16
        # -half sets d = 1 (q = x + half); +-(k + 0.5) are ties, x = half - 0.5 ties up to the clamp.
        b = [-float(half), half - 0.5, -(half - 0.5)]
        b += [(k % half + 0.5) * (1 if k % 2 else -1) for k in range(29)]
    else:  # q8_0: 127 sets d = 1; q = roundf(x) rounds ties away from zero.
        b = [127.0] + [(k * 4 % 127 + 0.5) * (1 if k % 2 else -1) for k in range(31)]
    assert len(b) == QK
    return np.array(b, dtype=np.float32)


def blocks_for(name: str, rng: np.random.Generator) -> np.ndarray:
    random = rng.standard_normal(QK).astype(np.float32)
    sign_tie = np.clip(rng.standard_normal(QK) * 0.5, -2.5, 2.5).astype(np.float32)
    sign_tie[3], sign_tie[21] = 3.0, -3.0
    tiny = (rng.standard_normal(QK) * 1e-6).astype(np.float32)
    equal = np.full(QK, 0.3, dtype=np.float32)
    zero = np.zeros(QK, dtype=np.float32)
    return np.concatenate([random, ties_block(name), sign_tie, tiny, equal, zero])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()

    rng = np.random.default_rng(20240531)
    formats = {}
    for name, qtype in FORMATS.items():
        x = blocks_for(name, rng)
        q = quants.quantize(x, qtype)
        y = quants.dequantize(q, qtype).astype(np.float32)
        assert q.dtype == np.uint8 and q.size == x.size // QK * quants.GGML_QUANT_SIZES[qtype][1]
        formats[name] = {
            "input": x,
            "quantized": q.tobytes().hex(),
            "dequantized": y,
        }

    doc = {
        "generator": "tools/gen_quant_goldens.py",
        "gguf": _version("gguf"),
        "numpy": np.__version__,
        "block_size": QK,
        "formats": formats,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(to_json(doc))
    print(f"wrote {args.out}")


def float32_list(a: np.ndarray) -> str:
    """Shortest decimal of each float32 (numpy's repr); checked to come back as the same float32
    when parsed as a double and then rounded to float, as the C++ test reads it."""
    out = []
    for v in a:
        s = str(np.float32(v))  # keeps "-0.0" a float (JSON "-0" would read as integer 0)
        assert np.isfinite(v) and json.loads(s) == float(s), s
        assert np.float32(float(s)).tobytes() == np.float32(v).tobytes(), (s, v)
        out.append(s)
    return "[" + ", ".join(out) + "]"


def to_json(doc: dict) -> str:
    """The document with one line per array (the default indent puts every float on its own line)."""
    lines = ["{"]
    for key in ("generator", "gguf", "numpy", "block_size"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(doc[key])},")
    lines.append('  "formats": {')
    names = list(doc["formats"])
    for i, name in enumerate(names):
        f = doc["formats"][name]
        lines.append(f"    {json.dumps(name)}: {{")
        lines.append(f'      "input": {float32_list(f["input"])},')
        lines.append(f'      "quantized": {json.dumps(f["quantized"])},')
        lines.append(f'      "dequantized": {float32_list(f["dequantized"])}')
        lines.append("    }" + ("," if i + 1 < len(names) else ""))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
