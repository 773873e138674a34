#!/usr/bin/env python3
"""Generate fuzz strings for the tokenizer comparison tests (herd vs. tiktoken), as JSON Lines.

Usage:
    python3 tools/gen_fuzz.py OUT_PATH [--n 100000] [--seed 1]

Writes N lines {"text": "..."} (UTF-8, json.dumps(ensure_ascii=False)). Stdlib only. Output is
byte-identical for a given seed and Python minor version (the set of assigned code points comes from
unicodedata, i.e. Unicode 14.0 on Python 3.11). Every string holds valid Unicode scalar values only
(no surrogates), so it encodes to valid UTF-8.

Each string is a concatenation of "atoms" drawn from generators aimed at the Llama 3 pre-tokenizer
pattern (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|
\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+ and at byte-level BPE:
  - random code points across all 17 planes (mostly assigned ones, incl. private use and
    noncharacters; ~4% unassigned), and words in ~25 scripts;
  - combining marks (U+0300..036F, U+1AB0.., U+1DC0.., U+20D0.., U+FE20.., Indic/Thai/Hebrew/Arabic
    marks) after letters, spaces, digits or at the start;
  - emoji: single, skin tones, ZWJ sequences, flags, keycaps, VS15/VS16, tag sequences;
  - whitespace mixes: CR, LF, CRLF, tab, VT, FF, NEL, space, U+00A0, U+1680, U+2000..200A, U+2028,
    U+2029, U+202F, U+205F, U+3000, and look-alikes that are not \\s (U+180E, U+200B, U+FEFF);
  - digit runs of all lengths (ASCII, Arabic-Indic, Extended Arabic-Indic, Devanagari, Bengali,
    Thai, fullwidth, mathematical bold, ...) and \\p{N} non-Nd (Roman numerals, superscripts,
    subscripts, circled numbers, vulgar fractions, U+3007, Aegean numbers);
  - apostrophes and contractions in any case ('s 'S 't 'RE 'Ve 'LL 'd 'M), with U+017F long s,
    U+212A Kelvin sign, U+2019 and other apostrophe look-alikes;
  - punctuation runs followed by newlines; special-token look-alikes ("<|eot_id|>",
    "<|begin_of_text|>", broken ones); ASCII prose and code fragments.
About 99% of strings are short (1..200 characters); ~1% are long (very long words or whitespace
runs of up to ~5000 characters, or long mixtures). The file is ~15 MB for the default N.
Runs in a few seconds.
"""

import argparse
import json
import os
import sys
import time
import unicodedata
from random import Random


def build_tables():
    """Assigned / unassigned scalar values by plane, and combining marks (category Mn/Mc/Me)."""
    assigned = {}
    unassigned = []
    marks = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat == "Cn":
            if cp < 0x40000 or cp >= 0xE0000:  # planes 4..13 are all unassigned; don't overweight them
                unassigned.append(cp)
            elif cp % 4096 == 0:
                unassigned.append(cp)
        else:
            assigned.setdefault(cp >> 16, []).append(cp)
            if cat in ("Mn", "Mc", "Me"):
                marks.append(cp)
    return assigned, unassigned, marks


def rng_range(a, b):
    return list(range(a, b + 1))


