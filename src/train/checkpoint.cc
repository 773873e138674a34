#include "train/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/names.h"
#include "model/save.h"
#include "train/grads.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kStateFile = "train_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) return Status::Errorf("{}: cannot write", path.string());
  return Status::Ok();
}

Result<std::string> ReadText(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Errorf("{}: cannot open", path.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Meta names of the trainable tensors, in ForEachTensor (= ParamRefs) order.
std::vector<std::string> TensorNames(const LlamaWeights& w) {
  std::vector<std::string> names;
  ForEachTensor(
      w, [&](TensorId id, const Weight&) { names.push_back(TensorName(NamingScheme::kMeta, id)); });
  return names;
}

}  // namespace

bool IsCheckpoint(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / kStateFile);
}

Status SaveCheckpoint(const std::string& dir, const Model& model, const TokenizerData* tokenizer,
                      const AdamW& optimizer, const TrainState& state,
                      const std::string& data_card) {
  const fs::path final_dir(dir), tmp(dir + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  SaveOptions save;
  save.format = ModelFormat::kHf;
  save.dtype = DType::kF32;  // the master weights, exactly
  HERD_RETURN_IF_ERROR(SaveModel(model.config, model.weights, tokenizer, save, tmp.string()));

  std::vector<TensorToWrite> moments;
  const std::vector<std::string> names = TensorNames(model.weights);
  const auto& m = optimizer.m();
  const auto& v = optimizer.v();
  if (!m.empty()) {
    if (m.size() != names.size()) return Status::Error("optimizer state does not match the model");
    std::vector<std::vector<int64_t>> shapes;
    ForEachTensor(model.weights, [&](TensorId, const Weight& w) { shapes.push_back(w.shape); });
    for (size_t i = 0; i < names.size(); ++i) {
      moments.push_back({"m." + names[i], DType::kF32, shapes[i], m[i].data(), m[i].size() * 4});
      moments.push_back({"v." + names[i], DType::kF32, shapes[i], v[i].data(), v[i].size() * 4});
    }
  }
  HERD_RETURN_IF_ERROR(WriteSafetensors((tmp / kOptimizerFile).string(), moments));

  json hparams = json::object();
  if (!state.hparams.empty()) hparams = json::parse(state.hparams, nullptr, false);
  if (hparams.is_discarded()) return Status::Error("checkpoint hparams are not JSON");
  const json j = {{"format", "herd-train-state"},
                  {"version", 1},
                  {"step", state.step},
                  {"optimizer_steps", optimizer.steps()},
                  {"tokens_seen", state.tokens_seen},
                  {"sampler", json::parse(state.sampler.empty() ? "null" : state.sampler)},
                  {"hparams", hparams}};
  HERD_RETURN_IF_ERROR(WriteText(tmp / kStateFile, j.dump(1) + "\n"));
  HERD_RETURN_IF_ERROR(WriteText(tmp / "data_card.json", data_card));
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) return Status::Errorf("{}: cannot rename to {}: {}", tmp.string(), dir, ec.message());
  return Status::Ok();
}

Result<Checkpoint> LoadCheckpoint(const std::string& dir, const AdamWOptions& options,
                                  ThreadPool* pool) {
  auto text = ReadText(fs::path(dir) / kStateFile);
  if (!text.ok()) return text.status();
  Checkpoint ck{Model{}, AdamW(options), TrainState{}};
  int64_t optimizer_steps = 0;
  try {
    const json j = json::parse(*text);
    if (j.value("format", "") != "herd-train-state" || j.value("version", 0) != 1)
      return Status::Errorf("{}/{}: not a herd-train-state version 1 file", dir, kStateFile);
    ck.state.step = j.at("step");
    ck.state.tokens_seen = j.at("tokens_seen");
    ck.state.sampler = j.at("sampler").dump();
    ck.state.hparams = j.at("hparams").dump();
    optimizer_steps = j.at("optimizer_steps");
  } catch (const json::exception& e) {
    return Status::Errorf("{}/{}: {}", dir, kStateFile, e.what());
  }
  auto loaded = LoadModel(dir);
  if (!loaded.ok()) return loaded.status();
  auto model = MakeTrainableModel(loaded->config, loaded->weights, pool);
  if (!model.ok()) return model.status();
  ck.model = std::move(*model);
  ck.model.files = loaded->files;

  auto index = LoadSafetensors((fs::path(dir) / kOptimizerFile).string());
  if (!index.ok()) return index.status();
  ck.optimizer.set_steps(optimizer_steps);
  if (index->size() == 0) return ck;  // saved before the first update
  std::vector<int64_t> sizes;
  ForEachTensor(ck.model.weights, [&](TensorId, const Weight& w) { sizes.push_back(w.numel()); });
  const std::vector<std::string> names = TensorNames(ck.model.weights);
  for (size_t i = 0; i < names.size(); ++i) {
    for (const char* which : {"m.", "v."}) {
      const TensorEntry* e = index->Find(which + names[i]);
      if (!e || e->dtype != DType::kF32 || e->numel() != sizes[i])
        return Status::Errorf("{}/{}: missing or mis-shaped {}{}", dir, kOptimizerFile, which,
                              names[i]);
      auto& dst = which[0] == 'm' ? ck.optimizer.m() : ck.optimizer.v();
      dst.emplace_back(sizes[i]);
      std::memcpy(dst.back().data(), e->data, e->n_bytes);
    }
  }
  return ck;
}

}  // namespace herd
