#!/usr/bin/env python3
"""Checks files written by herd's writers (io/pth_writer, io/safetensors_writer) with the real
libraries: torch.load for the .pth archives, the safetensors package for the .safetensors files.
A manual tool, not part of CI (it needs torch):

  python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy safetensors
  HERD_WRITE_SAMPLE_DIR=/tmp/herd_samples build/tests/pth_writer_test --gtest_filter='WriterSamples.*'
  /tmp/torchvenv/bin/python tools/check_pth_writer.py /tmp/herd_samples

The test WriterSamples.WriteWhenAsked (tests/pth_writer_test.cc) writes:
  consolidated.00.pth   SAMPLE below, plain ZIP
  zip64.00.pth          SAMPLE with ZIP64 fields everywhere (PthWriteOptions{.zip64_limit = 0})
  many.pth              1001 f16 tensors "t0".."t1000" of shape (2,), seeds 0..1000
  model.safetensors     SAMPLE, metadata {"format": "pt"}
  numpy.safetensors     SAMPLE without its bf16 tensors (numpy has no bf16)
and, only with HERD_WRITE_LARGE_SAMPLE=1 as well (4.5 GiB of disk), large.pth: "head" u8 (16,) seed 0,
"zeros" u8 (4.5 GiB,) all zero, "tail" i32 (4,) seed 2 — real ZIP64 sizes and offsets.
Tensor bytes follow one pattern: byte i of the tensor with seed s is (31 * i + 7 * s + 1) mod 256,
or (i + s) mod 2 for bool. Besides the values, each .pth is checked with zipfile (CRC-32s, names,
64-byte aligned payloads), loaded with mmap on and off, and its data.pkl is compared byte for byte
with the one torch.save writes for the same state_dict.
"""
import collections
import pathlib
import struct
import sys
import tempfile
import zipfile

import numpy as np
import safetensors
import safetensors.numpy
import safetensors.torch
import torch

# (name, herd dtype, shape); the seed is the index. Mirrors Sample() in tests/pth_writer_test.cc.
SAMPLE = [
    ("model.f32", "f32", (2, 3)),
    ("f16", "f16", (4,)),
    ("bf16", "bf16", (3, 1, 2)),
    ("f64", "f64", (2,)),
    ("i64", "i64", (2, 2)),
    ("i32", "i32", (3,)),
    ("i16", "i16", (1, 5)),
    ("i8", "i8", (7,)),
    ("u8", "u8", (2, 2, 2)),
    ("bool", "bool", (5,)),
    ("scalar", "f32", ()),
    ("empty", "bf16", (0, 3)),
    ("big", "f32", (100, 700)),
]
TORCH = {
    "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64,
    "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8,
    "u8": torch.uint8, "bool": torch.bool,
}
NUMPY = {
    "f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64, "i32": np.int32,
    "i16": np.int16, "i8": np.int8, "u8": np.uint8, "bool": np.bool_,
}

LARGE_BYTES = 9 << 29  # 4.5 GiB

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def pattern(dtype, shape, seed):
    n = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=TORCH[dtype]).element_size()
    if dtype == "bool":
        return bytes((i + seed) % 2 for i in range(n))
    return bytes((31 * i + 7 * seed + 1) % 256 for i in range(n))


def torch_bytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def expected_state_dict(spec):
    sd = collections.OrderedDict()
    for seed, (name, dtype, shape) in enumerate(spec):
        raw = bytearray(pattern(dtype, shape, seed))
        flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        sd[name] = flat.view(TORCH[dtype]).reshape(shape).clone()
    return sd


def check_zip(path, n_storages):
    with zipfile.ZipFile(path) as z:
        check(z.testzip() is None, f"{path.name}: zipfile.testzip found a bad CRC")
        archive = path.name.split(".")[0]
        want = [f"{archive}/data.pkl", f"{archive}/byteorder"]
        want += [f"{archive}/data/{i}" for i in range(n_storages)] + [f"{archive}/version"]
        check(z.namelist() == want, f"{path.name}: entries {z.namelist()[:4]}...")
        raw = path.read_bytes()
        for info in z.infolist():
            check(info.compress_type == zipfile.ZIP_STORED, f"{info.filename} is compressed")
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:][:4])
            payload = info.header_offset + 30 + name_len + extra_len
            check(payload % 64 == 0, f"{info.filename}: payload at {payload}, not 64-aligned")
        check(z.read(f"{archive}/byteorder") == b"little", f"{path.name}: byteorder")
        check(z.read(f"{archive}/version") == b"3\n", f"{path.name}: version")
        return z.read(f"{archive}/data.pkl")


