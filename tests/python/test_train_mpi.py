"""herd train data-parallel under MPI: `mpirun -np 2` with the same global batch trains the same run as
one process (the same windows, losses equal up to the order of float32 sums), the ranks keep identical
weights, rank 0 alone writes the log, the progress and one checkpoint, a run resumes with another number of
ranks, and a global batch that does not split over the ranks is refused."""
import json
import os
import shutil
import subprocess

import pytest

from test_train_cli import make_data, read_log

MPIRUN = shutil.which("mpirun")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun not installed (scripts/setup installs openmpi-bin)")

# 4 windows of 16 per step: 2 per rank with 2 ranks. A checkpoint at step 3 to resume from.
COMMON = ["--preset", "tiny", "--steps", "6", "--seq-len", "16", "--batch-tokens", "64", "--lr", "3e-3",
          "--warmup", "2", "--log-every", "1", "--save-every", "3", "--val-mix", "{val}", "--val-every", "3",
          "--val-batches", "2"]
# The two runs see the same windows; what differs is how float32 sums are grouped (each rank sums its half
# of the batch, the all-reduce adds the halves), ~1e-7 relative per gradient element. AdamW and 6 steps
# carry that into the loss (observed: ~1e-9 relative after 6 steps); 1e-5 is the bound test_train_cli uses for
# gradient accumulation, the same regrouping of sums, and leaves room for other thread counts and CPUs.
REL = 1e-5


def mpi_env():
    env = dict(os.environ)
    # Containers: no cross-memory attach between ranks, and no complaints about slots or root.
    env.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def mpirun(n, herd_bin, *args):
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(n), herd_bin, *args]
    return subprocess.run([str(a) for a in cmd], capture_output=True, text=True, timeout=120, env=mpi_env())


@pytest.fixture(scope="module")
def data(tmp_path_factory, herd_bin, llama3_model):
    return make_data(tmp_path_factory, herd_bin, llama3_model, "mpi_data")


def args(data, out, *extra):
    common = [str(data / "val.json") if a == "{val}" else a for a in COMMON]
    return ["train", "--mix", data / "mix.json", "--out", out, *common, *extra]


@pytest.fixture(scope="module")
def single(tmp_path_factory, herd_bin, data):
    out = tmp_path_factory.mktemp("single")
    r = subprocess.run([str(a) for a in [herd_bin, *args(data, out, "--threads", "2")]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def ranks2(tmp_path_factory, herd_bin, data):
    out = tmp_path_factory.mktemp("ranks2")
    r = mpirun(2, herd_bin, *args(data, out, "--threads", "1"))
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stderr


def test_two_ranks_train_as_one_process(single, ranks2):
    out, _ = ranks2
    want, got = read_log(single), read_log(out)
    # Every line written once (rank 0), in the same order as one process.
    assert [sorted(e) for e in got] == [sorted(e) for e in want]
    assert [e["step"] for e in got if "loss" in e] == list(range(1, 7))
    for w, g in zip(want, got):
        assert g["step"] == w["step"]
        if "loss" in w:
            assert g["tokens"] == w["tokens"] == 64 * w["step"]
            assert g["lr"] == w["lr"]
            assert g["loss"] == pytest.approx(w["loss"], rel=REL)
            assert g["grad_norm"] == pytest.approx(w["grad_norm"], rel=1e-3)
        else:
            assert g["val_loss"] == pytest.approx(w["val_loss"], rel=REL)
    losses = [e["loss"] for e in got if "loss" in e]
    assert losses[-1] < losses[0]


def test_rank0_writes_once_and_ranks_agree(ranks2):
    out, stderr = ranks2
    assert "2 MPI ranks" in stderr
    # Progress once (rank 0 only); the replicas checked before each checkpoint, each written once.
    assert stderr.count("herd: step 6/6") == 1 and stderr.count("validation loss") == 2
    assert stderr.count("herd: saved") == 2
    assert stderr.count("2 ranks hold identical weights") == 2
    assert (out / "latest").read_text().strip() == "step-000006"
    assert sorted(p.name for p in out.iterdir()) == ["latest", "log.jsonl", "step-000003", "step-000006"]
    state = json.loads((out / "step-000006" / "train_state.json").read_text())
    assert state["step"] == 6 and state["tokens_seen"] == 6 * 64
    assert state["hparams"]["ranks"] == 2 and state["hparams"]["batch_tokens"] == 64
    assert state["hparams"]["micro_batch_tokens"] == 32  # per rank


def test_resume_with_another_world_size(single, ranks2, herd_bin, data, tmp_path):
    # The 2-rank run's step-3 checkpoint, continued by one process: the single run's last 3 steps.
    want = [e["loss"] for e in read_log(single) if "loss" in e]
    shutil.copytree(ranks2[0] / "step-000003", tmp_path / "step-000003")
    r = subprocess.run([str(a) for a in [herd_bin, *args(data, tmp_path / "run", "--threads", "2", "--resume",
                                                           tmp_path / "step-000003")]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "at step 3" in r.stderr
    got = [e["loss"] for e in read_log(tmp_path / "run") if "loss" in e]
    assert [e["step"] for e in read_log(tmp_path / "run") if "loss" in e] == [4, 5, 6]
    assert got == pytest.approx(want[3:], rel=REL)


def test_global_batch_must_split_over_ranks(herd_bin, data, tmp_path):
    r = mpirun(2, herd_bin, "train", "--mix", data / "mix.json", "--out", tmp_path, "--preset", "tiny",
               "--steps", "2", "--seq-len", "16", "--batch-tokens", "48", "--lr", "1e-3")
    assert r.returncode != 0
    assert "does not split evenly over 2 ranks" in r.stderr
    assert r.stderr.count("does not split evenly") == 1  # reported once, by rank 0
