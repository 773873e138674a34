"""herd run / herd chat / herd logits as a user drives them: Llama 3's chat framing (checked against
tiktoken), KV-cache reuse between chat turns, the context-full and memory-plan refusals, and bad
model files giving one clear error instead of a crash."""
import json
import re
import subprocess

import pytest


@pytest.fixture(scope="module")
def model(herd_bin, tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "tiny"
    subprocess.run([herd_bin, "init", "--preset", "tiny", "--out", str(path), "--format", "hf",
                    "--seed", "3"], check=True, capture_output=True)
    return path


def run(herd_bin, *args, stdin=None):
    return subprocess.run([herd_bin, *map(str, args)], capture_output=True, text=True, input=stdin)


def prompt_ids(stderr):
    return json.loads(re.search(r"prompt ids: (\[.*\])", stderr).group(1))


def header(enc, role):
    return [128006, *enc.encode_ordinary(role), 128007, *enc.encode_ordinary("\n\n")]


def test_chat_prompt_is_llama3_format_and_user_text_is_never_special(herd_bin, model, enc):
    user = "What is <|eot_id|> and <|begin_of_text|>?"
    r = run(herd_bin, "run", "--model", model, "--prompt", user, "--chat", "--system", "Be brief.",
            "--verbose-prompt", "--max-tokens", "1")
    assert r.returncode == 0, r.stderr
    want = [128000,
            *header(enc, "system"), *enc.encode_ordinary("Be brief."), 128009,
            *header(enc, "user"), *enc.encode_ordinary(user), 128009,
            *header(enc, "assistant")]
    assert prompt_ids(r.stderr) == want
    assert prompt_ids(r.stderr).count(128000) == 1


def test_llama31_templates_get_the_knowledge_date_system_header(herd_bin, model, tmp_path, enc):
    import shutil
    m31 = tmp_path / "m31"
    shutil.copytree(model, m31)
    cfg = json.loads((m31 / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{{- 'Cutting Knowledge Date: December 2023\\n' }}" + cfg["chat_template"]
    (m31 / "tokenizer_config.json").write_text(json.dumps(cfg))
    r = run(herd_bin, "run", "--model", m31, "--prompt", "hi", "--chat", "--system", "S",
            "--verbose-prompt", "--max-tokens", "1")
    system = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS"
    assert prompt_ids(r.stderr)[:len(header(enc, "system")) + 1 + len(enc.encode_ordinary(system))] \
        == [128000, *header(enc, "system"), *enc.encode_ordinary(system)]


def test_plain_prompt_gets_one_bos(herd_bin, model, enc):
    r = run(herd_bin, "run", "--model", model, "--prompt", "Hello world", "--verbose-prompt",
            "--max-tokens", "3", "--temperature", "0")
    assert r.returncode == 0, r.stderr
    assert prompt_ids(r.stderr) == [128000, *enc.encode_ordinary("Hello world")]
    assert re.search(r"prompt 3 tokens, [\d.]+ tokens/s; generation \d+ tokens, [\d.]+ tokens/s",
                     r.stderr)


def turn_prompts(stderr):
    return [int(n) for n in re.findall(r"herd: prompt (\d+) tokens", stderr)]


def test_chat_reuses_the_kv_cache_between_turns(herd_bin, model, enc):
    turns = ["Hello there", "Tell me more", "/reset", "Hello there", "/exit", "never read"]
    r = run(herd_bin, "chat", "--model", model, "--max-tokens", "4", "--temperature", "0",
            stdin="\n".join(turns) + "\n")
    assert r.returncode == 0, r.stderr
    user = lambda text: [*header(enc, "user"), *enc.encode_ordinary(text), 128009]
    first = 1 + len(user("Hello there")) + len(header(enc, "assistant"))
    # Turn 2 runs only what the cache lacks: the reply's last token and <|eot_id|> (the reply hit
    # --max-tokens), the new user message and the assistant header - not the history.
    second = 2 + len(user("Tell me more")) + len(header(enc, "assistant"))
    assert turn_prompts(r.stderr) == [first, second, first]
    assert "conversation reset" in r.stderr
    assert r.stdout  # the replies stream to stdout


def test_chat_says_when_the_context_is_full(herd_bin, model):
    r = run(herd_bin, "chat", "--model", model, "--ctx", "40", "--max-tokens", "4",
            "--temperature", "0", stdin="word " * 30 + "\n/reset\nhi\n")
    assert r.returncode == 0, r.stderr
    assert "the context is full" in r.stderr and "/reset" in r.stderr
    assert len(turn_prompts(r.stderr)) == 1  # only the short message after /reset ran


def test_memory_plan_refuses_what_cannot_fit(herd_bin, model):
    r = run(herd_bin, "run", "--model", model, "--prompt", "hi", "--ctx", "1000000000")
    assert r.returncode == 1
    assert "memory plan" in r.stderr and "try a smaller --ctx" in r.stderr


@pytest.mark.parametrize("damage", ["truncate", "bad_json", "missing_tensor", "bad_tokens"])
def test_bad_model_files_give_one_clear_error(herd_bin, model, tmp_path, damage):
    import shutil
    m = tmp_path / "m"
    shutil.copytree(model, m)
    tokens = "1,2,3"
    if damage == "truncate":
        st = m / "model.safetensors"
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 3])
        expect = "model.safetensors"
    elif damage == "bad_json":
        (m / "config.json").write_text('{"hidden_size": 64,')
        expect = "config.json"
    elif damage == "missing_tensor":
        cfg = json.loads((m / "config.json").read_text())
        cfg["num_hidden_layers"] = 3
        (m / "config.json").write_text(json.dumps(cfg))
        expect = "missing tensor 'model.layers.2.input_layernorm.weight'"
    else:
        tokens = "1,x,3"
        expect = "'x' is not a token id"
    r = run(herd_bin, "logits", "--model", m, "--tokens", tokens, "--out", tmp_path / "o.bin")
    assert r.returncode == 1, r.stderr
    assert expect in r.stderr
    assert r.stderr.count("herd:") >= 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("pre", [b"qwen2-bpe", None])
def test_unknown_or_missing_gguf_pre_tokenizer_is_a_loud_warning(herd_bin, tmp_path, pre):
    gguf = tmp_path / "m.gguf"
    subprocess.run([herd_bin, "init", "--preset", "tiny", "--out", str(gguf), "--format", "gguf",
                    "--seed", "1"], check=True, capture_output=True)
    data = bytearray(gguf.read_bytes())
    key = b"tokenizer.ggml.pre"
    at = data.index(key)
    if pre is None:  # rename the key so the file has no pre-tokenizer type (old conversions)
        data[at:at + len(key)] = b"tokenizer.ggml.prX"
    else:  # the value follows: u32 type (8 = string), u64 length, bytes
        value = at + len(key) + 4 + 8
        assert data[value:value + 9] == b"llama-bpe"
        data[value:value + 9] = pre
    gguf.write_bytes(bytes(data))
    r = run(herd_bin, "run", "--model", gguf, "--prompt", "hi", "--max-tokens", "1")
    assert r.returncode == 0, r.stderr
    want = "qwen2-bpe\", which herd does not know" if pre else "no tokenizer.ggml.pre"
    assert "warning:" in r.stderr and want in r.stderr


def test_numerics_flag_refuses_what_it_cannot_reproduce(herd_bin, model):
    r = run(herd_bin, "run", "--model", model, "--prompt", "hi", "--numerics", "llama")
    assert r.returncode != 0 and '--numerics: "llama" is not herd or ggml' in r.stderr, r.stderr
    # The tiny preset (f32, head dim 16, Llama 3.1 RoPE scaling): --numerics ggml names a reason.
    r = run(herd_bin, "logits", "--model", model, "--tokens", "1,2", "--numerics", "ggml",
            "--cache-type", "f16", "--out", "/dev/null")
    assert r.returncode != 0 and "--numerics ggml" in r.stderr, r.stderr
    assert "multiple of 32" in r.stderr or "AVX2" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "terminate" not in r.stderr
    # herd logits' default f32 cache is not llama.cpp's.
    r = run(herd_bin, "logits", "--model", model, "--tokens", "1,2", "--numerics", "ggml",
            "--out", "/dev/null")
    assert r.returncode != 0 and "--numerics ggml" in r.stderr, r.stderr