SCRIPT_LETTERS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "latin1": "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÉÎÕÜŒœſﬁﬂĳ",
    "latin_ext": "".join(map(chr, rng_range(0x100, 0x17F) + rng_range(0x1E00, 0x1EFF))),
    "cyrillic": "".join(map(chr, rng_range(0x410, 0x44F))) + "ёЁіїєґЇЄҐѣѢ",
    "greek": "".join(map(chr, rng_range(0x3B1, 0x3C9) + rng_range(0x391, 0x3A9))) + "άέήίόύώϊϋΐΰ",
    "greek_ext": "".join(map(chr, rng_range(0x1F00, 0x1F15) + rng_range(0x1F70, 0x1F7D))),
    "han": "".join(map(chr, rng_range(0x4E00, 0x4FFF))) + "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年",
    "han_ext": "".join(map(chr, rng_range(0x20000, 0x2007F) + rng_range(0x3400, 0x347F))),
    "kana": "".join(map(chr, rng_range(0x3041, 0x3096) + rng_range(0x30A1, 0x30FA))) + "ー々ｱｲｳｴｵｶﾞ",
    "hangul": "".join(map(chr, rng_range(0xAC00, 0xAD00))) + "".join(map(chr, rng_range(0x1100, 0x1112))),
    "thai": "".join(map(chr, rng_range(0xE01, 0xE30) + rng_range(0xE31, 0xE3A) + rng_range(0xE40, 0xE4E))),
    "devanagari": "".join(map(chr, rng_range(0x905, 0x939) + rng_range(0x93E, 0x94D))),
    "bengali": "".join(map(chr, rng_range(0x985, 0x9B9) + rng_range(0x9BE, 0x9CD))),
    "tamil": "".join(map(chr, rng_range(0xB85, 0xBB9) + rng_range(0xBBE, 0xBCD))),
    "arabic": "".join(map(chr, rng_range(0x621, 0x64A) + rng_range(0x64B, 0x652))) + "پچژگکی\u0640",
    "hebrew": "".join(map(chr, rng_range(0x5D0, 0x5EA) + rng_range(0x5B0, 0x5BD))),
    "armenian": "".join(map(chr, rng_range(0x561, 0x586) + rng_range(0x531, 0x556))),
    "georgian": "".join(map(chr, rng_range(0x10D0, 0x10FA))),
    "ethiopic": "".join(map(chr, rng_range(0x1200, 0x1248))),
    "khmer": "".join(map(chr, rng_range(0x1780, 0x17B3) + rng_range(0x17B6, 0x17D2))),
    "tibetan": "".join(map(chr, rng_range(0xF40, 0xF6C) + rng_range(0xF71, 0xF84))),
    "mongolian": "".join(map(chr, rng_range(0x1820, 0x1878))),
    "cherokee": "".join(map(chr, rng_range(0x13A0, 0x13F5) + rng_range(0xAB70, 0xABBF))),
    "math_alnum": "".join(map(chr, rng_range(0x1D400, 0x1D433) + rng_range(0x1D538, 0x1D56B))),
    "gothic_etc": "".join(map(chr, rng_range(0x10330, 0x1034A) + rng_range(0x10400, 0x1044F))),
}
SCRIPT_NAMES = sorted(SCRIPT_LETTERS)

COMBINING = "".join(map(chr, rng_range(0x300, 0x36F) + rng_range(0x1AB0, 0x1ABE) + rng_range(0x1DC0, 0x1DFF)
                         + rng_range(0x20D0, 0x20F0) + rng_range(0xFE20, 0xFE2F)))
INDIC_MARKS = "\u093e\u093f\u0940\u0941\u094d\u0902\u0903\u0e31\u0e34\u0e35\u0e47\u0e48\u0e49\u05b7\u05bc\u064b\u064e\u0650\u0651\u0652\u0670\u302a\u3099\u309a"

WHITESPACE = ["\r", "\n", "\r\n", "\t", " ", " ", " ", "  ", "\x0b", "\x0c", "\x85", "\u00a0", "\u1680",
              "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008",
              "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\n\n", "\r\r", "\n\r",
              "\x1c", "\x1d", "\x1e", "\x1f"]
NOT_WHITESPACE = ["\u180e", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\x00", "\x7f"]

DIGIT_ZEROS = [0x30, 0x660, 0x6F0, 0x966, 0x9E6, 0xA66, 0xBE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x17E0, 0x1810,
               0xFF10, 0x1D7CE, 0x1D7D8, 0x104A0, 0x11066, 0x1E950]
OTHER_NUMBERS = ("".join(map(chr, rng_range(0x2160, 0x2188) + rng_range(0x2460, 0x249B) + rng_range(0x2150, 0x215F)
                          + rng_range(0x2070, 0x2079) + rng_range(0x2080, 0x2089) + rng_range(0x3021, 0x3029)
                          + rng_range(0x10107, 0x10133) + rng_range(0x3251, 0x325F)))
                 + "²³¹¼½¾〇")

CONTRACTIONS = ["s", "t", "re", "ve", "m", "ll", "d"]
APOSTROPHES = ["'", "'", "'", "'", "\u2019", "\u2018", "`", "\u02bc", "\uff07", "''"]
ODD_CONTRACTIONS = ["'\u017f", "'\u017fT", "'\u212a", "'\u212aB", "'\ufb05", "'\u0130", "'\u0131", "'ß", "'ẞ", "'Ǆ",
                    "'ǅ", "'ǆ", "'Ｓ", "'ｓ", "'\u0073\u0307", "'L\u013f", "'ŀl", "'\u1e9b"]

PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”‘’„‹›–—…·•§¶†‡‰′″‴※‼⁇⁈⁉、。〈〉《》「」『』【】〔〕！？，：；（）［］｛｝＠＃＄％＾＆＊｜｀～" \
        "\u060c\u061b\u061f\u06d4\u0964\u0965\u0e2f\u0e5a\u0e5b\u05be\u05c3\u00b7\u0387\u037e"
SYMBOLS = "€£¥₹₽₩¢©®™°±×÷∞≈≠≤≥∑∏√∫∂∆∇∈∉∩∪⊂⊃⊕⊗←↑→↓↔⇒⇔■□▲△●○◆◇★☆♠♣♥♦♪♫✓✗"

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|python_tag|>", "<|image|>", "<|finetune_right_pad_id|>", "<|step_id|>",
            "<|reserved_special_token_0|>", "<|reserved_special_token_2|>", "<|reserved_special_token_247|>",
            "<|reserved_special_token_248|>", "<|eot_id", "eot_id|>", "<|", "|>", "< |eot_id| >",
            "<|EOT_ID|>", "<||>", "<|<|eot_id|>|>", "<|endoftext|>", "<s>", "</s>", "[INST]", "<<SYS>>"]

