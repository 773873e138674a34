#!/usr/bin/env python3
"""Build a multilingual text corpus (JSON Lines) from text found on a stock Debian 12 machine.

The corpus feeds the tokenizer comparison tests (herd vs. tiktoken). It is NOT committed: rebuild it
on the machine that runs the tests (a fresh CI machine has the same image).

Usage:
    python3 tools/build_corpus.py OUT_PATH [--min-mb 20]

Output: one JSON document per line, {"source": "...", "text": "..."}, UTF-8, documents of ~1 KB to
~256 KB. Inputs are walked in a fixed order (sorted, or sorted by a SHA-1 of the path where we take a
sample), so the output is byte-identical for a given machine. Invalid UTF-8 in inputs is decoded with
U+FFFD replacement, so the file is always valid UTF-8. Only the Python stdlib is used.

Sources, in order (byte budgets scale with --min-mb / 20):
  1. gettext catalogs /usr/share/locale/*/LC_MESSAGES/*.mo (+ /usr/share/vim/**/*.mo): the msgstr
     translations (~200 languages), parsed with struct, decoded by the catalog's declared charset;
     at most ~100 KB per language.
  2. Translated man pages /usr/share/man/<lang>/man*/*.gz (raw roff), at most ~300 KB per language.
  3. English man pages /usr/share/man/man*/*.gz, a sample (ordered by SHA-1 of the path).
  4. /usr/share/doc text (README, changelog.gz, copyright, *.txt, *.md, ...), a sample.
  5. Source code: /usr/include headers and the Python stdlib of /usr/lib/python3.* (or of the running
     interpreter when there is none), a sample.
  6. Emoji: (a) rich's emoji table as shipped in Debian's python3-pip
     (/usr/lib/python3/dist-packages/pip/_vendor/rich/_emoji_codes.py, or the running interpreter's
     pip), when present; and (b) ALWAYS, emoji text built here from Python's unicodedata: every
     assigned pictograph in the emoji blocks with its name, skin-tone modifier sequences, ZWJ
     sequences (families, professions, couples, rainbow/trans flags, ...), keycaps, regional-indicator
     flags for the ISO 3166 codes (/usr/share/zoneinfo/iso3166.tab, or a built-in list), subdivision
     tag flags, and seeded sentences mixing emoji with text in several scripts.

At the end it prints the character count per Unicode script (by code point ranges) and the total
size, and exits 1 if the total is below --min-mb MB or any of the required scripts (Latin, Cyrillic,
Greek, Han, Kana, Thai, Devanagari, Arabic, Hebrew, Hangul, Emoji) has fewer than 2000 characters.
Runs in well under 60 s.
"""

import argparse
import glob
import gzip
import hashlib
import json
import os
import random
import re
import struct
import sys
import sysconfig
import time
import unicodedata

MAX_DOC = 256 * 1024  # characters per document, at most
MIN_DOC = 1024  # smaller pieces are merged (Writer.small) into documents of ~8 KB

# Script -> code point ranges (the main blocks of each script; enough for counting).
SCRIPTS = {
    "Latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u2c60-\u2c7f\ua720-\ua7ff\uff21-\uff3a\uff41-\uff5a",
    "Cyrillic": "\u0400-\u052f\u1c80-\u1c8f\u2de0-\u2dff\ua640-\ua69f",
    "Greek": "\u0370-\u03ff\u1f00-\u1fff",
    "Han": "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f",
    "Kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "Thai": "\u0e00-\u0e7f",
    "Devanagari": "\u0900-\u097f\ua8e0-\ua8ff",
    "Arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "Hebrew": "\u0590-\u05ff\ufb1d-\ufb4f",
    "Hangul": "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff",
    "Emoji": "\u2600-\u27bf\u2b50\u2b55\u200d\ufe0f\u20e3\U0001f000-\U0001faff\U000e0020-\U000e007f",
}
REQUIRED = list(SCRIPTS)
MIN_SCRIPT_CHARS = 2000


def sha_key(path):
    return hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()


def clean(text):
    # NUL separates plural forms in .mo files; other C0 controls are kept (they are valid text).
    return text.replace("\x00", "\n")


def decode(data):
    return clean(data.decode("utf-8", errors="replace"))


