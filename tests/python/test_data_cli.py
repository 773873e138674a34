"""herd data tokenize / inspect: token shards checked against tiktoken with Meta's tokenizer, their
headers (licence, provenance, input hashes), input errors, and the mix's licence policy."""
import json
import struct
import subprocess

import pytest

from conftest import sha256_file

EOT = 128001  # <|end_of_text|>, appended after every document

TEXTS = {
    "a.txt": "Hello, world\nSecond line.\n",
    "b.txt": "Café naïve 中文 🙂 <|eot_id|> is plain text here",
}
JSONL = [{"text": "first line doc"}, {"text": "  spaces\tand tabs  "}, "a bare string document"]


def run(herd_bin, *args, check=True):
    r = subprocess.run([herd_bin, "data", *map(str, args)], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def tokenize(herd_bin, out, files, *extra, check=True):
    return run(herd_bin, "tokenize", "--source", "test", "--license", "CC0-1.0", "--provenance",
               "unit test corpus", "--out", out, *extra, *files, check=check)


def read_shards(out):
    """[(header, ids, offsets)] for every shard in name order."""
    shards = []
    for header_path in sorted(out.glob("shard-*.json")):
        h = json.loads(header_path.read_text())
        data = (out / h["bin"]["file"]).read_bytes()
        ids = list(struct.unpack(f"<{len(data) // 4}I", data))
        idx = (out / h["idx"]["file"]).read_bytes()
        offsets = list(struct.unpack(f"<{len(idx) // 8}Q", idx))
        shards.append((h, ids, offsets))
    return shards


@pytest.fixture
def corpus(tmp_path):
    files = []
    for name, text in TEXTS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(tmp_path / name)
    lines = [json.dumps(d, ensure_ascii=False) for d in JSONL]
    (tmp_path / "c.jsonl").write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n", encoding="utf-8")
    files.append(tmp_path / "c.jsonl")
    docs = list(TEXTS.values()) + [d["text"] if isinstance(d, dict) else d for d in JSONL]
    return files, docs


def test_tokenize_matches_tiktoken_and_header(herd_bin, enc, llama3_model, corpus, tmp_path):
    files, docs = corpus
    out = tmp_path / "out"
    tokenize(herd_bin, out, files, "--threads", 2)
    [(h, ids, offsets)] = read_shards(out)
    want = [enc.encode_ordinary(d) + [EOT] for d in docs]
    assert ids == [t for doc in want for t in doc]
    assert offsets == [0] + [sum(len(d) for d in want[: i + 1]) for i in range(len(want))]
    assert h["format"] == "herd-token-shard" and h["version"] == 1
    assert (h["source"], h["license"], h["provenance"]) == ("test", "CC0-1.0", "unit test corpus")
    assert h["tokenizer"]["sha256"] == sha256_file(llama3_model)
    assert h["tokenizer"]["vocab_size"] == 128256 and h["tokenizer"]["eos_id"] == EOT
    assert h["documents"] == len(docs) and h["tokens"] == len(ids) and h["bos"] is False
    assert h["bin"]["sha256"] == sha256_file(out / "shard-00000.bin")
    assert h["idx"]["sha256"] == sha256_file(out / "shard-00000.idx")
    assert [(i["path"], i["sha256"], i["bytes"], i["documents"]) for i in h["inputs"]] == [
        (str(f), sha256_file(f), f.stat().st_size, n) for f, n in zip(files, [1, 1, 3])
    ]
    r = run(herd_bin, "inspect", out, "--verify")
    assert "documents=5" in r.stdout and "verified" in r.stdout


def test_shard_split_field_and_bos(herd_bin, enc, tmp_path):
    rows = [{"body": f"document number {i} " * (i + 1), "text": "ignored"} for i in range(12)]
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out"
    tokenize(herd_bin, out, [src], "--jsonl-field", "body", "--shard-tokens", 40, "--bos")
    shards = read_shards(out)
    assert len(shards) > 2
    ids = [t for _, shard_ids, _ in shards for t in shard_ids]
    assert ids == [t for r in rows for t in [128000] + enc.encode_ordinary(r["body"]) + [EOT]]
    for h, shard_ids, offsets in shards[:-1]:
        assert h["tokens"] >= 40 and h["bos"] is True
        assert offsets[-1] == len(shard_ids) and h["documents"] == len(offsets) - 1
    assert sum(h["inputs"][0]["documents"] for h, _, _ in shards) == len(rows)


def test_tokenizer_formats_share_a_fingerprint(herd_bin, tokenizer_forms, tmp_path):
    (tmp_path / "t.txt").write_text("The same ids from every file format.")
    headers = {}
    for form in ("tiktoken", "hf_json"):
        out = tmp_path / form
        tokenize(herd_bin, out, [tmp_path / "t.txt"], "--tokenizer", tokenizer_forms[form])
        [(h, ids, _)] = read_shards(out)
        headers[form] = (h["tokenizer"], ids)
    (a, ids_a), (b, ids_b) = headers["tiktoken"], headers["hf_json"]
    assert a["fingerprint"] == b["fingerprint"] and a["sha256"] != b["sha256"] and ids_a == ids_b


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("bad.jsonl", '{"text": "ok"}\n{"text": "unterminated\n', "bad.jsonl:2: invalid JSON"),
        ("bad.jsonl", '{"text": "ok"}\n\n{"title": "no text"}\n', 'bad.jsonl:3: no "text" field'),
        ("bad.jsonl", '{"text": 5}\n', 'bad.jsonl:1: "text" must be a JSON string'),
        ("bad.jsonl", b'{"text": "caf\xe9"}\n', "bad.jsonl:1: invalid UTF-8 at column 14"),
        ("bad.txt", b"fine\nfine\nnot \xc3\x28 fine\n", "bad.txt:3: invalid UTF-8 at column 5"),
    ],
)
def test_bad_input_names_file_and_line(herd_bin, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = tokenize(herd_bin, tmp_path / "out", [path], check=False)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not list((tmp_path / "out").glob("shard-*"))


def test_required_flags_and_out_dir(herd_bin, corpus, tmp_path):
    files, _ = corpus
    r = run(herd_bin, "tokenize", "--source", "s", "--provenance", "p", "--out", tmp_path / "o",
            *files, check=False)
    assert r.returncode != 0 and "--license" in r.stderr
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = tokenize(herd_bin, out, files, check=False)
    assert r.returncode == 1 and "not empty" in r.stderr and "--force" in r.stderr
    tokenize(herd_bin, out, files, "--force")
    assert (out / "keep.txt").exists() and len(read_shards(out)) == 1
    r = tokenize(herd_bin, tmp_path / "o2", [tmp_path / "missing.txt"], check=False)
    assert r.returncode == 1 and "missing.txt" in r.stderr


def test_mix_licence_policy_and_card(herd_bin, corpus, tmp_path):
    files, _ = corpus
    tokenize(herd_bin, tmp_path / "open", files)
    r = run(herd_bin, "tokenize", "--source", "web", "--license", "LicenseRef-Scraped",
            "--provenance", "crawl", "--out", tmp_path / "web", files[0])
    assert "allow-list" in r.stderr  # warned at tokenize time, refused by the mix
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"sources": [{"name": "open", "shards": "open", "weight": 0.7},
                                           {"name": "web", "shards": "web", "weight": 0.3}],
                               "seed": 1}))
    r = run(herd_bin, "inspect", mix, check=False)
    assert r.returncode == 1 and "source 'web'" in r.stderr and "web/shard-00000.json" in r.stderr
    r = run(herd_bin, "inspect", mix, "--allow-license", "LicenseRef-Scraped", "--card")
    card = json.loads(r.stdout)
    assert [s["name"] for s in card["sources"]] == ["open", "web"]
    assert card["sources"][1]["license"] == "LicenseRef-Scraped"
    assert card["sources"][0]["provenance"] == "unit test corpus"
    assert card["sources"][0]["inputs"][0]["sha256"] == sha256_file(files[0])
