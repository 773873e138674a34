"""herd bench as scripts drive it: the --json contract (one object on stdout, llama-bench test names,
positive finite tokens/s), --depth naming, skipping a test with 0 tokens, the text table, and bad
input giving a clear message and a non-zero exit."""
import json
import math
import subprocess

import pytest


@pytest.fixture(scope="module")
def model(herd_bin, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "tiny"
    subprocess.run([herd_bin, "init", "--preset", "tiny", "--out", str(path), "--format", "hf",
                    "--seed", "5"], check=True, capture_output=True)
    return path


def bench(herd_bin, *args):
    return subprocess.run([herd_bin, "bench", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def check_stat(stat, reps):
    assert math.isfinite(stat["mean"]) and stat["mean"] > 0
    assert math.isfinite(stat["stddev"]) and stat["stddev"] >= 0
    assert len(stat["samples"]) == reps
    assert all(math.isfinite(x) and x > 0 for x in stat["samples"])
    assert min(stat["samples"]) <= stat["mean"] <= max(stat["samples"])


def test_json_contract(herd_bin, model):
    r = bench(herd_bin, "--model", model, "--prompt-tokens", 16, "--gen-tokens", 4, "--reps", 2,
              "--threads", 2, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # stdout is exactly one JSON object: progress goes to stderr
    assert isinstance(out, dict)
    assert out["model"] == str(model)
    assert out["threads"] == 2
    assert out["weights_bytes"] > 0 and out["params"] > 0
    assert [t["test"] for t in out["results"]] == ["pp16", "tg4"]
    pp, tg = out["results"]
    assert (pp["n_prompt"], pp["n_gen"], pp["n_tokens"], pp["depth"]) == (16, 0, 16, 0)
    assert (tg["n_prompt"], tg["n_gen"], tg["n_tokens"], tg["depth"]) == (0, 4, 4, 0)
    for t in out["results"]:
        assert t["reps"] == 2
        check_stat(t["tokens_per_second"], 2)
        # tokens/s samples are n_tokens / seconds of the same rep.
        for tps, s in zip(t["tokens_per_second"]["samples"], t["seconds"]["samples"]):
            assert tps == pytest.approx(t["n_tokens"] / s, rel=1e-9)
    assert "rep 2/2" in r.stderr and "warm-up" in r.stderr


def test_depth_names_tests_like_llama_bench(herd_bin, model):
    r = bench(herd_bin, "--model", model, "-p", 8, "-n", 2, "-d", 24, "-r", 1, "-t", 1, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["threads"] == 1
    assert [t["test"] for t in out["results"]] == ["pp8 @ d24", "tg2 @ d24"]
    assert all(t["depth"] == 24 for t in out["results"])
    assert out["ctx"] == 24 + 8
    for t in out["results"]:
        check_stat(t["tokens_per_second"], 1)
        assert t["tokens_per_second"]["stddev"] == 0


def test_zero_tokens_skips_the_test(herd_bin, model):
    r = bench(herd_bin, "--model", model, "--prompt-tokens", 8, "--gen-tokens", 0, "--reps", 1,
              "--json")
    assert r.returncode == 0, r.stderr
    assert [t["test"] for t in json.loads(r.stdout)["results"]] == ["pp8"]
    r = bench(herd_bin, "--model", model, "--prompt-tokens", 0, "--gen-tokens", 2, "--reps", 1,
              "--json")
    assert r.returncode == 0, r.stderr
    assert [t["test"] for t in json.loads(r.stdout)["results"]] == ["tg2"]


def test_text_table(herd_bin, model):
    r = bench(herd_bin, "--model", model, "-p", 8, "-n", 2, "-r", 2, "-t", 1)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4, r.stdout  # header, rule, pp8, tg2
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    assert "t/s" in lines[0] and "threads" in lines[0] and "params" in lines[0]
    assert "| pp8 " in lines[2] and "| tg2 " in lines[3]
    assert str(model) in lines[2] and "bf16" in lines[2] and " GiB" in lines[2]
    assert "±" in lines[2]


@pytest.mark.parametrize("args, message", [
    (["--model", "/nonexistent/model.gguf"], "/nonexistent/model.gguf"),
    (["--reps", 0], "--reps"),
    (["--prompt-tokens", 0, "--gen-tokens", 0], "nothing to run"),
    (["--prompt-tokens", -1], "--prompt-tokens"),
    (["--depth", 64, "--prompt-tokens", 16, "--ctx", 32], "--ctx 32 is too small"),
])
def test_bad_input_fails_with_a_message(herd_bin, model, args, message):
    if "--model" not in args:
        args = ["--model", model, *args]
    r = bench(herd_bin, *args, "--json")
    assert r.returncode != 0
    assert r.stdout == ""
    assert "herd:" in r.stderr and message in r.stderr, r.stderr


def test_unknown_flag_is_a_usage_error(herd_bin, model):
    r = bench(herd_bin, "--model", model, "--no-such-flag")
    assert r.returncode != 0
    assert "no-such-flag" in r.stderr