class Writer:
    """Groups text into documents of MIN_DOC..MAX_DOC characters and writes JSON Lines."""

    def __init__(self, out):
        self.out = out
        self.bytes = 0
        self.docs = 0
        self.chars = []  # texts, for the script count
        self.small = []  # (source, text) of pieces under MIN_DOC, merged into one document

    def emit(self, source, text, merge_small=True):
        if not text:
            return
        if merge_small and len(text) < MIN_DOC:
            self.small.append((source, text))
            if sum(len(t) for _, t in self.small) >= 8 * MIN_DOC:
                self.flush_small()
            return
        line = json.dumps({"source": source, "text": text}, ensure_ascii=False)
        data = (line + "\n").encode("utf-8")
        self.out.write(data)
        self.bytes += len(data)
        self.docs += 1
        self.chars.append(text)

    def flush_small(self):
        if self.small:
            source = f"{self.small[0][0]} (+{len(self.small) - 1} small pieces)"
            self.emit(source, "\n".join(t for _, t in self.small), merge_small=False)
        self.small = []

    def emit_chunked(self, source, text):
        """Splits text at line ends into documents of at most MAX_DOC characters."""
        start = 0
        part = 0
        while start < len(text):
            end = min(len(text), start + MAX_DOC)
            if end < len(text):
                nl = text.rfind("\n", start + MAX_DOC // 2, end)
                if nl > 0:
                    end = nl + 1
            name = source if part == 0 and end == len(text) else f"{source}#{part}"
            self.emit(name, text[start:end])
            start = end
            part += 1


class Group:
    """Accumulates small texts of one group (e.g. one language) into documents."""

    def __init__(self, writer, source, budget):
        self.writer = writer
        self.source = source
        self.budget = budget  # UTF-8 bytes of text, roughly
        self.used = 0
        self.buf = []
        self.buf_len = 0
        self.part = 0

    def full(self):
        return self.used >= self.budget

    def add(self, text):
        if self.full() or not text:
            return
        self.buf.append(text)
        self.buf_len += len(text)
        self.used += len(text.encode("utf-8"))
        if self.buf_len >= MAX_DOC // 2:
            self.flush()

    def flush(self):
        if self.buf:
            self.writer.emit_chunked(f"{self.source}#{self.part}", "\n".join(self.buf))
            self.part += 1
        self.buf = []
        self.buf_len = 0


def read_mo(path):
    """Returns the msgstr strings of a gettext .mo file (empty list if it is malformed)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        magic = struct.unpack("<I", data[:4])[0]
        endian = "<" if magic == 0x950412DE else ">"
        _, _, n, _, trans_off = struct.unpack(endian + "5I", data[:20])
        strs = []
        for i in range(n):
            length, off = struct.unpack_from(endian + "2I", data, trans_off + 8 * i)
            strs.append(data[off : off + length])
    except (OSError, struct.error):
        return []
    charset = "utf-8"
    if strs:  # the header is the msgstr of the empty msgid (sorted first)
        m = re.search(rb"charset=([A-Za-z0-9_\-]+)", strs[0])
        if m:
            charset = m.group(1).decode("ascii")
    out = []
    for s in strs[1:] if strs and b"Content-Type" in strs[0] else strs:
        try:
            out.append(clean(s.decode(charset, errors="replace")))
        except LookupError:
            out.append(decode(s))
    return out


def read_file(path, limit=4 * 1024 * 1024):
    """Reads a (maybe gzipped) text file; None for binary or unreadable files."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read(limit)
        else:
            with open(path, "rb") as f:
                data = f.read(limit)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if b"\x00" in data[:8192]:
        return None
    return decode(data)


def add_gettext(w, scale):
    by_lang = {}
    for p in glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo"):
        by_lang.setdefault(p.split("/")[4], []).append(p)
    for p in glob.glob("/usr/share/vim/*/lang/*/LC_MESSAGES/*.mo"):
        by_lang.setdefault(p.split("/")[5].split(".")[0], []).append(p)
    for lang in sorted(by_lang):
        g = Group(w, f"gettext/{lang}", int(100_000 * scale))
        for p in sorted(by_lang[lang]):
            if g.full():
                break
            g.add("\n".join(read_mo(p)))
        g.flush()


def add_files(w, source, paths, budget, per_file_max=None):
    """Adds whole files (each one or more documents) until budget bytes are used."""
    used = 0
    small = Group(w, f"{source}/small", budget)  # files under MIN_DOC are grouped
    for p in paths:
        if used >= budget:
            break
        text = read_file(p)
        if not text or not text.strip():
            continue
        if per_file_max and len(text) > per_file_max:
            text = text[:per_file_max]
        used += len(text.encode("utf-8"))
        if len(text) < MIN_DOC:
            small.add(text)
        else:
            w.emit_chunked(p, text)
    small.flush()


def add_man(w, scale):
    translated = {}
    for p in glob.glob("/usr/share/man/*/man*/*.gz"):
        lang = p.split("/")[4]
        if not lang.startswith("man"):
            translated.setdefault(lang, []).append(p)
    for lang in sorted(translated):
        add_files(w, f"man/{lang}", sorted(translated[lang], key=sha_key), int(300_000 * scale))
    english = glob.glob("/usr/share/man/man*/*.gz")
    add_files(w, "man/en", sorted(english, key=sha_key), int(2_000_000 * scale), 200_000)


DOC_RE = re.compile(
    r"(README[^/]*|NEWS[^/]*|changelog[^/]*|copyright|AUTHORS|THANKS|TODO|[^/]*\.(txt|md|rst|html?)(\.gz)?)$"
)


def add_doc(w, scale):
    paths = [p for p in glob.glob("/usr/share/doc/**", recursive=True) if DOC_RE.search(p) and os.path.isfile(p)]
    add_files(w, "doc", sorted(paths, key=sha_key), int(2_000_000 * scale), 200_000)


def add_code(w, scale):
    headers = [p for p in glob.glob("/usr/include/**/*.h", recursive=True) if os.path.isfile(p)]
    add_files(w, "include", sorted(headers, key=sha_key), int(1_500_000 * scale), 200_000)
    roots = sorted(glob.glob("/usr/lib/python3.[0-9]*/")) or [sysconfig.get_paths()["stdlib"]]
    py = []
    for r in roots:
        py += [p for p in glob.glob(os.path.join(r, "**/*.py"), recursive=True) if os.path.isfile(p)]
    add_files(w, "python", sorted(py, key=sha_key), int(2_000_000 * scale), 200_000)


FALLBACK_CC = "AR AT AU BR CA CH CN DE EG ES FI FR GB GR IL IN IR IT JP KR MX NG NL NO PL PT RU SA SE TH TR UA US VN ZA"
TONES = [chr(c) for c in range(0x1F3FB, 0x1F400)]
ZWJ, VS16 = "\u200d", "\ufe0f"


def emoji_chars():
    ranges = [(0x2600, 0x27BF), (0x1F000, 0x1F2FF), (0x1F300, 0x1F5FF), (0x1F600, 0x1F6FF), (0x1F700, 0x1F7FF),
              (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF)]
    out = []
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if unicodedata.category(ch) == "So" and not 0x1F3FB <= cp <= 0x1F3FF:
                out.append(ch)
    return out


def built_emoji_text():
    """Emoji text generated from unicodedata (deterministic for a given Python/Unicode version)."""
    rng = random.Random(20240601)
    chars = emoji_chars()
    lines = [f"{c} {unicodedata.name(c).lower()}" for c in chars]
    # Skin tones on likely modifier bases (people and hands); harmless if a few are not real bases.
    bases = [c for c in chars if re.search(r"\b(HAND|FINGER|PERSON|MAN|WOMAN|BOY|GIRL|BABY|THUMBS|FIST|"
                                           r"ARM|LEG|EAR|NOSE|MERPERSON|RUNNER|SURFER|SWIMMER|SIGN)\b",
                                           unicodedata.name(c))]
    for c in bases:
        lines.append(" ".join(c + t for t in TONES) + f"  ({unicodedata.name(c).lower()}, tones)")
    man, woman, boy, girl, person = "\U0001f468", "\U0001f469", "\U0001f466", "\U0001f467", "\U0001f9d1"
    heart, kiss = "\u2764\ufe0f", "\U0001f48b"
    zwj = [
        man + ZWJ + woman + ZWJ + girl + ZWJ + boy, woman + ZWJ + woman + ZWJ + boy, man + ZWJ + man + ZWJ + girl + ZWJ + girl,
        woman + ZWJ + heart + ZWJ + man, man + ZWJ + heart + ZWJ + kiss + ZWJ + man,
        "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f3f3\ufe0f\u200d\u26a7\ufe0f", "\U0001f3f4\u200d\u2620\ufe0f",
        "\u2764\ufe0f\u200d\U0001f525", "\u2764\ufe0f\u200d\U0001fa79", "\U0001f62e\u200d\U0001f4a8",
        "\U0001f635\u200d\U0001f4ab", "\U0001f636\u200d\U0001f32b\ufe0f", "\U0001f415\u200d\U0001f9ba",
        "\U0001f408\u200d\u2b1b", "\U0001f43b\u200d\u2744\ufe0f", "\U0001f441\ufe0f\u200d\U0001f5e8\ufe0f",
        person + ZWJ + "\U0001f91d" + ZWJ + person,
    ]
    jobs = ["\u2695\ufe0f", "\U0001f393", "\U0001f3eb", "\u2696\ufe0f", "\U0001f33e", "\U0001f373", "\U0001f527",
            "\U0001f3ed", "\U0001f4bc", "\U0001f52c", "\U0001f4bb", "\U0001f3a4", "\U0001f3a8", "\u2708\ufe0f",
            "\U0001f680", "\U0001f692", "\U0001f9af", "\U0001f9bc", "\U0001f9bd", "\U0001f37c"]
    for base in (man, woman, person):
        for t in [""] + TONES:
            for j in jobs:
                zwj.append(base + t + ZWJ + j)
    for b in ("\U0001f3c3", "\U0001f3ca", "\U0001f6b4", "\U0001f937", "\U0001f926", "\U0001f481", "\U0001f64b"):
        for t in [""] + TONES:
            zwj.append(b + t + ZWJ + "\u2640\ufe0f")
            zwj.append(b + t + ZWJ + "\u2642\ufe0f")
    for t1 in TONES:
        for t2 in TONES:
            zwj.append(person + t1 + ZWJ + "\U0001f91d" + ZWJ + person + t2)
    lines += [" ".join(zwj[i : i + 8]) for i in range(0, len(zwj), 8)]
    lines.append(" ".join(d + VS16 + "\u20e3" for d in "0123456789#*"))
    cc = FALLBACK_CC.split()
    try:
        with open("/usr/share/zoneinfo/iso3166.tab", encoding="utf-8") as f:
            cc = sorted({ln.split("\t")[0] for ln in f if ln[:1].isalpha() and "\t" in ln})
    except OSError:
        pass
    flags = ["".join(chr(0x1F1E6 + ord(ch) - ord("A")) for ch in code) for code in cc]
    lines += [" ".join(flags[i : i + 16]) for i in range(0, len(flags), 16)]
    lines.append(" ".join("\U0001f3f4" + "".join(chr(0xE0000 + ord(ch)) for ch in tag) + "\U000e007f"
                          for tag in ("gbeng", "gbsct", "gbwls", "usca", "ustx")))
    words = ["Hello", "world", "Привет", "мир", "Γειά", "κόσμε", "你好", "世界", "こんにちは", "สวัสดี", "नमस्ते",
             "مرحبا", "שלום", "안녕하세요", "great", "job", "café", "naïve", "!", "?", ",", "...", "'s", "2024", "42"]
    pool = chars + zwj + flags
    sentences = []
    for _ in range(3000):
        parts = []
        for _ in range(rng.randint(3, 14)):
            r = rng.random()
            if r < 0.45:
                parts.append(rng.choice(words))
            else:
                parts.append(rng.choice(pool) * rng.choice([1, 1, 1, 2, 3]))
        sep = rng.choice([" ", " ", "", "  ", "\n", " \n"])
        sentences.append(sep.join(parts) + rng.choice(["", ".", "!", "\n"]))
    return "\n".join(lines), "\n".join(sentences)


def add_emoji(w):
    cands = sorted(glob.glob("/usr/lib/python3*/dist-packages/pip/_vendor/rich/_emoji_codes.py"))
    cands.append(os.path.join(sysconfig.get_paths()["purelib"], "pip/_vendor/rich/_emoji_codes.py"))
    for p in cands:
        text = read_file(p) if os.path.isfile(p) else None
        if text:
            w.emit_chunked(p, text)
            break
    table, sentences = built_emoji_text()
    w.emit_chunked("generated/emoji-table", table)
    w.emit_chunked("generated/emoji-sentences", sentences)


def count_scripts(texts):
    counts = {}
    for name, cls in SCRIPTS.items():
        pat = re.compile(f"[{cls}]+")
        counts[name] = sum(len(m) for t in texts for m in pat.findall(t))
    counts["(all characters)"] = sum(len(t) for t in texts)
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_path")
    ap.add_argument("--min-mb", type=float, default=20.0, help="fail if the output is smaller (MB = 1e6 bytes)")
    args = ap.parse_args()
    t0 = time.time()
    scale = max(1.0, args.min_mb / 20.0)
    os.makedirs(os.path.dirname(os.path.abspath(args.out_path)), exist_ok=True)
    with open(args.out_path, "wb") as out:
        w = Writer(out)
        add_gettext(w, scale)
        add_man(w, scale)
        add_doc(w, scale)
        add_code(w, scale)
        add_emoji(w)
        w.flush_small()
    counts = count_scripts(w.chars)
    mb = w.bytes / 1e6
    print(f"{args.out_path}: {w.docs} documents, {mb:.2f} MB, {time.time() - t0:.1f} s")
    ok = mb >= args.min_mb
    for name, n in counts.items():
        low = name in REQUIRED and n < MIN_SCRIPT_CHARS
        ok = ok and not low
        print(f"  {name:18s} {n:12,d}{'  TOO FEW' if low else ''}")
    if mb < args.min_mb:
        print(f"error: {mb:.2f} MB < --min-mb {args.min_mb}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
