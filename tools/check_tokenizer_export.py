#!/usr/bin/env python3
"""Checks herd's tokenizer export (src/tokenizer/export.h) with the Python tools other projects use.

Usage (in the venv of tools/requirements-tools.txt):
    HERD_EXPORT_SAMPLE_DIR=/tmp/herd-export build/tests/tokenizer_export_test \\
        --gtest_filter=ExportSample.*
    .venv-tools/bin/python tools/check_tokenizer_export.py /tmp/herd-export [--model tokenizer.model] \
        [--llama-cpp-site VENV/lib/python3.11/site-packages]

The sample folder holds tokenizer.json, tokenizer_config.json and tokenizer.gguf exported from Meta's
Llama 3 tokenizer.model (eos <|eot_id|>). Checked against tiktoken (tools/tiktoken_ref.py):
  - transformers.AutoTokenizer loads the folder as PreTrainedTokenizerFast; encodings of a corpus
    (the tiktoken_cases.json texts, random text, glued random tokens) equal tiktoken's, with
    <|begin_of_text|> added by default; decode gives the text back; bos/eos; apply_chat_template gives
    Meta's chat format; llama.cpp's pre-tokenizer hash of it is "llama-bpe".
  - gguf.GGUFReader reads tokenizer.gguf: the keys llama.cpp reads, and the same tokens, types, merges
    and ids as the GGUF that llama.cpp's converter path (make_tokenizer_fixtures.build_gguf, run on
    the exported folder) writes.
  - With --llama-cpp-site DIR (a site-packages holding llama-cpp-python, appended to sys.path): llama.cpp
    loads tokenizer.gguf (vocab_only) and tokenizes the corpus exactly as it tokenizes the golden GGUF
    made by llama.cpp's converter (tests/golden/tokenizer/llama3-tokenizer.gguf.xz); bos/eos/eot, add_bos,
    end-of-generation tokens, detokenization and the chat template are checked too. Where llama.cpp's
    own pre-tokenizer differs from tiktoken the count is reported (it is the same for both files).
Exits non-zero on the first difference.
"""

import argparse
import ctypes
import hashlib
import json
import lzma
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tokenizer_fixtures as fixtures  # noqa: E402  (sets the offline/env defaults)
import tiktoken_ref  # noqa: E402

import gguf  # noqa: E402
from transformers import AutoTokenizer, PreTrainedTokenizerFast  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BOS_ID, EOT_ID = 128000, 128009
_quiet_log = None


def fail(msg):
    raise SystemExit(f"FAIL: {msg}")


def corpus(enc):
    with open(os.path.join(ROOT, "tests", "golden", "tokenizer", "tiktoken_cases.json"), encoding="utf-8") as f:
        texts = [c["text"] for c in json.load(f)["cases"] if "text" in c]
    rng = random.Random(7)
    parts = [" ", "  ", "\n", "\r\n", "\t", "a", "the", " The", "'s", "'LL", "123", "4567", "é", "中文", "🦙",
             "!!!", "...", "مرحبا", "Привет", "\u00a0", "\u3000", "ſ", " x"]
    texts += ["".join(rng.choice(parts) for _ in range(rng.randint(1, 40))) for _ in range(1000)]
    # Whole tokens glued together: pieces that BPE must merge across token boundaries.
    for _ in range(1000):
        b = b"".join(enc.decode_single_token_bytes(rng.randrange(tiktoken_ref.NUM_BASE_TOKENS)) for _ in range(3))
        texts.append(b.decode("utf-8", "replace"))
    # HF matches added tokens inside text; tiktoken's encode_ordinary does not: leave those out.
    return [t for t in texts if "<|" not in t]


def check_transformers(folder, enc):
    tok = AutoTokenizer.from_pretrained(folder)
    if not isinstance(tok, PreTrainedTokenizerFast):
        fail(f"AutoTokenizer gave {type(tok).__name__}")
    if (tok.bos_token_id, tok.eos_token_id) != (BOS_ID, EOT_ID):
        fail(f"bos/eos {tok.bos_token_id}/{tok.eos_token_id}")
    texts = corpus(enc)
    for text in texts:
        want = enc.encode_ordinary(text)
        got = tok(text, add_special_tokens=False)["input_ids"]
        if got != want:
            fail(f"encoding of {text!r}: {got} != tiktoken {want}")
        if tok(text)["input_ids"] != [BOS_ID] + want:
            fail(f"default encoding of {text!r} does not start with <|begin_of_text|> alone")
        if tok.decode(want) != text:
            fail(f"decode of {text!r} gave {tok.decode(want)!r}")
    special = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    if tok(special, add_special_tokens=False)["input_ids"] != enc.encode(special, allowed_special="all"):
        fail("special tokens in text")
    if tok.decode([BOS_ID, 9906, EOT_ID], skip_special_tokens=True) != "Hello":
        fail("skip_special_tokens")
    if tok.chat_template:
        dialog = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi! "}]
        got = tok.apply_chat_template(dialog, add_generation_prompt=True, tokenize=True)
        text = "<|begin_of_text|>" + "".join(
            f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>" for m in dialog
        ) + "<|start_header_id|>assistant<|end_header_id|>\n\n"
        if list(got) != enc.encode(text, allowed_special="all"):
            fail(f"apply_chat_template: {got}")
    chkhsh = hashlib.sha256(str(tok.encode(fixtures.CHKTXT)).encode()).hexdigest()
    if chkhsh != fixtures.LLAMA_BPE_CHKHSH:
        fail(f"llama.cpp pre-tokenizer hash {chkhsh} is not llama-bpe's")
    print(f"transformers {type(tok).__name__}: {len(texts)} texts encode like tiktoken; "
          f"bos/eos, decode, chat template, llama-bpe hash OK")


