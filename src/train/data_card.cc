#include "train/data_card.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace herd {
namespace {

using nlohmann::json;

// One value when all agree, else the distinct values in first-seen order.
json OneOrMany(const std::vector<std::string>& values) {
  std::vector<std::string> distinct;
  for (const auto& v : values)
    if (std::find(distinct.begin(), distinct.end(), v) == distinct.end()) distinct.push_back(v);
  if (distinct.size() == 1) return distinct[0];
  return distinct;
}

}  // namespace

std::string BuildDataCard(const DataMix& mix, const MixSampler* sampler) {
  std::set<std::string> tokenizer_files;
  json sources = json::array();
  uint64_t tokens_seen = 0;
  for (size_t s = 0; s < mix.sources().size(); ++s) {
    const MixSource& src = mix.sources()[s];
    std::vector<std::string> licenses, provenance;
    std::vector<ShardInput> inputs;  // merged by (path, sha256)
    std::map<std::pair<std::string, std::string>, size_t> input_index;
    for (const Shard& shard : src.shards) {
      const ShardHeader& h = shard.header();
      licenses.push_back(h.license);
      provenance.push_back(h.provenance);
      tokenizer_files.insert(h.tokenizer_sha256);
      for (const ShardInput& in : h.inputs) {
        auto [it, added] = input_index.try_emplace({in.path, in.sha256}, inputs.size());
        if (added)
          inputs.push_back(in);
        else
          inputs[it->second].documents += in.documents;
      }
    }
    json jin = json::array();
    for (const auto& in : inputs)
      jin.push_back({{"path", in.path},
                     {"sha256", in.sha256},
                     {"bytes", in.bytes},
                     {"documents", in.documents}});
    json j = {{"name", src.name},
              {"shards", src.dir},
              {"weight", src.weight},
              {"probability", src.probability},
              {"license", OneOrMany(licenses)},
              {"provenance", OneOrMany(provenance)},
              {"n_shards", src.shards.size()},
              {"documents", src.documents},
              {"tokens", src.tokens},
              {"inputs", jin}};
    if (sampler) {
      const SourceCursor& c = sampler->cursors()[s];
      j["windows"] = sampler->windows(static_cast<int>(s));
      j["samples_seen"] = c.samples;
      j["epochs"] = double(c.epoch) + double(c.position) / double(sampler->windows(int(s)));
      j["tokens_seen"] = c.tokens;
      tokens_seen += c.tokens;
    } else {
      j["tokens_seen"] = 0;
    }
    sources.push_back(std::move(j));
  }
  json card = {{"format", "herd-data-card"},
               {"version", 1},
               {"tokenizer",
                {{"fingerprint", mix.tokenizer_fingerprint()},
                 {"sha256", tokenizer_files},
                 {"vocab_size", mix.vocab_size()}}},
               {"seed", mix.seed()},
               {"sources", sources},
               {"tokens_seen", tokens_seen}};
  if (sampler)
    card["sampler"] = {{"seq_len", sampler->options().seq_len},
                       {"pack", sampler->options().pack},
                       {"samples", sampler->next_sample()}};
  return card.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

namespace {

std::string Count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

}  // namespace

Result<std::string> SummarizeDataCard(std::string_view card_json) {
  const json card = json::parse(card_json, nullptr, false);
  if (card.is_discarded() || !card.is_object() || card.value("format", "") != "herd-data-card" ||
      !card.contains("sources") || !card["sources"].is_array())
    return Status::Error("not a herd data card (format \"herd-data-card\" with a sources list)");
  std::string out = Count(card.value("tokens_seen", 0.0)) + " tokens seen:";
  bool first = true;
  for (const json& src : card["sources"]) {
    if (!src.is_object()) continue;
    const json lic = src.value("license", json(nullptr));
    std::string license = lic.is_string()  ? lic.get<std::string>()
                          : lic.is_array() ? lic.dump()
                                           : "?";
    out += fmt::format("{} {} ({}, {:.0f}%", first ? "" : ",", src.value("name", "?"), license,
                       100 * src.value("probability", 0.0));
    if (src.contains("epochs")) out += fmt::format(", {:.2f} epochs", src.value("epochs", 0.0));
    out += ")";
    first = false;
  }
  return out;
}

}  // namespace herd
