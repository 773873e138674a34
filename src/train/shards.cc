#include "train/shards.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/check.h"
#include "tokenizer/tokenizer.h"
#include "train/sha256.h"

namespace herd {

static_assert(std::endian::native == std::endian::little,
              "shards are little-endian and read by memcpy");

namespace fs = std::filesystem;
using nlohmann::json;

std::string ShardName(int index) { return fmt::format("shard-{:05d}", index); }

std::string ShardHeaderToJson(const ShardHeader& h) {
  json inputs = json::array();
  for (const auto& in : h.inputs)
    inputs.push_back({{"path", in.path},
                      {"sha256", in.sha256},
                      {"bytes", in.bytes},
                      {"documents", in.documents}});
  const json j = {{"format", "herd-token-shard"},
                  {"version", h.version},
                  {"source", h.source},
                  {"license", h.license},
                  {"provenance", h.provenance},
                  {"tokenizer",
                   {{"sha256", h.tokenizer_sha256},
                    {"fingerprint", h.tokenizer_fingerprint},
                    {"path", h.tokenizer_path},
                    {"vocab_size", h.vocab_size},
                    {"bos_id", h.bos_id},
                    {"eos_id", h.eos_id}}},
                  {"bos", h.bos},
                  {"documents", h.documents},
                  {"tokens", h.tokens},
                  {"bin", {{"file", h.bin_file}, {"sha256", h.bin_sha256}}},
                  {"idx", {{"file", h.idx_file}, {"sha256", h.idx_sha256}}},
                  {"inputs", inputs}};
  // Provenance text is user input: replace (never throw on) bytes that are not UTF-8.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<ShardHeader> ParseShardHeader(std::string_view text, const std::string& where) {
  ShardHeader h;
  try {
    const json j = json::parse(text);
    if (j.value("format", "") != "herd-token-shard")
      return Status::Errorf(
          "{}: not a herd token-shard header (\"format\" is not "
          "\"herd-token-shard\")",
          where);
    h.version = j.at("version").get<int>();
    if (h.version != kShardFormatVersion)
      return Status::Errorf("{}: shard format version {} (this herd reads {})", where, h.version,
                            kShardFormatVersion);
    // A missing or null licence parses as "" and is refused later by the licence policy, which
    // names the source and the shard.
    auto str = [&](const json& o, const char* key) {
      return o.contains(key) && !o[key].is_null() ? o[key].get<std::string>() : std::string();
    };
    h.source = str(j, "source");
    h.license = str(j, "license");
    h.provenance = str(j, "provenance");
    const json& t = j.at("tokenizer");
    h.tokenizer_sha256 = str(t, "sha256");
    h.tokenizer_fingerprint = str(t, "fingerprint");
    h.tokenizer_path = str(t, "path");
    h.vocab_size = t.at("vocab_size").get<int64_t>();
    h.bos_id = t.at("bos_id").get<int32_t>();
    h.eos_id = t.at("eos_id").get<int32_t>();
    h.bos = j.at("bos").get<bool>();
    h.documents = j.at("documents").get<uint64_t>();
    h.tokens = j.at("tokens").get<uint64_t>();
    h.bin_file = j.at("bin").at("file").get<std::string>();
    h.bin_sha256 = str(j.at("bin"), "sha256");
    h.idx_file = j.at("idx").at("file").get<std::string>();
    h.idx_sha256 = str(j.at("idx"), "sha256");
    for (const json& in : j.at("inputs"))
      h.inputs.push_back({in.at("path").get<std::string>(), in.at("sha256").get<std::string>(),
                          in.value("bytes", uint64_t{0}), in.value("documents", uint64_t{0})});
  } catch (const json::exception& e) {
    return Status::Errorf("{}: bad shard header: {}", where, e.what());
  }
  if (h.vocab_size <= 0 || h.eos_id < 0 || h.eos_id >= h.vocab_size)
    return Status::Errorf("{}: bad tokenizer fields (vocab_size {}, eos_id {})", where,
                          h.vocab_size, h.eos_id);
  for (const auto& f : {h.bin_file, h.idx_file})
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
      return Status::Errorf(
          "{}: shard file names must be plain names in the same directory, "
          "got '{}'",
          where, f);
  return h;
}

std::string TokenizerFingerprint(const Tokenizer& tok) {
  Sha256 h;
  h.Update(PreTokenizerName(tok.pre_tokenizer()));
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string_view bytes = tok.TokenBytes(id);
    const uint32_t len = static_cast<uint32_t>(bytes.size());
    h.Update(&len, sizeof(len));
    h.Update(bytes);
  }
  return h.HexDigest();
}

