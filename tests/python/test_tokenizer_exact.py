"""herd's tokenizer is token-for-token identical to tiktoken with Meta's tokenizer.model, in all three
file forms, on a >= 20 MB multilingual corpus and >= 100,000 fuzz strings; decode(encode(x)) == x."""
import json
import random
import subprocess

import pytest

from tiktoken_ref import encode_bytes_reference


def herd_jsonl(herd_bin, tokenizer, lines, *extra):
    out = subprocess.run([herd_bin, "tokenize", "--jsonl", "--tokenizer", tokenizer, *extra],
                         input="".join(lines).encode(), capture_output=True, check=True)
    return [json.loads(l) for l in out.stdout.decode().split("\n") if l]


def load_texts(path):
    # split("\n"), not splitlines(): JSON lines may hold raw U+2028, U+0085, ... which splitlines cuts at.
    lines = [l + "\n" for l in path.read_text(encoding="utf-8").split("\n") if l]
    return lines, [json.loads(l)["text"] for l in lines]


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare(enc, texts, got, what):
    ref = enc.encode_ordinary_batch(texts, num_threads=2)
    assert len(got) == len(texts)
    bad = [i for i in range(len(texts)) if got[i] != ref[i]]
    if bad:
        i = bad[0]
        k = first_difference(got[i], ref[i])
        pytest.fail(f"{what}: {len(bad)} of {len(texts)} differ; first #{i} at token {k}: "
                    f"text {texts[i][:120]!r} herd {got[i][max(0, k - 3):k + 5]} "
                    f"tiktoken {ref[i][max(0, k - 3):k + 5]}")


SCRIPT_RANGES = {  # a core block per script the issue names; >= 2,000 characters of each required
    "Latin": [(0x41, 0x5A), (0x61, 0x7A)], "Cyrillic": [(0x400, 0x4FF)], "Greek": [(0x370, 0x3FF)],
    "Han": [(0x4E00, 0x9FFF)], "kana": [(0x3040, 0x30FF)], "Thai": [(0xE00, 0xE7F)],
    "Devanagari": [(0x900, 0x97F)], "Arabic": [(0x600, 0x6FF)], "Hebrew": [(0x590, 0x5FF)],
    "Hangul": [(0xAC00, 0xD7AF)], "emoji": [(0x1F300, 0x1FAFF)],
}


def test_corpus_size_and_scripts(corpus_path):
    size = corpus_path.stat().st_size
    assert size >= 20e6, f"corpus is {size / 1e6:.1f} MB"
    counts = dict.fromkeys(SCRIPT_RANGES, 0)
    lookup = {cp: name for name, rs in SCRIPT_RANGES.items() for a, b in rs for cp in range(a, b + 1)}
    for line in corpus_path.read_text(encoding="utf-8").split("\n"):
        if line:
            for ch in json.loads(line)["text"]:
                name = lookup.get(ord(ch))
                if name:
                    counts[name] += 1
    thin = {k: v for k, v in counts.items() if v < 2000}
    assert not thin, f"scripts with < 2000 characters: {thin}"


@pytest.mark.parametrize("form", ["tiktoken", "hf_json", "gguf"])
def test_corpus_matches_tiktoken(herd_bin, tokenizer_forms, enc, corpus_path, form):
    lines, texts = load_texts(corpus_path)
    compare(enc, texts, herd_jsonl(herd_bin, tokenizer_forms[form], lines), f"corpus/{form}")


@pytest.mark.parametrize("form", ["tiktoken", "hf_json", "gguf"])
def test_fuzz_matches_tiktoken(herd_bin, tokenizer_forms, enc, fuzz_path, form):
    lines, texts = load_texts(fuzz_path)
    assert len(texts) >= 100_000
    compare(enc, texts, herd_jsonl(herd_bin, tokenizer_forms[form], lines), f"fuzz/{form}")


@pytest.mark.parametrize("which", ["corpus", "fuzz"])
def test_decode_roundtrip(herd_bin, llama3_model, corpus_path, fuzz_path, which):
    lines, texts = load_texts(corpus_path if which == "corpus" else fuzz_path)
    ids = herd_jsonl(herd_bin, llama3_model, lines)
    out = subprocess.run([herd_bin, "detokenize", "--jsonl", "--tokenizer", llama3_model],
                         input="".join(json.dumps(x) + "\n" for x in ids).encode(), capture_output=True,
                         check=True)
    back = [json.loads(l) for l in out.stdout.decode().split("\n") if l]
    assert len(back) == len(texts)
    bad = [i for i in range(len(texts)) if back[i] != texts[i]]
    assert not bad, f"{len(bad)} round trips differ, first: {texts[bad[0]][:100]!r}"


def random_bytes_cases(n, seed):
    """Byte strings mixing text with bytes that are not UTF-8 (stray continuation bytes, truncated and
    overlong sequences, surrogates, 0xF5..0xFF)."""
    rng = random.Random(seed)
    words = ["hello", " world", "'s", "123456", "  ", "\n", "é", "中文", "Привет", "!!", "\t", "😀"]
    bad = [b"\x80", b"\xbf", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff",
           b"\xfe\xfe", b"\xf0\x9f\x98", b"\xc3"]
    cases = []
    for _ in range(n):
        parts = [rng.choice(bad) if rng.random() < 0.4 else rng.choice(words).encode()
                 for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.2:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 20))))
        cases.append(b"".join(parts))
    return cases


def test_invalid_utf8_matches_reference(herd_bin, llama3_model, enc):
    """Bytes that are not UTF-8: herd encodes them byte-exactly, splitting as the regex does when each
    invalid byte is a lone surrogate (Python's surrogateescape) - tools/tiktoken_ref.py."""
    cases = random_bytes_cases(3000, seed=2)
    got = herd_jsonl(herd_bin, llama3_model, [json.dumps({"hex": c.hex()}) + "\n" for c in cases])
    for c, ids in zip(cases, got):
        assert ids == encode_bytes_reference(enc, c), c
        assert b"".join(enc.decode_single_token_bytes(t) for t in ids) == c


def test_unicode_tables_match_tiktoken():
    """herd's \\p{L} / \\p{N} / \\s ranges equal what the installed tiktoken's regex engine says, for
    every code point (tools/gen_unicode_tables.py --check)."""
    import sys
    from conftest import ROOT
    r = subprocess.run([sys.executable, str(ROOT / "tools/gen_unicode_tables.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
