"""herd tokenizer train: the tiktoken file it writes loads in tiktoken (Meta's pattern, Llama 3 special
tokens after the ranks) and encodes exactly as `herd tokenize` does; it compresses; errors are clear."""
import base64
import json
import random
import subprocess

import pytest
import tiktoken

from tiktoken_ref import PAT_STR, SPECIAL_TOKENS

WORDS = ("the quick brown fox jumps over the lazy dog , while tokenizers learn merges from frequent "
         "pairs ; café naïve 中文 日本語 🙂 it's don't we'll 1234 3.14159 <html> </div> x=y+1 ").split(" ")


SYLLABLES = ["ka", "lo", "mi", "tra", "sen", "qu", "ing", "er", "th", "ou", "ble", "zy", "é", "ñ", "中",
             "文", "語"]


def make_text(n_lines, seed):
    rng = random.Random(seed)

    def word():
        if rng.random() < 0.5:
            return rng.choice(WORDS)
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))

    lines = []
    for _ in range(n_lines):
        lines.append(" ".join(word() for _ in range(rng.randint(3, 14))) +
                     rng.choice([".", "!", "?\n", ":\t"]))
    return "\n".join(lines) + "\n"


def train(herd_bin, out, files, *extra, check=True):
    r = subprocess.run([herd_bin, "tokenizer", "train", "--out", str(out), *map(str, extra),
                        *map(str, files)], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def herd_tokenize(herd_bin, model, text, *extra):
    r = subprocess.run([herd_bin, "tokenize", "--tokenizer", str(model), *extra],
                       input=text.encode(), capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def load_tiktoken(path):
    ranks = {}
    for line in path.read_bytes().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    n = len(ranks)
    return tiktoken.Encoding(name="trained", pat_str=PAT_STR, mergeable_ranks=ranks,
                             special_tokens={s: n + i for i, s in enumerate(SPECIAL_TOKENS)})


@pytest.fixture(scope="module")
def trained(herd_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("bpe")
    (d / "a.txt").write_text(make_text(1500, 1), encoding="utf-8")
    docs = [{"text": make_text(5, s)} for s in range(100)] + [make_text(2, 1000)]
    (d / "b.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in docs) + "\n",
                               encoding="utf-8")
    out = d / "tokenizer.model"
    r = train(herd_bin, out, [d / "a.txt", d / "b.jsonl"], "--vocab-size", 768, "--threads", 2)
    return out, d, r


def test_train_summary_and_file(trained):
    out, _, r = trained
    assert "vocab 768" in r.stdout and "512 mergeable ranks" in r.stdout, r.stdout
    assert "bytes/token" in r.stdout
    lines = out.read_bytes().splitlines()
    assert len(lines) == 512
    # Ranks 0..255 are the single bytes in order.
    for b in range(256):
        token, rank = lines[b].split()
        assert base64.b64decode(token) == bytes([b]) and int(rank) == b


def test_matches_tiktoken(herd_bin, trained):
    out, _, _ = trained
    enc = load_tiktoken(out)
    assert enc.n_vocab == 768
    texts = [make_text(20, 7), "Hello, world! The quick brown fox.", "café 中文 🙂 don't  \n\n\t x",
             "unseen words: zebra quartz 98765 ¿¡", "   leading and trailing spaces   ", ""]
    for text in texts:
        assert herd_tokenize(herd_bin, out, text) == enc.encode_ordinary(text), text
    special = "<|begin_of_text|>hi<|eot_id|>"
    ids = herd_tokenize(herd_bin, out, special, "--allow-special")
    assert ids == enc.encode(special, allowed_special="all")
    assert ids[0] == 512 and ids[-1] == 512 + 9
    assert herd_tokenize(herd_bin, out, "x", "--bos") == [512] + enc.encode_ordinary("x")


def test_compresses_better_than_bytes(herd_bin, trained):
    out, d, _ = trained
    text = (d / "a.txt").read_text(encoding="utf-8")
    ids = herd_tokenize(herd_bin, out, text)
    assert len(text.encode()) / len(ids) > 2.0


def test_deterministic(herd_bin, trained, tmp_path):
    out, d, _ = trained
    again = tmp_path / "again.model"
    train(herd_bin, again, [d / "a.txt", d / "b.jsonl"], "--vocab-size", 768, "--threads", 1)
    assert again.read_bytes() == out.read_bytes()


def test_errors(herd_bin, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("some text some text", encoding="utf-8")
    r = train(herd_bin, tmp_path / "o.model", [text], "--vocab-size", 300, check=False)
    assert r.returncode != 0 and "at least 512" in r.stderr
    r = train(herd_bin, tmp_path / "o.model", [tmp_path / "missing.txt"], "--vocab-size", 600,
              check=False)
    assert r.returncode != 0 and "missing.txt" in r.stderr
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    r = train(herd_bin, tmp_path / "o.model", [empty], "--vocab-size", 600, check=False)
    assert r.returncode != 0 and "no text" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text field"}\n', encoding="utf-8")
    r = train(herd_bin, tmp_path / "o.model", [bad], "--vocab-size", 600, check=False)
    assert r.returncode != 0 and "bad.jsonl:2" in r.stderr
    assert not (tmp_path / "o.model").exists()
    # A corpus too small for the vocabulary: a smaller one, with a warning.
    r = train(herd_bin, tmp_path / "o.model", [text], "--vocab-size", 600)
    assert "warning: stopped" in r.stderr
    assert load_tiktoken(tmp_path / "o.model").n_vocab < 600
