// herd train --mix MIX --out DIR (--preset NAME | --init-from PATH | --resume CKPT) --steps N
//            --seq-len L --batch-tokens B --lr X [--micro-batch-tokens M] [--warmup W]
//            [--min-lr-ratio R] [--clip C] [--weight-decay D] [--seed S] [--val-mix MIX
//            --val-every N] [--save-every N] [--stop-after N] [--pack] [--threads T]
// Pretrains or fine-tunes a Llama model on CPU (train/trainer.h). Writes:
//   DIR/log.jsonl       one JSON object per line: {"step", "loss", "lr", "grad_norm", "tokens",
//                       "tokens_per_s", "elapsed_s"} per step, {"step", "val_loss"} per validation
//   DIR/step-NNNNNN/    checkpoints (train/checkpoint.h): an HF model directory + train_state.json,
//                       optimizer.safetensors, data_card.json
//   DIR/latest          the name of the newest checkpoint
// Progress goes to stderr. --resume takes a checkpoint or a run directory (its latest checkpoint)
// and continues to --steps; lines of DIR/log.jsonl after the checkpoint's step are dropped.
// Data parallel: `mpirun -np N herd train ...` (train/dist.h) runs N ranks, each on its share of
// every step (--batch-tokens stays the global batch and must split into N whole shares of
// windows); rank 0 alone writes the log, the progress and the checkpoints, after checking that
// every rank holds the same weights. --threads 0 means the machine's cores / the ranks on it, at
// most the cores the rank is bound to. A checkpoint resumes with any number of ranks.
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/trainer.h"

namespace herd::app {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TrainArgs {
  TrainOptions o;
  std::string out;
  int64_t warmup = -1, val_every = 0, save_every = 0, stop_after = 0, log_every = 1;
  int threads = 0;
};

std::string Duration(double s) {
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  return fmt::format("{}m{:02}s", t / 60, t % 60);
}

// A run directory given to --resume means its latest checkpoint.
std::string ResolveResume(const std::string& path) {
  if (path.empty() || IsCheckpoint(path)) return path;
  std::ifstream f(fs::path(path) / "latest");
  std::string name;
  if (f >> name) return (fs::path(path) / name).string();
  return path;
}

// Keeps the log lines of steps <= `step` (a resumed run rewrites what came after).
void TruncateLog(const fs::path& log, int64_t step) {
  std::ifstream in(log);
  if (!in) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  in.close();
  std::ofstream(log, std::ios::trunc) << kept;
}

// The cores this process may run on (its affinity mask), at least 1.
int AllowedCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return ThreadPool::DefaultThreads();
  return std::max(1, CPU_COUNT(&set));
}

// Collective: the number of ranks where `ok` does not hold.
int CountFailed(bool ok) {
  double failed = ok ? 0 : 1;
  dist::AllReduceSum(&failed, 1);
  return static_cast<int>(failed);
}
bool AllOk(bool ok) { return CountFailed(ok) == 0; }

