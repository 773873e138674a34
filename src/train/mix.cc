#include "train/mix.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "io/mapped_file.h"

namespace herd {

namespace fs = std::filesystem;
using nlohmann::json;

Result<MixSpec> ParseMix(std::string_view text, const std::string& base_dir,
                         const std::string& where) {
  MixSpec spec;
  spec.base_dir = base_dir;
  try {
    const json j = json::parse(text);
    if (!j.is_object()) return Status::Errorf("{}: a mix is a JSON object", where);
    for (const auto& [key, value] : j.items())
      if (key != "sources" && key != "seed")
        return Status::Errorf("{}: unknown key \"{}\" (a mix has \"sources\" and \"seed\")", where,
                              key);
    if (j.contains("seed")) {
      if (!j["seed"].is_number_unsigned())
        return Status::Errorf("{}: \"seed\" must be a non-negative integer", where);
      spec.seed = j["seed"].get<uint64_t>();
    }
    if (!j.contains("sources") || !j["sources"].is_array() || j["sources"].empty())
      return Status::Errorf("{}: \"sources\" must be a non-empty array", where);
    std::set<std::string> names;
    for (size_t i = 0; i < j["sources"].size(); ++i) {
      const json& s = j["sources"][i];
      const std::string at = fmt::format("{}: sources[{}]", where, i);
      if (!s.is_object()) return Status::Errorf("{}: expected an object", at);
      for (const auto& [key, value] : s.items())
        if (key != "name" && key != "shards" && key != "weight")
          return Status::Errorf(
              "{}: unknown key \"{}\" (a source has \"name\", \"shards\" and "
              "\"weight\")",
              at, key);
      MixSourceSpec src;
      if (!s.contains("name") || !s["name"].is_string() || s["name"].get<std::string>().empty())
        return Status::Errorf("{}: \"name\" must be a non-empty string", at);
      src.name = s["name"].get<std::string>();
      if (!names.insert(src.name).second)
        return Status::Errorf("{}: source name '{}' appears twice", at, src.name);
      if (!s.contains("shards") || !s["shards"].is_string())
        return Status::Errorf("{} ('{}'): \"shards\" must be a directory path", at, src.name);
      src.shards = s["shards"].get<std::string>();
      if (!s.contains("weight") || !s["weight"].is_number())
        return Status::Errorf("{} ('{}'): \"weight\" must be a number", at, src.name);
      src.weight = s["weight"].get<double>();
      if (!(src.weight > 0) || !std::isfinite(src.weight))
        return Status::Errorf("{} ('{}'): weight must be positive, got {}", at, src.name,
                              src.weight);
      spec.sources.push_back(std::move(src));
    }
  } catch (const json::exception& e) {
    return Status::Errorf("{}: bad mix file: {}", where, e.what());
  }
  return spec;
}

Result<MixSpec> LoadMixFile(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseMix(text, fs::path(path).parent_path().string(), path);
}

Result<DataMix> DataMix::Open(const MixSpec& spec, const MixOptions& options) {
  if (spec.sources.empty()) return Status::Error("the mix has no sources");
  DataMix mix;
  mix.seed_ = spec.seed;
  double total_weight = 0;
  for (const auto& s : spec.sources) total_weight += s.weight;
  std::string first_shard;  // the shard that set the fingerprint, for messages
  for (const auto& s : spec.sources) {
    if (!(s.weight > 0) || !std::isfinite(s.weight))
      return Status::Errorf("source '{}': weight must be positive, got {}", s.name, s.weight);
    MixSource src;
    src.name = s.name;
    src.weight = s.weight;
    src.probability = s.weight / total_weight;
    src.dir = fs::path(s.shards).is_absolute() || spec.base_dir.empty()
                  ? s.shards
                  : (fs::path(spec.base_dir) / s.shards).string();
    auto shards = OpenShardDir(src.dir);
    if (!shards.ok()) return Status::Errorf("source '{}': {}", s.name, shards.status().message());
    src.shards = std::move(shards).value();
    for (const Shard& shard : src.shards) {
      const ShardHeader& h = shard.header();
      if (Status st = CheckLicense(h.license, options.licenses); !st.ok())
        return Status::Errorf("source '{}': shard {}: {}", s.name, shard.path(), st.message());
      if (h.tokenizer_fingerprint.empty())
        return Status::Errorf("source '{}': shard {}: no tokenizer fingerprint", s.name,
                              shard.path());
      if (mix.fingerprint_.empty()) {
        mix.fingerprint_ = h.tokenizer_fingerprint;
        mix.vocab_size_ = h.vocab_size;
        first_shard = shard.path();
        if (!options.tokenizer_fingerprint.empty() &&
            options.tokenizer_fingerprint != mix.fingerprint_)
          return Status::Errorf(
              "source '{}': shard {} was tokenized with tokenizer {} (file "
              "sha256 {}), not the model's tokenizer {}",
              s.name, shard.path(), h.tokenizer_fingerprint, h.tokenizer_sha256,
              options.tokenizer_fingerprint);
      } else if (h.tokenizer_fingerprint != mix.fingerprint_) {
        return Status::Errorf(
            "source '{}': shard {} was tokenized with tokenizer {} (file sha256 "
            "{}), but {} with {}; all sources must share one tokenizer",
            s.name, shard.path(), h.tokenizer_fingerprint, h.tokenizer_sha256, first_shard,
            mix.fingerprint_);
      }
      src.documents += shard.n_documents();
      src.tokens += shard.n_tokens();
    }
    mix.sources_.push_back(std::move(src));
  }
  return mix;
}

Result<DataMix> DataMix::OpenFile(const std::string& mix_path, const MixOptions& options) {
  HERD_ASSIGN_OR_RETURN(const MixSpec spec, LoadMixFile(mix_path));
  return Open(spec, options);
}

}  // namespace herd