WORDS = ("the of and to in is that it for you was with on as have be at not this are by but from or "
         "they we his an which she all there their one has been would what will if can more when who "
         "Hello World HTTP JSON GPU don't can't I'm you're we've they'll she'd it's isn't LLaMA llama "
         "tokenizer encoding byte-level BPE merges café naïve résumé Zürich São Paulo Łódź İstanbul").split()
CODE = ["def f(x):\n    return x**2\n", "int main(void) { return 0; }\n", "for (i = 0; i < n; ++i) {\n\t",
        "if __name__ == '__main__':\n", "#include <stdio.h>\n", "x = [1, 2, 3]  # list\n", "SELECT * FROM t;\n",
        "    \n        \t\n", "}\r\n}\r\n", "// TODO: fix\n", "{\"a\": 1, \"b\": [true, null]}", "$ ls -la | grep .py\n",
        "https://example.com/a?b=c&d=e#f", "user@example.org", "C:\\Users\\name\\file.txt", "0x7fffffff", "3.14159e-10",
        "1,234,567.89", "2024-06-01T12:34:56Z", "+1 (555) 123-4567"]

TONES = [chr(c) for c in range(0x1F3FB, 0x1F400)]
EMOJI_BASE = [chr(c) for c in rng_range(0x1F600, 0x1F64F) + rng_range(0x1F300, 0x1F3FA) + rng_range(0x1F400, 0x1F4FF)
              + rng_range(0x1F680, 0x1F6C5) + rng_range(0x1F90C, 0x1F9FF) + rng_range(0x1FA70, 0x1FA7C)]
EMOJI_MOD_BASE = [chr(c) for c in [0x1F44B, 0x1F44D, 0x1F44E, 0x1F44F, 0x1F64F, 0x1F590, 0x270B, 0x270C, 0x261D,
                                   0x1F466, 0x1F467, 0x1F468, 0x1F469, 0x1F9D1, 0x1F474, 0x1F475, 0x1F476, 0x1F3C3,
                                   0x1F3CA, 0x1F6B4, 0x1F937, 0x1F926, 0x1F4AA, 0x1F918, 0x1F919, 0x1F91E]]
ZWJ_SEQS = ["\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\U0001f469\u200d\u2764\ufe0f\u200d\U0001f468",
            "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f3f3\ufe0f\u200d\u26a7\ufe0f", "\U0001f3f4\u200d\u2620\ufe0f",
            "\u2764\ufe0f\u200d\U0001f525", "\U0001f9d1\u200d\U0001f4bb", "\U0001f469\U0001f3fd\u200d\U0001f52c",
            "\U0001f468\U0001f3ff\u200d\U0001f680", "\U0001f3c3\U0001f3fb\u200d\u2640\ufe0f", "\U0001f415\u200d\U0001f9ba",
            "\U0001f9d1\U0001f3fb\u200d\U0001f91d\u200d\U0001f9d1\U0001f3ff", "\U0001f441\ufe0f\u200d\U0001f5e8\ufe0f",
            "\U0001f43b\u200d\u2744\ufe0f", "\U0001f408\u200d\u2b1b", "\U0001f62e\u200d\U0001f4a8"]
FLAG_CODES = "US GB FR DE JP CN KR IN BR RU UA IL SA EG TH GR ES IT CA AU MX ZA NG SE NO FI PL TR VN AR EU UN XX".split()
TAG_FLAGS = ["gbeng", "gbsct", "gbwls", "usca", "ustx"]