def check_pth(path, spec):
    failed_before = len(failures)
    pkl = check_zip(path, len(spec))
    want = expected_state_dict(spec)
    for mmap in (True, False):
        sd = torch.load(path, weights_only=True, mmap=mmap)
        check(type(sd) is collections.OrderedDict, f"{path.name}: loaded a {type(sd)}")
        check(list(sd.keys()) == list(want.keys()), f"{path.name}: key order")
        for name, t in want.items():
            got = sd[name]
            what = f"{path.name} (mmap={mmap}) {name}"
            check(got.dtype == t.dtype, f"{what}: dtype {got.dtype}")
            check(tuple(got.shape) == tuple(t.shape), f"{what}: shape {tuple(got.shape)}")
            check(got.stride() == t.stride(), f"{what}: stride {got.stride()}")
            check(torch_bytes(got) == torch_bytes(t), f"{what}: bytes differ")
    # torch.save of the same state_dict. (Its archive folder may differ: torch 2.x strips only the
    # last extension, "consolidated.00", where Meta's files and herd use "consolidated".)
    with tempfile.TemporaryDirectory() as tmp:
        ref = pathlib.Path(tmp) / path.name
        torch.save(want, ref)
        with zipfile.ZipFile(ref) as z:
            ref_pkl = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    check(pkl == ref_pkl, f"{path.name}: data.pkl differs from torch.save's ({len(pkl)} vs "
          f"{len(ref_pkl)} bytes)")
    if len(failures) == failed_before:
        print(f"ok: {path.name}: {len(spec)} tensors; torch.load (mmap on and off) matches; "
              f"data.pkl identical to torch.save's ({len(pkl)} bytes)")


def check_safetensors(path, spec, framework):
    failed_before = len(failures)
    seeds = {name: seed for seed, (name, _, _) in enumerate(SAMPLE)}
    if framework == "pt":
        loaded = safetensors.torch.load_file(path)
        with safetensors.safe_open(path, framework="pt") as f:
            check(f.metadata() == {"format": "pt"}, f"{path.name}: metadata {f.metadata()}")
            check(set(f.keys()) == {n for n, _, _ in spec}, f"{path.name}: keys")
    else:
        loaded = safetensors.numpy.load_file(path)
    check(set(loaded) == {n for n, _, _ in spec}, f"{path.name}: tensors {sorted(loaded)}")
    for name, dtype, shape in spec:
        t = loaded[name]
        want = pattern(dtype, shape, seeds[name])
        if framework == "pt":
            ok = t.dtype == TORCH[dtype] and tuple(t.shape) == shape and torch_bytes(t) == want
        else:
            ok = t.dtype == NUMPY[dtype] and t.shape == shape and t.tobytes() == want
        check(ok, f"{path.name} ({framework}) {name}: dtype/shape/bytes differ")
    if len(failures) == failed_before:
        print(f"ok: {path.name}: {len(spec)} tensors match through safetensors ({framework})")


def check_large(path):
    z = zipfile.ZipFile(path)
    check(z.testzip() is None, f"{path.name}: zipfile.testzip found a bad CRC")
    sd = torch.load(path, weights_only=True, mmap=True)
    check(list(sd) == ["head", "zeros", "tail"], f"{path.name}: keys {list(sd)}")
    check(torch_bytes(sd["head"]) == pattern("u8", (16,), 0), f"{path.name}: head bytes")
    check(torch_bytes(sd["tail"]) == pattern("i32", (4,), 2), f"{path.name}: tail bytes")
    zeros = sd["zeros"]
    check(zeros.shape == (LARGE_BYTES,) and zeros.dtype == torch.uint8, f"{path.name}: zeros")
    check(not zeros.any().item(), f"{path.name}: zeros holds a non-zero byte")
    print(f"ok: {path.name}: {path.stat().st_size} bytes, ZIP64; CRCs and torch.load (mmap) match")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = pathlib.Path(sys.argv[1])
    print(f"torch {torch.__version__}, safetensors {safetensors.__version__}")
    check_pth(d / "consolidated.00.pth", SAMPLE)
    check_pth(d / "zip64.00.pth", SAMPLE)
    check_pth(d / "many.pth", [(f"t{i}", "f16", (2,)) for i in range(1001)])
    check_safetensors(d / "model.safetensors", SAMPLE, "pt")
    check_safetensors(d / "numpy.safetensors", [s for s in SAMPLE if s[1] != "bf16"], "np")
    if (d / "large.pth").exists():
        check_large(d / "large.pth")
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("all checks passed")


if __name__ == "__main__":
    main()
