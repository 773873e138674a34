#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include "base/paths.h"
#include "model/init.h"
#include "tokenizer/load.h"
#include "train/backward.h"
#include "train/checkpoint.h"
#include "train/data_card.h"

#ifndef HERD_GIT_COMMIT
#define HERD_GIT_COMMIT "unknown"
#endif
#include "train/dist.h"
#include "train/shards.h"

namespace herd {

namespace {

// A preset's config with the --dim / --layers / ... overrides, and, when the tokenizer was given
// explicitly, its vocabulary size and bos / eos ids.
Status ApplyShape(const TrainOptions& o, const TokenizerData& tok, LlamaConfig* c) {
  if (o.dim > 0) c->dim = o.dim;
  if (o.n_layers > 0) c->n_layers = o.n_layers;
  if (o.n_heads > 0) c->n_heads = o.n_heads;
  if (o.n_kv_heads > 0) c->n_kv_heads = o.n_kv_heads;
  if (o.ffn_dim > 0) c->ffn_dim = o.ffn_dim;
  if (o.dim > 0 || o.n_heads > 0) {
    if (c->n_heads <= 0 || c->dim % c->n_heads != 0)
      return Status::Errorf("--dim {} is not a multiple of --heads {}", c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
  }
  if (o.n_heads > 0 && o.n_kv_heads <= 0 && c->n_heads % c->n_kv_heads != 0)
    c->n_kv_heads = c->n_heads;
  if (!o.tokenizer.empty()) {
    c->vocab_size = static_cast<int>(tok.tokens.size());
    c->bos_id = tok.bos_id;
    c->eos_ids.clear();
    for (int32_t id = 0; id < static_cast<int32_t>(tok.tokens.size()); ++id) {
      const std::string& text = tok.tokens[id];
      if (text == "<|end_of_text|>" || text == "<|eot_id|>" || text == "<|eom_id|>")
        c->eos_ids.push_back(id);
    }
    if (c->eos_ids.empty() && tok.eos_id >= 0) c->eos_ids.push_back(tok.eos_id);
  }
  return c->Validate(o.preset);
}

}  // namespace
namespace {

using nlohmann::json;

// Sets o->micro_batch_tokens (per rank) when it is 0.
Status CheckShape(TrainOptions* op, int world) {
  TrainOptions& o = *op;
  if (o.steps <= 0) return Status::Error("--steps must be positive");
  if (o.seq_len <= 0) return Status::Error("--seq-len must be positive");
  if (o.batch_tokens <= 0 || o.batch_tokens % o.seq_len != 0)
    return Status::Errorf("--batch-tokens {} must be a positive multiple of --seq-len {}",
                          o.batch_tokens, o.seq_len);
  const int64_t windows = o.batch_tokens / o.seq_len;
  if (windows % world != 0)
    return Status::Errorf(
        "--batch-tokens {} ({} windows of --seq-len {}) does not split evenly over {} ranks: give "
        "a global batch of a multiple of {} windows",
        o.batch_tokens, windows, o.seq_len, world, world);
  const int64_t rank_tokens = o.batch_tokens / world;
  if (o.micro_batch_tokens == 0) o.micro_batch_tokens = rank_tokens;
  const int64_t micro = o.micro_batch_tokens;
  if (micro <= 0 || micro % o.seq_len != 0 || rank_tokens % micro != 0)
    return Status::Errorf(
        "--micro-batch-tokens {} must be a multiple of --seq-len {} and divide --batch-tokens "
        "{}{}",
        micro, o.seq_len, o.batch_tokens,
        world > 1 ? fmt::format(" / {} ranks = {} tokens per rank", world, rank_tokens) : "");
  const int64_t micro_windows = micro / o.seq_len;
  if (o.lanes < 0 || (o.lanes > 0 && micro_windows % o.lanes != 0))
    return Status::Errorf(
        "--lanes {} must be positive and divide the {} windows of a micro-batch ({} tokens of "
        "--seq-len {})",
        o.lanes, micro_windows, micro, o.seq_len);
  if (!(o.schedule.lr > 0)) return Status::Error("--lr must be positive");
  if (o.schedule.warmup_steps < 0) return Status::Error("--warmup must be >= 0");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Trainer>> Trainer::Create(const TrainOptions& options, ThreadPool* pool) {
  std::unique_ptr<Trainer> t(new Trainer);
  t->options_ = options;
  t->pool_ = pool;
  TrainOptions& o = t->options_;
  o.schedule.total_steps = o.steps;
  t->rank_ = dist::Rank();
  t->world_size_ = dist::WorldSize();
  HERD_RETURN_IF_ERROR(CheckShape(&o, t->world_size_));

  std::optional<TrainState> state;
  if (!o.resume.empty()) {
    auto ck = LoadCheckpoint(o.resume, o.adamw, pool);
    if (!ck.ok()) return Status::Errorf("--resume {}: {}", o.resume, ck.status().message());
    const json h = json::parse(ck->state.hparams, nullptr, false);
    if (!h.is_object() || h.value("seq_len", 0) != o.seq_len ||
        h.value("batch_tokens", int64_t{0}) != o.batch_tokens)
      return Status::Errorf(
          "--resume {}: the checkpoint was trained with seq_len {} and batch_tokens {}; resume "
          "with the same (got {} and {})",
          o.resume, h.value("seq_len", 0), h.value("batch_tokens", int64_t{0}), o.seq_len,
          o.batch_tokens);
    t->model_ = std::move(ck->model);
    t->optimizer_ = std::move(ck->optimizer);
    state = ck->state;
    if (auto tok = LoadTokenizerData(o.resume); tok.ok()) t->tokenizer_ = std::move(*tok);
  } else if (!o.init_from.empty()) {
    auto loaded = LoadModel(o.init_from);
    if (!loaded.ok()) return loaded.status();
    auto model = MakeTrainableModel(loaded->config, loaded->weights, pool);
    if (!model.ok()) return model.status();
    t->model_ = std::move(*model);
    if (auto tok = LoadTokenizerData(loaded->files.root); tok.ok()) t->tokenizer_ = std::move(*tok);
  } else if (!o.preset.empty()) {
    auto config = PresetConfig(o.preset);
    if (!config.ok()) return config.status();
    const std::string path = o.tokenizer.empty() ? DefaultLlama3TokenizerPath() : o.tokenizer;
    auto tok = LoadTokenizerData(path);
    if (!tok.ok()) return tok.status();
    HERD_RETURN_IF_ERROR(ApplyShape(o, *tok, &*config));
    if (static_cast<int>(tok->tokens.size()) != config->vocab_size)
      return Status::Errorf("{}: {} tokens, but preset {} has a vocabulary of {}", path,
                            tok->tokens.size(), o.preset, config->vocab_size);
    auto weights = InitRandomWeights(*config, DType::kF32, o.seed, pool);
    if (!weights.ok()) return weights.status();
    auto model = MakeTrainableModel(*config, *weights, pool);
    if (!model.ok()) return model.status();
    t->model_ = std::move(*model);
    t->tokenizer_ = std::move(*tok);
  } else {
    return Status::Error("give a model: --preset, --init-from or --resume");
  }
  if (!o.tokenizer.empty() && o.preset.empty() && !t->tokenizer_) {
    auto tok = LoadTokenizerData(o.tokenizer);
    if (!tok.ok()) return tok.status();
    t->tokenizer_ = std::move(*tok);
  }
  if (state && state->step > o.steps)
    return Status::Errorf("--resume {}: already {} steps, more than --steps {}", o.resume,
                          state->step, o.steps);

  MixOptions mix_options;
  mix_options.licenses.extra_allowed = o.allow_licenses;
  if (t->tokenizer_) {
    auto tok = Tokenizer::Create(*t->tokenizer_);
    if (!tok.ok()) return tok.status();
    mix_options.tokenizer_fingerprint = TokenizerFingerprint(*tok);
  }
  auto open_mix = [&](const std::string& path) -> Result<std::unique_ptr<DataMix>> {
    auto mix = DataMix::OpenFile(path, mix_options);
    if (!mix.ok()) return mix.status();
    if (mix->vocab_size() > t->model_.config.vocab_size)
      return Status::Errorf("{}: token ids up to {} do not fit the model's vocabulary of {}", path,
                            mix->vocab_size(), t->model_.config.vocab_size);
    return std::make_unique<DataMix>(std::move(*mix));
  };
  auto mix = open_mix(o.mix);
  if (!mix.ok()) return mix.status();
  t->mix_ = std::move(*mix);
  if (!o.val_mix.empty()) {
    auto val = open_mix(o.val_mix);
    if (!val.ok()) return val.status();
    t->val_mix_ = std::move(*val);
  }
  SamplerOptions so;
  so.seq_len = o.seq_len;
  so.batch = static_cast<int>(o.micro_batch_tokens / o.seq_len);
  so.rank = t->rank_;
  so.world_size = t->world_size_;
  so.pack = o.pack;
  auto sampler = MixSampler::Create(*t->mix_, so);
  if (!sampler.ok()) return sampler.status();
  t->sampler_ = std::make_unique<MixSampler>(std::move(*sampler));
  if (state) {
    HERD_RETURN_IF_ERROR(t->sampler_->RestoreState(state->sampler));
    t->step_ = state->step;
    t->tokens_seen_ = state->tokens_seen;
  } else {
    t->optimizer_ = AdamW(o.adamw);
  }
  t->grads_ = MakeGrads(t->model_.config);
  t->params_ = ParamRefs(t->model_.weights, &t->grads_);
  // Lanes by default: 2 for an even number of windows per micro-batch, unless the second
  // gradient buffer would take more than 1 GiB.
  if (o.lanes == 0) {
    const bool even = o.micro_batch_tokens / o.seq_len % 2 == 0;
    o.lanes = even && t->parameters() <= (int64_t{1} << 28) ? 2 : 1;
  }
  // The threads split between the lanes as evenly as they go (a lane of one thread runs inline).
  const int threads = pool ? pool->size() : 1;
  t->lane_grads_.reserve(static_cast<size_t>(o.lanes));
  for (int l = 0; l < o.lanes; ++l) {
    if (l > 0) {
      t->lane_grads_.push_back(MakeGrads(t->model_.config));
      t->lane_params_.push_back(ParamRefs(t->model_.weights, &t->lane_grads_.back()));
    }
    const int lane_threads = std::max(1, threads / o.lanes + (l < threads % o.lanes ? 1 : 0));
    t->lane_pools_.push_back(lane_threads > 1 ? std::make_unique<ThreadPool>(lane_threads)
                                              : nullptr);
  }
  return t;
}

Result<StepResult> Trainer::Step() {
  const TrainOptions& o = options_;
  const int64_t n_micro = o.batch_tokens / world_size_ / o.micro_batch_tokens;
  const float scale = 1.0f / static_cast<float>(o.batch_tokens);
  const int lanes = o.lanes;
  std::vector<Result<LossSum>> lane_loss(static_cast<size_t>(lanes), LossSum{});
  double loss_sum = 0;
  for (int64_t micro = 0; micro < n_micro; ++micro) {
    const Batch b = sampler_->Next();
    inputs_.resize(static_cast<size_t>(b.batch) * b.seq_len);
    targets_.resize(inputs_.size());
    for (int i = 0; i < b.batch; ++i) {
      const auto row = b.row(i);
      for (int j = 0; j < b.seq_len; ++j) {
        inputs_[static_cast<size_t>(i) * b.seq_len + j] = row[j];
        targets_[static_cast<size_t>(i) * b.seq_len + j] = row[j + 1];
      }
    }
    // Lane l: windows [l * per_lane, (l + 1) * per_lane). Packed windows: the sampler's
    // document starts cut each row into independent sequences.
    const int per_lane = b.batch / lanes;
    const size_t lane_tokens = static_cast<size_t>(per_lane) * b.seq_len;
    ParallelFor(lanes > 1 ? pool_ : nullptr, static_cast<size_t>(lanes), [&](size_t l, int) {
      const std::span<const int> in(inputs_), tg(targets_);
      const std::span<const std::vector<int>> starts(b.doc_starts);
      const TokenBatch tb{per_lane, b.seq_len, in.subspan(l * lane_tokens, lane_tokens),
                          tg.subspan(l * lane_tokens, lane_tokens),
                          starts.empty() ? starts : starts.subspan(l * per_lane, per_lane)};
      // The step's first micro-batch writes the gradients (no zeroing), later ones add to them.
      lane_loss[l] = ForwardBackward(model_, tb, scale, l == 0 ? &grads_ : &lane_grads_[l - 1],
                                     lane_pools_[l].get(), /*overwrite=*/micro == 0);
    });
    for (const auto& loss : lane_loss) {
      if (!loss.ok()) return loss.status();
      loss_sum += loss->sum;
    }
  }
  // The lanes' gradients added onto lane 0's in lane order and, in one process, the norm in the
  // same pass; then the update with clipping's factor: two passes over the gradients in all.
  StepResult r;
  r.grad_norm = AddLaneGrads(params_, lane_params_, /*norm=*/world_size_ == 1, pool_);
  if (world_size_ > 1) {
    // The ranks' shares: summed, every rank holds the gradient of the global mean loss.
    for (const ParamRef& p : params_) dist::AllReduceSum(p.g, static_cast<size_t>(p.n));
    r.grad_norm = GradNorm(params_, pool_);
  }
  dist::AllReduceSum(&loss_sum, 1);
  const double coef = o.clip > 0 ? ClipCoefficient(r.grad_norm, o.clip) : 1.0;
  r.lr = o.schedule.At(step_);
  optimizer_.Step(params_, r.lr, pool_, static_cast<float>(coef));
  r.step = ++step_;
  r.loss = loss_sum / static_cast<double>(o.batch_tokens);
  r.tokens_seen = tokens_seen_ += o.batch_tokens;
  return r;
}

Result<double> Trainer::ValidationLoss() {
  if (!val_mix_) return Status::Error("no validation mix");
  SamplerOptions so;
  so.seq_len = options_.seq_len;
  so.batch = static_cast<int>(options_.micro_batch_tokens / options_.seq_len);
  so.rank = rank_;
  so.world_size = world_size_;
  so.pack = options_.pack;
  auto sampler = MixSampler::Create(*val_mix_, so);
  if (!sampler.ok()) return sampler.status();
  LossSum total;
  for (int k = 0; k < options_.val_batches; ++k) {
    const Batch b = sampler->Next();
    std::vector<int> in, tg;
    for (int i = 0; i < b.batch; ++i) {
      const auto row = b.row(i);
      in.insert(in.end(), row.begin(), row.end() - 1);
      tg.insert(tg.end(), row.begin() + 1, row.end());
    }
    auto loss = ForwardLoss(model_, {b.batch, b.seq_len, in, tg, b.doc_starts}, pool_);
    if (!loss.ok()) return loss.status();
    total.sum += loss->sum, total.count += loss->count;
  }
  double sums[2] = {total.sum, static_cast<double>(total.count)};
  dist::AllReduceSum(sums, 2);
  return sums[1] > 0 ? sums[0] / sums[1] : 0.0;
}

std::string Trainer::HParams() const {
  const TrainOptions& o = options_;
  const json j = {{"mix", o.mix},
                  {"val_mix", o.val_mix},
                  {"steps", o.steps},
                  {"seq_len", o.seq_len},
                  {"batch_tokens", o.batch_tokens},
                  {"micro_batch_tokens", o.micro_batch_tokens},
                  {"lanes", o.lanes},
                  {"ranks", world_size_},
                  {"lr", o.schedule.lr},
                  {"warmup", o.schedule.warmup_steps},
                  {"min_lr_ratio", o.schedule.min_lr_ratio},
                  {"clip", o.clip},
                  {"beta1", o.adamw.beta1},
                  {"beta2", o.adamw.beta2},
                  {"eps", o.adamw.eps},
                  {"weight_decay", o.adamw.weight_decay},
                  {"seed", o.seed},
                  {"pack", o.pack},
                  {"preset", o.preset},
                  {"init_from", o.init_from}};
  return j.dump();
}

Status Trainer::Save(const std::string& dir) const {
  const TrainState state{step_, tokens_seen_, sampler_->SaveState(), HParams()};
  // The card says what data made the model and how it was trained, by which herd.
  json card = json::parse(BuildDataCard(*mix_, sampler_.get()));
  card["training"] = json::parse(state.hparams);
  card["training"]["step"] = step_;
  card["herd_commit"] = HERD_GIT_COMMIT;
  return SaveCheckpoint(dir, model_, tokenizer_ ? &*tokenizer_ : nullptr, optimizer_, state,
                        card.dump(2) + "\n");
}

uint64_t Trainer::WeightsChecksum() const {
  // FNV-1a style over 32-bit words, 64-bit state.
  uint64_t h = 0xcbf29ce484222325ull;
  for (const ParamRef& p : params_) {
    const auto* words = reinterpret_cast<const uint32_t*>(p.w);
    for (int64_t i = 0; i < p.n; ++i) h = (h ^ words[i]) * 0x100000001b3ull;
    h = (h ^ static_cast<uint64_t>(p.n)) * 0x100000001b3ull;
  }
  return h;
}

Result<uint64_t> Trainer::VerifyReplicas() const {
  const uint64_t mine = WeightsChecksum();
  uint64_t root = mine;
  dist::Broadcast(&root, sizeof(root));
  double differ = root != mine ? 1.0 : 0.0;
  dist::AllReduceSum(&differ, 1);
  if (differ > 0)
    return Status::Errorf("step {}: the weights of {} of {} ranks differ from rank 0's", step_,
                          static_cast<int>(differ), world_size_);
  return mine;
}

int64_t Trainer::parameters() const {
  int64_t n = 0;
  for (const ParamRef& p : params_) n += p.n;
  return n;
}

}  // namespace herd