class Gen:
    def __init__(self, seed):
        self.r = Random(seed)
        assigned, self.unassigned, self.marks = build_tables()
        self.assigned = {p: assigned[p] for p in sorted(assigned)}
        self.planes = list(self.assigned)
        # Plane weights: mostly BMP, but every plane that has assigned code points shows up.
        self.plane_w = [{0: 60, 1: 20, 2: 6, 3: 3, 14: 3, 15: 2, 16: 2}.get(p, 1) for p in self.planes]
        self.atoms = [
            (self.random_cps, 10), (self.script_word, 16), (self.combining, 6), (self.emoji, 7),
            (self.whitespace, 12), (self.digits, 9), (self.other_numbers, 3), (self.contraction, 8),
            (self.punct_run, 8), (self.special, 4), (self.words, 10), (self.code, 3), (self.symbols, 2),
            (self.not_whitespace, 2),
        ]
        self.atom_f = [a for a, _ in self.atoms]
        self.atom_w = [w for _, w in self.atoms]

    def random_cps(self):
        r = self.r
        n = r.choice([1, 1, 2, 3, 5, 8])
        out = []
        for _ in range(n):
            if r.random() < 0.04:
                out.append(chr(r.choice(self.unassigned)))
            else:
                plane = r.choices(self.planes, self.plane_w)[0]
                out.append(chr(r.choice(self.assigned[plane])))
        return "".join(out)

    def script_word(self, n=None):
        r = self.r
        letters = SCRIPT_LETTERS[r.choice(SCRIPT_NAMES)]
        if n is None:
            n = r.choice([1, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 25])
        w = "".join(r.choices(letters, k=n))
        x = r.random()
        if x < 0.1:
            w = w.upper()
        elif x < 0.15:
            w = w.title()
        prefix = r.choice(["", "", "", " ", " ", "\t", "\u00a0", "(", "\"", "-", "'", "_", "1", "\u3000"])
        return prefix + w

    def combining(self):
        r = self.r
        base = r.choice(["", " ", "a", "e", "Z", "1", "\n", "\u0915", "\u0e01", "\u05d0", "\u0628", "\u3042", "x", "-"])
        pool = COMBINING if r.random() < 0.6 else (INDIC_MARKS if r.random() < 0.5 else None)
        k = r.choice([1, 1, 2, 3, 5, 10])
        if pool is None:
            marks = "".join(chr(r.choice(self.marks)) for _ in range(k))
        else:
            marks = "".join(r.choices(pool, k=k))
        return base + marks + r.choice(["", "", "b", " ", "7"])

    def emoji(self):
        r = self.r
        x = r.random()
        if x < 0.3:
            return "".join(r.choices(EMOJI_BASE, k=r.choice([1, 1, 2, 3])))
        if x < 0.45:
            return r.choice(EMOJI_MOD_BASE) + r.choice(TONES)
        if x < 0.65:
            return r.choice(ZWJ_SEQS)
        if x < 0.75:  # random ZWJ chain, some broken (trailing / leading ZWJ)
            parts = r.choices(EMOJI_BASE + EMOJI_MOD_BASE, k=r.choice([2, 3, 4]))
            s = "\u200d".join(parts)
            return r.choice(["", "\u200d"]) + s + r.choice(["", "", "\u200d", "\ufe0f"])
        if x < 0.85:
            code = r.choice(FLAG_CODES)
            return "".join(chr(0x1F1E6 + ord(c) - 65) for c in code) + r.choice(["", "", chr(0x1F1E6 + r.randrange(26))])
        if x < 0.92:
            return r.choice("0123456789#*") + r.choice(["\ufe0f\u20e3", "\u20e3", "\ufe0f"])
        if x < 0.96:
            tag = r.choice(TAG_FLAGS)
            return "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in tag) + "\U000e007f"
        return r.choice("\u2764\u263a\u2614\u2615\u26a1\u2b50\u2705\u00a9\u00ae\u2122") + r.choice(["\ufe0e", "\ufe0f", ""])

    def whitespace(self, n=None):
        r = self.r
        if n is None:
            n = r.choice([1, 1, 2, 3, 4, 6, 10, 20])
        s = "".join(r.choices(WHITESPACE, k=n))
        return s + r.choice(["", "", "x", "!", "\u00e9", "1", "<"])

    def not_whitespace(self):
        r = self.r
        return r.choice(["", " ", "a"]) + "".join(r.choices(NOT_WHITESPACE + WHITESPACE[:6], k=r.choice([1, 2, 4])))

    def digits(self):
        r = self.r
        n = r.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 20, 31, 50])
        if r.random() < 0.6:
            zero = 0x30
        else:
            zero = r.choice(DIGIT_ZEROS)
        s = "".join(chr(zero + r.randrange(10)) for _ in range(n))
        if r.random() < 0.2:  # mix digit systems in one run
            s += "".join(chr(r.choice(DIGIT_ZEROS) + r.randrange(10)) for _ in range(r.randint(1, 5)))
        return r.choice(["", "", " ", "$", "-", "x", "v", "\u00a0"]) + s + r.choice(["", "", "", "th", "px", ".", ",", "%", " ", "a"])

    def other_numbers(self):
        r = self.r
        return r.choice(["", "x", "1", " "]) + "".join(r.choices(OTHER_NUMBERS, k=r.choice([1, 2, 3, 4, 7]))) + r.choice(["", "2", "m"])

    def contraction(self):
        r = self.r
        if r.random() < 0.2:
            c = r.choice(ODD_CONTRACTIONS)
        else:
            c = r.choice(CONTRACTIONS)
            c = "".join(ch.upper() if r.random() < 0.5 else ch for ch in c)
            c = r.choice(APOSTROPHES) + c
        before = r.choice(["", "", "it", "don", "I", "we", "THEY", "O", " ", "\n", "1", "Ça", "ты", "🎉", "'"])
        after = r.choice(["", "", "", " ", "s", "x", "ll", "'", ".", "\n", "é", "1", "tion", "ve"])
        return before + c + after

    def punct_run(self):
        r = self.r
        s = "".join(r.choices(PUNCT, k=r.choice([1, 1, 2, 3, 4, 6, 10])))
        return r.choice(["", "", " ", "  ", "a", "\n"]) + s + r.choice(["", "\n", "\r\n", "\n\n", "\r", "\r\n\r\n", " \n", "\n ", "\n\t"])

    def special(self):
        r = self.r
        s = r.choice(SPECIALS)
        return r.choice(["", "", " ", "a", "\n", "<", "|"]) + s + r.choice(["", "", "x", " ", "\n", ">", "|>"])

    def words(self):
        r = self.r
        ws = r.choices(WORDS, k=r.choice([1, 2, 3, 5, 8]))
        return r.choice(["", " "]) + " ".join(ws) + r.choice(["", "", ".", ",", "!", "?", " ", "\n"])

    def code(self):
        return self.r.choice(CODE)

    def symbols(self):
        r = self.r
        return "".join(r.choices(SYMBOLS, k=r.choice([1, 2, 3, 5])))

    def short(self):
        r = self.r
        target = r.choice([1, 1, 2, 3, 4, 5, 8, 10, 16, 24, 32, 48, 64, 100, 150, 200])
        out = []
        length = 0
        while length < target:
            a = r.choices(self.atom_f, self.atom_w)[0]()
            out.append(a)
            length += len(a)
        s = "".join(out)
        if len(s) > 200 or (len(s) > target and r.random() < 0.5):
            s = s[:max(target, 1)]  # may cut a sequence in half: fine for fuzzing
        return s

    def long(self):
        r = self.r
        x = r.random()
        n = r.randint(201, 5000)
        if x < 0.3:  # very long word in one script, maybe with a prefix and a tail
            return self.script_word(n)[:n] + r.choice(["", " ", "!", "1"])
        if x < 0.5:  # long whitespace run, maybe uniform, maybe ending with a letter or newline
            if r.random() < 0.5:
                ws = r.choice([" ", "\t", "\n", "\u00a0", "\u3000", "\r\n", " \n"]) * n
            else:
                ws = self.whitespace(n)
            return r.choice(["", "a", "x "]) + ws[:n] + r.choice(["", "a", "\n", " b", "!"])
        if x < 0.6:  # long digit run
            return "".join(r.choices("0123456789", k=n))
        if x < 0.7:  # long punctuation run with newlines
            return "".join(r.choices(PUNCT + "\n\r", k=n))
        if x < 0.75:  # long emoji run
            return "".join(self.emoji() for _ in range(n // 4))
        out = []  # long mixture
        length = 0
        while length < n:
            a = r.choices(self.atom_f, self.atom_w)[0]()
            out.append(a)
            length += len(a)
        return "".join(out)

    def string(self):
        return self.long() if self.r.random() < 0.01 else self.short()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_path")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    g = Gen(args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out_path)), exist_ok=True)
    size = 0
    with open(args.out_path, "w", encoding="utf-8", newline="\n") as f:
        for _ in range(args.n):
            s = g.string()
            line = json.dumps({"text": s}, ensure_ascii=False) + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
    print(f"{args.out_path}: {args.n} strings, {size / 1e6:.2f} MB, {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
