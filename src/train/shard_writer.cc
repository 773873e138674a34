#include "train/shard_writer.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace herd {

namespace fs = std::filesystem;

Status PrepareShardDir(const std::string& dir, bool force) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (!fs::create_directories(dir, ec))
      return Status::Errorf("{}: cannot create: {}", dir, ec.message());
    return Status::Ok();
  }
  if (!fs::is_directory(dir, ec)) return Status::Errorf("{}: exists and is not a directory", dir);
  std::vector<fs::path> shard_files;
  bool non_empty = false;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    non_empty = true;
    if (e.path().filename().string().starts_with("shard-")) shard_files.push_back(e.path());
  }
  if (ec) return Status::Errorf("{}: cannot list: {}", dir, ec.message());
  if (non_empty && !force)
    return Status::Errorf("{}: directory is not empty (--force replaces its shards)", dir);
  for (const auto& p : shard_files)
    if (!fs::remove(p, ec))
      return Status::Errorf("{}: cannot remove: {}", p.string(), ec.message());
  return Status::Ok();
}

Result<std::unique_ptr<ShardWriter>> ShardWriter::Create(std::string dir, ShardHeader meta,
                                                         uint64_t shard_tokens) {
  if (meta.eos_id < 0 || meta.eos_id >= meta.vocab_size || (meta.bos && meta.bos_id < 0))
    return Status::Errorf("shard writer: tokenizer has no usable eos{} (vocab {}, eos {}, bos {})",
                          meta.bos ? "/bos" : "", meta.vocab_size, meta.eos_id, meta.bos_id);
  if (shard_tokens == 0) return Status::Error("shard writer: shard size must be positive");
  std::unique_ptr<ShardWriter> w(new ShardWriter());
  w->dir_ = std::move(dir);
  w->meta_ = std::move(meta);
  w->shard_tokens_ = shard_tokens;
  return w;
}

ShardWriter::~ShardWriter() {
  if (bin_) std::fclose(bin_);
}

int ShardWriter::AddInput(ShardInput input) {
  input.documents = 0;
  inputs_.push_back(std::move(input));
  input_docs_.push_back(0);
  return static_cast<int>(inputs_.size()) - 1;
}

Status ShardWriter::OpenShard() {
  const std::string path = (fs::path(dir_) / (ShardName(index_) + ".bin")).string();
  bin_ = std::fopen(path.c_str(), "wb");
  if (!bin_) return Status::Errorf("{}: cannot create: {}", path, std::strerror(errno));
  bin_hash_ = Sha256();
  offsets_.assign(1, 0);
  std::fill(input_docs_.begin(), input_docs_.end(), 0);
  return Status::Ok();
}

Status ShardWriter::Write(const uint32_t* ids, size_t n) {
  if (std::fwrite(ids, 4, n, bin_) != n)
    return Status::Errorf("{}: write failed: {}", ShardName(index_) + ".bin", std::strerror(errno));
  bin_hash_.Update(ids, n * 4);
  return Status::Ok();
}

Status ShardWriter::AddDocument(std::span<const int32_t> ids, int input) {
  if (input < 0 || input >= static_cast<int>(inputs_.size()))
    return Status::Errorf("shard writer: unknown input {}", input);
  if (!bin_) HERD_RETURN_IF_ERROR(OpenShard());
  scratch_.clear();
  if (meta_.bos) scratch_.push_back(static_cast<uint32_t>(meta_.bos_id));
  for (int32_t id : ids) {
    if (id < 0 || id >= meta_.vocab_size)
      return Status::Errorf("shard writer: id {} outside the vocabulary of {}", id,
                            meta_.vocab_size);
    scratch_.push_back(static_cast<uint32_t>(id));
  }
  scratch_.push_back(static_cast<uint32_t>(meta_.eos_id));
  HERD_RETURN_IF_ERROR(Write(scratch_.data(), scratch_.size()));
  offsets_.push_back(offsets_.back() + scratch_.size());
  ++input_docs_[input];
  ++total_documents_;
  total_tokens_ += scratch_.size();
  if (offsets_.back() >= shard_tokens_) return CloseShard();
  return Status::Ok();
}

Status ShardWriter::CloseShard() {
  const int failed = std::fclose(bin_);
  bin_ = nullptr;
  const std::string name = ShardName(index_++);
  if (failed) return Status::Errorf("{}.bin: write failed: {}", name, std::strerror(errno));
  ShardHeader h = meta_;
  h.version = kShardFormatVersion;
  h.documents = offsets_.size() - 1;
  h.tokens = offsets_.back();
  h.bin_file = name + ".bin";
  h.bin_sha256 = bin_hash_.HexDigest();
  h.idx_file = name + ".idx";
  const std::string_view idx(reinterpret_cast<const char*>(offsets_.data()), offsets_.size() * 8);
  h.idx_sha256 = Sha256Hex(idx);
  h.inputs.clear();
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (input_docs_[i]) {
      h.inputs.push_back(inputs_[i]);
      h.inputs.back().documents = input_docs_[i];
    }
  auto write_file = [&](const std::string& file, std::string_view data) -> Status {
    const std::string path = (fs::path(dir_) / file).string();
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return Status::Errorf("{}: cannot create: {}", path, std::strerror(errno));
    const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
    if (std::fclose(f) != 0 || !ok) return Status::Errorf("{}: write failed", path);
    return Status::Ok();
  };
  HERD_RETURN_IF_ERROR(write_file(h.idx_file, idx));
  HERD_RETURN_IF_ERROR(write_file(name + ".json", ShardHeaderToJson(h)));  // last: commits
  written_.push_back((fs::path(dir_) / (name + ".json")).string());
  return Status::Ok();
}

Result<std::vector<std::string>> ShardWriter::Finish() {
  if (bin_) HERD_RETURN_IF_ERROR(CloseShard());
  return written_;
}

}  // namespace herd
