#!/usr/bin/env python3
"""Write tests/golden/tokenizer/tiktoken_cases.json: (input, ids) pairs for the Llama 3 tokenizer, from tiktoken.

Usage (in the tools venv, see tools/requirements-tools.txt):
    .venv-tools/bin/python tools/gen_tokenizer_goldens.py [--model PATH] [--out PATH]

--model defaults to tests/data/llama3/tokenizer.model (fetched with `pip download llama-models==0.3.0`
when missing; sha256 checked). Deterministic: the random cases use fixed seeds.

Each case is one JSON object on its own line:
    {"name": ..., "text": ..., "ids": [...]}                 tiktoken Encoding.encode_ordinary(text)
    {"name": ..., "text": ..., "ids": [...], "allow_special": true}
                                                             tiktoken Encoding.encode(text, allowed_special="all")
    {"name": ..., "text": ..., "ids": [...], "bos": true, "eos": true}
                                                             [128000] + encode_ordinary(text) + [128001]
    {"name": ..., "bytes_hex": "...", "ids": [...]}          tools/tiktoken_ref.encode_bytes_reference(bytes)
The last kind covers input that is not valid UTF-8, by the reference definition in tiktoken_ref.py:
decode with errors="surrogateescape" (each invalid byte -> lone surrogate U+DC80+byte, a
[^\\s\\p{L}\\p{N}] character for the pattern), split with the `regex` module using Meta's pat_str, map
pieces back to bytes, byte-level BPE each piece. The script checks that this reference equals
encode_ordinary on every valid-UTF-8 case, that every case's ids decode back to its input bytes, and
that Meta's own expectations (llama_models/llama3/tests/api/test_tokenizer.py, llama-models 0.3.0) hold.
"""

import argparse
import json
import os
import random
import sys

os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tiktoken  # noqa: E402

import gen_fuzz  # noqa: E402
import tiktoken_ref  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, ".."))
DEFAULT_OUT = os.path.join(ROOT, "tests", "golden", "tokenizer", "tiktoken_cases.json")

# Expectations copied from Meta's llama_models/llama3/tests/api/test_tokenizer.py (llama-models 0.3.0);
# checked against tiktoken below, never written as goldens themselves.
META_ENCODE = [128000, 2028, 374, 264, 1296, 11914, 13, 128001]
META_MESSAGE = [128006, 882, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009]
META_DIALOG = [128000, 128006, 9125, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009, 128006, 882, 128007, 271,
               2028, 374, 264, 2077, 13, 128009, 128006, 78191, 128007, 271]

