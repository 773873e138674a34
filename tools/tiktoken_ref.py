"""Reference Llama 3 tokenizer (tiktoken) for herd's tokenizer tests. Importable; stdlib + tiktoken + regex.

Usage from a test (with tools/ on sys.path, in the venv of tools/requirements-tools.txt):

    from tiktoken_ref import load_llama3_encoding, encode_bytes_reference
    enc = load_llama3_encoding("path/to/tokenizer.model")   # Meta's llama3 tokenizer.model
    enc.encode_ordinary("Hello world")                        # -> [9906, 1917]
    enc.encode("<|eot_id|>", allowed_special="all")           # -> [128009]
    encode_bytes_reference(enc, b"caf\\xc3\\xa9 \\xff!")         # ids for arbitrary bytes

The Encoding is exactly the one of llama_models/llama3/tokenizer.py (llama-models 0.3.0): Meta's
pat_str, the mergeable ranks of tokenizer.model (base64 token, space, rank per line; parsed here the way
tiktoken.load.load_tiktoken_bpe does, without its /tmp cache), and 256 special tokens at ids
128000..128255.

encode_bytes_reference defines the ids of input bytes that need not be valid UTF-8:
  1. decode the bytes as UTF-8 with errors="surrogateescape": each byte that is not part of a valid
     UTF-8 sequence becomes the lone surrogate U+DC80+byte (U+DC80..U+DCFF); these are in neither \\s,
     \\p{L} nor \\p{N}, so the pattern treats them like punctuation ([^\\s\\p{L}\\p{N}]);
  2. split the string with the `regex` module using pat_str;
  3. map each piece back to bytes with surrogateescape (each lone surrogate -> its original byte);
  4. byte-level BPE each piece with the mergeable ranks (tiktoken's Encoding._encode_single_piece).
Special tokens are never recognised (like encode_ordinary). For valid UTF-8 this equals
enc.encode_ordinary(data.decode()) (checked by tools/gen_tokenizer_goldens.py).
"""

import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

import regex
import tiktoken

PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
TOKENIZER_MODEL_SHA256 = "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55"
NUM_BASE_TOKENS = 128000
NUM_RESERVED_SPECIAL_TOKENS = 256

_SPECIAL_HEAD = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",  # end of message
    "<|eot_id|>",  # end of turn
    "<|python_tag|>",
    "<|image|>",
]
SPECIAL_TOKENS = _SPECIAL_HEAD + [
    f"<|reserved_special_token_{2 + i}|>" for i in range(NUM_RESERVED_SPECIAL_TOKENS - len(_SPECIAL_HEAD))
]

LLAMA_MODELS_WHEEL = "llama-models==0.3.0"
WHEEL_MEMBER = "llama_models/llama3/tokenizer.model"
# Where tools and tests keep the downloaded file (tests/data/ is ignored by git).
DEFAULT_MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                                  "llama3", "tokenizer.model")

# tiktoken's Rust regex crate has Unicode 16.0 tables; the `regex` module must have the same ones, or
# \p{L}/\p{N} differ on code points assigned later (regex >= 2025.10.22 has Unicode 17). Pinned in
# tools/requirements-tools.txt; checked here so that a wrong version fails loudly instead of silently.
if regex.match(r"\p{L}", "\U000323b0") or not regex.match(r"\p{L}", "\U00010d50"):
    raise ImportError("tiktoken_ref needs a `regex` module with Unicode 16.0 tables (regex==2025.9.18), "
                      "to match tiktoken's pre-tokenizer; see tools/requirements-tools.txt")

_PAT = regex.compile(PAT_STR)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_tokenizer_model(path=None):
    """Path of Meta's tokenizer.model; downloads it (pip download llama-models==0.3.0) if missing.

    Looks at `path` (default tests/data/llama3/tokenizer.model); if absent, runs
    `python -m pip download --no-deps llama-models==0.3.0` into a temporary folder and extracts
    llama_models/llama3/tokenizer.model from the wheel to `path`. The sha256 is always checked.
    """
    path = os.path.abspath(path or DEFAULT_MODEL_PATH)
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp,
                            LLAMA_MODELS_WHEEL], check=True)
            wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
            with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z, open(path + ".part", "wb") as out:
                out.write(z.read(WHEEL_MEMBER))
        os.replace(path + ".part", path)
    if sha256_file(path) != TOKENIZER_MODEL_SHA256:
        raise ValueError(f"{path}: sha256 is not that of Meta's Llama 3 tokenizer.model")
    return path


def load_mergeable_ranks(path, check_sha256=True):
    """bytes -> rank from a tiktoken BPE file (the format of Meta's tokenizer.model)."""
    with open(path, "rb") as f:
        data = f.read()
    if check_sha256 and hashlib.sha256(data).hexdigest() != TOKENIZER_MODEL_SHA256:
        raise ValueError(f"{path}: sha256 is not that of Meta's Llama 3 tokenizer.model")
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def load_llama3_encoding(path_to_tokenizer_model, check_sha256=True):
    """The tiktoken.Encoding of Llama 3 (as llama_models.llama3.tokenizer.Tokenizer builds it)."""
    ranks = load_mergeable_ranks(path_to_tokenizer_model, check_sha256)
    special = {tok: len(ranks) + i for i, tok in enumerate(SPECIAL_TOKENS)}
    return tiktoken.Encoding(
        name="llama3", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens=special
    )


def split_bytes_reference(data):
    """Pre-tokenizer pieces (as bytes) of arbitrary input bytes, by the surrogateescape definition."""
    text = bytes(data).decode("utf-8", errors="surrogateescape")
    return [p.encode("utf-8", errors="surrogateescape") for p in _PAT.findall(text)]


def encode_bytes_reference(enc, data):
    """Token ids of arbitrary bytes (see the module docstring); no special tokens."""
    ids = []
    encode_piece = enc._encode_single_piece
    for piece in split_bytes_reference(data):
        ids.extend(encode_piece(piece))
    return ids
