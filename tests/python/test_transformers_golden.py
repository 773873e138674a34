"""herd's logits against Hugging Face transformers' LlamaForCausalLM, through a committed golden.

tests/golden/model/transformers_logits.json is written by tools/gen_transformers_golden.py (which
needs torch and transformers, so it is not run here): stock transformers, float32, on tiny random
Llama 3 models. This test rebuilds each model directory with the same numpy code path
(tiny_config + random_hf_weights + write_model), checks that model.safetensors is byte-identical to
the one transformers read (sha256), converts it to GGUF and Meta with `herd convert --dtype f32`,
and requires herd's logits in all three formats to be within 1e-4 relative L2 of transformers' at
every stored position, with the same top-1 token at the last position.
"""
import hashlib
import json
import pathlib
import subprocess

import numpy as np
import pytest

import llama_ref
from llama_ref import RopeScaling, rel_l2, tiny_config
from test_llama_ref import write_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN_PATH = ROOT / "tests/golden/model/transformers_logits.json"
GOLDEN = json.loads(GOLDEN_PATH.read_text())
TOL = 1e-4
REGENERATE = ("rerun `.venv-tools/bin/python tools/gen_transformers_golden.py` (it needs "
              "transformers and torch) and commit the new "
              "tests/golden/model/transformers_logits.json")
FORMATS = ("hf", "gguf", "meta")


def config_of(overrides):
    o = dict(overrides)
    if o.get("rope_scaling") is not None:
        o["rope_scaling"] = RopeScaling(**o["rope_scaling"])
    return tiny_config(**o)


@pytest.fixture(scope="module", params=sorted(GOLDEN["variants"]))
def model(request, herd_bin, tmp_path_factory):
    """(variant name, golden entry, config, {format: model path}) for one golden variant."""
    name = request.param
    g = GOLDEN["variants"][name]
    cfg = config_of(g["config_overrides"])
    base = tmp_path_factory.mktemp(name)
    hf = write_model(base / "hf", cfg, llama_ref.random_hf_weights(cfg, seed=g["weights_seed"]),
                     g["dtype"])
    sha = hashlib.sha256((hf / "model.safetensors").read_bytes()).hexdigest()
    assert sha == g["safetensors_sha256"], (
        f"{name}: the regenerated model.safetensors (sha256 {sha}) differs from the one "
        f"transformers ran (sha256 {g['safetensors_sha256']}), so the golden logits no longer "
        f"apply. numpy's random generator, llama_ref.random_hf_weights/tiny_config or "
        f"test_llama_ref.write_model changed (numpy here: {np.__version__}, golden made with "
        f"{GOLDEN['versions']['numpy']}); {REGENERATE}")
    written = json.loads((hf / "config.json").read_text())
    assert written == g["config_json"], (
        f"{name}: config.json written by test_llama_ref.write_model differs from the one "
        f"transformers read; {REGENERATE}")
    paths = {"hf": hf, "gguf": base / "m.gguf", "meta": base / "meta"}
    for fmt in ("gguf", "meta"):
        subprocess.run([herd_bin, "convert", str(hf), str(paths[fmt]), "--format", fmt,
                        "--dtype", "f32"], check=True, capture_output=True)
    return name, g, cfg, paths


def herd_logits(herd_bin, path, tokens, out, vocab):
    r = subprocess.run([herd_bin, "logits", "--model", str(path), "--tokens",
                        ",".join(map(str, tokens)), "--all", "--out", str(out)],
                       capture_output=True, text=True, check=True)
    logits = np.fromfile(out, dtype="<f4").astype(np.float64)
    assert logits.size == len(tokens) * vocab, f"{path}: {logits.size} logits"
    return logits.reshape(len(tokens), vocab), json.loads(r.stdout)["top"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_herd_matches_transformers(herd_bin, model, fmt, tmp_path):
    name, g, cfg, paths = model
    for seq_name, seq in g["sequences"].items():
        tokens, positions = seq["tokens"], seq["positions"]
        assert positions[-1] == len(tokens) - 1
        expected = np.array(seq["logits"], dtype=np.float64)
        got, top = herd_logits(herd_bin, paths[fmt], tokens, tmp_path / f"{seq_name}.bin",
                               cfg.vocab_size)
        where = f"{name} ({g['dtype']} file) as {fmt}, {seq_name} sequence ({len(tokens)} tokens)"
        for i, p in enumerate(positions):
            err = rel_l2(got[p], expected[i])
            assert err < TOL, f"{where}, position {p}: relative L2 error {err:.3g} vs transformers"
        want = seq["top5_last"][0][0]
        assert int(np.argmax(got[-1])) == want, f"{where}: herd's top-1 is not transformers' {want}"
        assert top[0][0] == want, f"{where}: top printed by herd logits is {top[0]}, not {want}"


def test_llama_ref_matches_transformers(model):
    """The float64 reference on the regenerated files agrees with the golden as well (~4e-7), so a
    failure above that this test does not share points at herd rather than at the golden."""
    name, g, cfg, paths = model
    ref_cfg, w = llama_ref.load_model(paths["hf"])
    assert ref_cfg == cfg
    for seq_name, seq in g["sequences"].items():
        ref = llama_ref.forward_hf(cfg, w, seq["tokens"], positions_out=seq["positions"])
        for i, p in enumerate(seq["positions"]):
            err = rel_l2(ref[i], np.array(seq["logits"][i]))
            assert err < 1e-5, (f"{name} {seq_name} position {p}: "
                                f"llama_ref vs transformers {err:.3g}")
