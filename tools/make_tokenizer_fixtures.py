#!/usr/bin/env python3
"""Build the Llama 3 tokenizer fixtures (HF tokenizer.json and a tokenizer-only GGUF) from Meta's tokenizer.model.

Usage (in the tools venv, see tools/requirements-tools.txt):
    python3 -m venv .venv-tools && .venv-tools/bin/pip install -r tools/requirements-tools.txt
    .venv-tools/bin/python tools/make_tokenizer_fixtures.py [--model PATH]

--model defaults to tests/data/llama3/tokenizer.model, fetched with `pip download llama-models==0.3.0`
when missing (sha256 82e9d319... is checked). Writes:
    tests/golden/tokenizer/llama3-tokenizer.json.xz   (committed)
    tests/golden/tokenizer/llama3-tokenizer.gguf.xz   (committed)
    tests/data/tokenizer/llama3-tokenizer.json        (uncompressed, ignored scratch)
    tests/data/tokenizer/llama3-tokenizer.gguf        (uncompressed, ignored scratch)
and prints their sha256 (recorded in tests/golden/tokenizer/README.md).

(a) tokenizer.json: transformers' own TikTokenConverter (transformers.convert_slow_tokenizer) with the
    Llama 3 pattern and the 256 special tokens as added tokens (special: true, normalized: false),
    then the post-processor transformers' Llama3Converter installs (convert_llama_weights_to_hf.py):
    Sequence[ByteLevel(trim_offsets=False), TemplateProcessing("<|begin_of_text|> $A")]. This is the
    layout of Meta's published Llama 3.x tokenizer.json (Split(regex, Isolated) + ByteLevel(use_regex=
    False) pre-tokenizer, ByteLevel decoder, BPE with ignore_merges).
(b) GGUF (v3, no tensors), written with the `gguf` package the way llama.cpp's convert_hf_to_gguf.py
    writes a Llama 3 vocab (LlamaModel.set_vocab -> _set_vocab_gpt2 -> get_vocab_base): the tokenizer is
    loaded with transformers.AutoTokenizer from a folder holding the tokenizer.json above and a
    tokenizer_config.json; tokens = the byte-level-unicode strings by id (128256), token_type = 1
    (NORMAL) for the 128000 BPE tokens and 3 (CONTROL) for the 256 added special tokens (all have
    special=true), tokenizer.ggml.model "gpt2", tokenizer.ggml.pre from llama.cpp's pre-tokenizer
    hash check (must come out "llama-bpe"), and gguf.SpecialVocab(load_merges=True) for merges ("a b"
    in rank order), bos/eos ids and add_bos_token (from the TemplateProcessing post-processor).
    bos = <|begin_of_text|> 128000; eos = <|eot_id|> 128009, as in Meta's Llama 3.x Instruct
    tokenizer_config.json (the chat models herd serves end a turn with <|eot_id|>; llama.cpp also
    treats <|end_of_text|> 128001 and <|eom_id|> 128008 as end-of-generation by their text).
    Only general.architecture = "llama" besides the tokenizer.* keys.
Outputs are deterministic (xz preset 9, single-threaded).
"""

import argparse
import hashlib
import json
import lzma
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")  # load_tiktoken_bpe: no copy of the model in /tmp
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiktoken_ref  # noqa: E402

import gguf  # noqa: E402
from tokenizers import processors  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from transformers.convert_slow_tokenizer import TikTokenConverter  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden", "tokenizer")
SCRATCH_DIR = os.path.join(ROOT, "tests", "data", "tokenizer")
BOS, EOS = "<|begin_of_text|>", "<|eot_id|>"

# llama.cpp convert_hf_to_gguf.py, get_vocab_base_pre(): the text whose token ids identify a BPE
# pre-tokenizer, and the hash it has for Meta-Llama-3 ("llama-bpe").
CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 "
    "3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на "
    "Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll "
    "make it, 'D you like some tea? We'Ve a'lL"
)
LLAMA_BPE_CHKHSH = "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5"


def build_hf_tokenizer(model_path):
    """tokenizers.Tokenizer from Meta's tokenizer.model via transformers' TikTokenConverter."""
    conv = TikTokenConverter(
        vocab_file=model_path,
        pattern=tiktoken_ref.PAT_STR,
        additional_special_tokens=tiktoken_ref.SPECIAL_TOKENS,
    )
    tok = conv.converted()
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, bos_id)]
            ),
        ]
    )
    return tok


