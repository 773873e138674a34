"""herd train: a tiny model trained on a small tokenized text learns (the loss falls), writes its log
and checkpoints (an HF directory herd run loads, train_state.json, optimizer moments, data card),
resumes bit-identically (interrupted + resumed == straight through, with other thread counts and
gradient accumulation; packed too), validates, and refuses bad arguments."""
import json
import os
import subprocess

import pytest

WORDS = ("the quick brown fox jumps over the lazy dog and then it runs away into the forest "
         "where it sleeps until the morning sun").split()
# Steps short enough for CI: 64 tokens per step (2 windows of 32) on the tiny preset (vocab 128256).
COMMON = ["--preset", "tiny", "--steps", "12", "--seq-len", "32", "--batch-tokens", "64", "--lr", "3e-3",
          "--warmup", "2", "--log-every", "4"]


def lines(n, offset=0):
    return "".join(" ".join(WORDS[(i + j + offset) % len(WORDS)] for j in range(12)) + ".\n"
                   for i in range(n))


def tokenize(herd_bin, llama3_model, out, text_path):
    subprocess.run([herd_bin, "data", "tokenize", "--source", "fox", "--license", "CC0-1.0",
                    "--provenance", "generated test text", "--tokenizer", llama3_model,
                    "--out", out, text_path], check=True, capture_output=True)


def make_data(tmp_path_factory, herd_bin, llama3_model, name="train_data"):
    """Shards of a training and a validation text, and their mix files (mix.json, val.json)."""
    d = tmp_path_factory.mktemp(name)
    (d / "train.txt").write_text(lines(200))
    (d / "val.txt").write_text(lines(40, offset=5))
    tokenize(herd_bin, llama3_model, d / "shards", d / "train.txt")
    tokenize(herd_bin, llama3_model, d / "val_shards", d / "val.txt")
    (d / "mix.json").write_text(json.dumps({"sources": [{"name": "fox", "shards": "shards", "weight": 1}],
                                            "seed": 7}))
    (d / "val.json").write_text(json.dumps({"sources": [{"name": "fox", "shards": "val_shards",
                                                         "weight": 1}]}))
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory, herd_bin, llama3_model):
    return make_data(tmp_path_factory, herd_bin, llama3_model)


def train(herd_bin, data, out, *extra, check=True):
    r = subprocess.run([herd_bin, "train", "--mix", data / "mix.json", "--out", out, *COMMON, *extra],
                       capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def read_log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, herd_bin, data):
    out = tmp_path_factory.mktemp("straight")
    r = train(herd_bin, data, out, "--threads", "2", "--val-mix", data / "val.json", "--val-every", "6")
    return out, r.stderr


def test_loss_falls_and_log_and_progress(straight):
    out, stderr = straight
    log = read_log(out)
    steps = [e for e in log if "loss" in e]
    assert [e["step"] for e in steps] == list(range(1, 13))
    assert steps[-1]["loss"] < steps[0]["loss"] - 1.0, [e["loss"] for e in steps]
    for e in steps:
        assert e["tokens"] == 64 * e["step"] and e["grad_norm"] > 0 and e["lr"] > 0
        assert e["tokens_per_s"] > 0 and e["elapsed_s"] >= 0
    assert steps[0]["lr"] == pytest.approx(1.5e-3)  # warmup: (step 1) / 2 of the peak
    val = [e for e in log if "val_loss" in e]
    assert [e["step"] for e in val] == [6, 12] and val[1]["val_loss"] < val[0]["val_loss"]
    assert "step 4/12" in stderr and "tok/s" in stderr and "ETA" in stderr
    assert "validation loss" in stderr


