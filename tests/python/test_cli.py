"""The tokenize/detokenize CLI contract and its error messages."""
import json
import subprocess


def run(herd_bin, args, stdin):
    return subprocess.run([herd_bin, *args], input=stdin, capture_output=True)


def test_tokenize_contract(herd_bin, tokenizer_forms, enc):
    text = "This is a test sentence. <|eot_id|> caf\u00e9 \U0001F600".encode()
    for form, path in tokenizer_forms.items():
        r = run(herd_bin, ["tokenize", "--tokenizer", path], text)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count(b"\n") == 1
        assert json.loads(r.stdout) == enc.encode_ordinary(text.decode()), form
        r = run(herd_bin, ["tokenize", "--tokenizer", path, "--bos", "--allow-special"], text)
        assert json.loads(r.stdout) == [128000] + enc.encode(text.decode(), allowed_special="all"), form


def test_tokenize_raw_bytes_and_empty(herd_bin, llama3_model):
    r = run(herd_bin, ["tokenize", "--tokenizer", llama3_model], b"")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    data = bytes(range(256)) * 3
    r = run(herd_bin, ["tokenize", "--tokenizer", llama3_model], data)
    back = run(herd_bin, ["detokenize", "--tokenizer", llama3_model], r.stdout)
    assert back.returncode == 0 and back.stdout == data


def test_detokenize_specials(herd_bin, llama3_model):
    r = run(herd_bin, ["detokenize", "--tokenizer", llama3_model], b"[128000, 2028, 374, 264, 1296, 11914, 13, 128001]")
    assert r.stdout == b"<|begin_of_text|>This is a test sentence.<|end_of_text|>"


def test_model_directory(herd_bin, tokenizer_forms, tmp_path):
    (tmp_path / "tokenizer.json").write_bytes(open(tokenizer_forms["hf_json"], "rb").read())
    r = run(herd_bin, ["tokenize", "--tokenizer", str(tmp_path)], b"Hello world")
    assert r.returncode == 0 and json.loads(r.stdout) == [9906, 1917]


def error_of(herd_bin, args, stdin=b""):
    r = run(herd_bin, args, stdin)
    assert r.returncode != 0
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) >= 1 and not r.stdout
    return lines[0]


def test_errors(herd_bin, llama3_model, tmp_path):
    assert "cannot open" in error_of(herd_bin, ["tokenize", "--tokenizer", str(tmp_path / "missing.model")])
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"IQ== 0\nI@== 1\n")
    assert error_of(herd_bin, ["tokenize", "--tokenizer", str(bad)]) == f"herd: {bad}:2: corrupt base64 'I@=='"
    bad.write_bytes(b"IQ== 0\nIg== one\n")
    assert error_of(herd_bin, ["tokenize", "--tokenizer", str(bad)]) == f"herd: {bad}:2: bad rank 'one'"
    assert "out of range" in error_of(herd_bin, ["detokenize", "--tokenizer", llama3_model], b"[5, 128256]")
    assert "invalid JSON" in error_of(herd_bin, ["detokenize", "--tokenizer", llama3_model], b"[5, ")
    assert "not a token id" in error_of(herd_bin, ["detokenize", "--tokenizer", llama3_model], b'[5, "x"]')
    trunc = tmp_path / "t.gguf"
    trunc.write_bytes(open(llama3_model, "rb").read(0) + b"GGUF\x03\x00\x00\x00\x00")
    assert str(trunc) in error_of(herd_bin, ["tokenize", "--tokenizer", str(trunc)])
    r = run(herd_bin, ["tokenize", "--no-such-flag"], b"")
    assert r.returncode != 0
