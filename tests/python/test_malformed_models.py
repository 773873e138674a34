"""Malformed model files (tests/golden/malformed, written by tools/make_malformed_models.py): herd
must answer each with one clear error -- exit code 1, one stderr line starting "herd: " that says
what is wrong and names the file -- never a crash, a hang, or logits computed from garbage. The
valid base models the cases are derived from must load, and agree with each other."""
import array
import json
import math
import os
import pathlib
import re
import resource
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MALFORMED = ROOT / "tests/golden/malformed"
GENERATOR = ROOT / "tools/make_malformed_models.py"
MANIFEST = json.loads((MALFORMED / "manifest.json").read_text())
TOKENS = "1,2,3"
TIMEOUT_S = 10
# A cap on herd's address space, so that a case making herd allocate absurd amounts fails at once
# with bad_alloc on every machine (whatever its RAM and overcommit policy) instead of paging it in.
ADDRESS_SPACE_LIMIT = 16 << 30


def _is_sanitized(binary):
    data = pathlib.Path(binary).read_bytes()
    return b"__asan_init" in data or b"__tsan_init" in data or b"__msan_init" in data


@pytest.fixture(scope="session")
def run_logits(herd_bin):
    limit = None if _is_sanitized(herd_bin) else ADDRESS_SPACE_LIMIT  # sanitizers reserve terabytes

    def set_limit():
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def run(model, out):
        cmd = [herd_bin, "logits", "--model", str(model), "--tokens", TOKENS, "--out", str(out)]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, preexec_fn=set_limit)
        except subprocess.TimeoutExpired:
            pytest.fail(f"herd hung (no answer in {TIMEOUT_S} s): {' '.join(cmd)}")

    return run


def _read_logits(path):
    a = array.array("f")
    a.frombytes(path.read_bytes())
    assert sys.byteorder == "little"
    return list(a)


@pytest.mark.parametrize("case", MANIFEST["valid"], ids=[v["model"] for v in MANIFEST["valid"]])
def test_valid_base_model_loads(case, run_logits, tmp_path):
    out = tmp_path / "logits.bin"
    r = run_logits(MALFORMED / case["model"], out)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"", "the base models should load without warnings: " + r.stderr.decode()
    top = json.loads(r.stdout)["top"]
    assert len(top) == 5
    logits = _read_logits(out)
    assert len(logits) == 16 and all(math.isfinite(x) for x in logits)


def test_valid_base_models_agree(run_logits, tmp_path):
    """The same f16 weights in five layouts (HF rotate-half q/k rows, Meta interleaved rows, shards,
    GGUF): herd must compute the same logits from each."""
    results = {}
    for i, case in enumerate(MANIFEST["valid"]):
        out = tmp_path / f"{i}.bin"
        assert run_logits(MALFORMED / case["model"], out).returncode == 0
        results[case["model"]] = _read_logits(out)
    first_name, first = next(iter(results.items()))
    for name, logits in results.items():
        for a, b in zip(first, logits):
            assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), f"{name} disagrees with {first_name}"


def _case_param(case):
    marks = []
    if case.get("known_bug"):
        marks.append(pytest.mark.xfail(strict=True, reason="known herd bug: " + case["known_bug"]))
    return pytest.param(case, marks=marks, id=case["model"])


@pytest.mark.parametrize("case", [_case_param(c) for c in MANIFEST["cases"]])
def test_malformed_model_is_refused(case, run_logits, tmp_path):
    model = MALFORMED / case["model"]
    out = tmp_path / "logits.bin"
    r = run_logits(model, out)
    stderr = r.stderr.decode(errors="replace")
    what = f"{case['problem']}\nherd logits --model {model}\nexit code {r.returncode}, stderr:\n{stderr}"
    assert r.returncode == 1, "expected exit code 1 (a clean error): " + what
    assert r.stdout == b"" and not out.exists(), "herd wrote output for a malformed model: " + what
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("herd: "), "expected one 'herd: ' line: " + what
    message = lines[0]
    if case["file"]:
        assert str(MALFORMED / case["file"]) in message, f"the message must name {case['file']}: " + what
    # The expected text must be in the message proper, not just in the case's directory name.
    case_dir = model.parent if model.suffix == ".gguf" else model
    text = message.replace(str(case_dir), "<dir>")
    assert case["expect"] in text, f"expected {case['expect']!r} in the message: " + what
    assert not re.search(r"(\S+): \1: ", message), "the message repeats its file prefix: " + what


def test_generator_is_reproducible(tmp_path):
    """Re-running the generator gives the committed files, byte for byte (and no others)."""
    out = tmp_path / "malformed"
    subprocess.run([sys.executable, str(GENERATOR), str(out)], check=True, capture_output=True)

    def files(d):
        return {p.relative_to(d).as_posix(): p for p in sorted(d.rglob("*")) if p.is_file()}

    committed, fresh = files(MALFORMED), files(out)
    assert sorted(committed) == sorted(fresh)
    differ = [name for name in committed if committed[name].read_bytes() != fresh[name].read_bytes()]
    assert not differ, f"regenerated files differ from the committed ones: {differ}"


def test_matrix_is_small_and_complete():
    total = sum(p.stat().st_size for p in MALFORMED.rglob("*") if p.is_file())
    assert total < 500_000, f"tests/golden/malformed holds {total} bytes"
    models = [c["model"] for c in MANIFEST["cases"]] + [v["model"] for v in MANIFEST["valid"]]
    assert len(models) == len(set(models))
    for m in models:
        assert (MALFORMED / m).exists(), m
    for c in MANIFEST["cases"]:
        assert c["expect"] and c["problem"] and c["format"] in ("hf", "meta", "gguf"), c
        if c["file"]:
            assert (MALFORMED / c["file"]).is_file(), c
    assert {c["format"] for c in MANIFEST["cases"]} == {"hf", "meta", "gguf"}
