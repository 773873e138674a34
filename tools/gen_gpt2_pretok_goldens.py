#!/usr/bin/env python3
"""Write tests/golden/tokenizer/gpt2_pretok_cases.json: expected pieces and ids of the GPT-2 and SmolLM
pre-tokenizers (herd's PreTokenizer::kGpt2 / kSmolLM) on a varied corpus.

Usage (in the tools venv, see tools/requirements-tools.txt):
    .venv-tools/bin/python tools/gen_gpt2_pretok_goldens.py [--model PATH] [--smollm2 PATH] [--out PATH]

--model is Meta's Llama 3 tokenizer.model (default: the one scripts/setup installs in herd's cache,
$HERD_HOME/llama3/ or ~/.cache/herd/llama3/, else tests/data/llama3/tokenizer.model, fetched with
`pip download llama-models==0.3.0` when missing; sha256 checked); its ranks stand in for a GPT-2-style
vocabulary (the real GPT-2 files need a download that tiktoken.get_encoding("gpt2") would do). The
merges come from tests/golden/tokenizer/llama3-tokenizer.json.xz (the same vocabulary as a merge list).
--smollm2 is the SmolLM2-135M-Instruct Q4_1 GGUF that scripts/setup installs in herd's cache
(models/SmolLM2-135M-Instruct.Q4_1.gguf); only its tokenizer metadata is read.
Deterministic: the random cases use a fixed seed.

Each case is one JSON object on its own line, with "text" (or "bytes_hex" for input that is not valid
UTF-8) and:
  "gpt2"              pieces of GPT2_PAT by the `regex` module (regex.findall)
  "smollm"            pieces of Hugging Face's pre_tokenizers.Sequence([Digits(individual_digits=True),
                      ByteLevel(add_prefix_space=False, use_regex=True)]).pre_tokenize_str, mapped back
                      from the byte-level alphabet to text
  "gpt2_ids"          tiktoken: Encoding(pat_str=tiktoken's gpt2 pattern, mergeable_ranks=Llama 3's)
                      .encode_ordinary(text): rank-based BPE, whole tokens first (ignore_merges)
  "gpt2_hf_ids"       Hugging Face tokenizers: the Llama 3 tokenizer.json (vocab + merges) with
                      pre_tokenizer ByteLevel(add_prefix_space=False, use_regex=True) and
                      model.ignore_merges false, encode(text, add_special_tokens=False)
  "smollm_hf_ids"     the same with SmolLM2's pre_tokenizer Sequence[Digits(individual_digits=True),
                      ByteLevel(add_prefix_space=False, use_regex=True)]
  "smollm2_ids"       SmolLM2-135M-Instruct itself: Hugging Face tokenizers with the vocabulary (normal
                      tokens) and merges of the GGUF that scripts/setup installs (--smollm2), SmolLM2's
                      pre_tokenizer above and ignore_merges false (as in its tokenizer.json); its
                      control tokens are left out, so text like "<|im_start|>" stays text (herd's
                      encode without allowed specials)
For "bytes_hex" cases (no Hugging Face reference: it takes only str) the pieces are "gpt2_hex" /
"smollm_hex" and the ids "gpt2_ids", all by the surrogateescape reference of tools/tiktoken_ref.py (each
invalid byte is a [^\\s\\p{L}\\p{N}] character), with SmolLM's split done by the `regex` module: every
\\p{N} character alone, then GPT2_PAT on the text between them.

Checks before writing: GPT2_PAT by `regex` equals Hugging Face's ByteLevel split on every case; the
`regex` SmolLM split equals Hugging Face's; tiktoken's ids equal the `regex` split + tiktoken's
piece encoder; every id list decodes back to its input; and the cases named "ignore_merges ..." (whole
tokens that BPE over the merges does not reach) really tell the two BPE modes apart.
"""

import argparse
import hashlib
import json
from importlib import metadata
import lzma
import os
import random
import sys

os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import regex  # noqa: E402
import tiktoken  # noqa: E402
from tokenizers import Tokenizer, pre_tokenizers  # noqa: E402

import tiktoken_ref  # noqa: E402  (also checks that `regex` has Unicode 16.0 tables)

ROOT = os.path.normpath(os.path.join(HERE, ".."))
DEFAULT_OUT = os.path.join(ROOT, "tests", "golden", "tokenizer", "gpt2_pretok_cases.json")
HF_FIXTURE = os.path.join(ROOT, "tests", "golden", "tokenizer", "llama3-tokenizer.json.xz")

# GPT-2's pattern as in OpenAI's encoder.py and Hugging Face's ByteLevel pre-tokenizer.
GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# tiktoken's equivalent rewrite (tiktoken_ext/openai_public.py, "gpt2" and "r50k_base").
TIKTOKEN_GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

BYTELEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
SMOLLM_PRE = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, BYTELEVEL]}

_GPT2 = regex.compile(GPT2_PAT)
_DIGIT = regex.compile(r"\p{N}")

TEXT_CASES = [
    ("empty", ""),
    ("space", " "),
    ("two spaces", "  "),
    ("newline", "\n"),
    ("two newlines", "\n\n"),
    ("tab", "\t"),
    ("crlf", "\r\n"),
    ("whitespace mix", " \t \r\n\u00a0\u3000\u2028 \u2029\x0b\x0c\x85"),
    ("trailing spaces", "hello   "),
    ("trailing newlines", "trailing\n\n"),
    ("leading spaces", "   leading"),
    ("spaces before word", "a    b"),
    ("spaces before newline", "x   \n   y"),
    ("newline then spaces then word", "a\n  b"),
    ("space newline runs", " \n \n  \n\n   "),
    ("tab between", "a\tb"),
    ("space tab", "a \tb"),
    ("tab space", "a\t b"),
    ("tabs and spaces", "\t\tdef f():\n\t\t\treturn 1\n"),
    ("lines", "line1\nline2\r\nline3"),
    ("ideographic space before word", "  \u3000a"),
    ("nbsp", "a\u00a0b a \u00a0b"),
    ("300 spaces", " " * 300),
    ("300 spaces then word", " " * 300 + "word"),
    ("word 300 spaces word", "a" + " " * 300 + "b"),
    ("hello world", "Hello world"),
    ("hello world punct", "Hello, world!"),
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    ("contractions lower", "I'm you're we've they'll she'd it's don't"),
    ("contractions upper", "I'M YOU'RE WE'VE THEY'LL SHE'D IT'S DON'T"),
    ("contractions mixed case", "'s 'S 't 'T 're 'RE 'Re 'rE 've 'VE 'm 'M 'll 'LL 'Ll 'd 'D"),
    ("contraction alone", "'s"),
    ("contraction after space", " 've"),
    ("contraction prefixes", "'r 'v 'l 'x 'sa 'llama"),
    ("apostrophes", "''s ''' ' '"),
    ("contraction long s", "it'\u017f"),
    ("apostrophe in words", "o'clock rock'n'roll O'Neil"),
    ("apostrophe variants", "don\u2019t it`s it\u02bcs"),
    ("apostrophe digits", "'90s '1 '\n"),
    ("digits 12345", "12345"),
    ("digits pi", "3.14"),
    ("digits thousands", "1,000,000"),
    ("digits lengths", "1 12 123 1234 12345 123456"),
    ("digits letters", "a1b2c3 abc123def456"),
    ("assignment", "x = 42;"),
    ("version", "v1.2.3-rc4"),
    ("date time", "2024-01-15T10:30:00Z"),
    ("price percent", "$19.99 100% -5"),
    ("space digit", " 1"),
    ("two spaces digit", "  1"),
    ("word spaces digit", "a  1"),
    ("word space digit", "a 1"),
    ("digit space word", "1 a"),
    ("newline digit", "\n1"),
    ("space newline space digit", " \n 1"),
    ("digits spaces", "1  2   3\t4\n5"),
    ("fullwidth digits", "\uff11\uff12\uff13"),
    ("arabic-indic digits", "\u0663\u0664\u0665 \u0663"),
    ("superscripts", "x\u00b2 y\u00b3"),
    ("roman numeral", "\u216b\u2167 chapter \u2160"),
    ("fraction", "\u00bd cup"),
    ("cjk chinese", "你好，世界！这是一个测试。"),
    ("cjk japanese", "日本語のテキストとカタカナ ー"),
    ("korean", "한국어 텍스트입니다"),
    ("mixed scripts", "Apples are りんご 林檎"),
    ("cyrillic", "Россия и Украина"),
    ("arabic", "مرحبا بالعالم"),
    ("hebrew", "שלום עולם"),
    ("devanagari", "नमस्ते दुनिया"),
    ("thai", "สวัสดีครับ"),
    ("greek", "Καλημέρα κόσμε"),
    ("emoji", "Emoji: \U0001f600\U0001f44d\U0001f3fd\U0001f1fa\U0001f1f8 and \u2764\ufe0f"),
    ("emoji zwj", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family"),
    ("space emoji", " \U0001f600\U0001f600 x"),
    ("combining acute", "e\u0301"),
    ("combining words", "cafe\u0301 nai\u0308ve"),
    ("combining alone", "\u0301alone \u0301"),
    ("zalgo", "Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307l\u036e\u0312\u036bgo"),
    ("precomposed", "café naïve résumé façade Ångström"),
    ("code python", "def foo(x):\n    return x ** 2  # comment\n"),
    ("code c", "if (a && b) { return -1; }\n"),
    ("html", "<html><body>hi</body></html>"),
    ("url", "https://example.com/path?q=1&r=2#frag"),
    ("snake case", "foo_bar_baz __init__ x+=1 a--b"),
    ("punctuation runs", "!!! ??? ... --- (parens) [brackets] {braces}"),
    ("space punctuation", " ?! ... a.b.c"),
    ("quotes", "\u201cquoted\u201d \u00abguillemets\u00bb \"plain\""),
    ("json", '{"key": [1, 2.5, "three"], "ok": true}'),
    ("chat markup", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"),
    ("control chars", "\x00\x01abc\x7f"),
    ("zero width space", "a\u200bb"),
    ("bom", "\ufeffBOM"),
    ("paragraph",
     "In 1969, Apollo 11's crew (Armstrong, Aldrin & Collins) landed on the Moon.\n\n"
     "They'd trained for years; it's said the 3 of them   spent 21.5 hours there.  "),
]

BYTES_CASES = [
    ("invalid ff", b"abc\xff def"),
    ("truncated euro then digit", b"\xe2\x82 1"),
    ("bad continuation then digits", b"\xc3( 12"),
    ("apostrophe invalid s", b"'\x80s"),
    ("spaces invalid", b"  \xff"),
    ("digits truncated emoji", b"12\xf0\x9f\x98 x"),
    ("space invalid letters", b" \xfe\xfeab 3"),
]

# Characters for the random cases: each class, the contraction letters, multi-byte ones.
RANDOM_POOL = [" ", " ", " ", "\n", "\t", "\r", "a", "Z", "s", "t", "l", "r", "e", "v", "m", "d", "S", "'", "'",
               "\u00e9", "\u4e2d", "1", "7", "\u0663", "\u00b2", ".", "!", "-", "\U0001f600", "\u0301", "\u00a0",
               "\u3000", "\x0b", "\u2028"]


def byte_decoder():
    """Inverse of GPT-2's byte-level alphabet (bytes_to_unicode)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_DEC = byte_decoder()


def from_byte_level(piece):
    return bytes(_DEC[ch] for ch in piece).decode("utf-8")


def gpt2_split(text):
    return _GPT2.findall(text)


def smollm_split(text):
    """Every \\p{N} character alone, then GPT2_PAT on each stretch between them."""
    out, last = [], 0
    for m in _DIGIT.finditer(text):
        out += gpt2_split(text[last:m.start()])
        out.append(m.group())
        last = m.end()
    return out + gpt2_split(text[last:])


def hf_pieces(pre, text):
    return [from_byte_level(p) for p, _ in pre.pre_tokenize_str(text)]


def hf_tokenizer(root, pre_tokenizer):
    root = dict(root)
    root["pre_tokenizer"] = pre_tokenizer
    root["post_processor"] = None
    root["model"] = dict(root["model"], ignore_merges=False)
    return Tokenizer.from_str(json.dumps(root))


def herd_home():
    """Where scripts/setup installs models (src/base/paths.cc HerdHome)."""
    if os.environ.get("HERD_HOME"):
        return os.environ["HERD_HOME"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "herd")


def default_llama3_path():
    path = os.path.join(herd_home(), "llama3", "tokenizer.model")
    return path if os.path.isfile(path) else None


def default_smollm2_path():
    return os.path.join(herd_home(), "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def smollm2_tokenizer(path):
    """SmolLM2's tokenizer rebuilt from the GGUF's vocabulary and merges (control tokens left out)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def strings(key):
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    assert bytes(reader.fields["tokenizer.ggml.pre"].parts[-1]).decode() == "smollm"
    tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
    f = reader.fields["tokenizer.ggml.token_type"]
    types = [int(f.parts[i][0]) for i in f.data]
    vocab = {t: i for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 1}
    root = {"version": "1.0", "normalizer": None, "pre_tokenizer": SMOLLM_PRE,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "unk_token": None, "ignore_merges": False, "vocab": vocab, "merges": merges}}
    with open(path, "rb") as fp:
        sha = hashlib.sha256(fp.read()).hexdigest()
    return Tokenizer.from_str(json.dumps(root)), sha


def unreachable_tokens(ranks, hf, count):
    """Whole tokens (single pieces for both pre-tokenizers, no digits) that BPE over the merges splits."""
    cands = []
    for b, r in sorted(ranks.items(), key=lambda x: x[1]):
        if len(b) < 2:
            continue
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not _DIGIT.search(s) and gpt2_split(s) == [s]:
            cands.append((r, s))
    found = []
    for (r, s), enc in zip(cands, hf.encode_batch([s for _, s in cands], add_special_tokens=False)):
        if enc.ids != [r]:
            found.append(s)
            if len(found) == count:
                break
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=default_llama3_path(), help="Meta's Llama 3 tokenizer.model")
    ap.add_argument("--smollm2", default=default_smollm2_path(), help="SmolLM2-135M-Instruct GGUF")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()

    ranks = tiktoken_ref.load_mergeable_ranks(tiktoken_ref.fetch_tokenizer_model(args.model))
    enc = tiktoken.Encoding(name="llama3-ranks-gpt2-pattern", pat_str=TIKTOKEN_GPT2_PAT, mergeable_ranks=ranks,
                            special_tokens={})
    with lzma.open(HF_FIXTURE) as f:
        root = json.load(f)
    hf_gpt2 = hf_tokenizer(root, BYTELEVEL)
    hf_smollm = hf_tokenizer(root, SMOLLM_PRE)
    smollm2, smollm2_sha = smollm2_tokenizer(args.smollm2)
    pre_gpt2 = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    pre_smollm = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])

    text_cases = list(TEXT_CASES)
    unreachable = unreachable_tokens(ranks, hf_gpt2, 3)
    for i, s in enumerate(unreachable):
        text_cases.append((f"ignore_merges token {i}", s))
    text_cases.append(("ignore_merges sentence", "Xin chào" + "".join(unreachable) + " 12" + unreachable[0]))
    rng = random.Random(20250917)
    for i in range(60):
        text_cases.append((f"random {i}", "".join(rng.choice(RANDOM_POOL) for _ in range(rng.randint(1, 24)))))

    lines = []
    for name, text in text_cases:
        gpt2 = gpt2_split(text)
        smollm = hf_pieces(pre_smollm, text)
        assert "".join(gpt2) == text and "".join(smollm) == text, name
        assert hf_pieces(pre_gpt2, text) == gpt2, (name, hf_pieces(pre_gpt2, text), gpt2)
        assert smollm_split(text) == smollm, (name, smollm_split(text), smollm)
        ids = enc.encode_ordinary(text)
        assert ids == [t for p in gpt2 for t in enc._encode_single_piece(p.encode())], name
        gpt2_hf = hf_gpt2.encode(text, add_special_tokens=False).ids
        smollm_hf = hf_smollm.encode(text, add_special_tokens=False).ids
        for got in (ids, gpt2_hf, smollm_hf):
            assert enc.decode_bytes(got) == text.encode(), name
        smollm2_ids = smollm2.encode(text, add_special_tokens=False).ids
        assert smollm2.decode(smollm2_ids) == text, name  # (the corpus has no byte SmolLM2 lacks)
        if name.startswith("ignore_merges"):
            assert ids != gpt2_hf, name
        lines.append(json.dumps({"name": name, "text": text, "gpt2": gpt2, "smollm": smollm, "gpt2_ids": ids,
                                 "gpt2_hf_ids": gpt2_hf, "smollm_hf_ids": smollm_hf, "smollm2_ids": smollm2_ids},
                                ensure_ascii=True))
    for name, data in BYTES_CASES:
        text = data.decode("utf-8", errors="surrogateescape")
        assert text.encode("utf-8", errors="surrogateescape") == data
        back = [p.encode("utf-8", errors="surrogateescape") for p in gpt2_split(text)]
        smollm = [p.encode("utf-8", errors="surrogateescape") for p in smollm_split(text)]
        assert b"".join(back) == data and b"".join(smollm) == data, name
        ids = [t for p in back for t in enc._encode_single_piece(p)]
        assert enc.decode_bytes(ids) == data, name
        lines.append(json.dumps({"name": name, "bytes_hex": data.hex(), "gpt2_hex": [p.hex() for p in back],
                                 "smollm_hex": [p.hex() for p in smollm], "gpt2_ids": ids}))

    header = {
        "generator": "tools/gen_gpt2_pretok_goldens.py",
        "tokenizer_model_sha256": tiktoken_ref.TOKENIZER_MODEL_SHA256,
        "regex_version": metadata.version("regex"),
        "tiktoken_version": metadata.version("tiktoken"),
        "tokenizers_version": metadata.version("tokenizers"),
        "smollm2_gguf_sha256": smollm2_sha,
        "gpt2_pat": GPT2_PAT,
        "tiktoken_gpt2_pat": TIKTOKEN_GPT2_PAT,
        "smollm_pre_tokenizer": SMOLLM_PRE,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, v in header.items():
            f.write(f"{json.dumps(k)}: {json.dumps(v)},\n")
        f.write('"cases": [\n' + ",\n".join(lines) + "\n]\n}\n")
    print(f"wrote {len(lines)} cases to {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
