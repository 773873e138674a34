#!/usr/bin/env python3
"""Writes the .pth goldens with real PyTorch's torch.save (the reference for herd's io/pth.cc).

  tests/golden/io/small.pth        a state_dict like Meta's consolidated.NN.pth, but tiny: bf16, f16,
                                   f32 and i64 tensors, a row slice of another tensor saved with it
                                   (same storage, storage_offset > 0), a 0-dim tensor, an empty
                                   tensor, as an OrderedDict carrying module.state_dict()'s
                                   `_metadata` (so the pickle has a BUILD)
  tests/golden/io/small_pth.json   per tensor, in order: name, dtype, shape, values (flattened,
                                   exact as JSON numbers) and the row-major bytes as hex
  tests/fuzz/seeds/fuzz_pth/tiny.pth   a two-tensor file for the fuzzer

Needs torch (any 2.x; the CPU wheel is enough). The plain PyPI wheel works:
  python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch
  /tmp/torchvenv/bin/python tools/make_pth_golden.py
Output is byte-identical across runs with torch 2.15.0 (.data/serialization_id is derived from
the content); another torch version may lay out the ZIP differently, with the same tensors.
"""
import collections
import json
import pathlib

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/io"
SEEDS = ROOT / "tests/fuzz/seeds/fuzz_pth"

DTYPE_NAMES = {
    torch.float32: "f32",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
    torch.int64: "i64",
}


def small_state_dict():
    g = torch.Generator().manual_seed(1234)
    big = torch.randn(4, 5, generator=g, dtype=torch.float32)
    sd = collections.OrderedDict()
    sd["tok_embeddings.weight"] = torch.randn(6, 4, generator=g).to(torch.bfloat16)
    sd["layers.0.attention.wq.weight"] = torch.randn(4, 4, generator=g).to(torch.bfloat16)
    sd["layers.0.attention_norm.weight"] = torch.randn(4, generator=g).to(torch.float16)
    sd["big"] = big
    sd["big.rows_1_3"] = big[1:3]  # a view: storage_offset 5 into big's storage
    sd["scalar"] = torch.tensor(-2.75, dtype=torch.float32)  # 0-dim
    sd["empty"] = torch.zeros(0, 3, dtype=torch.float32)
    sd["positions"] = torch.tensor([0, -1, 2**40, -(2**62)], dtype=torch.int64)
    sd["norm.weight"] = torch.ones(4, dtype=torch.float16) * 1.5
    # What nn.Module.state_dict() attaches; pickled as a BUILD on the OrderedDict.
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


def describe(sd):
    tensors = []
    for name, t in sd.items():
        flat = t.contiguous().reshape(-1)
        if t.dtype == torch.int64:
            values = [int(v) for v in flat.tolist()]
        else:
            values = [float(v) for v in flat.float().tolist()]  # exact: every value fits in f32
        raw = flat.view(torch.uint8) if flat.numel() else torch.zeros(0, dtype=torch.uint8)
        tensors.append({
            "name": name,
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "values": values,
            "hex": bytes(raw.tolist()).hex(),
        })
    return {"file": "small.pth", "torch": torch.__version__, "tensors": tensors}


def main():
    GOLDEN.mkdir(parents=True, exist_ok=True)
    SEEDS.mkdir(parents=True, exist_ok=True)
    sd = small_state_dict()
    torch.save(sd, GOLDEN / "small.pth")
    desc = describe(sd)
    with open(GOLDEN / "small_pth.json", "w") as f:  # one tensor per line
        f.write('{"file": %s, "torch": %s, "tensors": [\n' % (json.dumps(desc["file"]),
                                                            json.dumps(desc["torch"])))
        f.write(",\n".join(json.dumps(t) for t in desc["tensors"]))
        f.write("\n]}\n")
    # Round trip through torch itself, as a check on the golden.
    back = torch.load(GOLDEN / "small.pth", weights_only=True)
    assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd)

    tiny = collections.OrderedDict()
    tiny["w"] = torch.arange(6, dtype=torch.float32).reshape(2, 3).to(torch.bfloat16)
    tiny["b"] = torch.tensor([0.5, -1.0], dtype=torch.float16)
    torch.save(tiny, SEEDS / "tiny.pth")
    print("wrote", GOLDEN / "small.pth", (GOLDEN / "small.pth").stat().st_size, "bytes;",
          SEEDS / "tiny.pth", (SEEDS / "tiny.pth").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
