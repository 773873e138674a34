"""Shared fixtures: the herd binary, the three forms of the Llama 3 tokenizer, tiktoken, and the large
generated inputs (corpus and fuzz strings, built by committed tools/ scripts into build/test_data)."""
import hashlib
import lzma
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from tiktoken_ref import load_llama3_encoding  # noqa: E402

BUILD = pathlib.Path(os.environ.get("HERD_BUILD_DIR", ROOT / "build"))
DATA = BUILD / "test_data"


def herd_home():
    if os.environ.get("HERD_HOME"):
        return pathlib.Path(os.environ["HERD_HOME"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return pathlib.Path(cache) / "herd"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="session")
def herd_bin():
    path = pathlib.Path(os.environ.get("HERD_BIN", BUILD / "apps/herd/herd"))
    assert path.exists(), f"{path} not built (run scripts/setup)"
    return str(path)


@pytest.fixture(scope="session")
def llama3_model():
    path = herd_home() / "llama3/tokenizer.model"
    assert path.exists(), f"{path} missing (run scripts/setup)"
    return str(path)


def _unxz(name):
    out = DATA / name
    if not out.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        with lzma.open(ROOT / "tests/golden/tokenizer" / (name + ".xz")) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.rename(out)
    return str(out)


@pytest.fixture(scope="session")
def tokenizer_forms(llama3_model):
    """The same tokenizer as tiktoken file, HF tokenizer.json and GGUF metadata."""
    return {
        "tiktoken": llama3_model,
        "hf_json": _unxz("llama3-tokenizer.json"),
        "gguf": _unxz("llama3-tokenizer.gguf"),
    }


@pytest.fixture(scope="session")
def enc(llama3_model):
    return load_llama3_encoding(llama3_model)


def _generated(name, script, *args):
    out = DATA / name
    if not out.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([sys.executable, str(ROOT / "tools" / script), str(tmp), *args], check=True)
        tmp.rename(out)
    return out


@pytest.fixture(scope="session")
def corpus_path():
    return _generated("corpus.jsonl", "build_corpus.py")


@pytest.fixture(scope="session")
def fuzz_path():
    return _generated("fuzz.jsonl", "gen_fuzz.py", "--n", "100000", "--seed", "1")