int RunTrain(TrainArgs a) {
  dist::Session session;
  if (!session.status().ok()) return Fail(session.status().message());
  const int world = dist::WorldSize();
  const bool lead = dist::Rank() == 0;  // writes the log, the progress and the checkpoints
  // An error every rank meets the same way: reported once.
  auto fail_all = [&](const std::string& message) { return lead ? Fail(message) : 1; };
  // An error of this rank alone while the others may be inside a collective: ends the job.
  auto fail_now = [&](const std::string& message) {
    Fail(world > 1 ? fmt::format("rank {}: {}", dist::Rank(), message) : message);
    if (world > 1) dist::Abort(1);
    return 1;
  };

  TrainOptions& o = a.o;
  o.resume = ResolveResume(o.resume);
  o.schedule.warmup_steps = a.warmup >= 0 ? a.warmup : o.steps / 10;
  // mpirun binds each rank to a core (2 ranks) or a socket by default: threads beyond the cores a
  // rank may use only take turns.
  const int allowed = AllowedCores();
  if (a.threads <= 0 && world > 1)
    a.threads = std::max(
        1, std::min(allowed, ThreadPool::DefaultThreads() / std::max(1, dist::LocalSize())));
  if (world > 1 && a.threads > allowed && lead)
    std::fprintf(stderr,
                 "herd: warning: --threads %d but this rank may run on %d core(s): mpirun binds "
                 "ranks to cores; add --bind-to none (or --map-by slot:PE=%d)\n",
                 a.threads, allowed, a.threads);
  ThreadPool pool(a.threads);
  Timer timer;
  auto trainer = Trainer::Create(o, &pool);
  // The same error on every rank (options, a missing file everywhere) is reported once; an error
  // of some ranks only (a file missing on one host) by each of them.
  if (const int failed = CountFailed(trainer.ok()); failed > 0) {
    if (failed == world) return fail_all(trainer.status().message());
    if (!trainer.ok())
      return Fail(fmt::format("rank {}: {}", dist::Rank(), trainer.status().message()));
    return 1;
  }
  Trainer& t = **trainer;
  const LlamaConfig& c = t.model().config;
  if (lead) {
    std::fprintf(stderr, "herd: train %s\nherd: %s, %.2f M parameters (float32)\n",
                 o.resume.empty()
                     ? (o.preset.empty() ? o.init_from.c_str() : o.preset.c_str())
                     : ("resume " + o.resume + " at step " + std::to_string(t.step())).c_str(),
                 c.Describe().c_str(), t.parameters() / 1e6);
    std::fprintf(stderr,
                 "herd: %lld steps of %lld tokens (%lld per micro-batch, seq_len %d), lr %g, "
                 "warmup %lld, %d threads%s; loaded in %.1f s\n",
                 static_cast<long long>(o.steps), static_cast<long long>(o.batch_tokens),
                 static_cast<long long>(t.options().micro_batch_tokens), o.seq_len, o.schedule.lr,
                 static_cast<long long>(o.schedule.warmup_steps), pool.size(),
                 world > 1 ? fmt::format(" per rank, {} MPI ranks", world).c_str() : "",
                 timer.Seconds());
  }
  if (a.val_every > 0 && !t.has_validation()) return fail_all("--val-every needs --val-mix");

  const fs::path log_path = fs::path(a.out) / "log.jsonl";
  std::ofstream log;
  std::string setup_error;
  if (lead) {
    std::error_code ec;
    fs::create_directories(a.out, ec);
    if (ec) {
      setup_error = a.out + ": cannot create directory: " + ec.message();
    } else {
      if (o.resume.empty()) {
        std::ofstream(log_path, std::ios::trunc);
      } else {
        TruncateLog(log_path, t.step());
      }
      log.open(log_path, std::ios::app);
      if (!log) setup_error = log_path.string() + ": cannot write";
    }
  }
  if (!AllOk(setup_error.empty())) return fail_all(setup_error);

  auto save = [&]() -> bool {
    // Every rank: the replicas must agree before rank 0 writes what stands for all of them.
    auto checksum = t.VerifyReplicas();
    if (!checksum.ok()) return fail_all(checksum.status().message()), false;
    if (!lead) return true;
    const std::string name = fmt::format("step-{:06}", t.step());
    Timer save_timer;
    if (Status st = t.Save((fs::path(a.out) / name).string()); !st.ok())
      return fail_now(st.message()), false;
    std::ofstream(fs::path(a.out) / "latest", std::ios::trunc) << name << "\n";
    std::fprintf(stderr, "herd: saved %s/%s (%.1f s)\n", a.out.c_str(), name.c_str(),
                 save_timer.Seconds());
    if (world > 1)
      std::fprintf(stderr, "herd: %d ranks hold identical weights (checksum %016llx)\n", world,
                   static_cast<unsigned long long>(*checksum));
    return true;
  };
  auto validate = [&]() -> bool {
    auto val = t.ValidationLoss();  // every rank: a collective
    if (!val.ok()) return fail_now(val.status().message()), false;
    if (!lead) return true;
    log << json{{"step", t.step()}, {"val_loss", *val}}.dump() << "\n" << std::flush;
    std::fprintf(stderr, "herd: step %lld  validation loss %.4f\n",
                 static_cast<long long>(t.step()), *val);
    return true;
  };

  const int64_t first = t.step();
  Timer run_timer;
  while (t.step() < o.steps) {
    Timer step_timer;
    auto r = t.Step();
    if (!r.ok()) return fail_now(r.status().message());
    const double dt = step_timer.Seconds(), elapsed = run_timer.Seconds();
    const double tok_s = o.batch_tokens / dt;
    const int64_t done = r->step - first, left = o.steps - r->step;
    if (lead) {
      log << json{{"step", r->step},           {"loss", r->loss},          {"lr", r->lr},
                  {"grad_norm", r->grad_norm}, {"tokens", r->tokens_seen}, {"tokens_per_s", tok_s},
                  {"elapsed_s", elapsed}}
                 .dump()
          << "\n"
          << std::flush;
      if (a.log_every > 0 && (r->step % a.log_every == 0 || left == 0))
        std::fprintf(stderr,
                     "herd: step %lld/%lld  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %s\n",
                     static_cast<long long>(r->step), static_cast<long long>(o.steps), r->loss,
                     r->lr, r->grad_norm, tok_s, Duration(elapsed / done * left).c_str());
    }
    if (a.val_every > 0 && r->step % a.val_every == 0 && !validate()) return 1;
    const bool stop = a.stop_after > 0 && done >= a.stop_after;
    if ((a.save_every > 0 && r->step % a.save_every == 0 && left > 0) || stop) {
      if (!save()) return 1;
    }
    if (stop) {
      if (lead)
        std::fprintf(stderr, "herd: stopped after %lld steps (--stop-after)\n",
                     static_cast<long long>(done));
      return 0;
    }
  }
  if (!save()) return 1;
  if (lead)
    std::fprintf(stderr, "herd: trained to step %lld in %s\n", static_cast<long long>(t.step()),
                 Duration(run_timer.Seconds()).c_str());
  return 0;
}

}  // namespace