def fields_of(path):
    reader = gguf.GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items() if name.startswith("tokenizer.")}


def check_gguf(folder):
    ours = fields_of(os.path.join(folder, "tokenizer.gguf"))
    for key, want in [("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "llama-bpe"),
                      ("tokenizer.ggml.bos_token_id", BOS_ID), ("tokenizer.ggml.eos_token_id", EOT_ID),
                      ("tokenizer.ggml.add_bos_token", True)]:
        if ours.get(key) != want:
            fail(f"{key} = {ours.get(key)!r}, want {want!r}")
    with tempfile.TemporaryDirectory() as tmp:
        ref_path = os.path.join(tmp, "ref.gguf")
        fixtures.build_gguf(folder, ref_path)  # llama.cpp's converter path, on the exported folder
        ref = fields_of(ref_path)
    for key, want in ref.items():
        if key == "tokenizer.ggml.add_sep_token":
            continue
        if ours.get(key) != want:
            fail(f"{key} differs from what llama.cpp's converter writes for the exported folder")
    print(f"gguf: {len(ours['tokenizer.ggml.tokens'])} tokens, {len(ours['tokenizer.ggml.merges'])} merges; "
          f"all {len(ref) - 1} tokenizer keys equal the converter's")


class LlamaCppVocab:
    """A GGUF's vocabulary loaded by llama.cpp (llama-cpp-python's ctypes API, vocab_only)."""

    def __init__(self, llama_cpp, path):
        self.lib = llama_cpp
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), params)
        if not self.model:
            fail(f"llama.cpp could not load {path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)

    def tokenize(self, data, add_special=False, parse_special=False):
        lib = self.lib
        n = lib.llama_tokenize(self.vocab, data, len(data), None, 0, add_special, parse_special)
        buf = (lib.llama_token * max(1, -n))()
        n = lib.llama_tokenize(self.vocab, data, len(data), buf, len(buf), add_special, parse_special)
        return list(buf[:n])

    def detokenize(self, ids):
        out = b""
        buf = ctypes.create_string_buffer(256)
        for i in ids:
            n = self.lib.llama_token_to_piece(self.vocab, i, buf, len(buf), 0, True)
            out += buf.raw[:n]
        return out


def check_llama_cpp(folder, site, enc):
    sys.path.append(site)
    import llama_cpp

    global _quiet_log  # the callback must outlive the call
    _quiet_log = llama_cpp.llama_log_callback(lambda level, text, data: None)
    llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))
    ours = LlamaCppVocab(llama_cpp, os.path.join(folder, "tokenizer.gguf"))
    with tempfile.TemporaryDirectory() as tmp:
        golden_path = os.path.join(tmp, "golden.gguf")
        with lzma.open(os.path.join(ROOT, "tests", "golden", "tokenizer", "llama3-tokenizer.gguf.xz")) as f_in:
            with open(golden_path, "wb") as f_out:
                f_out.write(f_in.read())
        golden = LlamaCppVocab(llama_cpp, golden_path)
    lib, v = llama_cpp, ours.vocab
    if lib.llama_vocab_type(v) != lib.LLAMA_VOCAB_TYPE_BPE or lib.llama_vocab_n_tokens(v) != 128256:
        fail("llama.cpp vocab type / size")
    if (lib.llama_vocab_bos(v), lib.llama_vocab_eos(v), lib.llama_vocab_eot(v)) != (BOS_ID, EOT_ID, EOT_ID):
        fail("llama.cpp bos/eos/eot")
    if not lib.llama_vocab_get_add_bos(v) or lib.llama_vocab_get_add_eos(v):
        fail("llama.cpp add_bos/add_eos")
    if not all(lib.llama_vocab_is_eog(v, i) for i in (128001, 128008, 128009)):
        fail("llama.cpp end-of-generation tokens")
    template = lib.llama_model_chat_template(ours.model, None)
    if not template or b"<|start_header_id|>" not in template:
        fail("llama.cpp chat template")
    texts = corpus(enc)
    not_tiktoken = 0
    for text in texts:
        data = text.encode()
        got = ours.tokenize(data)
        if got != golden.tokenize(data):
            fail(f"llama.cpp tokenizes {text!r} differently with the exported GGUF than with the converter's")
        if ours.tokenize(data, add_special=True) != [BOS_ID] + got:
            fail(f"llama.cpp add_special on {text!r}")
        if ours.detokenize(got) != data:
            fail(f"llama.cpp detokenize of {text!r}")
        not_tiktoken += got != enc.encode_ordinary(text)
    special = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    if ours.tokenize(special.encode(), parse_special=True) != enc.encode(special, allowed_special="all"):
        fail("llama.cpp special tokens in text")
    print(f"llama.cpp: loads tokenizer.gguf; {len(texts)} texts tokenize as with the converter's GGUF "
          f"({len(texts) - not_tiktoken} also equal tiktoken); bos/eos/eot, add_bos, eog, detokenize, template OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", nargs="?", default=os.environ.get("HERD_EXPORT_SAMPLE_DIR"))
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/herd/llama3/tokenizer.model"))
    ap.add_argument("--llama-cpp-site", help="site-packages holding llama-cpp-python (optional check)")
    args = ap.parse_args()
    if not args.folder:
        ap.error("no sample folder (argument or HERD_EXPORT_SAMPLE_DIR)")
    enc = tiktoken_ref.load_llama3_encoding(args.model)
    check_transformers(args.folder, enc)
    check_gguf(args.folder)
    if args.llama_cpp_site:
        check_llama_cpp(args.folder, args.llama_cpp_site, enc)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
