#!/usr/bin/env python3
"""Writes tests/golden/io/small.safetensors with the official `safetensors` package and
tests/golden/io/small.json listing each tensor's name, dtype, shape and values (as float64, exact).

The C++ test (tests/safetensors_test.cc) reads both and compares exactly, so the reader is checked
against a file it did not write. Values are seeded; f16 and bf16 values are exactly representable.
bf16 goes through safetensors' raw `serialize` API (numpy has no bfloat16): the bits are the top
half of float32, rounded to nearest even.

Needs numpy and safetensors (tools/requirements-tools.txt), e.g.
  /work/main/.venv-tools/bin/python tools/make_safetensors_golden.py
"""
import json
import pathlib

import numpy as np
from safetensors import TensorSpec, serialize

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/golden/io"


def bf16_bits(x):
    """float32 array -> uint16 bfloat16 bits (round to nearest even; inputs are finite)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_values(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def main():
    rng = np.random.default_rng(20240521)
    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    f16 = (rng.standard_normal((2, 5)) * 4).astype(np.float16)
    bf16 = bf16_bits(rng.standard_normal(6).astype(np.float32) * 100)
    i64 = np.array([0, -1, 2**40 + 3, -(2**53)], dtype=np.int64)
    scalar = np.array(np.float32(0.15625))  # shape []
    empty = np.zeros((0, 3), dtype=np.float32)

    # (name, safetensors dtype, numpy array of the stored bits, float64 values, serialize dtype)
    tensors = [
        ("model.embed_tokens.weight", "F32", f32, f32.astype(np.float64), "float32"),
        ("model.layers.0.self_attn.q_proj.weight", "F16", f16, f16.astype(np.float64), "float16"),
        ("model.norm.weight", "BF16", bf16, bf16_values(bf16), "bfloat16"),
        ("positions", "I64", i64, i64.astype(np.float64), "int64"),
        ("scale", "F32", scalar, scalar.astype(np.float64), "float32"),
        ("empty", "F32", empty, empty.astype(np.float64), "float32"),
    ]
    specs = {
        name: TensorSpec(dtype=st_dtype, shape=list(a.shape), data_ptr=a.ctypes.data,
                         data_len=a.nbytes)
        for name, _, a, _, st_dtype in tensors
    }
    data = serialize(specs, metadata={"format": "pt", "source": "tools/make_safetensors_golden.py"})
    assert len(data) < 4096, len(data)

    golden = {
        "tensors": [
            {"name": name, "dtype": dtype, "shape": list(a.shape),
             "values": [float(v) for v in values.reshape(-1)]}
            for name, dtype, a, values, _ in tensors
        ]
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "small.safetensors").write_bytes(data)
    (OUT / "small.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {OUT / 'small.safetensors'} ({len(data)} bytes) and small.json")


if __name__ == "__main__":
    main()