void AddTrainCommand(CLI::App& app, int* exit_code) {
  static TrainArgs a;
  TrainOptions& o = a.o;
  auto* cmd = app.add_subcommand("train", "Pretrain or fine-tune a Llama model on CPU");
  cmd->add_option("--mix", o.mix, "Data mix file (JSON; see herd data)")->required();
  cmd->add_option("--out", a.out, "Run directory: log.jsonl and checkpoints")->required();
  auto* preset = cmd->add_option("--preset", o.preset, "Start from random weights of a preset");
  auto* init = cmd->add_option("--init-from", o.init_from, "Start from a model (fine-tuning)");
  preset->excludes(init);
  cmd->add_option("--resume", o.resume, "Continue from a checkpoint or a run directory");
  cmd->add_option("--steps", o.steps, "Total optimizer steps")->required();
  cmd->add_option("--seq-len", o.seq_len, "Tokens per training window")->required();
  cmd->add_option("--batch-tokens", o.batch_tokens, "Tokens per optimizer step")->required();
  cmd->add_option("--micro-batch-tokens", o.micro_batch_tokens,
                  "Tokens per forward/backward pass (gradient accumulation; default: all)");
  cmd->add_option("--lanes", o.lanes,
                  "Split each micro-batch into this many parts, their gradients computed "
                  "concurrently and summed (results depend on it, not on --threads; each lane "
                  "past the first holds a gradient copy; default: 2 for an even number of windows "
                  "and at most 2^28 parameters, else 1)");
  cmd->add_option("--lr", o.schedule.lr, "Peak learning rate")->required();
  cmd->add_option("--warmup", a.warmup, "Linear warmup steps (default: 10% of --steps)");
  cmd->add_option("--min-lr-ratio", o.schedule.min_lr_ratio, "Cosine decay floor, times --lr")
      ->capture_default_str();
  cmd->add_option("--clip", o.clip, "Global gradient norm limit (0: none)")->capture_default_str();
  cmd->add_option("--weight-decay", o.adamw.weight_decay, "AdamW decay of the matrices")
      ->capture_default_str();
  cmd->add_option("--beta1", o.adamw.beta1, "AdamW beta1")->capture_default_str();
  cmd->add_option("--beta2", o.adamw.beta2, "AdamW beta2")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Weight initialisation seed (--preset)")->capture_default_str();
  cmd->add_option("--dim", o.dim, "--preset: model width instead of the preset's");
  cmd->add_option("--layers", o.n_layers, "--preset: layers instead of the preset's");
  cmd->add_option("--heads", o.n_heads, "--preset: attention heads instead of the preset's");
  cmd->add_option("--kv-heads", o.n_kv_heads, "--preset: key/value heads (GQA)");
  cmd->add_option("--ffn-dim", o.ffn_dim, "--preset: feed-forward width instead of the preset's");
  cmd->add_option("--tokenizer", o.tokenizer,
                  "Tokenizer for --preset (default: the Llama 3 tokenizer scripts/setup installs)");
  cmd->add_flag("--pack", o.pack,
                "Cut windows across document boundaries (attention stays within each document)");
  cmd->add_option("--val-mix", o.val_mix, "Validation data mix");
  cmd->add_option("--val-every", a.val_every, "Validation loss every N steps (0: never)");
  cmd->add_option("--val-batches", o.val_batches, "Micro-batches per validation")
      ->capture_default_str();
  cmd->add_option("--save-every", a.save_every, "Checkpoint every N steps (and at the end)");
  cmd->add_option("--stop-after", a.stop_after,
                  "Stop (with a checkpoint) after N steps of this run, as if interrupted");
  cmd->add_option("--log-every", a.log_every, "Progress line on stderr every N steps")
      ->capture_default_str();
  cmd->add_option("--allow-license", o.allow_licenses, "Also allow this data licence");
  cmd->add_option(
      "--threads", a.threads,
      "Threads per process (0 = all cores; under mpirun: cores / ranks on the machine)");
  cmd->callback([exit_code] { *exit_code = RunTrain(a); });
}

}  // namespace herd::app