TEXT_CASES = [
    ("empty", ""),
    ("space", " "),
    ("two spaces", "  "),
    ("newline", "\n"),
    ("tab", "\t"),
    ("crlf crlf", "\r\n\r\n"),
    ("three newlines", "\n\n\n"),
    ("space newline runs", " \n \n  \n\n   "),
    ("whitespace mix", " \t \r\n\u00a0\u3000\u2028 \u2029\x0b\x0c\x85"),
    ("trailing spaces", "hello   "),
    ("spaces before word", "a    b"),
    ("spaces before newline", "x   \n   y"),
    ("tabs and spaces", "\t\tdef f():\n\t\t\treturn 1\n"),
    ("300 spaces", " " * 300),
    ("300 spaces then word", " " * 300 + "word"),
    ("word 300 spaces word", "a" + " " * 300 + "b"),
    ("300 newlines", "\n" * 300),
    ("hello world", "Hello world"),
    ("meta sentence", "This is a test sentence."),
    ("meta response", "This is a response."),
    ("contractions lower", "I'm you're we've they'll she'd it's don't"),
    ("contractions upper", "I'M YOU'RE WE'VE THEY'LL SHE'D IT'S DON'T"),
    ("contractions mixed case", "'s 'S 't 'T 're 'RE 'Re 'rE 've 'VE 'Ve 'm 'M 'll 'LL 'Ll 'd 'D"),
    ("contraction alone", "'s"),
    ("contraction after space", " 've"),
    ("contraction long s", "it'\u017f 'ſt '\u017f"),
    ("contraction kelvin", "'\u212a '\u212all o'\u212a"),
    ("apostrophe variants", "don\u2019t it`s it\u02bcs ''s '''"),
    ("apostrophe then digits", "'90s '1 '\n"),
    ("digits 1234567", "1234567"),
    ("digits lengths", "1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890"),
    ("digits then letters", "2024th 3rd 10px v1.2.3 0x7FFF"),
    ("decimal and grouping", "3.14159 1,234,567.89 -42 +7 1e-10"),
    ("arabic-indic digits", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667"),
    ("devanagari digits", "\u0967\u0968\u0969\u096a\u096b"),
    ("fullwidth digits", "\uff11\uff12\uff13\uff14\uff15"),
    ("roman numerals", "\u216b \u2160\u2161\u2162\u2163 Chapter \u2166"),
    ("superscripts", "x\u00b2 + y\u00b3 = z\u00b9\u2070"),
    ("fractions circled", "\u00bd \u00bc \u2153 \u2460\u2461\u2462"),
    ("mixed scripts", "Hello Привет Γειά 你好 こんにちは 안녕하세요 สวัสดี नमस्ते مرحبا שלום"),
    ("chinese", "我想在apple工作1314151天～"),
    ("japanese", "東京は日本の首都です。カタカナとひらがな。"),
    ("korean", "대한민국의 수도는 서울입니다."),
    ("thai", "ภาษาไทยเป็นภาษาที่สวยงาม"),
    ("hindi", "हिन्दी भारत की राजभाषा है।"),
    ("arabic", "اللغة العربية جميلة جداً."),
    ("hebrew", "עברית היא שפה שמית."),
    ("russian", "Съешь же ещё этих мягких французских булок, да выпей чаю."),
    ("greek", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία."),
    ("khmer", "កាន់តែពិសេសអាច"),
    ("bulgarian", "нещо на Български"),
    ("accents composed", "caf\u00e9 na\u00efve r\u00e9sum\u00e9 Z\u00fcrich"),
    ("accents decomposed", "cafe\u0301 nai\u0308ve"),
    ("combining at start", "\u0301abc"),
    ("combining stack", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034d"),
    ("emoji", "🚀 (normal) ✅ 🦙🦙"),
    ("emoji zwj", "😶\u200d🌫️ 👨\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈"),
    ("emoji skin tones", "👍🏻 👍🏼 👍🏽 👍🏾 👍🏿"),
    ("emoji flags", "🇺🇸🇬🇧🇯🇵 🇺"),
    ("emoji keycap", "1\ufe0f\u20e3 #\ufe0f\u20e3"),
    ("emoji tag flag", "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"),
    ("punctuation runs", "------======= ''''''```````\"\"\"\"......!!!!!!??????"),
    ("punctuation newline", "Hello!\n\nWorld?!\r\n...\n"),
    ("punct then newline run", ":\n\n\n\n"),
    ("code", "def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n"),
    ("json", "{\"key\": [1, 2.5, null, true], \"s\": \"a\\nb\"}"),
    ("url email", "https://example.com/path?q=1&r=two#frag user@example.org"),
    ("llama.cpp chktxt", "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
     "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作"
     "1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's "
     "there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"),
    ("eot as text", "<|eot_id|>"),
    ("begin_of_text as text", "<|begin_of_text|>Hello"),
    ("specials as text", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"),
    ("special lookalikes", "<|eot_id <|EOT_ID|> < |eot_id| > <|reserved_special_token_250|> <|endoftext|>"),
    ("nul and controls", "a\x00b\x01c\x1f\x7f"),
    ("noncharacters", "\ufffe\uffff\U0010fffe\U0010ffff"),
    ("private use", "\ue000\uf8ff\U000f0000\U00100000"),
    ("bom zwsp", "\ufeffstart\u200bmiddle\u200c\u200d"),
    ("supplementary letters", "\U00020000\U0002a6d6 \U0001d400\U0001d401 \U00010400"),
    ("unicode 15-16 letters", "\U00031350\U00031351 \U00010d50\U00010d51 \U0001e4d0"),
    ("long word", "Supercalifragilisticexpialidocious" * 30),
    ("long digits", "1234567890" * 40),
    ("long cjk", "的一是不了人我在有他这中大来上国个到说们" * 20),
]

SPECIAL_CASES = [
    ("eot special", "<|eot_id|>"),
    ("meta encode_message", "<|start_header_id|>user<|end_header_id|>\n\nThis is a test sentence.<|eot_id|>"),
    ("meta encode_dialog_prompt",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nThis is a test sentence.<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nThis is a response.<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("all named specials", "".join(tiktoken_ref.SPECIAL_TOKENS[:12])),
    ("reserved specials", "<|reserved_special_token_0|><|reserved_special_token_2|><|reserved_special_token_247|>"),
    ("special inside words", "a<|eot_id|>b <|python_tag|>print(1)<|eom_id|>"),
    ("special lookalikes allowed", "<|eot_id <|EOT_ID|> <|eot_id|>|> <<|eot_id|>"),
    ("special and whitespace", "  <|eot_id|>  \n\n<|begin_of_text|>\n"),
]

BYTES_CASES = [
    ("lone 0xff", b"\xff"),
    ("lone continuation", b"\x80"),
    ("continuation run", b"\x80\x81\xbf"),
    ("truncated 2-byte", b"\xc3"),
    ("truncated 3-byte", b"\xe2\x82"),
    ("truncated 4-byte emoji", b"\xf0\x9f\x98"),
    ("truncated in text", b"hello \xe2\x82 world"),
    ("invalid in word", b"abc\xffdef"),
    ("invalid before letters", b"\xffabc"),
    ("invalid after space", b" \xff\xfe"),
    ("invalid between newlines", b"\n\xff\n"),
    ("invalid between digits", b"123\xff456"),
    ("invalid after apostrophe", b"'\xffs"),
    ("truncated quote", b"it\xe2\x80's"),
    ("utf-16 surrogate encoded", b"\xed\xa0\x80"),
    ("surrogate pair encoded", b"\xed\xa0\xbd\xed\xb8\x80"),
    ("above U+10FFFF", b"\xf4\x90\x80\x80"),
    ("overlong slash", b"\xc0\xaf"),
    ("overlong nul", b"\xc0\x80"),
    ("f5..ff lead bytes", bytes(range(0xf5, 0x100))),
    ("latin-1 text", "café naïve Zürich".encode("latin-1")),
    ("cp1252 quotes", b"\x93quoted\x94 and \x91single\x92"),
    ("all bytes", bytes(range(256))),
    ("invalid then newline run", b"\xfe\r\n\r\n"),
    ("invalid then spaces", b"\xfe    x"),
    ("valid emoji split by invalid", b"\xf0\x9f\x98\x80\xff\xf0\x9f\x98\x80"),
]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(3)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = bytes([rng.choice([0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xff])])
        elif data:
            del data[min(pos, len(data) - 1)]
    return bytes(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="Meta's Llama 3 tokenizer.model (default: fetched to tests/data/llama3/)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    model_path = tiktoken_ref.fetch_tokenizer_model(args.model)
    enc = tiktoken_ref.load_llama3_encoding(model_path)
    bos, eos = enc.encode_single_token("<|begin_of_text|>"), enc.encode_single_token("<|end_of_text|>")

    cases = []

    def add_text(name, text):
        ids = enc.encode_ordinary(text)
        ref = tiktoken_ref.encode_bytes_reference(enc, text.encode("utf-8"))
        if ref != ids:
            raise SystemExit(f"reference != tiktoken on {name!r}: {ref} vs {ids}")
        cases.append({"name": name, "text": text, "ids": ids})

    def add_bytes(name, data):
        ids = tiktoken_ref.encode_bytes_reference(enc, data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            cases.append({"name": name, "bytes_hex": data.hex(), "ids": ids})
            return
        if ids != enc.encode_ordinary(text):
            raise SystemExit(f"reference != tiktoken on {name!r}")
        cases.append({"name": name, "text": text, "ids": ids})

    meta = enc.encode_ordinary("This is a test sentence.")
    cases.append({"name": "meta encode bos eos", "text": "This is a test sentence.", "ids": [bos] + meta + [eos],
                  "bos": True, "eos": True})
    assert cases[-1]["ids"] == META_ENCODE, cases[-1]
    for name, text in TEXT_CASES:
        add_text(name, text)
    for name, text in SPECIAL_CASES:
        cases.append({"name": name, "text": text, "ids": enc.encode(text, allowed_special="all"),
                      "allow_special": True})
    by_name = {c["name"]: c["ids"] for c in cases}
    assert by_name["meta encode_message"] == META_MESSAGE
    assert by_name["meta encode_dialog_prompt"] == META_DIALOG
    assert by_name["eot special"] == [128009] and by_name["eot as text"] != [128009]

    # Fuzz strings from the committed generator (seeded), short and long.
    gen = gen_fuzz.Gen(seed=20240601)
    for i in range(60):
        add_text(f"fuzz short {i}", gen.short())
    for i in range(4):
        add_text(f"fuzz long {i}", gen.long())

    for name, data in BYTES_CASES:
        add_bytes(name, data)
    rng = random.Random(7)
    for i in range(12):
        add_bytes(f"random bytes {i}", bytes(rng.randrange(256) for _ in range(rng.randint(1, 48))))
    base = [t for _, t in TEXT_CASES if 4 <= len(t.encode()) <= 200]
    for i in range(24):
        add_bytes(f"mutated utf-8 {i}", mutate(rng, rng.choice(base).encode("utf-8")))

    # Every case's ids must decode back to its input.
    for c in cases:
        data = bytes.fromhex(c["bytes_hex"]) if "bytes_hex" in c else c["text"].encode("utf-8")
        got = enc.decode_bytes(c["ids"])
        if c.get("bos"):
            got = enc.decode_bytes(c["ids"][1:-1])
        assert got == data, c["name"]

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    header = {
        "generator": "tools/gen_tokenizer_goldens.py",
        "tokenizer_model_sha256": tiktoken_ref.TOKENIZER_MODEL_SHA256,
        "tiktoken_version": tiktoken.__version__,
        "pat_str": tiktoken_ref.PAT_STR,
    }
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("{\n")
        for k, v in header.items():
            f.write(f"{json.dumps(k)}: {json.dumps(v)},\n")
        f.write('"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=True) for c in cases))
        f.write("\n]\n}\n")
    n_bytes = sum("bytes_hex" in c for c in cases)
    print(f"{args.out}: {len(cases)} cases ({n_bytes} invalid-UTF-8 byte cases), {os.path.getsize(args.out):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