def write_tokenizer_folder(tok, folder):
    tok.save(os.path.join(folder, "tokenizer.json"))
    config = {
        "bos_token": BOS,
        "eos_token": EOS,
        "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)


def build_gguf(folder, out_path):
    """Tokenizer-only GGUF, as convert_hf_to_gguf.py's _set_vocab_gpt2 writes it for Llama 3."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    chkhsh = hashlib.sha256(str(tokenizer.encode(CHKTXT)).encode()).hexdigest()
    if chkhsh != LLAMA_BPE_CHKHSH:
        raise SystemExit(f"pre-tokenizer hash {chkhsh} is not llama.cpp's llama-bpe hash")
    tokpre = "llama-bpe"

    vocab_size = len(tokenizer.vocab)
    reverse_vocab = {id_: tok for tok, id_ in tokenizer.vocab.items()}
    added_vocab = tokenizer.get_added_vocab()
    tokens, toktypes = [], []
    for i in range(vocab_size):
        token = reverse_vocab[i]
        if token in added_vocab:
            if not tokenizer.added_tokens_decoder[i].special:
                raise SystemExit(f"added token {token!r} is not special")
            toktypes.append(gguf.TokenType.CONTROL)
        else:
            toktypes.append(gguf.TokenType.NORMAL)
        tokens.append(token)

    writer = gguf.GGUFWriter(path=None, arch="llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tokpre)
    writer.add_token_list(tokens)
    writer.add_token_types(toktypes)
    special_vocab = gguf.SpecialVocab(folder, load_merges=True)
    special_vocab.add_to_gguf(writer)
    writer.write_header_to_file(path=out_path)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tokens, toktypes, special_vocab


def xz(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9))


def check(model_path, json_path, gguf_path):
    """Cross-checks the outputs against tiktoken; raises on any difference."""
    enc = tiktoken_ref.load_llama3_encoding(model_path)
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(json_path)
    samples = [
        "This is a test sentence.", "Hello world", " \n\n  x", "I'VE got 1234567 apples", "こんにちは世界 🌍",
        "<|eot_id|>", "\r\n\r\n", "  leading spaces", "don't 'S 'll", "Привет, мир! שלום عالم สวัสดี नमस्ते 안녕",
    ]
    for s in samples:
        want = enc.encode_ordinary(s)
        got = hf.encode(s, add_special_tokens=False).ids
        if s == "<|eot_id|>":  # HF matches added tokens in text; tiktoken's encode_ordinary does not
            want = [tiktoken_ref.NUM_BASE_TOKENS + 9]
        if got != want:
            raise SystemExit(f"tokenizer.json differs from tiktoken on {s!r}: {got} vs {want}")
    reader = gguf.GGUFReader(gguf_path)
    fields = reader.fields
    n_tokens = len(fields["tokenizer.ggml.tokens"].data)
    assert n_tokens == 128256, n_tokens
    assert len(reader.tensors) == 0
    byte_decoder = {v: k for k, v in _bytes_to_unicode().items()}
    tok_field = fields["tokenizer.ggml.tokens"]
    for i in (0, 13, 2028, 127999):
        s = bytes(tok_field.parts[tok_field.data[i]]).decode("utf-8")
        assert bytes(byte_decoder[c] for c in s) == enc.decode_single_token_bytes(i), i


def _bytes_to_unicode():
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return bytes_to_unicode()


def sha256(path):
    return tiktoken_ref.sha256_file(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="Meta's Llama 3 tokenizer.model (default: fetched to tests/data/llama3/)")
    args = ap.parse_args()
    model_path = tiktoken_ref.fetch_tokenizer_model(args.model)
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    os.makedirs(SCRATCH_DIR, exist_ok=True)
    json_path = os.path.join(SCRATCH_DIR, "llama3-tokenizer.json")
    gguf_path = os.path.join(SCRATCH_DIR, "llama3-tokenizer.gguf")

    tok = build_hf_tokenizer(model_path)
    with tempfile.TemporaryDirectory() as folder:
        write_tokenizer_folder(tok, folder)
        shutil.copyfile(os.path.join(folder, "tokenizer.json"), json_path)
        tokens, toktypes, special_vocab = build_gguf(folder, gguf_path)
    check(model_path, json_path, gguf_path)

    for src in (json_path, gguf_path):
        dst = os.path.join(GOLDEN_DIR, os.path.basename(src) + ".xz")
        xz(src, dst)
        print(f"{dst}: {os.path.getsize(dst):,} bytes (xz); uncompressed {os.path.getsize(src):,} bytes, "
              f"sha256 {sha256(src)}")
    print(f"special ids: {special_vocab.special_token_ids}, add_bos/eos: {special_vocab.add_special_token}, "
          f"merges: {len(special_vocab.merges)}, control tokens: {sum(t == gguf.TokenType.CONTROL for t in toktypes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