def test_checkpoint_layout_and_runs_in_herd_run(straight, herd_bin):
    out, _ = straight
    assert (out / "latest").read_text().strip() == "step-000012"
    ck = out / "step-000012"
    for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "optimizer.safetensors", "train_state.json", "data_card.json"]:
        assert (ck / name).exists(), name
    state = json.loads((ck / "train_state.json").read_text())
    assert state["format"] == "herd-train-state" and state["step"] == 12
    assert state["tokens_seen"] == 12 * 64 and state["optimizer_steps"] == 12
    assert state["sampler"]["format"] == "herd-sampler-state"
    assert state["hparams"]["seq_len"] == 32 and state["hparams"]["batch_tokens"] == 64
    card = json.loads((ck / "data_card.json").read_text())
    assert card["format"] == "herd-data-card" and card["tokens_seen"] == 12 * 64
    assert card["sources"][0]["license"] == "CC0-1.0"
    assert card["training"]["seq_len"] == 32 and card["training"]["step"] == 12
    assert card["herd_commit"] and card["herd_commit"] != "unknown"
    config = json.loads((ck / "config.json").read_text())
    assert config["torch_dtype"] == "float32" and config["hidden_size"] == 64
    r = subprocess.run([herd_bin, "run", "--model", ck, "--prompt", "the quick", "--max-tokens", "4",
                        "--temperature", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    # herd run says what data made the model, in one line.
    line = [l for l in r.stderr.splitlines() if l.startswith("herd: data card: ")]
    assert len(line) == 1, r.stderr
    assert "768 tokens seen:" in line[0] and "(CC0-1.0, 100%" in line[0], line[0]


@pytest.fixture(scope="module")
def pack_data(tmp_path_factory, herd_bin, llama3_model):
    """Short documents (.jsonl, one per line: 1 to 3 sentences, ~14 to ~40 tokens) so that a packed
    window of 32 tokens joins two or three of them."""
    d = tmp_path_factory.mktemp("pack_data")
    for name, n, offset in [("train", 150, 0), ("val", 30, 5)]:
        docs = [lines(1 + i % 3, offset=offset + i) for i in range(n)]
        (d / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
        tokenize(herd_bin, llama3_model, d / f"{name}_shards", d / f"{name}.jsonl")
        (d / f"{name}.json").write_text(json.dumps(
            {"sources": [{"name": "fox", "shards": f"{name}_shards", "weight": 1}], "seed": 7}))
    (d / "mix.json").write_text((d / "train.json").read_text())
    return d


@pytest.fixture(scope="module")
def packed(tmp_path_factory, herd_bin, pack_data):
    out = tmp_path_factory.mktemp("packed")
    r = train(herd_bin, pack_data, out, "--pack", "--threads", "2", "--val-mix", pack_data / "val.json",
              "--val-every", "6")
    return out, r.stderr


def test_pack_trains_validates_and_records_it(packed):
    # Packed windows (attention masked at the document joins) train and validate like unpacked ones;
    # the checkpoint says it packed, so a resume can only continue packed.
    out, stderr = packed
    log = read_log(out)
    steps = [e for e in log if "loss" in e]
    assert [e["step"] for e in steps] == list(range(1, 13))
    assert steps[-1]["loss"] < steps[0]["loss"] - 1.0, [e["loss"] for e in steps]
    val = [e for e in log if "val_loss" in e]
    assert [e["step"] for e in val] == [6, 12] and val[1]["val_loss"] < val[0]["val_loss"]
    ck = out / "step-000012"
    assert json.loads((ck / "train_state.json").read_text())["hparams"]["pack"] is True
    assert json.loads((ck / "data_card.json").read_text())["sampler"]["pack"] is True


def test_pack_masks_attention_at_document_joins(herd_bin, llama3_model, tmp_path):
    # Identical documents of exactly 16 tokens (15 one-token words + eos): a packed window of 32 is
    # two whole documents, one of 16 a single one. With attention masked at the join, a batch of
    # two 32-token windows runs the same four 16-token sequences, rows in the same order, as a batch
    # of four 16-token windows (the targets are the same too: the eos predicts the next document's
    # first token), so the first step's loss and the validation loss after its update are equal bit
    # for bit. Without the mask (training and validation) the loss differs by ~3e-4.
    doc = " ".join(WORDS[:15])
    (tmp_path / "docs.jsonl").write_text((json.dumps({"text": doc}) + "\n") * 40)
    tokenize(herd_bin, llama3_model, tmp_path / "shards", tmp_path / "docs.jsonl")
    (tmp_path / "mix.json").write_text(json.dumps(
        {"sources": [{"name": "fox", "shards": "shards", "weight": 1}], "seed": 3}))
    card = subprocess.run([herd_bin, "data", "inspect", tmp_path / "mix.json", "--card"],
                          capture_output=True, text=True, check=True).stdout
    source = json.loads(card[card.index("{"):])["sources"][0]
    assert (source["documents"], source["tokens"]) == (40, 40 * 16), source

    def first_step(seq_len):
        out = tmp_path / f"run{seq_len}"
        r = subprocess.run([herd_bin, "train", "--mix", tmp_path / "mix.json", "--out", out, "--pack",
                            "--preset", "tiny", "--steps", "1", "--seq-len", str(seq_len),
                            "--batch-tokens", "64", "--lr", "1e-3", "--val-mix", tmp_path / "mix.json",
                            "--val-every", "1", "--val-batches", "1", "--threads", "2"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        log = read_log(out)
        return [e["loss"] for e in log if "loss" in e][0], [e["val_loss"] for e in log if "val_loss" in e][0]

    loss16, val16 = first_step(16)
    loss32, val32 = first_step(32)
    assert loss32 == loss16 and val32 == val16


# The extra data and flags of each straight-through run.
RUNS = {"straight": ("data", []), "packed": ("pack_data", ["--pack"])}


@pytest.mark.parametrize("run", RUNS)
def test_resume_is_bit_identical(run, request, herd_bin, tmp_path):
    out, _ = request.getfixturevalue(run)
    data, extra = request.getfixturevalue(RUNS[run][0]), RUNS[run][1]
    want = [e["loss"] for e in read_log(out) if "loss" in e]
    # Interrupted after 5 steps on 1 thread, resumed with 2 threads from the run directory: the
    # same losses, bit for bit, as the straight run.
    r = train(herd_bin, data, tmp_path, *extra, "--threads", "1", "--stop-after", "5")
    assert "stopped after 5 steps" in r.stderr
    assert (tmp_path / "latest").read_text().strip() == "step-000005"
    r = train(herd_bin, data, tmp_path, *extra, "--threads", "2", "--resume", tmp_path)
    assert "at step 5" in r.stderr
    got = [e["loss"] for e in read_log(tmp_path) if "loss" in e]
    assert len(got) == 12
    assert got == want


def test_pack_resume_needs_pack(packed, herd_bin, pack_data, tmp_path):
    out, _ = packed
    r = train(herd_bin, pack_data, tmp_path, "--resume", out, check=False)  # no --pack
    assert r.returncode != 0 and "pack true" in r.stderr and "pack false" in r.stderr, r.stderr


def test_gradient_accumulation(straight, herd_bin, data, tmp_path):
    # Two micro-batches of 32 tokens per step: the same windows and the same mean loss as one batch
    # of 64, up to the order of float32 sums.
    out, _ = straight
    want = [e["loss"] for e in read_log(out) if "loss" in e][:3]
    r = train(herd_bin, data, tmp_path, "--micro-batch-tokens", "32", "--stop-after", "3")
    assert "64 tokens (32 per micro-batch" in r.stderr
    got = [e["loss"] for e in read_log(tmp_path) if "loss" in e]
    assert got == pytest.approx(want, rel=1e-5)


def test_lanes(straight, herd_bin, data, tmp_path):
    # The straight run's 2 windows per step go in 2 lanes (the default for an even count), whose
    # gradients are summed: 1, 3 or 4 threads give its bits exactly (1 runs the lanes one after the
    # other, 4 gives each lane 2); one lane regroups the float32 sums only.
    out, _ = straight
    want = [(e["loss"], e["grad_norm"]) for e in read_log(out) if "loss" in e][:3]
    for threads in ("1", "3", "4"):
        run = tmp_path / f"t{threads}"
        train(herd_bin, data, run, "--threads", threads, "--stop-after", "3")
        assert [(e["loss"], e["grad_norm"]) for e in read_log(run) if "loss" in e] == want, threads
    r = train(herd_bin, data, tmp_path / "one", "--lanes", "1", "--stop-after", "3")
    got = [e["loss"] for e in read_log(tmp_path / "one") if "loss" in e]
    assert got == pytest.approx([w[0] for w in want], rel=1e-5)
    card = json.loads((tmp_path / "one" / "step-000003" / "data_card.json").read_text())
    assert card["training"]["lanes"] == 1
    r = train(herd_bin, data, tmp_path / "bad", "--lanes", "3", check=False)
    assert r.returncode != 0 and "--lanes 3" in r.stderr and "2 windows" in r.stderr, r.stderr


@pytest.mark.parametrize("isa", ["scalar", "avx2"])
def test_every_isa_level_trains_the_same_bits(straight, herd_bin, data, tmp_path, isa):
    # Every kernel of a training step computes the same bits at every ISA level (GEMM, attention,
    # exp sums, SwiGLU, RMSNorm backward, AdamW): HERD_ISA lowers the level (never above the CPU's),
    # and three steps give exactly the losses and gradient norms of the default level.
    out, _ = straight
    want = [(e["loss"], e["grad_norm"]) for e in read_log(out) if "loss" in e][:3]
    r = subprocess.run([herd_bin, "train", "--mix", data / "mix.json", "--out", tmp_path, *COMMON,
                        "--threads", "2", "--stop-after", "3"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "HERD_ISA": isa})
    assert r.returncode == 0, r.stderr
    got = [(e["loss"], e["grad_norm"]) for e in read_log(tmp_path) if "loss" in e]
    assert len(want) == 3 and got == want


def test_bad_arguments(herd_bin, data, tmp_path):
    r = subprocess.run([herd_bin, "train", "--mix", data / "mix.json", "--out", tmp_path, "--preset", "tiny",
                        "--steps", "2", "--seq-len", "32", "--batch-tokens", "48", "--lr", "1e-3"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "multiple of --seq-len" in r.stderr
    r = subprocess.run([herd_bin, "train", "--mix", data / "mix.json", "--out", tmp_path, "--steps", "2",
                        "--seq-len", "32", "--batch-tokens", "64", "--lr", "1e-3"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--preset" in r.stderr
    r = subprocess.run([herd_bin, "train", "--mix", data / "mix.json", "--out", tmp_path, "--preset", "nope",
                        "--steps", "2", "--seq-len", "32", "--batch-tokens", "64", "--lr", "1e-3"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "unknown preset" in r.stderr
    r = train(herd_bin, data, tmp_path / "r", "--resume", tmp_path / "missing", check=False)
    assert r.returncode != 0 and "missing" in r.stderr


def test_small_vocabulary_and_shape_flags(herd_bin, data, tmp_path):
    """A tokenizer trained with herd sets the vocabulary; --dim / --layers / ... override the preset."""
    tok = tmp_path / "tok" / "tokenizer.model"
    subprocess.run([herd_bin, "tokenizer", "train", "--vocab-size", "600", "--out", tok,
                    data / "train.txt"], check=True, capture_output=True)
    subprocess.run([herd_bin, "data", "tokenize", "--source", "fox", "--license", "CC0-1.0",
                    "--provenance", "generated test text", "--tokenizer", tok,
                    "--out", tmp_path / "shards", data / "train.txt"], check=True, capture_output=True)
    (tmp_path / "mix.json").write_text(json.dumps(
        {"sources": [{"name": "fox", "shards": "shards", "weight": 1}], "seed": 1}))
    vocab = len(tok.read_text().splitlines()) + 256  # mergeable ranks (the text may run out) + specials
    assert 256 + 256 < vocab <= 600
    out = tmp_path / "run"
    r = subprocess.run([herd_bin, "train", "--mix", tmp_path / "mix.json", "--out", out,
                        "--preset", "tiny", "--tokenizer", tok, "--dim", "32", "--layers", "1",
                        "--heads", "2", "--kv-heads", "1", "--ffn-dim", "64", "--steps", "3",
                        "--seq-len", "16", "--batch-tokens", "32", "--lr", "1e-2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "step-000003" / "config.json").read_text())
    assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"],
            config["num_attention_heads"], config["num_key_value_heads"],
            config["intermediate_size"]) == (vocab, 32, 1, 2, 1, 64)
    bad = subprocess.run([herd_bin, "train", "--mix", tmp_path / "mix.json", "--out", tmp_path / "bad",
                          "--preset", "tiny", "--tokenizer", tok, "--dim", "30", "--heads", "4",
                          "--steps", "1", "--seq-len", "16", "--batch-tokens", "32", "--lr", "1e-2"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--dim 30 is not a multiple of --heads 4" in bad.stderr