Result<Shard> Shard::Open(const std::string& json_path) {
  Shard s;
  s.path_ = json_path;
  HERD_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(json_path));
  HERD_ASSIGN_OR_RETURN(s.header_, ParseShardHeader(text, json_path));
  const fs::path dir = fs::path(json_path).parent_path();
  const std::string bin_path = (dir / s.header_.bin_file).string();
  const std::string idx_path = (dir / s.header_.idx_file).string();
  HERD_ASSIGN_OR_RETURN(s.bin_, MappedFile::Open(bin_path));
  if (s.bin_->size() != s.header_.tokens * 4)
    return Status::Errorf("{}: {} bytes, but the header {} says {} tokens ({} bytes)", bin_path,
                          s.bin_->size(), json_path, s.header_.tokens, s.header_.tokens * 4);
  HERD_ASSIGN_OR_RETURN(auto idx, MappedFile::Open(idx_path));
  if (idx->size() != (s.header_.documents + 1) * 8)
    return Status::Errorf("{}: {} bytes, but the header {} says {} documents ({} bytes)", idx_path,
                          idx->size(), json_path, s.header_.documents,
                          (s.header_.documents + 1) * 8);
  s.offsets_.resize(s.header_.documents + 1);
  std::memcpy(s.offsets_.data(), idx->data(), idx->size());
  if (s.offsets_.front() != 0 || s.offsets_.back() != s.header_.tokens)
    return Status::Errorf("{}: offsets must run from 0 to {} tokens", idx_path, s.header_.tokens);
  for (size_t d = 0; d + 1 < s.offsets_.size(); ++d)
    if (s.offsets_[d + 1] <= s.offsets_[d])
      return Status::Errorf("{}: document {} is empty or offsets decrease", idx_path, d);
  return s;
}

void Shard::Copy(uint64_t begin, uint64_t n, int32_t* out) const {
  CHECK(begin <= header_.tokens && n <= header_.tokens - begin);
  std::memcpy(out, bin_->data() + begin * 4, n * 4);
}

Status Shard::Verify() const {
  const fs::path dir = fs::path(path_).parent_path();
  if (const std::string got = Sha256Hex(bin_->view()); got != header_.bin_sha256)
    return Status::Errorf("{}: sha256 {} differs from the header's {}",
                          (dir / header_.bin_file).string(), got, header_.bin_sha256);
  HERD_ASSIGN_OR_RETURN(const std::string idx_sha, Sha256File((dir / header_.idx_file).string()));
  if (idx_sha != header_.idx_sha256)
    return Status::Errorf("{}: sha256 {} differs from the header's {}",
                          (dir / header_.idx_file).string(), idx_sha, header_.idx_sha256);
  for (uint64_t i = 0; i < header_.tokens; ++i) {
    uint32_t id;
    std::memcpy(&id, bin_->data() + i * 4, 4);
    if (id >= header_.vocab_size)
      return Status::Errorf("{}: token {} is id {}, outside the vocabulary of {}",
                            (dir / header_.bin_file).string(), i, id, header_.vocab_size);
  }
  return Status::Ok();
}

Result<std::vector<Shard>> OpenShardDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::Errorf("{}: no such shard directory", dir);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("shard-") && name.ends_with(".json")) names.push_back(e.path().string());
  }
  if (ec) return Status::Errorf("{}: cannot list: {}", dir, ec.message());
  if (names.empty()) return Status::Errorf("{}: no shards (shard-*.json) in this directory", dir);
  std::sort(names.begin(), names.end());
  std::vector<Shard> shards;
  for (const auto& n : names) {
    HERD_ASSIGN_OR_RETURN(Shard s, Shard::Open(n));
    shards.push_back(std::move(s));
  }
  return shards;
}

}  // namespace herd
